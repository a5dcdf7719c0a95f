"""Chapter 03's models (fraglife.model.pins): numba kernels against their twins, and the kernel rules they encode."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fraglife.model import pins, pins_twin

FOLIOS = st.sampled_from([1, 2, 16, 512])


@settings(max_examples=60)
@given(n_folios=st.integers(1, 8), folio_pages=FOLIOS, steps=st.integers(0, 400),
       refs_mean=st.one_of(st.floats(0, 40), st.sampled_from([1020.0, 1023.0, 1030.0])),
       pin_share=st.sampled_from([0.0, 0.1, 0.5, 1.0]), seed=st.integers(0, 2**31 - 1))
def test_history_agrees_with_its_twin(n_folios, folio_pages, steps, refs_mean, pin_share, seed):
    assert pins.history(n_folios, folio_pages, steps, refs_mean, pin_share, seed) == \
        pins_twin.history(n_folios, folio_pages, steps, refs_mean, pin_share, seed)


@settings(max_examples=80)
@given(send_size=st.one_of(st.integers(1, 70_000), st.sampled_from([4096, 65536, 200_000, 2 << 20])),
       folio_pages=FOLIOS, inflight=st.integers(1, 4), sends=st.integers(0, 24),
       fork=st.sampled_from([0.0, 50.0, 333.0, 1000.0]), other=st.sampled_from([0, 1, 1021, 1022]),
       policy=st.sampled_from(pins.POLICIES), size_goal=st.sampled_from([4096, 9000, 65160]))
def test_sender_agrees_with_its_twin(send_size, folio_pages, inflight, sends, fork, other, policy, size_goal):
    fast = pins.sender(send_size, folio_pages, inflight, sends, fork, other, policy, size_goal)
    slow = pins_twin.sender(send_size, folio_pages, inflight, sends, fork, other, policy, size_goal)
    assert fast == slow
    assert fast["held_at_end"] == 0


def test_history_rules():
    # no holders but the mapping: never pinned, never reported
    h = pins.history(4, 1, 2000, 0.0)
    assert h["false_pos"] == h["false_neg"] == h["pinned_checks"] == 0 and h["max_refcount"] == 1
    # small folios: a false positive needs refcount >= 1024; large folios are exact
    h = pins.history(8, 1, 20_000, 1100.0)
    assert h["false_pos"] > 0 and h["max_refcount"] >= pins.GUP_PIN_COUNTING_BIAS and h["false_neg"] == 0
    h = pins.history(8, 16, 20_000, 1100.0)
    assert h["false_pos"] == 0
    # every holder a pin: every check a true positive, two atomics per pin either way, unpin 1 (small) or 2 (large)
    for fp, unpin in ((1, 1), (512, 2)):
        h = pins.history(4, fp, 5000, 5.0, 1.0)
        assert h["true_pos"] == h["pinned_checks"] and h["false_neg"] == 0
        assert h["pin_atomics"] == 2 * h["pins"] and h["unpin_atomics"] == unpin * h["unpins"]


def test_history_follows_the_poisson_tail():
    """The simulated false-positive rate approaches P(N >= 1023) for Poisson(m) references."""
    for m in (1000.0, 1023.0, 1060.0):
        h = pins.history(64, 1, 400_000, m)
        assert abs(h["false_pos"] / h["unpinned_checks"] - pins.poisson_tail(m, 1023)) < 0.12
    assert pins.poisson_tail(0, 1) == 0.0 and pins.poisson_tail(5, 0) == 1.0


def test_sender_rules_small_folios():
    # order-0, one skb per send (4 KiB sends of one page each, size goal a page): per page one get and one put,
    # or two pin atomics and one unpin
    r = pins.sender(4096, 1, 2, 10, 0, 0, "ref", 4096)
    assert (r["gup_pte"], r["frag_puts"], r["give_backs"], r["ref_atomics"]) == (10, 10, 0, 20)
    p = pins.sender(4096, 1, 2, 10, 0, 0, "pin", 4096)
    assert (p["pin_pte"], p["unpin_small"], p["pin_atomics"]) == (10, 10, 30)
    assert r["charges"] == p["charges"] == 10 and r["uargs"] == 1  # 10 x 4 KiB fit one ubuf_info


def test_sender_rules_folios_and_thp():
    # a 64 KiB folio, one send of 64 KiB in one skb: 16 GUP refs, one give-back, one frag; a pin per page, one unpin
    r = pins.sender(65536, 16, 1, 1, 0, 0, "ref", 65536)
    assert (r["gup_pte"], r["give_backs"], r["frag_puts"]) == (16, 1, 1)
    p = pins.sender(65536, 16, 1, 1, 0, 0, "pin", 65536)
    assert (p["pin_pte"], p["unpin_large"], p["unpin_small"]) == (16, 1, 0)
    # a PMD-mapped THP: one leaf per call, whatever its length
    r = pins.sender(65536, 512, 1, 1, 0, 0, "ref", 65536)
    assert (r["gup_pmd"], r["gup_pte"], r["pmd_pages"]) == (1, 0, 16)


def test_sender_fork_rules():
    # pins: every page in flight copied at a fork, the parent keeps them writable; refs: nothing copied, every page
    # write-protected, each rewrite a fault that reuses the page
    kw = dict(send_size=4096, folio_pages=1, inflight=4, sends=100, fork_per_ksend=100.0, size_goal=4096)
    r, p = pins.sender(policy="ref", **kw), pins.sender(policy="pin", **kw)
    assert r["forks"] == p["forks"] == 10
    assert r["fork_copies"] == 0 and p["fork_copies"] == 10 * 4 and p["fork_copies_unpinned"] == 0
    assert r["wp_copies"] == 0 and r["wp_faults_pte"] > p["wp_faults_pte"]
    # another holder keeps the page shared: the first rewrite copies, and leaves the holder on the old page, so
    # later rewrites of the copy reuse it (5 buffers of one page)
    r = pins.sender(policy="ref", other_refs=1, **kw)
    assert r["wp_copies"] == 5 and r["wp_faults_pte"] > 5
    # 1022 other references: fork takes one more and the small folio looks pinned (pins in the mm only)
    p = pins.sender(policy="pin", other_refs=1022, **kw)
    assert p["fork_copies_unpinned"] > 0
    assert pins.sender(policy="pin", other_refs=1021, **kw)["fork_copies_unpinned"] == 0
    assert pins.sender(policy="ref", other_refs=1022, **kw)["fork_copies"] == 0
    # THP: a pinned folio is split at fork and copied whole; later pins go per page
    kw.update(send_size=65536, folio_pages=512, size_goal=65536)
    p = pins.sender(policy="pin", **kw)
    assert p["thp_splits"] > 0 and p["fork_copies"] >= 512 and p["pin_pte"] > 0
    r = pins.sender(policy="ref", **kw)
    assert r["thp_splits"] == 0 and r["wp_faults_pmd"] > 0 and r["fork_copies"] == 0


def test_the_walks():
    ref, pin = pins.walk("ref"), pins.walk("pin")
    by = {r["event"]: r for r in ref}
    assert by["parent_write 'B'"]["process maps"] != by["send"]["process maps"]
    assert by["device_read"]["device sees"] == "A" and by["process_read"]["process sees"] == "B"
    assert all(r["same page"] for r in pin)
    assert [r for r in pin if r["event"] == "process_read"][0]["process sees"] == "C"
    assert pin[2]["copies"] == 1 and ref[2]["copies"] == 0  # the fork copies the pinned page for the child


@pytest.mark.parametrize("bad", [dict(send_size=0), dict(folio_pages=3), dict(inflight=0), dict(fork_per_ksend=-1),
                                 dict(policy="borrow"), dict(size_goal=100)])
def test_sender_rejects_bad_arguments(bad):
    kw = dict(send_size=4096, folio_pages=1, inflight=1, sends=1)
    kw.update(bad)
    with pytest.raises(ValueError):
        pins.sender(**kw)

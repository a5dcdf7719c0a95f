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
       policy=st.sampled_from(pins.POLICIES), size_goal=st.sampled_from([4096, 9000, 65160]),
       release=st.sampled_from(["6.12", "6.18"]))
def test_sender_agrees_with_its_twin(send_size, folio_pages, inflight, sends, fork, other, policy, size_goal,
                                     release):
    fast = pins.sender(send_size, folio_pages, inflight, sends, fork, other, policy, size_goal, release)
    slow = pins_twin.sender(send_size, folio_pages, inflight, sends, fork, other, policy, size_goal, release)
    assert fast == slow
    assert fast["held_at_end"] == 0
    # every page looked up is a PTE page or under a PMD leaf; every PTE page and PMD leaf sets PG_referenced
    grabs = fast["gup_pte"] + fast["pin_pte"]
    assert grabs + fast["pmd_pages"] == fast["pages_looked_up"]
    assert fast["flag_atomics"] == grabs + fast["gup_pmd"] + fast["pin_pmd"]
    assert fast["calls"] <= fast["pages_looked_up"] <= fast["calls"] * pins.MAX_SKB_FRAGS


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


# -- the rules of rules-send (each test fails on the rule the model had before) ---------------------------------

def test_gup_fast_sets_pg_referenced_on_every_page_and_leaf():
    """Rule 1: folio_set_referenced() per PTE page or PMD leaf per call, unconditionally: FOLL_GET 2 atomics per PTE
    page at attach, FOLL_PIN 3; counted as its own kind, the same under both policies."""
    for fp in (1, 16, 512):
        r = pins.sender(65536, fp, 2, 8, 0, 0, "ref", 65160)
        p = pins.sender(65536, fp, 2, 8, 0, 0, "pin", 65160)
        assert r["flag_atomics"] == p["flag_atomics"] == r["gup_pte"] + r["gup_pmd"] > 0
        assert (r["gup_pte"] + r["gup_pmd"] + r["flag_atomics"]) == 2 * (r["gup_pte"] + r["gup_pmd"])
        assert (2 * (p["pin_pte"] + p["pin_pmd"]) + p["flag_atomics"]) == 3 * (p["pin_pte"] + p["pin_pmd"])
    # order-0, no fork: pins still cost one atomic more per page sent; PG_referenced is the same for both
    r, p = pins.sender(65536, 1, 4, 16, 0, 0, "ref"), pins.sender(65536, 1, 4, 16, 0, 0, "pin")
    assert p["pin_atomics"] - r["ref_atomics"] == p["pages_sent"] and r["flag_atomics"] == p["flag_atomics"]


def test_a_thp_is_grabbed_once_per_leaf_per_call():
    """Rule 3: 1 MiB from a PMD-mapped THP in 17 skbs: one grab and one give-back per call, not one per page."""
    r = pins.sender(1 << 20, 512, 1, 1, 0, 0, "ref", 65160)
    assert r["calls"] == r["skbs"] == r["gup_pmd"] == r["give_backs"] == r["frags"] == 17
    assert r["pmd_pages"] == r["pages_looked_up"] == 272 and r["gup_pte"] == 0
    assert r["gup_pmd"] + r["give_backs"] == 34  # attach atomics per MiB: a few tens, not one per page


def test_gup_calls_are_per_skb_and_17_pages_not_per_folio_run():
    """Rule 6: one iov_iter_get_pages2() per skb pass and at most MAX_SKB_FRAGS - nr_frags pages; an skb closes at
    17 frags. 16 order-0 pages in one skb: one call (one per page before)."""
    r = pins.sender(65536, 1, 1, 1, 0, 0, "ref", 1 << 20)
    assert (r["calls"], r["skbs"], r["frags"], r["gup_pte"]) == (1, 1, 16, 16)
    # 20 order-0 pages, a size goal of 1 MiB: 17 frags close the first skb, the other 3 pages go to a second
    r = pins.sender(20 * 4096, 1, 1, 1, 0, 0, "ref", 1 << 20)
    assert (r["calls"], r["skbs"], r["frags"]) == (2, 2, 20)
    # two 64 KiB folios in one skb: 17 pages, then the 15 left (which all merge into the second folio's frag)
    r = pins.sender(2 * 65536, 16, 1, 1, 0, 0, "ref", 1 << 20)
    assert (r["calls"], r["frags"], r["give_backs"]) == (2, 2, 2)


def test_write_after_fork_follows_the_release():
    """Rule 4: after fork (the child gone), a write to a page of a PTE-mapped large folio reuses it on 6.15+ when
    nothing else references the folio; 6.12 copies every such page. Another reference forces the copy on both."""
    kw = dict(send_size=65536, folio_pages=16, inflight=2, sends=30, fork_per_ksend=100.0, size_goal=65160)
    new, old = pins.sender(release="6.18", **kw), pins.sender(release="6.12", **kw)
    assert new["wp_faults_pte"] == old["wp_faults_pte"] > 0
    assert new["wp_copies"] == 0 and new["wp_reuses_large"] == new["wp_faults_pte"]
    # 6.12: every fault on a page still in its large folio copies it (a copy is order-0: later faults on it reuse)
    assert old["wp_copies"] >= 16 and old["wp_reuses_large"] == 0
    held = pins.sender(release="6.18", other_refs=1, **kw)
    assert held["wp_copies"] > 0 and held["wp_copies"] == pins.sender(release="6.12", other_refs=1, **kw)["wp_copies"]
    # order-0 pages and PMD-mapped THPs follow the same rule on both kernels
    for fp in (1, 512):
        kw.update(folio_pages=fp)
        assert pins.sender(release="6.18", **kw) == pins.sender(release="6.12", **kw)


def _cow_recording():
    from fraglife import probes

    return probes.load_recording("cow_mthp")


def _median(x):
    return x["median"] if isinstance(x, dict) else x


def test_cow_cases_match_the_recording():
    """Rule 4 against the cow_mthp recording (6.18): for every case the model gives the recorded reuse/copy outcome,
    the writer's faults and order-0 allocations, and the pages fork copied for the child."""
    rec = _cow_recording()
    assert rec.kernel.startswith("6.18")
    cases = rec.data["cases"]
    base = {}  # fork's own allocations (page tables, the new process) with nothing pinned, per folio size
    for c in cases.values():
        if c["holder"] == "none":
            base.setdefault(c["folio"], []).append(_median(c["fork"]["allocs"]["order_0"]))
    for name, c in cases.items():
        m = pins.cow_case(c["folio_pages"], c["holder"], c["writer"], pages=c["pages"], release=rec.kernel)
        w, o = c["write"]["net"], c["outcome"]
        got = {"fork_copies": _median(c["fork"]["child_copied_pages"]), "write_faults": _median(w["page_fault_user"]),
               "write_allocs_order0": _median(w["order_0"]), "folios_reused": _median(o["folios_reused"]),
               "folios_copied": _median(o["folios_copied"]), "folios_partly": _median(o["folios_partly"]),
               "pages_moved": _median(o["pages_moved"])}
        assert m == got, name
        assert _median(w["minflt"]) == m["write_faults"] and _median(w["order_4"]) == 0, name
        extra = _median(c["fork"]["allocs"]["order_0"]) - sorted(base[c["folio"]])[len(base[c["folio"]]) // 2]
        assert abs(extra - m["fork_copies"]) <= 0.1 * c["pages"], name


def test_cow_cases_on_6_12_differ_where_the_rule_changed():
    rec = _cow_recording()
    c = rec.data["cases"]["64k.none.parent_child_exited"]
    assert _median(c["outcome"]["folios_reused"]) == 16
    old = pins.cow_case(16, "none", "parent_child_exited", release="6.12")
    assert old["folios_copied"] == 16 and old["write_allocs_order0"] == 256  # the recording says reused
    assert pins.cow_case(1, "none", "parent_child_exited", release="6.12")["folios_reused"] == 256


def _bvec_gup_work(send_size, folio_pages, size_goal):
    import numpy as np

    from fraglife.model import bvec

    npg = -(-send_size // 4096)
    slot = -(-npg // folio_pages) * folio_pages
    same = (np.arange(1, slot) % folio_pages) != 0
    fl, st_ = bvec.frag_lengths(same, same, "zerocopy"), bvec.folio_starts(same)
    return bvec.gup_work(bvec.zerocopy_pack(fl, st_, nbytes=send_size, max_frags=17, goal=size_goal, mss=1448))


@pytest.mark.parametrize("send_size", [4096, 65536, 100_000, 1 << 20, 3 << 20])
@pytest.mark.parametrize("folio_pages", [1, 16, 512])
@pytest.mark.parametrize("size_goal", [4096, 9000, 65160])
def test_chapters_03_and_06_count_the_same_send(send_size, folio_pages, size_goal):
    """Rules 3 and 6: the sender (chapter 03) and the packer (chapter 06) count one send alike: GUP calls, pages
    looked up, frags, PG_referenced and reference atomics."""
    mine = pins.gup_work(pins.sender(send_size, folio_pages, 1, 1, 0, 0, "ref", size_goal))
    theirs = _bvec_gup_work(send_size, folio_pages, size_goal)
    assert mine == theirs


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

"""Properties of the lifetime model that must hold on every complete trace, and the kernel rules it follows."""

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from fraglife.model import engine, engine_twin, trace as T, workloads
from fraglife.model.policies import POLICIES

from strategies import workload_params, workload_traces

SAFE = ("page_ref_all", "owner_frag", "owner_skb", "owner_clone")
PAGE = T.PAGE_SIZE


def _led(trace, policy):
    return engine.replay(trace, policy)


@settings(max_examples=30, deadline=None)
@given(case=workload_traces())
def test_every_policy_gives_everything_back(case):
    """A complete trace ends with no reference or pin held, no page allocated, no skb alive, no invalid event."""
    _name, _params, tr = case
    slab = T.MEM_SLAB in tr["kind"][tr["op"] == T.ALLOC]
    for policy in POLICIES:
        led = _led(tr, policy)
        if slab and POLICIES[policy].holds_pages:  # today's rules refuse slab frags (-EIO): the events fail
            assert led.trace_errors > 0 and led.page_atomics == 0, policy
        else:
            assert led.trace_errors == 0, policy
        assert (led.leaked_refs, led.leaked_pages, led.leaked_skbs) == (0, 0, 0), policy
        assert led.early_complete == 0 and led.bad_refs == 0, policy


@settings(max_examples=30, deadline=None)
@given(case=workload_traces())
def test_safe_policies_never_free_what_a_frag_points_at(case):
    _name, _params, tr = case
    for policy in SAFE:
        assert _led(tr, policy).uaf_pages == 0, policy


def _frag_folios(tr):
    """(buffer kind, folios covered) for every frag a trace attaches or grows, from its buffers' layout."""
    bufs = {}
    last = {}
    out = []
    for ev in tr:
        op = int(ev["op"])
        if op == T.ALLOC:
            bufs[int(ev["buf"])] = (int(ev["pfn"]), int(ev["off"]), int(ev["kind"]))
        elif op in (T.ATTACH, T.GROW):
            if op == T.ATTACH:
                frag = [int(ev["buf"]), int(ev["pfn"]), int(ev["off"]), int(ev["len"])]
                last[int(ev["skb"])] = frag
            else:
                frag = last[int(ev["skb"])]
                frag[3] += int(ev["len"])
            base, fp, kind = bufs[frag[0]]
            q0, q1 = frag[1] + frag[2] // PAGE, frag[1] + (frag[2] + frag[3] - 1) // PAGE
            out.append((kind, len({(q - base) // fp for q in range(q0, q1 + 1)})))
    return out


@settings(max_examples=40, deadline=None)
@given(name=st.sampled_from(workloads.TODAY), params=workload_params)
def test_today_no_frag_crosses_a_folio_boundary(name, params):
    """Today's frag builders (zerocopy_fill_skb_from_iter, skb_splice_from_iter, the page_pool, devmem) never
    make a frag that spans folios, so today's single ref per frag frees nothing early."""
    tr = workloads.generate(name, **params)
    assert all(n == 1 for _kind, n in _frag_folios(tr)), name
    assert _led(tr, "page_ref").uaf_pages == 0


@settings(max_examples=25, deadline=None)
@given(params=workload_params, folio_pages=st.sampled_from([1, 2, 4]), frag_pages=st.sampled_from([2, 4, 8, 16]))
def test_one_page_ref_for_a_multi_folio_frag_is_use_after_free(params, folio_pages, frag_pages):
    """The thread's future: a frag as a physical range over several folios, one ref on the first, the pipe lets go."""
    if frag_pages <= folio_pages:
        frag_pages = folio_pages * 2
    p = dict(params, folio_pages=folio_pages, frag_size=frag_pages * PAGE, send_size=max(params["send_size"],
                                                                                          2 * frag_pages * PAGE))
    tr = workloads.generate("physrange_send", **p)
    assert any(n > 1 for _kind, n in _frag_folios(tr))
    assert _led(tr, "page_ref").uaf_pages > 0
    for policy in SAFE:
        assert _led(tr, policy).uaf_pages == 0, policy


def _pool_trace(k_frags: int, order: list[int], drain_at: int) -> np.ndarray:
    """One page_pool page split into k slots, one packet per skb, the skbs freed in ``order``; the pool drains
    the page's unused bias after ``drain_at`` of the frees."""
    tb = T.TraceBuilder()
    kind = T.MEM_POOL_PAGE if k_frags == 1 else T.MEM_POOL_FRAG
    tb.alloc(1, buf=0, pfn=0, pages=1, folio_pages=1, kind=kind)
    for s in range(k_frags):
        tb.skb_alloc(1, s)
        tb.attach(1, s, 0, 0, s * (PAGE // k_frags), PAGE // k_frags)
    if k_frags == 1:
        drain_at = k_frags
    for i, s in enumerate(order):
        if i == drain_at:
            tb.buf_release(1, 0)
        tb.free(0, s)
    if drain_at >= len(order):
        tb.buf_release(1, 0)
    return tb.build()


@settings(max_examples=60, deadline=None)
@given(data=st.data(), k=st.integers(1, 8))
def test_page_pool_pays_one_atomic_per_slot_and_none_for_a_whole_page(data, k):
    """page_pool_unref_netmem() only reads pp_ref_count when the caller holds all that is left: a page given
    whole to one packet pays no atomic (its put is a read); a page split into k slots pays exactly k (the k+1
    unrefs, k users and the drain of the unused bias, are atomic except the last), in any order."""
    order = data.draw(st.permutations(range(k)))
    drain_at = data.draw(st.integers(0, k))
    tr = _pool_trace(k, order, drain_at)
    for policy in ("page_ref", "owner_frag", "owner_skb"):
        led = _led(tr, policy)
        assert led.clean, policy
        assert led.pp_atomics == (0 if k == 1 else k), (policy, k, order, drain_at)
        assert led.pp_reads == 1, policy
        assert led.page_atomics == 0


def test_rx_whole_pages_pay_no_refcount_atomics_and_split_pages_one_per_packet():
    whole = workloads.generate("rx_gro", bytes_sent=1 << 20, loss_rate=0.0, rx_buf=4096)
    split = workloads.generate("rx_gro", bytes_sent=1 << 20, loss_rate=0.0, rx_buf=2048)
    packets = -(-(1 << 20) // 1448)
    assert _led(whole, "page_ref").atomics == 0
    assert _led(split, "page_ref").pp_atomics == packets
    assert _led(split, "page_ref").page_atomics == 0


def _zerocopy_attach(folio_pages: int, pages: int) -> np.ndarray:
    tb = T.TraceBuilder()
    tb.alloc(0, buf=0, pfn=0, pages=max(folio_pages, pages), folio_pages=folio_pages, kind=T.MEM_USER)
    tb.uarg_get(0, 0)
    tb.skb_alloc(0, 0)
    tb.attach(0, 0, 0, 0, 0, pages * PAGE, uarg=0)
    tb.uarg_put(0, 0)
    tb.free(1, 0)
    tb.zc_complete(0, 0)
    tb.buf_release(0, 0)
    return tb.build()


@pytest.mark.parametrize("folio_pages,pages,expect", [(1, 1, 1), (16, 16, 17), (512, 16, 2)])
def test_msg_zerocopy_attach_refs_every_page_then_gives_the_surplus_back(folio_pages, pages, expect):
    """zerocopy_fill_skb_from_iter(): GUP refs each page of a PTE-mapped folio (one atomic for a PMD-mapped THP),
    then page_ref_sub() of the merged surplus; the frag keeps one ref on the compound head."""
    led = _led(_zerocopy_attach(folio_pages, pages), "page_ref")
    assert led.clean
    assert led.ref_by_op[T.ATTACH] == expect
    assert led.ref_by_op[T.FREE] == 1
    # msg_zerocopy_alloc() sets the count (a plain store), skb_zcopy_set() takes one, net_zcopy_put() and
    # skb_release_data() drop one each
    assert led.uarg_atomics == 3 and led.completions == 1


@pytest.mark.parametrize("folio_pages,pins,unpins", [(1, 2, 1), (16, 32, 2), (512, 2, 2)])
def test_owner_designs_pin_user_pages(folio_pages, pins, unpins):
    """FOLL_PIN in the fast path (try_grab_folio_fast): try_get_folio() and then the rest of the bias on a small
    folio's refcount or one on a large folio's _pincount, two atomics per page (per PMD for a PMD-mapped THP);
    unpin once per folio run, one atomic on a small folio, two on a large one (gup_put_folio)."""
    pages = 16 if folio_pages > 1 else 1
    led = _led(_zerocopy_attach(folio_pages, pages), "owner_skb")
    assert led.clean
    assert led.pin_atomics == pins + unpins


def test_uarg_refs_per_sendmsg_and_per_segment():
    """msg_zerocopy_realloc() takes one ref per extending sendmsg (the first is a plain store), net_zcopy_put()
    drops it; skb_segment() takes one per segment (skb_zerocopy_clone())."""
    args = dict(bytes_sent=1 << 20, loss_rate=0.0)
    tso = workloads.generate("tcp_send", **args)
    gso = workloads.generate("tcp_gso", **args)
    c = T.counts(tso)
    assert c["uarg_get"] == c["uarg_put"] == (1 << 20) // (64 << 10)
    led_tso, led_gso = _led(tso, "page_ref"), _led(gso, "page_ref")
    assert led_gso.uarg_atomics - led_tso.uarg_atomics >= 2 * T.counts(gso)["segment"] - 2 * c["clone"]
    assert led_tso.completions == T.counts(tso)["zc_complete"]


def test_expand_head_fires_when_the_ack_beats_the_tx_completion():
    """tcp_trim_head() -> skb_unclone() -> pskb_expand_head() refs every frag while the clone is in flight."""
    args = dict(bytes_sent=1 << 20, loss_rate=0.0, inflight=4)
    early = workloads.generate("tcp_send", txc_lag=1, **args)
    late = workloads.generate("tcp_send", txc_lag=8, **args)
    assert T.counts(early)["expand_head"] == 0
    assert T.counts(late)["expand_head"] > 0
    assert _led(late, "page_ref").ref_by_op[T.EXPAND_HEAD] > 0
    assert _led(late, "page_ref").ref_atomics > _led(early, "page_ref").ref_atomics


def test_devmem_today_is_the_binding_rule():
    """get_netmem() -> net_devmem_get_net_iov(): one ref on the binding per frag ref, plus the ubuf_info refs."""
    tr = workloads.generate("devmem_send", bytes_sent=1 << 20, loss_rate=0.02)
    today, binding = _led(tr, "page_ref"), _led(tr, "owner_binding")
    assert today.page_atomics == 0 and today.pin_atomics == 0
    assert today.uarg_atomics == binding.uarg_atomics
    for op in range(T.N_OPS):
        if op != T.BUF_RELEASE:  # unbinding puts the dma-buf's binding once
            assert today.ref_by_op[op] == binding.ref_by_op[op], T.OP_NAMES[op]


def test_the_shared_binding_does_not_protect_memory_whose_holder_lets_go():
    """A binding-wide owner keeps the binding, not the pages: the pipe's pages are gone at sendmsg() return."""
    tr = workloads.generate("splice_send", bytes_sent=1 << 20, loss_rate=0.0)
    assert _led(tr, "page_ref").uaf_pages == 0
    assert _led(tr, "owner_binding").uaf_pages > 0


def test_pipe_pages_are_released_one_by_one():
    """splice_folio_into_pipe() takes a ref per page-sized pipe_buffer; pipe_buf_release() drops them one by one."""
    tr = workloads.generate("splice_send", bytes_sent=1 << 20, loss_rate=0.0, folio_pages=4)
    assert _led(tr, "page_ref").ref_by_op[T.BUF_RELEASE] == (1 << 20) // PAGE


def test_size_goal_is_45_segments_at_mss_1448():
    """sk_setup_caps(): sk_gso_max_size = GSO_LEGACY_MAX_SIZE - (MAX_TCP_HEADER + 1)."""
    assert workloads.Config(mss=1448).size_goal == 45 * 1448


def test_frags_grow_inside_a_thp():
    """Consecutive sends from one PMD-mapped THP merge into the tail skb's last frag (GROW), with GUP's one
    atomic per PMD and one page_ref_sub()."""
    tr = workloads.generate("tcp_send", bytes_sent=1 << 20, loss_rate=0.0, folio_pages=512)
    assert T.counts(tr)["grow"] > 0
    led = _led(tr, "page_ref")
    assert led.clean and led.ref_by_op[T.GROW] == 2 * T.counts(tr)["grow"]


def test_tiling_repeats_the_ledger():
    base = workloads.generate("tcp_gso", bytes_sent=1 << 20, loss_rate=0.02)
    one, two = _led(base, "page_ref"), _led(T.tile(base, 2), "page_ref")
    assert two.events == 2 * one.events
    assert two.ref_atomics == 2 * one.ref_atomics and two.refs_taken == 2 * one.refs_taken
    assert two.pages_peak == one.pages_peak and two.clean


def test_clone_takes_no_page_ref_but_owner_clone_does():
    """__skb_clone() only bumps dataref; the per-skb owner policy pays an owner ref per clone instead."""
    tr = workloads.generate("tcp_send", bytes_sent=1 << 20, loss_rate=0.05)
    clone = T.OP_CODE["clone"]
    assert _led(tr, "page_ref").ref_by_op[clone] == 0
    assert _led(tr, "owner_skb").ref_by_op[clone] == 0
    assert _led(tr, "owner_clone").ref_by_op[clone] > 0


def test_software_gso_refs_every_frag_once_per_segment():
    """skb_segment() takes a ref per frag per output segment: GSO multiplies page refs."""
    args = dict(bytes_sent=1 << 20, loss_rate=0.0)
    tso = _led(workloads.generate("tcp_send", **args), "page_ref")
    gso = _led(workloads.generate("tcp_gso", **args), "page_ref")
    seg = T.OP_CODE["segment"]
    assert tso.ref_by_op[seg] == 0 and gso.ref_by_op[seg] > 0
    assert gso.ref_atomics > 2 * tso.ref_atomics


def test_same_seed_same_trace_and_other_seed_other_losses():
    a = workloads.generate("tcp_send", bytes_sent=1 << 20, loss_rate=0.05, seed=7)
    b = workloads.generate("tcp_send", bytes_sent=1 << 20, loss_rate=0.05, seed=7)
    c = workloads.generate("tcp_send", bytes_sent=1 << 20, loss_rate=0.05, seed=8)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)


@pytest.mark.parametrize("name", sorted(workloads.WORKLOADS))
def test_every_workload_moves_its_bytes(name):
    """The frags a workload attaches (and grows) add up to the bytes it sends."""
    tr = workloads.generate(name, bytes_sent=3 << 20, loss_rate=0.0, folio_pages=512 if name == "tcp_send" else 1)
    moved = tr[np.isin(tr["op"], (T.ATTACH, T.GROW))]
    assert int(moved["len"].sum()) == 3 << 20


def test_twin_agrees_on_the_pool_and_pin_cases():
    for tr in (_pool_trace(4, [2, 0, 3, 1], 2), _zerocopy_attach(16, 16)):
        for name, policy in POLICIES.items():
            assert engine.replay(tr, name) == engine_twin.replay(tr, policy), name


def test_unknown_workload_and_policy_are_refused():
    with pytest.raises(ValueError, match="unknown workload"):
        workloads.generate("tcp_sned")
    with pytest.raises(ValueError, match="unknown policy"):
        engine.replay(T.empty(), "page_reff")

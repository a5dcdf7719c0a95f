"""Properties of the lifetime model that must hold on every complete trace, and the kernel rules it follows."""

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from fraglife.model import engine, engine_twin, replays, trace as T, workloads
from fraglife.model.policies import POLICIES

from strategies import fit, workload_params, workload_traces

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
    tr = workloads.generate(name, **fit(name, params))
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
    assert _led(whole, "page_ref").ref_atomics == 0
    assert _led(whole, "page_ref").atomics == _led(whole, "page_ref").defer_atomics  # only the defer list's
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


@pytest.mark.parametrize("folio_pages,pages,expect,flags", [(1, 1, 1, 1), (16, 16, 17, 16), (512, 16, 2, 1)])
def test_msg_zerocopy_attach_refs_every_page_then_gives_the_surplus_back(folio_pages, pages, expect, flags):
    """zerocopy_fill_skb_from_iter(): GUP refs each page of a PTE-mapped folio (one atomic for a PMD-mapped THP),
    then page_ref_sub() of the merged surplus; the frag keeps one ref on the compound head. gup-fast sets
    PG_referenced with a locked set_bit per PTE page, per PMD leaf (folio_set_referenced(), mm/gup.c): page
    flags, counted in atomics but not as references."""
    led = _led(_zerocopy_attach(folio_pages, pages), "page_ref")
    assert led.clean
    assert led.ref_by_op[T.ATTACH] == expect
    assert led.ref_by_op[T.FREE] == 1
    assert led.flag_atomics == flags
    assert led.ref_atomics == led.page_atomics and led.atomics == sum(getattr(led, k) for k in replays.KINDS)
    # msg_zerocopy_alloc() sets the count (a plain store), skb_zcopy_set() takes one, net_zcopy_put() and
    # skb_release_data() drop one each
    assert led.uarg_atomics == 3 and led.completions == 1


@pytest.mark.parametrize("folio_pages,pins,unpins", [(1, 2, 1), (16, 32, 2), (512, 2, 2)])
def test_owner_designs_pin_user_pages(folio_pages, pins, unpins):
    """FOLL_PIN in the fast path (try_grab_folio_fast): try_get_folio() and then the rest of the bias on a small
    folio's refcount or one on a large folio's _pincount, two atomics per page (per PMD for a PMD-mapped THP),
    and PG_referenced, a third; unpin once per folio run, one atomic on a small folio, two on a large one
    (gup_put_folio)."""
    pages = 16 if folio_pages > 1 else 1
    led = _led(_zerocopy_attach(folio_pages, pages), "owner_skb")
    assert led.clean
    assert led.pin_atomics == pins + unpins
    assert led.flag_atomics == pins // 2


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


def test_devmem_tx_needs_6_16():
    with pytest.raises(ValueError, match=r"^kernel = '6.12' is not allowed for a devmem sender"):
        workloads.generate("devmem_send", kernel="6.12")
    with pytest.raises(ValueError, match=r"^kernel = '6.12' is not allowed for a devmem sender"):
        workloads.generate("devmem_send", kernel="6.12", impl="twin")


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


# ---------------------------------------------------------------- the running kernel's sending and receiving rules
def _gup_calls(send_size: int, nbytes: int, size_goal: int, max_frags: int = T.MAX_SKB_FRAGS) -> tuple[int, int]:
    """(GUP calls, page_ref_sub()s) of a MSG_ZEROCOPY transfer from one PMD-mapped THP, every tail appended to
    while its ubuf_info may grow (512 KiB): tcp_sendmsg_locked() passes of min(size_goal - skb->len, left) bytes,
    zerocopy_fill_skb_from_iter() calls of at most MAX_SKB_FRAGS - nr_frags pages each, pages merging into the
    last frag when contiguous (v6.18)."""
    calls = subs = skb_len = frags = uarg_bytes = 0
    addr, last_end = 0, None
    for _ in range(nbytes // send_size):
        if uarg_bytes + send_size > workloads.UARG_BYTE_LIMIT:  # a new ubuf_info: -EEXIST on the tail, a new skb
            uarg_bytes = 0
            if skb_len:
                skb_len, frags, last_end = 0, 0, None
        uarg_bytes += send_size
        left = send_size
        while left:
            if skb_len == size_goal:
                skb_len, frags, last_end = 0, 0, None
            pass_len = min(size_goal - skb_len, left)
            p = 0
            while p < pass_len:
                a = addr + p
                pages = min(max_frags - frags, -(-(pass_len - p + a % PAGE) // PAGE))
                copied = min(pass_len - p, pages * PAGE - a % PAGE)
                calls += 1
                if frags and last_end == a:
                    subs += 1  # every page merged into the last frag
                else:
                    frags += 1
                    subs += pages > 1
                last_end = a + copied
                p += copied
            skb_len += pass_len
            addr += pass_len
            left -= pass_len
    return calls, subs


@pytest.mark.parametrize("send_size,mss", [(256 << 10, 1448), (64 << 10, 8948), (16 << 10, 1448), (4096, 536)])
def test_gup_is_called_per_skb_pass_per_frag_room_not_per_folio_run(send_size, mss):
    """zerocopy_fill_skb_from_iter() calls iov_iter_get_pages2() per skb pass, per iovec, per at most
    MAX_SKB_FRAGS - nr_frags pages: from a PMD-mapped THP each call grabs its leaf once (2 atomics: the ref and
    PG_referenced) and gives the merged surplus back in one page_ref_sub(). Against the kernel loop written out."""
    nbytes = 2 << 20  # one THP, and no ACK before the end: the sends' slots are fresh and contiguous
    tr = workloads.generate("tcp_send", bytes_sent=nbytes, send_size=send_size, mss=mss, folio_pages=512,
                            loss_rate=0.0, tail_unsent=1.0, inflight=1 << 20)
    calls, subs = _gup_calls(send_size, nbytes, workloads.Config(mss=mss).size_goal)
    led = _led(tr, "page_ref")
    assert led.clean
    assert led.flag_atomics == calls
    assert led.ref_by_op[T.ATTACH] + led.ref_by_op[T.GROW] == calls + subs


def test_a_full_skb_takes_no_more_frags_not_even_a_merge():
    """frag == MAX_SKB_FRAGS: -EMSGSIZE before any GUP, so bytes that would merge into the last frag start a
    new skb instead."""
    tb = T.TraceBuilder()
    tb.alloc(0, buf=0, pfn=0, pages=8, folio_pages=8, kind=T.MEM_USER)
    tb.skb_alloc(0, 0)
    for i in range(4):
        tb.attach(0, 0, 0, 0, i * 2 * PAGE, PAGE)  # four frags, holes between them
    tb.grow(0, 0, 0, PAGE)
    for policy in ("page_ref", "owner_skb"):
        assert engine.replay(tb.build(), policy, max_frags=4).trace_errors == 1
        assert engine.replay(tb.build(), policy, max_frags=5).trace_errors == 0
    tr = workloads.generate("tcp_send", bytes_sent=1 << 20, send_size=4096, folio_pages=1, mss=536, loss_rate=0.0)
    assert _led(tr, "page_ref").trace_errors == 0


def test_software_gso_takes_a_uarg_ref_and_a_page_ref_per_frag_slice_per_segment():
    """skb_segment(): skb_zerocopy_clone() -> net_zcopy_get() per output segment, __skb_frag_ref() per frag slice
    placed in a segment (a frag overlapping k segments is referenced k times); each segment's free drops them."""
    tb = T.TraceBuilder()
    tb.alloc(0, buf=0, pfn=0, pages=3, folio_pages=1, kind=T.MEM_USER)
    tb.uarg_get(0, 0)
    tb.skb_alloc(0, 0)
    for q in range(3):
        tb.attach(0, 0, 0, q, 0, PAGE, uarg=0)
    tb.uarg_put(0, 0)
    tb.clone(0, 1, 0)
    mss = 3000
    starts = range(0, 3 * PAGE, mss)
    slices = sum(len({(a + b) // PAGE for b in (0, min(mss, 3 * PAGE - a) - 1)}) for a in starts)
    for i, start in enumerate(starts):
        tb.segment(0, 2 + i, 1, start, min(mss, 3 * PAGE - start))
    segmented = tb.build()
    for i in range(len(starts)):
        tb.free(1, 2 + i)
    tb.free(1, 1)
    tb.free(1, 0)
    tb.zc_complete(0, 0)
    tb.buf_release(0, 0)
    whole = tb.build()
    assert slices == 7
    for policy in ("page_ref", "page_ref_all"):
        led = engine.replay(segmented, policy)
        assert led.ref_by_op[T.SEGMENT] == slices
        # skb_zcopy_set() on the first frag, net_zcopy_put() at return, net_zcopy_get() per segment
        assert led.uarg_atomics == 1 + 1 + len(starts)
        done = engine.replay(whole, policy)
        assert done.clean and done.refs_dropped == done.refs_taken + 3  # the mapping's own refs go too
        assert done.ref_by_op[T.FREE] == slices + 3 and done.completions == 1
        assert engine_twin.replay(whole, POLICIES[policy]) == done


def _sendmsgs(flags: int, n: int = 3) -> np.ndarray:
    """n MSG_ZEROCOPY sendmsg()s of one page each into one skb, extending one ubuf_info, then freed."""
    tb = T.TraceBuilder()
    tb.alloc(0, buf=0, pfn=0, pages=n, folio_pages=1, kind=T.MEM_DEVMEM if flags & T.UARG_DEVMEM else T.MEM_USER)
    tb.skb_alloc(0, 0)
    for q in range(n):
        tb.uarg_get(0, 0, flags, 0 if flags & T.UARG_DEVMEM else -1)
        tb.attach(0, 0, 0, q, 0, PAGE, uarg=0)
        tb.uarg_put(0, 0, flags, 0 if flags & T.UARG_DEVMEM else -1)
    tb.free(1, 0)
    tb.zc_complete(0, 0)
    tb.buf_release(0, 0)
    return tb.build()


@pytest.mark.parametrize("policy", sorted(POLICIES))
def test_per_sendmsg_accounting_and_notification_atomics(policy):
    """Per sendmsg: mm_account_pinned_pages()' cmpxchg loop on user->locked_vm unless the sender is exempt; per
    new ubuf_info (a notification skb): sk_omem_alloc, sk_zckey, sock_hold() and get_uid() at its first
    accounting; at its completion: the locked_vm give-back, free_uid() (another cmpxchg loop), the error
    queue's lock, the notification skb's sock_ofree() and sock_put() (net/core/skbuff.c, v6.18)."""
    acct, plain = _led(_sendmsgs(T.UARG_ACCOUNT), policy), _led(_sendmsgs(0), policy)
    assert acct.clean and plain.clean and acct.completions == plain.completions == 1
    assert (acct.cmpxchg_atomics, acct.notif_atomics) == (3 + 1, 3 + 1 + 1 + 3)
    assert (plain.cmpxchg_atomics, plain.notif_atomics) == (0, 3 + 3)
    assert acct.ref_atomics == plain.ref_atomics and acct.uarg_atomics == plain.uarg_atomics
    assert engine_twin.replay(_sendmsgs(T.UARG_ACCOUNT), POLICIES[policy]) == acct


def test_devmem_takes_a_binding_ref_per_sendmsg():
    """net_devmem_get_binding(): refcount_inc_not_zero() on the binding per devmem sendmsg, dropped as it
    returns; no locked_vm accounting; one binding ref per frag ref beside it (get_netmem(), v6.16+)."""
    led = _led(_sendmsgs(T.UARG_DEVMEM), "page_ref")
    assert led.clean and led.cmpxchg_atomics == 3
    assert led.owner_atomics == 3 + 3 + 3 + 1  # the sendmsgs' puts, the frags' gets and puts, the unbind
    tr = workloads.generate("devmem_send", bytes_sent=1 << 20, loss_rate=0.0)
    assert _led(tr, "page_ref").cmpxchg_atomics == T.counts(tr)["uarg_get"] == (1 << 20) // (64 << 10)


def test_locked_vm_accounting_is_a_parameter_of_the_sender():
    args = dict(bytes_sent=1 << 20, loss_rate=0.0, send_size=16384)
    on, st = workloads.generate_with_stats("tcp_send", **args)
    off = workloads.generate("tcp_send", locked_vm_accounting=False, **args)
    assert _led(on, "page_ref").cmpxchg_atomics == st["sendmsg"] + st["notifications"]  # + free_uid() each
    assert _led(off, "page_ref").cmpxchg_atomics == 0
    with pytest.raises(ValueError, match=r"^locked_vm_accounting = 'yes' is not allowed"):
        workloads.Config(locked_vm_accounting="yes")


@pytest.mark.parametrize("share,per_mib", [(0.0, 32.0), (1.0, (1 << 20) / 65160)])
def test_splice_sends_16_pipe_buffers_per_sendmsg_and_the_tail_rule(share, per_mib):
    """splice_to_socket(): one sendmsg per 16 pipe buffers; tcp_sendmsg_locked() appends to the tail while it is
    unsent. With every tail pushed a 64 KiB sendmsg makes a size-goal skb and a 376-byte one (32 per MiB); with
    every tail appended to, skbs are packed to the size goal (16.1 per MiB), whatever the splice call's size."""
    nbytes = 16 << 20
    for chunk in (256 << 10, 1 << 20):
        tr, st = workloads.generate_with_stats("splice_send", bytes_sent=nbytes, send_size=chunk, loss_rate=0.0,
                                               tail_unsent=share)
        assert st["sendmsg"] == nbytes // (64 << 10)
        assert st["transmissions"] / 16 == pytest.approx(per_mib, abs=0.1)
        assert st["no_tail"] == (st["sendmsg"] if share == 0 else 1)
        assert _led(tr, "page_ref").clean
        # the pipe releases the buffers each sendmsg sent as it returns, one put per page as before
        partial = tr[(tr["op"] == T.BUF_RELEASE) & (tr["len"] > 0)]
        assert len(partial) == nbytes // chunk * (chunk // (64 << 10) - 1)
        assert _led(tr, "page_ref").ref_by_op[T.BUF_RELEASE] == nbytes // PAGE


def test_the_tail_share_decides_new_notifications_and_skbs():
    """msg_zerocopy_realloc() extends the tail's ubuf_info only while the tail is unsent (and under 512 KiB):
    with no tail ever unsent, every sendmsg makes a new notification and its own skbs."""
    args = dict(bytes_sent=4 << 20, send_size=16384, loss_rate=0.0, mss=8948)
    _, never = workloads.generate_with_stats("tcp_send", tail_unsent=0.0, **args)
    _, half = workloads.generate_with_stats("tcp_send", tail_unsent=0.5, **args)
    _, always = workloads.generate_with_stats("tcp_send", tail_unsent=1.0, **args)
    n = (4 << 20) // 16384
    assert never["notifications"] == never["no_tail"] == never["transmissions"] == never["passes"] == n
    assert always["notifications"] == (4 << 20) // workloads.UARG_BYTE_LIMIT and always["no_tail"] == 1
    # skbs packed to the size goal, but each 512 KiB ubuf_info starts its own (-EEXIST on the tail)
    per_uarg = -(-workloads.UARG_BYTE_LIMIT // workloads.Config(mss=8948).size_goal)
    assert always["transmissions"] == (4 << 20) // workloads.UARG_BYTE_LIMIT * per_uarg
    assert never["notifications"] > half["notifications"] > always["notifications"]
    assert half["no_tail"] == pytest.approx(n / 2, rel=0.15)
    with pytest.raises(ValueError, match=r"^tail_unsent = 1.5 is not allowed"):
        workloads.Config(tail_unsent=1.5)


def _reader_frees(tr: np.ndarray, app_cpu: int = 0) -> np.ndarray:
    return tr[(tr["op"] == T.FREE) & (((tr["kind"] & T.FREE_DEFERRED) != 0) | (tr["cpu"] == app_cpu))]


@pytest.mark.parametrize("kernel,per", [("6.18", 2), ("6.12", 1)])
def test_the_reader_frees_on_the_cpu_that_allocated_the_skb(kernel, per):
    """tcp_eat_recv_skb() -> skb_attempt_defer_free(): skbs the reader is done with are freed on skb->alloc_cpu
    (the NAPI CPU) at its next net_rx_action(); the reader pays the defer list's atomics (v6.18: the count and
    llist_add(); v6.12: the defer_lock), the flush one more."""
    args = dict(bytes_sent=4 << 20, loss_rate=0.01, rx_buf=2048, kernel=kernel)
    tr, st = workloads.generate_with_stats("rx_gro", **args)
    c = workloads.Config(**args)
    frees = _reader_frees(tr, c.app_cpu)
    assert len(frees) == st["deferred"] > 0
    assert (frees["cpu"] == c.rx_cpu).all() and (frees["other"] == c.app_cpu).all() and (frees["len"] == per).all()
    led = _led(tr, "page_ref")
    flushes = int(((frees["kind"] & T.FREE_FLUSH) != 0).sum())
    assert led.clean and led.defer_atomics == per * len(frees) + flushes
    # the page_pool puts of the reader's skbs now run where the pool's lines were last written
    local = workloads.generate("rx_gro", cpus=1, **{k: v for k, v in args.items()})
    assert (_reader_frees(local)["kind"] == 0).all() and _led(local, "page_ref").defer_atomics == 0


def test_a_full_defer_list_frees_on_the_readers_cpu():
    """v6.18 counts every attempt (atomic_long_inc_return) and frees locally once the count reaches
    skb_defer_max; v6.12 reads the count first and takes no lock then."""
    new, _ = workloads.generate_with_stats("rx_gro", bytes_sent=1 << 20, loss_rate=0.0, skb_defer_max=1)
    old, _ = workloads.generate_with_stats("rx_gro", bytes_sent=1 << 20, loss_rate=0.0, skb_defer_max=0,
                                           kernel="6.12")
    full = new[(new["op"] == T.FREE) & ((new["kind"] & T.FREE_FULL) != 0)]
    assert len(full) > 0 and (full["cpu"] == 0).all() and (full["len"] == 1).all()
    assert not ((old["op"] == T.FREE) & (old["kind"] != 0)).any()
    assert _led(old, "page_ref").defer_atomics == 0 and _led(new, "page_ref").defer_atomics == len(full)

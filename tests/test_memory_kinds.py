"""The rules of slab, page_frag and whole-page memory, on small traces whose counts are worked out by hand.

Each trace is replayed by the twin, the engine and (today's policy) the C replay; all three must give the
counts below (the differential tests check that they agree on every trace; these check what they say).
"""

import shutil

import numpy as np
import pytest

from fraglife.chapters.kmalloc_sends import slab_splice_trace
from fraglife.model import engine, engine_twin, trace as T, workloads
from fraglife.model.policies import POLICIES

from strategies import raw_traces, reach

PAGE = T.PAGE_SIZE


def _ledgers(trace, policy):
    fast = engine.replay(trace, policy)
    slow = engine_twin.replay(trace, POLICIES[policy])
    assert fast == slow, policy
    if policy == "page_ref" and (shutil.which("cc") or shutil.which("gcc")):
        from fraglife.model import creplay
        from fraglife.paths import build_dir

        c = creplay.load(build_dir("bench"))
        assert np.array_equal(c.replay_array(trace), engine.replay_array(trace, policy))
    return fast


def test_slab_memory_is_refused_today_and_owned_by_the_destructor():
    today = _ledgers(slab_splice_trace(), "page_ref")
    assert today.trace_errors == 1 and today.page_atomics == 0 and today.uaf_pages == 0
    owner = _ledgers(slab_splice_trace(), "owner_skb")
    # the service's ref (a plain store), the skb's get, the service's put, the skb's put: the destructor kfree()s
    assert owner.clean and owner.owner_atomics == 3 and owner.page_atomics == 0
    binding = _ledgers(slab_splice_trace(), "owner_binding")
    assert binding.uaf_pages == 1  # kfree() while the frag points at it: the binding protects nothing


def _page_frag_sends():
    """Two 1 KiB messages copied into one page_frag_cache page (8 pages, top down) and spliced."""
    tb = T.TraceBuilder()
    tb.alloc(0, buf=0, pfn=0, pages=8, folio_pages=8, kind=T.MEM_PAGE_FRAG)
    tb.skb_alloc(0, skb=0)
    tb.attach(0, skb=0, buf=0, pfn=7, off=3072, length=1024)  # the first fragment: the page's last KiB
    tb.buf_release(0, buf=0, frags=1)  # page_frag_free() after sendmsg() returns
    tb.attach(0, skb=0, buf=0, pfn=7, off=2048, length=1024)
    tb.buf_release(0, buf=0, frags=1)
    tb.free(1, skb=0)
    tb.buf_release(0, buf=0)  # the cache moves on: page_ref_sub_and_test(pagecnt_bias)
    return tb.build()


@pytest.mark.parametrize("policy", sorted(POLICIES))
def test_page_frag_counts(policy):
    led = _ledgers(_page_frag_sends(), policy)
    assert led.clean, led
    if policy == "owner_binding":
        assert led.page_atomics == 2  # the users' puts; the binding keeps no page counts
    elif POLICIES[policy].batch:
        assert led.page_atomics == 1 + 2 + 1 + 1  # one get (batched per skb), two frees, one put, the drain
    else:
        assert led.page_atomics == 2 + 2 + 2 + 1  # get_page per frag, page_frag_free twice, two puts, the drain


def test_page_frag_page_lives_until_its_last_user():
    tb = T.TraceBuilder()
    tb.alloc(0, buf=0, pfn=0, pages=8, folio_pages=8, kind=T.MEM_PAGE_FRAG)
    tb.skb_alloc(0, skb=0)
    tb.attach(0, skb=0, buf=0, pfn=7, off=0, length=PAGE)
    tb.buf_release(0, buf=0, frags=1)
    tb.buf_release(0, buf=0)  # drained while the skb still holds its ref: the page stays
    tb.alloc(0, buf=1, pfn=8, pages=8, folio_pages=8, kind=T.MEM_PAGE_FRAG)  # the refill takes a new page
    tb.free(1, skb=0)  # the last put frees the old page
    tb.buf_release(0, buf=1)
    led = _ledgers(tb.build(), "page_ref")
    assert led.clean and led.pages_peak == 16


def _pages_send(folio_pages):
    tb = T.TraceBuilder()
    tb.alloc(0, buf=0, pfn=0, pages=4, folio_pages=folio_pages, kind=T.MEM_PAGES)
    tb.skb_alloc(0, skb=0)
    for q in range(4):  # MSG_SPLICE_PAGES cuts at every page
        tb.attach(0, skb=0, buf=0, pfn=q, off=0, length=PAGE)
    tb.buf_release(0, buf=0)
    tb.free(1, skb=0)
    return tb.build()


@pytest.mark.parametrize("folio_pages", [1, 4])
def test_whole_pages_today_and_with_a_destructor(folio_pages):
    folios = 4 // folio_pages
    today = _ledgers(_pages_send(folio_pages), "page_ref")
    assert today.clean and today.page_atomics == 4 + folios + 4  # get_page per frag, the sender's puts, puts
    owner = _ledgers(_pages_send(folio_pages), "owner_skb")
    assert owner.clean and owner.owner_atomics == 3 and owner.page_atomics == folios  # the destructor's puts


def test_raw_traces_reach_the_new_rules():
    """The differential tests' raw traces refuse slab frags, free page_frag fragments and drain caches."""
    def ledger_of(kind, op, length=None):
        def hit(t):
            kinds = t["kind"][t["op"] == T.ALLOC]
            ops = t["op"] == op if length is None else (t["op"] == op) & (t["len"] >= length)
            return kind in kinds and ops.any() and engine.replay(t, "page_ref").trace_errors > 0
        return hit

    reach(raw_traces(), ledger_of(T.MEM_SLAB, T.ATTACH), 5000)
    reach(raw_traces(), ledger_of(T.MEM_PAGE_FRAG, T.BUF_RELEASE, 1), 5000)
    reach(raw_traces(), lambda t: T.MEM_PAGES in t["kind"][t["op"] == T.ALLOC]
          and engine.replay(t, "owner_skb").refs_dropped > 2, 5000)


@pytest.mark.parametrize("impl", ["twin", "jit"])
@pytest.mark.parametrize("folio_pages", [1, 4])
def test_a_pipe_holds_only_the_pages_its_bytes_filled(impl, folio_pages):
    # 5 sends of 16 pages, the last one 2.5 pages long: the pipe's last fill is 3 pages (in whole folios)
    size = 4 * 64 * 1024 + 10 * 1024
    tr = workloads.generate("splice_send", impl=impl, bytes_sent=size, send_size=64 * 1024, loss_rate=0.0,
                            folio_pages=folio_pages)
    held = tr["len"][tr["op"] == T.ALLOC].tolist()
    assert held == [16, 16, 16, 16, 3 if folio_pages == 1 else 4]
    led = engine.replay(tr, "page_ref")
    assert led.clean and led.ref_by_op[T.BUF_RELEASE] == sum(held)

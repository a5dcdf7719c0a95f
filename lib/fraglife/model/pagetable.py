"""Looking user buffers up for MSG_ZEROCOPY, compiled: per skb today, one batched lookup, or faulting up front.

``lookup`` replays ``messages`` sendmsg() iterators of ``iov_count`` iovecs of
``iov_size`` bytes and counts the page-table work each strategy does, in numba.
:mod:`.pagetable_twin` is its specification in plain Python (``pagetable_twin.lookup``,
tests/test_pagetable_model.py), with the kernel rules and model choices it
follows and the definitions both share (re-exported here).
"""

from __future__ import annotations

import numba
import numpy as np

from ..jit import CACHE
from . import kernels, pagetable_twin as twin
from .rng import GOLDEN, MASK, MIX1, MIX2
from .pagetable_twin import (ABSENT, BATCHED, HUGE_ZERO_FOLIO, HUGE_ZERO_REGION, LAYOUTS, LOOKUP_FIELDS, MAX_MESSAGE,
                             MAX_SKB_FRAGS, PAGE, PER_SKB, PMD_PAGES, POPULATE, PRESENT, PTE_REGION, STRATEGIES,
                             THP_REGION, ZERO, ZERO_FOLIO, check, gup_work, iovecs, rules, u01)

(L_MSGS, L_SENDMSGS, L_BYTES, L_SKBS, L_CALLS, L_FAST, L_PMD, L_PMD_PAGES, L_SLOW_CALLS, L_SLOW, L_SLOW_PMD,
 L_SLOW_PMD_PAGES, L_ZERO, L_ZERO_REFS, L_POP_CALLS, L_POP, L_LOOKED, L_SENT, L_FRAGS, L_GIVE, L_LOCAL, L_REF_AT, L_PIN_AT, L_FLAG_AT,
 L_LOCK_AT) = range(len(LOOKUP_FIELDS))

_G, _M1, _M2 = np.uint64(GOLDEN), np.uint64(MIX1), np.uint64(MIX2)
_S30, _S27, _S31, _S11 = np.uint64(30), np.uint64(27), np.uint64(31), np.uint64(11)
_INV53 = 1.0 / (1 << 53)


@numba.njit(cache=CACHE)
def _u01(seed, k):
    """A float in [0, 1) for index k: splitmix64's output at state seed + (k + 1) x golden (model/rng.py)."""
    z = seed + np.uint64(k + 1) * _G
    z = (z ^ (z >> _S30)) * _M1
    z = (z ^ (z >> _S27)) * _M2
    z = z ^ (z >> _S31)
    return float(z >> _S11) * _INV53


@numba.njit(cache=CACHE)
def grab(foll_pin, atomics_if_pinned, out):
    """One try_grab_folio*(): a reference (one atomic), or a pin (``atomics_if_pinned``)."""
    if foll_pin:
        out[L_PIN_AT] += atomics_if_pinned
    else:
        out[L_REF_AT] += 1


@numba.njit(cache=CACHE)
def gup(q0, n, state, region, huge_zero_special, foll_pin, out):
    """One get_user_pages_fast() over pages [q0, q0 + n): gup-fast while it can, the rest of the call through the
    slow path (faulting pages in)."""
    out[L_CALLS] += 1
    out[L_LOOKED] += n
    fast = True
    last_leaf = -1
    slow_leaf = -1
    slow_seen = 0
    for q in range(q0, q0 + n):
        r = q // PMD_PAGES
        kind = region[r]
        if fast:
            if kind == THP_REGION or (kind == HUGE_ZERO_REGION and not huge_zero_special):
                if r != last_leaf:  # one grab and one PG_referenced per PMD leaf per call
                    last_leaf = r
                    out[L_PMD] += 1
                    grab(foll_pin, 2, out)
                    out[L_FLAG_AT] += 1
                    if kind == HUGE_ZERO_REGION:
                        out[L_ZERO_REFS] += 1
                out[L_PMD_PAGES] += 1
                continue
            if kind == PTE_REGION and state[q] == PRESENT:
                out[L_FAST] += 1
                grab(foll_pin, 2, out)
                out[L_FLAG_AT] += 1
                continue
            fast = False  # no PTE, the zero page's special PTE, or the special huge zero PMD
            out[L_SLOW_CALLS] += 1
            out[L_LOCK_AT] += 2  # mmap_read_lock() and its unlock, once per call
        out[L_SLOW] += 1
        if kind == PTE_REGION:
            out[L_LOCK_AT] += 1  # the PTE lock
            if state[q] == ABSENT:  # faultin_page(): a read fault maps the zero page
                out[L_ZERO] += 1
                state[q] = ZERO
            if not (state[q] == ZERO and foll_pin):  # no pin on the zero page
                if state[q] == ZERO:
                    out[L_ZERO_REFS] += 1
                grab(foll_pin, 1, out)
            out[L_FLAG_AT] += 1  # folio_mark_accessed()
        else:  # follow_huge_pmd(): the PMD lock and a grab of 1, then one of the rest of the leaf in the call
            out[L_SLOW_PMD_PAGES] += 1
            if r != slow_leaf:
                slow_leaf = r
                slow_seen = 0
            if slow_seen < 2:
                grab(foll_pin, 2, out)
                if kind == HUGE_ZERO_REGION:
                    out[L_ZERO_REFS] += 1
            if slow_seen == 0:
                out[L_SLOW_PMD] += 1
                out[L_LOCK_AT] += 1
            slow_seen += 1


@numba.njit(cache=CACHE)
def folio_at(q, pos, state, region):
    """(folio, offset in it) of byte ``pos`` of page q, as the frag merge test compares them."""
    r = q // PMD_PAGES
    if region[r] == THP_REGION:
        return r * PMD_PAGES, (q - r * PMD_PAGES) * PAGE + pos % PAGE
    if region[r] == HUGE_ZERO_REGION:
        return HUGE_ZERO_FOLIO, (q - r * PMD_PAGES) * PAGE + pos % PAGE
    if state[q] == ZERO:
        return ZERO_FOLIO, pos % PAGE
    return q, pos % PAGE


@numba.njit(cache=CACHE)
def fill(offs, lens, i, o, a, size_goal, max_frags, strategy, state, region, huge_zero_special, foll_pin, out):
    """sendmsg() of ``a`` bytes from iovec ``i`` at offset ``o``: skbs, frags and (per skb) the GUP calls.
    Returns the iterator position after it."""
    skb_bytes = size_goal  # a new skb first
    frags = max_frags
    last_folio = 0
    last_end = -1
    while a > 0:
        if skb_bytes >= size_goal or frags >= max_frags:
            out[L_SKBS] += 1
            skb_bytes = 0
            frags = 0
            last_end = -1
        req = min(a, size_goal - skb_bytes, lens[i] - o)
        addr = offs[i] + o
        q0 = addr // PAGE
        start = addr % PAGE
        n = min((start + req + PAGE - 1) // PAGE, max_frags - frags)
        copied = min(req, n * PAGE - start)
        if strategy != BATCHED:
            gup(q0, n, state, region, huge_zero_special, foll_pin, out)
        left = copied
        pos = addr
        merging = False
        while left > 0:  # frags: a page continuing the last frag of the same folio merges into it
            q = pos // PAGE
            size = min(left, PAGE - pos % PAGE)
            folio, at = folio_at(q, pos, state, region)
            if frags > 0 and folio == last_folio and at == last_end:
                if not merging:
                    out[L_GIVE] += 1
                merging = True
            else:
                frags += 1
                out[L_FRAGS] += 1
                merging = False
            last_folio = folio
            last_end = at + size
            pos += size
            left -= size
        out[L_SENT] += (start + copied + PAGE - 1) // PAGE
        a -= copied
        skb_bytes += copied
        o += copied
        if o == lens[i]:
            i += 1
            o = 0
    return i, o


@numba.njit(cache=CACHE)
def populate(offs, lens, state, region, huge_zero_wp_thp, out):
    """madvise(MADV_POPULATE_WRITE) over each run of contiguous iovecs: a write fault per page not written."""
    nv = len(offs)
    k = 0
    while k < nv:
        lo = offs[k]
        hi = offs[k] + lens[k]
        while k + 1 < nv and offs[k + 1] == hi:
            k += 1
            hi = offs[k] + lens[k]
        out[L_POP_CALLS] += 1
        for q in range(lo // PAGE, (hi + PAGE - 1) // PAGE):
            r = q // PMD_PAGES
            if region[r] == HUGE_ZERO_REGION:
                if huge_zero_wp_thp:  # do_huge_zero_wp_pmd(): a THP for the whole PMD
                    region[r] = THP_REGION
                    out[L_POP] += PMD_PAGES
                    continue
                region[r] = PTE_REGION  # split: every PTE maps the zero page, then this page's write fault
                for p in range(r * PMD_PAGES, (r + 1) * PMD_PAGES):
                    state[p] = ZERO
            if region[r] == PTE_REGION and state[q] != PRESENT:
                out[L_POP] += 1
                state[q] = PRESENT
        k += 1


@numba.njit(cache=CACHE)
def _lookup(offs, lens, messages, resident, thp_share, huge_zero_share, accept_bytes, strategy, size_goal, max_frags,
            seed, huge_zero_special, huge_zero_wp_thp, foll_pin):
    out = np.zeros(len(LOOKUP_FIELDS), np.int64)
    nv = len(offs)
    region_pages = (offs[nv - 1] + lens[nv - 1] + PAGE - 1) // PAGE
    regions = (region_pages + PMD_PAGES - 1) // PMD_PAGES
    total = 0
    for k in range(nv):
        total += lens[k]
    state = np.zeros(regions * PMD_PAGES, np.int8)
    region = np.zeros(regions, np.int8)
    s = np.uint64(seed)
    for m in range(messages):
        out[L_MSGS] += 1
        for r in range(regions):  # fresh buffers for every message
            u = _u01(s, 2 * (m * regions + r))
            if u < thp_share:
                region[r] = THP_REGION
            elif u < thp_share + huge_zero_share:
                region[r] = HUGE_ZERO_REGION
            else:
                region[r] = PTE_REGION
        for q in range(regions * PMD_PAGES):
            mapped = _u01(s, 2 * (m * regions * PMD_PAGES + q) + 1) < resident
            state[q] = PRESENT if region[q // PMD_PAGES] == THP_REGION or mapped else ABSENT
        if strategy == POPULATE:
            populate(offs, lens, state, region, huge_zero_wp_thp, out)
        i = 0
        o = 0
        left = total
        while left > 0:
            out[L_SENDMSGS] += 1
            a = min(left, accept_bytes)
            if strategy == BATCHED:  # one lookup of the whole remaining iterator, one call per contiguous run
                k = i
                lo = offs[i] + o
                looked = 0
                while k < nv:
                    hi = offs[k] + lens[k]
                    while k + 1 < nv and offs[k + 1] == hi:
                        k += 1
                        hi = offs[k] + lens[k]
                    q0 = lo // PAGE
                    n = (hi + PAGE - 1) // PAGE - q0
                    gup(q0, n, state, region, huge_zero_special, foll_pin, out)
                    looked += n
                    k += 1
                    if k < nv:
                        lo = offs[k]
                before = out[L_SENT]
                i, o = fill(offs, lens, i, o, a, size_goal, max_frags, strategy, state, region, huge_zero_special,
                            foll_pin, out)
                used = out[L_SENT] - before
                if looked > used:
                    out[L_LOCAL] += looked - used
            else:
                i, o = fill(offs, lens, i, o, a, size_goal, max_frags, strategy, state, region, huge_zero_special,
                            foll_pin, out)
            left -= a
            out[L_BYTES] += a
    out[L_REF_AT] += out[L_GIVE] + out[L_LOCAL] + out[L_FRAGS]
    return out


def lookup(iov_count: int, iov_size: int, layout: str = "scattered", messages: int = 1, resident_fraction: float = 1.0,
           thp_share: float = 0.0, accept_fraction: float = 1.0, strategy: str = "per_skb", size_goal: int = 65160,
           max_frags: int = MAX_SKB_FRAGS, seed: int = 1, huge_zero_share: float = 0.0,
           release: str = kernels.NEWEST, foll_pin: bool = False) -> dict:
    """Page-table work of ``messages`` sendmsg() iterators under one strategy; counts of :data:`LOOKUP_FIELDS`.
    ``huge_zero_share``: share of 2 MiB regions mapped by the huge zero PMD; ``release``: the kernel whose rules
    apply (:mod:`.kernels`: ``huge_zero_pmd_special``, ``huge_zero_wp_thp``); ``foll_pin``: the lookups pin."""
    offs, lens, accept = check(iov_count, iov_size, layout, messages, resident_fraction, thp_share, accept_fraction,
                               strategy, size_goal, max_frags, huge_zero_share)
    special, wp_thp = rules(release)
    out = _lookup(offs, lens, int(messages), float(resident_fraction), float(thp_share), float(huge_zero_share),
                  accept, STRATEGIES.index(strategy), int(size_goal), int(max_frags), int(seed) & MASK, special,
                  wp_thp, bool(foll_pin))
    return dict(zip(LOOKUP_FIELDS, (int(x) for x in out)))


def bench_section(args=None) -> dict:
    """``fraglife bench`` section: pages looked up per second, numba against the twin (the same messages)."""
    import time

    def best(fn, repeats):
        out = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            c = fn()
            out.append(time.perf_counter() - t0)
        return min(out), c

    kw = dict(iov_count=16, iov_size=64 * 1024, layout="contiguous", resident_fraction=0.95, strategy="batched")
    lookup(messages=1, **kw)  # compile or load the cache outside the timing
    t_fast, c = best(lambda: lookup(messages=256, **kw), 3)
    t_slow, c_slow = best(lambda: twin.lookup(messages=4, **kw), 1)
    fast = c["pages_looked_up"] / t_fast
    slow = c_slow["pages_looked_up"] / t_slow
    return {"pages_per_s": fast, "twin_pages_per_s": slow, "numba_over_twin": fast / slow,
            "setting": "16 contiguous 64 KiB iovecs, 95 % mapped, one batched lookup"}

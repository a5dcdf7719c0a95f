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
from . import pagetable_twin as twin
from .rng import GOLDEN, MASK, MIX1, MIX2
from .pagetable_twin import (BATCHED, LAYOUTS, LOOKUP_FIELDS, MAX_MESSAGE, MAX_SKB_FRAGS, PAGE, PER_SKB, PMD_PAGES,
                             POPULATE, STRATEGIES, check, iovecs, u01)

(L_MSGS, L_SENDMSGS, L_BYTES, L_SKBS, L_CALLS, L_FAST, L_PMD, L_PMD_PAGES, L_SLOW_CALLS, L_SLOW, L_ZERO, L_POP_CALLS,
 L_POP, L_LOOKED, L_SENT, L_FRAGS, L_LOCAL) = range(len(LOOKUP_FIELDS))

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
def _gup(q0, n, present, thp, out):
    """One get_user_pages_fast() over pages [q0, q0 + n): gup-fast up to the first page it cannot take, the rest
    through the slow path (faulting pages in)."""
    out[L_CALLS] += 1
    out[L_LOOKED] += n
    fast = True
    last_leaf = -1
    for q in range(q0, q0 + n):
        r = q // PMD_PAGES
        if fast:
            if thp[r]:
                if r != last_leaf:
                    out[L_PMD] += 1
                    last_leaf = r
                out[L_PMD_PAGES] += 1
                continue
            if present[q]:
                out[L_FAST] += 1
                continue
            fast = False
            out[L_SLOW_CALLS] += 1
        out[L_SLOW] += 1
        if not present[q] and not thp[r]:
            out[L_ZERO] += 1
            present[q] = True


@numba.njit(cache=CACHE)
def _fill(offs, lens, i, o, a, size_goal, max_frags, strategy, present, thp, out):
    """sendmsg() of ``a`` bytes from iovec ``i`` at offset ``o``: skbs, frags and (per skb) the GUP calls.
    Returns the iterator position after it."""
    skb_bytes = size_goal  # a new skb first
    frags = max_frags
    last_head = -1
    last_end = -1
    while a > 0:
        if skb_bytes >= size_goal or frags >= max_frags:
            out[L_SKBS] += 1
            skb_bytes = 0
            frags = 0
            last_head = -1
            last_end = -1
        req = min(a, size_goal - skb_bytes, lens[i] - o)
        addr = offs[i] + o
        q0 = addr // PAGE
        start = addr % PAGE
        n = min((start + req + PAGE - 1) // PAGE, max_frags - frags)
        copied = min(req, n * PAGE - start)
        if strategy != BATCHED:
            _gup(q0, n, present, thp, out)
        left = copied
        pos = addr
        while left > 0:  # frags: a page continuing the last frag of the same folio merges into it
            q = pos // PAGE
            size = min(left, PAGE - pos % PAGE)
            r = q // PMD_PAGES
            head = r * PMD_PAGES if thp[r] else q
            if not (frags > 0 and head == last_head and pos == last_end):
                frags += 1
                out[L_FRAGS] += 1
            last_head = head
            last_end = pos + size
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
def _lookup(offs, lens, messages, resident, thp_share, accept_bytes, strategy, size_goal, max_frags, seed):
    out = np.zeros(len(LOOKUP_FIELDS), np.int64)
    nv = len(offs)
    region_pages = (offs[nv - 1] + lens[nv - 1] + PAGE - 1) // PAGE
    regions = (region_pages + PMD_PAGES - 1) // PMD_PAGES
    total = 0
    for k in range(nv):
        total += lens[k]
    present = np.zeros(regions * PMD_PAGES, np.bool_)
    thp = np.zeros(regions, np.bool_)
    s = np.uint64(seed)
    for m in range(messages):
        out[L_MSGS] += 1
        for r in range(regions):  # fresh buffers for every message
            thp[r] = _u01(s, 2 * (m * regions + r)) < thp_share
        for q in range(regions * PMD_PAGES):
            present[q] = thp[q // PMD_PAGES] or _u01(s, 2 * (m * regions * PMD_PAGES + q) + 1) < resident
        if strategy == POPULATE:
            k = 0
            while k < nv:  # one madvise() per run of contiguous iovecs
                lo = offs[k]
                hi = offs[k] + lens[k]
                while k + 1 < nv and offs[k + 1] == hi:
                    k += 1
                    hi = offs[k] + lens[k]
                out[L_POP_CALLS] += 1
                for q in range(lo // PAGE, (hi + PAGE - 1) // PAGE):
                    if not present[q]:
                        out[L_POP] += 1
                        present[q] = True
                k += 1
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
                    _gup(q0, n, present, thp, out)
                    looked += n
                    k += 1
                    if k < nv:
                        lo = offs[k]
                before = out[L_SENT]
                i, o = _fill(offs, lens, i, o, a, size_goal, max_frags, strategy, present, thp, out)
                used = out[L_SENT] - before
                if looked > used:
                    out[L_LOCAL] += looked - used
            else:
                i, o = _fill(offs, lens, i, o, a, size_goal, max_frags, strategy, present, thp, out)
            left -= a
            out[L_BYTES] += a
    return out


def lookup(iov_count: int, iov_size: int, layout: str = "scattered", messages: int = 1, resident_fraction: float = 1.0,
           thp_share: float = 0.0, accept_fraction: float = 1.0, strategy: str = "per_skb", size_goal: int = 65160,
           max_frags: int = MAX_SKB_FRAGS, seed: int = 1) -> dict:
    """Page-table work of ``messages`` sendmsg() iterators under one strategy; counts of :data:`LOOKUP_FIELDS`."""
    offs, lens, accept = check(iov_count, iov_size, layout, messages, resident_fraction, thp_share, accept_fraction,
                                strategy, size_goal, max_frags)
    out = _lookup(offs, lens, int(messages), float(resident_fraction), float(thp_share), accept,
                  STRATEGIES.index(strategy), int(size_goal), int(max_frags), int(seed) & MASK)
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

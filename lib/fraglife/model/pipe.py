"""A pipe's ring of ``pipe_buffer``s between a source and a socket over time (chapter 05), compiled.

:func:`simulate` runs in numba the loop :mod:`.pipe_twin` states in plain Python (the specification,
with the pipe's rules, the sources and the rules compared; tests/test_pipe.py compares them); the
definitions both share are the twin's, re-exported here. :func:`summary` and :func:`holders` read
its rows.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ..jit import CACHE
from . import pipe_twin as twin
from .pipe_twin import (BUFFER_OPS, FILL, GUP_BATCH, N_R, OWNER, PAGE_SIZE, PAGEVEC_SIZE, PIPE_DEF_BUFFERS,
                        PIPE_HOLDS, PIPE_MAX_SIZE, R_DONE, R_EARLY, R_PAGES, R_ROUND, R_SEND, R_WIRE_END, RULES,
                        SOURCES, SPLICE_BVECS, TCP_WMEM_MAX, TODAY, check, check_fill, sendmsg_pages)



@njit(cache=CACHE, _nrt=False, error_model="numpy")
def _retire(R, t, st):
    """Drop the sendmsg()s the network let go of by ``t``: st = [n rows, oldest, inflight]."""
    while st[1] < st[0] and R[st[1], R_DONE] <= t:
        st[2] -= R[st[1], R_PAGES]
        st[1] += 1


@njit(cache=CACHE, _nrt=False, error_model="numpy")
def _simulate(n_pages, ring, splice_pages, wire_ps, done_ps, sndbuf_pages, rule, reuse_wait, R, st):
    """pipe_twin.simulate()'s loop over preallocated rows ``R``; st = [rows, oldest, inflight]."""
    now = 0
    wire_free = 0
    left = n_pages
    rnd = 0
    prev_round_done = 0
    prev_first = 0
    while left > 0:
        if reuse_wait:
            now = max(now, prev_round_done)
        early = 0
        if rnd > 0 and not reuse_wait:
            for i in range(prev_first, st[0]):
                if R[i, R_ROUND] == rnd - 1 and R[i, R_DONE] > now:
                    early += R[i, R_PAGES]
        chunk = min(splice_pages, left)
        first_row = st[0]
        while chunk > 0:
            _retire(R, now, st)
            used = st[2] if rule == PIPE_HOLDS else 0
            while used >= ring:
                now = R[st[1], R_DONE]
                _retire(R, now, st)
                used = st[2]
            fill = min(ring - used, chunk)
            while fill > 0:
                k = min(SPLICE_BVECS, fill)
                _retire(R, now, st)
                while st[2] + k > sndbuf_pages and st[1] < st[0]:
                    now = R[st[1], R_DONE]
                    _retire(R, now, st)
                start = max(now, wire_free)
                end = start + k * wire_ps
                wire_free = end
                n = st[0]
                R[n, R_SEND] = now
                R[n, R_PAGES] = k
                R[n, R_WIRE_END] = end
                R[n, R_DONE] = end + done_ps
                R[n, R_ROUND] = rnd
                R[n, R_EARLY] = 0
                st[0] = n + 1
                st[2] += k
                fill -= k
                chunk -= k
                left -= k
        if st[0] > first_row:
            R[first_row, R_EARLY] = early
            prev_round_done = R[st[0] - 1, R_DONE]
            prev_first = first_row
        rnd += 1


def simulate(n_pages: int, ring: int, splice_pages: int, wire_ps: int, done_ps: int, sndbuf_pages: int,
             rule: int, reuse_wait: bool = False) -> np.ndarray:
    """One row per ``sendmsg()`` (columns ``R_*``), compiled; the same rows as ``pipe_twin.simulate``."""
    check(n_pages, ring, splice_pages, wire_ps, done_ps, sndbuf_pages, rule, reuse_wait)
    R = np.zeros((max(int(n_pages), 1), N_R), dtype=np.int64)  # at most one sendmsg() per page
    st = np.zeros(3, dtype=np.int64)
    _simulate(int(n_pages), int(ring), int(splice_pages), int(wire_ps), int(done_ps), int(sndbuf_pages), int(rule),
              bool(reuse_wait), R, st)
    return R[:st[0]].copy()


@njit(cache=CACHE, _nrt=False, error_model="numpy")
def _filemap_fill(folios, call_pages, n_pages, out):
    """pipe_twin.filemap_fill()'s loop; out = the FILL totals."""
    f = 0
    pos = 0
    start = 0
    while start < n_pages:
        end = min(n_pages, start + call_pages)
        while pos + folios[f] <= start:
            pos += folios[f]
            f += 1
        n = 0
        g = f
        p = pos
        while p < end:
            n += 1
            p += folios[g]
            g += 1
        out[0] += 1
        out[1] += (n + PAGEVEC_SIZE - 1) // PAGEVEC_SIZE
        out[2] += n
        start = end
    out[3] = n_pages
    out[4] = 2 * out[2] + n_pages


def filemap_fill(folios, call_pages: int, n_pages: int) -> np.ndarray:
    """The pipe's fill from the page cache (:data:`FILL` totals), compiled; the same as ``pipe_twin.filemap_fill``."""
    check_fill(folios, call_pages, n_pages)
    out = np.zeros(len(FILL), dtype=np.int64)
    _filemap_fill(np.ascontiguousarray(folios, dtype=np.int64), int(call_pages), int(n_pages), out)
    return out


def folio_layout(pages_per_folio: dict, n_pages: int | None = None) -> np.ndarray:
    """Pages per folio in file order from a census ``{pages per folio: count}`` (kcount_filemap's ``cached``),
    smallest first, as readahead's ramp lays a file out (page_cache_ra_order(), mm/readahead.c), repeated to
    cover ``n_pages`` if given."""
    one = np.concatenate([np.full(int(n), int(k), dtype=np.int64)
                          for k, n in sorted((int(k), int(n)) for k, n in pages_per_folio.items()) if n > 0])
    if n_pages is None or one.sum() >= n_pages:
        return one
    return np.tile(one, -(-int(n_pages) // int(one.sum())))


def summary(R: np.ndarray) -> dict:
    """Throughput, how long the network holds a page (W), how many it holds on average (L = throughput x W,
    Little's law), and the pages rewritten while the network held them."""
    if len(R) == 0:
        return {"sendmsgs": 0, "pages": 0, "seconds": 0.0, "gbit_per_s": 0.0, "hold_us": 0.0,
                "mean_inflight_pages": 0.0, "early_pages": 0, "pages_per_sendmsg": 0.0}
    pages = int(R[:, R_PAGES].sum())
    t_end = int(R[:, R_DONE].max())
    seconds = t_end * 1e-12
    held = float((R[:, R_PAGES] * (R[:, R_DONE] - R[:, R_SEND])).sum())  # page-picoseconds
    return {"sendmsgs": len(R), "pages": pages, "seconds": seconds,
            "gbit_per_s": pages * PAGE_SIZE * 8 / seconds / 1e9 if seconds else 0.0,
            "hold_us": held / pages * 1e-6, "mean_inflight_pages": held / t_end if t_end else 0.0,
            "early_pages": int(R[:, R_EARLY].sum()), "pages_per_sendmsg": pages / len(R)}


def holders(R: np.ndarray, rule: int, times: np.ndarray) -> dict[str, np.ndarray]:
    """Pages held at each of ``times`` (ps), by holder: the pipe's slots, skb page refs, the owner."""
    send, done, pages = R[:, R_SEND], R[:, R_DONE], R[:, R_PAGES]
    live = (send[None, :] <= times[:, None]) & (times[:, None] < done[None, :])
    held = (live * pages[None, :]).sum(axis=1)
    zero = np.zeros_like(held)
    return {"pipe slots": held if rule == PIPE_HOLDS else zero,
            "skb page refs": held if rule == TODAY else zero,
            "owner": held if rule == OWNER else zero}


def bench_section(args) -> dict:
    """``fraglife bench`` section: sendmsg() rows per second, compiled and twin, on one long transfer."""
    import time

    kw = dict(n_pages=1 << 18, ring=16, splice_pages=16, wire_ps=327_680, done_ps=50_000_000, sndbuf_pages=1024,
              rule=PIPE_HOLDS)
    simulate(**dict(kw, n_pages=64))  # load or compile outside the timing
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        R = simulate(**kw)
        best = min(best, time.perf_counter() - t0)
    twin_kw = dict(kw, n_pages=1 << 13)
    t0 = time.perf_counter()
    Rt = twin.simulate(**twin_kw)
    t_twin = time.perf_counter() - t0
    rate, twin_rate = len(R) / best, len(Rt) / t_twin
    return {"rows": len(R), "rows_per_s": rate, "twin_rows_per_s": twin_rate, "numba_over_twin": rate / twin_rate}

"""The workload generators, compiled: the same kernel paths as the Python generators in
:mod:`.workloads_twin` (their twins, and the specification), written for speed.

This is the module the package imports: ``workloads.generate("tcp_send", ...)``. The
definitions both implementations share (:class:`Config`, the constants, :data:`WORKLOADS`,
:data:`EXTRA`, :data:`ALL`) live in the twin and are re-exported here by name; the
compiled generators set themselves up from the twin's public functions of the config.

Same parameters and seed, same trace: event for event, field for field, and the same
stats (tests/test_workloads_differential.py checks it with hypothesis over the parameter
space). Random numbers come from :mod:`fraglife.model.rng`'s splitmix64, drawn in the
twin's order. :func:`generate_columns` and :func:`generate_and_replay` hand the compiled
generator's columns to the engine with no copy.

Layout follows the engine (engine.py): the Python driver allocates everything, the
compiled loops allocate nothing (``_nrt=False``), state lives in 2-D int64 arrays with
one row per field (the sender's in one array ``S``, rows :data:`SENDER_ROWS`; a call
that passes fewer arrays costs less), scalars and the splitmix64 state in ``M``, the
parameters in ``P`` and ``F``. What the twin keeps in dicts and lists becomes:

* id freelists (skbs, buffers, ubuf_infos, page ranges): LIFO stacks in a row plus a top
  and a high-water mark in ``M``, so ids come out in the twin's order;
* the stack of free send slots: the slots given back, above a counter over the newest
  region's untaken slots (the twin pushes a whole region's slots at once);
* per-send state (users, queued, ubuf_info, memory slot): a ring indexed by ``b & mask``
  whose ``TAG`` row says which send owns the entry;
* an skb's stream range, its clone in flight, its receive-side buffers: rows indexed by skb id;
* a ubuf_info's sends: its sends are consecutive (``msg_zerocopy_realloc()`` only extends the
  uarg of the send just before), so a first and a last index;
* the pending TX completions and ACKs: rings, with the devices' skbs of each completion in
  one more ring.

Every fixed capacity is sized from the parameters. If one proves too small the kernel sets a
bit in ``M[M_STATUS]``, writes nothing out of bounds, stops at the next send, and the driver
doubles that capacity and runs again (traces are deterministic, so the rerun is the same
trace). The event arrays are the exception: past their capacity the kernel only counts, and
the driver runs once more into arrays of the exact length.

Events are written either as columns grouped by width (``E8`` op, kind; ``E16`` cpu;
``E32`` skb, other, buf; ``E64`` pfn, off, len), each row of a C-contiguous 2-D array a
contiguous column the engine replays as it is, or (``M[M_TRACE]``) straight into a
:data:`fraglife.model.trace.EVENT` array seen as five int64 words per event. Either way
40 bytes per event and no copy; one compiled kernel serves both.

Compile time (this machine, cold cache): the sender about 26 s, the receiver about 4 s;
``cache=True`` keeps them (loading takes about 0.15 s).
"""

from __future__ import annotations

import math
import sys

import numpy as np
from numba import njit

from ..jit import CACHE
from . import rng as RNG
from . import trace as T
from . import workloads_twin as W
from .workloads_twin import (ALL, DEVMEM_DMABUF_PAGES, EXTRA, GSO_LEGACY_MAX_SIZE, GSO_MAX_SIZE,
                             KMALLOC_MAX_CACHE_SIZE, MAX_TCP_HEADER, MEMORIES, NAPI_BUDGET, PAGE_FRAG_PAGES,
                             SENDERS, SERVICES, SKB_DEFER_MAX, SPLICE_BVECS, STATS, TODAY, UARG_BYTE_LIMIT,
                             UARG_LEN_LIMIT, WORKLOADS, Config, KiB, Workload, rx_layout)

PAGE = T.PAGE_SIZE
ALLOC, SKB_ALLOC, ATTACH, CLONE, SPLIT, SEGMENT = 0, 1, 2, 3, 4, 5
EXPAND_HEAD, COALESCE, PULL, ZC_COMPLETE, FREE, BUF_RELEASE = 6, 7, 8, 9, 10, 11
UARG_GET, UARG_PUT, GROW = 12, 13, 14
assert (ALLOC, SKB_ALLOC, ATTACH, CLONE, SPLIT, SEGMENT, EXPAND_HEAD, COALESCE, PULL, ZC_COMPLETE, FREE,
        BUF_RELEASE, UARG_GET, UARG_PUT, GROW) == tuple(range(T.N_OPS))
# the event columns: (array, row) per field of trace.EVENT
COLUMNS = {"op": (0, 0), "kind": (0, 1), "cpu": (1, 0), "skb": (2, 0), "other": (2, 1), "buf": (2, 2),
           "pfn": (3, 0), "off": (3, 1), "len": (3, 2)}
WIDTHS = ((np.uint8, 2), (np.uint16, 1), (np.int32, 3), (np.int64, 3))
assert set(COLUMNS) == set(T.EVENT.names)
assert all(T.EVENT[name] == WIDTHS[a][0] for name, (a, _r) in COLUMNS.items())

# splitmix64 constants as uint64, so no arithmetic mixes signed and unsigned
_GOLDEN, _MIX1, _MIX2 = np.uint64(RNG.GOLDEN), np.uint64(RNG.MIX1), np.uint64(RNG.MIX2)
_S30, _S27, _S31, _S11 = np.uint64(30), np.uint64(27), np.uint64(31), np.uint64(11)
_INV53 = 1.0 / (1 << 53)

# Memory modes of the sender (the twin's ``memory``), by their index in MEMORIES.
MEMORY = {name: i for i, name in enumerate(MEMORIES)}
MEM_U, MEM_DEV, MEM_PIPE_, MEM_PHYS, MEM_FRAG = 0, 1, 2, 3, 4
assert (MEM_U, MEM_DEV, MEM_PIPE_, MEM_PHYS, MEM_FRAG) == tuple(
    MEMORY[m] for m in ("user", "devmem", "pipe", "physrange", "page_frag"))
T_MEM_PAGE_FRAG = T.MEM_PAGE_FRAG
UARG_ACCOUNT, UARG_DEVMEM = T.UARG_ACCOUNT, T.UARG_DEVMEM
FREE_DEFERRED, FREE_FLUSH, FREE_FULL = T.FREE_DEFERRED, T.FREE_FLUSH, T.FREE_FULL
FRAG_MAX, FRAG_PAGES = T.PAGE_FRAG_CACHE_MAX_SIZE, T.PAGE_FRAG_CACHE_MAX_SIZE // T.PAGE_SIZE

# P: integer parameters.
(P_MEMORY, P_TSO, P_ZEROCOPY, P_MSS, P_SEND_SIZE, P_FRAG_SIZE, P_BYTES, P_APP_CPU, P_TXC_CPU, P_RX_CPU,
 P_SIZE_GOAL, P_SEND_PAGES, P_FOLIO_PAGES, P_REGION_PAGES, P_INFLIGHT, P_TXC_LAG, P_ACK_EVERY, P_MAX_FRAGS,
 P_ALLOC_KIND, P_UARG_LIMIT, P_RX_KIND, P_RX_PAGES, P_RX_PER_PAGE, P_RX_HOLE, P_GSO_LIMIT, P_NAPI,
 P_SEND_KIND, P_SEND_ALLOC_PAGES, P_SEND_PAGE_ALLOCS, P_ACCOUNT, P_BATCH, P_UARG_LEN, P_DEFER_ON, P_LOCKLESS,
 P_DEFER_MAX) = range(35)
N_P = 35
# F: float parameters.
F_LOSS, F_START, F_STAY, F_TAIL = range(4)

# M: scalars.
(M_N, M_STATUS, M_SENT, M_SKB, M_SKB_FRAGS, M_SKB_UARG, M_LF_VALID, M_LF_BUF, M_LF_HEAD, M_LF_OFF, M_LF_U,
 M_CUR_UARG, M_UARG_BYTES, M_PREV_LOST, M_SKB_NEXT, M_SKB_TOP, M_BUF_NEXT, M_BUF_TOP, M_UARG_NEXT, M_UARG_TOP,
 M_PAGE_NEXT, M_PAGE_TOP, M_SLOT_TOP, M_N_REGIONS, M_TXQ_HEAD, M_TXQ_N, M_DEVQ_HEAD, M_DEVQ_N, M_ACKQ_HEAD,
 M_ACKQ_N, M_PINS, M_SENDMSG, M_TRANSMISSIONS, M_RETRANSMITS, M_GSO_SEGMENTS, M_LOST_SEGMENTS,
 M_PACKETS, M_TRACE, M_RNG, M_FRESH_BUF, M_FRESH_PFN, M_FRESH_K, M_FRESH_N, M_PAGE_ALLOCS, M_FRAG_REUSES,
 M_FRAG_SEQ, M_FRAG_LEFT, M_FRAG_N, M_CALL_LEFT, M_IN_PASS, M_PASSES, M_NO_TAIL, M_NOTIFS, M_DEFERRED, M_DEFER_N,
 M_DEFER_COUNT) = range(56)
N_M = 56
STAT_SLOTS = dict(zip(("sendmsg", "transmissions", "retransmits", "gso_segments", "lost_segments", "packets",
                       "page_allocs", "frag_reuses", "passes", "no_tail", "notifications", "deferred"),
                      (*range(M_SENDMSG, M_PACKETS + 1), M_PAGE_ALLOCS, M_FRAG_REUSES, M_PASSES, M_NO_TAIL,
                       M_NOTIFS, M_DEFERRED)))
assert tuple(STAT_SLOTS) == STATS

# Status bits: which capacity was too small.
OVF_SKB, OVF_SEND, OVF_UARG, OVF_BUF, OVF_SLOT, OVF_QUEUE, OVF_SEG, OVF_FRAG = 1, 2, 4, 8, 16, 32, 64, 128
OVERFLOW = {OVF_SKB: "skb", OVF_SEND: "send", OVF_UARG: "uarg", OVF_BUF: "buf", OVF_SLOT: "slot",
            OVF_QUEUE: "queue", OVF_SEG: "seg", OVF_FRAG: "frag"}

# The sender's state: one 2-D int64 array S, one row per field, every row as long as the largest
# capacity (a power of two, so rings wrap with a mask); few arguments keep calls cheap.
SENDER_ROWS = (
    "SK_LO", "SK_HI", "SK_CLONE", "SK_FREE",  # per skb id: stream range, clone in flight; the id freelist
    "SD_TAG", "SD_USERS", "SD_QUEUED", "SD_UARG", "SD_BUF", "SD_BASE", "SD_FIRST",  # per send, a ring
    "UA_FIRST", "UA_LAST", "UA_PENDING", "UA_FREE",  # per ubuf_info id: its sends; the id freelist
    "BF_FREE", "BF_PAGE_FREE", "BF_REGION",  # buffer id and page-range freelists; the regions mapped
    "SL_BUF", "SL_PFN", "SL_FIRST",  # send slots given back, a stack
    "Q_TXQ_DUE", "Q_TXQ_S", "Q_TXQ_START", "Q_TXQ_CNT", "Q_ACK_DUE", "Q_ACK_S", "Q_DEV",  # rings
    "LS",  # scratch: which segments of an acknowledged skb were lost
    # page_frag memory: a send's cache pages (sequence numbers, first and last); the cache pages, a ring by
    # sequence number; the current send's fragments (scratch)
    "SD_CP0", "SD_CP1", "CP_TAG", "CP_BUF", "CP_PFN", "CP_PENDING", "CP_DRAINED", "FR_BUF", "FR_PFN", "FR_OFF",
    "FR_LEN",
)
(SK_LO, SK_HI, SK_CLONE, SK_FREE, SD_TAG, SD_USERS, SD_QUEUED, SD_UARG, SD_BUF, SD_BASE, SD_FIRST, UA_FIRST,
 UA_LAST, UA_PENDING, UA_FREE, BF_FREE, BF_PAGE_FREE, BF_REGION, SL_BUF, SL_PFN, SL_FIRST, Q_TXQ_DUE, Q_TXQ_S,
 Q_TXQ_START, Q_TXQ_CNT, Q_ACK_DUE, Q_ACK_S, Q_DEV, LS, SD_CP0, SD_CP1, CP_TAG, CP_BUF, CP_PFN, CP_PENDING,
 CP_DRAINED, FR_BUF, FR_PFN, FR_OFF, FR_LEN) = range(len(SENDER_ROWS))
# The receiver's buffers: BF, one row per field.
RB_FREE, RB_PAGE_FREE, RB_PFN, RB_FRAGS, RB_RELEASED = range(5)

_JIT = dict(cache=CACHE, _nrt=False, error_model="numpy")


# ---------------------------------------------------------------- small helpers (inlined)
@njit(inline="always", **_JIT)
def _rand(M):
    """SplitMix64.random(): the next float in [0, 1); the state is M[M_RNG]'s 64 bits."""
    z = np.uint64(M[M_RNG]) + _GOLDEN
    M[M_RNG] = np.int64(z)
    z = (z ^ (z >> _S30)) * _MIX1
    z = (z ^ (z >> _S27)) * _MIX2
    z = z ^ (z >> _S31)
    return float(z >> _S11) * _INV53


@njit(inline="always", **_JIT)
def _ev(M, E8, E16, E32, E64, op, kind, cpu, skb, other, buf, pfn, off, ln):
    """Append one event (TraceBuilder._add); past the capacity only count."""
    n = M[M_N]
    if M[M_TRACE]:  # E64 is a trace.EVENT array seen as five int64 words per event (see _pack)
        if n < E64.shape[0]:
            E64[n, 0] = op | (kind << 8) | (cpu << 16) | (skb << 32)
            E64[n, 1] = (other & 0xFFFFFFFF) | (buf << 32)
            E64[n, 2] = pfn
            E64[n, 3] = off
            E64[n, 4] = ln
    elif n < E8.shape[1]:
        E8[0, n] = op
        E8[1, n] = kind
        E16[0, n] = cpu
        E32[0, n] = skb
        E32[1, n] = other
        E32[2, n] = buf
        E64[0, n] = pfn
        E64[1, n] = off
        E64[2, n] = ln
    M[M_N] = n + 1
    # pin records a replay may need (engine.pin_capacity), counted as we go
    if op == ATTACH:
        M[M_PINS] += ((off + ln - 1) >> 12) - (off >> 12) + 1
    elif op == GROW:
        M[M_PINS] += ((ln - 1) >> 12) + 2


@njit(inline="always", **_JIT)
def _id_get(M, A, row, top, nxt, ovf):
    """_Ids.get(): the last id put back, else a new one."""
    t = M[top]
    if t > 0:
        M[top] = t - 1
        return A[row, t - 1]
    i = M[nxt]
    M[nxt] = i + 1
    if i >= A.shape[1]:
        M[M_STATUS] |= ovf
        return A.shape[1] - 1
    return i


@njit(inline="always", **_JIT)
def _id_put(M, A, row, top, i):
    t = M[top]
    if t < A.shape[1]:
        A[row, t] = i
    M[top] = t + 1


@njit(inline="always", **_JIT)
def _page_get(M, A, row, n):
    """_Pages.get() for the one range size a generator uses."""
    t = M[M_PAGE_TOP]
    if t > 0:
        M[M_PAGE_TOP] = t - 1
        return A[row, t - 1]
    p = M[M_PAGE_NEXT]
    M[M_PAGE_NEXT] = p + n
    return p


# ---------------------------------------------------------------- the sender
@njit(inline="always", **_JIT)
def _new_skb(P, M, S, lo, hi):
    s = _id_get(M, S, SK_FREE, M_SKB_TOP, M_SKB_NEXT, OVF_SKB)
    S[SK_LO, s] = lo
    S[SK_HI, s] = hi
    S[SK_CLONE, s] = -1
    if hi > lo:
        ssz = P[P_SEND_SIZE]
        mask = S.shape[1] - 1
        for b in range(lo // ssz, (hi - 1) // ssz + 1):
            S[SD_USERS, b & mask] += 1
    return s


@njit(**_JIT)
def _try_complete(P, M, S, E8, E16, E32, E64, u):
    """__msg_zerocopy_callback() has run: the application reads it and may reuse the sends' memory."""
    if S[UA_PENDING, u] != 0 or u == M[M_CUR_UARG]:
        return
    _ev(M, E8, E16, E32, E64, ZC_COMPLETE, 0, P[P_APP_CPU], -1, u, -1, -1, 0, 0)
    mask = S.shape[1] - 1
    for b in range(S[UA_FIRST, u], S[UA_LAST, u] + 1):
        j = b & mask
        t = M[M_SLOT_TOP]
        if t < S.shape[1]:
            S[SL_BUF, t] = S[SD_BUF, j]
            S[SL_PFN, t] = S[SD_BASE, j]
            S[SL_FIRST, t] = S[SD_FIRST, j]
        else:
            M[M_STATUS] |= OVF_SLOT
        M[M_SLOT_TOP] = min(t + 1, S.shape[1])
        S[SD_TAG, j] = -1
    _id_put(M, S, UA_FREE, M_UARG_TOP, u)


@njit(inline="always", **_JIT)
def _frag_recycle(M, S, k):
    """The twin's _frag_recycle(): a cache page the cache left, whose sends are all done, is free."""
    j = k & (S.shape[1] - 1)
    if S[CP_DRAINED, j] == 1 and S[CP_PENDING, j] == 0:
        _id_put(M, S, BF_FREE, M_BUF_TOP, S[CP_BUF, j])
        _id_put(M, S, BF_PAGE_FREE, M_PAGE_TOP, S[CP_PFN, j])
        S[CP_TAG, j] = -1
        S[CP_DRAINED, j] = 0


@njit(**_JIT)
def _frag_alloc(P, M, S, E8, E16, E32, E64, n):
    """The twin's _frag_alloc(): page_frag_alloc() of ``n`` bytes; returns the cache page's sequence number
    (the fragment's offset is then M[M_FRAG_LEFT])."""
    cpu = P[P_APP_CPU]
    mask = S.shape[1] - 1
    k = M[M_FRAG_SEQ]
    if k < 0 or M[M_FRAG_LEFT] < n:
        reused = False
        if k >= 0 and M[M_FRAG_N] == 0:  # the page holds none of this send's fragments: drop its bias now
            _ev(M, E8, E16, E32, E64, BUF_RELEASE, 0, cpu, -1, -1, S[CP_BUF, k & mask], -1, 0, 0)
            S[CP_DRAINED, k & mask] = 1
            reused = S[CP_PENDING, k & mask] == 0
            _frag_recycle(M, S, k)
        buf = _id_get(M, S, BF_FREE, M_BUF_TOP, M_BUF_NEXT, OVF_BUF)
        pfn = _page_get(M, S, BF_PAGE_FREE, FRAG_PAGES)
        if reused:
            M[M_FRAG_REUSES] += 1
        else:
            M[M_PAGE_ALLOCS] += 1
        _ev(M, E8, E16, E32, E64, ALLOC, T_MEM_PAGE_FRAG, cpu, -1, -1, buf, pfn, FRAG_PAGES, FRAG_PAGES)
        k += 1
        j = k & mask
        if S[CP_TAG, j] != -1:
            M[M_STATUS] |= OVF_FRAG
        S[CP_TAG, j] = k
        S[CP_BUF, j] = buf
        S[CP_PFN, j] = pfn
        S[CP_PENDING, j] = 0
        S[CP_DRAINED, j] = 0
        M[M_FRAG_SEQ] = k
        M[M_FRAG_LEFT] = FRAG_MAX
    M[M_FRAG_LEFT] -= n
    return k


@njit(inline="always", **_JIT)
def _drop_user(P, M, S, E8, E16, E32, E64, b):
    """One skb fewer references send ``b``; if none does and all of it was queued, it is done."""
    j = b & (S.shape[1] - 1)
    S[SD_USERS, j] -= 1
    if S[SD_USERS, j] != 0 or S[SD_QUEUED, j] == 0:
        return
    S[SD_QUEUED, j] = 0
    if P[P_ZEROCOPY]:
        u = S[SD_UARG, j]
        S[UA_PENDING, u] -= 1
        _try_complete(P, M, S, E8, E16, E32, E64, u)
    elif P[P_MEMORY] == MEM_FRAG:
        for k in range(S[SD_CP0, j], S[SD_CP1, j] + 1):
            S[CP_PENDING, k & (S.shape[1] - 1)] -= 1
            _frag_recycle(M, S, k)
        S[SD_TAG, j] = -1
    else:
        _id_put(M, S, BF_FREE, M_BUF_TOP, S[SD_BUF, j])
        _id_put(M, S, BF_PAGE_FREE, M_PAGE_TOP, S[SD_BASE, j])
        S[SD_TAG, j] = -1


@njit(**_JIT)
def _maybe_done(P, M, S, E8, E16, E32, E64, b):
    S[SD_USERS, b & (S.shape[1] - 1)] += 1
    _drop_user(P, M, S, E8, E16, E32, E64, b)


@njit(inline="always", **_JIT)
def _set_range(P, M, S, E8, E16, E32, E64, s, lo, hi):
    """The twin's _set_range(): users of sends newly covered first, then drops of sends left, ascending."""
    ssz = P[P_SEND_SIZE]
    mask = S.shape[1] - 1
    olo, ohi = S[SK_LO, s], S[SK_HI, s]
    S[SK_LO, s] = lo
    S[SK_HI, s] = hi
    a0, a1 = 0, -1
    if ohi > olo:
        a0, a1 = olo // ssz, (ohi - 1) // ssz
    b0, b1 = 0, -1
    if hi > lo:
        b0, b1 = lo // ssz, (hi - 1) // ssz
    if a1 < a0:
        for b in range(b0, b1 + 1):
            S[SD_USERS, b & mask] += 1
    else:
        for b in range(b0, min(b1, a0 - 1) + 1):
            S[SD_USERS, b & mask] += 1
        for b in range(max(b0, a1 + 1), b1 + 1):
            S[SD_USERS, b & mask] += 1
        if b1 < b0:
            for b in range(a0, a1 + 1):
                _drop_user(P, M, S, E8, E16, E32, E64, b)
        else:
            for b in range(a0, min(a1, b0 - 1) + 1):
                _drop_user(P, M, S, E8, E16, E32, E64, b)
            for b in range(max(a0, b1 + 1), a1 + 1):
                _drop_user(P, M, S, E8, E16, E32, E64, b)


@njit(inline="always", **_JIT)
def _free_skb(P, M, S, E8, E16, E32, E64, cpu, s):
    _ev(M, E8, E16, E32, E64, FREE, 0, cpu, s, -1, -1, -1, 0, 0)
    S[SK_CLONE, s] = -1  # a clone still in flight outlives its original
    lo, hi = S[SK_LO, s], S[SK_HI, s]
    _id_put(M, S, SK_FREE, M_SKB_TOP, s)
    if hi > lo:
        ssz = P[P_SEND_SIZE]
        for b in range(lo // ssz, (hi - 1) // ssz + 1):
            _drop_user(P, M, S, E8, E16, E32, E64, b)


@njit(inline="always", **_JIT)
def _consume(P, M, S, E8, E16, E32, E64, cpu, s, dev):
    if S[SK_CLONE, s] == dev:
        S[SK_CLONE, s] = -1
    _free_skb(P, M, S, E8, E16, E32, E64, cpu, dev)


@njit(**_JIT)
def _transmit(P, M, S, E8, E16, E32, E64, s, due):
    """__tcp_transmit_skb(): clone for the device (pskb_copy if still cloned); GSO if no TSO."""
    cpu = P[P_APP_CPU]
    mss = P[P_MSS]
    lo, hi = S[SK_LO, s], S[SK_HI, s]
    M[M_TRANSMISSIONS] += 1
    dev = _new_skb(P, M, S, lo, hi)
    if S[SK_CLONE, s] >= 0:
        _ev(M, E8, E16, E32, E64, SEGMENT, 0, cpu, dev, s, -1, -1, 0, hi - lo)
    else:
        _ev(M, E8, E16, E32, E64, CLONE, 0, cpu, dev, s, -1, -1, 0, 0)
        S[SK_CLONE, s] = dev
    cap = S.shape[1]
    mask = cap - 1
    start = M[M_DEVQ_HEAD] + M[M_DEVQ_N]
    cnt = 0
    if P[P_TSO] == 0 and hi - lo > mss:
        for st in range(0, hi - lo, mss):
            seg = _new_skb(P, M, S, lo + st, min(hi, lo + st + mss))
            _ev(M, E8, E16, E32, E64, SEGMENT, 0, cpu, seg, dev, -1, -1, st, min(mss, hi - lo - st))
            if M[M_DEVQ_N] + cnt < cap:
                S[Q_DEV, (start + cnt) & mask] = seg
                cnt += 1
            else:
                M[M_STATUS] |= OVF_QUEUE
            M[M_GSO_SEGMENTS] += 1
        _consume(P, M, S, E8, E16, E32, E64, cpu, s, dev)
    else:
        if M[M_DEVQ_N] < cap:
            S[Q_DEV, start & mask] = dev
            cnt = 1
        else:
            M[M_STATUS] |= OVF_QUEUE
    M[M_DEVQ_N] += cnt
    n = M[M_TXQ_N]
    if n < cap:
        k = (M[M_TXQ_HEAD] + n) & mask
        S[Q_TXQ_DUE, k] = due
        S[Q_TXQ_S, k] = s
        S[Q_TXQ_START, k] = start
        S[Q_TXQ_CNT, k] = cnt
        M[M_TXQ_N] = n + 1
    else:
        M[M_STATUS] |= OVF_QUEUE


@njit(inline="always", **_JIT)
def _lost(F, M):
    """Whether the next segment in stream order is lost (runs of losses per Config.loss_chain)."""
    p = F[F_STAY] if M[M_PREV_LOST] else F[F_START]
    lost = _rand(M) < p
    M[M_PREV_LOST] = 1 if lost else 0
    return lost


@njit(inline="always", **_JIT)
def _unclone(P, M, S, E8, E16, E32, E64, s):
    if S[SK_CLONE, s] >= 0:
        _ev(M, E8, E16, E32, E64, EXPAND_HEAD, 0, P[P_RX_CPU], s, -1, -1, -1, 0, 0)  # skb_unclone()
        S[SK_CLONE, s] = -1


@njit(inline="always", **_JIT)
def _trim(P, M, S, E8, E16, E32, E64, s, upto):
    lo, hi = S[SK_LO, s], S[SK_HI, s]
    if upto <= lo:
        return
    _unclone(P, M, S, E8, E16, E32, E64, s)
    _ev(M, E8, E16, E32, E64, PULL, 0, P[P_RX_CPU], s, -1, -1, -1, 0, upto - lo)
    _set_range(P, M, S, E8, E16, E32, E64, s, upto, hi)


@njit(**_JIT)
def _retransmit(P, F, M, S, E8, E16, E32, E64, s):
    """tcp_retransmit_skb(): resend until it gets through; each try is a clone completed by the device."""
    while True:
        lo, hi = S[SK_LO, s], S[SK_HI, s]
        M[M_TRANSMISSIONS] += 1
        M[M_RETRANSMITS] += 1
        dev = _new_skb(P, M, S, lo, hi)
        if S[SK_CLONE, s] >= 0:
            _ev(M, E8, E16, E32, E64, SEGMENT, 0, P[P_RX_CPU], dev, s, -1, -1, 0, hi - lo)
        else:
            _ev(M, E8, E16, E32, E64, CLONE, 0, P[P_RX_CPU], dev, s, -1, -1, 0, 0)
            S[SK_CLONE, s] = dev
        _consume(P, M, S, E8, E16, E32, E64, P[P_TXC_CPU], s, dev)
        if _rand(M) >= F[F_LOSS]:
            return


@njit(**_JIT)
def _ack(P, F, M, S, E8, E16, E32, E64, s):
    """Acknowledge write-queue skb ``s``: trims, loss repair, free."""
    cpu = P[P_RX_CPU]
    mss = P[P_MSS]
    lo, hi = S[SK_LO, s], S[SK_HI, s]
    nseg = (hi - lo + mss - 1) // mss if hi > lo else 0
    if nseg > S.shape[1]:
        M[M_STATUS] |= OVF_SEG
        nseg = S.shape[1]
    nlost = 0
    for i in range(nseg):
        S[LS, i] = 1 if _lost(F, M) else 0
        nlost += S[LS, i]
    M[M_LOST_SEGMENTS] += nlost
    acked = lo
    run = 0
    i = 0
    while i < nseg:
        if S[LS, i]:
            j = i  # a run of lost segments stays one skb and is retransmitted as one
            while j < nseg and S[LS, j]:
                j += 1
            end = min(lo + (j - 1) * mss + mss, hi)
            if acked > S[SK_LO, s]:
                _trim(P, M, S, E8, E16, E32, E64, s, acked)
            rest = -1
            if end < hi:  # cut the hole out: tcp_fragment() from the SACK walk
                _unclone(P, M, S, E8, E16, E32, E64, s)
                slo = S[SK_LO, s]
                rest = _new_skb(P, M, S, end, S[SK_HI, s])
                _ev(M, E8, E16, E32, E64, SPLIT, 0, cpu, s, rest, -1, -1, 0, end - slo)
                _set_range(P, M, S, E8, E16, E32, E64, s, slo, end)
            _retransmit(P, F, M, S, E8, E16, E32, E64, s)
            _free_skb(P, M, S, E8, E16, E32, E64, cpu, s)
            if rest < 0:
                return
            s = rest
            acked = end
            run = 0
            i = j
            continue
        end = min(lo + i * mss + mss, hi)
        run += 1
        acked = end
        if run % P[P_ACK_EVERY] == 0 and end < hi:
            _trim(P, M, S, E8, E16, E32, E64, s, acked)
        i += 1
    _free_skb(P, M, S, E8, E16, E32, E64, cpu, s)


@njit(**_JIT)
def _advance(P, F, M, S, E8, E16, E32, E64, now):
    """What falls due by ``now`` happens, completions first (the twin's _advance)."""
    mask = S.shape[1] - 1
    while M[M_TXQ_N] > 0 and S[Q_TXQ_DUE, M[M_TXQ_HEAD] & mask] <= now:
        k = M[M_TXQ_HEAD] & mask
        s, start, cnt = S[Q_TXQ_S, k], S[Q_TXQ_START, k], S[Q_TXQ_CNT, k]
        M[M_TXQ_HEAD] += 1
        M[M_TXQ_N] -= 1
        for i in range(cnt):
            _consume(P, M, S, E8, E16, E32, E64, P[P_TXC_CPU], s, S[Q_DEV, (start + i) & mask])
        M[M_DEVQ_HEAD] += cnt
        M[M_DEVQ_N] -= cnt
    while M[M_ACKQ_N] > 0 and S[Q_ACK_DUE, M[M_ACKQ_HEAD] & mask] <= now:
        s = S[Q_ACK_S, M[M_ACKQ_HEAD] & mask]
        M[M_ACKQ_HEAD] += 1
        M[M_ACKQ_N] -= 1
        _ack(P, F, M, S, E8, E16, E32, E64, s)


@njit(**_JIT)
def _close_skb(P, F, M, S, E8, E16, E32, E64):
    s = M[M_SKB]
    if s < 0:
        return
    M[M_SKB] = -1
    M[M_LF_VALID] = 0
    M[M_CALL_LEFT] = 0
    now = M[M_SENT]
    M[M_SENT] = now + 1
    _transmit(P, M, S, E8, E16, E32, E64, s, now + P[P_TXC_LAG])
    n = M[M_ACKQ_N]
    if n < S.shape[1]:
        k = (M[M_ACKQ_HEAD] + n) & (S.shape[1] - 1)
        S[Q_ACK_DUE, k] = now + P[P_INFLIGHT]
        S[Q_ACK_S, k] = s
        M[M_ACKQ_N] = n + 1
    else:
        M[M_STATUS] |= OVF_QUEUE
    _advance(P, F, M, S, E8, E16, E32, E64, now)


@njit(**_JIT)
def _slot(P, M, S, E8, E16, E32, E64, j):
    """The twin's _slot(): send ``j``'s slot of user (or dma-buf) memory. The twin's slot stack: the slots
    given back, LIFO, above the untaken slots of the newest region, which come out in order; a region is
    mapped when both are used up."""
    t = M[M_SLOT_TOP]
    if t > 0:
        M[M_SLOT_TOP] = t - 1
        S[SD_BUF, j], S[SD_BASE, j], S[SD_FIRST, j] = S[SL_BUF, t - 1], S[SL_PFN, t - 1], S[SL_FIRST, t - 1]
        return
    sp = P[P_SEND_PAGES]
    if M[M_FRESH_K] >= M[M_FRESH_N]:  # map a new region and cut it into send slots
        pages = P[P_REGION_PAGES]
        buf = _id_get(M, S, BF_FREE, M_BUF_TOP, M_BUF_NEXT, OVF_BUF)
        pfn = _page_get(M, S, BF_PAGE_FREE, pages)
        _ev(M, E8, E16, E32, E64, ALLOC, P[P_ALLOC_KIND], P[P_APP_CPU], -1, -1, buf, pfn, P[P_FOLIO_PAGES], pages)
        r = M[M_N_REGIONS]
        if r < S.shape[1]:
            S[BF_REGION, r] = buf
        else:
            M[M_STATUS] |= OVF_BUF
        M[M_N_REGIONS] = r + 1
        M[M_FRESH_BUF], M[M_FRESH_PFN], M[M_FRESH_K], M[M_FRESH_N] = buf, pfn, 0, pages // sp
    k = M[M_FRESH_K]
    M[M_FRESH_K] = k + 1
    S[SD_BUF, j], S[SD_BASE, j], S[SD_FIRST, j] = M[M_FRESH_BUF], M[M_FRESH_PFN], M[M_FRESH_PFN] + k * sp


@njit(inline="always", **_JIT)
def _uarg_flags(P, S, j):
    """The twin's _uarg_flags(): (trace.UARG_* flags, dma-buf) of send ``j``'s sendmsg."""
    if P[P_MEMORY] == MEM_DEV:
        return UARG_DEVMEM, S[SD_BUF, j]
    return (UARG_ACCOUNT if P[P_ACCOUNT] else 0), -1


@njit(**_JIT)
def _uarg_for(P, M, S, E8, E16, E32, E64, b, j, size):
    """The twin's _uarg_for(): msg_zerocopy_realloc() extends the uarg of the unsent tail skb up to 512 KiB,
    else takes a new one; returns it."""
    u = M[M_CUR_UARG]
    extend = (u >= 0 and M[M_SKB] >= 0 and M[M_SKB_UARG] == u
              and M[M_UARG_BYTES] + size <= P[P_UARG_LIMIT] and S[UA_LAST, u] - S[UA_FIRST, u] + 1 < P[P_UARG_LEN])
    if not extend:
        if u >= 0:
            M[M_CUR_UARG] = -1
            _try_complete(P, M, S, E8, E16, E32, E64, u)
        u = _id_get(M, S, UA_FREE, M_UARG_TOP, M_UARG_NEXT, OVF_UARG)
        M[M_CUR_UARG] = u
        M[M_UARG_BYTES] = 0
        S[UA_FIRST, u] = b
        S[UA_PENDING, u] = 0
        M[M_NOTIFS] += 1
    flags, dbuf = _uarg_flags(P, S, j)
    _ev(M, E8, E16, E32, E64, UARG_GET, flags, P[P_APP_CPU], -1, u, dbuf, -1, 0, 0)
    M[M_UARG_BYTES] += size
    S[SD_UARG, j] = u
    S[UA_LAST, u] = b
    S[UA_PENDING, u] += 1
    return u


@njit(**_JIT)
def _frag_copy(P, M, S, E8, E16, E32, E64, j, size):
    """The twin's _frag_copy(): send ``j``'s message copied into page_frag fragments of at most one cache page
    (_frag_alloc()); False if a capacity is too small."""
    mask = S.shape[1] - 1
    M[M_FRAG_N] = 0
    for start in range(0, size, FRAG_MAX):
        ci = M[M_FRAG_N]
        if ci >= S.shape[1]:
            M[M_STATUS] |= OVF_FRAG
            return False
        n = min(FRAG_MAX, size - start)
        k = _frag_alloc(P, M, S, E8, E16, E32, E64, n)
        S[FR_BUF, ci], S[FR_PFN, ci] = S[CP_BUF, k & mask], S[CP_PFN, k & mask]
        S[FR_OFF, ci], S[FR_LEN, ci] = M[M_FRAG_LEFT], n
        M[M_FRAG_N] = ci + 1
        if ci == 0:
            S[SD_CP0, j] = k
        S[SD_CP1, j] = k
    for k in range(S[SD_CP0, j], S[SD_CP1, j] + 1):
        S[CP_PENDING, k & mask] += 1
    S[SD_BUF, j], S[SD_BASE, j], S[SD_FIRST, j] = S[FR_BUF, 0], S[FR_PFN, 0], S[FR_PFN, 0]
    return True


@njit(**_JIT)
def _send(P, F, M, S, E8, E16, E32, E64, b, lo, size):
    """One send of ``size`` bytes at stream offset ``lo``: a sendmsg(), or a splice() call's sendmsg()s of
    SPLICE_BVECS pipe buffers (the twin's _send)."""
    cpu = P[P_APP_CPU]
    memory = P[P_MEMORY]
    mask = S.shape[1] - 1
    j = b & mask
    if S[SD_TAG, j] != -1:
        M[M_STATUS] |= OVF_SEND
        return
    S[SD_TAG, j] = b
    S[SD_USERS, j] = 0
    S[SD_QUEUED, j] = 0
    if P[P_ZEROCOPY]:
        _slot(P, M, S, E8, E16, E32, E64, j)
    elif memory == MEM_FRAG:  # the message is copied into fragments of at most one cache page
        if not _frag_copy(P, M, S, E8, E16, E32, E64, j, size):
            return
    else:  # a buffer of the send's own: the pipe's pages, a service's pages or kmalloc'd memory
        sp = P[P_SEND_ALLOC_PAGES]
        held = sp
        if memory == MEM_PIPE_:  # the pipe holds only the buffers the bytes filled, in whole folios
            fp = P[P_FOLIO_PAGES]
            held = min(sp, (((size + PAGE - 1) // PAGE + fp - 1) // fp) * fp)
        buf = _id_get(M, S, BF_FREE, M_BUF_TOP, M_BUF_NEXT, OVF_BUF)
        pfn = _page_get(M, S, BF_PAGE_FREE, sp)
        _ev(M, E8, E16, E32, E64, ALLOC, P[P_SEND_KIND], cpu, -1, -1, buf, pfn, P[P_FOLIO_PAGES], held)
        M[M_PAGE_ALLOCS] += P[P_SEND_PAGE_ALLOCS]
        S[SD_BUF, j], S[SD_BASE, j], S[SD_FIRST, j] = buf, pfn, pfn
    step = P[P_BATCH] if P[P_BATCH] > 0 else size
    released = 0
    for start in range(0, size, step):
        stop = min(size, start + step)
        u = -1
        if P[P_ZEROCOPY]:
            u = _uarg_for(P, M, S, E8, E16, E32, E64, b, j, size)
        _sendmsg(P, F, M, S, E8, E16, E32, E64, b, j, u, lo, start, stop, stop == size)
        if M[M_STATUS] != 0:
            return
        if P[P_ZEROCOPY]:
            flags, dbuf = _uarg_flags(P, S, j)
            _ev(M, E8, E16, E32, E64, UARG_PUT, flags, cpu, -1, u, dbuf, -1, 0, 0)
        elif stop < size:  # pipe_buf_release() of the buffers this sendmsg sent in full
            done = stop // PAGE
            if done > released:
                _ev(M, E8, E16, E32, E64, BUF_RELEASE, 0, cpu, -1, -1, S[SD_BUF, j], S[SD_BASE, j] + released, 0,
                    done - released)
                released = done
    if memory == MEM_FRAG:
        ci = 0
        nf = M[M_FRAG_N]
        while ci < nf:  # page_frag_free() of each fragment, one event per cache page
            fb = S[FR_BUF, ci]
            cnt = 0
            while ci < nf and S[FR_BUF, ci] == fb:
                cnt += 1
                ci += 1
            _ev(M, E8, E16, E32, E64, BUF_RELEASE, 0, cpu, -1, -1, fb, -1, 0, cnt)
        for k in range(S[SD_CP0, j], S[SD_CP1, j]):  # the bias drops of the pages the cache left
            _ev(M, E8, E16, E32, E64, BUF_RELEASE, 0, cpu, -1, -1, S[CP_BUF, k & mask], -1, 0, 0)
            S[CP_DRAINED, k & mask] = 1
            _frag_recycle(M, S, k)
    elif P[P_ZEROCOPY] == 0:
        _ev(M, E8, E16, E32, E64, BUF_RELEASE, 0, cpu, -1, -1, S[SD_BUF, j], -1, 0, 0)
    _maybe_done(P, M, S, E8, E16, E32, E64, b)


@njit(**_JIT)
def _frags_full(P, F, M, S, E8, E16, E32, E64):
    """The twin's _frags_full(): -EMSGSIZE and a new segment; one more pass after progress in this one."""
    if M[M_IN_PASS]:
        M[M_PASSES] += 1
    _close_skb(P, F, M, S, E8, E16, E32, E64)


@njit(**_JIT)
def _sendmsg(P, F, M, S, E8, E16, E32, E64, b, j, u, lo, start, stop, last):
    """One tcp_sendmsg_locked() of send ``b``'s bytes [start, stop) (the twin's _sendmsg and _pieces)."""
    cpu = P[P_APP_CPU]
    memory = P[P_MEMORY]
    M[M_SENDMSG] += 1
    if M[M_SKB] < 0:
        M[M_NO_TAIL] += 1
    M[M_CALL_LEFT] = 0
    M[M_IN_PASS] = 0
    buf, base, first = S[SD_BUF, j], S[SD_BASE, j], S[SD_FIRST, j]
    fp = P[P_FOLIO_PAGES]
    size_goal = P[P_SIZE_GOAL]
    max_frags = P[P_MAX_FRAGS]
    user = memory == MEM_U
    seq = lo + start
    pos = start
    while pos < stop:
        # the next piece: a run inside one folio (user), a physical range (physrange), a page (pipe, devmem,
        # pages, slab), a page of a fragment (page_frag)
        if memory == MEM_FRAG:
            ci = pos // FRAG_MAX
            within = pos - ci * FRAG_MAX
            o = S[FR_OFF, ci] + within
            buf, head = S[FR_BUF, ci], S[FR_PFN, ci]
            pfn = head + o // PAGE
            off = o % PAGE
            n = min(PAGE - off, S[FR_LEN, ci] - within)
        else:
            q = first + pos // PAGE
            head = base + (q - base) // fp * fp
            if user:
                end = (head - first + fp) * PAGE
            elif memory == MEM_PHYS:
                end = (pos // P[P_FRAG_SIZE] + 1) * P[P_FRAG_SIZE]
            else:
                end = (pos // PAGE + 1) * PAGE
            n = min(end, stop) - pos
            if user or memory == MEM_PHYS:
                pfn = head
                off = (first - head) * PAGE + pos
            else:
                pfn = q
                off = pos % PAGE
        pos += n
        while n:
            if M[M_SKB] >= 0 and M[M_SKB_UARG] != u and M[M_SKB_FRAGS] != 0:
                _close_skb(P, F, M, S, E8, E16, E32, E64)  # -EEXIST
            if M[M_SKB] < 0:
                s = _new_skb(P, M, S, seq, seq)
                M[M_SKB] = s
                _ev(M, E8, E16, E32, E64, SKB_ALLOC, 0, cpu, s, -1, -1, -1, 0, 0)
                M[M_SKB_FRAGS] = 0
                M[M_SKB_UARG] = -1
            s = M[M_SKB]
            room = size_goal - (S[SK_HI, s] - S[SK_LO, s])
            if user and M[M_CALL_LEFT] == 0:  # a new GUP call
                if M[M_SKB_FRAGS] >= max_frags:
                    _frags_full(P, F, M, S, E8, E16, E32, E64)  # -EMSGSIZE before any GUP
                    continue
                at = seq - lo
                M[M_CALL_LEFT] = min(room, stop - at, (max_frags - M[M_SKB_FRAGS]) * PAGE - at % PAGE)
            k = min(room, n, M[M_CALL_LEFT]) if user else min(room, n)
            if (user and M[M_LF_VALID] and M[M_LF_BUF] == buf and M[M_LF_HEAD] == head
                    and M[M_LF_OFF] == off and M[M_LF_U] == u):
                _ev(M, E8, E16, E32, E64, GROW, 0, cpu, s, u, buf, -1, 0, k)  # merged into the last frag
            elif M[M_SKB_FRAGS] >= max_frags:
                _frags_full(P, F, M, S, E8, E16, E32, E64)  # -EMSGSIZE
                continue
            else:
                _ev(M, E8, E16, E32, E64, ATTACH, 0, cpu, s, u, buf, pfn, off, k)
                M[M_SKB_FRAGS] += 1
            if M[M_IN_PASS] == 0:
                M[M_PASSES] += 1
                M[M_IN_PASS] = 1
            M[M_SKB_UARG] = u
            M[M_LF_VALID] = 1
            M[M_LF_BUF], M[M_LF_HEAD], M[M_LF_OFF], M[M_LF_U] = buf, head, off + k, u
            _set_range(P, M, S, E8, E16, E32, E64, s, S[SK_LO, s], seq + k)
            seq += k
            off += k
            n -= k
            M[M_CALL_LEFT] = max(0, M[M_CALL_LEFT] - k)
            if k == room:
                _close_skb(P, F, M, S, E8, E16, E32, E64)
                M[M_IN_PASS] = 0
    if last:
        S[SD_QUEUED, j] = 1
    if M[M_SKB] >= 0 and not _tail_kept(F, M):
        _close_skb(P, F, M, S, E8, E16, E32, E64)  # tcp_push() of the tail


@njit(inline="always", **_JIT)
def _tail_kept(F, M):
    """The twin's _tail_kept(): the partial tail is still unsent at the next sendmsg (a draw only for 0 < p < 1)."""
    p = F[F_TAIL]
    if p >= 1.0:
        return True
    return p > 0.0 and _rand(M) < p


@njit(**_JIT)
def sender(P, F, M, S, E8, E16, E32, E64):
    """The twin's _Sender.generate(); returns early (``M[M_STATUS]`` set) when a capacity is too small."""
    ssz = P[P_SEND_SIZE]
    nbytes = P[P_BYTES]
    b = np.int64(0)  # not the literal 0: numba would compile _send once for it and once for int64
    while b * ssz < nbytes:
        lo = b * ssz
        _send(P, F, M, S, E8, E16, E32, E64, b, lo, min(ssz, nbytes - lo))
        if M[M_STATUS] != 0:
            return
        b += 1
    _close_skb(P, F, M, S, E8, E16, E32, E64)  # tcp_push() of the last partial skb
    now = M[M_SENT]
    while M[M_TXQ_N] > 0 or M[M_ACKQ_N] > 0:  # the rest falls due in time
        _advance(P, F, M, S, E8, E16, E32, E64, now)
        if M[M_STATUS] != 0:
            return
        now += 1
    u = M[M_CUR_UARG]
    if u >= 0:
        M[M_CUR_UARG] = -1
        _try_complete(P, M, S, E8, E16, E32, E64, u)
    k = M[M_FRAG_SEQ]
    if k >= 0:  # page_frag_cache_drain()
        j = k & (S.shape[1] - 1)
        _ev(M, E8, E16, E32, E64, BUF_RELEASE, 0, P[P_APP_CPU], -1, -1, S[CP_BUF, j], -1, 0, 0)
        S[CP_DRAINED, j] = 1
        _frag_recycle(M, S, k)
    for r in range(min(M[M_N_REGIONS], S.shape[1])):  # munmap / unbind at exit
        _ev(M, E8, E16, E32, E64, BUF_RELEASE, 0, P[P_APP_CPU], -1, -1, S[BF_REGION, r], -1, 0, 0)


# ---------------------------------------------------------------- the receiver
# RX state: SK rows are 0 = frags held (buffer count), 1.. = the buffers; BF as above; Q row 0 the receive queue.
@njit(inline="always", **_JIT)
def _rx_recycle(M, BF, b):
    BF[RB_RELEASED, b] = 0
    _id_put(M, BF, RB_FREE, M_BUF_TOP, b)
    _id_put(M, BF, RB_PAGE_FREE, M_PAGE_TOP, BF[RB_PFN, b])


@njit(**_JIT)
def _rx_free(M, SK, BF, E8, E16, E32, E64, cpu, s, flags=0, other=-1, atomics=0):
    _ev(M, E8, E16, E32, E64, FREE, flags, cpu, s, other, -1, -1, 0, atomics)
    _id_put(M, SK, SK.shape[0] - 1, M_SKB_TOP, s)
    for i in range(SK[0, s]):
        b = SK[1 + i, s]
        BF[RB_FRAGS, b] -= 1
        if BF[RB_FRAGS, b] == 0 and BF[RB_RELEASED, b]:
            _rx_recycle(M, BF, b)
    SK[0, s] = 0


@njit(**_JIT)
def _rx_flush(P, M, SK, BF, Q, E8, E16, E32, E64):
    """The twin's _DeferList.flush(): skb_defer_free_flush() on the NAPI CPU, newest first."""
    n = M[M_DEFER_N]
    per = 2 if P[P_LOCKLESS] else 1
    for i in range(n):
        flags = FREE_DEFERRED | (FREE_FLUSH if i == n - 1 else 0)
        _rx_free(M, SK, BF, E8, E16, E32, E64, P[P_RX_CPU], Q[1, n - 1 - i], flags, P[P_APP_CPU], per)
    M[M_DEFER_N] = 0
    M[M_DEFER_COUNT] = 0


@njit(**_JIT)
def _rx_attempt(P, M, SK, BF, Q, E8, E16, E32, E64, s):
    """The twin's _DeferList.attempt(): the reader's skb_attempt_defer_free()."""
    app = P[P_APP_CPU]
    if P[P_DEFER_ON] == 0:
        _rx_free(M, SK, BF, E8, E16, E32, E64, app, s)
        return
    mx = P[P_DEFER_MAX]
    if P[P_LOCKLESS]:
        M[M_DEFER_COUNT] += 1
        if M[M_DEFER_COUNT] >= mx:
            _rx_free(M, SK, BF, E8, E16, E32, E64, app, s, FREE_FULL, P[P_RX_CPU], 1)
            return
        kick = M[M_DEFER_COUNT] - 1 == mx >> 1
    else:
        if M[M_DEFER_COUNT] >= mx:
            _rx_free(M, SK, BF, E8, E16, E32, E64, app, s)
            return
        kick = M[M_DEFER_COUNT] == mx >> 1
        M[M_DEFER_COUNT] += 1
    n = M[M_DEFER_N]
    if n < Q.shape[1]:
        Q[1, n] = s
        M[M_DEFER_N] = n + 1
    else:
        M[M_STATUS] |= OVF_QUEUE
    M[M_DEFERRED] += 1
    if kick:
        _rx_flush(P, M, SK, BF, Q, E8, E16, E32, E64)


@njit(inline="always", **_JIT)
def _rx_move(SK, dst, src):
    """The frags of ``src`` move to the end of ``dst``."""
    n = SK[0, dst]
    for i in range(SK[0, src]):
        SK[1 + n + i, dst] = SK[1 + i, src]
    SK[0, dst] = n + SK[0, src]
    SK[0, src] = 0


@njit(**_JIT)
def _rx_deliver(P, M, SK, BF, Q, E8, E16, E32, E64, s):
    """TCP receive: coalesce into the queue tail when it fits, else append."""
    cap = Q.shape[1]
    n = M[M_ACKQ_N]
    if n > 0:
        tail = Q[0, (M[M_ACKQ_HEAD] + n - 1) & (cap - 1)]
        if SK[0, tail] + SK[0, s] <= P[P_MAX_FRAGS]:
            _ev(M, E8, E16, E32, E64, COALESCE, 0, P[P_RX_CPU], tail, s, -1, -1, 0, 0)
            _rx_move(SK, tail, s)
            _rx_free(M, SK, BF, E8, E16, E32, E64, P[P_RX_CPU], s)  # kfree_skb_partial()
            return
    if n < cap:
        Q[0, (M[M_ACKQ_HEAD] + n) & (cap - 1)] = s
        M[M_ACKQ_N] = n + 1
    else:
        M[M_STATUS] |= OVF_QUEUE


@njit(**_JIT)
def receiver(P, F, M, SK, BF, Q, E8, E16, E32, E64):
    """The twin's _rx_gro(): page_pool buffers, GRO, receive-queue coalescing, the reader after each poll."""
    cpu = P[P_RX_CPU]
    mss = P[P_MSS]
    nbytes = P[P_BYTES]
    kind, npages, per_page = P[P_RX_KIND], P[P_RX_PAGES], P[P_RX_PER_PAGE]
    slot = npages * PAGE // per_page
    free_row = SK.shape[0] - 1
    mask = Q.shape[1] - 1
    cur, cur_pfn, cur_k = -1, 0, 0
    gro, gro_len = -1, 0
    blocked_until = -1
    n_pkts = (nbytes + mss - 1) // mss
    M[M_PACKETS] = n_pkts
    for i in range(n_pkts):
        if i % P[P_NAPI] == 0:
            _rx_flush(P, M, SK, BF, Q, E8, E16, E32, E64)  # net_rx_action() starts with skb_defer_free_flush()
        length = min(mss, nbytes - i * mss)
        if cur < 0 or cur_k >= per_page:
            if cur >= 0:
                _ev(M, E8, E16, E32, E64, BUF_RELEASE, 0, cpu, -1, -1, cur, -1, 0, 0)  # page_pool_drain_frag()
                BF[RB_RELEASED, cur] = 1
                if BF[RB_FRAGS, cur] == 0:
                    _rx_recycle(M, BF, cur)
            b = _id_get(M, BF, RB_FREE, M_BUF_TOP, M_BUF_NEXT, OVF_BUF)
            pfn = _page_get(M, BF, RB_PAGE_FREE, npages)
            _ev(M, E8, E16, E32, E64, ALLOC, kind, cpu, -1, -1, b, pfn, npages, npages)
            BF[RB_PFN, b] = pfn
            BF[RB_FRAGS, b] = 0
            BF[RB_RELEASED, b] = 0
            cur, cur_pfn, cur_k = b, pfn, 0
        b, pfn, k = cur, cur_pfn, cur_k
        cur_k = k + 1
        s = _id_get(M, SK, free_row, M_SKB_TOP, M_SKB_NEXT, OVF_SKB)
        _ev(M, E8, E16, E32, E64, SKB_ALLOC, 0, cpu, s, -1, -1, -1, 0, 0)
        _ev(M, E8, E16, E32, E64, ATTACH, 0, cpu, s, -1, b, pfn, k * slot, length)
        SK[0, s] = 1
        SK[1, s] = b
        BF[RB_FRAGS, b] += 1
        if _rand(M) < F[F_LOSS]:
            # a hole: GRO flushes, and readers wait a round trip for the retransmission
            M[M_LOST_SEGMENTS] += 1
            if gro >= 0:
                _rx_deliver(P, M, SK, BF, Q, E8, E16, E32, E64, gro)
                gro, gro_len = -1, 0
            blocked_until = i + P[P_RX_HOLE]
        if gro < 0:
            gro, gro_len = s, length
        elif SK[0, gro] + 1 <= P[P_MAX_FRAGS] and gro_len + length < P[P_GSO_LIMIT]:
            _ev(M, E8, E16, E32, E64, COALESCE, 0, cpu, gro, s, -1, -1, 0, 0)  # skb_gro_receive(): frags move
            _rx_move(SK, gro, s)
            gro_len += length
            _rx_free(M, SK, BF, E8, E16, E32, E64, cpu, s)  # NAPI_GRO_FREE
        else:
            _rx_deliver(P, M, SK, BF, Q, E8, E16, E32, E64, gro)
            gro, gro_len = s, length
        if (i + 1) % P[P_NAPI] == 0:
            if gro >= 0:  # napi_complete_done() -> gro_flush
                _rx_deliver(P, M, SK, BF, Q, E8, E16, E32, E64, gro)
                gro, gro_len = -1, 0
            while M[M_ACKQ_N] > 1 and i >= blocked_until:  # the reader copies out what one poll delivered
                s = Q[0, M[M_ACKQ_HEAD] & mask]
                M[M_ACKQ_HEAD] += 1
                M[M_ACKQ_N] -= 1
                _rx_attempt(P, M, SK, BF, Q, E8, E16, E32, E64, s)
        if M[M_STATUS] != 0:
            return
    if gro >= 0:
        _rx_deliver(P, M, SK, BF, Q, E8, E16, E32, E64, gro)
    while M[M_ACKQ_N] > 0:
        s = Q[0, M[M_ACKQ_HEAD] & mask]
        M[M_ACKQ_HEAD] += 1
        M[M_ACKQ_N] -= 1
        _rx_attempt(P, M, SK, BF, Q, E8, E16, E32, E64, s)
    _rx_flush(P, M, SK, BF, Q, E8, E16, E32, E64)
    if cur >= 0:
        _ev(M, E8, E16, E32, E64, BUF_RELEASE, 0, cpu, -1, -1, cur, -1, 0, 0)


# ---------------------------------------------------------------- the driver
def _pow2(n: int) -> int:
    return 1 << max(1, int(n) - 1).bit_length()


def _events(cap: int) -> list[np.ndarray]:
    """Empty event columns for ``cap`` events (np.empty: pages never written are never touched)."""
    return [np.empty((rows, max(cap, 1)), dtype=dtype) for dtype, rows in WIDTHS]


def _trace_events(cap: int) -> tuple[np.ndarray, list[np.ndarray]]:
    """A trace.EVENT array for ``cap`` events, and the kernel's arguments writing into it."""
    tr = np.empty(max(cap, 1), dtype=T.EVENT)
    dummy = [np.empty((rows, 0), dtype=dtype) for dtype, rows in WIDTHS[:3]]
    return tr, [*dummy, tr.view(np.int64).reshape(len(tr), 5)]


def _misc(seed: int) -> np.ndarray:
    M = np.zeros(N_M, dtype=np.int64)
    M[[M_SKB, M_SKB_UARG, M_CUR_UARG, M_FRAG_SEQ]] = -1
    M[M_RNG] = np.uint64(seed & RNG.MASK).view(np.int64)  # splitmix64's state, as 64 bits
    return M


def _sender_state(caps: dict) -> tuple:
    S = np.zeros((len(SENDER_ROWS), _pow2(max(caps.values()))), dtype=np.int64)
    S[SD_TAG] = -1
    S[CP_TAG] = -1
    return (S,)


def _receiver_state(caps: dict, max_frags: int) -> tuple:
    SK = np.zeros((max_frags + 2, caps["skb"]), dtype=np.int64)
    BF = np.zeros((5, caps["buf"]), dtype=np.int64)
    Q = np.zeros((2, _pow2(caps["queue"])), dtype=np.int64)  # the receive queue (a ring), the defer list
    return SK, BF, Q


def _kernel(kind: str, P, F, seed: int, caps: dict, E: list, trace: bool) -> tuple[np.ndarray, dict]:
    """One run; returns M and the capacities to try next if one was too small (else ``caps``)."""
    M = _misc(seed)
    M[M_TRACE] = int(trace)
    if kind == "sender":
        sender(P, F, M, *_sender_state(caps), *E)
    else:
        receiver(P, F, M, *_receiver_state(caps, int(P[P_MAX_FRAGS])), *E)
    status = int(M[M_STATUS])
    if status and kind == "sender":  # one array holds the sender's state: all of it grows
        return M, {name: 2 * cap for name, cap in caps.items()}
    if status:
        caps = dict(caps)
        for bit, name in OVERFLOW.items():
            if status & bit:
                caps[name] *= 2
    return M, caps


def count(kind: str, P: np.ndarray, F: np.ndarray, seed: int, caps: dict) -> tuple[int, dict]:
    """Events the kernel writes for ``P`` (nothing is written), and the capacities that sufficed."""
    while True:
        M, caps = _kernel(kind, P, F, seed, caps, _events(0), False)
        if not M[M_STATUS]:
            return int(M[M_N]), caps


def run(kind: str, P: np.ndarray, F: np.ndarray, seed: int, caps: dict, events: int, *, trace: bool = False):
    """Run the ``"sender"`` or ``"receiver"`` kernel until every capacity sufficed.

    Returns (events, M, runs). ``events`` holds ``M[M_N]`` events: columns (rows of :data:`WIDTHS`'
    arrays, see :data:`COLUMNS`), or with ``trace=True`` a trace.EVENT array first (see to_trace()).
    ``runs`` counts the kernel's runs.
    """
    runs = 0
    while True:
        runs += 1
        E = tr = None  # the last run's arrays go before the next are made
        if trace:
            tr, E = _trace_events(events)
        else:
            E = _events(events)
        M, caps = _kernel(kind, P, F, seed, caps, E, trace)
        if M[M_STATUS]:
            continue
        if M[M_N] > events:
            events = int(M[M_N])
            continue
        return ([tr] if trace else E), M, runs


def columns(E: list[np.ndarray], n: int) -> dict[str, np.ndarray]:
    """The first ``n`` events as contiguous columns named after trace.EVENT's fields (views, no copy)."""
    return {name: E[a][r, :n] for name, (a, r) in COLUMNS.items()}


def to_trace(E: list[np.ndarray], n: int) -> np.ndarray:
    """The first ``n`` events as a trace.EVENT array (``E`` from run(..., trace=True): no copy)."""
    out = E[0]
    if len(out) != n:
        out.resize(n, refcheck=False)  # in place: realloc() shrinks the allocation
    return out


# ---------------------------------------------------------------- setting up from the config
def _stats(M: np.ndarray) -> dict:
    return {name: int(M[slot]) for name, slot in STAT_SLOTS.items()}


def sender_params(cfg: Config, memory: str, tso: bool):
    """The compiled sender's parameters (P, F) and capacities, from the config as the twin reads it."""
    c = cfg
    W.require(c, memory)
    zc = W.zerocopy(memory)
    P = np.zeros(N_P, dtype=np.int64)
    P[[P_MEMORY, P_TSO, P_ZEROCOPY]] = MEMORY[memory], int(tso), int(zc)
    P[[P_MSS, P_SEND_SIZE, P_FRAG_SIZE, P_BYTES]] = c.mss, c.send_size, c.frag_size, c.bytes_sent
    P[[P_APP_CPU, P_TXC_CPU, P_RX_CPU]] = c.app_cpu, c.txc_cpu, c.rx_cpu
    P[[P_SIZE_GOAL, P_SEND_PAGES, P_FOLIO_PAGES]] = c.size_goal, c.send_pages, W.folio_pages(c, memory)
    P[P_REGION_PAGES] = W.region_pages(c, memory) if zc else 0
    P[[P_INFLIGHT, P_TXC_LAG, P_ACK_EVERY]] = c.inflight, c.txc_lag, c.ack_every
    P[P_MAX_FRAGS] = T.MAX_SKB_FRAGS if zc else c.max_frags  # the twin's _frag_cap()
    P[P_ALLOC_KIND] = W.region_kind(memory)
    P[P_UARG_LIMIT] = UARG_BYTE_LIMIT
    P[[P_SEND_KIND, P_SEND_ALLOC_PAGES, P_SEND_PAGE_ALLOCS]] = (W.send_kind(c, memory), W.send_alloc_pages(c, memory),
                                                               W.send_page_allocs(c, memory))
    P[[P_ACCOUNT, P_UARG_LEN]] = int(c.locked_vm_accounting), UARG_LEN_LIMIT
    P[P_BATCH] = W.sendmsg_bytes(c, memory)
    F = np.array([c.loss_rate, *c.loss_chain, c.tail_unsent], dtype=np.float64)
    # Live state spans what is in flight: the write queue and the clones the device holds, the sends they
    # cover, and a ubuf_info's sends until all of them are done. Too small is only slower (the kernel asks
    # for more and runs again).
    segs = -(-c.size_goal // c.mss) + 1
    window = c.inflight + c.txc_lag + 4
    sends = (window * c.size_goal + 2 * UARG_BYTE_LIMIT) // c.send_size + 8
    caps = {"skb": 2 * window * (segs + 2) + 64, "send": 2 * sends, "uarg": 2 * sends, "buf": 2 * sends,
            "slot": 2 * sends, "queue": 2 * window * (segs + 1), "seg": segs + 1}
    # nor more than the whole transfer holds: all its write-queue skbs, and the device's of txc_lag of them
    n_sends = -(-c.bytes_sent // c.send_size)
    queued = -(-c.bytes_sent // min(c.size_goal, c.send_size)) + n_sends + 2
    total = 2 * (queued + (min(c.txc_lag, queued) + 2) * segs) + 64
    caps = {name: min(cap, total if name in ("skb", "queue") else 2 * n_sends + 16) if name != "seg" else cap
            for name, cap in caps.items()}
    if memory == "page_frag":  # a send's fragments; the cache pages its sends in flight hold
        chunks = -(-c.send_size // T.PAGE_FRAG_CACHE_MAX_SIZE)
        caps["frag"] = chunks + 1
        caps["cache"] = min(2 * (window * c.size_goal // T.PAGE_FRAG_CACHE_MAX_SIZE + 2 * chunks) + 8,
                            n_sends * chunks + 8)
    return P, F, caps


def receiver_params(cfg: Config):
    """The compiled receiver's parameters (P, F) and capacities, from the config as the twin reads it."""
    c = cfg
    kind, npages, per_page = rx_layout(c)
    P = np.zeros(N_P, dtype=np.int64)
    P[[P_MSS, P_BYTES, P_APP_CPU, P_RX_CPU, P_MAX_FRAGS]] = c.mss, c.bytes_sent, c.app_cpu, c.rx_cpu, c.max_frags
    P[[P_RX_KIND, P_RX_PAGES, P_RX_PER_PAGE, P_RX_HOLE]] = kind, npages, per_page, c.rx_hole_packets
    P[[P_GSO_LIMIT, P_NAPI]] = GSO_LEGACY_MAX_SIZE, NAPI_BUDGET
    P[[P_DEFER_ON, P_LOCKLESS, P_DEFER_MAX]] = int(c.app_cpu != c.rx_cpu), int(c.defer_lockless), c.skb_defer_max
    F = np.array([c.loss_rate, 0.0, 0.0, 0.0], dtype=np.float64)
    # packets held at once: a round trip behind each hole, and the reader waits until a round trip
    # passes with no loss, ((1 - r)^-h - 1) / r packets on average
    pkts = -(-c.bytes_sent // c.mss) + 1
    h, r = c.rx_hole_packets, c.loss_rate
    wait = math.expm1(min(-h * math.log1p(-r), 40.0)) / r if 0 < r < 1 else 0.0
    live = int(min(pkts, 4 * (h + wait) + 3 * NAPI_BUDGET)) + 64
    caps = {"skb": live, "buf": live // per_page + 8, "queue": live}
    return P, F, caps


def kernel_params(workload: str, cfg: Config):
    """(kernel kind, P, F, capacities) for ``workload``: ``"sender"`` or ``"receiver"``, see :func:`run`."""
    memory, tso = SENDERS.get(workload, (None, None))
    if memory is None:
        return ("receiver", *receiver_params(cfg))
    return ("sender", *sender_params(cfg, memory, tso))


PILOT_BYTES = 1 << 20  # at least this much of a long transfer is counted first to size its event arrays


def _run(workload: str, cfg: Config, *, trace: bool = False):
    """(events, event count, stats, id-space sizes) from the compiled generator: columns, or with
    ``trace`` a trace array (see run())."""
    kind, P, F, caps = kernel_params(workload, cfg)
    # The event arrays' size: count the events of the first bytes (same seed, same stream), all of them
    # for a short transfer, and scale; the rare transfer that writes more is run again at its exact size.
    pilot = -(-max(PILOT_BYTES, cfg.bytes_sent // 64) // cfg.send_size) * cfg.send_size
    Pp = P.copy()
    Pp[P_BYTES] = min(pilot, cfg.bytes_sent) if cfg.bytes_sent > 4 * pilot else cfg.bytes_sent
    n, caps = count(kind, Pp, F, cfg.seed, caps)
    events = n if Pp[P_BYTES] == cfg.bytes_sent else int(n * cfg.bytes_sent / Pp[P_BYTES] * 1.05) + 4096
    E, M, _runs = run(kind, P, F, cfg.seed, caps, events, trace=trace)
    n = int(M[M_N])
    sizes = {"n_pfn": int(M[M_PAGE_NEXT]), "n_buf": int(M[M_BUF_NEXT]), "n_uarg": int(M[M_UARG_NEXT]),
             "n_skb": int(M[M_SKB_NEXT]), "n_pins": int(M[M_PINS]) + 1}
    return E, n, _stats(M), sizes


# ---------------------------------------------------------------- the generators
IMPLS = ("jit", "twin")


def _lookup(workload: str, impl: str) -> Workload:
    if impl not in IMPLS:
        raise ValueError(f"impl={impl!r} is not allowed; allowed: {', '.join(IMPLS)}")
    return W.lookup(workload)


def generate_with_stats(workload: str, *, impl: str = "jit", **params) -> tuple[np.ndarray, dict]:
    """A trace of ``workload`` with the given :class:`Config` fields, and the generator's :data:`STATS`.

    ``impl="jit"`` (the default) runs the compiled generator, ``impl="twin"`` the Python one
    (:func:`.workloads_twin.generate_with_stats`); both give the identical trace and stats.
    """
    _lookup(workload, impl)
    if impl == "twin":
        return W.generate_with_stats(workload, **params)
    E, n, stats, _sizes = _run(workload, Config(**params), trace=True)
    return to_trace(E, n), stats


def generate(workload: str, *, impl: str = "jit", **params) -> np.ndarray:
    """A trace of ``workload`` with the given :class:`Config` fields."""
    return generate_with_stats(workload, impl=impl, **params)[0]


def generate_columns(workload: str, **params) -> tuple[dict[str, np.ndarray], dict, dict]:
    """The compiled generator's trace as contiguous columns (what the engine replays, no copy), its stats,
    and the id-space sizes a replay needs (``trace.sizes()`` plus ``n_pins``, ``engine.pin_capacity()``)."""
    _lookup(workload, "jit")
    E, n, stats, sizes = _run(workload, Config(**params))
    return columns(E, n), stats, sizes


def warm() -> None:
    """Compile every generator and the replay of its columns (or load them from numba's cache; ``fraglife
    warm``), on sends of a few packets."""
    for name in sorted(ALL):
        generate_and_replay(name, "page_ref", bytes_sent=64 * KiB)


def generate_and_replay(workload: str, policy, *, max_frags: int = T.MAX_SKB_FRAGS, **params):
    """Generate ``workload`` and replay it under ``policy`` end to end, without building a trace array:
    the engine reads the generator's columns. Returns (Ledger, stats, events)."""
    from . import engine

    cols, stats, sizes = generate_columns(workload, **params)
    return engine.replay_columns(cols, policy, sizes, max_frags=max_frags), stats, len(cols["op"])


# _ev's trace words are trace.EVENT's fields, on a little-endian machine:
# op | kind << 8 | cpu << 16 | skb << 32; other | buf << 32; pfn; off; len
assert T.EVENT.itemsize == 40 and [T.EVENT.fields[f][1] for f in T.EVENT.names] == [0, 1, 2, 4, 8, 12, 16, 24, 32]
assert sys.byteorder == "little"


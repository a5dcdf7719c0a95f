"""The exhaustive explorer, compiled: the same breadth-first search as :mod:`.explorer_twin`, in numba.

Read the twin for the model and its rules; this module is the same rules on
flat integer arrays, for speed. States are the twin's encoded tuples, int16
rows while they wait in the breadth-first queue; the visited set keeps only
a 64-bit fingerprint of each (XXH64 of its fields; TLC keeps fingerprints
too), with a 4-byte parent number and a 2-byte label, and a counterexample
is rebuilt by replaying its labels from the start (:func:`replay`);
:func:`collision_bound` is the chance that two states shared a fingerprint.
The search visits the twin's states in the twin's order: the same
successors, labels, first violations and counterexamples
(tests/test_explorer.py).

Each operation has one handler here with the name of the twin's method for
it (``explorer.clone`` beside ``explorer_twin.Explorer.clone``; the names are
``OP_NAMES``, the handlers ``HANDLERS``), and :func:`successors` calls them in
the twin's order; tests/test_explorer.py compares each handler with its
twin's method on reachable states (:func:`steps`).

:func:`explore` runs either implementation and returns a
:class:`~.explorer_twin.Result`; :mod:`.explorer_story` tells a
counterexample step by step. The checks chapter 08 calls (the binding's
verdicts, the owner rules' mutants, the owner array's search, devmem TX's
two rules) are at the end, with the owner array's bytes and costs
re-exported from the twin.
"""

from __future__ import annotations

import time

import numpy as np
from numba import njit
from numba.typed import List

from ..jit import CACHE, grid, grid16, grid_bytes, prefetch, row_bytes, words
from . import explorer_twin as X
from .explorer_twin import (Bounds, Result, Scenario, index_bits, owner_array_bytes, owner_array_costs,  # noqa: F401
                            owner_array_fit, owner_runs)

# ---- the parameter array -----------------------------------------------------------------------------
(P_NB, P_NINIT, P_S, P_F, P_C, P_T, P_SW, P_OW, P_OFF_BUF, P_OFF_SH, P_OFF_OP, P_WIDTH, P_PAGE_MODE,
 P_OWNER_MODE, P_UARG, P_RULES, P_SPAN, P_OPS, P_DEPTH, P_MAX, P_X, P_OFF_EXT, P_SLOTS, P_COPY_FB, P_SOCKET,
 P_ORPHANS, P_SKB_HELD, P_HOLDS, P_NPERMS, P_KINDS) = range(30)
# work-state scalars
G_BIND, G_BUDGET, G_NSH, G_NOP, G_BAD, G_NEXT = range(6)
NG = 6
MAX_SUCC = 1024  # successors of one state, far above what the largest bounds make
SCRATCH = 64

USER, PIPE, POOL, DEVMEM, KMALLOC, COPY = X.USER, X.PIPE, X.POOL, X.DEVMEM, X.KMALLOC, X.COPY
(PUT, DROP, UNBIND_W, ATTACH_NEW, ATTACH, CLONE, SPLIT, SEGMENT, EXPAND, COALESCE, COPYFB, SHIFT, TRIM,
 FRAG_LIST, SPLICE, ZC_RECEIVE, ORPHAN, FREE, HOLDER, PIPE_RELEASE, MUNMAP) = range(21)
assert (PUT, MUNMAP, ORPHAN) == (X.PUT, X.MUNMAP, X.ORPHAN)
UAF, EARLY, DOUBLE, LEAK = X.UAF, X.EARLY, X.DOUBLE, X.LEAK
B_USED, B_HOLDER, B_ALIVE0, B_ALIVE1, B_PC0, B_PC1, B_OC, B_OALIVE, B_UC, B_DONE = range(10)
BW, EW = X.BW, X.EW
PIPE_BUF, MAPPING, COPIED = X.PIPE_BUF, X.MAPPING, X.COPIED
OWNER_FRAG, OWNER_SHINFO, OWNER_SKB, OWNER_BINDING = 1, 2, 3, 4
PAGE_FIRST = 1
(R_CLONE, R_SPLIT, R_SEGMENT, R_EXPAND, R_COALESCE, R_COPY, R_SHIFT, R_SPLICE, R_MAP,
 R_FRAGLIST) = (X.R_CLONE, X.R_SPLIT, X.R_SEGMENT, X.R_EXPAND, X.R_COALESCE, X.R_COPY, X.R_SHIFT, X.R_SPLICE,
                X.R_MAP, X.R_FRAGLIST)


def params(bounds: Bounds, scenario: Scenario, symmetry: bool = True) -> np.ndarray:
    """The bounds, scenario and buffer symmetries as the kernel reads them (explorer_twin.Explorer.__init__)."""
    ex = X.Explorer(bounds, scenario, symmetry=symmetry)
    L = ex.L
    pol = scenario.policy
    head = [L.nb, L.ninit, L.s, L.f, L.c, L.t, L.sw, L.ow, L.off_buf, L.off_sh, L.off_op, L.width,
            pol.page_mode, pol.owner_mode, int(pol.uarg), scenario.rules, int(scenario.span), bounds.ops,
            bounds.depth, bounds.max_states, L.x, L.off_ext, ex.slots, int(scenario.fallback == "copy"),
            int(ex.socket), int(ex.orphans), int(ex.skb_held), int(ex.holds), len(ex.perms)]
    assert len(head) == P_KINDS
    return np.array(head + list(ex.kinds) + [b for perm in ex.perms for b in perm], dtype=np.int64)


# ---- decoding and the canonical form -------------------------------------------------------------------
@njit(cache=CACHE, _nrt=False)
def _decode(v, P, M):
    """The encoded state ``v`` into S0, the state being expanded, in the work buffer M (:func:`_views`). Three
    arguments, the views made here: a call passing the five arrays cost more than the decoding."""
    S0, _at = _state_views(P, M, 0)
    _decode_into(v, P, S0[0], S0[1], S0[2], S0[3], S0[4])


@njit(cache=CACHE, inline="always", _nrt=False)
def _decode_into(v, P, G, W, SH, OP, EX):
    """:func:`_decode` into the arrays given. Each record is copied from a view that starts at it: its fields'
    indices are then known not to be negative, and compile without numba's check for a negative index."""
    nb, s, c, sw, ow = P[P_NB], P[P_S], P[P_C], P[P_SW], P[P_OW]
    G[G_BIND] = v[0]
    G[G_BUDGET] = v[1]
    G[G_BAD] = 0
    ob = P[P_OFF_BUF]
    for b in range(nb):
        src, dst = v[ob + BW * b:], W[b]
        for k in range(BW):
            dst[k] = src[k]
    osh = P[P_OFF_SH]
    nsh = 0
    for i in range(s):
        src, dst = v[osh + i * sw:], SH[i]
        for k in range(sw):
            dst[k] = src[k]
        if dst[0] + dst[1] > 0:
            nsh += 1
    G[G_NSH] = nsh
    for i in range(nsh):  # column sw, outside the record: it differs from the one before (explorer_twin's shinfos)
        SH[i, sw] = 1 if i == 0 or not _same_row(SH, i, sw) else 0
    oop = P[P_OFF_OP]
    nop = 0
    for i in range(c):
        src, dst = v[oop + i * ow:], OP[i]
        for k in range(ow):
            dst[k] = src[k]
        if dst[0] > 0:
            nop += 1
    G[G_NOP] = nop
    oex = P[P_OFF_EXT]
    nex = 0
    for i in range(P[P_X]):
        EX[i, 0] = v[oex + EW * i]
        EX[i, 1] = v[oex + EW * i + 1]
        if EX[i, 0] > 0:
            nex += 1
    G[G_NEXT] = nex


@njit(cache=CACHE, inline="always", _nrt=False)
def _rtok(tok, P, perm_off):
    """A token with its buffer renamed by the permutation at P[perm_off:]."""
    nb = P[P_NB]
    x = tok - 1
    if x < 2 * nb:
        return 1 + 2 * P[perm_off + x // 2] + x % 2
    if x < 3 * nb:
        return 1 + 2 * nb + P[perm_off + x - 2 * nb]
    if x < 4 * nb:
        return 1 + 3 * nb + P[perm_off + x - 3 * nb]
    return tok


@njit(cache=CACHE, inline="always", _nrt=False)
def _rmask(m, P, perm_off):
    out = 0
    i = 0
    while m >> i:
        if m >> i & 1:
            out |= 1 << (_rtok(i + 1, P, perm_off) - 1)
        i += 1
    return out


@njit(cache=CACHE, inline="always", _nrt=False)
def _rcode(code, P, perm_off):
    if code == 0:
        return 0
    return 1 + 4 * P[perm_off + (code - 1) // 4] + (code - 1) % 4


@njit(cache=CACHE, inline="always", _nrt=False)
def _row_cmp(a, ao, b, bo, w):
    for k in range(w):
        if a[ao + k] != b[bo + k]:
            return -1 if a[ao + k] < b[bo + k] else 1
    return 0


U1 = np.uint64(1)  # an unsigned 1: numba makes uint64 with int64 a float64


@njit(cache=CACHE, inline="always", _nrt=False)
def _sort_rows(v, off, n, w):
    """Insertion sort of n rows of width w starting at v[off] (n is at most 4). Unsigned indices: without a
    negative index to wrap around, numba checks none (as in _copy_row)."""
    off, n, w = np.uint64(off), np.uint64(n), np.uint64(w)
    for i in range(U1, n):
        j = i
        while j > 0 and _row_cmp(v, off + (j - U1) * w, v, off + j * w, w) > 0:
            a, b = off + (j - U1) * w, off + j * w
            for k in range(w):
                t = v[a + k]
                v[a + k] = v[b + k]
                v[b + k] = t
            j -= U1


@njit(cache=CACHE, inline="always", _nrt=False)
def _sort_seg(v, lo, n):
    """Ascending sort of v[lo:lo+n] (a few entries; unsigned indices, as in _sort_rows)."""
    lo, n = np.uint64(lo), np.uint64(n)
    for i in range(U1, n):
        j = i
        while j > 0 and v[lo + j - U1] > v[lo + j]:
            t = v[lo + j - U1]
            v[lo + j - U1] = v[lo + j]
            v[lo + j] = t
            j -= U1


@njit(cache=CACHE, _nrt=False)
def _encode(P, M, out):
    """The canonical form of the work state S in M (:func:`_views`) into ``out``: the smallest encoding over the
    buffer symmetries, each with shared infos, skbs, op records and outside references sorted (O's cand row is
    scratch)."""
    _s0, S, O, _t = _views(P, M)
    nb, width, nperms = P[P_NB], P[P_WIDTH], P[P_NPERMS]
    cand = out if nperms == 1 else O[3]  # no symmetry to choose among: the one encoding goes straight out
    for pi in range(nperms):
        po = P_KINDS + nb + pi * nb
        renames = False
        for b in range(nb):
            if P[po + b] != b:
                renames = True
        if renames:
            _encode_renamed(P, S, po, cand)
        else:
            _encode_as_is(P, S, cand)
        _sort_records(P, S[0], cand)
        if nperms > 1 and (pi == 0 or _row_cmp(cand, 0, out, 0, width) < 0):
            for k in range(width):
                out[k] = cand[k]


@njit(cache=CACHE, inline="always", _nrt=False)
def _encode_as_is(P, S, row):
    """The work state S's records into ``row`` as they are, the identity permutation's encoding before
    :func:`_sort_records`. Whole records: a shared info record is its encoded row (with column sw beside it), and
    the handlers keep its slots past nf frags and nmem skbs zero, as decoding left them. Unsigned indices, as in
    _copy_row: the copies compile to plain ones."""
    G, W, SH, OP, EX = S
    u = np.uint64
    sw, ow = u(P[P_SW]), u(P[P_OW])
    for k in range(u(P[P_WIDTH])):
        row[k] = 0
    row[0] = G[G_BIND]
    row[1] = G[G_BUDGET]
    ob = u(P[P_OFF_BUF])
    for b in range(u(P[P_NB])):
        for k in range(u(BW)):
            row[ob + u(BW) * b + k] = W[b, k]
    osh = u(P[P_OFF_SH])
    for i in range(u(G[G_NSH])):
        for k in range(sw):
            row[osh + i * sw + k] = SH[i, k]
    oop = u(P[P_OFF_OP])
    for i in range(u(G[G_NOP])):
        for k in range(ow):
            row[oop + i * ow + k] = OP[i, k]
    oex = u(P[P_OFF_EXT])
    for i in range(u(G[G_NEXT])):
        row[oex + u(EW) * i] = EX[i, 0]
        row[oex + u(EW) * i + U1] = EX[i, 1]


@njit(cache=CACHE, _nrt=False)
def _encode_renamed(P, S, po, row):
    """The work state S's records into ``row`` with buffer b renamed P[po + b], before :func:`_sort_records`."""
    G, W, SH, OP, EX = S
    nb, f, s, sw, ow = P[P_NB], P[P_F], P[P_S], P[P_SW], P[P_OW]
    o_fr, o_oh, o_ua, o_mem, o_lost, o_nl, o_loh = 3, 3 + f, 4 + f, 5 + f, 5 + f + s, 6 + f + s, 7 + f + s
    for k in range(P[P_WIDTH]):
        row[k] = 0
    row[0] = G[G_BIND]
    row[1] = G[G_BUDGET]
    # each record through views that start at it (as in _decode_into)
    ob = P[P_OFF_BUF]
    for b in range(nb):
        dst, src = row[ob + BW * P[po + b]:], W[b]
        for k in range(BW):
            dst[k] = src[k]
    osh = P[P_OFF_SH]
    for i in range(G[G_NSH]):
        dst, sh = row[osh + i * sw:], SH[i]
        dst[0] = sh[0]
        dst[1] = sh[1]
        nf = sh[2]
        dst[2] = nf
        for k in range(nf):
            dst[o_fr + k] = _rcode(sh[o_fr + k], P, po)
        dst[o_oh] = _rmask(sh[o_oh], P, po)
        ua = sh[o_ua]
        dst[o_ua] = 1 + P[po + ua - 1] if ua else 0
        for k in range(sh[0]):
            dst[o_mem + k] = 1 + _rmask(sh[o_mem + k] - 1, P, po)
        dst[o_lost] = sh[o_lost]
        dst[o_nl] = sh[o_nl]
        dst[o_loh] = _rmask(sh[o_loh], P, po)
    oop = P[P_OFF_OP]
    for i in range(G[G_NOP]):
        dst, op = row[oop + i * ow:], OP[i]
        nt = op[0]
        dst[0] = nt
        for k in range(nt):
            dst[1 + k] = _rtok(op[1 + k], P, po)
    oex = P[P_OFF_EXT]
    for i in range(G[G_NEXT]):
        row[oex + EW * i] = EX[i, 0]
        row[oex + EW * i + 1] = _rcode(EX[i, 1], P, po)


@njit(cache=CACHE, inline="always", _nrt=False)
def _sort_records(P, G, row):
    """An encoding's records in their canonical order: each shared info's skbs, the shared infos, each op
    record's tokens, the op records and the outside references sorted (explorer_twin.Explorer.encode_raw)."""
    sw, ow = P[P_SW], P[P_OW]
    nsh, nop, nex = G[G_NSH], G[G_NOP], G[G_NEXT]
    osh, o_mem = P[P_OFF_SH], 5 + P[P_F]
    for i in range(nsh):
        _sort_seg(row, osh + i * sw + o_mem, row[osh + i * sw])
    _sort_rows(row, osh, nsh, sw)
    oop = P[P_OFF_OP]
    for i in range(nop):
        _sort_seg(row, oop + i * ow + 1, row[oop + i * ow])
    _sort_rows(row, oop, nop, ow)
    _sort_rows(row, P[P_OFF_EXT], nex, EW)


# ---- lines, gets and puts ----------------------------------------------------------------------------------
@njit(cache=CACHE, inline="always", _nrt=False)
def _frag_lines(P, code, out, n):
    """Append the tokens one reference to frag ``code`` takes to out[n:]; returns the new length."""
    nb = P[P_NB]
    b = (code - 1) // 4
    shape = (code - 1) % 4
    a = 1 if shape == 3 else 0
    lo = 0 if shape <= 1 else 1
    hi = 0 if shape == 0 else 1
    kind = P[P_KINDS + b]
    if P[P_OWNER_MODE] == OWNER_BINDING:
        out[n] = 1 + 4 * nb
        return n + 1
    if kind == POOL:
        out[n] = 1 + 2 * b + a
        return n + 1
    if P[P_PAGE_MODE]:
        if kind == DEVMEM:
            if P[P_SOCKET]:
                return n
            out[n] = 1 + 2 * nb + b
            return n + 1
        if P[P_PAGE_MODE] == PAGE_FIRST:
            out[n] = 1 + 2 * b + a
            return n + 1
        for q in range(lo, hi + 1):
            out[n] = 1 + 2 * b + q
            n += 1
        return n
    out[n] = 1 + 2 * nb + b
    return n + 1


@njit(cache=CACHE, inline="always", _nrt=False)
def _per_holding(P):
    om = P[P_OWNER_MODE]
    return om == OWNER_SHINFO or om == OWNER_SKB


@njit(cache=CACHE, _nrt=False)
def _frag_refs(P, SH, i, lo, hi, out, n):
    """What frags lo..hi of shared info i hold by themselves (per frag reference designs)."""
    if _per_holding(P):
        return n
    for k in range(lo, hi + 1):
        n = _frag_lines(P, SH[i, 3 + k], out, n)
    return n


@njit(cache=CACHE, _nrt=False)
def _frag_refs_arr(P, arr, lo, hi, out, n):
    """_frag_refs of the codes arr[lo..hi]."""
    if _per_holding(P):
        return n
    for k in range(lo, hi + 1):
        n = _frag_lines(P, arr[k], out, n)
    return n


@njit(cache=CACHE, inline="always", _nrt=False)
def _code_hmask(P, code, scratch):
    """The owner set (explorer_twin.Explorer.hmask) of one frag, as a bitmask."""
    if not P[P_HOLDS]:
        return 0
    if _per_holding(P):
        n = _frag_lines(P, code, scratch, 0)
        m = 0
        for j in range(n):
            m |= 1 << (scratch[j] - 1)
        return m
    if P[P_SOCKET]:
        b = (code - 1) // 4
        if P[P_KINDS + b] == DEVMEM:
            return 1 << (2 * P[P_NB] + b)
    return 0


@njit(cache=CACHE, _nrt=False)
def _hmask_sh(P, SH, i, lo, hi, scratch):
    """The owner set of frags lo..hi of shared info i."""
    if not P[P_HOLDS]:
        return 0
    m = 0
    for k in range(lo, hi + 1):
        m |= _code_hmask(P, SH[i, 3 + k], scratch)
    return m


@njit(cache=CACHE, _nrt=False)
def _hmask_arr(P, arr, lo, hi, scratch):
    """The owner set of the codes arr[lo..hi]."""
    if not P[P_HOLDS]:
        return 0
    m = 0
    for k in range(lo, hi + 1):
        m |= _code_hmask(P, arr[k], scratch)
    return m


@njit(cache=CACHE, inline="always", _nrt=False)
def _mask_tokens(m, out, n):
    i = 0
    while m >> i:
        if m >> i & 1:
            out[n] = i + 1
            n += 1
        i += 1
    return n


@njit(cache=CACHE, inline="always", _nrt=False)
def _ok(P, rule):
    return P[P_RULES] & rule != 0


@njit(cache=CACHE, _nrt=False)
def _covers(code, b, p):
    shape = (code - 1) % 4
    lo = 0 if shape <= 1 else 1
    hi = 0 if shape == 0 else 1
    return (code - 1) // 4 == b and lo <= p <= hi


@njit(cache=CACHE, _nrt=False)
def _live_covers(P, G, SH, EX, b, p):
    """Whether a frag of a live skb, a pipe buffer or a mapping covers page p of buffer b."""
    for i in range(G[G_NSH]):
        if SH[i, 0] == 0:
            continue
        for k in range(SH[i, 2]):
            if _covers(SH[i, 3 + k], b, p):
                return True
    for i in range(G[G_NEXT]):
        if _covers(EX[i, 1], b, p):
            return True
    return False


@njit(cache=CACHE, _nrt=False)
def _kill(P, M, b, p):
    _s0, S, _o, _t = _views(P, M)
    G, W, SH, EX = S[0], S[1], S[2], S[4]
    if W[b, B_ALIVE0 + p]:
        W[b, B_ALIVE0 + p] = 0
        if _live_covers(P, G, SH, EX, b, p):
            G[G_BAD] |= 1 << UAF


@njit(cache=CACHE, _nrt=False)
def _complete(P, M, b):
    _s0, S, _o, _t = _views(P, M)
    G, W, SH, EX = S[0], S[1], S[2], S[4]
    W[b, B_DONE] = 1
    if _live_covers(P, G, SH, EX, b, 0) or _live_covers(P, G, SH, EX, b, 1):
        G[G_BAD] |= 1 << EARLY


@njit(cache=CACHE, _nrt=False)
def _get_ref(P, M, tok):
    _s0, S, _o, _t = _views(P, M)
    G, W = S[0], S[1]
    nb = P[P_NB]
    x = tok - 1
    if x < 2 * nb:
        b, p = x // 2, x % 2
        if not W[b, B_ALIVE0 + p]:
            G[G_BAD] |= 1 << UAF
        W[b, B_PC0 + p] += 1
    elif x < 3 * nb:
        b = x - 2 * nb
        if W[b, B_OALIVE] != 1:
            G[G_BAD] |= 1 << UAF
        W[b, B_OC] += 1
    elif x < 4 * nb:
        b = x - 3 * nb
        if W[b, B_DONE]:
            G[G_BAD] |= 1 << UAF
        W[b, B_UC] += 1
    else:
        G[G_BIND] += 1


@njit(cache=CACHE, _nrt=False)
def _put_ref(P, M, tok):
    _s0, S, _o, _t = _views(P, M)
    G, W = S[0], S[1]
    nb = P[P_NB]
    om = P[P_OWNER_MODE]
    x = tok - 1
    if x < 2 * nb:
        b, p = x // 2, x % 2
        if W[b, B_PC0 + p] == 0:
            G[G_BAD] |= 1 << DOUBLE
            return
        W[b, B_PC0 + p] -= 1
        if W[b, B_PC0 + p] == 0:
            _kill(P, M, b, p)
    elif x < 3 * nb:
        b = x - 2 * nb
        if W[b, B_OC] == 0 or not W[b, B_OALIVE]:
            G[G_BAD] |= 1 << DOUBLE
            return
        W[b, B_OC] -= 1
        if W[b, B_OC] == 0:
            kind = P[P_KINDS + b]
            if kind == DEVMEM:
                W[b, B_OALIVE] = 2  # the binding's free is queued (unbind_w)
            else:
                W[b, B_OALIVE] = 0
                _kill(P, M, b, 0)
                _kill(P, M, b, 1)
            if OWNER_FRAG <= om <= OWNER_SKB and (kind == USER or kind == DEVMEM):
                _complete(P, M, b)
    elif x < 4 * nb:
        b = x - 3 * nb
        if W[b, B_UC] == 0:
            G[G_BAD] |= 1 << DOUBLE
            return
        W[b, B_UC] -= 1
        if W[b, B_UC] == 0:
            _complete(P, M, b)
            if om == OWNER_BINDING and P[P_KINDS + b] == USER and not W[b, B_HOLDER]:
                _kill(P, M, b, 0)
                _kill(P, M, b, 1)
    else:
        if G[G_BIND] == 0:
            G[G_BAD] |= 1 << DOUBLE
            return
        G[G_BIND] -= 1
        if G[G_BIND] == 0:  # the binding's last put: the dma-buf's free is queued (unbind_w)
            for b in range(nb):
                if P[P_KINDS + b] == DEVMEM and W[b, B_OALIVE] == 1 and not W[b, B_HOLDER]:
                    W[b, B_OALIVE] = 2


@njit(cache=CACHE, _nrt=False)
def _apply(P, M, gets, ng, puts, npu):
    for k in range(ng):
        _get_ref(P, M, gets[k])
    for k in range(npu):
        _put_ref(P, M, puts[k])


@njit(cache=CACHE, _nrt=False)
def _add_op(P, G, OP, toks, n):
    if n == 0:
        return
    i = G[G_NOP]
    ow = P[P_OW]
    for k in range(ow):
        OP[i, k] = 0
    OP[i, 0] = n
    for k in range(n):
        OP[i, 1 + k] = toks[k]
    G[G_NOP] = i + 1


@njit(cache=CACHE, _nrt=False)
def _remove_sh(P, G, SH, i):
    last = G[G_NSH] - 1
    sw = P[P_SW]
    for k in range(sw):
        SH[i, k] = SH[last, k]
        SH[last, k] = 0
    G[G_NSH] = last


@njit(cache=CACHE, inline="always", _nrt=False)
def _dataref(P, SH, i):
    return SH[i, 0] + SH[i, 1] - SH[i, 5 + P[P_F] + P[P_S]]


@njit(cache=CACHE, _nrt=False)
def _release(P, M, i, toks, n):
    """dataref reached zero: append the shared info's references to toks, and remove it (under a live skb: a
    use-after-free)."""
    _s0, S, _o, _t = _views(P, M)
    G, SH = S[0], S[2]
    f, s = P[P_F], P[P_S]
    nf, nl = SH[i, 2], SH[i, 6 + f + s]
    if SH[i, 0]:
        G[G_BAD] |= 1 << UAF
    n = _frag_refs(P, SH, i, 0, nf - nl - 1, toks, n)
    if P[P_OWNER_MODE] == OWNER_SHINFO:
        n = _mask_tokens(SH[i, 3 + f], toks, n)
    if nl and _ok(P, R_FRAGLIST):
        n = _frag_refs(P, SH, i, nf - nl, nf - 1, toks, n)
        n = _mask_tokens(SH[i, 7 + f + s], toks, n)
    if P[P_UARG] and SH[i, 4 + f]:
        toks[n] = 1 + 3 * P[P_NB] + SH[i, 4 + f] - 1
        n += 1
    _remove_sh(P, G, SH, i)
    return n


@njit(cache=CACHE, _nrt=False)
def _new_sh(P, G, SH):
    """A new shared info with one skb; returns its row."""
    i = G[G_NSH]
    for k in range(P[P_SW]):
        SH[i, k] = 0
    SH[i, 0] = 1
    SH[i, 5 + P[P_F]] = 1
    G[G_NSH] = i + 1
    return i


@njit(cache=CACHE, _nrt=False)
def _inherit_uarg(P, SH, old, new, gets, ng):
    f = P[P_F]
    ua = SH[old, 4 + f]
    if ua:
        SH[new, 4 + f] = ua
        if P[P_UARG]:
            gets[ng] = 1 + 3 * P[P_NB] + ua - 1
            ng += 1
    return ng


@njit(cache=CACHE, _nrt=False)
def _pop_member(P, SH, i, j):
    """Remove the j-th skb of shared info i (members are kept sorted); returns its record."""
    o = 5 + P[P_F]
    nm = SH[i, 0]
    m = SH[i, o + j]
    for k in range(j, nm - 1):
        SH[i, o + k] = SH[i, o + k + 1]
    SH[i, o + nm - 1] = 0
    SH[i, 0] = nm - 1
    return m


@njit(cache=CACHE, inline="always", _nrt=False)
def _same_row(SH, i, sw):
    for k in range(sw):
        if SH[i, k] != SH[i - 1, k]:
            return False
    return True


@njit(cache=CACHE, inline="always", _nrt=False)
def _busy(G, SH):
    n = G[G_NOP]
    for i in range(G[G_NSH]):
        n += SH[i, 1]
    return n


@njit(cache=CACHE, inline="always", _nrt=False)
def _nskbs(G, SH):
    n = 0
    for i in range(G[G_NSH]):
        n += SH[i, 0]
    return n


@njit(cache=CACHE, inline="always", _nrt=False)
def _unshared(P, SH, i):
    """One skb, no dataref in flight, no frag_list (explorer_twin.Explorer.unshared)."""
    return SH[i, 0] == 1 and SH[i, 1] == 0 and SH[i, 6 + P[P_F] + P[P_S]] == 0


# ---- the owner invariant ------------------------------------------------------------------------------
@njit(cache=CACHE, inline="always", _nrt=False)
def _holding(P, SH, i):
    if P[P_OWNER_MODE] == OWNER_SHINFO:
        return SH[i, 3 + P[P_F]]
    if P[P_SKB_HELD]:
        return SH[i, 5 + P[P_F]] - 1
    return 0


@njit(cache=CACHE, inline="always", _nrt=False)
def _set_holding(P, SH, i, m):
    if P[P_OWNER_MODE] == OWNER_SHINFO:
        SH[i, 3 + P[P_F]] = m
    elif P[P_SKB_HELD]:
        SH[i, 5 + P[P_F]] = 1 + m


@njit(cache=CACHE, _nrt=False)
def _rebalance(P, SH, i, new, get_ok, put_ok, gets, ng, puts, npu):
    """explorer_twin.Explorer.rebalance: shared info i comes to hold the owner set ``new``; returns (ng, npu)."""
    if not P[P_HOLDS]:
        return ng, npu
    old = _holding(P, SH, i)
    if get_ok:
        ng = _mask_tokens(new & ~old, gets, ng)
    if put_ok:
        npu = _mask_tokens(old & ~new, puts, npu)
    _set_holding(P, SH, i, new)
    return ng, npu


@njit(cache=CACHE, _nrt=False)
def _over(P, mask):
    """The owner set needs more slots than the owner array has (explorer_twin.Explorer.over)."""
    if P[P_SLOTS] == 0:
        return False
    nb = P[P_NB]
    m = (mask >> (2 * nb)) & ((1 << nb) - 1)
    n = 0
    while m:
        n += m & 1
        m >>= 1
    return n > P[P_SLOTS]


@njit(cache=CACHE, _nrt=False)
def _copy_slot(P, W0):
    for b in range(P[P_NINIT], P[P_NB]):
        if not W0[b, B_USED]:
            return b
    return -1


@njit(cache=CACHE, _nrt=False)
def _fallback(P, W0, mask, has_devmem, counter):
    """explorer_twin.Explorer.fallback for a shared info whose owner set becomes ``mask``: 0 it fits, -1 refused,
    else 1 + the copy buffer; counts the refusals and copies in counter[0]."""
    if not _over(P, mask):
        return 0
    counter[0] += 1
    if P[P_COPY_FB]:
        slot = _copy_slot(P, W0)
        if slot >= 0 and not has_devmem:
            return 1 + slot
    return -1


@njit(cache=CACHE, _nrt=False)
def _copy_into(P, M, i, slot, gets, ng, toks, nt, scratch):
    """explorer_twin.Explorer.copy_into: shared info i's data into copy buffer ``slot``; returns (ng, nt)."""
    _s0, S, _o, _t = _views(P, M)
    W, SH = S[1], S[2]
    f, nb = P[P_F], P[P_NB]
    W[slot, B_USED] = 1
    W[slot, B_ALIVE0] = 1
    W[slot, B_ALIVE1] = 0
    W[slot, B_OALIVE] = 1 if OWNER_FRAG <= P[P_OWNER_MODE] <= OWNER_SKB else 0
    code = 1 + 4 * slot
    nf = SH[i, 2]
    nt = _frag_refs(P, SH, i, 0, nf - 1, toks, nt)
    if not _per_holding(P):
        ng = _frag_lines(P, code, gets, ng)
    ng, nt = _rebalance(P, SH, i, _code_hmask(P, code, scratch), True, _ok(P, R_COPY), gets, ng, toks, nt)
    for q in range(nf):
        SH[i, 3 + q] = 0
    SH[i, 3] = code
    SH[i, 2] = 1
    if SH[i, 4 + f] and P[P_UARG]:
        toks[nt] = 1 + 3 * nb + SH[i, 4 + f] - 1  # skb_zcopy_clear(): the completion, "copied"
        nt += 1
    SH[i, 4 + f] = 0
    return ng, nt


@njit(cache=CACHE, _nrt=False)
def _has_devmem(P, SH, i):
    for q in range(SH[i, 2]):
        if P[P_KINDS + (SH[i, 3 + q] - 1) // 4] == DEVMEM:
            return True
    return False


# ---- splits ---------------------------------------------------------------------------------------------
@njit(cache=CACHE, _nrt=False)
def _split_choice(P, SH, i, c, head, tail):
    """The c-th way to cut shared info i's frags (explorer_twin.Explorer.split_choices): fills head and tail,
    returns (len(head), len(tail)), or (-1, -1) past the last choice."""
    nf = SH[i, 2]
    idx = 0
    for k in range(nf):
        code = SH[i, 3 + k]
        shape = (code - 1) % 4
        b = (code - 1) // 4
        ncuts = 1 if shape != 1 else 3
        for cut in range(ncuts):
            if idx == c:
                for q in range(k):
                    head[q] = SH[i, 3 + q]
                if shape != 1:
                    h, t = code, code
                elif cut == 0:
                    h, t = 1 + 4 * b + 0, code
                elif cut == 1:
                    h, t = 1 + 4 * b + 0, 1 + 4 * b + 2
                else:
                    h, t = code, 1 + 4 * b + 2
                head[k] = h
                tail[0] = t
                for q in range(k + 1, nf):
                    tail[q - k] = SH[i, 3 + q]
                return k + 1, nf - k
            idx += 1
        if k < nf - 1:
            if idx == c:
                for q in range(k + 1):
                    head[q] = SH[i, 3 + q]
                for q in range(k + 1, nf):
                    tail[q - k - 1] = SH[i, 3 + q]
                return k + 1, nf - k - 1
            idx += 1
    return -1, -1


@njit(cache=CACHE, _nrt=False)
def _shift_choice(P, SH, i, c, head, tail):
    """The c-th way skb_shift() can move a head of shared info i's frags (explorer_twin.Explorer.shift_choices):
    the split's cuts, then all of them; (-1, -1) past the last."""
    nf = SH[i, 2]
    nsplit = nf - 1
    for k in range(nf):
        nsplit += 3 if (SH[i, 3 + k] - 1) % 4 == 1 else 1
    if c < nsplit:
        return _split_choice(P, SH, i, c, head, tail)
    if c > nsplit:
        return -1, -1
    for q in range(nf):
        head[q] = SH[i, 3 + q]
    return nf, 0


@njit(cache=CACHE, _nrt=False)
def _gain(P, SH, i, head, nh, tail, nt, sign, out, toks, cnt):
    """explorer_twin.multiset_gain into out: sign 1, the frag references of head and tail beyond shared info
    i's (a split's or a shift's gets); sign -1, shared info i's beyond those of tail (a trim's puts). Returns
    how many."""
    if _per_holding(P):
        return 0
    top = 4 * P[P_NB] + 2  # tokens are 1..1+4nb
    for q in range(top):
        cnt[q] = 0
    for q in range(nh):
        n = _frag_lines(P, head[q], toks, 0)
        for r in range(n):
            cnt[toks[r]] += sign
    for q in range(nt):
        n = _frag_lines(P, tail[q], toks, 0)
        for r in range(n):
            cnt[toks[r]] += sign
    n = _frag_refs(P, SH, i, 0, SH[i, 2] - 1, toks, 0)
    for r in range(n):
        cnt[toks[r]] -= sign
    ng = 0
    for t in range(1, top):
        for _ in range(cnt[t]):
            out[ng] = t
            ng += 1
    return ng


# ---- the work arrays ---------------------------------------------------------------------------------------
# One state's successors are built in four groups of arrays:
#   S0 = (G0, W0, SH0, OP0, EX0)  the state being expanded, decoded (read only)
#   S  = (G, W, SH, OP, EX)       the successor being built (a copy of S0, then the step)
#   O  = (SUCC, LAB, BAD, cand)   the successors out: canonical rows, step labels, violation bits; cand: scratch
#                                 (SUCC and cand: int16 rows padded to whole words, :func:`_padded`)
#   T  = (gets, puts, toks, scratch, cnt, head, tail, fb)  token lists and scratch; fb[0] counts fallbacks
# all views of one int64 buffer M: a handler takes (P, M, k) and makes the views it uses (_views, inlined), as
# passing 22 arrays to each of 21 handlers per state cost more than most handlers' own work.
@njit(cache=CACHE, inline="always", _nrt=False)
def _state_views(P, M, at):
    nb, s, c, sw, ow, x = P[P_NB], P[P_S], P[P_C], P[P_SW], P[P_OW], P[P_X]
    G = M[at:at + NG]
    at += NG
    W = grid(M, at, nb, BW)
    at += nb * BW
    SH = grid(M, at, s + 1, sw + 1)
    at += (s + 1) * (sw + 1)
    OP = grid(M, at, c + 1, ow)
    at += (c + 1) * ow
    EX = grid(M, at, x + 1, EW)
    return (G, W, SH, OP, EX), at + (x + 1) * EW


@njit(cache=CACHE, inline="always", _nrt=False)
def _views(P, M):
    """The arrays S0, S, O and T in the work buffer M (:func:`_workspace`)."""
    width = P[P_WIDTH]
    S0, at = _state_views(P, M, 0)
    S, at = _state_views(P, M, at)
    wp = _padded(width)
    SUCC = grid16(M, at, MAX_SUCC, wp)
    at += MAX_SUCC * wp // 4
    LAB = grid(M, at, MAX_SUCC, 4)
    at += MAX_SUCC * 4
    BAD = M[at:at + MAX_SUCC]
    at += MAX_SUCC
    cand = grid16(M, at, 1, wp)[0]
    at += wp // 4
    T = grid(M, at, 8, SCRATCH)  # the last row's first entry counts fallbacks
    return S0, S, (SUCC, LAB, BAD, cand), (T[0], T[1], T[2], T[3], T[4], T[5], T[6], T[7])


@njit(cache=CACHE)
def _views_boxed(P, M):
    """:func:`_views`, for Python (the views keep M alive)."""
    return _views(P, M)


@njit(cache=CACHE)
def _workspace(P):
    """The work buffer M for the parameters P, zeroed (its arrays: :func:`_views`)."""
    return np.zeros(2 * _state_words(P) + (MAX_SUCC + 1) * _padded(P[P_WIDTH]) // 4 + MAX_SUCC * 5 + 8 * SCRATCH,
                    np.int64)


@njit(cache=CACHE, inline="always", _nrt=False)
def _state_words(P):
    """The words of one work state's arrays in M (:func:`_state_views`)."""
    nb, s, c, sw, ow, x = P[P_NB], P[P_S], P[P_C], P[P_SW], P[P_OW], P[P_X]
    return NG + nb * BW + (s + 1) * (sw + 1) + (c + 1) * ow + (x + 1) * EW


@njit(cache=CACHE, inline="always", _nrt=False)
def _padded(width):
    """A successor row's length in int16: ``width`` fields, padded with zeros to whole 8-byte words, so that each
    row starts on a word and its fingerprint reads four fields a load (:func:`words`)."""
    return (width + 3) // 4 * 4


@njit(cache=CACHE, _nrt=False)
def _start_step(P, M):
    """The successor S starts as a copy of the state S0 (explorer_twin: ``self.decode(v)``): S0's words, which
    start M, copied over S's, which follow them (:func:`_views`). A call, not inlined in each handler: inlined,
    its arithmetic was hoisted to the handler's start and paid on every handler call, steps or none."""
    n = np.uint64(_state_words(P))
    for k in range(n):
        M[n + k] = M[k]


@njit(cache=CACHE, _nrt=False)
def _emit(P, M, k, l0, l1, l2, l3):
    """Successor k is the work state, reached by step (l0, l1, l2, l3): its label, violations and, if none,
    its canonical form. Returns k + 1."""
    _s0, S, O, _t = _views(P, M)
    G = S[0]
    SUCC, LAB, BAD = O[0], O[1], O[2]
    LAB[k, 0] = l0
    LAB[k, 1] = l1
    LAB[k, 2] = l2
    LAB[k, 3] = l3
    BAD[k] = G[G_BAD]
    if G[G_BAD] == 0:
        _encode(P, M, SUCC[k])
    return k + 1


@njit(cache=CACHE, inline="always", _nrt=False)
def _distinct(SH0, i, sw):
    """Shared info i differs from the one before it (explorer_twin.Explorer.shinfos: identical ones step
    alike, so only the first steps); _decode notes it in column sw."""
    return SH0[i, sw] != 0


@njit(cache=CACHE, inline="always", _nrt=False)
def _distinct_member(SH0, i, j, o_mem):
    """The j-th skb of shared info i differs from the one before it (explorer_twin.Explorer.members)."""
    return j == 0 or SH0[i, o_mem + j] != SH0[i, o_mem + j - 1]


# ---- one handler per operation: explorer_twin.Explorer's method of the same name ------------------------------
# Each takes (P, M, k): the parameters, the work buffer (_views) and the first free row of O; it appends its steps
# from S0 to O from row k on and returns the next free row.
@njit(cache=CACHE, _nrt=False)
def put(P, M, k):
    """The next reference an in-flight operation drops (a CPU drops them in order)."""
    S0, S, O, _t = _views(P, M)
    G0, OP0 = S0[0], S0[3]
    G, OP = S[0], S[3]
    ow = P[P_OW]
    for i in range(G0[G_NOP]):
        if i > 0 and _same_row(OP0, i, ow):
            continue
        _start_step(P, M)
        tok = OP[i, 1]
        nt = OP[i, 0]
        if nt == 1:  # the operation is done: its CPU is idle
            last = G[G_NOP] - 1
            for q in range(ow):
                OP[i, q] = OP[last, q]
                OP[last, q] = 0
            G[G_NOP] = last
        else:
            for q in range(1, nt):
                OP[i, q] = OP[i, q + 1]
            OP[i, nt] = 0
            OP[i, 0] = nt - 1
        _put_ref(P, M, tok)
        k = _emit(P, M, k, PUT, i, tok, 0)
    return k


@njit(cache=CACHE, _nrt=False)
def drop(P, M, k):
    """expand_head's dataref decrement on the old shared info; the last one releases it."""
    S0, S, O, T = _views(P, M)
    G0, SH0 = S0[0], S0[2]
    G, SH, OP = S[0], S[2], S[3]
    toks = T[2]
    for i in range(G0[G_NSH]):
        if not _distinct(SH0, i, P[P_SW]) or SH0[i, 1] == 0:
            continue
        _start_step(P, M)
        SH[i, 1] -= 1
        if _dataref(P, SH, i) == 0:
            _add_op(P, G, OP, toks, _release(P, M, i, toks, 0))
        k = _emit(P, M, k, DROP, i, 0, 0)
    return k


@njit(cache=CACHE, _nrt=False)
def unbind_w(P, M, k):
    """The workqueue runs __net_devmem_dmabuf_binding_free() (6.16+): the dma-buf is unmapped and detached."""
    S0, S, O, _t = _views(P, M)
    W0 = S0[1]
    W = S[1]
    for b in range(P[P_NB]):
        if W0[b, B_OALIVE] != 2:
            continue
        _start_step(P, M)
        W[b, B_OALIVE] = 0
        _kill(P, M, b, 0)
        _kill(P, M, b, 1)
        k = _emit(P, M, k, UNBIND_W, b, 0, 0)
    return k


@njit(cache=CACHE, _nrt=False)
def attach_new(P, M, k):
    """A frag of a held buffer to a new skb (see _attach_frag)."""
    S0, _s, _o, _t = _views(P, M)
    G0, SH0 = S0[0], S0[2]
    if _nskbs(G0, SH0) < P[P_S] and G0[G_NSH] < P[P_S]:
        k = _attach_frag(P, M, k, -1)
    return k


@njit(cache=CACHE, _nrt=False)
def attach(P, M, k):
    """A frag of a held buffer to an skb no one else shares (see _attach_frag)."""
    S0, _s, _o, _t = _views(P, M)
    G0, SH0 = S0[0], S0[2]
    for i in range(G0[G_NSH]):
        if _distinct(SH0, i, P[P_SW]) and _unshared(P, SH0, i) and SH0[i, 2] < P[P_F]:
            k = _attach_frag(P, M, k, i)
    return k


@njit(cache=CACHE, _nrt=False)
def _attach_frag(P, M, k, target):
    """A frag of each held buffer, in each shape, to shared info ``target`` (-1: a new one): skb_fill_page_desc()
    and the frag's reference; a devmem send's binding ref while it runs (explorer_twin.Explorer.attach_frag)."""
    S0, S, O, T = _views(P, M)
    W0, SH0 = S0[1], S0[2]
    G, SH, OP = S[0], S[2], S[3]
    gets, puts, toks, scratch = T[0], T[1], T[2], T[3]
    nb, f = P[P_NB], P[P_F]
    pm, ua = P[P_PAGE_MODE], P[P_UARG]
    owner_design = OWNER_FRAG <= P[P_OWNER_MODE] <= OWNER_SKB
    o_ua = 4 + f
    for b in range(P[P_NINIT]):
        kind = P[P_KINDS + b]
        if not W0[b, B_HOLDER] or (kind == KMALLOC and pm != 0):
            continue
        completes = kind == USER or kind == DEVMEM
        if target >= 0 and ua and completes and SH0[target, o_ua] != 0 and SH0[target, o_ua] != b + 1:
            continue  # an skb points at one ubuf_info (skb_zerocopy_iter_stream(): -EEXIST)
        nshapes = 2 if (kind == POOL or not P[P_SPAN]) else 3
        for si in range(nshapes):
            shape = (0, 3)[si] if nshapes == 2 else (0, 1, 3)[si]
            code = 1 + 4 * b + shape
            fb = 0
            if target >= 0 and P[P_SLOTS]:
                m = _hmask_sh(P, SH0, target, 0, SH0[target, 2] - 1, scratch) | _code_hmask(P, code, scratch)
                fb = _fallback(P, W0, m, _has_devmem(P, SH0, target) or kind == DEVMEM, T[7])
                if fb < 0:
                    continue
            _start_step(P, M)
            i = _new_sh(P, G, SH) if target < 0 else target
            ng = _frag_lines(P, code, gets, 0) if not _per_holding(P) else 0
            npu = 0
            nt = 0
            if kind == DEVMEM and not owner_design:
                lookup = 1 + 4 * nb if P[P_OWNER_MODE] == OWNER_BINDING else 1 + 2 * nb + b
                gets[ng] = lookup
                ng += 1
                toks[0] = lookup
                nt = 1
            nf = SH[i, 2]
            SH[i, 3 + nf] = code
            SH[i, 2] = nf + 1
            ng, npu = _rebalance(P, SH, i, _hmask_sh(P, SH, i, 0, nf, scratch), True, True, gets, ng, puts, npu)
            if ua and completes and SH[i, o_ua] == 0:
                SH[i, o_ua] = b + 1  # skb_zcopy_set(): the shared info holds the send's ubuf_info
                gets[ng] = 1 + 3 * nb + b
                ng += 1
            if fb:
                ng, nt = _copy_into(P, M, i, fb - 1, gets, ng, toks, nt, scratch)
            _apply(P, M, gets, ng, puts, npu)
            _add_op(P, G, OP, toks, nt)
            if target < 0:
                k = _emit(P, M, k, ATTACH_NEW, b, shape, 0)
            else:
                k = _emit(P, M, k, ATTACH, target, b, shape | (COPIED if fb else 0))
    return k


@njit(cache=CACHE, _nrt=False)
def clone(P, M, k):
    """skb_clone(): the clone shares the shared info (dataref + 1); per-skb owners take their own refs."""
    S0, S, O, T = _views(P, M)
    G0, SH0 = S0[0], S0[2]
    SH = S[2]
    gets, puts, scratch = T[0], T[1], T[3]
    f, s, sw = P[P_F], P[P_S], P[P_SW]
    o_mem = 5 + f
    if _nskbs(G0, SH0) >= s:
        return k
    for i in range(G0[G_NSH]):
        if not _distinct(SH0, i, sw) or SH0[i, 0] == 0:
            continue
        for j in range(SH0[i, 0]):
            if not _distinct_member(SH0, i, j, o_mem):
                continue
            _start_step(P, M)
            nown = SH[i, 2] - SH[i, 6 + f + s]
            mask = _hmask_sh(P, SH, i, 0, nown - 1, scratch) if P[P_SKB_HELD] else 0
            ng = _mask_tokens(mask, gets, 0)
            SH[i, o_mem + SH[i, 0]] = 1 + mask
            SH[i, 0] += 1
            if not _ok(P, R_CLONE):
                SH[i, 5 + f + s] += 1  # the mutant: the clone takes no dataref
            _apply(P, M, gets, ng, puts, 0)
            k = _emit(P, M, k, CLONE, i, j, 0)
    return k


@njit(cache=CACHE, _nrt=False)
def split(P, M, k):
    """skb_split() of an skb no one else shares: a frag cut in two holds references in both halves."""
    S0, S, O, T = _views(P, M)
    G0, SH0 = S0[0], S0[2]
    G, SH = S[0], S[2]
    gets, puts, toks, scratch, cnt, head, tail = T[0], T[1], T[2], T[3], T[4], T[5], T[6]
    s = P[P_S]
    if _nskbs(G0, SH0) >= s or G0[G_NSH] >= s:
        return k
    for i in range(G0[G_NSH]):
        if not _distinct(SH0, i, P[P_SW]) or not _unshared(P, SH0, i) or SH0[i, 2] == 0:
            continue
        ch = 0
        while True:
            nh, nt = _split_choice(P, SH0, i, ch, head, tail)
            if nh < 0:
                break
            _start_step(P, M)
            npu = 0
            ng = _gain(P, SH, i, head, nh, tail, nt, 1, gets, toks, cnt)
            j = _new_sh(P, G, SH)
            for q in range(nt):
                SH[j, 3 + q] = tail[q]
            SH[j, 2] = nt
            ng, npu = _rebalance(P, SH, i, _hmask_arr(P, head, 0, nh - 1, scratch), True, True, gets, ng, puts, npu)
            ng, npu = _rebalance(P, SH, j, _hmask_arr(P, tail, 0, nt - 1, scratch), _ok(P, R_SPLIT), True, gets, ng,
                                 puts, npu)
            for q in range(SH[i, 2]):
                SH[i, 3 + q] = head[q] if q < nh else 0
            SH[i, 2] = nh
            ng = _inherit_uarg(P, SH, i, j, gets, ng)
            _apply(P, M, gets, ng, puts, npu)
            k = _emit(P, M, k, SPLIT, i, ch, 0)
            ch += 1
    return k


@njit(cache=CACHE, _nrt=False)
def segment(P, M, k):
    """skb_segment(): a new skb from a run of another's frags (a chain's included), each piece referenced
    again."""
    S0, S, O, T = _views(P, M)
    G0, SH0 = S0[0], S0[2]
    G, SH = S[0], S[2]
    gets, puts, scratch = T[0], T[1], T[3]
    s = P[P_S]
    if _nskbs(G0, SH0) >= s or G0[G_NSH] >= s:
        return k
    for i in range(G0[G_NSH]):
        if not _distinct(SH0, i, P[P_SW]) or SH0[i, 0] == 0 or SH0[i, 2] == 0:
            continue
        nf = SH0[i, 2]
        for lo in range(nf):
            for hi in range(lo, nf):
                _start_step(P, M)
                ng = _frag_refs(P, SH, i, lo, hi, gets, 0)
                j = _new_sh(P, G, SH)
                for q in range(lo, hi + 1):
                    SH[j, 3 + q - lo] = SH[i, 3 + q]
                SH[j, 2] = hi - lo + 1
                ng, _np = _rebalance(P, SH, j, _hmask_sh(P, SH, j, 0, hi - lo, scratch), _ok(P, R_SEGMENT), True,
                                     gets, ng, puts, 0)
                ng = _inherit_uarg(P, SH, i, j, gets, ng)
                _apply(P, M, gets, ng, puts, 0)
                k = _emit(P, M, k, SEGMENT, i, lo, hi)
    return k


@njit(cache=CACHE, _nrt=False)
def expand_head(P, M, k):
    """pskb_expand_head() on a cloned skb: a private shared info referencing the frags (a frag_list child's too)
    again; the old one's dataref drops in a second step (drop)."""
    S0, S, O, T = _views(P, M)
    G0, SH0 = S0[0], S0[2]
    G, SH = S[0], S[2]
    gets, puts, scratch = T[0], T[1], T[3]
    f, s = P[P_F], P[P_S]
    o_mem, o_nl, o_loh = 5 + f, 6 + f + s, 7 + f + s
    if G0[G_NSH] >= s:
        return k
    for i in range(G0[G_NSH]):
        if not _distinct(SH0, i, P[P_SW]) or SH0[i, 0] == 0 or _dataref(P, SH0, i) < 2:
            continue
        for jm in range(SH0[i, 0]):
            if not _distinct_member(SH0, i, jm, o_mem):
                continue
            _start_step(P, M)
            member = _pop_member(P, SH, i, jm)  # per-skb owners: the skb's refs move with it
            SH[i, 1] += 1
            nf, nl = SH[i, 2], SH[i, o_nl]
            ng = _frag_refs(P, SH, i, 0, nf - 1, gets, 0)
            j = _new_sh(P, G, SH)
            for q in range(nf):
                SH[j, 3 + q] = SH[i, 3 + q]
            SH[j, 2] = nf
            SH[j, o_mem] = member
            SH[j, o_nl] = nl
            if P[P_OWNER_MODE] == OWNER_SHINFO:
                ng, _np = _rebalance(P, SH, j, _hmask_sh(P, SH, j, 0, nf - nl - 1, scratch), _ok(P, R_EXPAND), True,
                                     gets, ng, puts, 0)
            if P[P_HOLDS] and nl:
                SH[j, o_loh] = _hmask_sh(P, SH, j, nf - nl, nf - 1, scratch)
                if _ok(P, R_EXPAND):
                    ng = _mask_tokens(SH[j, o_loh], gets, ng)
            ng = _inherit_uarg(P, SH, i, j, gets, ng)
            _apply(P, M, gets, ng, puts, 0)
            k = _emit(P, M, k, EXPAND, i, jm, 0)
    return k


@njit(cache=CACHE, _nrt=False)
def coalesce(P, M, k):
    """skb_try_coalesce(): the frags of another skb appended to one no one else shares; moved with their
    references, or referenced again if the other skb is cloned. Refused for zerocopy and frag_list skbs."""
    S0, S, O, T = _views(P, M)
    G0, W0, SH0 = S0[0], S0[1], S0[2]
    G, SH, OP = S[0], S[2], S[3]
    gets, puts, toks, scratch = T[0], T[1], T[2], T[3]
    f, s, ua = P[P_F], P[P_S], P[P_UARG]
    o_ua, o_nl = 4 + f, 6 + f + s
    nsh0 = G0[G_NSH]
    for i in range(nsh0):
        if not _distinct(SH0, i, P[P_SW]) or not _unshared(P, SH0, i):
            continue
        for src in range(nsh0):
            if src == i or SH0[src, 0] == 0 or SH0[src, 1] or SH0[src, o_nl] or SH0[src, 2] == 0 or \
                    SH0[i, 2] + SH0[src, 2] > f:
                continue
            if ua and (SH0[i, o_ua] or SH0[src, o_ua]):
                continue  # skb_try_coalesce() refuses zerocopy skbs
            fb = 0
            if P[P_SLOTS]:
                m = _hmask_sh(P, SH0, i, 0, SH0[i, 2] - 1, scratch) | _hmask_sh(P, SH0, src, 0, SH0[src, 2] - 1,
                                                                             scratch)
                fb = _fallback(P, W0, m, _has_devmem(P, SH0, i) or _has_devmem(P, SH0, src), T[7])
                if fb < 0:
                    continue
            _start_step(P, M)
            ng = npu = nt = 0
            nd, ns = SH[i, 2], SH[src, 2]
            if SH[src, 0] > 1:  # from is cloned: the target references its copies
                ng = _frag_refs(P, SH, src, 0, ns - 1, gets, 0)
            for q in range(ns):
                SH[i, 3 + nd + q] = SH[src, 3 + q]
            SH[i, 2] = nd + ns
            if SH[src, 0] == 1:  # from is left empty; per-shared-info and per-skb owners drop what it held
                for q in range(ns):
                    SH[src, 3 + q] = 0
                SH[src, 2] = 0
                ng, npu = _rebalance(P, SH, src, 0, True, True, gets, ng, puts, npu)
            ng, npu = _rebalance(P, SH, i, _hmask_sh(P, SH, i, 0, nd + ns - 1, scratch), _ok(P, R_COALESCE), True,
                                 gets, ng, puts, npu)
            if fb:
                ng, nt = _copy_into(P, M, i, fb - 1, gets, ng, toks, nt, scratch)
            _apply(P, M, gets, ng, puts, npu)
            _add_op(P, G, OP, toks, nt)
            k = _emit(P, M, k, COALESCE, i, src, COPIED if fb else 0)
    return k


@njit(cache=CACHE, _nrt=False)
def copy(P, M, k):
    """The copy fallback (skb_copy_ubufs()): the data goes into fresh kernel pages, the old references are dropped
    one by one afterwards. Not for device memory (unreadable: -EFAULT); today only zerocopy skbs."""
    S0, S, O, T = _views(P, M)
    G0, W0, SH0 = S0[0], S0[1], S0[2]
    G, OP = S[0], S[3]
    gets, puts, toks, scratch = T[0], T[1], T[2], T[3]
    ua = P[P_UARG]
    o_ua = 4 + P[P_F]
    slot = _copy_slot(P, W0)
    if P[P_OWNER_MODE] == OWNER_BINDING or slot < 0:
        return k
    for i in range(G0[G_NSH]):
        if not _distinct(SH0, i, P[P_SW]) or not _unshared(P, SH0, i):
            continue
        any_other = False
        for q in range(SH0[i, 2]):
            if P[P_KINDS + (SH0[i, 3 + q] - 1) // 4] != COPY:
                any_other = True
        if not any_other or _has_devmem(P, SH0, i) or (ua and SH0[i, o_ua] == 0):
            continue
        _start_step(P, M)
        ng, nt = _copy_into(P, M, i, slot, gets, 0, toks, 0, scratch)
        _apply(P, M, gets, ng, puts, 0)
        _add_op(P, G, OP, toks, nt)
        k = _emit(P, M, k, COPYFB, i, 0, 0)
    return k


@njit(cache=CACHE, _nrt=False)
def shift(P, M, k):
    """skb_shift() (tcp_shift_skb_data(), tcp_grow_skb()): a head of one unshared skb's frags to another's end;
    a frag cut in two takes one more reference (explorer_twin.Explorer.shift)."""
    S0, S, O, T = _views(P, M)
    G0, W0, SH0 = S0[0], S0[1], S0[2]
    G, SH, OP = S[0], S[2], S[3]
    gets, puts, toks, scratch, cnt, head, tail = T[0], T[1], T[2], T[3], T[4], T[5], T[6]
    f, ua = P[P_F], P[P_UARG]
    o_ua = 4 + f
    nsh0 = G0[G_NSH]
    for i in range(nsh0):
        if not _distinct(SH0, i, P[P_SW]) or not _unshared(P, SH0, i):
            continue
        for src in range(nsh0):
            if src == i or not _unshared(P, SH0, src) or SH0[src, 2] == 0:
                continue
            if ua and (SH0[i, o_ua] or SH0[src, o_ua]):
                continue  # skb_shift() refuses zerocopy skbs
            ch = 0
            while True:
                nh, ntl = _shift_choice(P, SH0, src, ch, head, tail)
                if nh < 0:
                    break
                c = ch
                ch += 1
                nd = SH0[i, 2]
                if nd + nh > f:
                    continue
                fb = 0
                if P[P_SLOTS]:
                    m = _hmask_sh(P, SH0, i, 0, nd - 1, scratch) | _hmask_arr(P, head, 0, nh - 1, scratch)
                    dev = _has_devmem(P, SH0, i)
                    for q in range(nh):
                        if P[P_KINDS + (head[q] - 1) // 4] == DEVMEM:
                            dev = True
                    fb = _fallback(P, W0, m, dev, T[7])
                    if fb < 0:
                        continue
                _start_step(P, M)
                ng = _gain(P, SH, src, head, nh, tail, ntl, 1, gets, toks, cnt)
                npu = nt = 0
                ng, npu = _rebalance(P, SH, src, _hmask_arr(P, tail, 0, ntl - 1, scratch), True, True, gets, ng,
                                     puts, npu)
                for q in range(nh):
                    SH[i, 3 + nd + q] = head[q]
                SH[i, 2] = nd + nh
                ng, npu = _rebalance(P, SH, i, _hmask_sh(P, SH, i, 0, nd + nh - 1, scratch), _ok(P, R_SHIFT), True,
                                     gets, ng, puts, npu)
                for q in range(SH[src, 2]):
                    SH[src, 3 + q] = tail[q] if q < ntl else 0
                SH[src, 2] = ntl
                if fb:
                    ng, nt = _copy_into(P, M, i, fb - 1, gets, ng, toks, nt, scratch)
                _apply(P, M, gets, ng, puts, npu)
                _add_op(P, G, OP, toks, nt)
                k = _emit(P, M, k, SHIFT, i, src, c | (COPIED if fb else 0))
    return k


@njit(cache=CACHE, _nrt=False)
def trim_head(P, M, k):
    """__pskb_trim_head() (tcp_trim_head()): the fully acked frags of an unshared skb dropped, a partly acked one
    kept; owners no longer used are put (explorer_twin.Explorer.trim_head)."""
    S0, S, O, T = _views(P, M)
    G0, SH0 = S0[0], S0[2]
    SH = S[2]
    gets, puts, toks, scratch, cnt, head, tail = T[0], T[1], T[2], T[3], T[4], T[5], T[6]
    for i in range(G0[G_NSH]):
        if not _distinct(SH0, i, P[P_SW]) or not _unshared(P, SH0, i) or SH0[i, 2] == 0:
            continue
        ch = 0
        while True:
            nh, ntl = _split_choice(P, SH0, i, ch, head, tail)
            if nh < 0:
                break
            _start_step(P, M)
            npu = _gain(P, SH, i, head, 0, tail, ntl, -1, puts, toks, cnt)
            ng, npu = _rebalance(P, SH, i, _hmask_arr(P, tail, 0, ntl - 1, scratch), True, True, gets, 0, puts, npu)
            for q in range(SH[i, 2]):
                SH[i, 3 + q] = tail[q] if q < ntl else 0
            SH[i, 2] = ntl
            _apply(P, M, gets, ng, puts, npu)
            k = _emit(P, M, k, TRIM, i, ch, 0)
            ch += 1
    return k


@njit(cache=CACHE, _nrt=False)
def frag_list(P, M, k):
    """An skb joins another's frag_list (skb_gro_receive_list()): its frags, references and owner set ride along;
    the parent's release releases it (explorer_twin.Explorer.frag_list)."""
    S0, S, O, _t = _views(P, M)
    G0, SH0 = S0[0], S0[2]
    G, SH = S[0], S[2]
    f, s = P[P_F], P[P_S]
    o_ua, o_nl, o_loh = 4 + f, 6 + f + s, 7 + f + s
    nsh0 = G0[G_NSH]
    for i in range(nsh0):
        if not _distinct(SH0, i, P[P_SW]) or not _unshared(P, SH0, i) or SH0[i, o_ua]:
            continue
        for c in range(nsh0):
            if c == i or not _unshared(P, SH0, c) or SH0[c, o_ua] or SH0[c, 2] == 0 or SH0[i, 2] + SH0[c, 2] > f:
                continue
            _start_step(P, M)
            nd, nc = SH[i, 2], SH[c, 2]
            for q in range(nc):
                SH[i, 3 + nd + q] = SH[c, 3 + q]
            SH[i, 2] = nd + nc
            SH[i, o_nl] = nc
            SH[i, o_loh] = _holding(P, SH, c)
            _remove_sh(P, G, SH, c)
            k = _emit(P, M, k, FRAG_LIST, i, c, 0)
    return k


@njit(cache=CACHE, _nrt=False)
def _outside_ref(P, M, k, typ, rule, op):
    """A pipe buffer or a user mapping of one frag of a live skb, holding what a frag reference holds
    (explorer_twin.Explorer.outside_ref)."""
    S0, S, O, T = _views(P, M)
    G0, SH0 = S0[0], S0[2]
    G, EX = S[0], S[4]
    gets, puts = T[0], T[1]
    f, s, ua = P[P_F], P[P_S], P[P_UARG]
    if G0[G_NEXT] >= P[P_X]:
        return k
    for i in range(G0[G_NSH]):
        if not _distinct(SH0, i, P[P_SW]) or SH0[i, 0] == 0 or (ua and SH0[i, 4 + f]):
            continue
        user = False  # skb_orphan_frags_rx() copied it on local delivery
        for q in range(SH0[i, 2]):
            if P[P_KINDS + (SH0[i, 3 + q] - 1) // 4] == USER:
                user = True
        if user:
            continue
        nf = SH0[i, 2] if typ == PIPE_BUF else SH0[i, 2] - SH0[i, 6 + f + s]
        for q in range(nf):
            code = SH0[i, 3 + q]
            dup = False
            for r in range(q):
                if SH0[i, 3 + r] == code:
                    dup = True
            if dup:
                continue
            b, shape = (code - 1) // 4, (code - 1) % 4
            kind = P[P_KINDS + b]
            if kind == DEVMEM:
                continue
            if typ == MAPPING and ((kind != PIPE and kind != POOL and kind != COPY) or (shape != 0 and shape != 3)):
                continue
            _start_step(P, M)
            EX[G[G_NEXT], 0] = typ
            EX[G[G_NEXT], 1] = code
            G[G_NEXT] += 1
            ng = _frag_lines(P, code, gets, 0) if _ok(P, rule) else 0
            _apply(P, M, gets, ng, puts, 0)
            k = _emit(P, M, k, op, i, q, 0)
    return k


@njit(cache=CACHE, _nrt=False)
def splice_bits(P, M, k):
    """skb_splice_bits() -> spd_fill_page(): a frag into a pipe buffer that outlives the skb (_outside_ref)."""
    return _outside_ref(P, M, k, PIPE_BUF, R_SPLICE, SPLICE)


@njit(cache=CACHE, _nrt=False)
def zerocopy_receive(P, M, k):
    """tcp_zerocopy_receive(): a whole-page frag mapped into user space (_outside_ref)."""
    return _outside_ref(P, M, k, MAPPING, R_MAP, ZC_RECEIVE)


@njit(cache=CACHE, _nrt=False)
def orphan(P, M, k):
    """skb_orphan() under the prototype's devmem rule: an skb's socket refs go before the skb does."""
    S0, S, O, T = _views(P, M)
    G0, SH0 = S0[0], S0[2]
    G, SH, OP = S[0], S[2], S[3]
    toks = T[2]
    o_mem = 5 + P[P_F]
    if not P[P_ORPHANS]:
        return k
    for i in range(G0[G_NSH]):
        if not _distinct(SH0, i, P[P_SW]) or SH0[i, 0] == 0:
            continue
        for j in range(SH0[i, 0]):
            m = SH0[i, o_mem + j]
            if not _distinct_member(SH0, i, j, o_mem) or m == 1:
                continue
            _start_step(P, M)
            SH[i, o_mem + j] = 1
            _add_op(P, G, OP, toks, _mask_tokens(m - 1, toks, 0))
            k = _emit(P, M, k, ORPHAN, i, j, 0)
    return k


@njit(cache=CACHE, _nrt=False)
def free(P, M, k):
    """kfree_skb() -> skb_release_data(): dataref drops; at zero the shared info's references go (and its
    frag_list child's)."""
    S0, S, O, T = _views(P, M)
    G0, SH0 = S0[0], S0[2]
    G, SH, OP = S[0], S[2], S[3]
    toks = T[2]
    o_mem = 5 + P[P_F]
    for i in range(G0[G_NSH]):
        if not _distinct(SH0, i, P[P_SW]) or SH0[i, 0] == 0:
            continue
        for jm in range(SH0[i, 0]):
            if not _distinct_member(SH0, i, jm, o_mem):
                continue
            _start_step(P, M)
            member = _pop_member(P, SH, i, jm)
            nt = _mask_tokens(member - 1, toks, 0) if P[P_SKB_HELD] else 0
            if _dataref(P, SH, i) <= 0:
                nt = _release(P, M, i, toks, nt)
            _add_op(P, G, OP, toks, nt)
            k = _emit(P, M, k, FREE, i, jm, 0)
    return k


@njit(cache=CACHE, _nrt=False)
def holder(P, M, k):
    """The holder lets go: munmap() and sendmsg()'s return, pipe_buf_release(), the pool's drain, unbind (the
    netlink socket's binding ref only)."""
    S0, S, O, T = _views(P, M)
    W0 = S0[1]
    G, W, OP = S[0], S[1], S[3]
    toks = T[2]
    nb, pm = P[P_NB], P[P_PAGE_MODE]
    binding = P[P_OWNER_MODE] == OWNER_BINDING
    for b in range(P[P_NINIT]):
        if not W0[b, B_HOLDER]:
            continue
        _start_step(P, M)
        W[b, B_HOLDER] = 0
        kind = P[P_KINDS + b]
        nt = 0
        if binding:
            if kind == DEVMEM:
                toks[0] = 1 + 4 * nb  # the memory lives until the binding's last put
                nt = 1
            elif not (kind == USER and W[b, B_UC]):  # memory goes back now, unless pinned by its ubuf_info
                _kill(P, M, b, 0)
                _kill(P, M, b, 1)
        elif pm:
            if kind == USER or kind == PIPE or kind == POOL:
                toks[0] = 1 + 2 * b
                toks[1] = 2 + 2 * b
                nt = 2
            elif kind == DEVMEM:
                toks[0] = 1 + 2 * nb + b
                nt = 1
            else:  # kmalloc: kfree() at once (it could not be sent)
                _kill(P, M, b, 0)
                _kill(P, M, b, 1)
        elif kind == POOL:
            toks[0] = 1 + 2 * b
            toks[1] = 2 + 2 * b
            nt = 2
        else:
            toks[0] = 1 + 2 * nb + b
            nt = 1
        if (binding or pm) and (kind == USER or kind == DEVMEM):
            toks[nt] = 1 + 3 * nb + b  # sendmsg() returns: net_zcopy_put()
            nt += 1
        _add_op(P, G, OP, toks, nt)
        k = _emit(P, M, k, HOLDER, b, 0, 0)
    return k


@njit(cache=CACHE, _nrt=False)
def _outside_release(P, M, k, typ, rule, op):
    """A pipe buffer or a mapping goes: what it holds is put (explorer_twin.Explorer.outside_release)."""
    S0, S, O, T = _views(P, M)
    G0, EX0 = S0[0], S0[4]
    G, EX = S[0], S[4]
    gets, puts = T[0], T[1]
    for q in range(G0[G_NEXT]):
        if EX0[q, 0] != typ or (q > 0 and EX0[q, 0] == EX0[q - 1, 0] and EX0[q, 1] == EX0[q - 1, 1]):
            continue
        _start_step(P, M)
        code = EX[q, 1]
        for r in range(q, G[G_NEXT] - 1):
            EX[r, 0] = EX[r + 1, 0]
            EX[r, 1] = EX[r + 1, 1]
        G[G_NEXT] -= 1
        EX[G[G_NEXT], 0] = 0
        EX[G[G_NEXT], 1] = 0
        npu = _frag_lines(P, code, puts, 0) if _ok(P, rule) else 0
        _apply(P, M, gets, 0, puts, npu)
        k = _emit(P, M, k, op, q, 0, 0)
    return k


@njit(cache=CACHE, _nrt=False)
def pipe_buf_release(P, M, k):
    """The reader consumes a pipe buffer filled by splice_bits (put_page())."""
    return _outside_release(P, M, k, PIPE_BUF, R_SPLICE, PIPE_RELEASE)


@njit(cache=CACHE, _nrt=False)
def munmap(P, M, k):
    """The application unmaps a page zerocopy_receive mapped (the page tables' ref goes)."""
    return _outside_release(P, M, k, MAPPING, R_MAP, MUNMAP)


#: the handlers by operation code: HANDLERS[op] is named X.OP_NAMES[op], as the twin's method for it
HANDLERS = (put, drop, unbind_w, attach_new, attach, clone, split, segment, expand_head, coalesce, copy, shift,
            trim_head, frag_list, splice_bits, zerocopy_receive, orphan, free, holder, pipe_buf_release, munmap)
assert tuple(h.py_func.__name__ for h in HANDLERS) == X.OP_NAMES


# ---- one state's successors ------------------------------------------------------------------------------
@njit(cache=CACHE, _nrt=False)
def successors(P, M):
    """Every step from the decoded state S0 into O, in the twin's order (explorer_twin.Explorer.successors and
    .possible): each operation by the handler of its name. Returns how many."""
    S0, _s, O, _t = _views(P, M)
    G0, SH0 = S0[0], S0[2]
    SUCC, BAD = O[0], O[2]
    k = put(P, M, 0)
    k = drop(P, M, k)
    k = unbind_w(P, M, k)
    if _busy(G0, SH0) >= P[P_C]:  # no idle CPU: nothing starts
        return k
    if G0[G_BUDGET] > 0:
        first = k
        k = attach_new(P, M, k)
        k = attach(P, M, k)
        k = clone(P, M, k)
        k = split(P, M, k)
        k = segment(P, M, k)
        k = expand_head(P, M, k)
        k = coalesce(P, M, k)
        k = copy(P, M, k)
        k = shift(P, M, k)
        k = trim_head(P, M, k)
        k = frag_list(P, M, k)
        k = splice_bits(P, M, k)
        k = zerocopy_receive(P, M, k)
        k = orphan(P, M, k)
        # the budgeted operations each used one (no symmetry moves the budget: fixing it in place keeps the
        # encoding canonical)
        for q in range(first, k):
            if BAD[q] == 0:
                SUCC[q, 1] -= 1
    k = free(P, M, k)
    k = holder(P, M, k)
    k = pipe_buf_release(P, M, k)
    return munmap(P, M, k)


@njit(cache=CACHE, _nrt=False)
def leaks(P, G, W):
    """At a state with nothing left to do: memory, a reference, an outside reference or an undelivered completion
    remains."""
    if G[G_BIND] or G[G_NEXT]:
        return True
    for b in range(P[P_NB]):
        if not W[b, B_USED]:
            continue
        if W[b, B_ALIVE0] or W[b, B_ALIVE1] or W[b, B_PC0] or W[b, B_PC1] or W[b, B_OC] or W[b, B_OALIVE] \
                or W[b, B_UC]:
            return True
        kind = P[P_KINDS + b]
        if b < P[P_NINIT] and (kind == USER or kind == DEVMEM) and not W[b, B_DONE]:
            return True
    return False


# ---- the search ----------------------------------------------------------------------------------------------
# The visited set keeps a 64-bit fingerprint of each canonical state, not the state (TLC's way): 8 bytes per slot of
# an open-addressing table at most three quarters full, beside a 4-byte parent number and a 2-byte label (the step's
# index among its state's successors, in the twin's order). Full states live only in the breadth-first queue, for
# the level being expanded and the next one; a counterexample is rebuilt by replaying its labels from the start
# (:func:`replay`). Two distinct states with one fingerprint would be merged: :func:`collision_bound` gives the
# chance of that over a search.
# The fingerprint is XXH64 (seed 0) of the row's int16 fields as little-endian bytes, as xxHash computes it
# (https://github.com/Cyan4973/xxHash/blob/dev/doc/xxhash_spec.md): four independent lanes, then an avalanche in
# which every input bit moves every output bit. tests/test_explorer.py checks it against the spec on random rows.
_P1, _P2, _P3 = np.uint64(0x9E3779B185EBCA87), np.uint64(0xC2B2AE3D27D4EB4F), np.uint64(0x165667B19E3779F9)
_P4, _P5 = np.uint64(0x85EBCA77C2B2AE63), np.uint64(0x27D4EB2F165667C5)


@njit(cache=CACHE, inline="always", _nrt=False)
def _rotl(x, r):
    return (x << np.uint64(r)) | (x >> np.uint64(64 - r))


@njit(cache=CACHE, inline="always", _nrt=False)
def _round(acc, lane):
    return _rotl(acc + lane * _P2, 31) * _P1


@njit(cache=CACHE, inline="always", _nrt=False)
def _merge(h, v):
    return (h ^ _round(np.uint64(0), v)) * _P1 + _P4


@njit(cache=CACHE, inline="always", _nrt=False)
def _field(v, k):
    return np.uint64(v[k] & 0xFFFF)


@njit(cache=CACHE, inline="always", _nrt=False)
def _word(v, k):
    """Fields k..k+3 of v as one little-endian 64-bit word (16 bits each)."""
    return _field(v, k) | _field(v, k + 1) << np.uint64(16) | _field(v, k + 2) << np.uint64(32) | \
        _field(v, k + 3) << np.uint64(48)


@njit(cache=CACHE, inline="always", _nrt=False)
def _xxh64(wd, v, width):
    """XXH64 of the ``width`` fields of v as int16 bytes, never 0 (the table's empty slot), its first width // 4 * 4
    fields read as the words ``wd`` (wd[i]: fields 4i..4i+3, as :func:`_word` packs them). The low bits index a
    table, the high bits choose a partition (fraglife.sweep.explore)."""
    k = 0
    if width >= 16:  # 32-byte stripes on four lanes
        v1, v2, v3, v4 = _P1 + _P2, _P2, np.uint64(0), np.uint64(0) - _P1
        while k + 16 <= width:
            i = np.uint64(k >> 2)
            v1 = _round(v1, wd[i])
            v2 = _round(v2, wd[i + np.uint64(1)])
            v3 = _round(v3, wd[i + np.uint64(2)])
            v4 = _round(v4, wd[i + np.uint64(3)])
            k += 16
        h = _rotl(v1, 1) + _rotl(v2, 7) + _rotl(v3, 12) + _rotl(v4, 18)
        h = _merge(_merge(_merge(_merge(h, v1), v2), v3), v4)
    else:
        h = _P5
    h += np.uint64(2 * width)
    while k + 4 <= width:
        h = _rotl(h ^ _round(np.uint64(0), wd[np.uint64(k >> 2)]), 27) * _P1 + _P4
        k += 4
    if k + 2 <= width:
        h = _rotl(h ^ ((_field(v, k) | _field(v, k + 1) << np.uint64(16)) * _P1), 23) * _P2 + _P3
        k += 2
    if k < width:  # one field left: its two bytes, low first
        h = _rotl(h ^ ((_field(v, k) & np.uint64(0xFF)) * _P5), 11) * _P1
        h = _rotl(h ^ ((_field(v, k) >> np.uint64(8)) * _P5), 11) * _P1
    h ^= h >> np.uint64(33)
    h *= _P2
    h ^= h >> np.uint64(29)
    h *= _P3
    h ^= h >> np.uint64(32)
    return h if h else np.uint64(1)


@njit(cache=CACHE, inline="always", _nrt=False)
def _fingerprint(v, width, wd):
    """The state's fingerprint (:func:`_xxh64`) from its fields v, packed four to a word into ``wd`` (scratch of
    at least width // 4 words)."""
    for i in range(width // 4):
        wd[i] = _word(v, 4 * i)
    return _xxh64(wd, v, width)


@njit(cache=CACHE, inline="always", _nrt=False)
def _home(table, fp):
    """The slot fingerprint ``fp`` is looked for first in ``table`` (a power of two long): its low bits (the high 32
    pick its owner, :func:`owner`, the same for every fingerprint a partition sends to one)."""
    return np.int64(fp & np.uint64(table.shape[0] - 1))


@njit(cache=CACHE, inline="always", _nrt=False)
def _probe(table, fp):
    """The slot holding fingerprint ``fp``, or the empty one it would take (linear probing from :func:`_home`)."""
    mask = table.shape[0] - 1
    slot = _home(table, fp)
    while table[slot] != 0 and table[slot] != fp:
        slot = (slot + 1) & mask
    return slot


@njit(cache=CACHE)
def _regrow(table):
    """The table at twice its size, the same fingerprints."""
    t2 = np.zeros(2 * table.shape[0], np.uint64)
    for i in range(table.shape[0]):
        if table[i]:
            t2[_probe(t2, table[i])] = table[i]
    return t2


@njit(cache=CACHE)
def _room(parent, label, n):
    """Room for the ``n``-th stored state's parent and label: both arrays doubled when full. Past n they are
    not cleared (each entry is written as its state is stored, before it is read): pages not written yet are not
    faulted in."""
    if n < parent.shape[0]:
        return parent, label
    p2 = np.empty(2 * n, np.uint32)
    p2[:n] = parent
    l2 = np.empty(2 * n, np.uint16)
    l2[:n] = label
    return p2, l2


@njit(cache=CACHE, inline="always", _nrt=False)
def _full(table, n):
    return 4 * n > 3 * table.shape[0]


@njit(cache=CACHE, inline="always", _nrt=False)
def _note(found, bad, cur, LAB, q, d):
    """The first violation of each kind (breadth first: one of the shortest): state, step label, and depth ``d``
    where ``found`` has a column for it (expand_split's has none: its caller knows the level)."""
    for kind in range(4):
        if bad >> kind & 1 and found[kind, 0] < 0:
            found[kind, 0] = cur
            for r in range(4):
                found[kind, 1 + r] = LAB[q, r]
            if found.shape[1] > 5:
                found[kind, 5] = d


@njit(cache=CACHE, inline="always", _nrt=False)
def _fingerprints(SUCC, BAD, K, width, fps, table, seen, sent, me, nparts):
    """The fingerprints of the K successors without a violation into fps, each one's first slot fetched ahead in
    the table it will be probed in: ``table`` where partition ``me`` of ``nparts`` owns it (:func:`owner`; every
    successor for me 0 of 1), else ``seen`` and ``sent`` (:func:`_home`, in each). The probes that follow then find
    their lines in cache, not one miss after another."""
    for q in range(K):
        if BAD[q] == 0:
            fp = _xxh64(words(SUCC[q]), SUCC[q], width)  # SUCC's rows start on 8-byte boundaries (_views)
            fps[q] = fp
            if me >= 0 and owner(fp, nparts) == me:
                prefetch(table, _home(table, fp))
            else:
                prefetch(seen, _home(seen, fp))
                prefetch(sent, _home(sent, fp))


@njit(cache=CACHE, inline="always", _nrt=False)
def _copy_row(src, i, dst, j, width):
    """dst[j] = src[i] over ``width`` fields. Unsigned indices: with no negative index to wrap around, the copy
    compiles to a contiguous one, and takes no row views (each a reference count taken and dropped)."""
    i, j = np.uint64(i), np.uint64(j)
    for k in range(np.uint64(width)):
        dst[j, k] = src[i, k]


# _search's scalars between calls of _expand (HB, TB: the queue rows the head's and the tail's chunks start at)
ST_HEAD, ST_TAIL, ST_N, ST_CUR, ST_LEVEL, ST_LEVEL_END, ST_Q, ST_K, ST_HB, ST_TB = range(10)
#: rows in a chunk of :func:`_search`'s queue
QUEUE_CHUNK = 1 << 12


@njit(cache=CACHE, nogil=True)
def _search(P, start, keep):
    """Breadth-first search from ``start`` (explorer_twin.Explorer.run). States are numbered as found; the queue
    holds the rows of those not expanded yet, in chunks of QUEUE_CHUNK rows: a chunk expanded whole takes the next
    rows found, so the queue touches no more memory than its largest length (a queue that doubled and moved its
    rows would touch twice its largest size, each page faulted in afresh). ``keep``: every chunk is kept, and the
    queue returned holds every state's row, state i in row i (else it has no rows). Returns (queue, parent, label,
    table, n, found, counts)."""
    width = P[P_WIDTH]
    live = List()  # the chunks from the head's to the tail's, in order
    spare = List()  # chunks expanded whole
    live.append(np.empty((QUEUE_CHUNK, width), np.int16))
    parent = np.zeros(1 << 12, np.uint32)
    label = np.zeros(1 << 12, np.uint16)
    table = np.zeros(1 << 14, np.uint64)
    found = np.full((4, 6), -1, np.int64)  # per violation: state, label[4], depth of the violating step
    counts = np.zeros(6, np.int64)  # edges, terminals, complete, max depth, fallbacks, largest queue
    counts[2] = 1
    M = _workspace(P)
    fps = np.zeros(MAX_SUCC, np.uint64)
    vec = np.zeros(width, np.int64)
    for k in range(width):
        live[0][0, k] = start[k]
        vec[k] = start[k]
    fp = _fingerprint(vec, width, np.zeros(width // 4 + 1, np.uint64))
    table[_probe(table, fp)] = fp
    st = np.zeros(10, np.int64)
    st[ST_TAIL], st[ST_N], st[ST_LEVEL_END], st[ST_Q] = 1, 1, 1, -1
    h = 0  # the head's chunk in live
    while _expand(P, M, live[h], live[len(live) - 1], parent, label, table, found, counts, fps, st):
        # a chunk is done or full, or an array is full: the next chunk, or grow it (the calls pass and return
        # arrays, which _expand leaves to this loop)
        if st[ST_HEAD] - st[ST_HB] == QUEUE_CHUNK:  # the head's chunk expanded whole
            st[ST_HB] += QUEUE_CHUNK
            if keep:
                h += 1
            else:
                spare.append(live.pop(0))
        # the tail's chunk full: the next one
        _qt, st[ST_TB] = next_chunk(live, spare, live[len(live) - 1], st[ST_TAIL], st[ST_TB])
        if st[ST_N] == parent.shape[0]:
            parent, label = _room(parent, label, st[ST_N])
        if _full(table, st[ST_N]):
            table = _regrow(table)
    n = st[ST_N]
    queue = np.empty((n if keep else 0, width), np.int16)
    for r in range(queue.shape[0]):
        queue[r] = live[r // QUEUE_CHUNK][r % QUEUE_CHUNK]
    return queue, parent, label, table, n, found, counts


@njit(cache=CACHE, nogil=True, _nrt=False)
def _expand(P, M, qh, qt, parent, label, table, found, counts, fps, st):
    """:func:`_search`'s loop over the queue, from the scalars ``st`` (ST_*), until the queue is empty (returns
    False), or the head's chunk ``qh`` is expanded whole, or the tail's chunk ``qt`` is full, or an array must grow
    (returns True, ``st`` saved: the state's successors resume at st[ST_Q] once the caller has given the next chunk
    or grown the array). Without the runtime: numba counts no references to the arrays and views of a loop that
    cannot reassign them, which it did for each state and successor."""
    width, max_states, max_depth = P[P_WIDTH], P[P_MAX], P[P_DEPTH]
    S0, _s, O, T = _views(P, M)
    G0, W0 = S0[0], S0[1]
    SUCC, LAB, BAD = O[0], O[1], O[2]
    head, tail, n, cur = st[ST_HEAD], st[ST_TAIL], st[ST_N], st[ST_CUR]
    level, level_end, q0, K = st[ST_LEVEL], st[ST_LEVEL_END], st[ST_Q], st[ST_K]
    hb, tb = st[ST_HB], st[ST_TB]
    grow = False
    while q0 >= 0 or head < tail:
        if q0 < 0:  # the next state
            if head - hb == qh.shape[0]:  # the chunk is done: the caller gives the next
                grow = True
                break
            if cur == level_end:
                level += 1
                level_end = n
            row = qh[head - hb]
            head += 1
            cur += 1
            if max_depth and level >= max_depth:
                counts[2] = 0
                continue
            _decode(row, P, M)
            K = successors(P, M)
            counts[0] += K
            if K == 0:
                counts[1] += 1
                if found[LEAK, 0] < 0 and leaks(P, G0, W0):
                    found[LEAK, 0] = cur - 1
                    found[LEAK, 5] = level
            _fingerprints(SUCC, BAD, K, width, fps, table, table, table, 0, 1)
            q0 = 0
        for q in range(q0, K):
            if BAD[q]:
                _note(found, BAD[q], cur - 1, LAB, q, level + 1)
                continue
            fp = fps[q]
            slot = _probe(table, fp)
            if table[slot] != 0:  # seen
                continue
            if n >= max_states:
                counts[2] = 0
                continue
            if tail - tb == qt.shape[0] or n == parent.shape[0]:
                q0, grow = q, True
                break
            table[slot] = fp
            _copy_row(SUCC, q, qt, tail - tb, width)
            tail += 1
            parent[n] = cur - 1
            label[n] = q
            n += 1
            counts[3] = max(counts[3], level + 1)
            if _full(table, n):
                q0, grow = q + 1, True
                break
        if grow:
            break
        q0 = -1
        counts[5] = max(counts[5], tail - head)
    st[ST_HEAD], st[ST_TAIL], st[ST_N], st[ST_CUR] = head, tail, n, cur
    st[ST_LEVEL], st[ST_LEVEL_END], st[ST_Q], st[ST_K] = level, level_end, q0, K
    counts[4] = T[7][0]
    return grow


@njit(cache=CACHE)
def _replay(P, start, qs):
    """The states and step labels of the path that takes successor qs[i] at step i from ``start``."""
    width = P[P_WIDTH]
    M = _workspace(P)
    S0, _s, O, _t = _views(P, M)
    rows = np.zeros((len(qs) + 1, width), np.int16)
    labs = np.zeros((len(qs), 4), np.int16)
    vec = start.copy()
    for i in range(len(qs)):
        for k in range(width):
            rows[i, k] = vec[k]
        _decode(vec, P, M)
        successors(P, M)
        for r in range(4):
            labs[i, r] = O[1][qs[i], r]
        for k in range(width):
            vec[k] = O[0][qs[i], k]
    for k in range(width):
        rows[len(qs), k] = vec[k]
    return rows, labs


def replay(P: np.ndarray, start, qs) -> list:
    """The steps of a path given by its labels (each step's index among its state's successors) from ``start``:
    (label, state before the step) tuples, and the state reached, as tuples of ints."""
    rows, labs = _replay(P, np.asarray(start, np.int64), np.asarray(qs, np.int64))
    steps = [(tuple(int(x) for x in labs[i]), tuple(int(x) for x in rows[i])) for i in range(len(qs))]
    return steps, tuple(int(x) for x in rows[-1])


def collision_bound(states: int) -> float:
    """An upper bound on the chance that two of ``states`` distinct states share a 64-bit fingerprint (and one
    is skipped): n(n-1)/2 pairs, each 2^-64 for a uniform hash."""
    return states * (states - 1) / 2 / 2.0 ** 64


@njit(cache=CACHE)
def _orbits(P, states, n):
    """The labelled states each canonical state stands for (explorer_twin.orbit_size, times the buffer
    relabellings that give a different state), summed."""
    nb, s, c, sw, ow, width = P[P_NB], P[P_S], P[P_C], P[P_SW], P[P_OW], P[P_WIDTH]
    M = _workspace(P)
    _s0, S, _o, _t = _views(P, M)
    G, W, SH, OP, EX = S
    x = P[P_X]
    vec = np.zeros(width, np.int64)
    E = np.zeros((P[P_NPERMS], width), np.int16)
    P1 = P.copy()
    total = 0.0
    fact = np.ones(8, np.float64)
    for q in range(1, 8):
        fact[q] = fact[q - 1] * q
    nperms = P[P_NPERMS]
    for idx in range(n):
        for k in range(width):
            vec[k] = states[idx, k]
        _decode_into(vec, P, G, W, SH, OP, EX)
        nsh, nop, nex = G[G_NSH], G[G_NOP], G[G_NEXT]
        nsk = _nskbs(G, SH)
        busy = _busy(G, SH)
        o = fact[s] / fact[s - nsk] * fact[s] / fact[s - nsh] * fact[c] / fact[c - busy] * fact[x] / fact[x - nex]
        o_mem = 5 + P[P_F]
        for i in range(nsh):
            run = 1
            for j in range(1, SH[i, 0]):
                if SH[i, o_mem + j] == SH[i, o_mem + j - 1]:
                    run += 1
                else:
                    o /= fact[run]
                    run = 1
            o /= fact[run]
            o /= fact[SH[i, 1]]
        run = 1
        for i in range(1, nsh):
            if _same_row(SH, i, sw):
                run += 1
            else:
                o /= fact[run]
                run = 1
        o /= fact[run]
        run = 1
        for i in range(1, nop):
            same = True
            for q in range(ow):
                if OP[i, q] != OP[i - 1, q]:
                    same = False
                    break
            if same:
                run += 1
            else:
                o /= fact[run]
                run = 1
        o /= fact[run]
        run = 1
        for i in range(1, nex):
            if EX[i, 0] == EX[i - 1, 0] and EX[i, 1] == EX[i - 1, 1]:
                run += 1
            else:
                o /= fact[run]
                run = 1
        o /= fact[run]
        # buffer relabellings: how many distinct states the symmetry maps onto this one
        for pi in range(nperms):
            P1[P_NPERMS] = 1
            for b in range(nb):
                P1[P_KINDS + nb + b] = P[P_KINDS + nb + pi * nb + b]
            _encode(P1, M, E[pi])
        distinct = 0
        for pi in range(nperms):
            new = True
            for pj in range(pi):
                if _row_cmp(E[pi], 0, E[pj], 0, width) == 0:
                    new = False
                    break
            if new:
                distinct += 1
        total += o * distinct
    return total


# ---- the search in pieces, for a search spread over several processes (fraglife.sweep.explore) ----------------
#: rows ahead of the one it adds whose table slot :func:`visit` fetches: a batch's fingerprints are known before its
#: rows are added, and each probe of a table larger than the cache missed in turn (half of an add's time, at chapter
#: 08's largest bounds on 2 partitions)
VISIT_AHEAD = 8


@njit(cache=CACHE, nogil=True)
def visit(table, chunks, spare, parent, label, n, base, new, cols, sz, hashes, src, idx, limit):
    """Add to a visited set (``table``: the fingerprints of states 0..n-1, 0 empty, at most three quarters full)
    each of the rows of the packed batch (``new``, ``cols``, ``sz``: :func:`pack`; fingerprints ``hashes``) it does
    not hold yet, in order, while it holds fewer than ``limit`` states: state n takes parent reference ``src``
    (uint32), label ``idx`` and its row goes to the level being found, ``chunks`` (rows of the same size; the last
    holds states ``base``..). A full chunk is followed by one from ``spare`` (else a new one): rows are never moved,
    so no page is faulted in twice (:func:`next_chunk`). Returns (table, parent, label, n, base, refused): the arrays
    grown as needed, the last chunk's first state, and how many new rows did not fit under ``limit``."""
    rows = chunks[len(chunks) - 1]
    st = np.zeros(3, np.int64)  # _visit_rows's scalars: the next row, n, refused
    st[VS_N] = n
    while _visit_rows(table, rows, parent, label, base, new, cols, sz, hashes, src, idx, limit, st):
        # the last chunk or parent full, or the table: give the next chunk, grow the arrays (the calls pass and
        # return arrays, which _visit_rows leaves to this loop)
        rows, base = next_chunk(chunks, spare, rows, st[VS_N], base)
        parent, label = _room(parent, label, st[VS_N])
        if _full(table, st[VS_N]):
            table = _regrow(table)
    return table, parent, label, st[VS_N], base, st[VS_REFUSED]


VS_J, VS_N, VS_REFUSED = range(3)


@njit(cache=CACHE, nogil=True, _nrt=False)
def _visit_rows(table, rows, parent, label, base, new, cols, sz, hashes, src, idx, limit, st):
    """:func:`visit`'s loop over the batch, from the scalars ``st`` (VS_*), until its end (returns False) or until
    an array must grow (returns True, ``st`` saved: the row that found no room is taken again). Without the
    runtime, as :func:`_expand` runs :func:`_search`'s loop: with it, each row's view was reference counted (at
    chapter 08's largest bounds on 2 workers as threads, a worker's visits took 3.3-4.2 s with it, 2.2 s without)."""
    j, n, refused = st[VS_J], st[VS_N], st[VS_REFUSED]
    m = new.shape[0]
    grow = False
    while j < m:
        if j + VISIT_AHEAD < m:  # the slot a later row probes, fetched while this one is added
            prefetch(table, _home(table, hashes[j + VISIT_AHEAD]))
        what = _add_visit(table, rows, parent, label, n, base, hashes[j], src[j], idx[j], limit)
        if what == VISIT_ROOM:
            grow = True
            break
        j += 1
        if what == VISIT_REFUSED:
            refused += 1
        elif what == VISIT_ADDED:
            _unpack_row(new, j - 1, cols, sz, rows, n - base)
            n += 1
            if _full(table, n):
                grow = True
                break
    st[VS_J], st[VS_N], st[VS_REFUSED] = j, n, refused
    return grow


# what _add_visit did with a row
VISIT_SEEN, VISIT_REFUSED, VISIT_ROOM, VISIT_ADDED = range(4)


@njit(cache=CACHE, inline="always", _nrt=False)
def _add_visit(table, rows, parent, label, n, base, fp, src, idx, limit):
    """:func:`visit`'s step for a row of fingerprint ``fp``, without growing an array, so that loops compiled
    without numba's runtime take it too: VISIT_SEEN if the set holds ``fp``; VISIT_REFUSED if it holds ``limit``
    states; VISIT_ROOM if ``rows`` or ``parent`` is full (nothing done: give the next chunk, :func:`next_chunk`,
    or grow ``parent`` and ``label``, :func:`_room`, and call again); else VISIT_ADDED: state n took it, parent
    reference ``src`` and label ``idx`` (then the caller writes its row to rows[n - base], counts it, and regrows
    the table once :func:`_full`)."""
    slot = _probe(table, fp)
    if table[slot] != 0:
        return VISIT_SEEN
    if n >= limit:
        return VISIT_REFUSED
    if n - base == rows.shape[0] or n == parent.shape[0]:
        return VISIT_ROOM
    table[slot] = fp
    parent[n] = src
    label[n] = idx
    return VISIT_ADDED


@njit(cache=CACHE, inline="always")
def next_chunk(chunks, spare, rows, n, base):
    """(rows, base) for state ``n``: ``rows`` (the last of ``chunks``, holding states ``base``..) if it has room, else
    a chunk of its size from ``spare`` (else a new one, not cleared: a row is written whole before it is read,
    :func:`_unpack_row` and :func:`_copy_row`) appended to ``chunks``, holding states n.."""
    if n - base < rows.shape[0]:
        return rows, base
    rows = _spare_chunk(spare, rows.shape[0], rows.shape[1])
    chunks.append(rows)
    return rows, n


@njit(cache=CACHE, inline="always")
def _spare_chunk(spare, rows, width):
    """A chunk from ``spare``, else a new one of ``rows`` rows of ``width`` fields, not cleared."""
    return spare.pop() if len(spare) else np.empty((rows, width), np.int16)


# The chunk lists are made and changed by compiled functions (from numba's cache): a typed List's methods called
# from Python compile on their first call in each process, some 1.5 s in each worker of a search.
@njit(cache=CACHE)
def row_chunks(width, rows, chunks):
    """``chunks`` chunks of ``rows`` int16 rows of ``width`` fields each (none: an empty list of that type), for
    :func:`visit` and :func:`expand_split` to fill."""
    out = List()
    out.append(np.empty((rows, width), np.int16))  # gives the list its type
    if chunks == 0:
        out.pop()
    for _ in range(chunks - 1):
        out.append(np.empty((rows, width), np.int16))
    return out


@njit(cache=CACHE)
def chunks_held(front, next_, spare):
    """How many chunks the three lists hold."""
    return len(front) + len(next_) + len(spare)


@njit(cache=CACHE)
def recycle_chunks(done, front, spare, rows, width):
    """A level begins: the chunks of the level expanded (``done``) go to ``spare``, which keeps no more than the new
    frontier (``front``) has; returns the next level's list, its first chunk a spare one (else a new one)."""
    for c in done:
        spare.append(c)
    while len(spare) > len(front):
        spare.pop()
    out = List()
    out.append(_spare_chunk(spare, rows, width))
    return out


def frontier_chunks(rows: np.ndarray, chunk: int) -> List:
    """``rows`` in chunks of ``chunk`` rows (the last one padded with zero rows), as a partition holds a level: a
    frontier for :func:`expand_split`."""
    out = row_chunks(rows.shape[1], chunk, 0)
    for at in range(0, len(rows), chunk):
        c = np.zeros((chunk, rows.shape[1]), np.int16)
        c[:len(rows) - at] = rows[at:at + chunk]
        out.append(c)
    return out


def chunked_rows(chunks, n: int) -> np.ndarray:
    """The first ``n`` rows held by ``chunks``, in order, as one array."""
    return np.concatenate([np.asarray(c) for c in chunks] or [np.empty((0, 0), np.int16)])[:n]


# ---- a batch on the wire: its rows' bytes, the columns of bytes that are zero in every row left out ----------------
def pack(rows: np.ndarray) -> tuple:
    """A batch of rows (int8 or int16) packed for sending: (bytes, cols, sz): ``bytes`` (uint8, one row per row)
    holds, of each row's fields as ``sz``-byte little-endian integers, the bytes at ``cols`` (uint16) only, the byte
    columns that are not zero in every row of the batch. A successor differs from its parent in few fields, and many
    fields are 0 in every state of a level: on chapter 08's bounds most of a row's bytes are such. (:func:`expand_split`
    packs its batches so as it groups them.)"""
    rows = np.ascontiguousarray(rows)
    n = rows.shape[0]
    w = rows.shape[1] * rows.itemsize
    flat, _off, ncol, cols = _pack_groups(rows.view(np.uint8).reshape(n, w), 0, w, n, np.zeros(n, np.int64),
                                          np.array([0, n], np.int64))
    return flat.reshape(n, ncol[0]), cols[0, :ncol[0]].copy(), rows.itemsize


@njit(cache=CACHE, nogil=True)
def _pack_groups(kb, sh, w, n, group, cuts):
    """Rows 0..n-1 of ``kb`` (their bytes: byte c of a packed row is kb[j, c << sh], c < w) packed by group, each
    group's rows in order (row j is in group[j]; group q holds cuts[q+1] - cuts[q] rows): (flat, off, ncol, cols):
    group q's rows are flat[off[q]:off[q] + rows * ncol[q]], ncol[q] bytes each, those at cols[q, :ncol[q]]."""
    ng = cuts.shape[0] - 1
    seen = np.zeros((ng, w), np.uint8)
    _or_rows(kb, sh, w, n, group, seen)
    cols = np.zeros((ng, w), np.uint16)
    ncol = np.zeros(ng, np.int64)
    off = np.zeros(ng + 1, np.int64)
    for q in range(ng):
        for c in range(w):
            if seen[q, c]:
                cols[q, ncol[q]] = c
                ncol[q] += 1
        off[q + 1] = off[q] + (cuts[q + 1] - cuts[q]) * ncol[q]
    flat = np.empty(off[ng], np.uint8)
    _gather_rows(kb, sh, n, group, cols, ncol, off[:ng].copy(), flat)
    return flat, off, ncol, cols


@njit(cache=CACHE, nogil=True, _nrt=False)
def _or_rows(kb, sh, w, n, group, seen):
    """seen[q] = the OR of the bytes of group q's rows (:func:`_pack_groups`). Without the runtime: a row's view is
    then not reference counted."""
    for j in range(n):
        row, acc = kb[j], seen[group[j]]
        if sh == 0:  # one loop the compiler vectorises
            for c in range(w):
                acc[c] |= row[c]
        else:
            for c in range(w):
                acc[c] |= row[c << sh]


@njit(cache=CACHE, nogil=True, _nrt=False)
def _gather_rows(kb, sh, n, group, cols, ncol, at, flat):
    """Each row's bytes at its group's columns to flat[at[group]:], in row order (:func:`_pack_groups`)."""
    for j in range(n):
        q = group[j]
        row, k, dst = kb[j], cols[q], flat[at[q]:at[q] + ncol[q]]
        for i in range(ncol[q]):
            dst[i] = row[np.int64(k[i]) << sh]
        at[q] += ncol[q]


@njit(cache=CACHE, inline="always", _nrt=False)
def _unpack_row(new, j, cols, sz, rows, d):
    """rows[d] = row j of the packed batch (``new``, ``cols``, ``sz``: :func:`pack`): the bytes left out are 0; a
    one-byte field is signed."""
    dst = row_bytes(rows[d])
    for k in range(dst.shape[0]):
        dst[k] = 0
    nc = np.uint64(cols.shape[0])
    j = np.uint64(j)
    if sz == 1:
        for i in range(nc):
            rows[d, np.uint64(cols[i])] = np.int8(new[j, i])
    else:
        for i in range(nc):
            dst[np.uint64(cols[i])] = new[j, i]


@njit(cache=CACHE)
def unpack(new, cols, sz, width):
    """The int16 rows of a packed batch (:func:`pack`), ``width`` fields each."""
    out = np.zeros((new.shape[0], width), np.int16)
    for j in range(new.shape[0]):
        _unpack_row(new, j, cols, sz, out, j)
    return out


@njit(cache=CACHE, inline="always")
def owner(fp, nparts):
    """The partition owning the state of fingerprint ``fp``: its high 32 bits (the tables index by the low ones)
    modulo ``nparts``."""
    return np.int64((np.uint64(fp) >> np.uint64(32)) % np.uint64(nparts))


@njit(cache=CACHE, nogil=True)
def expand_split(P, front, first, count, nparts, refbase, scratch, sent, me, vis):
    """Every step from each of ``count`` frontier states, rows first.. of the chunks ``front`` (int16 rows, each
    chunk as many; read where they are, not copied), in the order :func:`_search` takes them
    (explorer_twin.Explorer.successors), told as partition ``me`` of fraglife.sweep.explore sends them: each distinct
    successor without a violation once (its first occurrence), grouped by owning partition (:func:`owner`) and in order
    within its group, except those ``me`` owns, which go straight into its visited set ``vis`` = (table, chunks, spare,
    parent, label, n, base, limit) as :func:`visit` adds them (``me`` < 0: none is kept here), and those ``sent`` holds.
    ``sent`` (uint64, a power of two long) is the partition's cache of the fingerprints it has sent, kept from call to
    call: direct mapped, a fingerprint's one slot its :func:`_home`, holding the last one sent there. A state sent in an
    earlier round is in its owner's visited set before this round's batch is added (rounds are added in order), or was
    refused there past its limit, as it would be again, so sending it again changes nothing there; the call adds what it
    sends. ``scratch`` is (keep int16 rows, seen uint64 of a power of two, and keep's fingerprints uint64, frontier rows
    int64 and labels uint16): reused from call to call, grown as needed and returned, as a round's tens of MB allocated
    afresh cost page faults in every round. Returns (the rows packed by owner as :func:`pack` packs a batch: flat, off,
    ncol, cols, sz, see :func:`_pack_groups` and :func:`batches`, one byte per field where every field fits one;
    fingerprints, parent references (``refbase`` + the frontier row), labels (the index among the parent's successors),
    cuts (owner q's rows are cuts[q]:cuts[q+1]), found (per violation kind: the frontier row and the step's label, or
    -1), the first leaking terminal's frontier row (or -1), terminals, edges, the owner array's fallbacks, scratch, and
    the visited set as (table, parent, label, n, base, refused): refused counts successors past the limit, a state met
    twice twice)."""
    keep, seen, kfp, ksrc, kidx = scratch
    table, chunks, spare, parent, label, nv, base, limit = vis
    rows = chunks[len(chunks) - 1]
    M = _workspace(P)
    seen[:] = 0
    found = np.full((4, 5), -1, np.int64)
    fps = np.zeros(MAX_SUCC, np.uint64)
    st = np.zeros(10, np.int64)
    st[XS_Q], st[XS_NV], st[XS_LEAK], st[XS_SMALL] = -1, nv, -1, 1
    per = front[0].shape[0] if len(front) else 1
    while st[XS_I] < count or st[XS_Q] >= 0:
        # the frontier rows from the next one to the end of its chunk (none: a state's last successors resume)
        c, r = (first + st[XS_I]) // per, (first + st[XS_I]) % per
        take = min(per - r, count - st[XS_I])
        if take <= 0:
            c, r, take = 0, 0, 0
        if not _expand_part(P, M, front[c][r:r + take], st[XS_I], nparts, refbase, me, keep, seen, sent, kfp, ksrc,
                            kidx, table, rows, parent, label, base, limit, found, fps, st):
            continue  # the chunk's rows done
        # an array is full: grow it (the calls pass and return arrays, which _expand_part leaves to this loop)
        n, nv = st[XS_N], st[XS_NV]
        if n == keep.shape[0] or n == kfp.shape[0]:
            keep, kfp, ksrc, kidx = _grow_keep(keep, kfp, ksrc, kidx, n)
        if _full(seen, n):
            seen = _regrow(seen)
        rows, base = next_chunk(chunks, spare, rows, nv, base)
        parent, label = _room(parent, label, nv)
        if _full(table, nv):
            table = _regrow(table)
    n, nv, refused, leak, terminals, edges = st[XS_N], st[XS_NV], st[XS_REFUSED], st[XS_LEAK], st[XS_TERM], st[XS_EDGES]
    small = st[XS_SMALL] != 0
    width = P[P_WIDTH]
    T = _views(P, M)[3]
    cuts = np.zeros(nparts + 1, np.int64)
    group = np.empty(n, np.int64)
    for j in range(n):
        group[j] = owner(kfp[j], nparts)
        cuts[1 + group[j]] += 1
    for q in range(nparts):
        cuts[q + 1] += cuts[q]
    at = cuts[:nparts].copy()
    hashes, ref, idx = np.empty(n, np.uint64), np.empty(n, np.uint32), np.empty(n, np.uint16)
    for j in range(n):
        q = group[j]
        d = at[q]
        at[q] += 1
        hashes[d], ref[d], idx[d] = kfp[j], refbase + ksrc[j], kidx[j]
    sz = 1 if small else 2  # a byte a field when every field fits one: its int16's low byte
    flat, off, ncol, cols = _pack_groups(grid_bytes(keep), 2 - sz, width * sz, n, group, cuts)
    return (flat, off, ncol, cols, sz, hashes, ref, idx, cuts, found, leak, terminals, edges, T[7][0],
            (keep, seen, kfp, ksrc, kidx), (table, parent, label, nv, base, refused))


def batches(flat, off, ncol, cols, sz, cuts) -> list:
    """:func:`expand_split`'s batches, one per owning partition, each packed as :func:`pack` packs one: (bytes, cols,
    sz)."""
    return [(flat[off[q]:off[q + 1]].reshape(int(cuts[q + 1] - cuts[q]), int(ncol[q])), cols[q, :ncol[q]], sz)
            for q in range(len(cuts) - 1)]


# expand_split's scalars between calls of _expand_part
XS_I, XS_Q, XS_K, XS_N, XS_NV, XS_REFUSED, XS_LEAK, XS_TERM, XS_EDGES, XS_SMALL = range(10)


@njit(cache=CACHE, nogil=True, _nrt=False)
def _expand_part(P, M, frontier, i0, nparts, refbase, me, keep, seen, sent, kfp, ksrc, kidx, table, rows, parent,
                 label, base, limit, found, fps, st):
    """:func:`expand_split`'s loop over the frontier rows ``frontier`` (state i0 the first), from the scalars ``st``
    (XS_*), until their end (returns False) or until an array must grow (returns True, ``st`` saved: the state's
    successors resume at st[XS_Q] once the caller has grown it), without numba's runtime, as :func:`_expand` runs
    :func:`_search`'s loop. A successor ``me`` owns goes into the visited set as :func:`visit` adds it
    (:func:`_add_visit`)."""
    m, width = i0 + frontier.shape[0], frontier.shape[1]
    S0, _s, O, _t = _views(P, M)
    G0, W0 = S0[0], S0[1]
    SUCC, LAB, BAD = O[0], O[1], O[2]
    i, q0, K, n, nv = st[XS_I], st[XS_Q], st[XS_K], st[XS_N], st[XS_NV]
    refused, leak, terminals, edges, small = st[XS_REFUSED], st[XS_LEAK], st[XS_TERM], st[XS_EDGES], st[XS_SMALL]
    grow = False
    while q0 >= 0 or i < m:
        if q0 < 0:  # the next frontier row
            _decode(frontier[i - i0], P, M)
            K = successors(P, M)
            edges += K
            if K == 0:
                terminals += 1
                if leak < 0 and leaks(P, G0, W0):
                    leak = i
            _fingerprints(SUCC, BAD, K, width, fps, table, seen, sent, me, nparts)
            q0 = 0
            i += 1
        cur = i - 1
        for q in range(q0, K):
            if BAD[q]:
                _note(found, BAD[q], cur, LAB, q, 0)
                continue
            fp = fps[q]
            if me >= 0 and owner(fp, nparts) == me:  # its own: no batch, no second look
                what = _add_visit(table, rows, parent, label, nv, base, fp, refbase + cur, q, limit)
                if what == VISIT_REFUSED:
                    refused += 1
                elif what == VISIT_ROOM:
                    q0, grow = q, True
                    break
                elif what == VISIT_ADDED:
                    _copy_row(SUCC, q, rows, nv - base, width)
                    nv += 1
                    if _full(table, nv):
                        q0, grow = q + 1, True
                        break
                continue
            slot = _probe(seen, fp)
            if seen[slot] != 0:
                continue
            c = _home(sent, fp)
            if sent[c] == fp:  # sent in an earlier round
                continue
            if n == keep.shape[0] or n == kfp.shape[0]:
                q0, grow = q, True
                break
            seen[slot] = fp
            sent[c] = fp
            for k in range(width):
                x = SUCC[q, k]
                keep[n, k] = x
                if x < -128 or x > 127:
                    small = 0
            kfp[n], ksrc[n], kidx[n] = fp, cur, q
            n += 1
            if _full(seen, n):
                q0, grow = q + 1, True
                break
        if grow:
            break
        q0 = -1
    st[XS_I], st[XS_Q], st[XS_K], st[XS_N], st[XS_NV] = i, q0, K, n, nv
    st[XS_REFUSED], st[XS_LEAK], st[XS_TERM], st[XS_EDGES], st[XS_SMALL] = refused, leak, terminals, edges, small
    return grow


@njit(cache=CACHE)
def _grow_keep(keep, kfp, ksrc, kidx, n):
    """expand_split's kept successors, their fingerprints, frontier rows and labels: room for twice n."""
    keep2 = np.empty((2 * n, keep.shape[1]), np.int16)
    keep2[:n] = keep[:n]
    kfp2, ksrc2, kidx2 = np.empty(2 * n, np.uint64), np.empty(2 * n, np.int64), np.empty(2 * n, np.uint16)
    kfp2[:n], ksrc2[:n], kidx2[:n] = kfp[:n], ksrc[:n], kidx[:n]
    return keep2, kfp2, ksrc2, kidx2


def expand_scratch(width: int) -> tuple:
    """A first scratch for :func:`expand_split`, which grows it."""
    return (np.zeros((1 << 8, width), np.int16), np.zeros(1 << 10, np.uint64), np.zeros(1 << 8, np.uint64),
            np.zeros(1 << 8, np.int64), np.zeros(1 << 8, np.uint16))


def sent_cache(old: np.ndarray | None, size: int) -> np.ndarray:
    """A sent cache for :func:`expand_split` of ``size`` slots (a power of two), holding what ``old`` (a smaller
    one, or None) holds: each fingerprint moves to its slot in the larger one."""
    assert size > 0 and size & (size - 1) == 0, size
    new = np.zeros(size, np.uint64)
    if old is not None:
        held = old[old != 0]
        new[held & np.uint64(size - 1)] = held
    return new


def no_visited_set(width: int) -> tuple:
    """:func:`expand_split`'s ``vis`` when it keeps none of the successors (``me`` < 0)."""
    return (np.zeros(4, np.uint64), row_chunks(width, 1, 1), row_chunks(width, 1, 0), np.zeros(1, np.uint32),
            np.zeros(1, np.uint16), 0, 0, 0)


def state_hashes(rows: np.ndarray) -> np.ndarray:
    """The 64-bit fingerprint the visited sets keep, of each int16 row (uint64)."""
    return _hashes(np.ascontiguousarray(rows, dtype=np.int16))


@njit(cache=CACHE, nogil=True)
def _hashes(rows):
    out = np.zeros(rows.shape[0], np.uint64)
    wd = np.zeros(rows.shape[1] // 4 + 1, np.uint64)
    for j in range(rows.shape[0]):
        out[j] = _fingerprint(rows[j], rows.shape[1], wd)
    return out


def bytes_per_state(bounds: Bounds, scenario: Scenario, states: int | None = None, queue: int | None = None) -> dict:
    """What :func:`explore` keeps per stored state, in bytes: the fingerprint table's share (8-byte slots, at most
    three quarters full: between 10.7 and 21.3 bytes; for ``states`` stored, the share at the table's size then),
    the parent number (uint32) and the label (uint16). Beside it, not per stored state: the queue's rows (int16 per
    field) for at most ``queue`` states at once (the largest level and the next), and the chance that the
    fingerprints merged two states."""
    width = int(params(bounds, scenario)[P_WIDTH])
    row = {"parent": 4, "label": 2}
    if states:
        cap, tsize = 1 << 12, 1 << 14
        while cap < states:
            cap *= 2
        while 4 * states > 3 * tsize:
            tsize *= 2
        table = 8 * tsize / states
        arrays = sum(row.values()) * cap / states  # the arrays double as they fill
    else:
        table, arrays = 16.0, float(sum(row.values()))
    out = {"width": width, "fingerprint": table, **row, "total": sum(row.values()) + table,
           "allocated": arrays + table, "queue_row": 2 * width}
    if queue is not None:
        out["queue_bytes"] = 2 * width * queue
    if states:
        out["collision_bound"] = collision_bound(states)
    return out


# ---- the public interface ------------------------------------------------------------------------------------
IMPLS = ("jit", "twin")


def _start(bounds: Bounds, scenario: Scenario, symmetry: bool) -> tuple:
    ex = X.Explorer(bounds, scenario, symmetry=symmetry)
    return ex, ex.encode(ex.start())


def explore(bounds: Bounds, scenario: Scenario, *, impl: str = "jit", symmetry: bool = True,
            orbits: bool = False, keep_states: bool = False) -> Result:
    """Search every state the bounds allow under the scenario. ``impl``: "jit" (numba) or "twin" (the
    specification). ``orbits=True`` also counts the labelled states the canonical ones stand for
    (``Result.labelled``); ``keep_states=True`` keeps every state in the result (``Result.array``, int16 rows,
    or the twin's ``Result.vectors``). The result carries the wall time (``Result.seconds``)."""
    if impl not in IMPLS:
        raise ValueError(f"impl = {impl!r} is not allowed: expected one of {', '.join(IMPLS)}")
    t0 = time.perf_counter()
    if impl == "twin":
        res = X.explore(bounds, scenario, symmetry=symmetry)
        if orbits:
            ex = X.Explorer(bounds, scenario, symmetry=symmetry)
            res.labelled = float(sum(orbit_twin(ex, v) for v in res.vectors))
        res.seconds = time.perf_counter() - t0
        if not keep_states:
            res.vectors, res.depths = [], []
        return res
    P = params(bounds, scenario, symmetry)
    ex, start = _start(bounds, scenario, symmetry)
    queue, parent, label, _table, n, found, counts = _search(P, np.array(start, dtype=np.int64),
                                                             keep_states or orbits)
    traces = {}
    for kind in range(4):
        cur = int(found[kind, 0])
        if cur < 0:
            continue
        qs = []
        while cur > 0:
            qs.append(int(label[cur]))
            cur = int(parent[cur])
        steps, reached = replay(P, start, qs[::-1])
        if kind != LEAK:
            steps.append((tuple(int(x) for x in found[kind, 1:5]), reached))
        traces[X.VIOLATIONS[kind]] = steps
    res = Result(int(n), int(counts[0]), int(counts[1]), int(counts[3]), bool(counts[2]), traces,
                 fallbacks=int(counts[4]), queue_peak=int(counts[5]))
    if keep_states:
        res.array = queue[:n].copy()
    if orbits:
        res.labelled = float(_orbits(P, queue, n))
    res.seconds = time.perf_counter() - t0
    return res


def steps(bounds: Bounds, scenario: Scenario, v: tuple, op: int, *, symmetry: bool = True,
          fallbacks: bool = False):
    """One operation's steps from state ``v`` by its compiled handler, ``HANDLERS[op]``, as the twin's
    explorer_twin.Explorer.steps gives them: (label, canonical successor, or None after a violation,
    violations), before the ``ops`` bound is charged. ``op`` must be possible at ``v``
    (explorer_twin.Explorer.possible). ``fallbacks=True``: also how many steps the owner array's bound refused
    or copied, as (steps, count)."""
    P = params(bounds, scenario, symmetry)
    M = _workspace(P)
    S0, _s, O, T = _views_boxed(P, M)
    _decode(np.array(v, dtype=np.int64), P, M)
    k = HANDLERS[op](P, M, 0)
    SUCC, LAB, BAD = O[0], O[1], O[2]
    out = [(tuple(int(x) for x in LAB[q]), None if BAD[q] else tuple(int(x) for x in SUCC[q, :P[P_WIDTH]]),
            frozenset(kind for kind in range(4) if BAD[q] >> kind & 1)) for q in range(k)]
    return (out, int(T[7][0])) if fallbacks else out


def orbit_twin(ex: X.Explorer, v: tuple) -> float:
    """explorer_twin.orbit_size times the distinct buffer relabellings of v."""
    st = ex.decode(v)
    distinct = len({ex.encode_raw(st, perm) for perm in ex.perms})
    return float(X.orbit_size(ex, v) * distinct)


# ---- fraglife bench --------------------------------------------------------------------------------------
def bench_section(args=None, *, repeats: int = 3) -> dict:
    """``fraglife bench`` section: states per second of the compiled search and of its twin, one scenario (user
    memory and a pipe, frags spanning folios) under today's rule and the unified owner; the twin at smaller
    bounds (its speed hardly depends on them), the ratio from the same run."""
    from .policies import POLICIES

    repeats = getattr(args, "repeats", repeats)
    big, small = Bounds(ops=4, cpus=2, skbs=3, frags=2), Bounds(ops=3, cpus=2, skbs=3, frags=2)
    out: dict = {"scenario": "user memory and a pipe, frags spanning folios",
                 "bounds": {"jit": big.__dict__, "twin": small.__dict__},
                 "speed": "best of repeats, wall clock, one core (other work shares the machine)"}
    for name in ("page_ref", "owner_skb"):
        sc = Scenario(kinds=(X.USER, X.PIPE), policy=POLICIES[name])
        explore(Bounds(ops=1), sc)  # load (or compile) outside the timing
        best = min((explore(big, sc) for _ in range(repeats)), key=lambda r: r.seconds)
        twin = explore(small, sc, impl="twin")
        jit_rate, twin_rate = best.states / best.seconds, twin.states / twin.seconds
        out[name] = {"states": best.states, "edges": best.edges, "states_per_s": jit_rate,
                     "edges_per_s": best.edges / best.seconds, "twin_states": twin.states,
                     "twin_states_per_s": twin_rate, "numba_over_twin": jit_rate / twin_rate,
                     "bytes_per_state": bytes_per_state(big, sc, best.states, best.queue_peak)}
    return out


def warm() -> None:
    """Compile the search, its counterexample replay and its orbit count (or load them from numba's cache;
    ``fraglife warm``): what is compiled depends on the arguments' types, not on the bounds, so the smallest
    search that reaches a violation compiles all three."""
    from .policies import POLICIES

    res = explore(Bounds(ops=2), Scenario(kinds=(X.USER, X.PIPE), policy=POLICIES["page_ref"]), orbits=True)
    assert res.found, "the warm-up search must reach a violation, so that its replay compiles too"
    state_hashes(np.zeros((1, 4), np.int16))


# ---- checks chapter 08 calls ------------------------------------------------------------------------------------
def _summary(res: Result) -> dict:
    short = res.shortest()
    return {"states": res.states, "complete": res.complete, "verdict": res.verdict,
            "violation": short[0] if short else "", "steps": len(short[1]) if short else 0,
            "labels": [lab for lab, _s in short[1]] if short else [], "fallbacks": res.fallbacks}


def binding_verdicts(bounds: Bounds, memories: dict) -> dict:
    """devmem's rule applied to all memory (``owner_binding``) on each memory (name -> kinds): the search's summary,
    and what the rule should give: a use-after-free where some memory's holder frees it on its own schedule
    (X.FREED_BY_HOLDER: pipe pages, page_pool pages, kmalloc'd memory), none where the binding or a ubuf_info
    keeps it (devmem until the binding's last put, pinned user memory until its completion)."""
    from .policies import POLICIES

    out = {}
    for name, kinds in memories.items():
        res = explore(bounds, Scenario(kinds=tuple(kinds), policy=POLICIES["owner_binding"]))
        row = _summary(res)
        row["holder_frees"] = any(k in X.FREED_BY_HOLDER for k in kinds)
        # the step that freed it is the holder's release of such memory
        row["freed_by_holder"] = any(lab[0] == HOLDER and kinds[lab[1]] in X.FREED_BY_HOLDER
                                     for lab in row["labels"] if lab[1] < len(kinds))
        out[name] = row
    return out


def binding_fails_only_where_the_holder_frees(bounds: Bounds, memories: dict) -> tuple[bool, dict]:
    """The restated claim as a check: under ``owner_binding`` every memory a holder frees on its own schedule fails
    with a use-after-free that the holder's release causes, and every other memory passes (devmem included: it
    lives until the binding's last put). Returns (holds, {memory: verdict text})."""
    rows = binding_verdicts(bounds, memories)
    ok = all((r["violation"] == "use_after_free" and r["freed_by_holder"]) if r["holder_frees"]
             else r["verdict"] == "passes" for r in rows.values())
    return ok, {m: f"{r['violation']} in {r['steps']} steps" if r["verdict"] == "fails" else "passes"
                for m, r in rows.items()}


def rule_mutants(bounds: Bounds, kinds=(X.USER, X.PIPE), policy: str = "owner_skb") -> list[dict]:
    """The owner with all its rules, then with each rule left out (X.RULES): each row the search's summary and its
    shortest counterexample's step labels (explorer_story.walk tells them)."""
    from .policies import POLICIES

    rows = [{"rule left out": "", **_summary(explore(bounds, Scenario(kinds=tuple(kinds), policy=POLICIES[policy])))}]
    for name, bit in X.RULES.items():
        sc = Scenario(kinds=tuple(kinds), policy=POLICIES[policy], rules=X.ALL_RULES & ~bit)
        rows.append({"rule left out": name, "invariant": name in X.INVARIANT_RULES, **_summary(explore(bounds, sc))})
    return rows


def invariant_breaks(bounds: Bounds, scenario: Scenario) -> dict:
    """The twin's search with the invariant (explorer_twin.Explorer.invariant) checked in every state: how many
    states break it, the first (breadth first: shallowest) and what breaks. Plain Python: small bounds."""
    ex = X.Explorer(bounds, scenario)
    res = ex.run()
    broken = [(d, ex.invariant(v)) for v, d in zip(res.vectors, res.depths) if ex.invariant(v)]
    return {"states": res.states, "broken": len(broken), "first_depth": broken[0][0] if broken else None,
            "what": broken[0][1] if broken else "", "verdict": res.verdict}


def owner_array_search(bounds: Bounds, kinds=(X.USER, X.PIPE), *, slots: int = 1, fallback: str = "refuse",
                       policy: str = "owner_skb") -> dict:
    """The owner with an owner array of ``slots`` entries, at bounds where a shared info can need more (more owners
    than slots, frags enough to hold them): the search's summary, how often the fallback ran, and whether the
    bounds exceed the array."""
    from .policies import POLICIES

    owners = sum(1 for k in kinds if k != X.POOL) + bounds.copies
    res = explore(bounds, Scenario(kinds=tuple(kinds), policy=POLICIES[policy], slots=slots, fallback=fallback))
    return {"slots": slots, "fallback": fallback, "owners": owners,
            "exceeds": owners > slots and bounds.frags > slots, **_summary(res)}


def owner_array_safe(bounds: Bounds, kinds=(X.USER, X.PIPE), slots: int = 1) -> tuple[bool, dict]:
    """The owner array's check: with bounds that exceed it, both fallbacks (refuse, copy) are reached and pass (no
    use-after-free, early completion, double release or leak). Returns (holds, the two searches)."""
    rows = {fb: owner_array_search(bounds, kinds, slots=slots, fallback=fb) for fb in X.FALLBACKS}
    ok = all(r["exceeds"] and r["fallbacks"] > 0 and r["verdict"] == "passes" for r in rows.values())
    return ok, rows


def devmem_tx_verdicts(bounds: Bounds, policy: str = "page_ref") -> list[dict]:
    """devmem TX on two devmem buffers under today's page-ref design, with upstream's rule (6.16+: a binding ref per
    frag ref and per sendmsg) and the prototype's (the socket holds the binding; with and without skb_orphan())."""
    from .policies import POLICIES

    return [{"devmem_tx": tx, **_summary(explore(bounds, Scenario(kinds=(X.DEVMEM, X.DEVMEM), policy=POLICIES[policy],
                                                                   devmem_tx=tx)))} for tx in X.DEVMEM_TX]

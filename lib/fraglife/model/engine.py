"""The replay engine: numba-compiled, same rules as the twin in reference.py.

State lives in flat arrays indexed by page frame, buffer, uarg, skb and
shared-info slot; every refcount is a cache line with a last-writer CPU. An
event's reference changes are accumulated per line, then applied gets first,
puts second, exactly as :class:`fraglife.model.reference.Replay` does. Read
the twin for the rules; this file is the same rules, written for speed.
"""

from __future__ import annotations

import inspect

import numpy as np
from numba import njit

from ..jit import CACHE

from . import ledger as L
from . import trace as T
from .ledger import Ledger
from . import policies as Pol
from .policies import Policy

PAGE = T.PAGE_SIZE
PAGE_SHIFT = 12  # x >> PAGE_SHIFT equals x // PAGE for every int, and is cheaper
assert 1 << PAGE_SHIFT == PAGE

# Ledger slots as compile-time constants.
EVENTS, ATOMICS, REF_ATOMICS, UARG_ATOMICS, DATAREF_ATOMICS = 0, 1, 2, 3, 4
REFS_TAKEN, REFS_DROPPED, LINES, BOUNCES, PAGES_PEAK = 5, 6, 7, 8, 9
UAF_PAGES, UAF_FREES, EARLY_COMPLETE, BAD_REFS, LEAKED_REFS = 10, 11, 12, 13, 14
LEAKED_PAGES, LEAKED_SKBS, TRACE_ERRORS, COMPLETIONS, BY_OP = 15, 16, 17, 18, 19
assert L.SCALARS.index("completions") == COMPLETIONS and L.BY_OP == BY_OP

ALLOC, SKB_ALLOC, ATTACH, CLONE, SPLIT, SEGMENT = 0, 1, 2, 3, 4, 5
EXPAND_HEAD, COALESCE, PULL, ZC_COMPLETE, FREE, BUF_RELEASE = 6, 7, 8, 9, 10, 11
assert (T.ALLOC, T.FREE, T.BUF_RELEASE) == (ALLOC, FREE, BUF_RELEASE)

# Policy modes as compile-time constants (what policies.Policy.as_array() carries).
PAGE_NONE, PAGE_FIRST, PAGE_ALL = 0, 1, 2
OWNER_NONE, OWNER_FRAG, OWNER_SHINFO, OWNER_SKB = 0, 1, 2, 3
assert (Pol.PAGE_NONE, Pol.PAGE_FIRST, Pol.PAGE_ALL) == (PAGE_NONE, PAGE_FIRST, PAGE_ALL)
assert (Pol.OWNER_NONE, Pol.OWNER_FRAG, Pol.OWNER_SHINFO, Pol.OWNER_SKB) == (OWNER_NONE, OWNER_FRAG, OWNER_SHINFO,
                                                                           OWNER_SKB)


@njit(cache=CACHE, inline="always")
def _touch(last_cpu, written, line, cpu, led):
    """One atomic read-modify-write on a refcount line by ``cpu``."""
    led[ATOMICS] += 1
    if written[line] == 0:
        written[line] = 1
        led[LINES] += 1
    if last_cpu[line] >= 0 and last_cpu[line] != cpu:
        led[BOUNCES] += 1
    last_cpu[line] = cpu


@njit(cache=CACHE, inline="always")
def _push(acc, mark, touched, nt, line, units):
    if mark[line] == 0:
        mark[line] = 1
        touched[nt] = line
        nt += 1
    acc[line] += units
    return nt


@njit(cache=CACHE, inline="always")
def _free_pages(alive, ptrs, lo, hi, counters, led):
    """Free pages [lo, hi); count those a live frag still covers. counters[0] = pages alive."""
    hit = False
    for q in range(lo, hi):
        if alive[q] == 0:
            continue
        alive[q] = 0
        counters[0] -= 1
        if ptrs[q] > 0:
            led[UAF_PAGES] += 1
            hit = True
    if hit:
        led[UAF_FREES] += 1


STATE = (
    # pages
    ("alive", "n_pfn", np.int8, 0), ("head", "n_pfn", np.int64, 0), ("pbuf", "n_pfn", np.int64, 0),
    ("ptrs", "n_pfn", np.int64, 0), ("fref", "n_pfn", np.int64, 0),
    # buffers
    ("b_exists", "n_buf", np.int8, 0), ("b_pfn", "n_buf", np.int64, 0), ("b_pages", "n_buf", np.int64, 0),
    ("b_fp", "n_buf", np.int64, 1), ("b_uarg", "n_buf", np.int64, -1), ("b_holder", "n_buf", np.int8, 0),
    ("b_oref", "n_buf", np.int64, 0), ("b_alive", "n_buf", np.int64, 0),
    # zerocopy notifications
    ("u_ref", "n_uarg1", np.int64, 0), ("u_active", "n_uarg1", np.int8, 0), ("u_ptrs", "n_uarg1", np.int64, 0),
    # skbs and shared infos
    ("s_alive", "n_skb", np.int8, 0), ("s_sh", "n_skb", np.int64, 0), ("s_cloned", "n_skb", np.int8, 0),
    ("sh_dataref", "n_slot", np.int64, 0), ("sh_n", "n_slot", np.int64, 0), ("sh_uarg", "n_slot", np.int64, -1),
    ("f_pfn", "n_frag", np.int64, 0), ("f_off", "n_frag", np.int64, 0), ("f_len", "n_frag", np.int64, 0),
    ("f_buf", "n_frag", np.int64, 0), ("free_stack", "n_slot", np.int64, 0), ("in_use", "n_slot", np.int8, 0),
    # cache lines and the per-event accumulator
    ("last_cpu", "n_lines", np.int64, -1), ("written", "n_lines", np.int8, 0), ("acc", "n_lines", np.int64, 0),
    ("mark", "n_lines", np.int8, 0), ("touched", "n_lines", np.int64, 0), ("counters", "one", np.int64, 0),
)


def _state(n_pfn: int, n_buf: int, n_uarg: int, n_skb: int, max_frags: int) -> list[np.ndarray]:
    """The engine's state arrays, allocated here so the compiled loop needs no allocator."""
    n_slot = n_skb + 1
    dims = {"n_pfn": n_pfn, "n_buf": n_buf, "n_uarg1": max(n_uarg, 1), "n_skb": n_skb, "n_slot": n_slot,
            "n_frag": (n_slot, max_frags), "n_lines": n_pfn + n_buf + n_uarg + n_slot, "one": 1}
    return [np.full(dims[dim], fill, dtype) for _name, dim, dtype, fill in STATE]


@njit(cache=CACHE, inline="always")
def _new_shinfo(free_stack, n_free, next_slot, sh_dataref, sh_n, sh_uarg, last_cpu, d_base, cpu):
    """A fresh shared info: the most recently freed slot, else a new one (LIFO, like a slab)."""
    if n_free > 0:
        n_free -= 1
        slot = free_stack[n_free]
    else:
        slot = next_slot
        next_slot += 1
    sh_dataref[slot] = 1
    sh_n[slot] = 0
    sh_uarg[slot] = -1
    last_cpu[d_base + slot] = cpu
    return slot, n_free, next_slot


@njit(cache=CACHE, inline="always")
def _inherit_uarg(sh_uarg, src, dst, use_uarg, u_base, acc, mark, touched, nt):
    """A new shared info made from a zerocopy one points at the same ubuf_info (skb_zerocopy_clone())."""
    if sh_uarg[src] >= 0:
        sh_uarg[dst] = sh_uarg[src]
        if use_uarg:
            nt = _push(acc, mark, touched, nt, u_base + sh_uarg[src], 1)
    return nt


@njit(cache=CACHE, inline="always")
def _set_frag(f_pfn, f_off, f_len, f_buf, slot, i, pfn, off, ln, buf):
    f_pfn[slot, i] = pfn
    f_off[slot, i] = off
    f_len[slot, i] = ln
    f_buf[slot, i] = buf


# _nrt=False: the loop allocates nothing, and without the runtime numba emits no
# reference counting for the dozens of arrays the inlined helpers touch.
@njit(cache=CACHE, _nrt=False, error_model="numpy")
def _replay(op_, cpu_, skb_, other_, buf_, pfn_, off_, len_,
            page_mode, owner_mode, use_uarg, batch,
            n_pfn, n_buf, n_uarg, n_skb, max_frags,
            alive, head, pbuf, ptrs, fref,
            b_exists, b_pfn, b_pages, b_fp, b_uarg, b_holder, b_oref, b_alive,
            u_ref, u_active, u_ptrs,
            s_alive, s_sh, s_cloned, sh_dataref, sh_n, sh_uarg, f_pfn, f_off, f_len, f_buf, free_stack, in_use,
            last_cpu, written, acc, mark, touched, counters, led):
    """The compiled replay loop; :func:`prepare` builds its arguments. In order:

    * the trace, one array per ``T.EVENT`` field (``op_`` .. ``len_``);
    * the policy, ``Policy.as_array()`` unpacked (``page_mode`` .. ``batch``);
    * the sizes, from ``T.sizes()`` plus ``max_frags``;
    * the state arrays of :data:`STATE`, in its order (pages, buffers, uargs, skbs and shared
      infos, cache lines and the per-event accumulator), as :func:`_state` allocates them;
    * ``led``, the ledger array it fills (``ledger.new_array()``).
    """
    n_slot = n_skb + 1
    o_base = n_pfn
    u_base = n_pfn + n_buf
    d_base = n_pfn + n_buf + n_uarg
    n_free = 0
    next_slot = 0

    per_shinfo_owner = owner_mode == OWNER_SHINFO or owner_mode == OWNER_SKB

    for e in range(op_.shape[0]):
        op = op_[e]
        cpu = np.int64(cpu_[e])
        skb = np.int64(skb_[e])
        other = np.int64(other_[e])
        buf = np.int64(buf_[e])
        pfn = np.int64(pfn_[e])
        off = np.int64(off_[e])
        ln = np.int64(len_[e])
        led[EVENTS] += 1
        nt = 0
        ok = True
        slot = 0
        ns = 0
        ds = 0
        ss = 0
        u = -1

        if op == ALLOC:
            fp = off
            pages = ln
            uarg = other
            if pages <= 0 or fp <= 0 or pfn < 0 or pfn + pages > n_pfn or buf < 0 or buf >= n_buf:
                ok = False
            elif b_exists[buf] == 1 and (b_holder[buf] == 1 or b_alive[buf] > 0):
                ok = False
            else:
                for q in range(pfn, pfn + pages):
                    if alive[q] == 1:
                        ok = False
                        break
            if ok:
                b_exists[buf] = 1
                b_pfn[buf] = pfn
                b_pages[buf] = pages
                b_fp[buf] = fp
                b_uarg[buf] = uarg
                b_holder[buf] = 1
                b_alive[buf] = pages
                b_oref[buf] = 0
                for q in range(pfn, pfn + pages):
                    alive[q] = 1
                    head[q] = pfn + (q - pfn) // fp * fp
                    pbuf[q] = buf
                counters[0] += pages
                if counters[0] > led[PAGES_PEAK]:
                    led[PAGES_PEAK] = counters[0]
                if page_mode != PAGE_NONE:
                    for h in range(pfn, pfn + pages, fp):
                        fref[h] = 1
                        last_cpu[h] = cpu
                else:
                    b_oref[buf] = 1
                    last_cpu[o_base + buf] = cpu
                if uarg >= 0 and u_active[uarg] == 0:
                    u_active[uarg] = 1
                    u_ref[uarg] = 0
                    last_cpu[u_base + uarg] = cpu

        elif op == SKB_ALLOC:
            if skb < 0 or skb >= n_skb or s_alive[skb] == 1:
                ok = False
            else:
                slot, n_free, next_slot = _new_shinfo(
                    free_stack, n_free, next_slot, sh_dataref, sh_n, sh_uarg, last_cpu, d_base, cpu)
                s_alive[skb] = 1
                s_sh[skb] = slot
                s_cloned[skb] = 0

        elif op == ATTACH:
            if skb < 0 or skb >= n_skb or s_alive[skb] == 0 or buf < 0 or buf >= n_buf or ln <= 0 or off < 0:
                ok = False
            else:
                slot = s_sh[skb]
                if sh_dataref[slot] != 1 or sh_n[slot] >= max_frags or b_exists[buf] == 0:
                    ok = False
                else:
                    q0 = pfn + (off >> PAGE_SHIFT)
                    q1 = pfn + ((off + ln - 1) >> PAGE_SHIFT)
                    if pfn < b_pfn[buf] or q1 >= b_pfn[buf] + b_pages[buf]:
                        ok = False
                    else:
                        for q in range(q0, q1 + 1):
                            if alive[q] == 0:
                                ok = False
                                break
                    u = b_uarg[buf]
                    if ok and u >= 0 and sh_uarg[slot] >= 0 and sh_uarg[slot] != u:
                        ok = False
            if ok:
                if per_shinfo_owner:
                    nt = _owner_terms(f_buf, sh_n, slot, -1, o_base, acc, mark, touched, nt)
                i = sh_n[slot]
                _set_frag(f_pfn, f_off, f_len, f_buf, slot, i, pfn, off, ln, buf)
                sh_n[slot] = i + 1
                _point(ptrs, u_ptrs, b_uarg, pfn, off, ln, buf, 1)
                nt = _refset(page_mode, owner_mode, head, o_base, pfn, off, ln, buf, 1, acc, mark, touched, nt)
                if per_shinfo_owner:
                    nt = _owner_terms(f_buf, sh_n, slot, 1, o_base, acc, mark, touched, nt)
                if u >= 0 and sh_uarg[slot] < 0:
                    sh_uarg[slot] = u
                    if use_uarg:
                        nt = _push(acc, mark, touched, nt, u_base + u, 1)

        elif op == CLONE:
            if (other < 0 or other >= n_skb or s_alive[other] == 0 or skb < 0 or skb >= n_skb
                    or s_alive[skb] == 1 or skb == other):
                ok = False
            else:
                slot = s_sh[other]
                sh_dataref[slot] += 1
                _touch(last_cpu, written, d_base + slot, cpu, led)
                led[DATAREF_ATOMICS] += 1
                s_alive[skb] = 1
                s_sh[skb] = slot
                s_cloned[skb] = 1
                s_cloned[other] = 1
                if owner_mode == OWNER_SKB:
                    nt = _owner_terms(f_buf, sh_n, slot, 1, o_base, acc, mark, touched, nt)

        elif op == SPLIT:
            keep = ln
            if (skb < 0 or skb >= n_skb or s_alive[skb] == 0 or other < 0 or other >= n_skb
                    or s_alive[other] == 1 or other == skb):
                ok = False
            else:
                slot = s_sh[skb]
                total = 0
                for i in range(sh_n[slot]):
                    total += f_len[slot, i]
                if sh_dataref[slot] != 1 or keep <= 0 or keep >= total:
                    ok = False
            if ok:
                if per_shinfo_owner:
                    nt = _owner_terms(f_buf, sh_n, slot, -1, o_base, acc, mark, touched, nt)
                ns, n_free, next_slot = _new_shinfo(
                    free_stack, n_free, next_slot, sh_dataref, sh_n, sh_uarg, last_cpu, d_base, cpu)
                pos = 0
                k = 0  # frags that stay
                n_old = sh_n[slot]
                for i in range(n_old):
                    fp_, fo, fl, fb = f_pfn[slot, i], f_off[slot, i], f_len[slot, i], f_buf[slot, i]
                    if pos + fl <= keep:
                        _set_frag(f_pfn, f_off, f_len, f_buf, slot, k, fp_, fo, fl, fb)
                        k += 1
                    elif pos >= keep:
                        j = sh_n[ns]
                        _set_frag(f_pfn, f_off, f_len, f_buf, ns, j, fp_, fo, fl, fb)
                        sh_n[ns] = j + 1
                    else:
                        hl = keep - pos
                        _point(ptrs, u_ptrs, b_uarg, fp_, fo, fl, fb, -1)
                        _point(ptrs, u_ptrs, b_uarg, fp_, fo, hl, fb, 1)
                        _point(ptrs, u_ptrs, b_uarg, fp_, fo + hl, fl - hl, fb, 1)
                        nt = _refset(page_mode, owner_mode, head, o_base, fp_, fo, fl, fb, -1, acc, mark, touched, nt)
                        nt = _refset(page_mode, owner_mode, head, o_base, fp_, fo, hl, fb, 1, acc, mark, touched, nt)
                        nt = _refset(page_mode, owner_mode, head, o_base, fp_, fo + hl, fl - hl, fb, 1,
                                     acc, mark, touched, nt)
                        _set_frag(f_pfn, f_off, f_len, f_buf, slot, k, fp_, fo, hl, fb)
                        k += 1
                        j = sh_n[ns]
                        _set_frag(f_pfn, f_off, f_len, f_buf, ns, j, fp_, fo + hl, fl - hl, fb)
                        sh_n[ns] = j + 1
                    pos += fl
                sh_n[slot] = k
                if per_shinfo_owner:
                    nt = _owner_terms(f_buf, sh_n, slot, 1, o_base, acc, mark, touched, nt)
                    nt = _owner_terms(f_buf, sh_n, ns, 1, o_base, acc, mark, touched, nt)
                nt = _inherit_uarg(sh_uarg, slot, ns, use_uarg, u_base, acc, mark, touched, nt)
                s_alive[other] = 1
                s_sh[other] = ns
                s_cloned[other] = 0

        elif op == SEGMENT:
            start = off
            end = off + ln
            if (other < 0 or other >= n_skb or s_alive[other] == 0 or skb < 0 or skb >= n_skb
                    or s_alive[skb] == 1 or skb == other):
                ok = False
            else:
                slot = s_sh[other]
                total = 0
                pieces = 0
                for i in range(sh_n[slot]):
                    lo = max(start, total)
                    hi = min(end, total + f_len[slot, i])
                    if lo < hi:
                        pieces += 1
                    total += f_len[slot, i]
                if start < 0 or ln <= 0 or end > total or pieces > max_frags:
                    ok = False
            if ok:
                ns, n_free, next_slot = _new_shinfo(
                    free_stack, n_free, next_slot, sh_dataref, sh_n, sh_uarg, last_cpu, d_base, cpu)
                pos = 0
                for i in range(sh_n[slot]):
                    fl = f_len[slot, i]
                    lo = max(start, pos)
                    hi = min(end, pos + fl)
                    if lo < hi:
                        fp_ = f_pfn[slot, i]
                        fo = f_off[slot, i] + lo - pos
                        fb = f_buf[slot, i]
                        j = sh_n[ns]
                        _set_frag(f_pfn, f_off, f_len, f_buf, ns, j, fp_, fo, hi - lo, fb)
                        sh_n[ns] = j + 1
                        _point(ptrs, u_ptrs, b_uarg, fp_, fo, hi - lo, fb, 1)
                        nt = _refset(page_mode, owner_mode, head, o_base, fp_, fo, hi - lo, fb, 1,
                                     acc, mark, touched, nt)
                    pos += fl
                if per_shinfo_owner:
                    nt = _owner_terms(f_buf, sh_n, ns, 1, o_base, acc, mark, touched, nt)
                nt = _inherit_uarg(sh_uarg, slot, ns, use_uarg, u_base, acc, mark, touched, nt)
                s_alive[skb] = 1
                s_sh[skb] = ns
                s_cloned[skb] = 0

        elif op == EXPAND_HEAD:
            if skb < 0 or skb >= n_skb or s_alive[skb] == 0:
                ok = False
            else:
                slot = s_sh[skb]
                if sh_dataref[slot] > 1:
                    ns, n_free, next_slot = _new_shinfo(
                    free_stack, n_free, next_slot, sh_dataref, sh_n, sh_uarg, last_cpu, d_base, cpu)
                    n_old = sh_n[slot]
                    for i in range(n_old):
                        fp_, fo, fl, fb = f_pfn[slot, i], f_off[slot, i], f_len[slot, i], f_buf[slot, i]
                        _set_frag(f_pfn, f_off, f_len, f_buf, ns, i, fp_, fo, fl, fb)
                        _point(ptrs, u_ptrs, b_uarg, fp_, fo, fl, fb, 1)
                        nt = _refset(page_mode, owner_mode, head, o_base, fp_, fo, fl, fb, 1, acc, mark, touched, nt)
                    sh_n[ns] = n_old
                    if per_shinfo_owner:
                        nt = _owner_terms(f_buf, sh_n, ns, 1, o_base, acc, mark, touched, nt)
                    if owner_mode == OWNER_SKB:
                        nt = _owner_terms(f_buf, sh_n, slot, -1, o_base, acc, mark, touched, nt)
                    nt = _inherit_uarg(sh_uarg, slot, ns, use_uarg, u_base, acc, mark, touched, nt)
                    sh_dataref[slot] -= 1
                    _touch(last_cpu, written, d_base + slot, cpu, led)
                    led[DATAREF_ATOMICS] += 1
                    s_sh[skb] = ns
                s_cloned[skb] = 0

        elif op == COALESCE:
            if (skb < 0 or skb >= n_skb or s_alive[skb] == 0 or other < 0 or other >= n_skb
                    or s_alive[other] == 0 or skb == other):
                ok = False
            else:
                ds = s_sh[skb]
                ss = s_sh[other]
                if (sh_dataref[ds] != 1 or sh_uarg[ds] >= 0 or sh_uarg[ss] >= 0
                        or sh_n[ds] + sh_n[ss] > max_frags):
                    ok = False
            if ok:
                if per_shinfo_owner:
                    nt = _owner_terms(f_buf, sh_n, ds, -1, o_base, acc, mark, touched, nt)
                n_d = sh_n[ds]
                n_s = sh_n[ss]
                shared = sh_dataref[ss] > 1
                if not shared and per_shinfo_owner:
                    nt = _owner_terms(f_buf, sh_n, ss, -1, o_base, acc, mark, touched, nt)
                for i in range(n_s):
                    fp_, fo, fl, fb = f_pfn[ss, i], f_off[ss, i], f_len[ss, i], f_buf[ss, i]
                    _set_frag(f_pfn, f_off, f_len, f_buf, ds, n_d + i, fp_, fo, fl, fb)
                    if shared:
                        _point(ptrs, u_ptrs, b_uarg, fp_, fo, fl, fb, 1)
                        nt = _refset(page_mode, owner_mode, head, o_base, fp_, fo, fl, fb, 1, acc, mark, touched, nt)
                sh_n[ds] = n_d + n_s
                if not shared:
                    sh_n[ss] = 0
                if per_shinfo_owner:
                    nt = _owner_terms(f_buf, sh_n, ds, 1, o_base, acc, mark, touched, nt)

        elif op == PULL:
            if skb < 0 or skb >= n_skb or s_alive[skb] == 0:
                ok = False
            else:
                slot = s_sh[skb]
                total = 0
                for i in range(sh_n[slot]):
                    total += f_len[slot, i]
                if sh_dataref[slot] != 1 or ln <= 0 or ln > total:
                    ok = False
            if ok:
                if per_shinfo_owner:
                    nt = _owner_terms(f_buf, sh_n, slot, -1, o_base, acc, mark, touched, nt)
                eat = ln
                k = 0
                for i in range(sh_n[slot]):
                    fp_, fo, fl, fb = f_pfn[slot, i], f_off[slot, i], f_len[slot, i], f_buf[slot, i]
                    if fl <= eat:
                        eat -= fl
                        _point(ptrs, u_ptrs, b_uarg, fp_, fo, fl, fb, -1)
                        nt = _refset(page_mode, owner_mode, head, o_base, fp_, fo, fl, fb, -1, acc, mark, touched, nt)
                    elif eat > 0:
                        _point(ptrs, u_ptrs, b_uarg, fp_, fo, fl, fb, -1)
                        _point(ptrs, u_ptrs, b_uarg, fp_, fo + eat, fl - eat, fb, 1)
                        nt = _refset(page_mode, owner_mode, head, o_base, fp_, fo, fl, fb, -1, acc, mark, touched, nt)
                        nt = _refset(page_mode, owner_mode, head, o_base, fp_, fo + eat, fl - eat, fb, 1,
                                     acc, mark, touched, nt)
                        _set_frag(f_pfn, f_off, f_len, f_buf, slot, k, fp_, fo + eat, fl - eat, fb)
                        k += 1
                        eat = 0
                    else:
                        _set_frag(f_pfn, f_off, f_len, f_buf, slot, k, fp_, fo, fl, fb)
                        k += 1
                sh_n[slot] = k
                if per_shinfo_owner:
                    nt = _owner_terms(f_buf, sh_n, slot, 1, o_base, acc, mark, touched, nt)

        elif op == ZC_COMPLETE:
            if other < 0 or other >= n_uarg:
                ok = False
            elif u_ptrs[other] > 0:
                led[EARLY_COMPLETE] += 1

        elif op == FREE:
            if skb < 0 or skb >= n_skb or s_alive[skb] == 0:
                ok = False
            else:
                slot = s_sh[skb]
                s_alive[skb] = 0
                if sh_dataref[slot] > 1:
                    sh_dataref[slot] -= 1
                    _touch(last_cpu, written, d_base + slot, cpu, led)
                    led[DATAREF_ATOMICS] += 1
                    if owner_mode == OWNER_SKB:
                        nt = _owner_terms(f_buf, sh_n, slot, -1, o_base, acc, mark, touched, nt)
                else:
                    for i in range(sh_n[slot]):
                        fp_, fo, fl, fb = f_pfn[slot, i], f_off[slot, i], f_len[slot, i], f_buf[slot, i]
                        _point(ptrs, u_ptrs, b_uarg, fp_, fo, fl, fb, -1)
                        nt = _refset(page_mode, owner_mode, head, o_base, fp_, fo, fl, fb, -1, acc, mark, touched, nt)
                    if per_shinfo_owner:
                        nt = _owner_terms(f_buf, sh_n, slot, -1, o_base, acc, mark, touched, nt)
                    if sh_uarg[slot] >= 0 and use_uarg:
                        nt = _push(acc, mark, touched, nt, u_base + sh_uarg[slot], -1)
                    sh_n[slot] = 0
                    sh_dataref[slot] = 0
                    free_stack[n_free] = slot
                    n_free += 1

        elif op == BUF_RELEASE:
            if buf < 0 or buf >= n_buf or b_exists[buf] == 0 or b_holder[buf] == 0:
                ok = False
            else:
                b_holder[buf] = 0
                if page_mode != PAGE_NONE:
                    for h in range(b_pfn[buf], b_pfn[buf] + b_pages[buf], b_fp[buf]):
                        nt = _push(acc, mark, touched, nt, h, -1)
                else:
                    nt = _push(acc, mark, touched, nt, o_base + buf, -1)
        else:
            ok = False

        if not ok:
            led[TRACE_ERRORS] += 1
        # apply the event's net reference changes: gets, then puts
        for sign in (1, -1):
            for t in range(nt):
                line = touched[t]
                units = acc[line]
                if units * sign > 0:
                    _exec(line, units, cpu, op, batch, page_mode, n_pfn, o_base, u_base, fref, alive, ptrs,
                          pbuf, b_pfn, b_pages, b_fp, b_oref, b_alive, u_ref, u_active, counters, last_cpu, written, led)
        for t in range(nt):
            line = touched[t]
            acc[line] = 0
            mark[line] = 0

    # what was never given back
    leaked = 0
    for h in range(n_pfn):
        if alive[h] == 1 and head[h] == h:
            leaked += fref[h]
    for b in range(n_buf):
        if b_alive[b] > 0:
            leaked += b_oref[b]
    for u in range(n_uarg):
        if u_ref[u] > 0:
            leaked += u_ref[u]
    live_skbs = 0
    for s in range(n_skb):
        if s_alive[s] == 1:
            live_skbs += 1
    for s in range(n_skb):
        if s_alive[s] == 1:
            in_use[s_sh[s]] = 1
    for slot in range(n_slot):
        if in_use[slot] == 1:
            leaked += sh_dataref[slot]
    led[LEAKED_REFS] = leaked
    led[LEAKED_PAGES] = counters[0]
    led[LEAKED_SKBS] = live_skbs


# _replay takes the trace columns, 4 policy flags and 5 sizes, then STATE in STATE's order.
_ARGS = list(inspect.signature(_replay.py_func).parameters)
assert [a.rstrip("_") for a in _ARGS[:len(T.EVENT.names)]] == list(T.EVENT.names)
assert _ARGS[len(T.EVENT.names) + 9:-1] == [name for name, *_ in STATE] and _ARGS[-1] == "led"


@njit(cache=CACHE, inline="always")
def _exec(line, units, cpu, op, batch, page_mode, n_pfn, o_base, u_base, fref, alive, ptrs,
          pbuf, b_pfn, b_pages, b_fp, b_oref, b_alive, u_ref, u_active, counters, last_cpu, written, led):
    """Apply ``units`` to the refcount on ``line`` with one atomic (batched) or one per unit."""
    n_atomic = 1 if batch else abs(units)
    for _ in range(n_atomic):
        _touch(last_cpu, written, line, cpu, led)
    if line >= u_base:  # a ubuf_info
        u = line - u_base
        led[UARG_ATOMICS] += n_atomic
        cur = u_ref[u]
        if units < 0 and cur < -units:
            led[BAD_REFS] += 1
            u_ref[u] = 0
            return
        u_ref[u] = cur + units
        if u_ref[u] == 0:
            led[COMPLETIONS] += 1
            u_active[u] = 0
        return
    led[REF_ATOMICS] += n_atomic
    led[BY_OP + op] += n_atomic
    if line < n_pfn:
        cur = fref[line]
        is_alive = alive[line] == 1
    else:
        cur = b_oref[line - o_base]
        is_alive = b_alive[line - o_base] > 0
    if units > 0:
        led[REFS_TAKEN] += units
        if not is_alive:
            led[BAD_REFS] += 1
        new = cur + units
    else:
        led[REFS_DROPPED] += -units
        if cur < -units:
            led[BAD_REFS] += 1
            new = 0
        else:
            new = cur + units
    if line < n_pfn:
        fref[line] = new
    else:
        b_oref[line - o_base] = new
    if units < 0 and new == 0 and cur > 0:
        if line < n_pfn:
            b = pbuf[line]
            end = min(line + b_fp[b], b_pfn[b] + b_pages[b])
            before = counters[0]
            _free_pages(alive, ptrs, line, end, counters, led)
            b_alive[b] -= before - counters[0]
        else:
            b = line - o_base
            before = counters[0]
            _free_pages(alive, ptrs, b_pfn[b], b_pfn[b] + b_pages[b], counters, led)
            b_alive[b] -= before - counters[0]


@njit(cache=CACHE, inline="always")
def _point(ptrs, u_ptrs, b_uarg, pfn, off, ln, buf, sign):
    """A frag starts (+1) or stops (-1) covering its pages."""
    q0 = pfn + (off >> PAGE_SHIFT)
    q1 = pfn + ((off + ln - 1) >> PAGE_SHIFT)
    for q in range(q0, q1 + 1):
        ptrs[q] += sign
    u = b_uarg[buf]
    if u >= 0:
        u_ptrs[u] += sign


@njit(cache=CACHE, inline="always")
def _refset(page_mode, owner_mode, head, o_base, pfn, off, ln, buf, sign, acc, mark, touched, nt):
    """Push the references one frag holds under the policy (see Replay.refset)."""
    if page_mode == PAGE_FIRST:
        nt = _push(acc, mark, touched, nt, head[pfn], sign)
    elif page_mode == PAGE_ALL:
        q0 = pfn + (off >> PAGE_SHIFT)
        q1 = pfn + ((off + ln - 1) >> PAGE_SHIFT)
        prev = -1
        for q in range(q0, q1 + 1):
            h = head[q]
            if h != prev:
                nt = _push(acc, mark, touched, nt, h, sign)
                prev = h
    elif owner_mode == OWNER_FRAG:
        nt = _push(acc, mark, touched, nt, o_base + buf, sign)
    return nt


@njit(cache=CACHE, inline="always")
def _owner_terms(f_buf, sh_n, slot, sign, o_base, acc, mark, touched, nt):
    """One owner reference per distinct owner among a shared info's frags."""
    n = sh_n[slot]
    for i in range(n):
        b = f_buf[slot, i]
        seen = False
        for j in range(i):
            if f_buf[slot, j] == b:
                seen = True
                break
        if not seen:
            nt = _push(acc, mark, touched, nt, o_base + b, sign)
    return nt


def replay(trace: np.ndarray, policy: Policy | str, *, max_frags: int = T.MAX_SKB_FRAGS) -> Ledger:
    """Replay ``trace`` under ``policy``; returns the :class:`Ledger`."""
    return Ledger.from_array(replay_array(trace, policy, max_frags=max_frags))


def replay_array(trace: np.ndarray, policy: Policy | str, *, max_frags: int = T.MAX_SKB_FRAGS) -> np.ndarray:
    return prepare(trace, policy, max_frags=max_frags)()


def prepare(trace: np.ndarray, policy: Policy | str, *, max_frags: int = T.MAX_SKB_FRAGS):
    """Everything a replay needs, allocated; the returned callable runs only the compiled loop."""
    from .policies import get

    pol = get(policy)
    s = T.sizes(trace)
    c = T.columns(trace)
    cols = [c[name] for name in T.EVENT.names]
    sizes = (s["n_pfn"], s["n_buf"], s["n_uarg"], s["n_skb"], max_frags)
    flags = (pol.page_mode, pol.owner_mode, pol.uarg, pol.batch)

    def run() -> np.ndarray:
        led = L.new_array()
        _replay(*cols, *flags, *sizes, *_state(*sizes), led)
        return led

    return run

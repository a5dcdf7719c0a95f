"""The replay engine: numba-compiled, same rules as the twin in reference.py.

State lives in int64 arrays, one 2-D array per id space (page frame,
buffer, uarg, skb, shared-info slot, frag, refcount line, pin record) with
one row per field (``STATE``). Every refcount is a cache line with a
last-writer CPU. An event's reference changes are accumulated per line, then
applied gets first, puts second, exactly as
:class:`fraglife.model.reference.Replay` does. Read the twin for the rules;
this file is the same rules, written for speed.

Line ids: ``[0, n_pfn)`` folio refcounts (and page_pool ``pp_ref_count``) by
head pfn; ``[pc_base, +n_pfn)`` large folios' ``_pincount``; ``[o_base, +n_buf)``
owners (a devmem binding, a per-send buffer owner; under the shared binding the
holder's pins); ``[u_base, +n_uarg)`` ubuf_infos (the per-send owner in the
owner designs); ``bind_line`` the shared binding; ``[d_base, +n_slot)``
``dataref``.
"""

from __future__ import annotations

import inspect

import numpy as np
from numba import njit

from ..jit import CACHE

from . import ledger as L
from . import policies as PO
from . import trace as T
from .ledger import Ledger
from .policies import Policy

PAGE = T.PAGE_SIZE
PAGE_SHIFT = 12  # x >> PAGE_SHIFT equals x // PAGE for every int, and is cheaper
assert 1 << PAGE_SHIFT == PAGE

# Ledger slots as compile-time constants.
_LED = {name: i for i, name in enumerate(L.SCALARS)}
EVENTS, ATOMICS, REF_ATOMICS = _LED["events"], _LED["atomics"], _LED["ref_atomics"]
PAGE_ATOMICS, PP_ATOMICS, OWNER_ATOMICS, PIN_ATOMICS = (_LED["page_atomics"], _LED["pp_atomics"],
                                                        _LED["owner_atomics"], _LED["pin_atomics"])
UARG_ATOMICS, DATAREF_ATOMICS, PP_READS = _LED["uarg_atomics"], _LED["dataref_atomics"], _LED["pp_reads"]
REFS_TAKEN, REFS_DROPPED, LINES, BOUNCES, PAGES_PEAK = (_LED["refs_taken"], _LED["refs_dropped"], _LED["lines"],
                                                        _LED["bounces"], _LED["pages_peak"])
UAF_PAGES, UAF_FREES, EARLY_COMPLETE, BAD_REFS, LEAKED_REFS = (_LED["uaf_pages"], _LED["uaf_frees"],
                                                               _LED["early_complete"], _LED["bad_refs"],
                                                               _LED["leaked_refs"])
LEAKED_PAGES, LEAKED_SKBS, TRACE_ERRORS, COMPLETIONS = (_LED["leaked_pages"], _LED["leaked_skbs"],
                                                         _LED["trace_errors"], _LED["completions"])
BY_OP = L.BY_OP
# the reference kinds are contiguous, so "is it a ref atomic" is one range check
assert (PAGE_ATOMICS, PP_ATOMICS, OWNER_ATOMICS, PIN_ATOMICS) == tuple(range(PAGE_ATOMICS, PAGE_ATOMICS + 4))

ALLOC, SKB_ALLOC, ATTACH, CLONE, SPLIT, SEGMENT = 0, 1, 2, 3, 4, 5
EXPAND_HEAD, COALESCE, PULL, ZC_COMPLETE, FREE, BUF_RELEASE = 6, 7, 8, 9, 10, 11
UARG_GET, UARG_PUT, GROW = 12, 13, 14
assert (ALLOC, SKB_ALLOC, ATTACH, CLONE, SPLIT, SEGMENT, EXPAND_HEAD, COALESCE, PULL, ZC_COMPLETE, FREE,
        BUF_RELEASE, UARG_GET, UARG_PUT, GROW) == tuple(range(T.N_OPS))

MEM_USER, MEM_PIPE, MEM_POOL_PAGE, MEM_POOL_FRAG, MEM_DEVMEM = 0, 1, 2, 3, 4
MEM_SLAB, MEM_PAGE_FRAG, MEM_PAGES = 5, 6, 7
assert (T.MEM_USER, T.MEM_PIPE, T.MEM_POOL_PAGE, T.MEM_POOL_FRAG, T.MEM_DEVMEM, T.MEM_SLAB, T.MEM_PAGE_FRAG,
        T.MEM_PAGES) == tuple(range(T.N_KINDS))
POOL_BIAS, PMD_PAGES, N_KINDS, FRAG_BIAS = T.POOL_BIAS, T.PMD_PAGES, T.N_KINDS, T.FRAG_BIAS

# Policy modes by name (policies.py is the definition).
PAGE_NONE, PAGE_FIRST, PAGE_ALL = 0, 1, 2
OWNER_NONE, OWNER_FRAG, OWNER_SHINFO, OWNER_SKB, OWNER_BINDING = 0, 1, 2, 3, 4
assert (PAGE_NONE, PAGE_FIRST, PAGE_ALL) == (PO.PAGE_NONE, PO.PAGE_FIRST, PO.PAGE_ALL)
assert (OWNER_NONE, OWNER_FRAG, OWNER_SHINFO, OWNER_SKB, OWNER_BINDING) == (
    PO.OWNER_NONE, PO.OWNER_FRAG, PO.OWNER_SHINFO, PO.OWNER_SKB, PO.OWNER_BINDING)

# The state: one 2-D int64 array per id space, one row per field; (group, size, rows) in order.
# Helpers take the groups in the order of GROUPS (SK only lives in the loop) plus MISC.
STATE = (
    ("PG", "n_pfn", ("ALIVE", "HEAD", "PBUF", "PTRS", "PINNED")),  # pages
    ("BF", "n_buf", ("B_EXISTS", "B_PFN", "B_PAGES", "B_FP", "B_KIND", "B_HOLDER", "B_BIAS", "B_ALIVE")),
    ("UA", "n_uarg", ("U_ACTIVE", "U_PTRS")),  # ubuf_infos
    ("SK", "n_skb", ("S_ALIVE", "S_SH", "S_CLONED")),  # skbs
    ("SH", "n_slot", ("SH_DATAREF", "SH_N", "SH_UARG", "FREE_STACK", "IN_USE")),  # shared infos
    ("FR", "n_frag", ("F_PFN", "F_OFF", "F_LEN", "F_BUF", "F_UARG")),  # frags: slot * max_frags + i
    # refcount lines, the per-event accumulator and each line's pin list
    ("LN", "n_lines", ("COUNT", "LAST_CPU", "WRITTEN", "ACC", "MARK", "TOUCHED", "PIN_FIRST", "PIN_LAST")),
    ("PR", "n_pins", ("PR_HEAD", "PR_LO", "PR_N", "PR_NEXT")),  # pin records: folio head, first page, pages, next
)
ALIVE, HEAD, PBUF, PTRS, PINNED = range(5)
B_EXISTS, B_PFN, B_PAGES, B_FP, B_KIND, B_HOLDER, B_BIAS, B_ALIVE = range(8)
U_ACTIVE, U_PTRS = range(2)
S_ALIVE, S_SH, S_CLONED = range(3)
SH_DATAREF, SH_N, SH_UARG, FREE_STACK, IN_USE = range(5)
F_PFN, F_OFF, F_LEN, F_BUF, F_UARG = range(5)
COUNT, LAST_CPU, WRITTEN, ACC, MARK, TOUCHED, PIN_FIRST, PIN_LAST = range(8)
PR_HEAD, PR_LO, PR_N, PR_NEXT = range(4)
for _group, _size, _rows in STATE:  # the row constants above follow STATE
    assert all(globals()[name] == i for i, name in enumerate(_rows)), _group
# MISC slots
M_PAGES_ALIVE, M_NFREE, M_NEXT_SLOT, M_NT, M_PIN_FREE, M_PIN_NEXT = range(6)
FILL = {"LAST_CPU": -1, "SH_UARG": -1, "PIN_FIRST": -1, "PIN_LAST": -1, "B_FP": 1}

# The parameter vector Q: the policy, the id-space sizes and the line bases.
(Q_PAGE_MODE, Q_OWNER_MODE, Q_UARG, Q_BATCH, Q_N_PFN, Q_N_BUF, Q_N_UARG, Q_N_SKB, Q_MAX_FRAGS,
 Q_PC_BASE, Q_O_BASE, Q_U_BASE, Q_BIND, Q_D_BASE) = range(14)


# ---------------------------------------------------------------- lines and atomics
@njit(cache=CACHE, inline="always", _nrt=False, error_model="numpy")
def _touch(PG, BF, UA, SH, FR, LN, PR, MISC, line, cpu, cat, op, led):
    """One atomic read-modify-write on ``line`` by ``cpu``, counted under ledger slot ``cat``."""
    led[ATOMICS] += 1
    led[cat] += 1
    if PAGE_ATOMICS <= cat <= PIN_ATOMICS:
        led[REF_ATOMICS] += 1
        led[BY_OP + op] += 1
    written = LN[WRITTEN]
    last = LN[LAST_CPU]
    if written[line] == 0:
        written[line] = 1
        led[LINES] += 1
    if last[line] >= 0 and last[line] != cpu:
        led[BOUNCES] += 1
    last[line] = cpu


@njit(cache=CACHE, inline="always", _nrt=False, error_model="numpy")
def _is_pool(PG, BF, UA, SH, FR, LN, PR, MISC, Q, line):
    return line < Q[Q_N_PFN] and BF[B_KIND, PG[PBUF, line]] >= MEM_POOL_PAGE and \
        BF[B_KIND, PG[PBUF, line]] <= MEM_POOL_FRAG


@njit(cache=CACHE, inline="always", _nrt=False, error_model="numpy")
def _cat(PG, BF, UA, SH, FR, LN, PR, MISC, Q, line):
    """The ledger slot an atomic on ``line`` counts under (Replay.line_kind)."""
    if line < Q[Q_N_PFN]:
        return PP_ATOMICS if _is_pool(PG, BF, UA, SH, FR, LN, PR, MISC, Q, line) else PAGE_ATOMICS
    if line < Q[Q_O_BASE]:
        return PIN_ATOMICS
    if line >= Q[Q_U_BASE] and line < Q[Q_BIND]:
        return UARG_ATOMICS if Q[Q_UARG] else OWNER_ATOMICS
    if line >= Q[Q_D_BASE]:
        return DATAREF_ATOMICS
    return OWNER_ATOMICS


@njit(cache=CACHE, inline="always", _nrt=False, error_model="numpy")
def _push(PG, BF, UA, SH, FR, LN, PR, MISC, line, units):
    """Accumulate ``units`` on ``line`` for this event (first touch order is kept)."""
    mark = LN[MARK]
    misc = MISC
    if mark[line] == 0:
        mark[line] = 1
        LN[TOUCHED, misc[M_NT]] = line
        misc[M_NT] += 1
    LN[ACC, line] += units


# ---------------------------------------------------------------- memory
@njit(cache=CACHE, inline="always", _nrt=False, error_model="numpy")
def _free_page(PG, BF, UA, SH, FR, LN, PR, MISC, q, led):
    """Free page ``q`` if allocated; True if a live frag still covers it."""
    if PG[ALIVE, q] == 0:
        return False
    PG[ALIVE, q] = 0
    MISC[M_PAGES_ALIVE] -= 1
    BF[B_ALIVE, PG[PBUF, q]] -= 1
    if PG[PTRS, q] > 0:
        led[UAF_PAGES] += 1
        return True
    return False


@njit(cache=CACHE, inline="always", _nrt=False, error_model="numpy")
def _free_range(PG, BF, UA, SH, FR, LN, PR, MISC, lo, hi, unpinned_only, led):
    """Free pages [lo, hi) (only those no pin holds, if asked): one free action."""
    hit = False
    for q in range(lo, hi):
        if unpinned_only and PG[PINNED, q] > 0:
            continue
        if _free_page(PG, BF, UA, SH, FR, LN, PR, MISC, q, led):
            hit = True
    if hit:
        led[UAF_FREES] += 1


@njit(cache=CACHE, inline="always", _nrt=False, error_model="numpy")
def _held(PG, BF, UA, SH, FR, LN, PR, MISC, Q, b):
    """Whether anything but pins keeps user buffer ``b`` (Replay.held)."""
    if Q[Q_OWNER_MODE] == OWNER_BINDING:
        return BF[B_HOLDER, b] == 1
    return LN[COUNT, Q[Q_O_BASE] + b] > 0


@njit(cache=CACHE, _nrt=False, error_model="numpy")
def _unpin(PG, BF, UA, SH, FR, LN, PR, MISC, Q, owner, cpu, op, led):
    """unpin_user_pages() over ``owner``'s pins: one release per run of one folio."""
    pr_next = PR[PR_NEXT]
    r = LN[PIN_FIRST, owner]
    prev = -1
    hit = False
    while r >= 0:
        h = PR[PR_HEAD, r]
        if h != prev:
            _touch(PG, BF, UA, SH, FR, LN, PR, MISC, h, cpu, PIN_ATOMICS, op, led)
            if BF[B_FP, PG[PBUF, h]] > 1:
                _touch(PG, BF, UA, SH, FR, LN, PR, MISC, Q[Q_PC_BASE] + h, cpu, PIN_ATOMICS, op, led)
        prev = h
        for q in range(PR[PR_LO, r], PR[PR_LO, r] + PR[PR_N, r]):
            PG[PINNED, q] -= 1
            if PG[PINNED, q] == 0 and PG[ALIVE, q] == 1 and not _held(PG, BF, UA, SH, FR, LN, PR, MISC, Q, PG[PBUF, q]):
                if _free_page(PG, BF, UA, SH, FR, LN, PR, MISC, q, led):
                    hit = True
        nxt = pr_next[r]
        pr_next[r] = MISC[M_PIN_FREE]  # back on the record freelist
        MISC[M_PIN_FREE] = r
        r = nxt
    LN[PIN_FIRST, owner] = -1
    LN[PIN_LAST, owner] = -1
    if hit:
        led[UAF_FREES] += 1


@njit(cache=CACHE, inline="always", _nrt=False, error_model="numpy")
def _pin_record(PG, BF, UA, SH, FR, LN, PR, MISC, owner, h, lo, n):
    misc = MISC
    if misc[M_PIN_FREE] >= 0:
        r = misc[M_PIN_FREE]
        misc[M_PIN_FREE] = PR[PR_NEXT, r]
    else:
        r = misc[M_PIN_NEXT]
        misc[M_PIN_NEXT] += 1
    PR[PR_HEAD, r] = h
    PR[PR_LO, r] = lo
    PR[PR_N, r] = n
    PR[PR_NEXT, r] = -1
    if LN[PIN_LAST, owner] >= 0:
        PR[PR_NEXT, LN[PIN_LAST, owner]] = r
    else:
        LN[PIN_FIRST, owner] = r
    LN[PIN_LAST, owner] = r


@njit(cache=CACHE, _nrt=False, error_model="numpy")
def _pin(PG, BF, UA, SH, FR, LN, PR, MISC, Q, pfn, off, ln, buf, uarg, cpu, op, led):
    """pin_user_pages() on a frag's pages (Replay.pin)."""
    head = PG[HEAD]
    fp = BF[B_FP, buf]
    if uarg >= 0:
        owner = Q[Q_U_BASE] + uarg
    else:
        owner = Q[Q_O_BASE] + buf
    q = pfn + (off >> PAGE_SHIFT)
    q1 = pfn + ((off + ln - 1) >> PAGE_SHIFT)
    while q <= q1:
        h = head[q]
        lo = q
        while q <= q1 and head[q] == h:
            q += 1
        n = q - lo
        calls = 1 if fp >= PMD_PAGES else n
        for _ in range(calls):  # try_get_folio(), then the bias (small folio) or _pincount (large)
            _touch(PG, BF, UA, SH, FR, LN, PR, MISC, h, cpu, PIN_ATOMICS, op, led)
            _touch(PG, BF, UA, SH, FR, LN, PR, MISC, Q[Q_PC_BASE] + h if fp > 1 else h, cpu, PIN_ATOMICS, op, led)
        for p in range(lo, q):
            PG[PINNED, p] += 1
        _pin_record(PG, BF, UA, SH, FR, LN, PR, MISC, owner, h, lo, n)


@njit(cache=CACHE, _nrt=False, error_model="numpy")
def _dies(PG, BF, UA, SH, FR, LN, PR, MISC, Q, line, cpu, op, led):
    """The last reference on ``line`` is gone (Replay.dies)."""
    if line < Q[Q_N_PFN]:
        b = PG[PBUF, line]
        _free_range(PG, BF, UA, SH, FR, LN, PR, MISC, line, min(line + BF[B_FP, b], BF[B_PFN, b] + BF[B_PAGES, b]), False, led)
    elif line >= Q[Q_O_BASE] and line < Q[Q_U_BASE]:
        b = line - Q[Q_O_BASE]
        if BF[B_KIND, b] == MEM_PIPE:  # the pipe's pages go back, one put per page
            fp = BF[B_FP, b]
            for q in range(BF[B_PFN, b], BF[B_PFN, b] + BF[B_PAGES, b]):
                h = BF[B_PFN, b] + (q - BF[B_PFN, b]) // fp * fp
                _touch(PG, BF, UA, SH, FR, LN, PR, MISC, h, cpu, PAGE_ATOMICS, op, led)
        elif BF[B_KIND, b] == MEM_PAGES:  # the destructor puts the sender's folios
            for h in range(BF[B_PFN, b], BF[B_PFN, b] + BF[B_PAGES, b], BF[B_FP, b]):
                _touch(PG, BF, UA, SH, FR, LN, PR, MISC, h, cpu, PAGE_ATOMICS, op, led)
        _unpin(PG, BF, UA, SH, FR, LN, PR, MISC, Q, line, cpu, op, led)
        _free_range(PG, BF, UA, SH, FR, LN, PR, MISC, BF[B_PFN, b], BF[B_PFN, b] + BF[B_PAGES, b], True, led)
    elif line >= Q[Q_U_BASE] and line < Q[Q_BIND]:
        led[COMPLETIONS] += 1
        UA[U_ACTIVE, line - Q[Q_U_BASE]] = 0
        _unpin(PG, BF, UA, SH, FR, LN, PR, MISC, Q, line, cpu, op, led)


@njit(cache=CACHE, inline="always", _nrt=False, error_model="numpy")
def _change(PG, BF, UA, SH, FR, LN, PR, MISC, Q, line, units, cpu, op, silent, led):
    """Add ``units`` to the refcount on ``line`` (Replay.change)."""
    count = LN[COUNT]
    cat = _cat(PG, BF, UA, SH, FR, LN, PR, MISC, Q, line)
    cur = count[line]
    counted = cat != UARG_ATOMICS
    batch = Q[Q_BATCH] == 1
    if units > 0:
        if not silent:
            n = 1 if batch else units
            for _ in range(n):
                _touch(PG, BF, UA, SH, FR, LN, PR, MISC, line, cpu, cat, op, led)
        if line < Q[Q_N_PFN]:
            alive = PG[ALIVE, line] == 1
        elif line >= Q[Q_U_BASE] and line < Q[Q_BIND]:
            alive = UA[U_ACTIVE, line - Q[Q_U_BASE]] == 1
        elif line >= Q[Q_O_BASE] and line < Q[Q_U_BASE]:
            alive = cur > 0
        else:
            alive = True
        if not alive:
            led[BAD_REFS] += 1
        count[line] = cur + units
        if counted:
            led[REFS_TAKEN] += units
        return
    k = -units
    if silent:
        pass
    elif _is_pool(PG, BF, UA, SH, FR, LN, PR, MISC, Q, line):  # page_pool_unref_netmem(nr): a read when nr is all that is left
        if batch:
            if cur == k:
                led[PP_READS] += 1
            else:
                _touch(PG, BF, UA, SH, FR, LN, PR, MISC, line, cpu, cat, op, led)
        else:
            left = cur
            for _ in range(k):
                if left == 1:
                    led[PP_READS] += 1
                else:
                    _touch(PG, BF, UA, SH, FR, LN, PR, MISC, line, cpu, cat, op, led)
                left -= 1
    else:
        n = 1 if batch else k
        for _ in range(n):
            _touch(PG, BF, UA, SH, FR, LN, PR, MISC, line, cpu, cat, op, led)
    if counted:
        led[REFS_DROPPED] += k
    if cur < k:
        led[BAD_REFS] += 1
        count[line] = 0
        return
    count[line] = cur - k
    if cur - k == 0 and cur > 0:
        _dies(PG, BF, UA, SH, FR, LN, PR, MISC, Q, line, cpu, op, led)


# ---------------------------------------------------------------- frags and their references
@njit(cache=CACHE, inline="always", _nrt=False, error_model="numpy")
def _frag_line(PG, BF, UA, SH, FR, LN, PR, MISC, Q, pfn, buf, uarg):
    """The one line a frag's reference is counted on, unless it is PAGE_ALL (Replay.frag_lines)."""
    if Q[Q_OWNER_MODE] == OWNER_BINDING:
        return Q[Q_BIND]
    kind = BF[B_KIND, buf]
    if kind == MEM_POOL_PAGE or kind == MEM_POOL_FRAG or kind == MEM_PAGE_FRAG:
        return PG[HEAD, pfn]
    if Q[Q_PAGE_MODE] != PAGE_NONE:
        if kind == MEM_DEVMEM:
            return Q[Q_O_BASE] + buf
        return PG[HEAD, pfn]
    if uarg >= 0:
        return Q[Q_U_BASE] + uarg
    return Q[Q_O_BASE] + buf


@njit(cache=CACHE, inline="always", _nrt=False, error_model="numpy")
def _refset(PG, BF, UA, SH, FR, LN, PR, MISC, Q, pfn, off, ln, buf, uarg, sign):
    """Push what one frag holds by itself (Replay.refset)."""
    om = Q[Q_OWNER_MODE]
    if om == OWNER_SHINFO or om == OWNER_SKB:
        return
    kind = BF[B_KIND, buf]
    if (Q[Q_PAGE_MODE] == PAGE_ALL and kind != MEM_DEVMEM and kind != MEM_POOL_PAGE and kind != MEM_POOL_FRAG
            and kind != MEM_PAGE_FRAG):
        head = PG[HEAD]
        prev = -1
        for q in range(pfn + (off >> PAGE_SHIFT), pfn + ((off + ln - 1) >> PAGE_SHIFT) + 1):
            if head[q] != prev:
                _push(PG, BF, UA, SH, FR, LN, PR, MISC, head[q], sign)
                prev = head[q]
        return
    _push(PG, BF, UA, SH, FR, LN, PR, MISC, _frag_line(PG, BF, UA, SH, FR, LN, PR, MISC, Q, pfn, buf, uarg), sign)


@njit(cache=CACHE, _nrt=False, error_model="numpy")
def _owner_terms(PG, BF, UA, SH, FR, LN, PR, MISC, Q, slot, sign):
    """Per-shared-info owners: one reference per distinct line among the slot's frags."""
    om = Q[Q_OWNER_MODE]
    if om != OWNER_SHINFO and om != OWNER_SKB:
        return
    mf = Q[Q_MAX_FRAGS]
    base = slot * mf
    n = SH[SH_N, slot]
    for i in range(n):
        li = _frag_line(PG, BF, UA, SH, FR, LN, PR, MISC, Q, FR[F_PFN, base + i], FR[F_BUF, base + i], FR[F_UARG, base + i])
        seen = False
        for j in range(i):
            if _frag_line(PG, BF, UA, SH, FR, LN, PR, MISC, Q, FR[F_PFN, base + j], FR[F_BUF, base + j], FR[F_UARG, base + j]) == li:
                seen = True
                break
        if not seen:
            _push(PG, BF, UA, SH, FR, LN, PR, MISC, li, sign)


@njit(cache=CACHE, inline="always", _nrt=False, error_model="numpy")
def _point(PG, BF, UA, SH, FR, LN, PR, MISC, pfn, off, ln, uarg, sign):
    """A frag starts (+1) or stops (-1) covering its pages."""
    ptrs = PG[PTRS]
    for q in range(pfn + (off >> PAGE_SHIFT), pfn + ((off + ln - 1) >> PAGE_SHIFT) + 1):
        ptrs[q] += sign
    if uarg >= 0:
        UA[U_PTRS, uarg] += sign


@njit(cache=CACHE, inline="always", _nrt=False, error_model="numpy")
def _set_frag(PG, BF, UA, SH, FR, LN, PR, MISC, Q, slot, i, pfn, off, ln, buf, uarg):
    k = slot * Q[Q_MAX_FRAGS] + i
    FR[F_PFN, k] = pfn
    FR[F_OFF, k] = off
    FR[F_LEN, k] = ln
    FR[F_BUF, k] = buf
    FR[F_UARG, k] = uarg


@njit(cache=CACHE, _nrt=False, error_model="numpy")
def _gup(PG, BF, UA, SH, FR, LN, PR, MISC, Q, pfn, off, ln, buf, cpu, op, led):
    """iov_iter_get_pages2() refs every page, the merged surplus goes back in one page_ref_sub()."""
    head = PG[HEAD]
    fp = BF[B_FP, buf]
    held_line = head[pfn]  # PAGE_FIRST holds the folio of the page the frag names; PAGE_ALL every folio
    all_ = Q[Q_PAGE_MODE] == PAGE_ALL
    q = pfn + (off >> PAGE_SHIFT)
    q1 = pfn + ((off + ln - 1) >> PAGE_SHIFT)
    while q <= q1:
        h = head[q]
        lo = q
        while q <= q1 and head[q] == h:
            q += 1
        n = q - lo
        held = 1 if (all_ or h == held_line) else 0
        gets = 1 if fp >= PMD_PAGES else n
        give_back = 1 if n > held else 0
        for _ in range(gets + give_back - held):
            _touch(PG, BF, UA, SH, FR, LN, PR, MISC, h, cpu, PAGE_ATOMICS, op, led)


@njit(cache=CACHE, inline="always", _nrt=False, error_model="numpy")
def _new_shinfo(PG, BF, UA, SH, FR, LN, PR, MISC, cpu, d_base):
    """A fresh shared info: the most recently freed slot, else a new one (LIFO, like a slab)."""
    misc = MISC
    if misc[M_NFREE] > 0:
        misc[M_NFREE] -= 1
        slot = SH[FREE_STACK, misc[M_NFREE]]
    else:
        slot = misc[M_NEXT_SLOT]
        misc[M_NEXT_SLOT] += 1
    SH[SH_DATAREF, slot] = 1
    SH[SH_N, slot] = 0
    SH[SH_UARG, slot] = -1
    LN[LAST_CPU, d_base + slot] = cpu
    return slot


@njit(cache=CACHE, inline="always", _nrt=False, error_model="numpy")
def _inherit_uarg(PG, BF, UA, SH, FR, LN, PR, MISC, Q, src, dst):
    """A shared info made from a zerocopy one points at the same ubuf_info (skb_zerocopy_clone())."""
    u = SH[SH_UARG, src]
    if u >= 0:
        SH[SH_UARG, dst] = u
        if Q[Q_UARG]:
            _push(PG, BF, UA, SH, FR, LN, PR, MISC, Q[Q_U_BASE] + u, 1)


@njit(cache=CACHE, inline="always", _nrt=False, error_model="numpy")
def _total(PG, BF, UA, SH, FR, LN, PR, MISC, Q, slot):
    t = 0
    base = slot * Q[Q_MAX_FRAGS]
    for i in range(SH[SH_N, slot]):
        t += FR[F_LEN, base + i]
    return t


@njit(cache=CACHE, inline="always", _nrt=False, error_model="numpy")
def _frag_ok(PG, BF, UA, SH, FR, LN, PR, MISC, Q, pfn, off, ln, buf):
    if buf < 0 or buf >= Q[Q_N_BUF] or BF[B_EXISTS, buf] == 0 or ln <= 0 or off < 0 or pfn < BF[B_PFN, buf]:
        return False
    q0 = pfn + (off >> PAGE_SHIFT)
    q1 = pfn + ((off + ln - 1) >> PAGE_SHIFT)
    if q1 >= BF[B_PFN, buf] + BF[B_PAGES, buf]:
        return False
    for q in range(q0, q1 + 1):
        if PG[ALIVE, q] == 0:
            return False
    return True


# ---------------------------------------------------------------- the loop
# _nrt=False: the loop allocates nothing, and without the runtime numba emits no
# reference counting for the arrays the inlined helpers touch.
@njit(cache=CACHE, _nrt=False, error_model="numpy")
def _replay(op_, kind_, cpu_, skb_, other_, buf_, pfn_, off_, len_, Q, PG, BF, UA, SK, SH, FR, LN, PR, MISC, led):
    """Replay one trace.

    Arguments, in groups: the trace's columns (one array per ``trace.EVENT``
    field, in field order); ``Q``, the parameter vector (the policy's modes,
    the id-space sizes and the line bases, indexed by ``Q_*``); the state
    allocated by :func:`_state`, one 2-D array per id space in ``STATE``
    order (rows named by the constants above), then ``MISC``, the scalars;
    ``led``, the ledger array the replay fills (``ledger.SCALARS`` then ref
    atomics by op).
    """
    n_pfn, n_buf, n_uarg, n_skb = Q[Q_N_PFN], Q[Q_N_BUF], Q[Q_N_UARG], Q[Q_N_SKB]
    mf = Q[Q_MAX_FRAGS]
    o_base, u_base, d_base = Q[Q_O_BASE], Q[Q_U_BASE], Q[Q_D_BASE]
    page_design = Q[Q_PAGE_MODE] != PAGE_NONE
    om = Q[Q_OWNER_MODE]
    binding = om == OWNER_BINDING
    per_shinfo = om == OWNER_SHINFO or om == OWNER_SKB
    use_uarg = Q[Q_UARG] == 1
    misc = MISC
    alive, head, pbuf = PG[ALIVE], PG[HEAD], PG[PBUF]
    b_exists, b_pfn, b_pages, b_fp, b_kind = BF[B_EXISTS], BF[B_PFN], BF[B_PAGES], BF[B_FP], BF[B_KIND]
    b_holder, b_bias, b_alive = BF[B_HOLDER], BF[B_BIAS], BF[B_ALIVE]
    u_active, u_ptrs = UA[U_ACTIVE], UA[U_PTRS]
    s_alive, s_sh, s_cloned = SK[S_ALIVE], SK[S_SH], SK[S_CLONED]
    sh_dataref, sh_n, sh_uarg = SH[SH_DATAREF], SH[SH_N], SH[SH_UARG]
    f_pfn, f_off, f_len, f_buf, f_uarg = FR[F_PFN], FR[F_OFF], FR[F_LEN], FR[F_BUF], FR[F_UARG]
    count, last_cpu, acc, mark, touched = LN[COUNT], LN[LAST_CPU], LN[ACC], LN[MARK], LN[TOUCHED]

    for e in range(op_.shape[0]):
        op = np.int64(op_[e])
        kind = np.int64(kind_[e])
        cpu = np.int64(cpu_[e])
        skb = np.int64(skb_[e])
        other = np.int64(other_[e])
        buf = np.int64(buf_[e])
        pfn = np.int64(pfn_[e])
        off = np.int64(off_[e])
        ln = np.int64(len_[e])
        led[EVENTS] += 1
        misc[M_NT] = 0
        ok = True
        slot = ns = ds = ss = k = 0
        fpfn = fo = fl = fb = fu = q0 = q1 = last = 0

        if op == ALLOC:
            fp = off
            pages = ln
            if (pages <= 0 or fp <= 0 or pfn < 0 or pfn + pages > n_pfn or buf < 0 or buf >= n_buf
                    or kind >= N_KINDS
                    or ((kind == MEM_POOL_PAGE or kind == MEM_POOL_FRAG or kind == MEM_PAGE_FRAG) and pages != fp)):
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
                b_kind[buf] = kind
                b_holder[buf] = 1
                b_bias[buf] = 0
                b_alive[buf] = pages
                for q in range(pfn, pfn + pages):
                    alive[q] = 1
                    head[q] = pfn + (q - pfn) // fp * fp
                    pbuf[q] = buf
                misc[M_PAGES_ALIVE] += pages
                if misc[M_PAGES_ALIVE] > led[PAGES_PEAK]:
                    led[PAGES_PEAK] = misc[M_PAGES_ALIVE]
                count[o_base + buf] = 0
                if binding:
                    pass  # memory lives until its holder lets go
                elif kind == MEM_POOL_PAGE or kind == MEM_POOL_FRAG:  # page_pool_fragment_netmem()
                    b_bias[buf] = 1 if kind == MEM_POOL_PAGE else POOL_BIAS
                    count[pfn] = b_bias[buf]
                    last_cpu[pfn] = cpu
                elif kind == MEM_PAGE_FRAG:  # the cache holds pagecnt_bias
                    b_bias[buf] = FRAG_BIAS
                    count[pfn] = FRAG_BIAS
                    last_cpu[pfn] = cpu
                elif kind == MEM_DEVMEM or not page_design:
                    count[o_base + buf] = 1
                    last_cpu[o_base + buf] = cpu
                elif kind == MEM_SLAB:
                    pass  # no refcount: it lives until kfree()
                else:  # the mapping's ref per folio, the allocator's per folio; the pipe's per page
                    for h in range(pfn, pfn + pages, fp):
                        count[h] = min(fp, pfn + pages - h) if kind == MEM_PIPE else 1
                        last_cpu[h] = cpu

        elif op == SKB_ALLOC:
            if skb < 0 or skb >= n_skb or s_alive[skb] == 1:
                ok = False
            else:
                s_alive[skb] = 1
                s_sh[skb] = _new_shinfo(PG, BF, UA, SH, FR, LN, PR, MISC, cpu, d_base)
                s_cloned[skb] = 0

        elif op == ATTACH:
            u = other
            if skb < 0 or skb >= n_skb or s_alive[skb] == 0 or not _frag_ok(PG, BF, UA, SH, FR, LN, PR, MISC, Q, pfn, off, ln, buf):
                ok = False
            else:
                slot = s_sh[skb]
                if sh_dataref[slot] != 1 or sh_n[slot] >= mf:
                    ok = False
                elif u >= 0 and (u >= n_uarg or u_active[u] == 0):
                    ok = False
                elif u >= 0 and sh_uarg[slot] >= 0 and sh_uarg[slot] != u:
                    ok = False  # an skb points at one uarg (skb_zerocopy_iter_stream: -EEXIST)
                elif b_kind[buf] == MEM_SLAB and page_design:
                    ok = False  # skb_splice_from_iter(): !sendpage_ok(), -EIO
            if ok:
                slot = s_sh[skb]
                if per_shinfo:
                    _owner_terms(PG, BF, UA, SH, FR, LN, PR, MISC, Q, slot, -1)
                i = sh_n[slot]
                _set_frag(PG, BF, UA, SH, FR, LN, PR, MISC, Q, slot, i, pfn, off, ln, buf, u)
                sh_n[slot] = i + 1
                _point(PG, BF, UA, SH, FR, LN, PR, MISC, pfn, off, ln, u, 1)
                if b_kind[buf] == MEM_USER:
                    if page_design:
                        _gup(PG, BF, UA, SH, FR, LN, PR, MISC, Q, pfn, off, ln, buf, cpu, op, led)
                    else:
                        _pin(PG, BF, UA, SH, FR, LN, PR, MISC, Q, pfn, off, ln, buf, u, cpu, op, led)
                _refset(PG, BF, UA, SH, FR, LN, PR, MISC, Q, pfn, off, ln, buf, u, 1)
                if per_shinfo:
                    _owner_terms(PG, BF, UA, SH, FR, LN, PR, MISC, Q, slot, 1)
                if (b_kind[buf] == MEM_POOL_PAGE or b_kind[buf] == MEM_POOL_FRAG) and not binding \
                        and b_bias[buf] > 0:
                    b_bias[buf] -= 1  # frag_users++: the slot's ref comes out of the pool's bias
                    _push(PG, BF, UA, SH, FR, LN, PR, MISC, head[pfn], -1)
                if u >= 0 and sh_uarg[slot] < 0:
                    sh_uarg[slot] = u
                    if use_uarg:
                        _push(PG, BF, UA, SH, FR, LN, PR, MISC, u_base + u, 1)

        elif op == GROW:
            if skb < 0 or skb >= n_skb or s_alive[skb] == 0 or ln <= 0:
                ok = False
            else:
                slot = s_sh[skb]
                n = sh_n[slot]
                if sh_dataref[slot] != 1 or n == 0:
                    ok = False
                else:
                    k = slot * mf + n - 1
                    fpfn, fo, fl, fb, fu = f_pfn[k], f_off[k], f_len[k], f_buf[k], f_uarg[k]
                    if buf != fb or other != fu or not _frag_ok(PG, BF, UA, SH, FR, LN, PR, MISC, Q, fpfn, fo, fl + ln, fb):
                        ok = False
                    else:
                        last = head[fpfn + ((fo + fl - 1) >> PAGE_SHIFT)]
                        q0 = fpfn + ((fo + fl) >> PAGE_SHIFT)
                        q1 = fpfn + ((fo + fl + ln - 1) >> PAGE_SHIFT)
                        for q in range(q0, q1 + 1):
                            if head[q] != last:
                                ok = False
                                break
            if ok:
                _point(PG, BF, UA, SH, FR, LN, PR, MISC, fpfn, fo, fl, fu, -1)
                _point(PG, BF, UA, SH, FR, LN, PR, MISC, fpfn, fo, fl + ln, fu, 1)
                f_len[k] = fl + ln
                if b_kind[buf] == MEM_USER:
                    if page_design:  # GUP refs the new pages; all of them go back in one page_ref_sub()
                        gets = 1 if b_fp[buf] >= PMD_PAGES else q1 - q0 + 1
                        for _ in range(gets + 1):
                            _touch(PG, BF, UA, SH, FR, LN, PR, MISC, last, cpu, PAGE_ATOMICS, op, led)
                    else:
                        _pin(PG, BF, UA, SH, FR, LN, PR, MISC, Q, q0, 0, (q1 - q0 + 1) * PAGE, buf, fu, cpu, op, led)

        elif op == CLONE:
            if (other < 0 or other >= n_skb or s_alive[other] == 0 or skb < 0 or skb >= n_skb
                    or s_alive[skb] == 1 or skb == other):
                ok = False
            else:
                slot = s_sh[other]
                sh_dataref[slot] += 1
                _touch(PG, BF, UA, SH, FR, LN, PR, MISC, d_base + slot, cpu, DATAREF_ATOMICS, op, led)
                s_alive[skb] = 1
                s_sh[skb] = slot
                s_cloned[skb] = 1
                s_cloned[other] = 1
                if om == OWNER_SKB:
                    _owner_terms(PG, BF, UA, SH, FR, LN, PR, MISC, Q, slot, 1)

        elif op == SPLIT:
            keep = ln
            if (skb < 0 or skb >= n_skb or s_alive[skb] == 0 or other < 0 or other >= n_skb
                    or s_alive[other] == 1 or other == skb):
                ok = False
            else:
                slot = s_sh[skb]
                if sh_dataref[slot] != 1 or keep <= 0 or keep >= _total(PG, BF, UA, SH, FR, LN, PR, MISC, Q, slot):
                    ok = False
            if ok:
                if per_shinfo:
                    _owner_terms(PG, BF, UA, SH, FR, LN, PR, MISC, Q, slot, -1)
                ns = _new_shinfo(PG, BF, UA, SH, FR, LN, PR, MISC, cpu, d_base)
                pos = 0
                kk = 0  # frags that stay
                for i in range(sh_n[slot]):
                    k = slot * mf + i
                    fp_, fo, fl, fb, fu = f_pfn[k], f_off[k], f_len[k], f_buf[k], f_uarg[k]
                    if pos + fl <= keep:
                        _set_frag(PG, BF, UA, SH, FR, LN, PR, MISC, Q, slot, kk, fp_, fo, fl, fb, fu)
                        kk += 1
                    elif pos >= keep:
                        j = sh_n[ns]
                        _set_frag(PG, BF, UA, SH, FR, LN, PR, MISC, Q, ns, j, fp_, fo, fl, fb, fu)
                        sh_n[ns] = j + 1
                    else:
                        hl = keep - pos
                        _point(PG, BF, UA, SH, FR, LN, PR, MISC, fp_, fo, fl, fu, -1)
                        _point(PG, BF, UA, SH, FR, LN, PR, MISC, fp_, fo, hl, fu, 1)
                        _point(PG, BF, UA, SH, FR, LN, PR, MISC, fp_, fo + hl, fl - hl, fu, 1)
                        _refset(PG, BF, UA, SH, FR, LN, PR, MISC, Q, fp_, fo, fl, fb, fu, -1)
                        _refset(PG, BF, UA, SH, FR, LN, PR, MISC, Q, fp_, fo, hl, fb, fu, 1)
                        _refset(PG, BF, UA, SH, FR, LN, PR, MISC, Q, fp_, fo + hl, fl - hl, fb, fu, 1)
                        _set_frag(PG, BF, UA, SH, FR, LN, PR, MISC, Q, slot, kk, fp_, fo, hl, fb, fu)
                        kk += 1
                        j = sh_n[ns]
                        _set_frag(PG, BF, UA, SH, FR, LN, PR, MISC, Q, ns, j, fp_, fo + hl, fl - hl, fb, fu)
                        sh_n[ns] = j + 1
                    pos += fl
                sh_n[slot] = kk
                if per_shinfo:
                    _owner_terms(PG, BF, UA, SH, FR, LN, PR, MISC, Q, slot, 1)
                if per_shinfo:
                    _owner_terms(PG, BF, UA, SH, FR, LN, PR, MISC, Q, ns, 1)
                _inherit_uarg(PG, BF, UA, SH, FR, LN, PR, MISC, Q, slot, ns)
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
                    fl = f_len[slot * mf + i]
                    if max(start, total) < min(end, total + fl):
                        pieces += 1
                    total += fl
                if start < 0 or ln <= 0 or end > total or pieces > mf:
                    ok = False
            if ok:
                ns = _new_shinfo(PG, BF, UA, SH, FR, LN, PR, MISC, cpu, d_base)
                pos = 0
                for i in range(sh_n[slot]):
                    k = slot * mf + i
                    fl = f_len[k]
                    lo = max(start, pos)
                    hi = min(end, pos + fl)
                    if lo < hi:
                        fp_, fb, fu = f_pfn[k], f_buf[k], f_uarg[k]
                        fo = f_off[k] + lo - pos
                        j = sh_n[ns]
                        _set_frag(PG, BF, UA, SH, FR, LN, PR, MISC, Q, ns, j, fp_, fo, hi - lo, fb, fu)
                        sh_n[ns] = j + 1
                        _point(PG, BF, UA, SH, FR, LN, PR, MISC, fp_, fo, hi - lo, fu, 1)
                        _refset(PG, BF, UA, SH, FR, LN, PR, MISC, Q, fp_, fo, hi - lo, fb, fu, 1)
                    pos += fl
                if per_shinfo:
                    _owner_terms(PG, BF, UA, SH, FR, LN, PR, MISC, Q, ns, 1)
                _inherit_uarg(PG, BF, UA, SH, FR, LN, PR, MISC, Q, slot, ns)
                s_alive[skb] = 1
                s_sh[skb] = ns
                s_cloned[skb] = 0

        elif op == EXPAND_HEAD:
            if skb < 0 or skb >= n_skb or s_alive[skb] == 0:
                ok = False
            else:
                slot = s_sh[skb]
                if sh_dataref[slot] > 1:
                    ns = _new_shinfo(PG, BF, UA, SH, FR, LN, PR, MISC, cpu, d_base)
                    n_old = sh_n[slot]
                    for i in range(n_old):
                        k = slot * mf + i
                        fp_, fo, fl, fb, fu = f_pfn[k], f_off[k], f_len[k], f_buf[k], f_uarg[k]
                        _set_frag(PG, BF, UA, SH, FR, LN, PR, MISC, Q, ns, i, fp_, fo, fl, fb, fu)
                        _point(PG, BF, UA, SH, FR, LN, PR, MISC, fp_, fo, fl, fu, 1)
                        _refset(PG, BF, UA, SH, FR, LN, PR, MISC, Q, fp_, fo, fl, fb, fu, 1)
                    sh_n[ns] = n_old
                    if per_shinfo:
                        _owner_terms(PG, BF, UA, SH, FR, LN, PR, MISC, Q, ns, 1)
                    if om == OWNER_SKB:
                        _owner_terms(PG, BF, UA, SH, FR, LN, PR, MISC, Q, slot, -1)  # this skb's ref moves over
                    _inherit_uarg(PG, BF, UA, SH, FR, LN, PR, MISC, Q, slot, ns)
                    sh_dataref[slot] -= 1
                    _touch(PG, BF, UA, SH, FR, LN, PR, MISC, d_base + slot, cpu, DATAREF_ATOMICS, op, led)
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
                        or sh_n[ds] + sh_n[ss] > mf):
                    ok = False
            if ok:
                if per_shinfo:
                    _owner_terms(PG, BF, UA, SH, FR, LN, PR, MISC, Q, ds, -1)
                n_d = sh_n[ds]
                n_s = sh_n[ss]
                shared = sh_dataref[ss] > 1
                if not shared:
                    if per_shinfo:
                        _owner_terms(PG, BF, UA, SH, FR, LN, PR, MISC, Q, ss, -1)
                for i in range(n_s):
                    k = ss * mf + i
                    fp_, fo, fl, fb, fu = f_pfn[k], f_off[k], f_len[k], f_buf[k], f_uarg[k]
                    _set_frag(PG, BF, UA, SH, FR, LN, PR, MISC, Q, ds, n_d + i, fp_, fo, fl, fb, fu)
                    if shared:
                        _point(PG, BF, UA, SH, FR, LN, PR, MISC, fp_, fo, fl, fu, 1)
                        _refset(PG, BF, UA, SH, FR, LN, PR, MISC, Q, fp_, fo, fl, fb, fu, 1)
                sh_n[ds] = n_d + n_s
                if not shared:
                    sh_n[ss] = 0
                if per_shinfo:
                    _owner_terms(PG, BF, UA, SH, FR, LN, PR, MISC, Q, ds, 1)

        elif op == PULL:
            if skb < 0 or skb >= n_skb or s_alive[skb] == 0:
                ok = False
            else:
                slot = s_sh[skb]
                if sh_dataref[slot] != 1 or ln <= 0 or ln > _total(PG, BF, UA, SH, FR, LN, PR, MISC, Q, slot):
                    ok = False
            if ok:
                if per_shinfo:
                    _owner_terms(PG, BF, UA, SH, FR, LN, PR, MISC, Q, slot, -1)
                eat = ln
                kk = 0
                for i in range(sh_n[slot]):
                    k = slot * mf + i
                    fp_, fo, fl, fb, fu = f_pfn[k], f_off[k], f_len[k], f_buf[k], f_uarg[k]
                    if fl <= eat:
                        eat -= fl
                        _point(PG, BF, UA, SH, FR, LN, PR, MISC, fp_, fo, fl, fu, -1)
                        _refset(PG, BF, UA, SH, FR, LN, PR, MISC, Q, fp_, fo, fl, fb, fu, -1)
                    elif eat > 0:
                        _point(PG, BF, UA, SH, FR, LN, PR, MISC, fp_, fo, fl, fu, -1)
                        _point(PG, BF, UA, SH, FR, LN, PR, MISC, fp_, fo + eat, fl - eat, fu, 1)
                        _refset(PG, BF, UA, SH, FR, LN, PR, MISC, Q, fp_, fo, fl, fb, fu, -1)
                        _refset(PG, BF, UA, SH, FR, LN, PR, MISC, Q, fp_, fo + eat, fl - eat, fb, fu, 1)
                        _set_frag(PG, BF, UA, SH, FR, LN, PR, MISC, Q, slot, kk, fp_, fo + eat, fl - eat, fb, fu)
                        kk += 1
                        eat = 0
                    else:
                        _set_frag(PG, BF, UA, SH, FR, LN, PR, MISC, Q, slot, kk, fp_, fo, fl, fb, fu)
                        kk += 1
                sh_n[slot] = kk
                if per_shinfo:
                    _owner_terms(PG, BF, UA, SH, FR, LN, PR, MISC, Q, slot, 1)

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
                    _touch(PG, BF, UA, SH, FR, LN, PR, MISC, d_base + slot, cpu, DATAREF_ATOMICS, op, led)
                    if om == OWNER_SKB:
                        _owner_terms(PG, BF, UA, SH, FR, LN, PR, MISC, Q, slot, -1)
                else:
                    for i in range(sh_n[slot]):
                        k = slot * mf + i
                        _point(PG, BF, UA, SH, FR, LN, PR, MISC, f_pfn[k], f_off[k], f_len[k], f_uarg[k], -1)
                        _refset(PG, BF, UA, SH, FR, LN, PR, MISC, Q, f_pfn[k], f_off[k], f_len[k], f_buf[k], f_uarg[k], -1)
                    if per_shinfo:
                        _owner_terms(PG, BF, UA, SH, FR, LN, PR, MISC, Q, slot, -1)
                    if sh_uarg[slot] >= 0 and use_uarg:
                        _push(PG, BF, UA, SH, FR, LN, PR, MISC, u_base + sh_uarg[slot], -1)
                    sh_n[slot] = 0
                    sh_dataref[slot] = 0
                    SH[FREE_STACK, misc[M_NFREE]] = slot
                    misc[M_NFREE] += 1

        elif op == BUF_RELEASE and buf >= 0 and buf < n_buf and b_exists[buf] == 1 \
                and b_kind[buf] == MEM_PAGE_FRAG and ln > 0:
            # users page_frag_free() their fragments: out of the bias, one put each
            for _ in range(ln):
                if binding:
                    _touch(PG, BF, UA, SH, FR, LN, PR, MISC, b_pfn[buf], cpu, PAGE_ATOMICS, op, led)
                else:
                    if b_bias[buf] > 0:
                        b_bias[buf] -= 1
                    _change(PG, BF, UA, SH, FR, LN, PR, MISC, Q, b_pfn[buf], -1, cpu, op, False, led)

        elif op == BUF_RELEASE:
            if buf < 0 or buf >= n_buf or b_exists[buf] == 0 or b_holder[buf] == 0:
                ok = False
            else:
                b_holder[buf] = 0
                bk = b_kind[buf]
                fp = b_fp[buf]
                lo = b_pfn[buf]
                hi = lo + b_pages[buf]
                if binding:
                    if bk == MEM_PIPE:  # pipe_buf_release(): one put per page
                        for q in range(lo, hi):
                            _touch(PG, BF, UA, SH, FR, LN, PR, MISC, lo + (q - lo) // fp * fp, cpu, PAGE_ATOMICS, op, led)
                    _unpin(PG, BF, UA, SH, FR, LN, PR, MISC, Q, o_base + buf, cpu, op, led)
                    _free_range(PG, BF, UA, SH, FR, LN, PR, MISC, lo, hi, True, led)
                elif bk == MEM_PAGE_FRAG:  # page_ref_sub_and_test(pagecnt_bias)
                    nr = b_bias[buf]
                    b_bias[buf] = 0
                    if nr:
                        cur = count[lo]
                        _touch(PG, BF, UA, SH, FR, LN, PR, MISC, lo, cpu, PAGE_ATOMICS, op, led)
                        count[lo] = max(cur - nr, 0)
                        if cur < nr:
                            led[BAD_REFS] += 1
                        if cur - nr == 0:
                            _dies(PG, BF, UA, SH, FR, LN, PR, MISC, Q, lo, cpu, op, led)
                elif bk == MEM_POOL_PAGE or bk == MEM_POOL_FRAG:  # page_pool_drain_frag()
                    nr = b_bias[buf]
                    b_bias[buf] = 0
                    if nr:
                        cur = count[lo]
                        if cur == nr:
                            led[PP_READS] += 1
                        else:
                            _touch(PG, BF, UA, SH, FR, LN, PR, MISC, lo, cpu, PP_ATOMICS, op, led)
                        count[lo] = max(cur - nr, 0)
                        if cur < nr:
                            led[BAD_REFS] += 1
                        if cur - nr == 0:
                            _dies(PG, BF, UA, SH, FR, LN, PR, MISC, Q, lo, cpu, op, led)
                elif bk == MEM_DEVMEM or not page_design:
                    _change(PG, BF, UA, SH, FR, LN, PR, MISC, Q, o_base + buf, -1, cpu, op, bk == MEM_USER, led)
                elif bk == MEM_SLAB:  # kfree()
                    _free_range(PG, BF, UA, SH, FR, LN, PR, MISC, lo, hi, False, led)
                else:
                    for h in range(lo, hi, fp):
                        units = min(fp, hi - h) if bk == MEM_PIPE else 1
                        _change(PG, BF, UA, SH, FR, LN, PR, MISC, Q, h, -units, cpu, op, bk == MEM_USER, led)

        elif op == UARG_GET:
            if other < 0 or other >= n_uarg:
                ok = False
            elif u_active[other] == 0:  # msg_zerocopy_alloc(): refcount_set(1)
                u_active[other] = 1
                count[u_base + other] = 1
                last_cpu[u_base + other] = cpu
            else:
                _change(PG, BF, UA, SH, FR, LN, PR, MISC, Q, u_base + other, 1, cpu, op, False, led)

        elif op == UARG_PUT:
            if other < 0 or other >= n_uarg or u_active[other] == 0:
                ok = False
            else:
                _change(PG, BF, UA, SH, FR, LN, PR, MISC, Q, u_base + other, -1, cpu, op, False, led)

        else:
            ok = False

        if not ok:
            led[TRACE_ERRORS] += 1
        # apply the event's net reference changes: gets, then puts
        nt = misc[M_NT]
        for sign in (1, -1):
            for t in range(nt):
                line = touched[t]
                units = acc[line]
                if units * sign > 0:
                    _change(PG, BF, UA, SH, FR, LN, PR, MISC, Q, line, units, cpu, op, False, led)
        for t in range(nt):
            line = touched[t]
            acc[line] = 0
            mark[line] = 0

    # what was never given back
    leaked = 0
    for h in range(n_pfn):
        if alive[h] == 1 and head[h] == h and count[h] > 0:
            leaked += count[h]
        leaked += PG[PINNED, h]
    for line in range(o_base, d_base):
        if count[line] > 0:
            leaked += count[line]
    live_skbs = 0
    for s in range(n_skb):
        if s_alive[s] == 1:
            live_skbs += 1
            SH[IN_USE, s_sh[s]] = 1
    for slot in range(SH[IN_USE].shape[0]):
        if SH[IN_USE, slot] == 1:
            leaked += sh_dataref[slot]
    led[LEAKED_REFS] = leaked
    led[LEAKED_PAGES] = misc[M_PAGES_ALIVE]
    led[LEAKED_SKBS] = live_skbs


# the loop's parameters are the trace's columns, Q, STATE's groups in order, MISC and the ledger
assert tuple(inspect.signature(_replay.py_func).parameters) == (
    *(f"{name}_" for name in T.EVENT.names), "Q", *(group for group, _size, _rows in STATE), "MISC", "led")


def pin_capacity(trace: np.ndarray) -> int:
    """Pin records a replay may hold at once: at most one per page each ATTACH or GROW covers."""
    att = trace[trace["op"] == T.ATTACH]
    grow = trace[trace["op"] == T.GROW]
    n = int((((att["off"] + att["len"] - 1) >> PAGE_SHIFT) - (att["off"] >> PAGE_SHIFT) + 1).sum())
    n += int((((grow["len"] - 1) >> PAGE_SHIFT) + 2).sum())
    return n + 1


def _state(n_pfn: int, n_buf: int, n_uarg: int, n_skb: int, max_frags: int, n_pins: int) -> tuple:
    """The engine's state, allocated here so the compiled loop needs no allocator: STATE's groups, then MISC."""
    n_slot = n_skb + 1
    n_uarg = max(n_uarg, 1)
    n_lines = 2 * n_pfn + n_buf + n_uarg + 1 + n_slot
    dims = {"n_pfn": n_pfn, "n_buf": max(n_buf, 1), "n_uarg": n_uarg, "n_skb": n_skb, "n_slot": n_slot,
            "n_frag": n_slot * max_frags, "n_lines": n_lines, "n_pins": n_pins}
    out = []
    for _group, size, rows in STATE:
        a = np.zeros((len(rows), max(dims[size], 1)), dtype=np.int64)
        for i, name in enumerate(rows):
            a[i] = FILL.get(name, 0)
        out.append(a)
    misc = np.zeros(8, dtype=np.int64)
    misc[M_PIN_FREE] = -1
    return (*out, misc)


def _params(pol: Policy, n_pfn: int, n_buf: int, n_uarg: int, n_skb: int, max_frags: int) -> np.ndarray:
    n_buf1, n_uarg1 = max(n_buf, 1), max(n_uarg, 1)
    pc_base = n_pfn
    o_base = 2 * n_pfn
    u_base = o_base + n_buf1
    bind = u_base + n_uarg1
    d_base = bind + 1
    return np.array([pol.page_mode, pol.owner_mode, int(pol.uarg), int(pol.batch), n_pfn, n_buf, n_uarg, n_skb,
                     max_frags, pc_base, o_base, u_base, bind, d_base], dtype=np.int64)


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
    n_pins = 1 if pol.holds_pages else pin_capacity(trace)
    Q = _params(pol, *sizes)

    def run() -> np.ndarray:
        led = L.new_array()
        _replay(*cols, Q, *_state(*sizes, n_pins), led)
        return led

    return run


def replay_columns(columns: dict[str, np.ndarray], policy: Policy | str, sizes: dict[str, int], *,
                   max_frags: int = T.MAX_SKB_FRAGS) -> Ledger:
    """Replay a trace given as contiguous columns (``trace.columns()``, or a compiled generator's) with its
    id-space sizes (``trace.sizes()``, plus ``n_pins``, the pin records it may hold: :func:`pin_capacity`)."""
    from .policies import get

    pol = get(policy)
    dims = (sizes["n_pfn"], sizes["n_buf"], sizes["n_uarg"], sizes["n_skb"], max_frags)
    led = L.new_array()
    _replay(*(columns[name] for name in T.EVENT.names), _params(pol, *dims),
            *_state(*dims, 1 if pol.holds_pages else sizes["n_pins"]), led)
    return Ledger.from_array(led)

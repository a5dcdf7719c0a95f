"""The replay engine: numba-compiled, same rules as the twin in engine_twin.py.

State lives in int64 arrays, one 2-D array per id space (page frame,
buffer, uarg, skb, shared-info slot, frag, refcount line, pin record) with
one row per field (``STATE``). Every refcount is a cache line with a
last-writer CPU. An event's reference changes are accumulated per line, then
applied gets first, puts second, exactly as
:class:`fraglife.model.engine_twin.Replay` does. Read the twin for the rules;
this file is the same rules, written for speed, and under the same names: one
handler per event (``alloc``, ``attach``, ``clone``, ... :data:`HANDLERS`,
``Replay.alloc``, ``Replay.attach``, ``Replay.clone``, ...), and the helpers
they share (``atomic``, ``change``, ``dies``, ``pin``, ``gup``, ``refset``,
``owner_terms``, ...). The handlers take the state as one tuple ``S`` and are
inlined into the loop (:func:`_replay`), which stays one compiled function.

Line ids: ``[0, n_pfn)`` folio refcounts (and page_pool ``pp_ref_count``) by
head pfn; ``[pc_base, +n_pfn)`` large folios' ``_pincount``; ``[o_base, +n_buf)``
owners (a devmem binding, a per-send buffer owner; under the shared binding the
holder's pins); ``[u_base, +n_uarg)`` ubuf_infos (the per-send owner in the
owner designs); ``bind_line`` the shared binding; ``[x_base, +5)`` the sending
user's and socket's counters (:data:`X_LINES`, the twin's ``USER`` and ``SOCK``
lines); ``[c_base, +n_cpu)`` each CPU's skb defer list; ``[d_base, +n_slot)``
``dataref``.
"""

from __future__ import annotations

import inspect

import numpy as np
from numba import njit, types

from ..jit import CACHE

from . import ledger as L
from . import policies as PO
from . import trace as T
from .ledger import Ledger
from .policies import Policy

PAGE = T.PAGE_SIZE
PAGE_SHIFT = 12  # x >> PAGE_SHIFT equals x // PAGE for every int, and is cheaper
assert 1 << PAGE_SHIFT == PAGE
# Compiled code indexes arrays through ix(): numba wraps a negative signed index (a compare and an add on
# every access, on the path to the load) but not an unsigned one, and no id here is ever negative.
ix = np.uint64

# Ledger slots as compile-time constants.
_LED = {name: i for i, name in enumerate(L.SCALARS)}
EVENTS, ATOMICS, REF_ATOMICS = _LED["events"], _LED["atomics"], _LED["ref_atomics"]
PAGE_ATOMICS, PP_ATOMICS, OWNER_ATOMICS, PIN_ATOMICS = (_LED["page_atomics"], _LED["pp_atomics"],
                                                        _LED["owner_atomics"], _LED["pin_atomics"])
UARG_ATOMICS, DATAREF_ATOMICS, PP_READS = _LED["uarg_atomics"], _LED["dataref_atomics"], _LED["pp_reads"]
REFS_TAKEN, REFS_DROPPED, LINES, BOUNCES, PAGES_PEAK = (_LED["refs_taken"], _LED["refs_dropped"], _LED["lines"],
                                                        _LED["bounces"], _LED["pages_peak"])
CMPXCHG_BOUNCES = _LED["cmpxchg_bounces"]
UAF_PAGES, UAF_FREES, EARLY_COMPLETE, BAD_REFS, LEAKED_REFS = (_LED["uaf_pages"], _LED["uaf_frees"],
                                                               _LED["early_complete"], _LED["bad_refs"],
                                                               _LED["leaked_refs"])
LEAKED_PAGES, LEAKED_SKBS, TRACE_ERRORS, COMPLETIONS = (_LED["leaked_pages"], _LED["leaked_skbs"],
                                                         _LED["trace_errors"], _LED["completions"])
FLAG_ATOMICS, CMPXCHG_ATOMICS, NOTIF_ATOMICS, DEFER_ATOMICS = (_LED["flag_atomics"], _LED["cmpxchg_atomics"],
                                                               _LED["notif_atomics"], _LED["defer_atomics"])
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
UARG_ACCOUNT, UARG_DEVMEM, UARG_FLAGS = T.UARG_ACCOUNT, T.UARG_DEVMEM, T.UARG_FLAGS
FREE_DEFERRED, FREE_FLUSH, FREE_FULL, FREE_FLAGS = T.FREE_DEFERRED, T.FREE_FLUSH, T.FREE_FULL, T.FREE_FLAGS
# The fixed lines after the shared binding, as the twin names them (engine_twin.USER, .SOCK).
X_LINES = (("user", 0), ("user", 1), ("sock", 0), ("sock", 1), ("sock", 2))
X_USER_COUNT, X_USER_LOCKED_VM, X_SOCK_REF, X_SOCK_OMEM, X_SOCK_ZCKEY = range(5)

# Policy modes by name (policies.py is the definition).
PAGE_NONE, PAGE_FIRST, PAGE_ALL = 0, 1, 2
OWNER_NONE, OWNER_FRAG, OWNER_SHINFO, OWNER_SKB, OWNER_BINDING = 0, 1, 2, 3, 4
assert (PAGE_NONE, PAGE_FIRST, PAGE_ALL) == (PO.PAGE_NONE, PO.PAGE_FIRST, PO.PAGE_ALL)
assert (OWNER_NONE, OWNER_FRAG, OWNER_SHINFO, OWNER_SKB, OWNER_BINDING) == (
    PO.OWNER_NONE, PO.OWNER_FRAG, PO.OWNER_SHINFO, PO.OWNER_SKB, PO.OWNER_BINDING)

# The state: one 2-D int64 array per id space, one row per field; (group, size, rows) in order.
# Helpers take the groups in the order of GROUPS (SK only lives in the loop) plus MISC.
STATE = (
    ("PG", "n_pfn", ("ALIVE", "HEAD", "PBUF", "PTRS", "PINNED", "PIPE")),  # pages (PIPE: a pipe buffer holds it)
    ("BF", "n_buf", ("B_EXISTS", "B_PFN", "B_PAGES", "B_FP", "B_KIND", "B_HOLDER", "B_BIAS", "B_ALIVE", "B_PIPE")),
    ("UA", "n_uarg", ("U_ACTIVE", "U_PTRS", "U_ACCT")),  # ubuf_infos (U_ACCT: its pages accounted to the user)
    ("SK", "n_skb", ("S_ALIVE", "S_SH", "S_CLONED")),  # skbs
    ("SH", "n_slot", ("SH_DATAREF", "SH_N", "SH_UARG", "FREE_STACK", "IN_USE")),  # shared infos
    ("FR", "n_frag", ("F_PFN", "F_OFF", "F_LEN", "F_BUF", "F_UARG")),  # frags: slot * max_frags + i
    # refcount lines, the per-event accumulator and each line's pin list
    ("LN", "n_lines", ("COUNT", "LAST_CPU", "WRITTEN", "ACC", "MARK", "TOUCHED", "PIN_FIRST", "PIN_LAST")),
    ("PR", "n_pins", ("PR_HEAD", "PR_LO", "PR_N", "PR_NEXT")),  # pin records: folio head, first page, pages, next
)
ALIVE, HEAD, PBUF, PTRS, PINNED, PIPE = range(6)
B_EXISTS, B_PFN, B_PAGES, B_FP, B_KIND, B_HOLDER, B_BIAS, B_ALIVE, B_PIPE = range(9)
U_ACTIVE, U_PTRS, U_ACCT = range(3)
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

# How the event handlers compile (see the loop).
_HANDLER = dict(cache=CACHE, inline="always", _nrt=False, error_model="numpy")

# The helpers the loop calls rather than inlines are compiled once, for these types: without a signature numba
# compiles one more copy for each constant a call passes (an op, a sign), and dies() alone was four.
_A1, _I = types.int64[::1], types.int64
_STATE_ARGS = (types.int64[:, ::1],) * 7 + (_A1,)  # PG, BF, UA, SH, FR, LN, PR, then MISC
_ONCE = dict(cache=CACHE, _nrt=False, error_model="numpy")

# The parameter vector Q: the policy, the id-space sizes and the line bases.
(Q_PAGE_MODE, Q_OWNER_MODE, Q_UARG, Q_BATCH, Q_N_PFN, Q_N_BUF, Q_N_UARG, Q_N_SKB, Q_MAX_FRAGS,
 Q_PC_BASE, Q_O_BASE, Q_U_BASE, Q_BIND, Q_D_BASE, Q_X_BASE, Q_C_BASE, Q_N_CPU) = range(17)


# ---------------------------------------------------------------- lines and atomics
@njit(cache=CACHE, inline="always", _nrt=False, error_model="numpy")
def atomic(PG, BF, UA, SH, FR, LN, PR, MISC, line, cpu, cat, op, led):
    """One atomic read-modify-write on ``line`` by ``cpu``, counted under ledger slot ``cat``."""
    led[ATOMICS] += 1
    led[ix(cat)] += 1
    if PAGE_ATOMICS <= cat <= PIN_ATOMICS:
        led[REF_ATOMICS] += 1
        led[ix(BY_OP + op)] += 1
    written = LN[WRITTEN]
    last = LN[LAST_CPU]
    if written[ix(line)] == 0:
        written[ix(line)] = 1
        led[LINES] += 1
    if last[ix(line)] >= 0 and last[ix(line)] != cpu:
        led[BOUNCES] += 1
        if cat == CMPXCHG_ATOMICS:
            led[CMPXCHG_BOUNCES] += 1
    last[ix(line)] = cpu


@njit(cache=CACHE, inline="always", _nrt=False, error_model="numpy")
def is_pool(PG, BF, UA, SH, FR, LN, PR, MISC, Q, line):
    return line < Q[Q_N_PFN] and BF[B_KIND, ix(PG[PBUF, ix(line)])] >= MEM_POOL_PAGE and \
        BF[B_KIND, ix(PG[PBUF, ix(line)])] <= MEM_POOL_FRAG


@njit(cache=CACHE, inline="always", _nrt=False, error_model="numpy")
def line_kind(PG, BF, UA, SH, FR, LN, PR, MISC, Q, line):
    """The ledger slot an atomic on ``line`` counts under (Replay.line_kind)."""
    if line < Q[Q_N_PFN]:
        return PP_ATOMICS if is_pool(PG, BF, UA, SH, FR, LN, PR, MISC, Q, line) else PAGE_ATOMICS
    if line < Q[Q_O_BASE]:
        return PIN_ATOMICS
    if line >= Q[Q_U_BASE] and line < Q[Q_BIND]:
        return UARG_ATOMICS if Q[Q_UARG] else OWNER_ATOMICS
    if line >= Q[Q_D_BASE]:
        return DATAREF_ATOMICS
    return OWNER_ATOMICS


@njit(cache=CACHE, inline="always", _nrt=False, error_model="numpy")
def push(PG, BF, UA, SH, FR, LN, PR, MISC, line, units):
    """Accumulate ``units`` on ``line`` for this event (first touch order is kept)."""
    mark = LN[MARK]
    misc = MISC
    if mark[ix(line)] == 0:
        mark[ix(line)] = 1
        LN[TOUCHED, ix(misc[M_NT])] = line
        misc[M_NT] += 1
    LN[ACC, ix(line)] += units


# ---------------------------------------------------------------- memory
@njit(cache=CACHE, inline="always", _nrt=False, error_model="numpy")
def free_page(PG, BF, UA, SH, FR, LN, PR, MISC, q, led):
    """Free page ``q`` if allocated; True if a live frag still covers it."""
    if PG[ALIVE, ix(q)] == 0:
        return False
    PG[ALIVE, ix(q)] = 0
    MISC[M_PAGES_ALIVE] -= 1
    BF[B_ALIVE, ix(PG[PBUF, ix(q)])] -= 1
    if PG[PTRS, ix(q)] > 0:
        led[UAF_PAGES] += 1
        return True
    return False


@njit(cache=CACHE, inline="always", _nrt=False, error_model="numpy")
def free_range(PG, BF, UA, SH, FR, LN, PR, MISC, lo, hi, unpinned_only, led):
    """Free pages [lo, hi) (only those no pin holds, if asked): one free action."""
    hit = False
    for q in range(lo, hi):
        if unpinned_only and PG[PINNED, ix(q)] > 0:
            continue
        if free_page(PG, BF, UA, SH, FR, LN, PR, MISC, q, led):
            hit = True
    if hit:
        led[UAF_FREES] += 1


@njit(cache=CACHE, inline="always", _nrt=False, error_model="numpy")
def held(PG, BF, UA, SH, FR, LN, PR, MISC, Q, b):
    """Whether anything but pins keeps user buffer ``b`` (Replay.held)."""
    if Q[Q_OWNER_MODE] == OWNER_BINDING:
        return BF[B_HOLDER, ix(b)] == 1
    return LN[COUNT, ix(Q[Q_O_BASE] + b)] > 0


@njit((*_STATE_ARGS, _A1, _I, _I, _I, _A1), **_ONCE)
def unpin(PG, BF, UA, SH, FR, LN, PR, MISC, Q, owner, cpu, op, led):
    """unpin_user_pages() over ``owner``'s pins: one release per run of one folio."""
    pr_next = PR[PR_NEXT]
    r = LN[PIN_FIRST, ix(owner)]
    prev = -1
    hit = False
    while r >= 0:
        h = PR[PR_HEAD, ix(r)]
        if h != prev:
            atomic(PG, BF, UA, SH, FR, LN, PR, MISC, h, cpu, PIN_ATOMICS, op, led)
            if BF[B_FP, ix(PG[PBUF, ix(h)])] > 1:
                atomic(PG, BF, UA, SH, FR, LN, PR, MISC, Q[Q_PC_BASE] + h, cpu, PIN_ATOMICS, op, led)
        prev = h
        for q in range(PR[PR_LO, ix(r)], PR[PR_LO, ix(r)] + PR[PR_N, ix(r)]):
            PG[PINNED, ix(q)] -= 1
            if (PG[PINNED, ix(q)] == 0 and PG[ALIVE, ix(q)] == 1
                    and not held(PG, BF, UA, SH, FR, LN, PR, MISC, Q, PG[PBUF, ix(q)])):
                if free_page(PG, BF, UA, SH, FR, LN, PR, MISC, q, led):
                    hit = True
        nxt = pr_next[ix(r)]
        pr_next[ix(r)] = MISC[M_PIN_FREE]  # back on the record freelist
        MISC[M_PIN_FREE] = r
        r = nxt
    LN[PIN_FIRST, ix(owner)] = -1
    LN[PIN_LAST, ix(owner)] = -1
    if hit:
        led[UAF_FREES] += 1


@njit(cache=CACHE, inline="always", _nrt=False, error_model="numpy")
def pin_record(PG, BF, UA, SH, FR, LN, PR, MISC, owner, h, lo, n):
    misc = MISC
    if misc[M_PIN_FREE] >= 0:
        r = misc[M_PIN_FREE]
        misc[M_PIN_FREE] = PR[PR_NEXT, ix(r)]
    else:
        r = misc[M_PIN_NEXT]
        misc[M_PIN_NEXT] += 1
    PR[PR_HEAD, ix(r)] = h
    PR[PR_LO, ix(r)] = lo
    PR[PR_N, ix(r)] = n
    PR[PR_NEXT, ix(r)] = -1
    if LN[PIN_LAST, ix(owner)] >= 0:
        PR[PR_NEXT, ix(LN[PIN_LAST, ix(owner)])] = r
    else:
        LN[PIN_FIRST, ix(owner)] = r
    LN[PIN_LAST, ix(owner)] = r


@njit((*_STATE_ARGS, _A1, _I, _I, _I, _I, _I, _I, _I, _A1), **_ONCE)
def pin(PG, BF, UA, SH, FR, LN, PR, MISC, Q, pfn, off, ln, buf, uarg, cpu, op, led):
    """pin_user_pages() on a frag's pages (Replay.pin)."""
    head = PG[HEAD]
    fp = BF[B_FP, ix(buf)]
    if uarg >= 0:
        owner = Q[Q_U_BASE] + uarg
    else:
        owner = Q[Q_O_BASE] + buf
    q = pfn + (off >> PAGE_SHIFT)
    q1 = pfn + ((off + ln - 1) >> PAGE_SHIFT)
    while q <= q1:
        h = head[ix(q)]
        lo = q
        while q <= q1 and head[ix(q)] == h:
            q += 1
        n = q - lo
        calls = 1 if fp >= PMD_PAGES else n
        for _ in range(calls):  # try_get_folio(), the bias (small folio) or _pincount (large), PG_referenced
            atomic(PG, BF, UA, SH, FR, LN, PR, MISC, h, cpu, PIN_ATOMICS, op, led)
            atomic(PG, BF, UA, SH, FR, LN, PR, MISC, Q[Q_PC_BASE] + h if fp > 1 else h, cpu, PIN_ATOMICS, op, led)
            atomic(PG, BF, UA, SH, FR, LN, PR, MISC, h, cpu, FLAG_ATOMICS, op, led)
        for p in range(lo, q):
            PG[PINNED, ix(p)] += 1
        pin_record(PG, BF, UA, SH, FR, LN, PR, MISC, owner, h, lo, n)


@njit(cache=CACHE, inline="always", _nrt=False, error_model="numpy")
def notify(PG, BF, UA, SH, FR, LN, PR, MISC, Q, u, cpu, op, led):
    """__msg_zerocopy_callback(): the accounting back, the notification queued and its skb freed, the socket
    dropped (Replay.notify)."""
    x = Q[Q_X_BASE]
    if UA[U_ACCT, ix(u)] == 1:  # mm_unaccount_pinned_pages(): atomic_long_sub(), free_uid()
        UA[U_ACCT, ix(u)] = 0
        atomic(PG, BF, UA, SH, FR, LN, PR, MISC, x + X_USER_LOCKED_VM, cpu, NOTIF_ATOMICS, op, led)
        atomic(PG, BF, UA, SH, FR, LN, PR, MISC, x + X_USER_COUNT, cpu, CMPXCHG_ATOMICS, op, led)
    atomic(PG, BF, UA, SH, FR, LN, PR, MISC, x + X_SOCK_REF, cpu, NOTIF_ATOMICS, op, led)  # the error queue's lock
    atomic(PG, BF, UA, SH, FR, LN, PR, MISC, x + X_SOCK_OMEM, cpu, NOTIF_ATOMICS, op, led)  # sock_ofree()
    atomic(PG, BF, UA, SH, FR, LN, PR, MISC, x + X_SOCK_REF, cpu, NOTIF_ATOMICS, op, led)  # sock_put()


@njit((*_STATE_ARGS, _A1, _I, _I, _I, _A1), **_ONCE)
def dies(PG, BF, UA, SH, FR, LN, PR, MISC, Q, line, cpu, op, led):
    """The last reference on ``line`` is gone (Replay.dies)."""
    if line < Q[Q_N_PFN]:
        b = PG[PBUF, ix(line)]
        end = min(line + BF[B_FP, ix(b)], BF[B_PFN, ix(b)] + BF[B_PAGES, ix(b)])
        free_range(PG, BF, UA, SH, FR, LN, PR, MISC, line, end, False, led)
    elif line >= Q[Q_O_BASE] and line < Q[Q_U_BASE]:
        b = line - Q[Q_O_BASE]
        if BF[B_KIND, ix(b)] == MEM_PIPE:  # the pipe's pages go back, one put per page
            fp = BF[B_FP, ix(b)]
            for q in range(BF[B_PFN, ix(b)], BF[B_PFN, ix(b)] + BF[B_PAGES, ix(b)]):
                h = BF[B_PFN, ix(b)] + (q - BF[B_PFN, ix(b)]) // fp * fp
                atomic(PG, BF, UA, SH, FR, LN, PR, MISC, h, cpu, PAGE_ATOMICS, op, led)
        elif BF[B_KIND, ix(b)] == MEM_PAGES:  # the destructor puts the sender's folios
            for h in range(BF[B_PFN, ix(b)], BF[B_PFN, ix(b)] + BF[B_PAGES, ix(b)], BF[B_FP, ix(b)]):
                atomic(PG, BF, UA, SH, FR, LN, PR, MISC, h, cpu, PAGE_ATOMICS, op, led)
        unpin(PG, BF, UA, SH, FR, LN, PR, MISC, Q, line, cpu, op, led)
        free_range(PG, BF, UA, SH, FR, LN, PR, MISC, BF[B_PFN, ix(b)], BF[B_PFN, ix(b)] + BF[B_PAGES, ix(b)], True, led)
    elif line >= Q[Q_U_BASE] and line < Q[Q_BIND]:
        led[COMPLETIONS] += 1
        UA[U_ACTIVE, ix(line - Q[Q_U_BASE])] = 0
        unpin(PG, BF, UA, SH, FR, LN, PR, MISC, Q, line, cpu, op, led)
        notify(PG, BF, UA, SH, FR, LN, PR, MISC, Q, line - Q[Q_U_BASE], cpu, op, led)


@njit(cache=CACHE, inline="always", _nrt=False, error_model="numpy")
def change(PG, BF, UA, SH, FR, LN, PR, MISC, Q, line, units, cpu, op, silent, led):
    """Add ``units`` to the refcount on ``line`` (Replay.change)."""
    count = LN[COUNT]
    cat = line_kind(PG, BF, UA, SH, FR, LN, PR, MISC, Q, line)
    cur = count[ix(line)]
    counted = cat != UARG_ATOMICS
    batch = Q[Q_BATCH] == 1
    if units > 0:
        if not silent:
            n = 1 if batch else units
            for _ in range(n):
                atomic(PG, BF, UA, SH, FR, LN, PR, MISC, line, cpu, cat, op, led)
        if line < Q[Q_N_PFN]:
            alive = PG[ALIVE, ix(line)] == 1
        elif line >= Q[Q_U_BASE] and line < Q[Q_BIND]:
            alive = UA[U_ACTIVE, ix(line - Q[Q_U_BASE])] == 1
        elif line >= Q[Q_O_BASE] and line < Q[Q_U_BASE]:
            alive = cur > 0
        else:
            alive = True
        if not alive:
            led[BAD_REFS] += 1
        count[ix(line)] = cur + units
        if counted:
            led[REFS_TAKEN] += units
        return
    k = -units
    if silent:
        pass
    elif cat == PP_ATOMICS:  # a pool page (line_kind looked): page_pool_unref_netmem(nr) reads if nr is all left
        if batch:
            if cur == k:
                led[PP_READS] += 1
            else:
                atomic(PG, BF, UA, SH, FR, LN, PR, MISC, line, cpu, cat, op, led)
        else:
            left = cur
            for _ in range(k):
                if left == 1:
                    led[PP_READS] += 1
                else:
                    atomic(PG, BF, UA, SH, FR, LN, PR, MISC, line, cpu, cat, op, led)
                left -= 1
    else:
        n = 1 if batch else k
        for _ in range(n):
            atomic(PG, BF, UA, SH, FR, LN, PR, MISC, line, cpu, cat, op, led)
    if counted:
        led[REFS_DROPPED] += k
    if cur < k:
        led[BAD_REFS] += 1
        count[ix(line)] = 0
        return
    count[ix(line)] = cur - k
    if cur - k == 0 and cur > 0:
        dies(PG, BF, UA, SH, FR, LN, PR, MISC, Q, line, cpu, op, led)


# ---------------------------------------------------------------- frags and their references
@njit(cache=CACHE, inline="always", _nrt=False, error_model="numpy")
def frag_line(PG, BF, UA, SH, FR, LN, PR, MISC, Q, pfn, buf, uarg):
    """The one line a frag's reference is counted on, unless it is PAGE_ALL (Replay.frag_lines)."""
    if Q[Q_OWNER_MODE] == OWNER_BINDING:
        return Q[Q_BIND]
    kind = BF[B_KIND, ix(buf)]
    if kind == MEM_POOL_PAGE or kind == MEM_POOL_FRAG or kind == MEM_PAGE_FRAG:
        return PG[HEAD, ix(pfn)]
    if Q[Q_PAGE_MODE] != PAGE_NONE:
        if kind == MEM_DEVMEM:
            return Q[Q_O_BASE] + buf
        return PG[HEAD, ix(pfn)]
    if uarg >= 0:
        return Q[Q_U_BASE] + uarg
    return Q[Q_O_BASE] + buf


@njit(cache=CACHE, inline="always", _nrt=False, error_model="numpy")
def refset(PG, BF, UA, SH, FR, LN, PR, MISC, Q, pfn, off, ln, buf, uarg, sign):
    """Push what one frag holds by itself (Replay.refset)."""
    om = Q[Q_OWNER_MODE]
    if om == OWNER_SHINFO or om == OWNER_SKB:
        return
    kind = BF[B_KIND, ix(buf)]
    if (Q[Q_PAGE_MODE] == PAGE_ALL and kind != MEM_DEVMEM and kind != MEM_POOL_PAGE and kind != MEM_POOL_FRAG
            and kind != MEM_PAGE_FRAG):
        head = PG[HEAD]
        prev = -1
        for q in range(pfn + (off >> PAGE_SHIFT), pfn + ((off + ln - 1) >> PAGE_SHIFT) + 1):
            if head[ix(q)] != prev:
                push(PG, BF, UA, SH, FR, LN, PR, MISC, head[ix(q)], sign)
                prev = head[ix(q)]
        return
    push(PG, BF, UA, SH, FR, LN, PR, MISC, frag_line(PG, BF, UA, SH, FR, LN, PR, MISC, Q, pfn, buf, uarg), sign)


@njit((*_STATE_ARGS, _A1, _I, _I), **_ONCE)
def owner_terms(PG, BF, UA, SH, FR, LN, PR, MISC, Q, slot, sign):
    """Per-shared-info owners: one reference per distinct line among the slot's frags."""
    om = Q[Q_OWNER_MODE]
    if om != OWNER_SHINFO and om != OWNER_SKB:
        return
    mf = Q[Q_MAX_FRAGS]
    base = slot * mf
    n = SH[SH_N, ix(slot)]
    for i in range(n):
        k = ix(base + i)
        li = frag_line(PG, BF, UA, SH, FR, LN, PR, MISC, Q, FR[F_PFN, k], FR[F_BUF, k], FR[F_UARG, k])
        seen = False
        for j in range(i):
            kj = ix(base + j)
            if frag_line(PG, BF, UA, SH, FR, LN, PR, MISC, Q, FR[F_PFN, kj], FR[F_BUF, kj], FR[F_UARG, kj]) == li:
                seen = True
                break
        if not seen:
            push(PG, BF, UA, SH, FR, LN, PR, MISC, li, sign)


@njit(cache=CACHE, inline="always", _nrt=False, error_model="numpy")
def point(PG, BF, UA, SH, FR, LN, PR, MISC, pfn, off, ln, uarg, sign):
    """A frag starts (+1) or stops (-1) covering its pages."""
    ptrs = PG[PTRS]
    for q in range(pfn + (off >> PAGE_SHIFT), pfn + ((off + ln - 1) >> PAGE_SHIFT) + 1):
        ptrs[ix(q)] += sign
    if uarg >= 0:
        UA[U_PTRS, ix(uarg)] += sign


@njit(cache=CACHE, inline="always", _nrt=False, error_model="numpy")
def set_frag(PG, BF, UA, SH, FR, LN, PR, MISC, Q, slot, i, pfn, off, ln, buf, uarg):
    k = slot * Q[Q_MAX_FRAGS] + i
    FR[F_PFN, ix(k)] = pfn
    FR[F_OFF, ix(k)] = off
    FR[F_LEN, ix(k)] = ln
    FR[F_BUF, ix(k)] = buf
    FR[F_UARG, ix(k)] = uarg


# inlined: a call passes every state array field by field (some 700 bytes of arguments), and ATTACH is hot
@njit(cache=CACHE, inline="always", _nrt=False, error_model="numpy")
def gup(PG, BF, UA, SH, FR, LN, PR, MISC, Q, pfn, off, ln, buf, cpu, op, led):
    """One GUP call's pages: a ref and PG_referenced per PTE-mapped page (per PMD leaf), the merged surplus back
    in one page_ref_sub() (Replay.gup)."""
    head = PG[HEAD]
    fp = BF[B_FP, ix(buf)]
    held_line = head[ix(pfn)]  # PAGE_FIRST holds the folio of the page the frag names; PAGE_ALL every folio
    all_ = Q[Q_PAGE_MODE] == PAGE_ALL
    q = pfn + (off >> PAGE_SHIFT)
    q1 = pfn + ((off + ln - 1) >> PAGE_SHIFT)
    while q <= q1:
        h = head[ix(q)]
        lo = q
        while q <= q1 and head[ix(q)] == h:
            q += 1
        n = q - lo
        held = 1 if (all_ or h == held_line) else 0
        gets = 1 if fp >= PMD_PAGES else n
        give_back = 1 if n > held else 0
        for _ in range(gets + give_back - held):
            atomic(PG, BF, UA, SH, FR, LN, PR, MISC, h, cpu, PAGE_ATOMICS, op, led)
        for _ in range(gets):  # folio_set_referenced(), every time
            atomic(PG, BF, UA, SH, FR, LN, PR, MISC, h, cpu, FLAG_ATOMICS, op, led)


@njit(cache=CACHE, inline="always", _nrt=False, error_model="numpy")
def new_shinfo(PG, BF, UA, SH, FR, LN, PR, MISC, cpu, d_base):
    """A fresh shared info: the most recently freed slot, else a new one (LIFO, like a slab)."""
    misc = MISC
    if misc[M_NFREE] > 0:
        misc[M_NFREE] -= 1
        slot = SH[FREE_STACK, ix(misc[M_NFREE])]
    else:
        slot = misc[M_NEXT_SLOT]
        misc[M_NEXT_SLOT] += 1
    SH[SH_DATAREF, ix(slot)] = 1
    SH[SH_N, ix(slot)] = 0
    SH[SH_UARG, ix(slot)] = -1
    LN[LAST_CPU, ix(d_base + slot)] = cpu
    return slot


@njit(cache=CACHE, inline="always", _nrt=False, error_model="numpy")
def inherit_uarg(PG, BF, UA, SH, FR, LN, PR, MISC, Q, src, dst):
    """A shared info made from a zerocopy one points at the same ubuf_info (skb_zerocopy_clone())."""
    u = SH[SH_UARG, ix(src)]
    if u >= 0:
        SH[SH_UARG, ix(dst)] = u
        if Q[Q_UARG]:
            push(PG, BF, UA, SH, FR, LN, PR, MISC, Q[Q_U_BASE] + u, 1)


@njit(cache=CACHE, inline="always", _nrt=False, error_model="numpy")
def total(PG, BF, UA, SH, FR, LN, PR, MISC, Q, slot):
    t = 0
    base = slot * Q[Q_MAX_FRAGS]
    for i in range(SH[SH_N, ix(slot)]):
        t += FR[F_LEN, ix(base + i)]
    return t


@njit(cache=CACHE, inline="always", _nrt=False, error_model="numpy")
def holds(PG, BF, UA, SH, FR, LN, PR, MISC, Q, slot, ln):
    """Whether the slot's frags hold at least ``ln`` bytes (``ln <= total()``, reading only as far as needed)."""
    t = 0
    base = slot * Q[Q_MAX_FRAGS]
    for i in range(SH[SH_N, ix(slot)]):
        t += FR[F_LEN, ix(base + i)]
        if t >= ln:
            return True
    return t >= ln


@njit(cache=CACHE, inline="always", _nrt=False, error_model="numpy")
def frag_ok(PG, BF, UA, SH, FR, LN, PR, MISC, Q, pfn, off, ln, buf):
    if buf < 0 or buf >= Q[Q_N_BUF] or BF[B_EXISTS, ix(buf)] == 0 or ln <= 0 or off < 0 or pfn < BF[B_PFN, ix(buf)]:
        return False
    q0 = pfn + (off >> PAGE_SHIFT)
    q1 = pfn + ((off + ln - 1) >> PAGE_SHIFT)
    if q1 >= BF[B_PFN, ix(buf)] + BF[B_PAGES, ix(buf)]:
        return False
    for q in range(q0, q1 + 1):
        if PG[ALIVE, ix(q)] == 0:
            return False
    return True


@njit(cache=CACHE, inline="always", _nrt=False, error_model="numpy")
def per_shinfo(Q):
    """Whether the policy counts owners per shared info (owner_terms() has work to do)."""
    return Q[Q_OWNER_MODE] == OWNER_SHINFO or Q[Q_OWNER_MODE] == OWNER_SKB


@njit(cache=CACHE, inline="always", _nrt=False, error_model="numpy")
def dataref(PG, BF, UA, SH, FR, LN, PR, MISC, Q, slot, units, cpu, op, led):
    """One atomic on the shared info's dataref (Replay.dataref)."""
    SH[SH_DATAREF, ix(slot)] += units
    atomic(PG, BF, UA, SH, FR, LN, PR, MISC, Q[Q_D_BASE] + slot, cpu, DATAREF_ATOMICS, op, led)


@njit(cache=CACHE, inline="always", _nrt=False, error_model="numpy")
def release_shinfo(PG, BF, UA, SH, FR, LN, PR, MISC, Q, slot):
    """dataref reached zero: drop every frag's references (skb_release_data, Replay.release_shinfo)."""
    base = slot * Q[Q_MAX_FRAGS]
    for i in range(SH[SH_N, ix(slot)]):
        k = ix(base + i)
        fp_, fo, fl, fb, fu = FR[F_PFN, k], FR[F_OFF, k], FR[F_LEN, k], FR[F_BUF, k], FR[F_UARG, k]
        point(PG, BF, UA, SH, FR, LN, PR, MISC, fp_, fo, fl, fu, -1)
        refset(PG, BF, UA, SH, FR, LN, PR, MISC, Q, fp_, fo, fl, fb, fu, -1)
    if per_shinfo(Q):
        owner_terms(PG, BF, UA, SH, FR, LN, PR, MISC, Q, slot, -1)
    if SH[SH_UARG, ix(slot)] >= 0 and Q[Q_UARG] == 1:
        push(PG, BF, UA, SH, FR, LN, PR, MISC, Q[Q_U_BASE] + SH[SH_UARG, ix(slot)], -1)
    SH[SH_N, ix(slot)] = 0
    SH[SH_DATAREF, ix(slot)] = 0
    SH[FREE_STACK, ix(MISC[M_NFREE])] = slot
    MISC[M_NFREE] += 1


@njit((*_STATE_ARGS, _A1, _I, _I, _I, _A1), **_ONCE)
def frag_free(PG, BF, UA, SH, FR, LN, PR, MISC, Q, buf, n, cpu, led):
    """``n`` users page_frag_free() their fragments: each came out of the cache's pagecnt_bias (no atomic)
    and is one put now (the binding keeps no page counts, only the put is paid) (Replay.frag_free)."""
    for _ in range(n):
        if Q[Q_OWNER_MODE] == OWNER_BINDING:
            atomic(PG, BF, UA, SH, FR, LN, PR, MISC, BF[B_PFN, ix(buf)], cpu, PAGE_ATOMICS, BUF_RELEASE, led)
        else:
            if BF[B_BIAS, ix(buf)] > 0:
                BF[B_BIAS, ix(buf)] -= 1
            change(PG, BF, UA, SH, FR, LN, PR, MISC, Q, BF[B_PFN, ix(buf)], -1, cpu, BUF_RELEASE, False, led)
    return True


# ---------------------------------------------------------------- the events
# One handler per trace op, named after it, as engine_twin.Replay has one method per op: each checks its
# event against the state (False: invalid, nothing changed) and pushes the reference changes it makes.
# ``S`` is the state as one tuple, in the order the loop's arguments name it (see _replay).
@njit(**_HANDLER)
def alloc(S, cpu, buf, pfn, pages, fp, kind):
    """A buffer appears: its pages, and what holds them under the policy (Replay.alloc)."""
    Q, PG, BF, UA, SK, SH, FR, LN, PR, MISC, led = S
    if (pages <= 0 or fp <= 0 or pfn < 0 or pfn + pages > Q[Q_N_PFN] or buf < 0 or buf >= Q[Q_N_BUF]
            or kind >= N_KINDS
            or ((kind == MEM_POOL_PAGE or kind == MEM_POOL_FRAG or kind == MEM_PAGE_FRAG) and pages != fp)):
        return False
    if BF[B_EXISTS, ix(buf)] == 1 and (BF[B_HOLDER, ix(buf)] == 1 or BF[B_ALIVE, ix(buf)] > 0):
        return False
    alive, head, pbuf = PG[ALIVE], PG[HEAD], PG[PBUF]
    for q in range(pfn, pfn + pages):
        if alive[ix(q)] == 1:
            return False
    BF[B_EXISTS, ix(buf)] = 1
    BF[B_PFN, ix(buf)] = pfn
    BF[B_PAGES, ix(buf)] = pages
    BF[B_FP, ix(buf)] = fp
    BF[B_KIND, ix(buf)] = kind
    BF[B_HOLDER, ix(buf)] = 1
    BF[B_BIAS, ix(buf)] = 0
    BF[B_ALIVE, ix(buf)] = pages
    is_pipe = 1 if kind == MEM_PIPE else 0
    BF[B_PIPE, ix(buf)] = pages * is_pipe
    for q in range(pfn, pfn + pages):
        alive[ix(q)] = 1
        head[ix(q)] = pfn + (q - pfn) // fp * fp
        pbuf[ix(q)] = buf
        PG[PIPE, ix(q)] = is_pipe
    MISC[M_PAGES_ALIVE] += pages
    if MISC[M_PAGES_ALIVE] > led[PAGES_PEAK]:
        led[PAGES_PEAK] = MISC[M_PAGES_ALIVE]
    count, last_cpu = LN[COUNT], LN[LAST_CPU]
    o_base = Q[Q_O_BASE]
    count[ix(o_base + buf)] = 0
    if Q[Q_OWNER_MODE] == OWNER_BINDING:
        pass  # memory lives until its holder lets go
    elif kind == MEM_POOL_PAGE or kind == MEM_POOL_FRAG:  # page_pool_fragment_netmem()
        BF[B_BIAS, ix(buf)] = 1 if kind == MEM_POOL_PAGE else POOL_BIAS
        count[ix(pfn)] = BF[B_BIAS, ix(buf)]
        last_cpu[ix(pfn)] = cpu
    elif kind == MEM_PAGE_FRAG:  # the cache holds pagecnt_bias
        BF[B_BIAS, ix(buf)] = FRAG_BIAS
        count[ix(pfn)] = FRAG_BIAS
        last_cpu[ix(pfn)] = cpu
    elif kind == MEM_DEVMEM or Q[Q_PAGE_MODE] == PAGE_NONE:
        count[ix(o_base + buf)] = 1
        last_cpu[ix(o_base + buf)] = cpu
    elif kind == MEM_SLAB:
        pass  # no refcount: it lives until kfree()
    else:  # the mapping's ref per folio, the allocator's per folio; the pipe's per page
        for h in range(pfn, pfn + pages, fp):
            count[ix(h)] = min(fp, pfn + pages - h) if kind == MEM_PIPE else 1
            last_cpu[ix(h)] = cpu
    return True


@njit(**_HANDLER)
def skb_alloc(S, cpu, skb):
    """A new skb with a shared info of its own (Replay.skb_alloc)."""
    Q, PG, BF, UA, SK, SH, FR, LN, PR, MISC, led = S
    if skb < 0 or skb >= Q[Q_N_SKB] or SK[S_ALIVE, ix(skb)] == 1:
        return False
    SK[S_ALIVE, ix(skb)] = 1
    SK[S_SH, ix(skb)] = new_shinfo(PG, BF, UA, SH, FR, LN, PR, MISC, cpu, Q[Q_D_BASE])
    SK[S_CLONED, ix(skb)] = 0
    return True


@njit(**_HANDLER)
def attach(S, cpu, skb, buf, pfn, off, ln, u):
    """skb_fill_page_desc() and the frag's reference (Replay.attach)."""
    Q, PG, BF, UA, SK, SH, FR, LN, PR, MISC, led = S
    if (skb < 0 or skb >= Q[Q_N_SKB] or SK[S_ALIVE, ix(skb)] == 0
            or not frag_ok(PG, BF, UA, SH, FR, LN, PR, MISC, Q, pfn, off, ln, buf)):
        return False
    slot = SK[S_SH, ix(skb)]
    page_design = Q[Q_PAGE_MODE] != PAGE_NONE
    if SH[SH_DATAREF, ix(slot)] != 1 or SH[SH_N, ix(slot)] >= Q[Q_MAX_FRAGS]:
        return False
    if u >= 0 and (u >= Q[Q_N_UARG] or UA[U_ACTIVE, ix(u)] == 0):
        return False
    if u >= 0 and SH[SH_UARG, ix(slot)] >= 0 and SH[SH_UARG, ix(slot)] != u:
        return False  # an skb points at one uarg (skb_zerocopy_iter_stream: -EEXIST)
    bk = BF[B_KIND, ix(buf)]
    if bk == MEM_SLAB and page_design:
        return False  # skb_splice_from_iter(): !sendpage_ok(), -EIO
    if per_shinfo(Q):
        owner_terms(PG, BF, UA, SH, FR, LN, PR, MISC, Q, slot, -1)
    i = SH[SH_N, ix(slot)]
    set_frag(PG, BF, UA, SH, FR, LN, PR, MISC, Q, slot, i, pfn, off, ln, buf, u)
    SH[SH_N, ix(slot)] = i + 1
    point(PG, BF, UA, SH, FR, LN, PR, MISC, pfn, off, ln, u, 1)
    if bk == MEM_USER:
        if page_design:
            gup(PG, BF, UA, SH, FR, LN, PR, MISC, Q, pfn, off, ln, buf, cpu, ATTACH, led)
        else:
            pin(PG, BF, UA, SH, FR, LN, PR, MISC, Q, pfn, off, ln, buf, u, cpu, ATTACH, led)
    refset(PG, BF, UA, SH, FR, LN, PR, MISC, Q, pfn, off, ln, buf, u, 1)
    if per_shinfo(Q):
        owner_terms(PG, BF, UA, SH, FR, LN, PR, MISC, Q, slot, 1)
    if (bk == MEM_POOL_PAGE or bk == MEM_POOL_FRAG) and Q[Q_OWNER_MODE] != OWNER_BINDING and BF[B_BIAS, ix(buf)] > 0:
        BF[B_BIAS, ix(buf)] -= 1  # frag_users++: the slot's ref comes out of the pool's bias
        push(PG, BF, UA, SH, FR, LN, PR, MISC, PG[HEAD, ix(pfn)], -1)
    if u >= 0 and SH[SH_UARG, ix(slot)] < 0:
        SH[SH_UARG, ix(slot)] = u
        if Q[Q_UARG]:
            push(PG, BF, UA, SH, FR, LN, PR, MISC, Q[Q_U_BASE] + u, 1)
    return True


@njit(**_HANDLER)
def grow(S, cpu, skb, buf, ln, uarg):
    """The last frag takes in the next bytes of its folio (Replay.grow)."""
    Q, PG, BF, UA, SK, SH, FR, LN, PR, MISC, led = S
    if skb < 0 or skb >= Q[Q_N_SKB] or SK[S_ALIVE, ix(skb)] == 0 or ln <= 0:
        return False
    slot = SK[S_SH, ix(skb)]
    n = SH[SH_N, ix(slot)]
    if SH[SH_DATAREF, ix(slot)] != 1 or n == 0 or n >= Q[Q_MAX_FRAGS]:
        return False  # (a full skb: zerocopy_fill_skb_from_iter() fails before any GUP)
    k = slot * Q[Q_MAX_FRAGS] + n - 1
    fpfn, fo, fl, fb, fu = FR[F_PFN, ix(k)], FR[F_OFF, ix(k)], FR[F_LEN, ix(k)], FR[F_BUF, ix(k)], FR[F_UARG, ix(k)]
    if buf != fb or uarg != fu or not frag_ok(PG, BF, UA, SH, FR, LN, PR, MISC, Q, fpfn, fo, fl + ln, fb):
        return False
    # the pages the new bytes are on (GUP refs or pins each of them, even one the frag already covers)
    head = PG[HEAD]
    last = head[ix(fpfn + ((fo + fl - 1) >> PAGE_SHIFT))]
    q0 = fpfn + ((fo + fl) >> PAGE_SHIFT)
    q1 = fpfn + ((fo + fl + ln - 1) >> PAGE_SHIFT)
    for q in range(q0, q1 + 1):
        if head[ix(q)] != last:
            return False  # only bytes of the same folio merge into the last frag
    point(PG, BF, UA, SH, FR, LN, PR, MISC, fpfn, fo, fl, fu, -1)
    point(PG, BF, UA, SH, FR, LN, PR, MISC, fpfn, fo, fl + ln, fu, 1)
    FR[F_LEN, ix(k)] = fl + ln
    if BF[B_KIND, ix(buf)] == MEM_USER:
        if Q[Q_PAGE_MODE] != PAGE_NONE:  # GUP refs (and marks) the new pages; the refs go back in one page_ref_sub()
            gets = 1 if BF[B_FP, ix(buf)] >= PMD_PAGES else q1 - q0 + 1
            for _ in range(gets + 1):
                atomic(PG, BF, UA, SH, FR, LN, PR, MISC, last, cpu, PAGE_ATOMICS, GROW, led)
            for _ in range(gets):
                atomic(PG, BF, UA, SH, FR, LN, PR, MISC, last, cpu, FLAG_ATOMICS, GROW, led)
        else:
            pin(PG, BF, UA, SH, FR, LN, PR, MISC, Q, q0, 0, (q1 - q0 + 1) * PAGE, buf, fu, cpu, GROW, led)
    return True


@njit(**_HANDLER)
def clone(S, cpu, new, src):
    """skb_clone(): ``new`` shares ``src``'s shared info, one more dataref (Replay.clone)."""
    Q, PG, BF, UA, SK, SH, FR, LN, PR, MISC, led = S
    n_skb = Q[Q_N_SKB]
    if src < 0 or src >= n_skb or SK[S_ALIVE, ix(src)] == 0 or new < 0 or new >= n_skb or SK[S_ALIVE, ix(new)] == 1 \
            or new == src:
        return False
    slot = SK[S_SH, ix(src)]
    dataref(PG, BF, UA, SH, FR, LN, PR, MISC, Q, slot, 1, cpu, CLONE, led)
    SK[S_ALIVE, ix(new)] = 1
    SK[S_SH, ix(new)] = slot
    SK[S_CLONED, ix(new)] = 1
    SK[S_CLONED, ix(src)] = 1
    if Q[Q_OWNER_MODE] == OWNER_SKB:
        owner_terms(PG, BF, UA, SH, FR, LN, PR, MISC, Q, slot, 1)
    return True


@njit(**_HANDLER)
def split(S, cpu, skb, new, keep):
    """skb_split(): ``skb`` keeps its first ``keep`` bytes, ``new`` gets the rest (Replay.split)."""
    Q, PG, BF, UA, SK, SH, FR, LN, PR, MISC, led = S
    n_skb = Q[Q_N_SKB]
    if skb < 0 or skb >= n_skb or SK[S_ALIVE, ix(skb)] == 0 or new < 0 or new >= n_skb or SK[S_ALIVE, ix(new)] == 1 \
            or new == skb:
        return False
    slot = SK[S_SH, ix(skb)]
    if SH[SH_DATAREF, ix(slot)] != 1 or keep <= 0 or keep >= total(PG, BF, UA, SH, FR, LN, PR, MISC, Q, slot):
        return False
    mf = Q[Q_MAX_FRAGS]
    if per_shinfo(Q):
        owner_terms(PG, BF, UA, SH, FR, LN, PR, MISC, Q, slot, -1)
    ns = new_shinfo(PG, BF, UA, SH, FR, LN, PR, MISC, cpu, Q[Q_D_BASE])
    pos = 0
    kk = 0  # frags that stay
    for i in range(SH[SH_N, ix(slot)]):
        k = slot * mf + i
        fp_, fo, fl, fb, fu = FR[F_PFN, ix(k)], FR[F_OFF, ix(k)], FR[F_LEN, ix(k)], FR[F_BUF, ix(k)], FR[F_UARG, ix(k)]
        if pos + fl <= keep:
            set_frag(PG, BF, UA, SH, FR, LN, PR, MISC, Q, slot, kk, fp_, fo, fl, fb, fu)
            kk += 1
        elif pos >= keep:  # moved with its references
            j = SH[SH_N, ix(ns)]
            set_frag(PG, BF, UA, SH, FR, LN, PR, MISC, Q, ns, j, fp_, fo, fl, fb, fu)
            SH[SH_N, ix(ns)] = j + 1
        else:  # straddles the split point: both halves hold references
            hl = keep - pos
            point(PG, BF, UA, SH, FR, LN, PR, MISC, fp_, fo, fl, fu, -1)
            point(PG, BF, UA, SH, FR, LN, PR, MISC, fp_, fo, hl, fu, 1)
            point(PG, BF, UA, SH, FR, LN, PR, MISC, fp_, fo + hl, fl - hl, fu, 1)
            refset(PG, BF, UA, SH, FR, LN, PR, MISC, Q, fp_, fo, fl, fb, fu, -1)
            refset(PG, BF, UA, SH, FR, LN, PR, MISC, Q, fp_, fo, hl, fb, fu, 1)
            refset(PG, BF, UA, SH, FR, LN, PR, MISC, Q, fp_, fo + hl, fl - hl, fb, fu, 1)
            set_frag(PG, BF, UA, SH, FR, LN, PR, MISC, Q, slot, kk, fp_, fo, hl, fb, fu)
            kk += 1
            j = SH[SH_N, ix(ns)]
            set_frag(PG, BF, UA, SH, FR, LN, PR, MISC, Q, ns, j, fp_, fo + hl, fl - hl, fb, fu)
            SH[SH_N, ix(ns)] = j + 1
        pos += fl
    SH[SH_N, ix(slot)] = kk
    if per_shinfo(Q):
        owner_terms(PG, BF, UA, SH, FR, LN, PR, MISC, Q, slot, 1)
    if per_shinfo(Q):
        owner_terms(PG, BF, UA, SH, FR, LN, PR, MISC, Q, ns, 1)
    inherit_uarg(PG, BF, UA, SH, FR, LN, PR, MISC, Q, slot, ns)
    SK[S_ALIVE, ix(new)] = 1
    SK[S_SH, ix(new)] = ns
    SK[S_CLONED, ix(new)] = 0
    return True


@njit(**_HANDLER)
def segment(S, cpu, new, src, start, ln):
    """skb_segment(), __pskb_copy(): ``new`` gets bytes [start, start + ln) of ``src``'s frags, each piece
    with its own reference (Replay.segment)."""
    Q, PG, BF, UA, SK, SH, FR, LN, PR, MISC, led = S
    n_skb = Q[Q_N_SKB]
    if src < 0 or src >= n_skb or SK[S_ALIVE, ix(src)] == 0 or new < 0 or new >= n_skb or SK[S_ALIVE, ix(new)] == 1 \
            or new == src:
        return False
    if start < 0 or ln <= 0:
        return False
    mf = Q[Q_MAX_FRAGS]
    end = start + ln
    slot = SK[S_SH, ix(src)]
    base = slot * mf
    n = SH[SH_N, ix(slot)]
    # One scan, up to the frag that holds byte end - 1: the frags before ``first`` end at or before start,
    # those from ``last`` on begin at or after end. The twin's count of pieces needs no check here: each
    # piece is one frag, and a shared info holds at most max_frags.
    pos = 0
    first = 0
    first_pos = 0
    last = 0
    while last < n and pos < end:
        fl = FR[F_LEN, ix(base + last)]
        if pos + fl <= start:
            first = last + 1
            first_pos = pos + fl
        pos += fl
        last += 1
    if pos < end:  # the frags hold fewer than end bytes
        return False
    ns = new_shinfo(PG, BF, UA, SH, FR, LN, PR, MISC, cpu, Q[Q_D_BASE])
    pos = first_pos
    for i in range(first, last):
        k = base + i
        fl = FR[F_LEN, ix(k)]
        lo = max(start, pos)
        hi = min(end, pos + fl)
        if lo < hi:
            fp_, fb, fu = FR[F_PFN, ix(k)], FR[F_BUF, ix(k)], FR[F_UARG, ix(k)]
            fo = FR[F_OFF, ix(k)] + lo - pos
            j = SH[SH_N, ix(ns)]
            set_frag(PG, BF, UA, SH, FR, LN, PR, MISC, Q, ns, j, fp_, fo, hi - lo, fb, fu)
            SH[SH_N, ix(ns)] = j + 1
            point(PG, BF, UA, SH, FR, LN, PR, MISC, fp_, fo, hi - lo, fu, 1)
            refset(PG, BF, UA, SH, FR, LN, PR, MISC, Q, fp_, fo, hi - lo, fb, fu, 1)
        pos += fl
    if per_shinfo(Q):
        owner_terms(PG, BF, UA, SH, FR, LN, PR, MISC, Q, ns, 1)
    inherit_uarg(PG, BF, UA, SH, FR, LN, PR, MISC, Q, slot, ns)
    SK[S_ALIVE, ix(new)] = 1
    SK[S_SH, ix(new)] = ns
    SK[S_CLONED, ix(new)] = 0
    return True


@njit(**_HANDLER)
def expand_head(S, cpu, skb):
    """pskb_expand_head(), skb_unclone(): a private head; a shared shared info is copied, frag refs and
    all (Replay.expand_head)."""
    Q, PG, BF, UA, SK, SH, FR, LN, PR, MISC, led = S
    if skb < 0 or skb >= Q[Q_N_SKB] or SK[S_ALIVE, ix(skb)] == 0:
        return False
    slot = SK[S_SH, ix(skb)]
    if SH[SH_DATAREF, ix(slot)] > 1:  # skb_cloned(): frags are shared, so the new head refs them all
        mf = Q[Q_MAX_FRAGS]
        ns = new_shinfo(PG, BF, UA, SH, FR, LN, PR, MISC, cpu, Q[Q_D_BASE])
        n_old = SH[SH_N, ix(slot)]
        for i in range(n_old):
            k = slot * mf + i
            x = ix(k)
            fp_, fo, fl, fb, fu = FR[F_PFN, x], FR[F_OFF, x], FR[F_LEN, x], FR[F_BUF, x], FR[F_UARG, x]
            set_frag(PG, BF, UA, SH, FR, LN, PR, MISC, Q, ns, i, fp_, fo, fl, fb, fu)
            point(PG, BF, UA, SH, FR, LN, PR, MISC, fp_, fo, fl, fu, 1)
            refset(PG, BF, UA, SH, FR, LN, PR, MISC, Q, fp_, fo, fl, fb, fu, 1)
        SH[SH_N, ix(ns)] = n_old
        if per_shinfo(Q):
            owner_terms(PG, BF, UA, SH, FR, LN, PR, MISC, Q, ns, 1)
        if Q[Q_OWNER_MODE] == OWNER_SKB:
            owner_terms(PG, BF, UA, SH, FR, LN, PR, MISC, Q, slot, -1)  # this skb's ref moves over
        inherit_uarg(PG, BF, UA, SH, FR, LN, PR, MISC, Q, slot, ns)
        dataref(PG, BF, UA, SH, FR, LN, PR, MISC, Q, slot, -1, cpu, EXPAND_HEAD, led)
        SK[S_SH, ix(skb)] = ns
    SK[S_CLONED, ix(skb)] = 0
    return True


@njit(**_HANDLER)
def coalesce(S, cpu, dst, src):
    """skb_try_coalesce(), skb_gro_receive(): ``src``'s frags are appended to ``dst`` (Replay.coalesce)."""
    Q, PG, BF, UA, SK, SH, FR, LN, PR, MISC, led = S
    n_skb = Q[Q_N_SKB]
    if dst < 0 or dst >= n_skb or SK[S_ALIVE, ix(dst)] == 0 or src < 0 or src >= n_skb or SK[S_ALIVE, ix(src)] == 0 \
            or dst == src:
        return False
    mf = Q[Q_MAX_FRAGS]
    ds = SK[S_SH, ix(dst)]
    ss = SK[S_SH, ix(src)]
    if SH[SH_DATAREF, ix(ds)] != 1 or SH[SH_UARG, ix(ds)] >= 0 or SH[SH_UARG, ix(ss)] >= 0:
        return False  # skb_try_coalesce refuses cloned targets and zerocopy skbs
    if SH[SH_N, ix(ds)] + SH[SH_N, ix(ss)] > mf:
        return False
    if per_shinfo(Q):
        owner_terms(PG, BF, UA, SH, FR, LN, PR, MISC, Q, ds, -1)
    n_d = SH[SH_N, ix(ds)]
    n_s = SH[SH_N, ix(ss)]
    shared = SH[SH_DATAREF, ix(ss)] > 1  # from is cloned: the copies need their own references
    if not shared:  # frags (and their references) move; from is left empty
        if per_shinfo(Q):
            owner_terms(PG, BF, UA, SH, FR, LN, PR, MISC, Q, ss, -1)
    for i in range(n_s):
        k = ss * mf + i
        fp_, fo, fl, fb, fu = FR[F_PFN, ix(k)], FR[F_OFF, ix(k)], FR[F_LEN, ix(k)], FR[F_BUF, ix(k)], FR[F_UARG, ix(k)]
        set_frag(PG, BF, UA, SH, FR, LN, PR, MISC, Q, ds, n_d + i, fp_, fo, fl, fb, fu)
        if shared:
            point(PG, BF, UA, SH, FR, LN, PR, MISC, fp_, fo, fl, fu, 1)
            refset(PG, BF, UA, SH, FR, LN, PR, MISC, Q, fp_, fo, fl, fb, fu, 1)
    SH[SH_N, ix(ds)] = n_d + n_s
    if not shared:
        SH[SH_N, ix(ss)] = 0
    if per_shinfo(Q):
        owner_terms(PG, BF, UA, SH, FR, LN, PR, MISC, Q, ds, 1)
    return True


@njit(**_HANDLER)
def pull(S, cpu, skb, ln):
    """__pskb_trim_head(): the first ``ln`` bytes of the frags go (Replay.pull)."""
    Q, PG, BF, UA, SK, SH, FR, LN, PR, MISC, led = S
    if skb < 0 or skb >= Q[Q_N_SKB] or SK[S_ALIVE, ix(skb)] == 0:
        return False
    slot = SK[S_SH, ix(skb)]
    if SH[SH_DATAREF, ix(slot)] != 1 or ln <= 0 or not holds(PG, BF, UA, SH, FR, LN, PR, MISC, Q, slot, ln):
        return False
    mf = Q[Q_MAX_FRAGS]
    if per_shinfo(Q):
        owner_terms(PG, BF, UA, SH, FR, LN, PR, MISC, Q, slot, -1)
    eat = ln
    kk = 0
    n = SH[SH_N, ix(slot)]
    for i in range(n):
        k = slot * mf + i
        fp_, fo, fl, fb, fu = FR[F_PFN, ix(k)], FR[F_OFF, ix(k)], FR[F_LEN, ix(k)], FR[F_BUF, ix(k)], FR[F_UARG, ix(k)]
        if fl <= eat:
            eat -= fl
            point(PG, BF, UA, SH, FR, LN, PR, MISC, fp_, fo, fl, fu, -1)
            refset(PG, BF, UA, SH, FR, LN, PR, MISC, Q, fp_, fo, fl, fb, fu, -1)
        elif eat > 0:  # the twin's point() and refset() of the whole frag (-1) and of what is left (+1), netted:
            ptrs = PG[PTRS]  # the pages only the eaten bytes were on lose a pointer (the uarg's count is unchanged)
            for q in range(fp_ + (fo >> PAGE_SHIFT), fp_ + ((fo + eat) >> PAGE_SHIFT)):
                ptrs[ix(q)] -= 1
            if Q[Q_PAGE_MODE] == PAGE_ALL:  # per-folio refs may drop; else -1 and +1 on one line, nothing to push
                refset(PG, BF, UA, SH, FR, LN, PR, MISC, Q, fp_, fo, fl, fb, fu, -1)
                refset(PG, BF, UA, SH, FR, LN, PR, MISC, Q, fp_, fo + eat, fl - eat, fb, fu, 1)
            set_frag(PG, BF, UA, SH, FR, LN, PR, MISC, Q, slot, kk, fp_, fo + eat, fl - eat, fb, fu)
            kk += 1
            eat = 0
        elif kk == i:  # nothing was eaten whole: the rest stay where they are
            kk = n
            break
        else:
            set_frag(PG, BF, UA, SH, FR, LN, PR, MISC, Q, slot, kk, fp_, fo, fl, fb, fu)
            kk += 1
    SH[SH_N, ix(slot)] = kk
    if per_shinfo(Q):
        owner_terms(PG, BF, UA, SH, FR, LN, PR, MISC, Q, slot, 1)
    return True


@njit(**_HANDLER)
def zc_complete(S, cpu, uarg):
    """The user reads a zerocopy completion; early if frags still point at the send (Replay.zc_complete)."""
    Q, PG, BF, UA, SK, SH, FR, LN, PR, MISC, led = S
    if uarg < 0 or uarg >= Q[Q_N_UARG]:
        return False
    if UA[U_PTRS, ix(uarg)] > 0:
        led[EARLY_COMPLETE] += 1
    return True


@njit(**_HANDLER)
def free(S, cpu, skb, flags, other, atomics):
    """kfree_skb(): dataref drops; the last user releases the frags (skb_release_data); with ``flags`` a received
    skb the reader handed to skb_attempt_defer_free() (Replay.free, Replay.defer)."""
    Q, PG, BF, UA, SK, SH, FR, LN, PR, MISC, led = S
    if skb < 0 or skb >= Q[Q_N_SKB] or SK[S_ALIVE, ix(skb)] == 0:
        return False
    if flags != 0:
        deferred = (flags & FREE_DEFERRED) != 0
        if ((flags & ~FREE_FLAGS) != 0 or deferred == ((flags & FREE_FULL) != 0)
                or ((flags & FREE_FLUSH) != 0 and not deferred) or other < 0 or other >= Q[Q_N_CPU] or other == cpu
                or atomics < 0 or atomics > 2):
            return False
        line = Q[Q_C_BASE] + (cpu if deferred else other)
        by = other if deferred else cpu
        for _ in range(atomics):  # the reader on the allocating CPU's defer list
            atomic(PG, BF, UA, SH, FR, LN, PR, MISC, line, by, DEFER_ATOMICS, FREE, led)
        if (flags & FREE_FLUSH) != 0:  # the flush, on the allocating CPU
            atomic(PG, BF, UA, SH, FR, LN, PR, MISC, line, cpu, DEFER_ATOMICS, FREE, led)
    slot = SK[S_SH, ix(skb)]
    SK[S_ALIVE, ix(skb)] = 0
    if SH[SH_DATAREF, ix(slot)] > 1:  # skb_data_unref(): shared, so only dataref drops
        dataref(PG, BF, UA, SH, FR, LN, PR, MISC, Q, slot, -1, cpu, FREE, led)
        if Q[Q_OWNER_MODE] == OWNER_SKB:
            owner_terms(PG, BF, UA, SH, FR, LN, PR, MISC, Q, slot, -1)
    else:  # last user (no atomic when dataref is 1): release the frags
        release_shinfo(PG, BF, UA, SH, FR, LN, PR, MISC, Q, slot)
    return True


@njit((*_STATE_ARGS, _A1, _I, _I, _I, _I, _A1), **_ONCE)
def pipe_release(PG, BF, UA, SH, FR, LN, PR, MISC, Q, buf, lo, hi, cpu, led):
    """pipe_buf_release() of the pipe buffers still held among pages [lo, hi): one put per page on its folio;
    the owner designs' owner keeps them; under the shared binding they go back at once (Replay.pipe_release)."""
    head = PG[HEAD]
    binding = Q[Q_OWNER_MODE] == OWNER_BINDING
    pages = Q[Q_PAGE_MODE] != PAGE_NONE
    h, units, hit = -1, 0, False
    for q in range(lo, hi):
        if PG[PIPE, ix(q)] == 0:
            continue
        PG[PIPE, ix(q)] = 0
        BF[B_PIPE, ix(buf)] -= 1
        if binding:
            atomic(PG, BF, UA, SH, FR, LN, PR, MISC, head[ix(q)], cpu, PAGE_ATOMICS, BUF_RELEASE, led)
            if PG[PINNED, ix(q)] == 0 and free_page(PG, BF, UA, SH, FR, LN, PR, MISC, q, led):
                hit = True
        elif pages:
            if head[ix(q)] != h and units:
                change(PG, BF, UA, SH, FR, LN, PR, MISC, Q, h, -units, cpu, BUF_RELEASE, False, led)
                units = 0
            h = head[ix(q)]
            units += 1
    if units:
        change(PG, BF, UA, SH, FR, LN, PR, MISC, Q, h, -units, cpu, BUF_RELEASE, False, led)
    if hit:
        led[UAF_FREES] += 1


@njit(**_HANDLER)
def buf_release(S, cpu, buf, frags, pfn):
    """The buffer's holder lets go; page_frag memory: ``frags`` users page_frag_free() theirs; pipe memory: with
    ``frags`` > 0 the pipe buffers of pages [pfn, pfn + frags) only (Replay.buf_release)."""
    Q, PG, BF, UA, SK, SH, FR, LN, PR, MISC, led = S
    if buf < 0 or buf >= Q[Q_N_BUF] or BF[B_EXISTS, ix(buf)] == 0:
        return False
    if BF[B_KIND, ix(buf)] == MEM_PAGE_FRAG and frags > 0:
        return frag_free(PG, BF, UA, SH, FR, LN, PR, MISC, Q, buf, frags, cpu, led)
    if BF[B_HOLDER, ix(buf)] == 0:
        return False
    bk = BF[B_KIND, ix(buf)]
    lo = BF[B_PFN, ix(buf)]
    hi = lo + BF[B_PAGES, ix(buf)]
    if bk == MEM_PIPE and frags > 0:
        if pfn < lo or pfn + frags > hi:
            return False
        for q in range(pfn, pfn + frags):
            if PG[PIPE, ix(q)] == 0:
                return False
        pipe_release(PG, BF, UA, SH, FR, LN, PR, MISC, Q, buf, pfn, pfn + frags, cpu, led)
        if BF[B_PIPE, ix(buf)] > 0:
            return True
    elif bk == MEM_PIPE:
        pipe_release(PG, BF, UA, SH, FR, LN, PR, MISC, Q, buf, lo, hi, cpu, led)
    BF[B_HOLDER, ix(buf)] = 0
    fp = BF[B_FP, ix(buf)]
    count = LN[COUNT]
    if Q[Q_OWNER_MODE] == OWNER_BINDING:
        unpin(PG, BF, UA, SH, FR, LN, PR, MISC, Q, Q[Q_O_BASE] + buf, cpu, BUF_RELEASE, led)
        free_range(PG, BF, UA, SH, FR, LN, PR, MISC, lo, hi, True, led)
    elif bk == MEM_PAGE_FRAG:  # the page is used up: page_ref_sub_and_test(pagecnt_bias)
        nr = BF[B_BIAS, ix(buf)]
        BF[B_BIAS, ix(buf)] = 0
        if nr:
            cur = count[ix(lo)]
            atomic(PG, BF, UA, SH, FR, LN, PR, MISC, lo, cpu, PAGE_ATOMICS, BUF_RELEASE, led)
            count[ix(lo)] = max(cur - nr, 0)
            if cur < nr:
                led[BAD_REFS] += 1
            if cur - nr == 0:
                dies(PG, BF, UA, SH, FR, LN, PR, MISC, Q, lo, cpu, BUF_RELEASE, led)
    elif bk == MEM_POOL_PAGE or bk == MEM_POOL_FRAG:  # page_pool_drain_frag(): give back the unused bias
        nr = BF[B_BIAS, ix(buf)]
        BF[B_BIAS, ix(buf)] = 0
        if nr:
            cur = count[ix(lo)]
            if cur == nr:
                led[PP_READS] += 1
            else:
                atomic(PG, BF, UA, SH, FR, LN, PR, MISC, lo, cpu, PP_ATOMICS, BUF_RELEASE, led)
            count[ix(lo)] = max(cur - nr, 0)
            if cur < nr:
                led[BAD_REFS] += 1
            if cur - nr == 0:
                dies(PG, BF, UA, SH, FR, LN, PR, MISC, Q, lo, cpu, BUF_RELEASE, led)
    elif bk == MEM_DEVMEM or Q[Q_PAGE_MODE] == PAGE_NONE:
        # the mapping gives nothing back per send; the pipe and the binding's user put once
        change(PG, BF, UA, SH, FR, LN, PR, MISC, Q, Q[Q_O_BASE] + buf, -1, cpu, BUF_RELEASE, bk == MEM_USER, led)
    elif bk == MEM_SLAB:  # kfree()
        free_range(PG, BF, UA, SH, FR, LN, PR, MISC, lo, hi, False, led)
    elif bk != MEM_PIPE:  # (the pipe's pages went back one by one above)
        for h in range(lo, hi, fp):
            change(PG, BF, UA, SH, FR, LN, PR, MISC, Q, h, -1, cpu, BUF_RELEASE, bk == MEM_USER, led)
    return True


@njit(cache=CACHE, inline="always", _nrt=False, error_model="numpy")
def uarg_flags_ok(BF, Q, flags, buf):
    """UARG_* flags only, and a buffer that exists when UARG_DEVMEM names one."""
    if (flags & ~UARG_FLAGS) != 0:
        return False
    return (flags & UARG_DEVMEM) == 0 or (0 <= buf < Q[Q_N_BUF] and BF[B_EXISTS, ix(buf)] == 1)


@njit(cache=CACHE, inline="always", _nrt=False, error_model="numpy")
def devmem_line(Q, buf):
    """The refcount of a dma-buf's binding: the buffer's own, or the one shared binding (Replay.devmem_line)."""
    return Q[Q_BIND] if Q[Q_OWNER_MODE] == OWNER_BINDING else Q[Q_O_BASE] + buf


@njit(**_HANDLER)
def uarg_get(S, cpu, uarg, flags, buf):
    """tcp_sendmsg_locked() takes its ubuf_info: extends it or makes a new one (a notification), accounts the
    pages to the user (UARG_ACCOUNT), takes a devmem binding ref (UARG_DEVMEM) (Replay.uarg_get)."""
    Q, PG, BF, UA, SK, SH, FR, LN, PR, MISC, led = S
    if uarg < 0 or uarg >= Q[Q_N_UARG] or not uarg_flags_ok(BF, Q, flags, buf):
        return False
    line = Q[Q_U_BASE] + uarg
    x = Q[Q_X_BASE]
    new = UA[U_ACTIVE, ix(uarg)] == 0
    if new:  # sock_omalloc()
        atomic(PG, BF, UA, SH, FR, LN, PR, MISC, x + X_SOCK_OMEM, cpu, NOTIF_ATOMICS, UARG_GET, led)
        UA[U_ACCT, ix(uarg)] = 0
    if (flags & UARG_ACCOUNT) != 0:  # mm_account_pinned_pages(); get_uid() on the first accounting
        atomic(PG, BF, UA, SH, FR, LN, PR, MISC, x + X_USER_LOCKED_VM, cpu, CMPXCHG_ATOMICS, UARG_GET, led)
        if UA[U_ACCT, ix(uarg)] == 0:
            atomic(PG, BF, UA, SH, FR, LN, PR, MISC, x + X_USER_COUNT, cpu, NOTIF_ATOMICS, UARG_GET, led)
            UA[U_ACCT, ix(uarg)] = 1
    if new:  # sk_zckey, refcount_set(1), sock_hold()
        atomic(PG, BF, UA, SH, FR, LN, PR, MISC, x + X_SOCK_ZCKEY, cpu, NOTIF_ATOMICS, UARG_GET, led)
        UA[U_ACTIVE, ix(uarg)] = 1
        LN[COUNT, ix(line)] = 1
        LN[LAST_CPU, ix(line)] = cpu
        atomic(PG, BF, UA, SH, FR, LN, PR, MISC, x + X_SOCK_REF, cpu, NOTIF_ATOMICS, UARG_GET, led)
    else:
        change(PG, BF, UA, SH, FR, LN, PR, MISC, Q, line, 1, cpu, UARG_GET, False, led)
    if (flags & UARG_DEVMEM) != 0:  # net_devmem_get_binding(): refcount_inc_not_zero()
        atomic(PG, BF, UA, SH, FR, LN, PR, MISC, devmem_line(Q, buf), cpu, CMPXCHG_ATOMICS, UARG_GET, led)
    return True


@njit(**_HANDLER)
def uarg_put(S, cpu, uarg, flags, buf):
    """... and drops it when it returns (net_zcopy_put()), then the binding (Replay.uarg_put)."""
    Q, PG, BF, UA, SK, SH, FR, LN, PR, MISC, led = S
    if uarg < 0 or uarg >= Q[Q_N_UARG] or UA[U_ACTIVE, ix(uarg)] == 0 or not uarg_flags_ok(BF, Q, flags, buf):
        return False
    change(PG, BF, UA, SH, FR, LN, PR, MISC, Q, Q[Q_U_BASE] + uarg, -1, cpu, UARG_PUT, False, led)
    if (flags & UARG_DEVMEM) != 0:
        atomic(PG, BF, UA, SH, FR, LN, PR, MISC, devmem_line(Q, buf), cpu, OWNER_ATOMICS, UARG_PUT, led)
    return True


#: The handlers in op order (trace.OP_NAMES): engine_twin.Replay has a method of each name.
HANDLERS = (alloc, skb_alloc, attach, clone, split, segment, expand_head, coalesce, pull, zc_complete, free,
            buf_release, uarg_get, uarg_put, grow)
assert tuple(h.py_func.__name__ for h in HANDLERS) == T.OP_NAMES


# ---------------------------------------------------------------- the loop
@njit(inline="always", _nrt=False, error_model="numpy", cache=CACHE)
def apply(PG, BF, UA, SH, FR, LN, PR, MISC, Q, cpu, op, led):
    """Execute the event's net reference changes, gets first, then puts (Replay.apply)."""
    touched, acc, mark = LN[TOUCHED], LN[ACC], LN[MARK]
    nt = MISC[M_NT]
    puts = False
    for t in range(nt):
        line = touched[ix(t)]
        units = acc[ix(line)]
        if units > 0:
            change(PG, BF, UA, SH, FR, LN, PR, MISC, Q, line, units, cpu, op, False, led)
        elif units < 0:
            puts = True
    for t in range(nt):  # then the puts; the marks go as they are passed (change() reads neither acc nor mark)
        line = touched[ix(t)]
        units = acc[ix(line)]
        if puts and units < 0:
            change(PG, BF, UA, SH, FR, LN, PR, MISC, Q, line, units, cpu, op, False, led)
        acc[ix(line)] = 0
        mark[ix(line)] = 0
    MISC[M_NT] = 0


@njit(cache=CACHE, _nrt=False, error_model="numpy")
def finish(Q, PG, BF, UA, SK, SH, FR, LN, PR, MISC, led):
    """What was never given back: references, pins, datarefs, pages and skbs (Replay.finish)."""
    count, alive, head = LN[COUNT], PG[ALIVE], PG[HEAD]
    leaked = 0
    for h in range(Q[Q_N_PFN]):
        if alive[h] == 1 and head[h] == h and count[h] > 0:
            leaked += count[h]
        leaked += PG[PINNED, h]
    for line in range(Q[Q_O_BASE], Q[Q_D_BASE]):
        if count[line] > 0:
            leaked += count[line]
    live_skbs = 0
    for s in range(Q[Q_N_SKB]):
        if SK[S_ALIVE, s] == 1:
            live_skbs += 1
            SH[IN_USE, SK[S_SH, s]] = 1
    for slot in range(SH[IN_USE].shape[0]):
        if SH[IN_USE, slot] == 1:
            leaked += SH[SH_DATAREF, slot]
            SH[IN_USE, slot] = 0  # scratch: the state is left as it was
    led[LEAKED_REFS] = leaked
    led[LEAKED_PAGES] = MISC[M_PAGES_ALIVE]
    led[LEAKED_SKBS] = live_skbs


# _nrt=False: the loop allocates nothing, and without the runtime numba emits no
# reference counting for the arrays the handlers touch.
@njit(cache=CACHE, _nrt=False, error_model="numpy")
def _replay(op_, kind_, cpu_, skb_, other_, buf_, pfn_, off_, len_, Q, PG, BF, UA, SK, SH, FR, LN, PR, MISC, led):
    """Replay one trace: each event's handler, then its reference changes (Replay.run and Replay.step), then
    what was never given back (Replay.finish).

    Arguments, in groups: the trace's columns (one array per ``trace.EVENT``
    field, in field order); ``Q``, the parameter vector (the policy's modes,
    the id-space sizes and the line bases, indexed by ``Q_*``); the state
    allocated by :func:`_state`, one 2-D array per id space in ``STATE``
    order (rows named by the constants above), then ``MISC``, the scalars;
    ``led``, the ledger array the replay fills (``ledger.SCALARS`` then ref
    atomics by op).
    """
    S = (Q, PG, BF, UA, SK, SH, FR, LN, PR, MISC, led)
    for e in range(op_.shape[0]):
        op = np.int64(op_[ix(e)])
        cpu = np.int64(cpu_[ix(e)])
        skb = np.int64(skb_[ix(e)])
        other = np.int64(other_[ix(e)])
        buf = np.int64(buf_[ix(e)])
        ln = np.int64(len_[ix(e)])
        led[EVENTS] += 1
        if op == ALLOC:
            ok = alloc(S, cpu, buf, np.int64(pfn_[ix(e)]), ln, np.int64(off_[ix(e)]), np.int64(kind_[ix(e)]))
        elif op == SKB_ALLOC:
            ok = skb_alloc(S, cpu, skb)
        elif op == ATTACH:
            ok = attach(S, cpu, skb, buf, np.int64(pfn_[ix(e)]), np.int64(off_[ix(e)]), ln, other)
        elif op == CLONE:
            ok = clone(S, cpu, skb, other)
        elif op == SPLIT:
            ok = split(S, cpu, skb, other, ln)
        elif op == SEGMENT:
            ok = segment(S, cpu, skb, other, np.int64(off_[ix(e)]), ln)
        elif op == EXPAND_HEAD:
            ok = expand_head(S, cpu, skb)
        elif op == COALESCE:
            ok = coalesce(S, cpu, skb, other)
        elif op == PULL:
            ok = pull(S, cpu, skb, ln)
        elif op == ZC_COMPLETE:
            ok = zc_complete(S, cpu, other)
        elif op == FREE:
            ok = free(S, cpu, skb, np.int64(kind_[ix(e)]), other, ln)
        elif op == BUF_RELEASE:
            ok = buf_release(S, cpu, buf, ln, np.int64(pfn_[ix(e)]))
        elif op == UARG_GET:
            ok = uarg_get(S, cpu, other, np.int64(kind_[ix(e)]), buf)
        elif op == UARG_PUT:
            ok = uarg_put(S, cpu, other, np.int64(kind_[ix(e)]), buf)
        elif op == GROW:
            ok = grow(S, cpu, skb, buf, ln, other)
        else:
            ok = False
        if not ok:
            led[TRACE_ERRORS] += 1
        apply(PG, BF, UA, SH, FR, LN, PR, MISC, Q, cpu, op, led)
    finish(Q, PG, BF, UA, SK, SH, FR, LN, PR, MISC, led)


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


def _state(n_pfn: int, n_buf: int, n_uarg: int, n_skb: int, max_frags: int, n_cpu: int, n_pins: int) -> tuple:
    """The engine's state, allocated here so the compiled loop needs no allocator: STATE's groups, then MISC."""
    n_slot = n_skb + 1
    n_uarg = max(n_uarg, 1)
    n_lines = 2 * n_pfn + max(n_buf, 1) + n_uarg + 1 + len(X_LINES) + max(n_cpu, 1) + n_slot
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


def _params(pol: Policy, n_pfn: int, n_buf: int, n_uarg: int, n_skb: int, max_frags: int, n_cpu: int) -> np.ndarray:
    n_buf1, n_uarg1, n_cpu1 = max(n_buf, 1), max(n_uarg, 1), max(n_cpu, 1)
    pc_base = n_pfn
    o_base = 2 * n_pfn
    u_base = o_base + n_buf1
    bind = u_base + n_uarg1
    x_base = bind + 1
    c_base = x_base + len(X_LINES)
    d_base = c_base + n_cpu1
    return np.array([pol.page_mode, pol.owner_mode, int(pol.uarg), int(pol.batch), n_pfn, n_buf, n_uarg, n_skb,
                     max_frags, pc_base, o_base, u_base, bind, d_base, x_base, c_base, n_cpu1], dtype=np.int64)


def new_state(trace: np.ndarray, policy: Policy | str, *, max_frags: int = T.MAX_SKB_FRAGS) -> tuple:
    """The state ``S`` a replay of ``trace`` runs on, empty: (Q, STATE's groups in order, MISC, the ledger),
    the tuple the handlers take."""
    from .policies import get

    pol = get(policy)
    s = T.sizes(trace)
    sizes = (s["n_pfn"], s["n_buf"], s["n_uarg"], s["n_skb"], max_frags, s["n_cpu"])
    return (_params(pol, *sizes), *_state(*sizes, 1 if pol.holds_pages else pin_capacity(trace)), L.new_array())


def replay_into(S: tuple, trace: np.ndarray) -> Ledger:
    """Replay ``trace`` on state ``S`` (from :func:`new_state`, of a trace at least as large): the compiled
    loop, then the leaks. ``S`` holds the state the trace left."""
    c = T.columns(trace)
    _replay(*(c[name] for name in T.EVENT.names), *S)
    return Ledger.from_array(S[-1])


def step(S: tuple, op, kind, cpu, skb, other, buf, pfn, off, ln) -> bool:
    """One event on state ``S`` from Python, as the loop does it: its handler, then :func:`apply`
    (Replay.step). For inspection and tests; a replay runs the compiled loop."""
    Q, PG, BF, UA, SK, SH, FR, LN, PR, MISC, led = S
    args = {ALLOC: (buf, pfn, ln, off, kind), SKB_ALLOC: (skb,), ATTACH: (skb, buf, pfn, off, ln, other),
            CLONE: (skb, other), SPLIT: (skb, other, ln), SEGMENT: (skb, other, off, ln), EXPAND_HEAD: (skb,),
            COALESCE: (skb, other), PULL: (skb, ln), ZC_COMPLETE: (other,), FREE: (skb, kind, other, ln),
            BUF_RELEASE: (buf, ln, pfn), UARG_GET: (other, kind, buf), UARG_PUT: (other, kind, buf),
            GROW: (skb, buf, ln, other)}
    ok = op in args and HANDLERS[op](S, np.int64(cpu), *(np.int64(a) for a in args[op]))
    apply(PG, BF, UA, SH, FR, LN, PR, MISC, Q, np.int64(cpu), np.int64(op), led)
    return bool(ok)


def snapshot(S: tuple) -> dict:
    """The state in plain terms, the twin's line names included: what ``engine_twin.Replay.snapshot()``
    returns for the same events."""
    Q, PG, BF, UA, SK, SH, FR, LN, PR, MISC, led = (np.asarray(a) for a in S)
    n_pfn, mf = int(Q[Q_N_PFN]), int(Q[Q_MAX_FRAGS])
    bases = ((0, "folio"), (int(Q[Q_PC_BASE]), "pincount"), (int(Q[Q_O_BASE]), "owner"),
             (int(Q[Q_U_BASE]), "uarg"), (int(Q[Q_BIND]), "binding"), (int(Q[Q_X_BASE]), "x"),
             (int(Q[Q_C_BASE]), "defer"), (int(Q[Q_D_BASE]), "dataref"))

    def name(line: int) -> tuple:
        base, kind = [b for b in bases if b[0] <= line][-1]
        return X_LINES[line - base] if kind == "x" else (kind, line - base)

    skbs = {}
    for k in np.flatnonzero(SK[S_ALIVE]):
        slot = int(SK[S_SH, k])
        frags = tuple(tuple(int(FR[row, slot * mf + i]) for row in (F_PFN, F_OFF, F_LEN, F_BUF, F_UARG))
                      for i in range(SH[SH_N, slot]))
        skbs[int(k)] = (bool(SK[S_CLONED, k]), slot, int(SH[SH_DATAREF, slot]), int(SH[SH_UARG, slot]), frags)
    from .ledger import SCALARS

    return {"counts": {name(int(i)): int(LN[COUNT, i]) for i in np.flatnonzero(LN[COUNT])},
            "last_cpu": {name(int(i)): int(LN[LAST_CPU, i]) for i in np.flatnonzero(LN[LAST_CPU] >= 0)},
            "written": {name(int(i)) for i in np.flatnonzero(LN[WRITTEN])},
            "pages": {int(q): (int(PG[PTRS, q]), int(PG[PINNED, q])) for q in np.flatnonzero(PG[ALIVE][:n_pfn])},
            "pages_alive": int(MISC[M_PAGES_ALIVE]),
            "buffers": {int(b): (bool(BF[B_HOLDER, b]), int(BF[B_BIAS, b]), int(BF[B_PIPE, b]))
                        for b in np.flatnonzero(BF[B_EXISTS])},
            "uargs": {int(u): (int(UA[U_PTRS, u]), bool(UA[U_ACCT, u])) for u in np.flatnonzero(UA[U_ACTIVE])},
            "skbs": skbs,
            "ledger": {k: int(led[i]) for i, k in enumerate(SCALARS) if not k.startswith("leaked_")},
            "by_op": tuple(int(x) for x in led[BY_OP:BY_OP + T.N_OPS])}


def replay(trace: np.ndarray, policy: Policy | str, *, max_frags: int = T.MAX_SKB_FRAGS) -> Ledger:
    """Replay ``trace`` under ``policy``; returns the :class:`Ledger`."""
    return Ledger.from_array(replay_array(trace, policy, max_frags=max_frags))


def warm() -> None:
    """Compile the replay of a trace array (or load it from numba's cache; ``fraglife warm``): an empty trace
    compiles it all, as compiling depends on the arguments' types alone. Then each handler on its own, as
    :func:`step` calls them: one event of each op, on a state sized for them (valid or not, it compiles the same)."""
    replay(T.empty(), "page_ref")
    events = T.TraceBuilder.from_rows([(op, 0, 0, 0, 1, 0, 0, 0, 1) for op in sorted(T.OP_CODE.values())])
    S = new_state(events, "page_ref")
    for ev in events.tolist():
        step(S, *ev)


def replay_array(trace: np.ndarray, policy: Policy | str, *, max_frags: int = T.MAX_SKB_FRAGS) -> np.ndarray:
    return prepare(trace, policy, max_frags=max_frags)()


def prepare(trace: np.ndarray, policy: Policy | str, *, max_frags: int = T.MAX_SKB_FRAGS):
    """Everything a replay needs, allocated; the returned callable runs only the compiled loop."""
    from .policies import get

    pol = get(policy)
    s = T.sizes(trace)
    c = T.columns(trace)
    cols = [c[name] for name in T.EVENT.names]
    sizes = (s["n_pfn"], s["n_buf"], s["n_uarg"], s["n_skb"], max_frags, s["n_cpu"])
    n_pins = 1 if pol.holds_pages else pin_capacity(trace)
    Q = _params(pol, *sizes)

    def run() -> np.ndarray:
        led = L.new_array()
        _replay(*cols, Q, *_state(*sizes, n_pins), led)
        return led

    return run


def columns_cpus(columns: dict[str, np.ndarray]) -> int:
    """trace.cpus() of a trace given as columns."""
    deferred = columns["other"][(columns["op"] == FREE) & ((columns["kind"] & FREE_FLAGS) != 0)]
    return max(int(columns["cpu"].max(initial=0)), int(deferred.max(initial=0))) + 1


def replay_columns(columns: dict[str, np.ndarray], policy: Policy | str, sizes: dict[str, int], *,
                   max_frags: int = T.MAX_SKB_FRAGS) -> Ledger:
    """Replay a trace given as contiguous columns (``trace.columns()``, or a compiled generator's) with its
    id-space sizes (``trace.sizes()``, plus ``n_pins``, the pin records it may hold: :func:`pin_capacity`; without
    ``n_cpu`` it is read from the columns)."""
    from .policies import get

    pol = get(policy)
    n_cpu = sizes.get("n_cpu") or columns_cpus(columns)
    dims = (sizes["n_pfn"], sizes["n_buf"], sizes["n_uarg"], sizes["n_skb"], max_frags, n_cpu)
    led = L.new_array()
    _replay(*(columns[name] for name in T.EVENT.names), _params(pol, *dims),
            *_state(*dims, 1 if pol.holds_pages else sizes["n_pins"]), led)
    return Ledger.from_array(led)

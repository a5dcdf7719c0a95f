"""The exhaustive explorer's specification: every interleaving of a few skb operations, in plain Python.

The replay engine (:mod:`.engine`) follows one trace; this model asks what
*any* trace of a few operations can do. It enumerates every state that a
small number of buffers, skbs, frags and CPUs can reach under a lifetime
policy, breadth first, and reports the shortest sequence of steps that ends
in a use-after-free, an early zerocopy completion, a double release, or a
leak. :mod:`.explorer` runs the same search compiled (numba); this module is
the specification, written to be read, and must visit the same states in the
same order (tests/test_explorer.py).

The model
---------
*Buffers* are the memory a send uses: two order-0 pages each, so a frag
covering both spans two folios (the thread's future frag, a physical range;
today's frag builders never make one). A buffer has a *kind* (whose rules its
references follow today) and a *holder*: the process that mapped user memory
and the ``sendmsg()`` holding its ``ubuf_info``, the pipe, the page_pool, the
devmem binding's user, the kernel service that kmalloc'd an object. The
holder may let go at any moment; the copy fallback allocates further
buffers, of kernel pages, with no holder.

*Shared infos* carry frags and ``dataref``; *skbs* are their members. A frag
is ``(buffer, anchor page, first page, last page)``: like ``skb_frag_t`` it
keeps the page it was created with (the anchor) when a split or a segment
moves its start (include/linux/skbuff.h ``skb_frag_off_add()``).

*Lines* are the refcounts a reference can be taken on: a page's ``_refcount``
(or a page_pool page's ``pp_ref_count``), a buffer's owner, a buffer's
``ubuf_info``, the one shared binding. A policy (:mod:`.policies`) says
which line a frag reference takes, exactly as in the engine:

* ``page_ref`` (today, v6.12; devmem v6.16): the anchor page's folio for
  user and pipe memory and for the copy fallback's kernel pages
  (``__skb_frag_ref()`` is ``get_page()``); the page's ``pp_ref_count`` for
  page_pool memory; the dma-buf's binding for devmem
  (``net_devmem_get_net_iov()``); kmalloc'd memory cannot be sent
  (``skb_splice_from_iter()`` returns -EIO for slab pages). Zerocopy sends
  (user memory, devmem) also hold their ``ubuf_info`` once per shared info.
* ``page_ref_all``: one ref per folio the frag covers.
* ``owner_frag`` / ``owner_skb`` / ``owner_clone``: the buffer's owner, per
  frag reference / once per distinct owner per shared info (shared by clones
  through ``dataref``) / once per distinct owner per skb. page_pool pages keep
  ``pp_ref_count``, which already is their owner.
* ``owner_binding``: devmem's rule applied to all memory: every frag
  reference is a ref on one shared binding, and memory goes back when its
  holder lets go (user memory stays pinned by its ``ubuf_info`` until the
  completion), as in the engine.

Operations and steps
--------------------
A *step* is one transition of the search. An operation that takes and drops
references atomically is one step: ``attach``, ``clone``, ``split``,
``segment``, ``coalesce`` (all gets of an operation before its puts, as in
the engine), and the first step of ``expand_head``, ``copy`` (the copy
fallback), ``free`` and ``holder`` (the holder lets go). What those leave to
do is done later, one step at a time, by the CPU that started them:
``put`` (one reference dropped, in order; the last put on a line frees what
it keeps: pages, or the owner, whose release frees or unpins them and raises
the zerocopy completion) and ``drop`` (``expand_head``'s ``dataref``
decrement on the old shared info, which releases it if it was the last). An
operation needs an idle CPU to start, so ``cpus`` bounds how many are in
flight at once, and the steps of in-flight operations interleave in every
order.

The bounds (:class:`Bounds`): ``ops`` operations started besides ``free``
and ``holder`` (those stay possible, so every state can still reach the end,
where a leak shows), ``cpus``, ``skbs`` alive at once, ``frags`` per skb,
``copies`` buffers the copy fallback may allocate, and optionally ``depth``
(steps) and ``max_states``. Without the last two the search runs until no new
state appears: every interleaving the bounds allow is visited.

Kernel sources (v6.12 unless noted): ``skb_clone()`` / ``__skb_clone()``,
``skb_split()``, ``skb_segment()``, ``pskb_expand_head()``,
``skb_try_coalesce()``, ``skb_copy_ubufs()``, ``skb_release_data()``
(net/core/skbuff.c); ``pipe_buf_release()`` (include/linux/pipe_fs_i.h);
``page_pool_put_page()`` (net/core/page_pool.c); ``net_devmem_get_net_iov()``
(net/core/devmem.c, v6.16).

What is checked
---------------
* use-after-free: a page freed while a frag of a live skb covers it, or a
  reference taken on memory already freed;
* early completion: a zerocopy completion raised (the ``ubuf_info``, or the
  owner that replaces it, released) while a frag of a live skb still points
  at the buffer, so the application may overwrite data not yet sent;
* double release: a put on a line already at zero;
* leak: a state with nothing left to do in which memory, a reference or an
  undelivered completion remains.

A state reached by a violating step is not explored further; the first
violation of each kind found is, breadth first, one of the shortest.

States and symmetry
-------------------
A state is a tuple of small integers (:func:`encode`): skbs are anonymous
members of their shared info, shared infos are sorted, in-flight operations
are sorted (CPUs are interchangeable), and buffers of the same kind with the
same role are relabelled to the smallest form. Two states that differ only by
which skb id, shared-info slot, CPU or twin buffer holds what are one state;
:func:`orbit_size` counts the labelled states one canonical state stands for.
"""

from __future__ import annotations

import itertools
import math
from collections import deque
from dataclasses import dataclass, field
from typing import NamedTuple

from .policies import OWNER_BINDING, OWNER_FRAG, OWNER_SHINFO, OWNER_SKB, PAGE_FIRST, Policy

# ---- memory kinds ------------------------------------------------------------------------------
USER, PIPE, POOL, DEVMEM, KMALLOC, COPY = 0, 1, 2, 3, 4, 5
KIND_NAMES = ("user", "pipe", "pool", "devmem", "kmalloc", "copy")
KIND_CODE = {n: i for i, n in enumerate(KIND_NAMES)}
#: kinds a scenario may use (COPY is the copy fallback's own)
SCENARIO_KINDS = KIND_NAMES[:5]
#: kinds whose send raises a zerocopy completion (MSG_ZEROCOPY; devmem TX runs in its path)
COMPLETES = (USER, DEVMEM)
PAGES = 2  # pages per buffer, each its own order-0 folio

# ---- frag shapes: (anchor, first page, last page) -------------------------------------------------
SHAPES = ((0, 0, 0), (0, 0, 1), (0, 1, 1), (1, 1, 1))
ONE_PAGE_SHAPES = (0, 3)  # what a frag builder makes without spanning: page 0 or page 1
SPAN_SHAPE = 1  # both pages, anchored at page 0: the multi-folio frag

# ---- operations (step labels) ---------------------------------------------------------------------
PUT, DROP, ATTACH_NEW, ATTACH, CLONE, SPLIT, SEGMENT, EXPAND, COALESCE, COPYFB, FREE, HOLDER = range(12)
OP_NAMES = ("put", "drop", "attach_new", "attach", "clone", "split", "segment", "expand_head", "coalesce",
            "copy", "free", "holder")
#: steps that start an operation (they need an idle CPU)
STARTS = tuple(range(ATTACH_NEW, HOLDER + 1))
#: operations the ``ops`` bound counts (free and the holder's release are always possible, so every state
#: can still reach the end, where leaks show)
BUDGETED = (ATTACH_NEW, ATTACH, CLONE, SPLIT, SEGMENT, EXPAND, COALESCE, COPYFB)

# ---- violations ----------------------------------------------------------------------------------
UAF, EARLY, DOUBLE, LEAK = 0, 1, 2, 3
VIOLATIONS = ("use_after_free", "early_completion", "double_release", "leak")

# ---- the owner rules (the unified owner's definition; a mutant leaves one out) --------------------
R_CLONE = 1       # clones share the shared info's owner refs through dataref; free drops them at dataref 0
R_SPLIT = 2       # split: the new shared info takes a ref on each owner of its frags
R_SEGMENT = 4     # segment: each segment takes a ref on each owner of its frags
R_EXPAND = 8      # expand_head: the private copy takes a ref on each owner of its frags
R_COALESCE = 16   # coalesce across owners: the target takes a ref on each owner it did not hold
R_COPY = 32       # the copy fallback drops the refs on the owners it copied away from
ALL_RULES = 63
RULES = {"clone_shares_through_dataref": R_CLONE, "split_refs_new_owner_set": R_SPLIT,
         "segment_refs_its_owners": R_SEGMENT, "expand_head_refs_its_owners": R_EXPAND,
         "coalesce_refs_the_other_owner": R_COALESCE, "copy_drops_the_old_owner": R_COPY}

# ---- layout of the encoded state ------------------------------------------------------------------
# buffer record: used, holder, alive0, alive1, pc0, pc1, oc, oalive, uc, done
B_USED, B_HOLDER, B_ALIVE0, B_ALIVE1, B_PC0, B_PC1, B_OC, B_OALIVE, B_UC, B_DONE = range(10)
BW = 10


@dataclass(frozen=True)
class Bounds:
    """How far the search goes: operations, CPUs in flight, skbs alive, frags per skb, copy buffers, steps."""

    ops: int = 4  # operations other than free and the holder's release (those are always possible)
    cpus: int = 2
    skbs: int = 3
    frags: int = 2
    copies: int = 1
    depth: int = 0  # steps from the start; 0: until no new state
    max_states: int = 4_000_000  # stop (and say so) past this many states (about 200 bytes each)

    def __post_init__(self):
        for name, lo, hi in (("ops", 1, 12), ("cpus", 1, 3), ("skbs", 1, 4), ("frags", 1, 3), ("copies", 0, 1),
                             ("depth", 0, 200), ("max_states", 1, 1 << 25)):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or not lo <= v <= hi:
                raise ValueError(f"bound {name} = {v!r} is not allowed: expected an integer in [{lo}, {hi}]")


@dataclass(frozen=True)
class Scenario:
    """What is explored: the buffers' kinds, whether frags may span folios, the policy and its rules."""

    kinds: tuple[int, ...] = (PIPE, PIPE)
    span: bool = True  # frags may cover both pages of a buffer (two folios): the thread's future
    policy: Policy = field(default=None)  # type: ignore[assignment]
    rules: int = ALL_RULES

    def __post_init__(self):
        if not 1 <= len(self.kinds) <= 2 or any(k not in range(len(SCENARIO_KINDS)) for k in self.kinds):
            raise ValueError(f"kinds = {self.kinds!r} is not allowed: expected one or two of "
                             f"{', '.join(SCENARIO_KINDS)} (as codes 0..4)")
        if self.policy is None:
            from .policies import POLICIES
            object.__setattr__(self, "policy", POLICIES["owner_skb"])
        if not 0 <= self.rules <= ALL_RULES:
            raise ValueError(f"rules = {self.rules!r} is not allowed: expected a mask in [0, {ALL_RULES}]")


class Layout(NamedTuple):
    """Sizes and offsets of the encoded state for one set of bounds and scenario."""

    nb: int  # buffers: the scenario's, then the copy buffers
    ninit: int  # the scenario's buffers
    s: int  # shared-info records (and skbs)
    f: int  # frags per shared info
    c: int  # op records (CPUs)
    t: int  # tokens per op record
    sw: int  # shared-info record width
    ow: int  # op record width
    off_buf: int
    off_sh: int
    off_op: int
    width: int


def layout(bounds: Bounds, scenario: Scenario) -> Layout:
    nb, ninit = len(scenario.kinds) + bounds.copies, len(scenario.kinds)
    s, f, c = bounds.skbs, bounds.frags, bounds.cpus
    t = 2 * f + 1
    sw, ow = 5 + f + s, 1 + t
    off_buf = 2
    off_sh = off_buf + nb * BW
    off_op = off_sh + s * sw
    return Layout(nb, ninit, s, f, c, t, sw, ow, off_buf, off_sh, off_op, off_op + c * ow)


# ---- lines and tokens ------------------------------------------------------------------------------
# A line is an index: PAGE(b, p) = 2b + p, OWNER(b) = 2nb + b (both can sit in a held-set bitmask);
# as put tokens they are 1 + line, and UARG(b) = 1 + 3nb + b, BIND = 1 + 4nb.
def page_line(b: int, p: int) -> int:
    return 2 * b + p


def owner_line(nb: int, b: int) -> int:
    return 2 * nb + b


def uarg_token(nb: int, b: int) -> int:
    return 1 + 3 * nb + b


def bind_token(nb: int) -> int:
    return 1 + 4 * nb


def frag_code(b: int, shape: int) -> int:
    return 1 + 4 * b + shape


def frag_parts(code: int) -> tuple[int, int, int, int]:
    """(buffer, anchor, first page, last page) of a frag code."""
    b, shape = divmod(code - 1, 4)
    return (b, *SHAPES[shape])


def shape_of(a: int, lo: int, hi: int) -> int:
    return SHAPES.index((a, lo, hi))


# ---- the readable state ------------------------------------------------------------------------------
@dataclass
class Buf:
    used: int = 0
    holder: int = 0
    alive: list = field(default_factory=lambda: [0, 0])
    pc: list = field(default_factory=lambda: [0, 0])  # page _refcount / pp_ref_count
    oc: int = 0  # owner refcount (today's devmem: the dma-buf's binding)
    oalive: int = 0
    uc: int = 0  # ubuf_info refcount (designs that keep it)
    done: int = 0  # completion raised

    def row(self) -> tuple:
        return (self.used, self.holder, *self.alive, *self.pc, self.oc, self.oalive, self.uc, self.done)


@dataclass
class Sh:
    nmem: int
    drops: int = 0  # in-flight dataref decrements (expand_head's second step): dataref = nmem + drops
    frags: list = field(default_factory=list)
    oheld: int = 0  # owner_skb: the lines this shared info holds a ref on (bitmask)
    uarg: int = 0  # 1 + the buffer whose ubuf_info this shared info holds, or 0
    members: list = field(default_factory=list)  # one per skb: 1 + the lines it holds (owner_clone)

    def row(self, f: int, s: int) -> tuple:
        frags = list(self.frags) + [0] * (f - len(self.frags))
        mem = sorted(self.members) + [0] * (s - len(self.members))
        return (self.nmem, self.drops, len(self.frags), *frags, self.oheld, self.uarg, *mem)


@dataclass
class State:
    bind: int
    budget: int  # operations left to start (free and holder are not counted)
    bufs: list
    shs: list
    ops: list  # each a sorted list of put tokens (one in-flight operation, one CPU)


class Explorer:
    """Breadth-first search over canonical states; :meth:`run` returns a :class:`Result`."""

    def __init__(self, bounds: Bounds, scenario: Scenario, *, symmetry: bool = True):
        self.b, self.sc, self.L = bounds, scenario, layout(bounds, scenario)
        p = scenario.policy
        self.page_mode, self.owner_mode, self.uarg = p.page_mode, p.owner_mode, p.uarg
        self.binding = self.owner_mode == OWNER_BINDING
        self.per_shinfo = self.owner_mode == OWNER_SHINFO
        self.per_skb = self.owner_mode == OWNER_SKB
        self.owner_design = self.owner_mode in (OWNER_FRAG, OWNER_SHINFO, OWNER_SKB)
        self.kinds = tuple(scenario.kinds) + (COPY,) * bounds.copies
        self.perms = buffer_perms(scenario.kinds, bounds.copies) if symmetry else [tuple(range(self.L.nb))]

    # ---- kinds and lines ------------------------------------------------------------------------
    def sendable(self, kind: int) -> bool:
        return not (kind == KMALLOC and self.page_mode != 0)

    def shapes(self, kind: int) -> tuple[int, ...]:
        if kind == POOL or not self.sc.span:
            return ONE_PAGE_SHAPES
        return (0, SPAN_SHAPE, 3)

    def frag_lines(self, code: int) -> list[int]:
        """The lines (as tokens) one reference to this frag takes."""
        nb = self.L.nb
        b, a, lo, hi = frag_parts(code)
        kind = self.kinds[b]
        if self.binding:
            return [bind_token(nb)]
        if kind == POOL:
            return [1 + page_line(b, a)]
        if self.page_mode:
            if kind == DEVMEM:
                return [1 + owner_line(nb, b)]
            if self.page_mode == PAGE_FIRST:
                return [1 + page_line(b, a)]
            return [1 + page_line(b, q) for q in range(lo, hi + 1)]
        return [1 + owner_line(nb, b)]

    def held_mask(self, frags) -> int:
        """Distinct lines among ``frags`` as a bitmask (per-shared-info and per-skb owners)."""
        m = 0
        for code in frags:
            for tok in self.frag_lines(code):
                m |= 1 << (tok - 1)
        return m

    @staticmethod
    def mask_tokens(mask: int) -> list[int]:
        return [i + 1 for i in range(mask.bit_length()) if mask >> i & 1]

    # ---- the start state -------------------------------------------------------------------------
    def start(self) -> State:
        bufs = []
        for b, kind in enumerate(self.kinds):
            if kind == COPY:
                bufs.append(Buf())
                continue
            x = Buf(used=1, holder=1, alive=[1, 1])
            if self.binding:
                x.uc = 1 if kind in COMPLETES else 0
            elif self.page_mode:
                if kind in (USER, PIPE, POOL):
                    x.pc = [1, 1]  # the mapping's, the pipe's, the pool's
                elif kind == DEVMEM:
                    x.oc, x.oalive = 1, 1  # the binding user's ref
                x.uc = 1 if kind in COMPLETES else 0  # the sendmsg()'s ref on its ubuf_info
            else:
                if kind == POOL:
                    x.pc = [1, 1]
                else:
                    x.oc, x.oalive = 1, 1  # the holder's ref on the owner
            bufs.append(x)
        return State(0, self.b.ops, bufs, [], [])

    # ---- encoding ----------------------------------------------------------------------------------
    def encode_raw(self, st: State, perm) -> tuple:
        """The state with buffer b renamed perm[b], shared infos and op records sorted."""
        L = self.L
        inv = {b: perm[b] for b in range(L.nb)}

        def rf(code):
            if code == 0:
                return 0
            b, shape = divmod(code - 1, 4)
            return 1 + 4 * inv[b] + shape

        def rtok(tok):
            x = tok - 1
            if x < 2 * L.nb:
                b, p = divmod(x, 2)
                return 1 + 2 * inv[b] + p
            if x < 3 * L.nb:
                return 1 + 2 * L.nb + inv[x - 2 * L.nb]
            if x < 4 * L.nb:
                return 1 + 3 * L.nb + inv[x - 3 * L.nb]
            return tok

        def rmask(m):
            return sum(1 << (rtok(t) - 1) for t in self.mask_tokens(m))

        bufs = [None] * L.nb
        for b, x in enumerate(st.bufs):
            bufs[inv[b]] = x.row()
        shs = []
        for sh in st.shs:
            r = Sh(sh.nmem, sh.drops, [rf(c) for c in sh.frags], rmask(sh.oheld),
                   1 + inv[sh.uarg - 1] if sh.uarg else 0, [1 + rmask(m - 1) for m in sh.members])
            shs.append(r.row(L.f, L.s))
        shs.sort()
        shs += [(0,) * L.sw] * (L.s - len(shs))
        ops = sorted((len(op), *sorted(rtok(t) for t in op), *(0,) * (L.t - len(op))) for op in st.ops)
        ops += [(0,) * L.ow] * (L.c - len(ops))
        return (st.bind, st.budget, *itertools.chain(*bufs), *itertools.chain(*shs), *itertools.chain(*ops))

    def encode(self, st: State) -> tuple:
        """The canonical form: the smallest encoding over the buffer symmetries."""
        return min(self.encode_raw(st, perm) for perm in self.perms)

    def decode(self, v: tuple) -> State:
        L = self.L
        bufs = []
        for b in range(L.nb):
            r = v[L.off_buf + b * BW: L.off_buf + (b + 1) * BW]
            bufs.append(Buf(r[0], r[1], [r[2], r[3]], [r[4], r[5]], r[6], r[7], r[8], r[9]))
        shs = []
        for i in range(L.s):
            r = v[L.off_sh + i * L.sw: L.off_sh + (i + 1) * L.sw]
            nmem, drops, nf = r[0], r[1], r[2]
            if nmem + drops == 0:
                break
            frags = list(r[3:3 + nf])
            oheld, uarg = r[3 + L.f], r[4 + L.f]
            members = [m for m in r[5 + L.f:] if m]
            shs.append(Sh(nmem, drops, frags, oheld, uarg, members))
        ops = []
        for i in range(L.c):
            r = v[L.off_op + i * L.ow: L.off_op + (i + 1) * L.ow]
            if r[0] == 0:
                break
            ops.append(list(r[1:1 + r[0]]))
        return State(v[0], v[1], bufs, shs, ops)

    # ---- effects -------------------------------------------------------------------------------------
    def live_covers(self, st: State, b: int, p: int) -> bool:
        """Whether a frag of a live skb covers page p of buffer b."""
        for sh in st.shs:
            if sh.nmem == 0:
                continue
            for code in sh.frags:
                fb, _a, lo, hi = frag_parts(code)
                if fb == b and lo <= p <= hi:
                    return True
        return False

    def live_points(self, st: State, b: int) -> bool:
        return any(self.live_covers(st, b, p) for p in range(PAGES))

    def kill(self, st: State, b: int, p: int, bad: set) -> None:
        x = st.bufs[b]
        if x.alive[p]:
            x.alive[p] = 0
            if self.live_covers(st, b, p):
                bad.add(UAF)

    def complete(self, st: State, b: int, bad: set) -> None:
        st.bufs[b].done = 1
        if self.live_points(st, b):
            bad.add(EARLY)

    def get_ref(self, st: State, tok: int, bad: set) -> None:
        """A reference taken on a line (``tok``): on memory or an owner already gone, a use-after-free."""
        nb = self.L.nb
        x = tok - 1
        if x < 2 * nb:
            b, p = divmod(x, 2)
            if not st.bufs[b].alive[p]:
                bad.add(UAF)
            st.bufs[b].pc[p] += 1
        elif x < 3 * nb:
            b = x - 2 * nb
            if not st.bufs[b].oalive:
                bad.add(UAF)
            st.bufs[b].oc += 1
        elif x < 4 * nb:
            b = x - 3 * nb
            if st.bufs[b].done:
                bad.add(UAF)
            st.bufs[b].uc += 1
        else:
            st.bind += 1

    def put_ref(self, st: State, tok: int, bad: set) -> None:
        """A reference dropped on a line (``tok``); the last one frees what the line keeps."""
        nb = self.L.nb
        x = tok - 1
        if x < 2 * nb:
            b, p = divmod(x, 2)
            buf = st.bufs[b]
            if buf.pc[p] == 0:
                bad.add(DOUBLE)
                return
            buf.pc[p] -= 1
            if buf.pc[p] == 0:
                self.kill(st, b, p, bad)
        elif x < 3 * nb:
            b = x - 2 * nb
            buf = st.bufs[b]
            if buf.oc == 0 or not buf.oalive:
                bad.add(DOUBLE)
                return
            buf.oc -= 1
            if buf.oc == 0:  # the owner's release: its memory goes (unpinned, freed, handed back)
                buf.oalive = 0
                for p in range(PAGES):
                    self.kill(st, b, p, bad)
                if self.owner_design and self.kinds[b] in COMPLETES:
                    self.complete(st, b, bad)
        elif x < 4 * nb:
            b = x - 3 * nb
            buf = st.bufs[b]
            if buf.uc == 0:
                bad.add(DOUBLE)
                return
            buf.uc -= 1
            if buf.uc == 0:
                self.complete(st, b, bad)
                if self.binding and self.kinds[b] == USER and not buf.holder:  # its pins go
                    for p in range(PAGES):
                        self.kill(st, b, p, bad)
        else:
            if st.bind == 0:
                bad.add(DOUBLE)
                return
            st.bind -= 1

    def apply(self, st: State, gets, puts, bad: set) -> None:
        """An operation's reference changes: every get, then every put."""
        for t in gets:
            self.get_ref(st, t, bad)
        for t in puts:
            self.put_ref(st, t, bad)

    def frag_refs(self, frags) -> list[int]:
        """What the frags hold by themselves: per frag reference (page designs, owner_frag, binding)."""
        if self.per_shinfo or self.per_skb:
            return []
        return [t for code in frags for t in self.frag_lines(code)]

    def busy(self, st: State) -> int:
        return len(st.ops) + sum(sh.drops for sh in st.shs)

    def nskbs(self, st: State) -> int:
        return sum(sh.nmem for sh in st.shs)

    def add_op(self, st: State, tokens) -> None:
        if tokens:
            st.ops.append(sorted(tokens))

    def release(self, st: State, i: int) -> list[int]:
        """dataref reached zero (skb_release_data()): the shared info goes; the refs it held, to put."""
        sh = st.shs.pop(i)
        toks = self.frag_refs(sh.frags)
        if self.per_shinfo:
            toks += self.mask_tokens(sh.oheld)
        if self.uarg and sh.uarg:
            toks.append(uarg_token(self.L.nb, sh.uarg - 1))
        return toks

    def new_holding(self, frags, bad_rule: bool, gets: list) -> int:
        """A new shared info's (or skb's) owner set for ``frags``: its mask, with the gets (unless a mutant)."""
        m = self.held_mask(frags)
        if not bad_rule:
            gets += self.mask_tokens(m)
        return m

    # ---- splits ------------------------------------------------------------------------------------------
    @staticmethod
    def split_choices(frags) -> list[tuple[list[int], list[int]]]:
        """Every way skb_split() can cut ``frags``: inside a frag (both halves keep it), or between frags."""
        out = []
        n = len(frags)
        for k, code in enumerate(frags):
            b, a, lo, hi = frag_parts(code)
            if lo == hi:
                cuts = [(code, code)]
            else:  # a two-page frag: mid page 0, the page boundary, mid page 1
                cuts = [(frag_code(b, shape_of(a, 0, 0)), code),
                        (frag_code(b, shape_of(a, 0, 0)), frag_code(b, shape_of(a, 1, 1))),
                        (code, frag_code(b, shape_of(a, 1, 1)))]
            for head, tail in cuts:
                out.append((list(frags[:k]) + [head], [tail] + list(frags[k + 1:])))
            if k < n - 1:
                out.append((list(frags[:k + 1]), list(frags[k + 1:])))
        return out

    # ---- successors ----------------------------------------------------------------------------------------
    def successors(self, v: tuple) -> list:
        """Every step from state ``v``: (label, successor state, violations), in the fixed order: operation by
        operation as in OP_NAMES, each by the method of that name."""
        st0 = self.decode(v)
        out: list = []
        for op in self.possible(st0):
            n = len(out)
            getattr(self, OP_NAMES[op])(v, st0, out)
            if op in BUDGETED:
                for _lab, st, _bad in out[n:]:
                    st.budget -= 1
        return out

    def possible(self, st0: State) -> list[int]:
        """The operations that may step from ``st0``: puts and drops of operations in flight; with an idle CPU,
        an operation's start (those the ``ops`` bound counts only while it lasts)."""
        ops = [PUT, DROP]
        if self.busy(st0) < self.L.c:
            ops += [op for op in STARTS if st0.budget or op not in BUDGETED]
        return ops

    def steps(self, v: tuple, op: int) -> list:
        """One operation's steps from state ``v`` (before the ``ops`` bound is charged): (label, canonical
        successor, or None after a violation, violations)."""
        out: list = []
        getattr(self, OP_NAMES[op])(v, self.decode(v), out)
        return [(lab, None if bad else self.encode(st), frozenset(bad)) for lab, st, bad in out]

    def shinfos(self, st0: State):
        """(index, shared info) in canonical order, each distinct record once (identical ones step alike)."""
        for i, sh in enumerate(st0.shs):
            if i and sh.row(self.L.f, self.L.s) == st0.shs[i - 1].row(self.L.f, self.L.s):
                continue
            yield i, sh

    @staticmethod
    def members(sh: Sh):
        """(index, member) of a shared info's skbs in sorted order, each distinct record once."""
        ms = sorted(sh.members)
        for j, m in enumerate(ms):
            if j == 0 or m != ms[j - 1]:
                yield j, m

    def put(self, v, st0, out) -> None:
        """The next reference an in-flight operation drops (a CPU drops them in order)."""
        for i, op in enumerate(st0.ops):
            if i and op == st0.ops[i - 1]:
                continue
            st, bad = self.decode(v), set()
            rest = st.ops.pop(i)
            tok = rest.pop(0)
            if rest:
                st.ops.append(rest)
            self.put_ref(st, tok, bad)
            out.append(((PUT, i, tok, 0), st, bad))

    def drop(self, v, st0, out) -> None:
        """expand_head's dataref decrement on the old shared info; the last one releases it."""
        for i, sh in self.shinfos(st0):
            if sh.drops == 0:
                continue
            st, bad = self.decode(v), set()
            st.shs[i].drops -= 1
            if st.shs[i].nmem + st.shs[i].drops == 0:
                self.add_op(st, self.release(st, i))
            out.append(((DROP, i, 0, 0), st, bad))

    def attach_new(self, v, st0, out) -> None:
        """A frag of a held buffer to a new skb (see :meth:`attach_frag`)."""
        if self.nskbs(st0) < self.L.s and len(st0.shs) < self.L.s:
            self.attach_frag(v, st0, -1, out)

    def attach(self, v, st0, out) -> None:
        """A frag of a held buffer to an skb no one else shares (see :meth:`attach_frag`)."""
        for i, sh in self.shinfos(st0):
            if sh.nmem == 1 and not sh.drops and len(sh.frags) < self.L.f:
                self.attach_frag(v, st0, i, out)

    def attach_frag(self, v, st0, target: int, out) -> None:
        """A frag of each held buffer, in each shape, to shared info ``target`` (-1: a new one):
        skb_fill_page_desc() and the frag's reference (GUP, get_page(), a page_pool slot, the binding, or the
        owner)."""
        L = self.L
        for b in range(L.ninit):
            kind = self.kinds[b]
            if not st0.bufs[b].holder or not self.sendable(kind):
                continue
            if target >= 0 and self.uarg and kind in COMPLETES and st0.shs[target].uarg not in (0, b + 1):
                continue  # an skb points at one ubuf_info (skb_zerocopy_iter_stream(): -EEXIST)
            for shape in self.shapes(kind):
                st, bad = self.decode(v), set()
                code = frag_code(b, shape)
                if target < 0:
                    st.shs.append(Sh(1, members=[1]))
                sh = st.shs[target]
                gets = self.frag_refs([code])
                new = self.held_mask(sh.frags + [code])
                if self.per_shinfo:
                    gets += self.mask_tokens(new & ~sh.oheld)
                    sh.oheld = new
                if self.per_skb:
                    gets += self.mask_tokens(new & ~(sh.members[0] - 1))
                    sh.members = [1 + new]
                sh.frags.append(code)
                if self.uarg and kind in COMPLETES and not sh.uarg:
                    sh.uarg = b + 1  # skb_zcopy_set(): the shared info holds the send's ubuf_info
                    gets.append(uarg_token(L.nb, b))
                self.apply(st, gets, [], bad)
                label = (ATTACH_NEW, b, shape, 0) if target < 0 else (ATTACH, target, b, shape)
                out.append((label, st, bad))

    def clone(self, v, st0, out) -> None:
        """skb_clone(): the clone shares the shared info (dataref + 1); per-skb owners take their own refs."""
        if self.nskbs(st0) >= self.L.s:
            return
        for i, sh in self.shinfos(st0):
            if sh.nmem == 0:
                continue
            for j, _m in self.members(sh):
                st, bad = self.decode(v), set()
                s = st.shs[i]
                gets = []
                mask = self.held_mask(s.frags) if self.per_skb else 0
                gets += self.mask_tokens(mask)
                s.members.append(1 + mask)
                s.nmem += 1
                self.apply(st, gets, [], bad)
                out.append(((CLONE, i, j, 0), st, bad))

    def split(self, v, st0, out) -> None:
        """skb_split() of an skb no one else shares: a frag cut in two holds references in both halves."""
        L, R = self.L, self.sc.rules
        if self.nskbs(st0) >= L.s or len(st0.shs) >= L.s:
            return
        for i, sh in self.shinfos(st0):
            if sh.nmem != 1 or sh.drops or not sh.frags:
                continue
            for c, (head, tail) in enumerate(self.split_choices(sh.frags)):
                st, bad = self.decode(v), set()
                s = st.shs[i]
                gets, puts = multiset_gain(self.frag_refs(head) + self.frag_refs(tail), self.frag_refs(s.frags)), []
                new = Sh(1, frags=tail, members=[1])
                if self.per_shinfo or self.per_skb:
                    old = s.oheld if self.per_shinfo else s.members[0] - 1
                    keep = self.held_mask(head)
                    moved = self.new_holding(tail, not R & R_SPLIT, gets)
                    puts += self.mask_tokens(old & ~keep)
                    if self.per_shinfo:
                        s.oheld, new.oheld = keep, moved
                    else:
                        s.members, new.members = [1 + keep], [1 + moved]
                s.frags = head
                self.inherit_uarg(s, new, gets)
                st.shs.append(new)
                self.apply(st, gets, puts, bad)
                out.append(((SPLIT, i, c, 0), st, bad))

    def segment(self, v, st0, out) -> None:
        """skb_segment(): a new skb from a run of another's frags, each piece referenced again."""
        L, R = self.L, self.sc.rules
        if self.nskbs(st0) >= L.s or len(st0.shs) >= L.s:
            return
        for i, sh in self.shinfos(st0):
            if sh.nmem == 0 or not sh.frags:
                continue
            for lo in range(len(sh.frags)):
                for hi in range(lo, len(sh.frags)):
                    st, bad = self.decode(v), set()
                    s = st.shs[i]
                    piece = list(s.frags[lo:hi + 1])
                    gets = self.frag_refs(piece)
                    new = Sh(1, frags=piece, members=[1])
                    if self.per_shinfo:
                        new.oheld = self.new_holding(piece, not R & R_SEGMENT, gets)
                    if self.per_skb:
                        new.members = [1 + self.new_holding(piece, not R & R_SEGMENT, gets)]
                    self.inherit_uarg(s, new, gets)
                    st.shs.append(new)
                    self.apply(st, gets, [], bad)
                    out.append(((SEGMENT, i, lo, hi), st, bad))

    def expand_head(self, v, st0, out) -> None:
        """pskb_expand_head() on a cloned skb: a private shared info referencing the frags again; the old
        one's dataref drops in a second step (skb_release_data())."""
        L, R = self.L, self.sc.rules
        if len(st0.shs) >= L.s:
            return
        for i, sh in self.shinfos(st0):
            if sh.nmem == 0 or sh.nmem + sh.drops < 2:
                continue
            for j, _m in self.members(sh):
                st, bad = self.decode(v), set()
                s = st.shs[i]
                s.members = sorted(s.members)
                member = s.members.pop(j)  # per-skb owners: the skb's refs move with it
                s.nmem -= 1
                s.drops += 1
                gets = self.frag_refs(s.frags)
                new = Sh(1, frags=list(s.frags), members=[member])
                if self.per_shinfo:
                    new.oheld = self.new_holding(s.frags, not R & R_EXPAND, gets)
                self.inherit_uarg(s, new, gets)
                st.shs.append(new)
                self.apply(st, gets, [], bad)
                out.append(((EXPAND, i, j, 0), st, bad))

    def coalesce(self, v, st0, out) -> None:
        """skb_try_coalesce(): the frags of another skb appended to one no one else shares; moved with their
        references, or referenced again if the other skb is cloned."""
        L, R = self.L, self.sc.rules
        for i, dst in self.shinfos(st0):
            if dst.nmem != 1 or dst.drops:
                continue
            for k, src in enumerate(st0.shs):
                if k == i or src.nmem == 0 or src.drops or not src.frags or len(dst.frags) + len(src.frags) > L.f:
                    continue
                if self.uarg and (dst.uarg or src.uarg):
                    continue  # skb_try_coalesce() refuses zerocopy skbs
                st, bad = self.decode(v), set()
                d, s = st.shs[i], st.shs[k]
                gets, puts = [], []
                moved = list(s.frags)
                if s.nmem > 1:  # from is cloned: the target references its copies
                    gets += self.frag_refs(moved)
                else:  # from is left empty; per-shared-info and per-skb owners drop what it held
                    s.frags = []
                    if self.per_shinfo:
                        puts += self.mask_tokens(s.oheld)
                        s.oheld = 0
                    if self.per_skb:
                        puts += self.mask_tokens(s.members[0] - 1)
                        s.members = [1]
                held = d.oheld if self.per_shinfo else (d.members[0] - 1 if self.per_skb else 0)
                d.frags = d.frags + moved
                if self.per_shinfo or self.per_skb:
                    extra = self.held_mask(moved) & ~held
                    if R & R_COALESCE:  # coalesce across owners: a ref on each owner the target lacked
                        gets += self.mask_tokens(extra)
                        held |= extra
                    if self.per_shinfo:
                        d.oheld = held
                    else:
                        d.members = [1 + held]
                self.apply(st, gets, puts, bad)
                out.append(((COALESCE, i, k, 0), st, bad))

    def copy(self, v, st0, out) -> None:
        """The copy fallback (skb_copy_ubufs()): the data goes into fresh kernel pages, the old references are
        dropped one by one afterwards. Not for device memory (unreadable: -EFAULT); today only zerocopy skbs."""
        L, R = self.L, self.sc.rules
        slot = next((b for b in range(L.ninit, L.nb) if not st0.bufs[b].used), -1)
        if self.binding or slot < 0:
            return
        for i, sh in self.shinfos(st0):
            if sh.nmem != 1 or sh.drops:
                continue
            kinds = [self.kinds[frag_parts(c)[0]] for c in sh.frags]
            if all(k == COPY for k in kinds) or DEVMEM in kinds or (self.uarg and not sh.uarg):
                continue
            st, bad = self.decode(v), set()
            s = st.shs[i]
            c = st.bufs[slot]
            c.used, c.alive, c.oalive = 1, [1, 0], 1 if self.owner_design else 0
            code = frag_code(slot, 0)
            toks = self.frag_refs(s.frags)
            gets = self.frag_refs([code])
            if self.per_shinfo or self.per_skb:
                old = s.oheld if self.per_shinfo else s.members[0] - 1
                new = self.held_mask([code])
                gets += self.mask_tokens(new)
                if R & R_COPY:
                    toks += self.mask_tokens(old)
                if self.per_shinfo:
                    s.oheld = new
                else:
                    s.members = [1 + new]
            s.frags = [code]
            if s.uarg and self.uarg:
                toks.append(uarg_token(L.nb, s.uarg - 1))  # skb_zcopy_clear(): the completion, "copied"
            s.uarg = 0
            self.apply(st, gets, [], bad)
            self.add_op(st, toks)
            out.append(((COPYFB, i, 0, 0), st, bad))

    def free(self, v, st0, out) -> None:
        """kfree_skb() -> skb_release_data(): dataref drops; at zero the shared info's references go."""
        R = self.sc.rules
        for i, sh in self.shinfos(st0):
            if sh.nmem == 0:
                continue
            for j, _m in self.members(sh):
                st, bad = self.decode(v), set()
                s = st.shs[i]
                s.members = sorted(s.members)
                member = s.members.pop(j)
                s.nmem -= 1
                toks = self.mask_tokens(member - 1) if self.per_skb else []
                if s.nmem + s.drops > 0:  # shared: only dataref drops
                    if self.per_shinfo and not R & R_CLONE:
                        toks += self.mask_tokens(s.oheld)  # the mutant: every skb drops the owner refs
                else:
                    toks += self.release(st, i)
                self.add_op(st, toks)
                out.append(((FREE, i, j, 0), st, bad))

    def holder(self, v, st0, out) -> None:
        """The holder lets go: munmap() and sendmsg()'s return, pipe_buf_release(), the pool's drain, unbind."""
        L = self.L
        for b in range(L.ninit):
            if not st0.bufs[b].holder:
                continue
            st, bad = self.decode(v), set()
            x = st.bufs[b]
            x.holder = 0
            kind = self.kinds[b]
            toks = []
            if self.binding:
                if not (kind == USER and x.uc):  # memory goes back now, unless pinned by its ubuf_info
                    for p in range(PAGES):
                        self.kill(st, b, p, bad)
            elif self.page_mode:
                if kind in (USER, PIPE, POOL):
                    toks += [1 + page_line(b, p) for p in range(PAGES)]
                elif kind == DEVMEM:
                    toks.append(1 + owner_line(L.nb, b))
                else:  # kmalloc: kfree() at once (it could not be sent)
                    for p in range(PAGES):
                        self.kill(st, b, p, bad)
            elif kind == POOL:
                toks += [1 + page_line(b, p) for p in range(PAGES)]
            else:
                toks.append(1 + owner_line(L.nb, b))
            if (self.binding or self.page_mode) and kind in COMPLETES:
                toks.append(uarg_token(L.nb, b))  # sendmsg() returns: net_zcopy_put()
            self.add_op(st, toks)
            out.append(((HOLDER, b, 0, 0), st, bad))

    def inherit_uarg(self, old: Sh, new: Sh, gets: list) -> None:
        """A shared info made from a zerocopy one points at the same ubuf_info (skb_zerocopy_clone())."""
        if old.uarg:
            new.uarg = old.uarg
            if self.uarg:
                gets.append(uarg_token(self.L.nb, old.uarg - 1))

    def leaks(self, v: tuple) -> bool:
        """At a state with nothing left to do: memory, a reference or an undelivered completion remains."""
        st = self.decode(v)
        if st.bind:
            return True
        for b, x in enumerate(st.bufs):
            if not x.used:
                continue
            if any(x.alive) or any(x.pc) or x.oc or x.oalive or x.uc:
                return True
            if b < self.L.ninit and self.kinds[b] in COMPLETES and not x.done:
                return True
        return False

    # ---- the search --------------------------------------------------------------------------------------
    def run(self) -> "Result":
        start = self.encode(self.start())
        index = {start: 0}
        states, parent, label, depth = [start], [-1], [(-1, 0, 0, 0)], [0]
        found: dict[int, tuple[int, tuple]] = {}  # violation -> (parent state, step label)
        edges = terminals = 0
        queue = deque([0])
        complete = True
        while queue:
            n = queue.popleft()
            v = states[n]
            if self.b.depth and depth[n] >= self.b.depth:
                complete = False
                continue
            succ = self.successors(v)
            if not succ:
                terminals += 1
                if LEAK not in found and self.leaks(v):
                    found[LEAK] = (n, None)
            for lab, st, bad in succ:
                edges += 1
                if bad:
                    for k in sorted(bad):
                        found.setdefault(k, (n, lab))
                    continue
                w = self.encode(st)
                if w in index:
                    continue
                if len(states) >= self.b.max_states:
                    complete = False
                    continue
                index[w] = len(states)
                states.append(w)
                parent.append(n)
                label.append(lab)
                depth.append(depth[n] + 1)
                queue.append(len(states) - 1)
        return Result.build(self, states, parent, label, depth, found, edges, terminals, complete)


def multiset_gain(after: list[int], before: list[int]) -> list[int]:
    """Gets an operation needs: tokens in ``after`` beyond those in ``before`` (a multiset difference)."""
    from collections import Counter

    c = Counter(after)
    c.subtract(before)
    return sorted(t for t, n in c.items() for _ in range(max(n, 0)))


def buffer_perms(kinds, copies: int) -> list[tuple[int, ...]]:
    """Relabellings of the scenario's buffers that swap buffers of the same kind (copy buffers stay)."""
    n = len(kinds)
    out = []
    for perm in itertools.permutations(range(n)):
        if all(kinds[perm[b]] == kinds[b] for b in range(n)):
            out.append(tuple(perm) + tuple(range(n, n + copies)))
    return out


@dataclass
class Result:
    """What a search found: counts, whether it was exhaustive, and the shortest trace of each violation."""

    states: int
    edges: int
    terminals: int
    max_depth: int
    complete: bool  # every reachable state within the bounds was visited
    found: dict  # violation name -> list of (label, state) steps from the start (shortest)
    vectors: list = field(repr=False, default_factory=list)
    depths: list = field(repr=False, default_factory=list)
    labelled: float | None = None  # labelled states the canonical ones stand for (when counted)
    seconds: float = 0.0
    array: object = field(repr=False, default=None)  # the compiled search's states (int16 rows)

    @property
    def verdict(self) -> str:
        return "fails" if self.found else "passes"

    def shortest(self) -> tuple[str, list] | None:
        """(violation, steps) of the shortest counterexample (ties: the order of VIOLATIONS)."""
        if not self.found:
            return None
        return min(self.found.items(), key=lambda kv: (len(kv[1]), VIOLATIONS.index(kv[0])))

    @classmethod
    def build(cls, ex: Explorer, states, parent, label, depth, found, edges, terminals, complete) -> "Result":
        def path(n):
            steps = []
            while n > 0:
                steps.append((label[n], states[parent[n]]))
                n = parent[n]
            return steps[::-1]

        traces = {}
        for k, (n, lab) in found.items():
            steps = path(n)
            if lab is not None:
                steps.append((lab, states[n]))
            traces[VIOLATIONS[k]] = steps
        return cls(len(states), edges, terminals, max(depth), complete, traces, states, depth)


def explore(bounds: Bounds, scenario: Scenario, *, symmetry: bool = True) -> Result:
    """The twin's search (plain Python)."""
    return Explorer(bounds, scenario, symmetry=symmetry).run()


def orbit_size(ex: Explorer, v: tuple) -> int:
    """How many labelled states one canonical state stands for: skb ids, shared-info slots and CPUs
    assigned in every way (identical records count once)."""
    L = ex.L
    st = ex.decode(v)
    nsk, nsh = ex.nskbs(st), len(st.shs)
    n = math.perm(L.s, nsk) * math.perm(L.s, nsh) * math.perm(L.c, ex.busy(st))
    # identical skbs of one shared info, identical shared infos, identical op records: one labelled state each
    for sh in st.shs:
        for _m, grp in itertools.groupby(sorted(sh.members)):
            n //= math.factorial(len(list(grp)))
        n //= math.factorial(sh.drops)  # the CPUs with a pending drop on it
    for _r, grp in itertools.groupby(sorted(sh.row(L.f, L.s) for sh in st.shs)):
        n //= math.factorial(len(list(grp)))  # identical shared infos (with their skbs and CPUs) swap as wholes
    for _o, grp in itertools.groupby(sorted(tuple(o) for o in st.ops)):
        n //= math.factorial(len(list(grp)))
    return n

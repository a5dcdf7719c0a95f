"""The exhaustive explorer's specification: every interleaving of a few skb operations, in plain Python.

The replay engine (:mod:`.engine`) follows one trace; this model asks what
*any* trace of a few operations can do. It enumerates every state that a
small number of buffers, skbs, frags and CPUs can reach under a lifetime
policy, breadth first, and reports the shortest sequence of steps that ends
in a use-after-free, an early zerocopy completion, a double release, or a
leak. :mod:`.explorer` runs the same search compiled (numba); this module is
the specification, written to be read, and must visit the same states in the
same order (tests/test_explorer.py). The model follows the running kernel,
v6.18 (devmem TX and its deferred binding free are 6.16+; :mod:`.kernels`).

The model
---------
*Buffers* are the memory a send uses: two order-0 pages each, so a frag
covering both spans two folios (the thread's future frag, a physical range;
today's frag builders never make one). A buffer has a *kind* (whose rules its
references follow today) and a *holder*: the process that mapped user memory
and the ``sendmsg()`` holding its ``ubuf_info``, the pipe, the page_pool, the
devmem binding's user (the netlink socket), the kernel service that
kmalloc'd an object. The holder may let go at any moment; the copy fallback
allocates further buffers, of kernel pages, with no holder.

*Shared infos* carry frags and ``dataref``; *skbs* are their members. A frag
is ``(buffer, anchor page, first page, last page)``: like ``skb_frag_t`` it
keeps the page it was created with (the anchor) when a split, a segment, a
trim or a shift moves its start (include/linux/skbuff.h
``skb_frag_off_add()``). A shared info may carry a *frag_list* child: its
frags sit at the end of the parent's (``nl`` of them) with the child's own
owner set, and the parent's release releases it (``skb_release_data()`` ->
``kfree_skb_list_reason()``).

*Outside references* are what hands frag pages to something that outlives
the skb: a pipe buffer filled by ``skb_splice_bits()`` (``spd_fill_page()``
takes one ``get_page()`` on the frag's page) and a user mapping made by
``tcp_zerocopy_receive()`` (``vm_insert_pages()`` takes a folio ref held by
the page tables). They point at memory like a live frag does, and hold what
the policy says a frag reference holds (the owner, for the owner designs);
``pipe_buf_release()`` and ``munmap()`` let go of them.

*Lines* are the refcounts a reference can be taken on: a page's ``_refcount``
(or a page_pool page's ``pp_ref_count``; a pipe buffer's or a mapping's page
ref on a page_pool page is counted on the same line: it keeps the page alive
the same way, it only stops the pool from recycling it), a buffer's owner, a
buffer's ``ubuf_info``, the one shared binding. A policy (:mod:`.policies`)
says which line a frag reference takes, exactly as in the engine:

* ``page_ref`` (today, v6.18): the anchor page's folio for user and pipe
  memory and for the copy fallback's kernel pages (``__skb_frag_ref()`` ->
  ``get_netmem()`` -> ``get_page()``); the page's ``pp_ref_count`` for
  page_pool memory; the dma-buf's binding for devmem
  (``net_devmem_get_net_iov()``, 6.16+), plus one binding ref per devmem
  ``sendmsg()`` (``net_devmem_get_binding()``, dropped at the end of
  ``tcp_sendmsg_locked()``); kmalloc'd memory cannot be sent
  (``skb_splice_from_iter()`` returns -EIO for slab pages). Zerocopy sends
  (user memory, devmem) also hold their ``ubuf_info`` once per shared info.
* ``page_ref_all``: one ref per folio the frag covers.
* ``owner_frag`` / ``owner_skb`` / ``owner_clone``: the buffer's owner, per
  frag reference / once per distinct owner per shared info (shared by clones
  through ``dataref``) / once per distinct owner per skb. page_pool pages keep
  ``pp_ref_count``, which already is their owner.
* ``owner_binding``: devmem's rule applied to all memory: every frag
  reference is a ref on one shared binding. Devmem memory lives until the
  binding's last put (unbinding drops only the netlink socket's ref); user
  memory stays pinned by its ``ubuf_info`` until the completion; any other
  memory goes back when its holder lets go.

Devmem's binding is freed at its last put through a workqueue on 6.16+
(``net_devmem_dmabuf_binding_put()`` queues ``unbind_w``), so the dma-buf is
unmapped one step later (``unbind_w``). The scenario's ``devmem_tx`` chooses
today's rule for devmem TX ("frag": a binding ref per frag ref, upstream
6.16-6.19) or the prototype's ("socket": frags take no binding ref, each skb
holds the socket, which holds the binding; Stanislav Fomichev's tree,
github.com/fomichev/linux commit 7a0c4d4cd643, pointed to in review
``<Z22pVRcr-B624UcG@mini-arch>``, never a kernel release). With
"socket+orphan" ``skb_orphan()`` (``orphan``) may also take an skb's socket
away before the skb dies.

The owner's rules are one invariant: a shared info (or, for ``owner_clone``,
an skb) holds one ref on each distinct owner of its frags; clones share the
shared info's through ``dataref``; every operation that changes a shared
info's frags re-establishes the invariant (a get on each owner gained, a put
on each owner no longer used): split, segment, expand_head, coalesce, shift,
trim and the copy fallback. Outside references hold the owner themselves.
``Scenario.rules`` leaves one rule out (a mutant); :data:`RULES` names them.

*The owner array* (``Scenario.slots``): a shared info can name at most N
owners (``skb_frag_t`` has no room for an owner; a frag would index a small
array in ``skb_shared_info``). An attach, coalesce or shift that would need
an N+1-th owner takes the fallback: refused (TCP starts a new skb, as
``skb_zerocopy_iter_stream()`` does today for a second ``ubuf_info``) or the
whole skb is copied into kernel pages under one owner. page_pool frags find
their ``pp_ref_count`` through the page and take no slot.

Operations and steps
--------------------
A *step* is one transition of the search. An operation that takes and drops
references atomically is one step: ``attach``, ``clone``, ``split``,
``segment``, ``coalesce``, ``shift``, ``trim_head``, ``frag_list``,
``splice_bits``, ``zerocopy_receive``, ``pipe_buf_release``, ``munmap`` (all
gets of an operation before its puts, as in the engine), and the first step
of ``expand_head``, ``copy`` (the copy fallback), ``free``, ``holder`` (the
holder lets go), ``orphan`` and a devmem ``attach`` (its ``sendmsg()`` drops
its binding ref at the end). What those leave to do is done later, one step
at a time, by the CPU that started them: ``put`` (one reference dropped, in
order; the last put on a line frees what it keeps: pages, or the owner,
whose release frees or unpins them and raises the zerocopy completion) and
``drop`` (``expand_head``'s ``dataref`` decrement on the old shared info,
which releases it if it was the last); ``unbind_w`` runs on the workqueue. An
operation needs an idle CPU to start, so ``cpus`` bounds how many are in
flight at once, and the steps of in-flight operations interleave in every
order.

The bounds (:class:`Bounds`): ``ops`` operations started besides ``free``,
``holder``, ``pipe_buf_release`` and ``munmap`` (those stay possible, so
every state can still reach the end, where a leak shows), ``cpus``, ``skbs``
alive at once, ``frags`` per skb (a frag_list chain's included), ``copies``
buffers the copy fallback may allocate, ``outside`` pipe buffers and
mappings alive at once, and optionally ``depth`` (steps) and
``max_states``. Without the last two the search runs until no new state
appears: every interleaving the bounds allow is visited.

Kernel sources (v6.18 unless noted; the same in v6.12 where no row of
:mod:`.kernels` says otherwise): ``skb_clone()`` / ``__skb_clone()``,
``skb_split()``, ``skb_segment()``, ``pskb_expand_head()``,
``skb_try_coalesce()``, ``skb_shift()``, ``skb_copy_ubufs()``,
``skb_release_data()``, ``skb_splice_bits()`` / ``spd_fill_page()``
(net/core/skbuff.c); ``__pskb_trim_head()`` and ``tcp_grow_skb()``
(net/ipv4/tcp_output.c, the latter since 6.10); ``tcp_zerocopy_receive()``
and ``can_map_frag()`` (net/ipv4/tcp.c); ``validate_page_before_insert()``
(mm/memory.c); ``skb_gro_receive_list()`` (net/core/gro.c);
``pipe_buf_release()`` (include/linux/pipe_fs_i.h); ``page_pool_put_page()``
(net/core/page_pool.c); ``net_devmem_get_net_iov()``,
``net_devmem_unbind_dmabuf()``, ``__net_devmem_dmabuf_binding_free()``
(net/core/devmem.c), ``net_devmem_dmabuf_binding_put()``
(net/core/devmem.h).

What is checked
---------------
* use-after-free: a page freed while a frag of a live skb, a pipe buffer or
  a mapping covers it, a reference taken on memory already freed, or a
  shared info released while an skb still points at it;
* early completion: a zerocopy completion raised (the ``ubuf_info``, or the
  owner that replaces it, released) while a frag of a live skb, a pipe
  buffer or a mapping still points at the buffer, so the application may
  overwrite data not yet sent;
* double release: a put on a line already at zero;
* leak: a state with nothing left to do in which memory, a reference or an
  undelivered completion remains.

A state reached by a violating step is not explored further; the first
violation of each kind found is, breadth first, one of the shortest.

States and symmetry
-------------------
A state is a tuple of small integers (:func:`encode`): skbs are anonymous
members of their shared info, shared infos are sorted, in-flight operations
are sorted (CPUs are interchangeable), outside references are sorted, and
buffers of the same kind with the same role are relabelled to the smallest
form. Two states that differ only by which skb id, shared-info slot, CPU,
outside slot or twin buffer holds what are one state; :func:`orbit_size`
counts the labelled states one canonical state stands for.
"""

from __future__ import annotations

import itertools
import math
from collections import Counter, deque
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
#: kinds whose holder frees the memory on its own schedule (pipe_buf_release(), the pool's drain, kfree()): only a
#: reference on the memory itself keeps it (what devmem's binding rule applied to all memory fails for)
FREED_BY_HOLDER = (PIPE, POOL, KMALLOC)
#: kinds tcp_zerocopy_receive() maps: order-0 pages with no mapping and no page type (can_map_frag(),
#: validate_page_before_insert(): anon folios, slab pages and net_iovs are refused): anonymous pipe pages,
#: page_pool pages, the copy fallback's kernel pages
MAPPABLE = (PIPE, POOL, COPY)
PAGES = 2  # pages per buffer, each its own order-0 folio

# ---- frag shapes: (anchor, first page, last page) -------------------------------------------------
SHAPES = ((0, 0, 0), (0, 0, 1), (0, 1, 1), (1, 1, 1))
ONE_PAGE_SHAPES = (0, 3)  # what a frag builder makes without spanning: page 0 or page 1
SPAN_SHAPE = 1  # both pages, anchored at page 0: the multi-folio frag

# ---- operations (step labels) ---------------------------------------------------------------------
(PUT, DROP, UNBIND_W, ATTACH_NEW, ATTACH, CLONE, SPLIT, SEGMENT, EXPAND, COALESCE, COPYFB, SHIFT, TRIM,
 FRAG_LIST, SPLICE, ZC_RECEIVE, ORPHAN, FREE, HOLDER, PIPE_RELEASE, MUNMAP) = range(21)
OP_NAMES = ("put", "drop", "unbind_w", "attach_new", "attach", "clone", "split", "segment", "expand_head",
            "coalesce", "copy", "shift", "trim_head", "frag_list", "splice_bits", "zerocopy_receive", "orphan",
            "free", "holder", "pipe_buf_release", "munmap")
#: steps that start an operation (they need an idle CPU); put, drop and unbind_w do not
STARTS = tuple(range(ATTACH_NEW, MUNMAP + 1))
#: operations the ``ops`` bound counts (free, the holder's release and the outside references' release are
#: always possible, so every state can still reach the end, where leaks show)
BUDGETED = tuple(range(ATTACH_NEW, ORPHAN + 1))
#: the operations that hand frag pages outside the skb, or move or drop frags of a live skb
OUTSIDE_OPS = (SHIFT, TRIM, FRAG_LIST, SPLICE, ZC_RECEIVE, PIPE_RELEASE, MUNMAP)
#: a label's last field has this bit when the owner array's copy fallback ran (attach, coalesce, shift)
COPIED = 256

# ---- outside references ---------------------------------------------------------------------------
PIPE_BUF, MAPPING = 1, 2

# ---- violations ----------------------------------------------------------------------------------
UAF, EARLY, DOUBLE, LEAK = 0, 1, 2, 3
VIOLATIONS = ("use_after_free", "early_completion", "double_release", "leak")

# ---- the owner rules (the unified owner's definition; a mutant leaves one out) --------------------
R_CLONE = 1       # a clone takes a dataref: it shares the shared info and the owner refs it holds
R_SPLIT = 2       # split: the new shared info takes a ref on each owner of its frags
R_SEGMENT = 4     # segment: each segment takes a ref on each owner of its frags
R_EXPAND = 8      # expand_head: the private copy takes a ref on each owner of its frags
R_COALESCE = 16   # coalesce across owners: the target takes a ref on each owner it did not hold
R_COPY = 32       # the copy fallback drops the refs on the owners it copied away from
R_SHIFT = 64      # shift: the target takes a ref on each owner of the frags it gains
R_SPLICE = 128    # a pipe buffer filled from an skb holds what a frag reference holds (the owner)
R_MAP = 256       # a user mapping of receive pages holds what a frag reference holds (the owner)
R_FRAGLIST = 512  # the parent's release releases its frag_list child and what the child holds
ALL_RULES = 1023
RULES = {"clone_shares_through_dataref": R_CLONE, "split_refs_new_owner_set": R_SPLIT,
         "segment_refs_its_owners": R_SEGMENT, "expand_head_refs_its_owners": R_EXPAND,
         "coalesce_refs_the_other_owner": R_COALESCE, "copy_drops_the_old_owner": R_COPY,
         "shift_refs_the_target_owners": R_SHIFT, "pipe_buffer_holds_the_owner": R_SPLICE,
         "mapping_holds_the_owner": R_MAP, "frag_list_released_with_parent": R_FRAGLIST}
#: the rules that are the one invariant: a shared info holds one ref on each distinct owner of its frags,
#: re-established by every operation that changes its frags
INVARIANT_RULES = ("split_refs_new_owner_set", "segment_refs_its_owners", "expand_head_refs_its_owners",
                   "coalesce_refs_the_other_owner", "copy_drops_the_old_owner", "shift_refs_the_target_owners")

#: devmem TX: upstream 6.16+ (a binding ref per frag ref), or the prototype (the socket holds the binding, each skb
#: holds the socket until it is freed), or the prototype where an skb may be orphaned first (skb_orphan())
DEVMEM_TX = ("frag", "socket", "socket+orphan")
#: what an operation that would overflow the owner array does instead
FALLBACKS = ("refuse", "copy")

# ---- layout of the encoded state ------------------------------------------------------------------
# buffer record: used, holder, alive0, alive1, pc0, pc1, oc, oalive, uc, done
# (oalive: 1 the owner or binding lives, 2 its free is queued on the workqueue (devmem), 0 gone)
B_USED, B_HOLDER, B_ALIVE0, B_ALIVE1, B_PC0, B_PC1, B_OC, B_OALIVE, B_UC, B_DONE = range(10)
BW = 10
EW = 2  # outside reference record: type, frag code


@dataclass(frozen=True)
class Bounds:
    """How far the search goes: operations, CPUs in flight, skbs alive, frags per skb, copy buffers, outside
    references (pipe buffers and mappings) alive, steps."""

    ops: int = 4  # operations other than free and the releases (those are always possible)
    cpus: int = 2
    skbs: int = 3
    frags: int = 2
    copies: int = 1
    outside: int = 1
    depth: int = 0  # steps from the start; 0: until no new state
    max_states: int = 4_000_000  # stop (and say so) past this many states (about 25 bytes each, the compiled search)

    def __post_init__(self):
        for name, lo, hi in (("ops", 1, 12), ("cpus", 1, 3), ("skbs", 1, 4), ("frags", 1, 3), ("copies", 0, 1),
                             ("outside", 0, 2), ("depth", 0, 200), ("max_states", 1, 1 << 25)):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or not lo <= v <= hi:
                raise ValueError(f"bound {name} = {v!r} is not allowed: expected an integer in [{lo}, {hi}]")


@dataclass(frozen=True)
class Scenario:
    """What is explored: the buffers' kinds, whether frags may span folios, the policy and its rules, the owner
    array's size and fallback, and devmem TX's rule."""

    kinds: tuple[int, ...] = (PIPE, PIPE)
    span: bool = True  # frags may cover both pages of a buffer (two folios): the thread's future
    policy: Policy = field(default=None)  # type: ignore[assignment]
    rules: int = ALL_RULES
    slots: int = 0  # owners a shared info can name (owner_skb, owner_clone); 0: as many as it needs
    fallback: str = "refuse"  # when an operation would need one slot more: refuse it, or copy the skb
    devmem_tx: str = "frag"  # page_ref designs: "frag" (6.16+), "socket" or "socket+orphan" (the prototype)

    def __post_init__(self):
        if not 1 <= len(self.kinds) <= 2 or any(k not in range(len(SCENARIO_KINDS)) for k in self.kinds):
            raise ValueError(f"kinds = {self.kinds!r} is not allowed: expected one or two of "
                             f"{', '.join(SCENARIO_KINDS)} (as codes 0..4)")
        if self.policy is None:
            from .policies import POLICIES
            object.__setattr__(self, "policy", POLICIES["owner_skb"])
        if not isinstance(self.rules, int) or not 0 <= self.rules <= ALL_RULES:
            raise ValueError(f"rules = {self.rules!r} is not allowed: expected a mask in [0, {ALL_RULES}]")
        if not isinstance(self.slots, int) or isinstance(self.slots, bool) or not 0 <= self.slots <= 8:
            raise ValueError(f"slots = {self.slots!r} is not allowed: expected an integer in [0, 8]")
        if self.fallback not in FALLBACKS:
            raise ValueError(f"fallback = {self.fallback!r} is not allowed: expected one of {', '.join(FALLBACKS)}")
        if self.devmem_tx not in DEVMEM_TX:
            raise ValueError(f"devmem_tx = {self.devmem_tx!r} is not allowed: expected one of "
                             f"{', '.join(DEVMEM_TX)}")


class Layout(NamedTuple):
    """Sizes and offsets of the encoded state for one set of bounds and scenario."""

    nb: int  # buffers: the scenario's, then the copy buffers
    ninit: int  # the scenario's buffers
    s: int  # shared-info records (and skbs)
    f: int  # frags per shared info
    c: int  # op records (CPUs)
    t: int  # tokens per op record
    x: int  # outside reference records
    sw: int  # shared-info record width
    ow: int  # op record width
    off_buf: int
    off_sh: int
    off_op: int
    off_ext: int
    width: int


# shared-info record: nmem, drops, nf, frags[f], oheld, uarg, members[s], lost, nl, loheld
SH_NMEM, SH_DROPS, SH_NF, SH_FRAGS = 0, 1, 2, 3


def sh_offsets(f: int, s: int) -> tuple[int, int, int, int, int, int]:
    """Offsets in a shared-info record of oheld, uarg, members, lost, nl, loheld."""
    return 3 + f, 4 + f, 5 + f, 5 + f + s, 6 + f + s, 7 + f + s


def layout(bounds: Bounds, scenario: Scenario) -> Layout:
    nb, ninit = len(scenario.kinds) + bounds.copies, len(scenario.kinds)
    s, f, c, x = bounds.skbs, bounds.frags, bounds.cpus, bounds.outside
    t = 2 * f + 1
    sw, ow = 8 + f + s, 1 + t
    off_buf = 2
    off_sh = off_buf + nb * BW
    off_op = off_sh + s * sw
    off_ext = off_op + c * ow
    return Layout(nb, ninit, s, f, c, t, x, sw, ow, off_buf, off_sh, off_op, off_ext, off_ext + x * EW)


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


def popcount(m: int) -> int:
    return bin(m).count("1")


# ---- the readable state ------------------------------------------------------------------------------
@dataclass
class Buf:
    used: int = 0
    holder: int = 0
    alive: list = field(default_factory=lambda: [0, 0])
    pc: list = field(default_factory=lambda: [0, 0])  # page _refcount / pp_ref_count
    oc: int = 0  # owner refcount (today's devmem: the dma-buf's binding)
    oalive: int = 0  # 1 alive, 2 its free queued on the workqueue (devmem's unbind_w), 0 gone
    uc: int = 0  # ubuf_info refcount (designs that keep it)
    done: int = 0  # completion raised

    def row(self) -> tuple:
        return (self.used, self.holder, *self.alive, *self.pc, self.oc, self.oalive, self.uc, self.done)


@dataclass
class Sh:
    nmem: int
    drops: int = 0  # in-flight dataref decrements (expand_head's second step)
    frags: list = field(default_factory=list)  # its own, then its frag_list child's (the last nl)
    oheld: int = 0  # owner_skb: the lines this shared info holds a ref on (bitmask)
    uarg: int = 0  # 1 + the buffer whose ubuf_info this shared info holds, or 0
    members: list = field(default_factory=list)  # one per skb: 1 + the lines it holds (per-skb owners)
    lost: int = 0  # clones that took no dataref (the clone mutant): dataref = nmem + drops - lost
    nl: int = 0  # frags of its frag_list child (at the end of frags)
    loheld: int = 0  # the lines the frag_list child holds (its shared info's or its skb's owner set)

    def row(self, f: int, s: int) -> tuple:
        frags = list(self.frags) + [0] * (f - len(self.frags))
        mem = sorted(self.members) + [0] * (s - len(self.members))
        return (self.nmem, self.drops, len(self.frags), *frags, self.oheld, self.uarg, *mem, self.lost, self.nl,
                self.loheld)

    @property
    def dataref(self) -> int:
        return self.nmem + self.drops - self.lost

    @property
    def own(self) -> list:
        return self.frags[:len(self.frags) - self.nl]

    @property
    def child(self) -> list:
        return self.frags[len(self.frags) - self.nl:]


@dataclass
class State:
    bind: int
    budget: int  # operations left to start (free and the releases are not counted)
    bufs: list
    shs: list
    ops: list  # each a sorted list of put tokens (one in-flight operation, one CPU)
    ext: list = field(default_factory=list)  # outside references: (PIPE_BUF or MAPPING, frag code)
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
        # the prototype's devmem TX: each skb holds the socket (skb->sk), which holds the binding
        self.socket = bool(self.page_mode) and scenario.devmem_tx != "frag"
        self.orphans = self.socket and scenario.devmem_tx == "socket+orphan"
        self.skb_held = self.per_skb or self.socket  # skbs hold refs of their own (members)
        self.holds = self.per_shinfo or self.skb_held  # some owner set is kept besides per-frag refs
        self.slots = scenario.slots if (self.per_shinfo or self.per_skb) else 0
        self.kinds = tuple(scenario.kinds) + (COPY,) * bounds.copies
        self.perms = buffer_perms(scenario.kinds, bounds.copies) if symmetry else [tuple(range(self.L.nb))]
        self.owner_bits = ((1 << self.L.nb) - 1) << (2 * self.L.nb)
        self.fallbacks = 0  # steps the owner array's bound refused or copied (counted as successors are made)

    # ---- kinds and lines ------------------------------------------------------------------------
    def ok(self, rule: int) -> bool:
        """Whether the scenario keeps this rule (a mutant leaves one out)."""
        return bool(self.sc.rules & rule)

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
            if kind == DEVMEM:  # the prototype: no ref (the skb holds the socket); 6.16+: the binding
                return [] if self.socket else [1 + owner_line(nb, b)]
            if self.page_mode == PAGE_FIRST:
                return [1 + page_line(b, a)]
            return [1 + page_line(b, q) for q in range(lo, hi + 1)]
        return [1 + owner_line(nb, b)]

    def held_mask(self, frags) -> int:
        """Distinct lines among ``frags`` as a bitmask."""
        m = 0
        for code in frags:
            for tok in self.frag_lines(code):
                m |= 1 << (tok - 1)
        return m

    def hmask(self, frags) -> int:
        """The owner set a shared info (or an skb) holds for ``frags``: every distinct line for per-shared-info and
        per-skb owners; the devmem frags' bindings for the prototype's socket rule; nothing otherwise."""
        if self.per_shinfo or self.per_skb:
            return self.held_mask(frags)
        if self.socket:
            return sum({1 << owner_line(self.L.nb, frag_parts(c)[0]) for c in frags
                        if self.kinds[frag_parts(c)[0]] == DEVMEM})
        return 0

    def over(self, mask: int) -> bool:
        """The owner set needs more slots than the owner array has (page_pool lines take none)."""
        return bool(self.slots) and popcount(mask & self.owner_bits) > self.slots

    @staticmethod
    def mask_tokens(mask: int) -> list[int]:
        return [i + 1 for i in range(mask.bit_length()) if mask >> i & 1]

    # ---- the start state -------------------------------------------------------------------------
    def start(self) -> State:
        bufs, bind = [], 0
        for kind in self.kinds:
            if kind == COPY:
                bufs.append(Buf())
                continue
            x = Buf(used=1, holder=1, alive=[1, 1])
            if self.binding:
                x.uc = 1 if kind in COMPLETES else 0
                if kind == DEVMEM:  # the dma-buf is mapped; its binding user (netlink socket) holds a ref
                    x.oalive = 1
                    bind += 1
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
        return State(bind, self.b.ops, bufs, [], [], [])

    # ---- encoding ----------------------------------------------------------------------------------
    def encode_raw(self, st: State, perm) -> tuple:
        """The state with buffer b renamed perm[b], shared infos, op records and outside references sorted."""
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
                   1 + inv[sh.uarg - 1] if sh.uarg else 0, [1 + rmask(m - 1) for m in sh.members], sh.lost, sh.nl,
                   rmask(sh.loheld))
            shs.append(r.row(L.f, L.s))
        shs.sort()
        shs += [(0,) * L.sw] * (L.s - len(shs))
        ops = sorted((len(op), *sorted(rtok(t) for t in op), *(0,) * (L.t - len(op))) for op in st.ops)
        ops += [(0,) * L.ow] * (L.c - len(ops))
        ext = sorted((t, rf(code)) for t, code in st.ext) + [(0, 0)] * (L.x - len(st.ext))
        return (st.bind, st.budget, *itertools.chain(*bufs), *itertools.chain(*shs), *itertools.chain(*ops),
                *itertools.chain(*ext))

    def encode(self, st: State) -> tuple:
        """The canonical form: the smallest encoding over the buffer symmetries."""
        return min(self.encode_raw(st, perm) for perm in self.perms)

    def decode(self, v: tuple) -> State:
        L = self.L
        o_oh, o_ua, o_mem, o_lost, o_nl, o_loh = sh_offsets(L.f, L.s)
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
            shs.append(Sh(nmem, drops, list(r[3:3 + nf]), r[o_oh], r[o_ua], [m for m in r[o_mem:o_lost] if m],
                          r[o_lost], r[o_nl], r[o_loh]))
        ops = []
        for i in range(L.c):
            r = v[L.off_op + i * L.ow: L.off_op + (i + 1) * L.ow]
            if r[0] == 0:
                break
            ops.append(list(r[1:1 + r[0]]))
        ext = []
        for i in range(L.x):
            t, code = v[L.off_ext + i * EW: L.off_ext + (i + 1) * EW]
            if t == 0:
                break
            ext.append((t, code))
        return State(v[0], v[1], bufs, shs, ops, ext)

    # ---- effects -------------------------------------------------------------------------------------
    def live_covers(self, st: State, b: int, p: int) -> bool:
        """Whether a frag of a live skb, a pipe buffer or a mapping covers page p of buffer b."""
        codes = [c for sh in st.shs if sh.nmem for c in sh.frags] + [c for _t, c in st.ext]
        for code in codes:
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
        """A reference taken on a line (``tok``): on memory or an owner already gone (or going), a
        use-after-free."""
        nb = self.L.nb
        x = tok - 1
        if x < 2 * nb:
            b, p = divmod(x, 2)
            if not st.bufs[b].alive[p]:
                bad.add(UAF)
            st.bufs[b].pc[p] += 1
        elif x < 3 * nb:
            b = x - 2 * nb
            if st.bufs[b].oalive != 1:
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
                if self.kinds[b] == DEVMEM:
                    buf.oalive = 2  # net_devmem_dmabuf_binding_put(): the free is queued (unbind_w)
                else:
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
            if st.bind == 0:  # the binding's last put: the dma-buf's free is queued (unbind_w)
                for b, buf in enumerate(st.bufs):
                    if self.kinds[b] == DEVMEM and buf.oalive == 1 and not buf.holder:
                        buf.oalive = 2

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
            assert len(tokens) <= self.L.t, tokens
            st.ops.append(sorted(tokens))

    def release(self, st: State, i: int, bad: set) -> list[int]:
        """dataref reached zero (skb_release_data()): the shared info goes; the refs it held, to put. Released
        under an skb that still points at it (a clone that took no dataref): a use-after-free."""
        sh = st.shs.pop(i)
        if sh.nmem:
            bad.add(UAF)
        toks = self.frag_refs(sh.own)
        if self.per_shinfo:
            toks += self.mask_tokens(sh.oheld)
        if sh.nl and self.ok(R_FRAGLIST):  # kfree_skb_list_reason(): the child goes with the parent
            toks += self.frag_refs(sh.child) + self.mask_tokens(sh.loheld)
        if self.uarg and sh.uarg:
            toks.append(uarg_token(self.L.nb, sh.uarg - 1))
        return toks

    # ---- the owner invariant ------------------------------------------------------------------------
    def holding(self, sh: Sh) -> int:
        """The owner set a shared info holds (per shared info), or its one skb holds (per skb)."""
        if self.per_shinfo:
            return sh.oheld
        if self.skb_held:
            return sh.members[0] - 1
        return 0

    def set_holding(self, sh: Sh, m: int) -> None:
        if self.per_shinfo:
            sh.oheld = m
        elif self.skb_held:
            sh.members = [1 + m]

    def rebalance(self, sh: Sh, frags, gets: list, puts: list, *, get_ok: bool = True, put_ok: bool = True) -> None:
        """The invariant: ``sh`` (or its one skb) holds one ref on each distinct owner of ``frags``, its frags after
        the operation: a get on each owner it gains, a put on each it no longer uses. A mutant leaves out one
        side; the owner array still names every owner its frags use."""
        if not self.holds:
            return
        old, new = self.holding(sh), self.hmask(frags)
        if get_ok:
            gets += self.mask_tokens(new & ~old)
        if put_ok:
            puts += self.mask_tokens(old & ~new)
        self.set_holding(sh, new)

    def copy_slot(self, st0: State) -> int:
        """The first copy buffer not in use, or -1."""
        return next((b for b in range(self.L.ninit, self.L.nb) if not st0.bufs[b].used), -1)

    def copy_into(self, st: State, i: int, slot: int, gets: list, toks: list) -> None:
        """skb_copy_ubufs(): shared info i's data into the fresh kernel page of copy buffer ``slot``; the gets on
        the new page or its owner, and the puts of the old references for later (``toks``)."""
        s, c = st.shs[i], st.bufs[slot]
        c.used, c.alive, c.oalive = 1, [1, 0], 1 if self.owner_design else 0
        code = frag_code(slot, 0)
        toks += self.frag_refs(s.frags)
        gets += self.frag_refs([code])
        self.rebalance(s, [code], gets, toks, put_ok=self.ok(R_COPY))
        s.frags = [code]
        if s.uarg and self.uarg:
            toks.append(uarg_token(self.L.nb, s.uarg - 1))  # skb_zcopy_clear(): the completion, "copied"
        s.uarg = 0

    def fallback(self, st0: State, frags) -> int:
        """Whether a shared info whose frags become ``frags`` fits the owner array: 0 it fits; -1 the step is refused;
        else 1 + the copy buffer its data is copied into (the copy fallback). Counts the refusals and copies."""
        if not self.over(self.hmask(frags)):
            return 0
        self.fallbacks += 1
        if self.sc.fallback == "copy":
            slot = self.copy_slot(st0)
            if slot >= 0 and not any(self.kinds[frag_parts(c)[0]] == DEVMEM for c in frags):
                return 1 + slot
        return -1

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

    @classmethod
    def shift_choices(cls, frags) -> list[tuple[list[int], list[int]]]:
        """Every way skb_shift() can move a head of ``frags`` to another skb: the cuts of a split, and all of them
        (the caller then frees the emptied skb: tcp_grow_skb(), tcp_shift_skb_data())."""
        return cls.split_choices(frags) + [(list(frags), [])]

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
        """The operations that may step from ``st0``: puts and drops of operations in flight and the workqueue's
        unbind_w; with an idle CPU, an operation's start (those the ``ops`` bound counts only while it lasts)."""
        ops = [PUT, DROP, UNBIND_W]
        if self.busy(st0) < self.L.c:
            ops += [op for op in STARTS if st0.budget or op not in BUDGETED]
        return ops

    def steps(self, v: tuple, op: int) -> list:
        """One operation's steps from state ``v`` (before the ``ops`` bound is charged): (label, canonical
        successor, or None after a violation, violations). ``self.fallbacks`` counts on."""
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

    @staticmethod
    def unshared(sh: Sh) -> bool:
        """One skb, no dataref in flight, no frag_list: what split, coalesce, shift, trim and copy act on."""
        return sh.nmem == 1 and not sh.drops and not sh.nl

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
            if st.shs[i].dataref == 0:
                self.add_op(st, self.release(st, i, bad))
            out.append(((DROP, i, 0, 0), st, bad))

    def unbind_w(self, v, st0, out) -> None:
        """The workqueue runs __net_devmem_dmabuf_binding_free() (6.16+): the dma-buf is unmapped and detached."""
        for b in range(self.L.nb):
            if st0.bufs[b].oalive != 2:
                continue
            st, bad = self.decode(v), set()
            st.bufs[b].oalive = 0
            for p in range(PAGES):
                self.kill(st, b, p, bad)
            out.append(((UNBIND_W, b, 0, 0), st, bad))

    def attach_new(self, v, st0, out) -> None:
        """A frag of a held buffer to a new skb (see :meth:`attach_frag`)."""
        if self.nskbs(st0) < self.L.s and len(st0.shs) < self.L.s:
            self.attach_frag(v, st0, -1, out)

    def attach(self, v, st0, out) -> None:
        """A frag of a held buffer to an skb no one else shares (see :meth:`attach_frag`)."""
        for i, sh in self.shinfos(st0):
            if self.unshared(sh) and len(sh.frags) < self.L.f:
                self.attach_frag(v, st0, i, out)

    def attach_frag(self, v, st0, target: int, out) -> None:
        """A frag of each held buffer, in each shape, to shared info ``target`` (-1: a new one):
        skb_fill_page_desc() and the frag's reference (GUP, get_page(), a page_pool slot, the binding, or the
        owner). A devmem send also holds the binding while it runs (net_devmem_get_binding(), put at the end of
        tcp_sendmsg_locked(), 6.16+)."""
        L = self.L
        for b in range(L.ninit):
            kind = self.kinds[b]
            if not st0.bufs[b].holder or not self.sendable(kind):
                continue
            if target >= 0 and self.uarg and kind in COMPLETES and st0.shs[target].uarg not in (0, b + 1):
                continue  # an skb points at one ubuf_info (skb_zerocopy_iter_stream(): -EEXIST)
            for shape in self.shapes(kind):
                code = frag_code(b, shape)
                fb = self.fallback(st0, st0.shs[target].frags + [code]) if target >= 0 else 0
                if fb < 0:
                    continue
                st, bad = self.decode(v), set()
                if target < 0:
                    st.shs.append(Sh(1, members=[1]))
                sh = st.shs[target]
                gets, puts, toks = self.frag_refs([code]), [], []
                if kind == DEVMEM and not self.owner_design:
                    lookup = bind_token(L.nb) if self.binding else 1 + owner_line(L.nb, b)
                    gets.append(lookup)
                    toks.append(lookup)
                self.rebalance(sh, sh.frags + [code], gets, puts)
                sh.frags.append(code)
                if self.uarg and kind in COMPLETES and not sh.uarg:
                    sh.uarg = b + 1  # skb_zcopy_set(): the shared info holds the send's ubuf_info
                    gets.append(uarg_token(L.nb, b))
                if fb:
                    self.copy_into(st, len(st.shs) - 1 if target < 0 else target, fb - 1, gets, toks)
                self.apply(st, gets, puts, bad)
                self.add_op(st, toks)
                label = (ATTACH_NEW, b, shape, 0) if target < 0 else (ATTACH, target, b, shape | (COPIED if fb else 0))
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
                mask = self.hmask(s.own) if self.skb_held else 0
                gets = self.mask_tokens(mask)
                s.members.append(1 + mask)
                s.nmem += 1
                if not self.ok(R_CLONE):
                    s.lost += 1  # the mutant: the clone takes no dataref (__skb_clone()'s atomic_inc left out)
                self.apply(st, gets, [], bad)
                out.append(((CLONE, i, j, 0), st, bad))

    def split(self, v, st0, out) -> None:
        """skb_split() of an skb no one else shares: a frag cut in two holds references in both halves."""
        L = self.L
        if self.nskbs(st0) >= L.s or len(st0.shs) >= L.s:
            return
        for i, sh in self.shinfos(st0):
            if not self.unshared(sh) or not sh.frags:
                continue
            for c, (head, tail) in enumerate(self.split_choices(sh.frags)):
                st, bad = self.decode(v), set()
                s = st.shs[i]
                gets, puts = multiset_gain(self.frag_refs(head) + self.frag_refs(tail), self.frag_refs(s.frags)), []
                new = Sh(1, frags=tail, members=[1])
                self.rebalance(s, head, gets, puts)
                self.rebalance(new, tail, gets, puts, get_ok=self.ok(R_SPLIT))
                s.frags = head
                self.inherit_uarg(s, new, gets)
                st.shs.append(new)
                self.apply(st, gets, puts, bad)
                out.append(((SPLIT, i, c, 0), st, bad))

    def segment(self, v, st0, out) -> None:
        """skb_segment(): a new skb from a run of another's frags (a frag_list chain's included), each piece
        referenced again."""
        L = self.L
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
                    self.rebalance(new, piece, gets, [], get_ok=self.ok(R_SEGMENT))
                    self.inherit_uarg(s, new, gets)
                    st.shs.append(new)
                    self.apply(st, gets, [], bad)
                    out.append(((SEGMENT, i, lo, hi), st, bad))

    def expand_head(self, v, st0, out) -> None:
        """pskb_expand_head() on a cloned skb: a private shared info referencing the frags again; the old
        one's dataref drops in a second step (skb_release_data()). A frag_list child is referenced again with
        them (the kernel shares the child instead, skb_clone_fraglist(): its memory lives as long)."""
        L = self.L
        if len(st0.shs) >= L.s:
            return
        for i, sh in self.shinfos(st0):
            if sh.nmem == 0 or sh.dataref < 2:
                continue
            for j, _m in self.members(sh):
                st, bad = self.decode(v), set()
                s = st.shs[i]
                s.members = sorted(s.members)
                member = s.members.pop(j)  # per-skb owners: the skb's refs move with it
                s.nmem -= 1
                s.drops += 1
                gets = self.frag_refs(s.frags)
                new = Sh(1, frags=list(s.frags), members=[member], nl=s.nl)
                if self.per_shinfo:
                    self.rebalance(new, s.own, gets, [], get_ok=self.ok(R_EXPAND))
                if self.holds and s.nl:
                    new.loheld = self.hmask(s.child)
                    if self.ok(R_EXPAND):
                        gets += self.mask_tokens(new.loheld)
                self.inherit_uarg(s, new, gets)
                st.shs.append(new)
                self.apply(st, gets, [], bad)
                out.append(((EXPAND, i, j, 0), st, bad))

    def coalesce(self, v, st0, out) -> None:
        """skb_try_coalesce(): the frags of another skb appended to one no one else shares; moved with their
        references, or referenced again if the other skb is cloned. Refused for zerocopy and frag_list skbs."""
        L = self.L
        for i, dst in self.shinfos(st0):
            if not self.unshared(dst):
                continue
            for k, src in enumerate(st0.shs):
                if k == i or src.nmem == 0 or src.drops or src.nl or not src.frags or \
                        len(dst.frags) + len(src.frags) > L.f:
                    continue
                if self.uarg and (dst.uarg or src.uarg):
                    continue  # skb_try_coalesce() refuses zerocopy skbs
                fb = self.fallback(st0, dst.frags + src.frags)
                if fb < 0:
                    continue
                st, bad = self.decode(v), set()
                d, s = st.shs[i], st.shs[k]
                gets, puts, toks = [], [], []
                moved = list(s.frags)
                if s.nmem > 1:  # from is cloned: the target references its copies
                    gets += self.frag_refs(moved)
                else:  # from is left empty; per-shared-info and per-skb owners drop what it held
                    s.frags = []
                    self.rebalance(s, [], gets, puts)
                self.rebalance(d, d.frags + moved, gets, puts, get_ok=self.ok(R_COALESCE))
                d.frags = d.frags + moved
                if fb:
                    self.copy_into(st, i, fb - 1, gets, toks)
                self.apply(st, gets, puts, bad)
                self.add_op(st, toks)
                out.append(((COALESCE, i, k, COPIED if fb else 0), st, bad))

    def copy(self, v, st0, out) -> None:
        """The copy fallback (skb_copy_ubufs()): the data goes into fresh kernel pages, the old references are
        dropped one by one afterwards. Not for device memory (unreadable: -EFAULT); today only zerocopy skbs."""
        slot = self.copy_slot(st0)
        if self.binding or slot < 0:
            return
        for i, sh in self.shinfos(st0):
            if not self.unshared(sh):
                continue
            kinds = [self.kinds[frag_parts(c)[0]] for c in sh.frags]
            if all(k == COPY for k in kinds) or DEVMEM in kinds or (self.uarg and not sh.uarg):
                continue
            st, bad = self.decode(v), set()
            gets, toks = [], []
            self.copy_into(st, i, slot, gets, toks)
            self.apply(st, gets, [], bad)
            self.add_op(st, toks)
            out.append(((COPYFB, i, 0, 0), st, bad))

    def shift(self, v, st0, out) -> None:
        """skb_shift() (SACK's tcp_shift_skb_data(), TX's tcp_grow_skb() since 6.10): a head of one skb's frags
        moves to another's end; whole frags move with their references, a frag cut in two takes one more
        (__skb_frag_ref()). Both unshared (skb_prepare_for_shift() unclones first: expand_head); refused for
        zerocopy skbs. (The merge of its first frag into the target's last, same page and contiguous, is left
        out: it moves no owner.)"""
        L = self.L
        for i, tgt in self.shinfos(st0):
            if not self.unshared(tgt):
                continue
            for k, src in enumerate(st0.shs):
                if k == i or not self.unshared(src) or not src.frags:
                    continue
                if self.uarg and (tgt.uarg or src.uarg):
                    continue  # skb_shift() refuses zerocopy skbs
                for c, (head, tail) in enumerate(self.shift_choices(src.frags)):
                    if len(tgt.frags) + len(head) > L.f:
                        continue
                    fb = self.fallback(st0, tgt.frags + head)
                    if fb < 0:
                        continue
                    st, bad = self.decode(v), set()
                    t, s = st.shs[i], st.shs[k]
                    gets = multiset_gain(self.frag_refs(head) + self.frag_refs(tail), self.frag_refs(s.frags))
                    puts, toks = [], []
                    self.rebalance(s, tail, gets, puts)
                    self.rebalance(t, t.frags + head, gets, puts, get_ok=self.ok(R_SHIFT))
                    t.frags, s.frags = t.frags + head, tail
                    if fb:
                        self.copy_into(st, i, fb - 1, gets, toks)
                    self.apply(st, gets, puts, bad)
                    self.add_op(st, toks)
                    out.append(((SHIFT, i, k, c | (COPIED if fb else 0)), st, bad))

    def trim_head(self, v, st0, out) -> None:
        """__pskb_trim_head() (tcp_trim_head() on a partial ACK): the frags fully acked are dropped before the
        skb dies (skb_frag_unref()), a frag acked in part keeps its page and moves its offset. The skb is
        unshared (skb_unclone_keeptruesize() first: expand_head). Owners no longer used are put."""
        for i, sh in self.shinfos(st0):
            if not self.unshared(sh) or not sh.frags:
                continue
            for c, (_head, tail) in enumerate(self.split_choices(sh.frags)):
                st, bad = self.decode(v), set()
                s = st.shs[i]
                gets, puts = [], multiset_gain(self.frag_refs(s.frags), self.frag_refs(tail))
                self.rebalance(s, tail, gets, puts)
                s.frags = tail
                self.apply(st, gets, puts, bad)
                out.append(((TRIM, i, c, 0), st, bad))

    def frag_list(self, v, st0, out) -> None:
        """An skb joins another's frag_list (GRO: skb_gro_receive_list()): it keeps its frags, their references
        and its owner set; the parent's release will release it. Neither is zerocopy or shared; one child."""
        L = self.L
        for i, par in self.shinfos(st0):
            if not self.unshared(par) or par.uarg:
                continue
            for k, ch in enumerate(st0.shs):
                if k == i or not self.unshared(ch) or ch.uarg or not ch.frags or len(par.frags) + len(ch.frags) > L.f:
                    continue
                st, bad = self.decode(v), set()
                p, c = st.shs[i], st.shs[k]
                p.frags, p.nl, p.loheld = p.frags + c.frags, len(c.frags), self.holding(c)
                st.shs.pop(k)
                out.append(((FRAG_LIST, i, k, 0), st, bad))

    def outside_ref(self, v, st0, out, typ: int, rule: int) -> None:
        """A pipe buffer (skb_splice_bits()) or a user mapping (tcp_zerocopy_receive()) of one frag of a live skb:
        it holds what a frag reference holds (spd_fill_page()'s get_page(), vm_insert_pages()' folio ref; the owner
        for owner designs, unless the mutant). Zerocopy skbs never get here: skb_orphan_frags_rx() copies them on
        local delivery, so no skb with user memory (or its ubuf_info) does, whatever the design; device memory is
        unreadable (skb_frags_readable())."""
        if len(st0.ext) >= self.L.x:
            return
        for i, sh in self.shinfos(st0):
            if sh.nmem == 0 or (self.uarg and sh.uarg) or any(self.kinds[frag_parts(c)[0]] == USER for c in sh.frags):
                continue
            frags = sh.frags if typ == PIPE_BUF else sh.own
            for q, code in enumerate(frags):
                if code in frags[:q]:
                    continue
                b, a, lo, hi = frag_parts(code)
                kind = self.kinds[b]
                if kind == DEVMEM or (typ == MAPPING and (kind not in MAPPABLE or not a == lo == hi)):
                    continue
                st, bad = self.decode(v), set()
                st.ext.append((typ, code))
                self.apply(st, self.frag_lines(code) if self.ok(rule) else [], [], bad)
                out.append(((SPLICE if typ == PIPE_BUF else ZC_RECEIVE, i, q, 0), st, bad))

    def splice_bits(self, v, st0, out) -> None:
        """skb_splice_bits() -> spd_fill_page(): a frag into a pipe buffer (one get_page() on its page); the pipe
        outlives the skb. See :meth:`outside_ref`."""
        self.outside_ref(v, st0, out, PIPE_BUF, R_SPLICE)

    def zerocopy_receive(self, v, st0, out) -> None:
        """tcp_zerocopy_receive(): a whole-page frag (can_map_frag(): one page at offset 0, no mapping) of one of
        the mappable kinds into user space; the page tables hold a page ref until munmap. Own frags only. See
        :meth:`outside_ref`."""
        self.outside_ref(v, st0, out, MAPPING, R_MAP)

    def orphan(self, v, st0, out) -> None:
        """skb_orphan(): an skb gives up its socket (skb->sk, its destructor) before it is freed. Only the
        prototype's devmem rule ties frag memory to the socket; with it the skb's socket refs go now."""
        if not self.orphans:
            return
        for i, sh in self.shinfos(st0):
            if sh.nmem == 0:
                continue
            for j, m in self.members(sh):
                if m == 1:
                    continue
                st, bad = self.decode(v), set()
                s = st.shs[i]
                s.members = sorted(s.members)
                s.members[j] = 1
                self.add_op(st, self.mask_tokens(m - 1))
                out.append(((ORPHAN, i, j, 0), st, bad))

    def free(self, v, st0, out) -> None:
        """kfree_skb() -> skb_release_data(): dataref drops; at zero the shared info's references go (and its
        frag_list child's)."""
        for i, sh in self.shinfos(st0):
            if sh.nmem == 0:
                continue
            for j, _m in self.members(sh):
                st, bad = self.decode(v), set()
                s = st.shs[i]
                s.members = sorted(s.members)
                member = s.members.pop(j)
                s.nmem -= 1
                toks = self.mask_tokens(member - 1) if self.skb_held else []
                if s.dataref <= 0:
                    toks += self.release(st, i, bad)
                self.add_op(st, toks)
                out.append(((FREE, i, j, 0), st, bad))

    def holder(self, v, st0, out) -> None:
        """The holder lets go: munmap() and sendmsg()'s return, pipe_buf_release(), the pool's drain, unbind
        (net_devmem_unbind_dmabuf(): the netlink socket's binding ref only)."""
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
                if kind == DEVMEM:
                    toks.append(bind_token(L.nb))  # the memory lives until the binding's last put
                elif not (kind == USER and x.uc):  # memory goes back now, unless pinned by its ubuf_info
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

    def outside_release(self, v, st0, out, typ: int, rule: int) -> None:
        """A pipe buffer or a mapping goes: what it holds is put (pipe_buf_release(), zap on munmap())."""
        for k, rec in enumerate(st0.ext):
            if rec[0] != typ or (k and st0.ext[k - 1] == rec):
                continue
            st, bad = self.decode(v), set()
            st.ext.pop(k)
            self.apply(st, [], self.frag_lines(rec[1]) if self.ok(rule) else [], bad)
            out.append(((PIPE_RELEASE if typ == PIPE_BUF else MUNMAP, k, 0, 0), st, bad))

    def pipe_buf_release(self, v, st0, out) -> None:
        """The reader consumes a pipe buffer filled by splice_bits (nosteal_pipe_buf_ops: put_page())."""
        self.outside_release(v, st0, out, PIPE_BUF, R_SPLICE)

    def munmap(self, v, st0, out) -> None:
        """The application unmaps a page zerocopy_receive mapped (zap: the page tables' ref goes)."""
        self.outside_release(v, st0, out, MAPPING, R_MAP)

    def inherit_uarg(self, old: Sh, new: Sh, gets: list) -> None:
        """A shared info made from a zerocopy one points at the same ubuf_info (skb_zerocopy_clone())."""
        if old.uarg:
            new.uarg = old.uarg
            if self.uarg:
                gets.append(uarg_token(self.L.nb, old.uarg - 1))

    def leaks(self, v: tuple) -> bool:
        """At a state with nothing left to do: memory, a reference or an undelivered completion remains."""
        st = self.decode(v)
        if st.bind or st.ext:
            return True
        for b, x in enumerate(st.bufs):
            if not x.used:
                continue
            if any(x.alive) or any(x.pc) or x.oc or x.oalive or x.uc:
                return True
            if b < self.L.ninit and self.kinds[b] in COMPLETES and not x.done:
                return True
        return False

    # ---- the invariant as a state check ------------------------------------------------------------------
    def references(self, st: State) -> Counter:
        """Every reference the state's holders say they hold, per token: the holders', each shared info's (its frag
        refs, its owner set, its frag_list child's, its ubuf_info), each skb's (per-skb owners), each outside
        reference's, and the puts still to come."""
        L, ref = self.L, Counter()
        for b in range(L.ninit):
            kind, x = self.kinds[b], st.bufs[b]
            if not x.holder:
                continue
            if self.binding:
                ref.update([bind_token(L.nb)] if kind == DEVMEM else [])
            elif (self.page_mode and kind in (USER, PIPE, POOL)) or (not self.page_mode and kind == POOL):
                ref.update(1 + page_line(b, p) for p in range(PAGES))
            elif not (self.page_mode and kind == KMALLOC):
                ref[1 + owner_line(L.nb, b)] += 1
            if (self.binding or self.page_mode) and kind in COMPLETES:
                ref[uarg_token(L.nb, b)] += 1
        for sh in st.shs:
            ref.update(self.frag_refs(sh.own) + self.frag_refs(sh.child))
            ref.update(self.mask_tokens(sh.oheld) + self.mask_tokens(sh.loheld))
            for m in sh.members:
                ref.update(self.mask_tokens(m - 1))
            if self.uarg and sh.uarg:
                ref[uarg_token(L.nb, sh.uarg - 1)] += 1
        for _t, code in st.ext:
            ref.update(self.frag_lines(code))
        for op in st.ops:
            ref.update(op)
        return ref

    def invariant(self, v: tuple) -> str:
        """What of the owner's invariant state ``v`` breaks ("" if none): every shared info holds exactly the owners
        of its frags (its frag_list child's: the child's), every skb of a per-skb design the owners of its shared
        info's frags, dataref counts every skb, and every refcount equals the references its holders hold (a get
        left out shows as a count below them, a put left out as one above)."""
        st = self.decode(v)
        for sh in st.shs:
            if sh.lost:
                return "dataref: a clone took none"
            if self.per_shinfo and (sh.oheld != self.hmask(sh.own) or sh.loheld != self.hmask(sh.child)):
                return "a shared info's owner set is not its frags' owners"
            if self.skb_held and sh.nmem and any(m - 1 != self.hmask(sh.own) for m in sh.members):
                return "an skb's owner set is not its frags' owners"
        ref, L = self.references(st), self.L
        have = Counter({bind_token(L.nb): st.bind})
        for b, x in enumerate(st.bufs):
            for p in range(PAGES):
                have[1 + page_line(b, p)] = x.pc[p]
            have[1 + owner_line(L.nb, b)] = x.oc
            have[uarg_token(L.nb, b)] = x.uc
        for tok in sorted(set(ref) | set(have)):
            if ref[tok] != have[tok]:
                return f"token {tok}: refcount {have[tok]}, references {ref[tok]}"
        return ""

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
        res = Result.build(self, states, parent, label, depth, found, edges, terminals, complete)
        res.fallbacks = self.fallbacks
        return res


def multiset_gain(after: list[int], before: list[int]) -> list[int]:
    """Tokens in ``after`` beyond those in ``before`` (a multiset difference): the gets an operation needs, or,
    with the arguments swapped, the puts."""
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
    fallbacks: int = 0  # steps the owner array's bound refused or turned into a copy
    queue_peak: int = 0  # the compiled search's most states queued at once (the rows it keeps in full)

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
    """How many labelled states one canonical state stands for: skb ids, shared-info slots, CPUs and outside
    slots assigned in every way (identical records count once)."""
    L = ex.L
    st = ex.decode(v)
    nsk, nsh = ex.nskbs(st), len(st.shs)
    n = math.perm(L.s, nsk) * math.perm(L.s, nsh) * math.perm(L.c, ex.busy(st)) * math.perm(L.x, len(st.ext))
    # identical skbs of one shared info, identical shared infos, identical op records: one labelled state each
    for sh in st.shs:
        for _m, grp in itertools.groupby(sorted(sh.members)):
            n //= math.factorial(len(list(grp)))
        n //= math.factorial(sh.drops)  # the CPUs with a pending drop on it
    for _r, grp in itertools.groupby(sorted(sh.row(L.f, L.s) for sh in st.shs)):
        n //= math.factorial(len(list(grp)))  # identical shared infos (with their skbs and CPUs) swap as wholes
    for _o, grp in itertools.groupby(sorted(tuple(o) for o in st.ops)):
        n //= math.factorial(len(list(grp)))
    for _e, grp in itertools.groupby(sorted(st.ext)):
        n //= math.factorial(len(list(grp)))
    return n


# ---- the owner array: where a frag's owner lives ---------------------------------------------------------
#: x86-64: SMP_CACHE_BYTES (SKB_DATA_ALIGN() rounds skb_shared_info's allocation to it), pointer size
CACHE_LINE, POINTER = 64, 8
#: how a frag names its slot: a byte per frag in skb_shared_info, the fewest bits per frag packed there, or
#: spare bits of skb_frag_t itself (its 32-bit offset: a page-relative offset needs PAGE_SHIFT + MAX_PAGE_ORDER
#: = 22 bits on x86-64, so the top bits are free while frags stay inside one compound page)
INDEX_KINDS = ("byte", "packed", "frag")


def _align(n: int, a: int) -> int:
    return -(-n // a) * a


def index_bits(slots: int) -> int:
    """Bits a frag needs to name one of ``slots`` owners."""
    return max(1, math.ceil(math.log2(slots))) if slots > 1 else 0


def owner_array_bytes(shinfo: dict, slots: int, index: str = "byte") -> dict:
    """What an owner array of ``slots`` entries adds to ``struct skb_shared_info``, from its layout as BTF gives
    it (``{"size": .., "members": {"frags": {"size", "nelems"}, "destructor_arg": {...}}}``, the btf probe's
    record): slot 0 is today's ``destructor_arg`` (it holds one ``ubuf_info`` today), slots 1.. are new
    pointers, and each frag names its slot (``index``). The allocation is rounded to the cache line
    (SKB_DATA_ALIGN), so the array costs whole lines."""
    if index not in INDEX_KINDS:
        raise ValueError(f"index = {index!r} is not allowed: expected one of {', '.join(INDEX_KINDS)}")
    if not isinstance(slots, int) or slots < 1:
        raise ValueError(f"slots = {slots!r} is not allowed: expected an integer >= 1")
    size = int(shinfo["size"])
    members = shinfo["members"]
    nfrags = int(members["frags"]["nelems"])
    reuse = 1 if "destructor_arg" in members else 0
    pointers = POINTER * max(slots - reuse, 0)
    bits = index_bits(slots)
    idx = {"byte": nfrags if bits else 0, "packed": _align(nfrags * bits, 8) // 8, "frag": 0}[index]
    new = _align(size + pointers + idx, POINTER)
    today_alloc, new_alloc = _align(size, CACHE_LINE), _align(new, CACHE_LINE)
    return {"slots": slots, "index": index, "index_bits": bits, "max_skb_frags": nfrags,
            "shinfo_bytes": size, "shinfo_lines": today_alloc // CACHE_LINE,
            "slot_pointer_bytes": pointers, "index_bytes": idx, "new_shinfo_bytes": new,
            "new_shinfo_lines": new_alloc // CACHE_LINE, "added_bytes": new - size,
            "added_alloc_bytes": new_alloc - today_alloc, "reuses_destructor_arg": bool(reuse)}


def owner_array_fit(shinfo: dict, index: str = "byte") -> int:
    """The most slots that fit in the allocation the first new slot costs (one more cache line)."""
    first = owner_array_bytes(shinfo, 2, index)["new_shinfo_lines"]
    n = 2
    while owner_array_bytes(shinfo, n + 1, index)["new_shinfo_lines"] == first:
        n += 1
    return n


def owner_runs(nfrags: int, owners: int) -> list[int]:
    """The owner of each frag of an skb of ``nfrags`` frags from ``owners`` sends in turn (contiguous runs, as
    TCP appends a send's frags to the tail skb)."""
    if not 1 <= owners <= nfrags:
        raise ValueError(f"owners = {owners!r} is not allowed: expected 1..{nfrags}")
    return [q * owners // nfrags for q in range(nfrags)]


def owner_array_costs(nfrags: int, owners: int, *, frag_bytes: int = 4096, mss: int = 1448,
                      zerocopy: bool = False) -> list[dict]:
    """Refcount atomics per skb operation on an skb of ``nfrags`` frags of ``frag_bytes`` from ``owners`` distinct
    owners in runs (:func:`owner_runs`): today (a ref per frag reference, and with ``zerocopy`` the ``ubuf_info``
    once per shared info made) against the owner array (a ref per distinct owner per shared info, the explorer's
    rule; the owner replaces the ``ubuf_info``). Coalesce and shift move the skb's second half onto its first
    half as two skbs. Slot look-ups are compares on the shared info's own lines, no atomics; dataref's atomic
    (clone, free) is the same in both and not counted."""
    own = owner_runs(nfrags, owners)
    half = nfrags // 2
    u = 1 if zerocopy else 0

    def distinct(xs) -> int:
        return len(set(xs))

    total = nfrags * frag_bytes
    segs = [(s, min(s + mss, total)) for s in range(0, total, mss)]
    pieces = [[q for q in range(nfrags) if q * frag_bytes < e and (q + 1) * frag_bytes > s] for s, e in segs]
    head, tail = own[:half + 1], own[half:]  # a split inside the middle frag: both halves keep it
    a, b = own[:half], own[half:]  # two skbs: coalesce / shift b onto a
    m = len(b) // 2
    bhead, btail = b[:m + 1], b[m:]  # shift: the first half of b, cut inside its middle frag
    rows = [
        ("attach", "skb_fill_page_desc() of every frag", nfrags + u, owners),
        ("clone", "skb_clone(): dataref + 1 only", 0, 0),
        ("split", "skb_split() inside the middle frag", 1 + u, distinct(tail) + len(set(own) - set(head))),
        ("segment", f"skb_segment() into {len(segs)} segments of {mss} B",
         sum(len(p) for p in pieces) + u * len(segs), sum(distinct(own[q] for q in p) for p in pieces)),
        ("expand_head", "pskb_expand_head() of a clone", nfrags + u, owners),
        ("coalesce", "skb_try_coalesce() of the second half's skb (not cloned) into the first's", 0,
         len(set(b) - set(a)) + distinct(b)),
        ("shift", "skb_shift() of half the second skb onto the first, cut inside a frag", 1,
         len(set(bhead) - set(a)) + len(set(b) - set(btail))),
        ("trim_head", "__pskb_trim_head() of the first half (ACKed)", half, len(set(own[:half]) - set(own[half:]))),
        ("splice_bits", "a pipe buffer per frag: a get now, a put at pipe_buf_release()", 2 * nfrags, 2 * nfrags),
        ("free", "skb_release_data() at dataref 0", nfrags + u, owners),
    ]
    return [{"operation": op, "what": what, "today": t, "owner array": o} for op, what, t, o in rows]

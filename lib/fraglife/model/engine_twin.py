"""The pure-Python twin of the replay engine: the specification, written to be read.

Every rule of the model is stated here once, in plain Python; the numba
engine (:mod:`fraglife.model.engine`) must return the same ledger, field by
field, on every trace (tests/test_engine_differential.py checks this).

The model in one paragraph. Memory is buffers of pages grouped in folios;
a buffer's kind (``trace.MEM_*``) says whose rules its references follow.
Skbs point at a shared info (frags + ``dataref``). A frag holds references
on *lines* (refcounts, each a cache line) according to the policy: a folio's
``_refcount``, a page_pool page's ``pp_ref_count``, an owner, the shared
binding. Every event computes which frag holdings it adds, changes or
removes; the references it takes or drops are the difference between the
line sets after and before, merged per line. A non-batched policy pays one
atomic per reference unit (the kernel's ``get_page()``/``put_page()``
loops), a batched one pays one atomic per line with a non-zero net change
(``refcount_add(n)``). All gets of an event are applied before its puts.
Memory dies when the line that holds it reaches zero (a folio, a page_pool
page, an owner) or, under the shared binding, when its holder lets go;
dying pages that a live frag still covers are use-after-free.

Rules taken from the kernel (v6.18, the same in v6.12 unless noted), each applied below:

- MSG_ZEROCOPY (user memory): ``zerocopy_fill_skb_from_iter()``
  (net/core/datagram.c) gets one ref per page through ``iov_iter_get_pages2()``,
  one GUP call per skb pass, per iovec, per at most ``MAX_SKB_FRAGS - nr_frags``
  pages; an ATTACH or GROW event is the pages of one call inside one folio (the
  generators cut there). gup-fast (mm/gup.c) grabs each PTE-mapped page with
  ``try_grab_folio_fast()`` and then calls ``folio_set_referenced()``
  unconditionally: a locked ``set_bit()`` on the head page's flags (the same
  cache line as its ``_refcount``), so FOLL_GET costs two atomics per page
  (``gup_fast_pte_range()``), and a PMD-mapped THP two per leaf per call
  (``gup_fast_pmd_leaf()``). Pages of one compound page merge into one frag
  and the surplus goes back with one ``page_ref_sub()`` per merged run per
  call. A full skb takes no more (``frag == MAX_SKB_FRAGS``: -EMSGSIZE before
  any GUP), not even a merge.
- Per sendmsg (``tcp_sendmsg_locked()``, ``msg_zerocopy_realloc()``,
  ``msg_zerocopy_alloc()``, net/ipv4/tcp.c, net/core/skbuff.c):
  ``mm_account_pinned_pages()`` adds to ``user->locked_vm`` with a cmpxchg
  loop unless the sender has CAP_IPC_LOCK or an unlimited RLIMIT_MEMLOCK
  (``UARG_ACCOUNT``), and its first accounting of a ubuf_info takes
  ``get_uid()``; a new ubuf_info is a notification skb (``sock_omalloc()``:
  ``sk_omem_alloc``), takes an id (``atomic_inc_return(&sk->sk_zckey)``) and
  the socket (``sock_hold()``); its completion (``__msg_zerocopy_callback()``)
  gives the accounting back (``atomic_long_sub()``, ``free_uid()``), takes the
  error queue's lock, drops the socket, and the notification skb is freed
  (``sock_ofree()``). Devmem TX (v6.16) takes a binding ref per sendmsg
  (``net_devmem_get_binding()``: ``refcount_inc_not_zero()``, a cmpxchg loop)
  and drops it as the sendmsg returns (``UARG_DEVMEM``). Lines by offset in the
  running kernel's BTF: ``user_struct.__count`` @0 and ``locked_vm`` @88 (two
  lines); ``sock.sk_refcnt`` @128 with ``sk_error_queue.lock`` @164, ``sk_omem_alloc``
  @368, ``sk_zckey`` @496 (three lines).
- Deferred frees (``tcp_eat_recv_skb()`` -> ``skb_attempt_defer_free()``,
  net/ipv4/tcp.c, net/core/skbuff.c): a received skb the reader is done with
  is freed on the CPU that allocated it; the atomics the reader makes on that
  CPU's defer list (and the flush's) are given by the event (``FREE_*``
  flags), because they differ between v6.18 (lockless ``llist`` and an atomic
  count, per NUMA node) and v6.12 (a spinlock), see the workloads.
- page_pool: ``page_pool_alloc_frag_netmem()`` (net/core/page_pool.c) charges
  ``pp_ref_count`` once with a plain store and hands out slots with
  ``frag_users++``; ``page_pool_unref_netmem()``
  (include/net/page_pool/helpers.h) only reads the count when the caller holds
  all that is left (the last user, or a drain after every user is gone) and
  pays ``atomic_long_sub_return()`` otherwise. A page given whole has a count
  of one, so its only put is a read.
- Pipe pages: one ref per page-sized ``pipe_buffer`` (``splice_folio_into_pipe()``,
  fs/splice.c), released one by one (``pipe_buf_release()``), as soon as the
  sendmsg that sent them returns (``splice_to_socket()``: one sendmsg per 16
  buffers), so a pipe may let go of part of its pages.
- ubuf_info: one ref per shared info (``skb_zcopy_set()``,
  ``skb_zerocopy_clone()``, net/core/skbuff.c) and one per ``sendmsg`` while it
  runs (``msg_zerocopy_realloc()``; ``net_zcopy_put()`` in
  ``tcp_sendmsg_locked()``); the first is a plain store (``msg_zerocopy_alloc()``).
- devmem: a frag ref is a ref on the dma-buf binding (``get_netmem()`` ->
  ``net_devmem_get_net_iov()``, net/core/devmem.c, v6.16 to v6.19). The
  ``skbuff_ref.h`` whose ``__skb_frag_ref()`` returns early for net_iov frags is
  a prototype in a fork, proposed in review of the get_netmem patch
  (``<Z22pVRcr-B624UcG@mini-arch>``), not upstream.
- FOLL_PIN sets PG_referenced too: three atomics per page (per PMD leaf per call).
- Slab memory (kmalloc'd objects up to ``KMALLOC_MAX_CACHE_SIZE``): ``sendpage_ok()`` is false for a
  ``PageSlab`` page (include/linux/net.h), so ``skb_splice_from_iter()`` WARNs and fails with -EIO
  before adding the frag (net/core/skbuff.c; its kernel-doc says it copies, the code does not): today's
  designs refuse the ATTACH. The holder's ``kfree()`` frees it, no refcount involved. Under the owner
  designs the frags hold the send's owner, whose destructor kfree()s it.
- page_frag memory: ``__page_frag_alloc_align()`` (mm/page_alloc.c) refills with one compound page,
  charges ``PAGE_FRAG_CACHE_MAX_SIZE`` refs and keeps ``pagecnt_bias`` = that + 1; a fragment handed out
  is ``pagecnt_bias--`` (no atomic); its user drops it with ``page_frag_free()`` (one put); when the page
  is used up the cache subtracts its remaining bias in one ``page_ref_sub_and_test()``. Frags spliced
  from it take ``get_page()`` each (``skb_append_pagefrags()``). The page's refcount is its owner in
  every design, as ``pp_ref_count`` is for page_pool pages.
- Whole pages a sender allocated (``alloc_pages()``, or ``kmalloc()`` above ``KMALLOC_MAX_CACHE_SIZE``,
  which is a compound page, mm/slub.c ``___kmalloc_large_node()``): the sender holds one ref per
  folio and puts it after ``sendmsg()``; frags ``get_page()``. Under the owner designs the owner's
  destructor puts the folios.
- FOLL_PIN (the owner designs): ``pin_user_pages_fast()`` pins in the fast path,
  where ``try_grab_folio_fast()`` takes a ref with ``try_get_folio()`` and then adds
  ``GUP_PIN_COUNTING_BIAS - 1`` to a small folio's refcount or one to a large
  folio's ``_pincount``: two atomics per page (per PMD for a PMD-mapped THP), where
  FOLL_GET takes one; ``unpin_user_pages()`` drops consecutive pages of one folio
  together (``gup_folio_next()``), one atomic per run on a small folio, two on a
  large one (``gup_put_folio()``, mm/gup.c).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from . import trace as T
from .ledger import SCALARS, Ledger
from .policies import (OWNER_BINDING, OWNER_SHINFO, OWNER_SKB, PAGE_FIRST,
                       PAGE_NONE, Policy)

PAGE = T.PAGE_SIZE
FOLIO, PINCOUNT, OWNER, UARG, BINDING, DATAREF, HOLDER = "folio", "pincount", "owner", "uarg", "binding", "dataref", \
    "holder"
# Lines with no refcount the model keeps, only atomics: the sending user's, the socket's, each CPU's defer list.
USER, SOCK, DEFER = "user", "sock", "defer"
USER_COUNT, USER_LOCKED_VM = 0, 1  # user_struct.__count (@0), .locked_vm (@88): two cache lines
SOCK_REF, SOCK_OMEM, SOCK_ZCKEY = 0, 1, 2  # sk_refcnt + sk_error_queue.lock (@128, @164), sk_omem_alloc (@368),
                                           # sk_zckey (@496): three cache lines of struct sock
REF_KINDS = ("page_atomics", "pp_atomics", "owner_atomics", "pin_atomics")
# memory whose own page count owns it in every design: page_pool pages, page_frag_cache pages
OWN_FOLIO_KINDS = (*T.POOL_KINDS, T.MEM_PAGE_FRAG)


@dataclass
class Frag:
    pfn: int  # the page the frag was created with; stays put as off grows
    off: int
    len: int
    buf: int
    uarg: int = -1  # the zerocopy notification of the send that attached it

    def pages(self) -> range:
        """The pages the frag's bytes actually cover."""
        return range(self.pfn + self.off // PAGE, self.pfn + (self.off + self.len - 1) // PAGE + 1)


@dataclass
class SharedInfo:
    slot: int
    dataref: int = 1
    frags: list[Frag] = field(default_factory=list)
    uarg: int = -1


@dataclass
class Skb:
    shinfo: SharedInfo
    cloned: bool = False


@dataclass
class Buffer:
    pfn: int
    pages: int
    folio_pages: int
    kind: int
    holder: bool = True  # the holder (mapping, pipe, pool, binding user) has not let go yet
    bias: int = 0  # page_pool: pp_ref_count the pool still holds for slots not handed out
    pipe_held: set[int] = field(default_factory=set)  # pipe memory: the pages whose pipe buffers are not released

    def heads(self) -> list[int]:
        return list(range(self.pfn, self.pfn + self.pages, self.folio_pages))

    def folio_span(self, h: int) -> range:
        return range(h, min(h + self.folio_pages, self.pfn + self.pages))


class Replay:
    """Replays a trace under a policy. Use :func:`replay`."""

    def __init__(self, policy: Policy, *, n_pfn: int, n_buf: int, n_uarg: int, max_frags: int = T.MAX_SKB_FRAGS,
                 n_cpu: int = 1, **_):
        self.p = policy
        self.page_design = policy.page_mode != PAGE_NONE
        self.binding = policy.owner_mode == OWNER_BINDING
        self.max_frags = max_frags
        self.n_pfn, self.n_buf, self.n_uarg, self.n_cpu = n_pfn, n_buf, n_uarg, n_cpu
        self.c = Counter()  # ledger scalars
        self.by_op = Counter()
        # memory
        self.alive: dict[int, bool] = {}  # pfn -> allocated
        self.head: dict[int, int] = {}  # pfn -> folio head pfn
        self.page_buf: dict[int, int] = {}
        self.ptrs: Counter = Counter()  # pfn -> live frags covering it
        self.pinned: Counter = Counter()  # pfn -> pins held on it
        self.buffers: dict[int, Buffer] = {}
        self.pages_alive = 0
        # refcounts by line: (FOLIO, head), (OWNER, buf), (UARG, u), (BINDING, 0)
        self.count: Counter = Counter()
        self.uarg_active: dict[int, bool] = {}
        self.uarg_acct: dict[int, bool] = {}  # mm_account_pinned_pages() accounted it (mmp.user is set)
        self.uarg_ptrs: Counter = Counter()
        self.pinsets: dict[tuple, list[tuple[int, list[int]]]] = {}  # pin owner -> pinned runs, in order
        # skbs
        self.skbs: dict[int, Skb] = {}
        self.free_slots: list[int] = []  # LIFO, like a slab freelist
        self.next_slot = 0
        # cache lines: id -> CPU that last wrote it
        self.last_cpu: dict[tuple, int] = {}
        self.written: set[tuple] = set()

    # ---- cache lines -------------------------------------------------------
    def init_line(self, line: tuple, cpu: int) -> None:
        self.last_cpu[line] = cpu  # a plain store by the allocating CPU

    def atomic(self, line: tuple, cpu: int, kind: str, op: int) -> None:
        """One atomic read-modify-write on ``line`` by ``cpu``, counted under ``kind``."""
        self.c["atomics"] += 1
        self.c[kind] += 1
        if kind in REF_KINDS:
            self.c["ref_atomics"] += 1
            self.by_op[op] += 1
        if line not in self.written:
            self.written.add(line)
            self.c["lines"] += 1
        if self.last_cpu.get(line, cpu) != cpu:
            self.c["bounces"] += 1
            if kind == "cmpxchg_atomics":
                self.c["cmpxchg_bounces"] += 1
        self.last_cpu[line] = cpu

    def line_kind(self, line: tuple) -> str:
        """Which ledger field an atomic on ``line`` counts under."""
        if line[0] == FOLIO:
            return "pp_atomics" if self.is_pool(line) else "page_atomics"
        if line[0] == UARG:
            return "uarg_atomics" if self.p.uarg else "owner_atomics"
        return "owner_atomics"

    def is_pool(self, line: tuple) -> bool:
        return line[0] == FOLIO and self.buffers[self.page_buf[line[1]]].kind in T.POOL_KINDS

    # ---- which lines a frag holds ------------------------------------------
    def frag_lines(self, f: Frag) -> list[tuple]:
        """The lines one frag reference is counted on, before the policy's mode applies."""
        b = self.buffers[f.buf]
        if self.binding:
            return [(BINDING, 0)]
        if b.kind in OWN_FOLIO_KINDS:  # pp_ref_count, a page_frag page's biased count: its own owner
            return [(FOLIO, self.head[f.pfn])]
        if self.page_design:
            if b.kind == T.MEM_DEVMEM:  # today's devmem frag ref: the dma-buf's binding
                return [(OWNER, f.buf)]
            if self.p.page_mode == PAGE_FIRST:
                return [(FOLIO, self.head[f.pfn])]
            return list(dict.fromkeys((FOLIO, self.head[q]) for q in f.pages()))
        if f.uarg >= 0:  # a zerocopy send's owner replaces its ubuf_info
            return [(UARG, f.uarg)]
        return [(OWNER, f.buf)]

    def refset(self, f: Frag) -> list[tuple]:
        """What one frag holds by itself (per-shared-info owners are counted by owner_terms())."""
        if self.p.owner_mode in (OWNER_SHINFO, OWNER_SKB):
            return []
        return self.frag_lines(f)

    def owner_terms(self, frags: list[Frag]) -> list[tuple]:
        """Per-shared-info owners: one reference per distinct line among ``frags``."""
        if self.p.owner_mode not in (OWNER_SHINFO, OWNER_SKB):
            return []
        return list(dict.fromkeys(line for f in frags for line in self.frag_lines(f)))

    def pin_owner(self, f: Frag) -> tuple:
        if f.uarg >= 0:
            return (UARG, f.uarg)
        return (HOLDER, f.buf) if self.binding else (OWNER, f.buf)

    # ---- applying reference changes ----------------------------------------
    def apply(self, delta: Counter, cpu: int, op: int) -> None:
        """Execute an event's net reference changes: gets first, then puts."""
        items = [(k, v) for k, v in delta.items() if v]
        for line, units in [kv for kv in items if kv[1] > 0] + [kv for kv in items if kv[1] < 0]:
            self.change(line, units, cpu, op)

    def line_alive(self, line: tuple) -> bool:
        kind, ident = line
        if kind == FOLIO:
            return self.alive.get(ident, False)
        if kind == UARG:
            return self.uarg_active.get(ident, False)
        if kind == OWNER:
            return self.count[line] > 0
        return True  # the binding outlives the trace

    def change(self, line: tuple, units: int, cpu: int, op: int, *, silent: bool = False) -> None:
        """Add ``units`` to the refcount on ``line``; ``silent`` changes are bookkeeping with no atomic."""
        kind = self.line_kind(line)
        cur = self.count[line]
        counted = kind != "uarg_atomics"
        if units > 0:
            if not silent:
                for _ in range(1 if self.p.batch else units):
                    self.atomic(line, cpu, kind, op)
            if not self.line_alive(line):
                self.c["bad_refs"] += 1
            self.count[line] = cur + units
            if counted:
                self.c["refs_taken"] += units
            return
        k = -units
        if silent:
            pass
        elif self.is_pool(line):  # page_pool_unref_netmem(nr): a read when nr is all that is left
            puts = [k] if self.p.batch else [1] * k
            left = cur
            for nr in puts:
                if left == nr:
                    self.c["pp_reads"] += 1
                else:
                    self.atomic(line, cpu, kind, op)
                left -= nr
        else:
            for _ in range(1 if self.p.batch else k):
                self.atomic(line, cpu, kind, op)
        if counted:
            self.c["refs_dropped"] += k
        if cur < k:
            self.c["bad_refs"] += 1
            self.count[line] = 0
            return
        self.count[line] = cur - k
        if cur - k == 0 and cur > 0:
            self.dies(line, cpu, op)

    def dies(self, line: tuple, cpu: int, op: int) -> None:
        """The last reference on ``line`` is gone: what it kept alive goes."""
        kind, ident = line
        if kind == FOLIO:
            b = self.buffers[self.page_buf[ident]]
            self.free_pages(b.folio_span(ident))
        elif kind == OWNER:
            b = self.buffers[ident]
            if b.kind == T.MEM_PIPE:  # the owner's release hands the pipe's pages back, one put per page
                for h in b.heads():
                    for _ in b.folio_span(h):
                        self.atomic((FOLIO, h), cpu, "page_atomics", op)
            elif b.kind == T.MEM_PAGES:  # the destructor puts the sender's folios
                for h in b.heads():
                    self.atomic((FOLIO, h), cpu, "page_atomics", op)
            self.unpin(line, cpu, op)
            self.free_pages([q for q in range(b.pfn, b.pfn + b.pages) if self.pinned[q] == 0])
        elif kind == UARG:
            self.c["completions"] += 1
            self.uarg_active[ident] = False
            self.unpin(line, cpu, op)
            self.notify(ident, cpu, op)

    def notify(self, u: int, cpu: int, op: int) -> None:
        """__msg_zerocopy_callback(): the accounting goes back, the notification is queued on the error queue and
        its skb freed (now if it merged into the queue's tail, else when read: sock_ofree() either way), and
        the socket is dropped."""
        if self.uarg_acct.pop(u, False):  # mm_unaccount_pinned_pages()
            self.atomic((USER, USER_LOCKED_VM), cpu, "notif_atomics", op)  # atomic_long_sub()
            self.atomic((USER, USER_COUNT), cpu, "cmpxchg_atomics", op)  # free_uid(): refcount_dec_and_lock()
        self.atomic((SOCK, SOCK_REF), cpu, "notif_atomics", op)  # spin_lock_irqsave(&sk_error_queue.lock)
        self.atomic((SOCK, SOCK_OMEM), cpu, "notif_atomics", op)  # sock_ofree()
        self.atomic((SOCK, SOCK_REF), cpu, "notif_atomics", op)  # sock_put()

    def frag_free(self, b: Buffer, n: int, cpu: int, op: int) -> bool:
        """``n`` users page_frag_free() their fragments: each came out of the cache's pagecnt_bias (no
        atomic) and is one put now (the binding keeps no page counts, only the put is paid)."""
        for _ in range(n):
            if self.binding:
                self.atomic((FOLIO, b.pfn), cpu, "page_atomics", op)
                continue
            if b.bias > 0:
                b.bias -= 1
            self.change((FOLIO, b.pfn), -1, cpu, op)
        return True

    def held(self, buf: int) -> bool:
        """Whether anything but pins keeps user buffer ``buf`` (owner and binding designs)."""
        return self.buffers[buf].holder if self.binding else self.count[(OWNER, buf)] > 0

    # ---- pins (owner and binding designs, user memory) ----------------------
    def runs(self, f: Frag) -> list[tuple[int, list[int]]]:
        """The frag's pages grouped by folio, in order: (head, pages)."""
        out: list[tuple[int, list[int]]] = []
        for q in f.pages():
            h = self.head[q]
            if out and out[-1][0] == h:
                out[-1][1].append(q)
            else:
                out.append((h, [q]))
        return out

    def pin(self, f: Frag, cpu: int, op: int) -> None:
        """pin_user_pages() on the frag's pages; the pin owner keeps them until it is released."""
        b = self.buffers[f.buf]
        for h, qs in self.runs(f):
            calls = 1 if b.folio_pages >= T.PMD_PAGES else len(qs)
            for _ in range(calls):  # try_get_folio(), the bias (small folio) or _pincount (large), PG_referenced
                self.atomic((FOLIO, h), cpu, "pin_atomics", op)
                self.atomic((PINCOUNT, h) if b.folio_pages > 1 else (FOLIO, h), cpu, "pin_atomics", op)
                self.atomic((FOLIO, h), cpu, "flag_atomics", op)
            for q in qs:
                self.pinned[q] += 1
            self.pinsets.setdefault(self.pin_owner(f), []).append((h, qs))

    def unpin(self, owner: tuple, cpu: int, op: int) -> None:
        """unpin_user_pages() over the owner's pins: one release per run of one folio."""
        prev = None
        orphans = []
        for h, qs in self.pinsets.pop(owner, []):
            if h != prev:
                self.atomic((FOLIO, h), cpu, "pin_atomics", op)
                if self.buffers[self.page_buf[h]].folio_pages > 1:
                    self.atomic((PINCOUNT, h), cpu, "pin_atomics", op)
            prev = h
            for q in qs:
                self.pinned[q] -= 1
                if self.pinned[q] == 0 and self.alive.get(q, False) and not self.held(self.page_buf[q]):
                    orphans.append(q)
        self.free_pages(orphans)

    def gup(self, f: Frag, cpu: int, op: int) -> None:
        """One GUP call's pages of the frag (iov_iter_get_pages2() -> gup-fast): a ref and PG_referenced per
        PTE-mapped page, or per PMD leaf; then the merged surplus goes back in one page_ref_sub()."""
        b = self.buffers[f.buf]
        held = Counter(self.refset(f))
        for h, qs in self.runs(f):
            line = (FOLIO, h)
            gets = 1 if b.folio_pages >= T.PMD_PAGES else len(qs)
            give_back = 1 if len(qs) > held[line] else 0
            for _ in range(gets + give_back - held[line]):  # the held ref itself is charged by apply()
                self.atomic(line, cpu, "page_atomics", op)
            for _ in range(gets):  # folio_set_referenced(): set_bit() on the head page's flags, every time
                self.atomic(line, cpu, "flag_atomics", op)

    # ---- memory -------------------------------------------------------------
    def free_pages(self, pages) -> None:
        hit = False
        for q in pages:
            if not self.alive.get(q, False):
                continue
            self.alive[q] = False
            self.pages_alive -= 1
            if self.ptrs[q] > 0:
                self.c["uaf_pages"] += 1
                hit = True
        if hit:
            self.c["uaf_frees"] += 1

    def point(self, f: Frag, sign: int) -> None:
        """A frag starts (+1) or stops (-1) covering its pages."""
        for q in f.pages():
            self.ptrs[q] += sign
        if f.uarg >= 0:
            self.uarg_ptrs[f.uarg] += sign

    def frag_ok(self, f: Frag) -> bool:
        b = self.buffers.get(f.buf)
        if b is None or f.len <= 0 or f.off < 0 or f.pfn < b.pfn:
            return False
        return all(b.pfn <= q < b.pfn + b.pages and self.alive.get(q, False) for q in f.pages())

    def buffer_alive(self, buf: int) -> bool:
        b = self.buffers[buf]
        return any(self.alive.get(q, False) and self.page_buf.get(q) == buf for q in range(b.pfn, b.pfn + b.pages))

    # ---- shared infos ------------------------------------------------------
    def new_shinfo(self, cpu: int) -> SharedInfo:
        slot = self.free_slots.pop() if self.free_slots else self._fresh_slot()
        self.init_line((DATAREF, slot), cpu)
        return SharedInfo(slot)

    def _fresh_slot(self) -> int:
        self.next_slot += 1
        return self.next_slot - 1

    def dataref(self, sh: SharedInfo, units: int, cpu: int) -> None:
        sh.dataref += units
        self.atomic((DATAREF, sh.slot), cpu, "dataref_atomics", -1)

    def inherit_uarg(self, old: SharedInfo, new: SharedInfo, delta: Counter) -> None:
        """A shared info made from a zerocopy one points at the same ubuf_info (skb_zerocopy_clone())."""
        if old.uarg >= 0:
            new.uarg = old.uarg
            if self.p.uarg:
                delta[(UARG, old.uarg)] += 1

    def release_shinfo(self, sh: SharedInfo, delta: Counter) -> None:
        """dataref reached zero: drop every frag's references (skb_release_data)."""
        for f in sh.frags:
            self.point(f, -1)
            delta.subtract(self.refset(f))
        delta.subtract(self.owner_terms(sh.frags))
        if sh.uarg >= 0 and self.p.uarg:
            delta[(UARG, sh.uarg)] -= 1
        sh.frags = []
        sh.dataref = 0
        self.free_slots.append(sh.slot)

    def total(self, sh: SharedInfo) -> int:
        return sum(f.len for f in sh.frags)

    # ---- events: one method per trace op, named after it (engine.py compiles each under the same name) --
    def run(self, trace) -> Ledger:
        for ev in trace:
            self.c["events"] += 1
            if not self.step(*(int(ev[k]) for k in T.EVENT.names)):
                self.c["trace_errors"] += 1
        return self.finish()

    def step(self, op, kind, cpu, skb, other, buf, pfn, off, length) -> bool:
        """One event: its method collects the reference changes it makes in ``self.delta`` (or returns False,
        having changed nothing, if the event does not fit the state); then they are applied."""
        self.delta = Counter()
        if op == T.ALLOC:
            ok = self.alloc(cpu, buf, pfn, length, off, kind)
        elif op == T.SKB_ALLOC:
            ok = self.skb_alloc(cpu, skb)
        elif op == T.ATTACH:
            ok = self.attach(cpu, skb, buf, pfn, off, length, other)
        elif op == T.CLONE:
            ok = self.clone(cpu, skb, other)
        elif op == T.SPLIT:
            ok = self.split(cpu, skb, other, length)
        elif op == T.SEGMENT:
            ok = self.segment(cpu, skb, other, off, length)
        elif op == T.EXPAND_HEAD:
            ok = self.expand_head(cpu, skb)
        elif op == T.COALESCE:
            ok = self.coalesce(cpu, skb, other)
        elif op == T.PULL:
            ok = self.pull(cpu, skb, length)
        elif op == T.ZC_COMPLETE:
            ok = self.zc_complete(cpu, other)
        elif op == T.FREE:
            ok = self.free(cpu, skb, kind, other, length)
        elif op == T.BUF_RELEASE:
            ok = self.buf_release(cpu, buf, length, pfn)
        elif op == T.UARG_GET:
            ok = self.uarg_get(cpu, other, kind, buf)
        elif op == T.UARG_PUT:
            ok = self.uarg_put(cpu, other, kind, buf)
        elif op == T.GROW:
            ok = self.grow(cpu, skb, buf, length, other)
        else:
            ok = False
        self.apply(self.delta, cpu, op)
        return ok

    def alloc(self, cpu, buf, pfn, pages, fp, kind) -> bool:
        """A buffer appears: its pages, and what holds them under the policy."""
        if (pages <= 0 or fp <= 0 or pfn < 0 or pfn + pages > self.n_pfn or buf < 0 or kind >= T.N_KINDS
                or (kind in OWN_FOLIO_KINDS and pages != fp)):
            return False
        old = self.buffers.get(buf)
        if old is not None and (old.holder or self.buffer_alive(buf)):
            return False
        if any(self.alive.get(q, False) for q in range(pfn, pfn + pages)):
            return False
        b = Buffer(pfn, pages, fp, kind)
        self.buffers[buf] = b
        for q in range(pfn, pfn + pages):
            self.alive[q] = True
            self.head[q] = pfn + (q - pfn) // fp * fp
            self.page_buf[q] = buf
        if kind == T.MEM_PIPE:
            b.pipe_held = set(range(pfn, pfn + pages))
        self.pages_alive += pages
        self.c["pages_peak"] = max(self.c["pages_peak"], self.pages_alive)
        self.count[(OWNER, buf)] = 0
        if self.binding:
            return True  # memory lives until its holder lets go
        if kind in T.POOL_KINDS:  # page_pool_fragment_netmem(): one plain store
            b.bias = 1 if kind == T.MEM_POOL_PAGE else T.POOL_BIAS
            self.count[(FOLIO, pfn)] = b.bias
            self.init_line((FOLIO, pfn), cpu)
        elif kind == T.MEM_PAGE_FRAG:  # the refill's page_ref_add(): the cache holds pagecnt_bias
            b.bias = T.FRAG_BIAS
            self.count[(FOLIO, pfn)] = b.bias
            self.init_line((FOLIO, pfn), cpu)
        elif kind == T.MEM_DEVMEM or not self.page_design:
            self.count[(OWNER, buf)] = 1
            self.init_line((OWNER, buf), cpu)
        elif kind == T.MEM_SLAB:
            pass  # a slab object has no refcount to hold: it lives until kfree()
        else:  # the mapping's ref per folio, the allocator's per folio; the pipe's per page
            for h in b.heads():
                self.count[(FOLIO, h)] = len(b.folio_span(h)) if kind == T.MEM_PIPE else 1
                self.init_line((FOLIO, h), cpu)
        return True

    def skb_alloc(self, cpu, skb) -> bool:
        """A new skb with a shared info of its own."""
        if skb < 0 or skb in self.skbs:
            return False
        self.skbs[skb] = Skb(self.new_shinfo(cpu))
        return True

    def attach(self, cpu, skb, buf, pfn, off, length, u) -> bool:
        """skb_fill_page_desc() and the frag's reference (for user memory, GUP refs or pins its pages)."""
        delta = self.delta
        s = self.skbs.get(skb)
        f = Frag(pfn, off, length, buf, u)
        if s is None or s.shinfo.dataref != 1 or len(s.shinfo.frags) >= self.max_frags or not self.frag_ok(f):
            return False
        sh = s.shinfo
        if u >= 0 and (u >= self.n_uarg or not self.uarg_active.get(u, False)):
            return False
        if u >= 0 and sh.uarg >= 0 and sh.uarg != u:
            return False  # an skb points at one uarg (skb_zerocopy_iter_stream: -EEXIST)
        b = self.buffers[buf]
        if b.kind == T.MEM_SLAB and self.page_design:
            return False  # skb_splice_from_iter(): WARN_ON_ONCE(!sendpage_ok(page)), -EIO
        delta.subtract(self.owner_terms(sh.frags))
        sh.frags.append(f)
        self.point(f, +1)
        if b.kind == T.MEM_USER:
            if self.page_design:
                self.gup(f, cpu, T.ATTACH)
            else:
                self.pin(f, cpu, T.ATTACH)
        delta.update(self.refset(f))
        delta.update(self.owner_terms(sh.frags))
        if b.kind in T.POOL_KINDS and not self.binding and b.bias > 0:
            b.bias -= 1  # frag_users++: the slot's ref comes out of the pool's bias
            delta[(FOLIO, self.head[f.pfn])] -= 1
        if u >= 0 and sh.uarg < 0:
            sh.uarg = u
            if self.p.uarg:
                delta[(UARG, u)] += 1
        return True

    def grow(self, cpu, skb, buf, length, uarg) -> bool:
        """The last frag takes in the next ``length`` bytes of its folio: one GUP call's pages, merged
        (zerocopy_fill_skb_from_iter(), which refuses an skb that has all its frags before any GUP)."""
        s = self.skbs.get(skb)
        if (s is None or s.shinfo.dataref != 1 or not s.shinfo.frags or length <= 0
                or len(s.shinfo.frags) >= self.max_frags):
            return False
        f = s.shinfo.frags[-1]
        g = Frag(f.pfn, f.off, f.len + length, f.buf, f.uarg)
        if buf != f.buf or uarg != f.uarg or not self.frag_ok(g):
            return False
        # the pages the new bytes are on (GUP refs or pins each of them, even one the frag already covers)
        new = Frag(f.pfn, f.off + f.len, length, buf, f.uarg).pages()
        last = self.head[f.pfn + (f.off + f.len - 1) // PAGE]
        if any(self.head[q] != last for q in new):
            return False  # only bytes of the same folio merge into the last frag
        self.point(f, -1)
        self.point(g, +1)
        s.shinfo.frags[-1] = g
        b = self.buffers[buf]
        if b.kind == T.MEM_USER:
            if self.page_design:  # GUP refs (and marks) the new pages; the refs go back in one page_ref_sub()
                gets = 1 if b.folio_pages >= T.PMD_PAGES else len(new)
                for _ in range(gets + 1):
                    self.atomic((FOLIO, last), cpu, "page_atomics", T.GROW)
                for _ in range(gets):
                    self.atomic((FOLIO, last), cpu, "flag_atomics", T.GROW)
            else:
                self.pin(Frag(new[0], 0, len(new) * PAGE, buf, f.uarg), cpu, T.GROW)
        return True

    def clone(self, cpu, new, src) -> bool:
        """skb_clone(): ``new`` shares ``src``'s shared info, one more dataref."""
        s = self.skbs.get(src)
        if s is None or new < 0 or new in self.skbs or new == src:
            return False
        sh = s.shinfo
        self.dataref(sh, +1, cpu)
        self.skbs[new] = Skb(sh, cloned=True)
        s.cloned = True
        if self.p.owner_mode == OWNER_SKB:
            self.delta.update(self.owner_terms(sh.frags))
        return True

    def split(self, cpu, skb, new, keep) -> bool:
        """skb_split() (tcp_fragment()): ``skb`` keeps its first ``keep`` bytes, ``new`` gets the rest."""
        delta = self.delta
        s = self.skbs.get(skb)
        if s is None or new < 0 or new in self.skbs or new == skb or s.shinfo.dataref != 1:
            return False
        sh = s.shinfo
        if not 0 < keep < self.total(sh):
            return False
        before = list(sh.frags)
        rest = self.new_shinfo(cpu)
        stay: list[Frag] = []
        pos = 0
        for f in before:
            if pos + f.len <= keep:
                stay.append(f)
            elif pos >= keep:
                rest.frags.append(f)  # moved with its references
            else:  # straddles the split point: both halves hold references
                head_part = Frag(f.pfn, f.off, keep - pos, f.buf, f.uarg)
                tail_part = Frag(f.pfn, f.off + keep - pos, f.len - (keep - pos), f.buf, f.uarg)
                self.point(f, -1)
                self.point(head_part, +1)
                self.point(tail_part, +1)
                delta.subtract(self.refset(f))
                delta.update(self.refset(head_part))
                delta.update(self.refset(tail_part))
                stay.append(head_part)
                rest.frags.append(tail_part)
            pos += f.len
        sh.frags = stay
        delta.subtract(self.owner_terms(before))
        delta.update(self.owner_terms(stay))
        delta.update(self.owner_terms(rest.frags))
        self.inherit_uarg(sh, rest, delta)
        self.skbs[new] = Skb(rest)
        return True

    def segment(self, cpu, new, src, start, length) -> bool:
        """skb_segment(), __pskb_copy(): ``new`` gets bytes [start, start + length) of ``src``'s frags, each
        piece with a reference of its own."""
        delta = self.delta
        s = self.skbs.get(src)
        if s is None or new < 0 or new in self.skbs or new == src:
            return False
        end = start + length
        if start < 0 or length <= 0 or end > self.total(s.shinfo):
            return False
        pieces = []
        pos = 0
        for f in s.shinfo.frags:
            lo, hi = max(start, pos), min(end, pos + f.len)
            if lo < hi:
                pieces.append(Frag(f.pfn, f.off + lo - pos, hi - lo, f.buf, f.uarg))
            pos += f.len
        if len(pieces) > self.max_frags:
            return False
        sh = self.new_shinfo(cpu)
        for f in pieces:
            sh.frags.append(f)
            self.point(f, +1)
            delta.update(self.refset(f))
        delta.update(self.owner_terms(sh.frags))
        self.inherit_uarg(s.shinfo, sh, delta)
        self.skbs[new] = Skb(sh)
        return True

    def expand_head(self, cpu, skb) -> bool:
        """pskb_expand_head() (skb_unclone()): a private head; a shared shared info is copied, frag refs and
        all."""
        delta = self.delta
        s = self.skbs.get(skb)
        if s is None:
            return False
        old = s.shinfo
        if old.dataref > 1:  # skb_cloned(): frags are shared, so the new head refs them all
            new = self.new_shinfo(cpu)
            for f in old.frags:
                g = Frag(f.pfn, f.off, f.len, f.buf, f.uarg)
                new.frags.append(g)
                self.point(g, +1)
                delta.update(self.refset(g))
            delta.update(self.owner_terms(new.frags))
            if self.p.owner_mode == OWNER_SKB:
                delta.subtract(self.owner_terms(old.frags))  # this skb's ref moves over
            self.inherit_uarg(old, new, delta)
            self.dataref(old, -1, cpu)
            s.shinfo = new
        s.cloned = False
        return True

    def coalesce(self, cpu, dst, src) -> bool:
        """skb_try_coalesce(), skb_gro_receive(): ``src``'s frags are appended to ``dst``."""
        delta = self.delta
        d, s = self.skbs.get(dst), self.skbs.get(src)
        if d is None or s is None or dst == src:
            return False
        dsh, ssh = d.shinfo, s.shinfo
        if dsh.dataref != 1 or dsh.uarg >= 0 or ssh.uarg >= 0:
            return False  # skb_try_coalesce refuses cloned targets and zerocopy skbs
        if len(dsh.frags) + len(ssh.frags) > self.max_frags:
            return False
        delta.subtract(self.owner_terms(dsh.frags))
        if ssh.dataref > 1:  # from is cloned: the copies need their own references
            for f in ssh.frags:
                g = Frag(f.pfn, f.off, f.len, f.buf, f.uarg)
                dsh.frags.append(g)
                self.point(g, +1)
                delta.update(self.refset(g))
        else:  # frags (and their references) move; from is left empty
            delta.subtract(self.owner_terms(ssh.frags))
            dsh.frags.extend(ssh.frags)
            ssh.frags = []
        delta.update(self.owner_terms(dsh.frags))
        return True

    def pull(self, cpu, skb, length) -> bool:
        """__pskb_trim_head() (tcp_trim_head()): the first ``length`` bytes of the frags go."""
        delta = self.delta
        s = self.skbs.get(skb)
        if s is None or s.shinfo.dataref != 1 or not 0 < length <= self.total(s.shinfo):
            return False
        sh = s.shinfo
        before = list(sh.frags)
        eat, kept = length, []
        for f in before:
            if f.len <= eat:
                eat -= f.len
                self.point(f, -1)
                delta.subtract(self.refset(f))
            elif eat:
                g = Frag(f.pfn, f.off + eat, f.len - eat, f.buf, f.uarg)
                self.point(f, -1)
                self.point(g, +1)
                delta.subtract(self.refset(f))
                delta.update(self.refset(g))
                kept.append(g)
                eat = 0
            else:
                kept.append(f)
        sh.frags = kept
        delta.subtract(self.owner_terms(before))
        delta.update(self.owner_terms(kept))
        return True

    def zc_complete(self, cpu, uarg) -> bool:
        """The user reads a zerocopy completion (MSG_ERRQUEUE): early if frags still point at the send."""
        if uarg < 0 or uarg >= self.n_uarg:
            return False
        if self.uarg_ptrs[uarg] > 0:
            self.c["early_complete"] += 1
        return True

    def free(self, cpu, skb, flags=0, other=-1, atomics=0) -> bool:
        """kfree_skb(): dataref drops; the last user releases the frags (skb_release_data()). With ``flags``, a
        received skb the reader handed to skb_attempt_defer_free() (:func:`defer`)."""
        if skb not in self.skbs or (flags and not self.defer(cpu, flags, other, atomics)):
            return False
        s = self.skbs.pop(skb)
        sh = s.shinfo
        if sh.dataref > 1:  # skb_data_unref(): shared, so only dataref drops
            self.dataref(sh, -1, cpu)
            if self.p.owner_mode == OWNER_SKB:
                self.delta.subtract(self.owner_terms(sh.frags))
        else:  # last user (no atomic when dataref is 1): release the frags
            self.release_shinfo(sh, self.delta)
        return True

    def defer(self, cpu, flags, other, atomics) -> bool:
        """skb_attempt_defer_free(): the reader's atomics on the allocating CPU's defer list and, for the last
        skb of a flush, the flush's; False (nothing done) if the flags do not fit."""
        deferred, full = bool(flags & T.FREE_DEFERRED), bool(flags & T.FREE_FULL)
        if (flags & ~T.FREE_FLAGS or deferred == full or (flags & T.FREE_FLUSH and not deferred)
                or not 0 <= other < self.n_cpu or other == cpu or not 0 <= atomics <= 2):
            return False
        node, by = (cpu, other) if deferred else (other, cpu)
        for _ in range(atomics):  # v6.18: atomic_long_inc_return(&defer_count), llist_add(); v6.12: defer_lock
            self.atomic((DEFER, node), by, "defer_atomics", T.FREE)
        if flags & T.FREE_FLUSH:  # skb_defer_free_flush() on the allocating CPU: llist_del_all() / defer_lock
            self.atomic((DEFER, node), node, "defer_atomics", T.FREE)
        return True

    def buf_release(self, cpu, buf, frags, pfn=-1) -> bool:
        """The buffer's holder lets go (application reuse, pipe_buf_release(), pool drain, unbind); page_frag
        memory: ``frags`` users page_frag_free() theirs; pipe memory: with ``frags`` > 0 the pipe releases the
        buffers of pages [pfn, pfn + frags) only, and lets go when it has released them all."""
        b = self.buffers.get(buf)
        if b is not None and b.kind == T.MEM_PAGE_FRAG and frags > 0:
            return self.frag_free(b, frags, cpu, T.BUF_RELEASE)
        if b is None or not b.holder:
            return False
        op = T.BUF_RELEASE
        if b.kind == T.MEM_PIPE and frags > 0:
            pages = range(pfn, pfn + frags)
            if any(q not in b.pipe_held for q in pages):
                return False
            self.pipe_release(b, pages, cpu)
            if b.pipe_held:
                return True
        elif b.kind == T.MEM_PIPE:
            self.pipe_release(b, sorted(b.pipe_held), cpu)
        b.holder = False
        if self.binding:
            self.unpin((HOLDER, buf), cpu, op)
            self.free_pages([q for q in range(b.pfn, b.pfn + b.pages) if self.pinned[q] == 0])
        elif b.kind == T.MEM_PAGE_FRAG:  # the page is used up: page_ref_sub_and_test(pagecnt_bias)
            nr, b.bias = b.bias, 0
            if nr:
                line = (FOLIO, b.pfn)
                cur = self.count[line]
                self.atomic(line, cpu, "page_atomics", op)
                self.count[line] = max(cur - nr, 0)
                if cur < nr:
                    self.c["bad_refs"] += 1
                if cur - nr == 0:
                    self.dies(line, cpu, op)
        elif b.kind in T.POOL_KINDS:  # page_pool_drain_frag(): give back the unused bias
            nr, b.bias = b.bias, 0
            if nr:
                line = (FOLIO, b.pfn)
                cur = self.count[line]
                if cur == nr:
                    self.c["pp_reads"] += 1
                else:
                    self.atomic(line, cpu, "pp_atomics", op)
                self.count[line] = max(cur - nr, 0)
                if cur < nr:
                    self.c["bad_refs"] += 1
                if cur - nr == 0:
                    self.dies(line, cpu, op)
        elif b.kind == T.MEM_DEVMEM or not self.page_design:
            # the mapping gives nothing back per send; the pipe and the binding's user put once
            self.change((OWNER, buf), -1, cpu, op, silent=b.kind == T.MEM_USER)
        elif b.kind == T.MEM_SLAB:  # kfree()
            self.free_pages(range(b.pfn, b.pfn + b.pages))
        elif b.kind != T.MEM_PIPE:  # (the pipe's pages went back one by one above)
            for h in b.heads():
                self.change((FOLIO, h), -1, cpu, op, silent=b.kind == T.MEM_USER)
        return True

    def pipe_release(self, b: Buffer, pages, cpu: int) -> None:
        """pipe_buf_release() of the pipe buffers of ``pages``: one put per page on its folio. Under the owner
        designs the owner keeps them until it dies; under the shared binding the pages go back at once."""
        op = T.BUF_RELEASE
        b.pipe_held.difference_update(pages)
        if self.binding:
            for q in pages:
                self.atomic((FOLIO, self.head[q]), cpu, "page_atomics", op)
            self.free_pages([q for q in pages if self.pinned[q] == 0])
        elif self.page_design:
            units = Counter(self.head[q] for q in pages)
            for h in sorted(units):
                self.change((FOLIO, h), -units[h], cpu, op)

    def devmem_line(self, buf: int) -> tuple:
        """The refcount of a dma-buf's binding: the buffer's own, or the one shared binding."""
        return (BINDING, 0) if self.binding else (OWNER, buf)

    def uarg_get(self, cpu, uarg, flags=0, buf=-1) -> bool:
        """tcp_sendmsg_locked() takes its ubuf_info: msg_zerocopy_realloc() extends the tail's (one ref), or
        msg_zerocopy_alloc() makes a new one (a notification skb; its refcount set with a plain store);
        mm_account_pinned_pages() with UARG_ACCOUNT; a devmem binding ref with UARG_DEVMEM."""
        if uarg < 0 or uarg >= self.n_uarg or flags & ~T.UARG_FLAGS:
            return False
        if flags & T.UARG_DEVMEM and buf not in self.buffers:
            return False
        op = T.UARG_GET
        new = not self.uarg_active.get(uarg, False)
        if new:  # sock_omalloc(): the notification skb is charged to sk_omem_alloc
            self.atomic((SOCK, SOCK_OMEM), cpu, "notif_atomics", op)
            self.uarg_acct[uarg] = False
        if flags & T.UARG_ACCOUNT:  # the cmpxchg loop on user->locked_vm; get_uid() on the first accounting
            self.atomic((USER, USER_LOCKED_VM), cpu, "cmpxchg_atomics", op)
            if not self.uarg_acct[uarg]:
                self.atomic((USER, USER_COUNT), cpu, "notif_atomics", op)
                self.uarg_acct[uarg] = True
        if new:  # atomic_inc_return(&sk->sk_zckey), refcount_set(1), sock_hold()
            self.atomic((SOCK, SOCK_ZCKEY), cpu, "notif_atomics", op)
            self.uarg_active[uarg] = True
            self.count[(UARG, uarg)] = 1
            self.init_line((UARG, uarg), cpu)
            self.atomic((SOCK, SOCK_REF), cpu, "notif_atomics", op)
        else:
            self.change((UARG, uarg), +1, cpu, op)
        if flags & T.UARG_DEVMEM:  # net_devmem_get_binding() -> net_devmem_lookup_dmabuf(): refcount_inc_not_zero()
            self.atomic(self.devmem_line(buf), cpu, "cmpxchg_atomics", op)
        return True

    def uarg_put(self, cpu, uarg, flags=0, buf=-1) -> bool:
        """... and drops it when it returns (net_zcopy_put()), then the binding (net_devmem_dmabuf_binding_put())."""
        if uarg < 0 or uarg >= self.n_uarg or not self.uarg_active.get(uarg, False) or flags & ~T.UARG_FLAGS:
            return False
        if flags & T.UARG_DEVMEM and buf not in self.buffers:
            return False
        self.change((UARG, uarg), -1, cpu, T.UARG_PUT)
        if flags & T.UARG_DEVMEM:
            self.atomic(self.devmem_line(buf), cpu, "owner_atomics", T.UARG_PUT)
        return True

    # ---- the end -----------------------------------------------------------
    def finish(self) -> Ledger:
        c = self.c
        leaked = 0
        for (kind, ident), n in self.count.items():
            if n <= 0:
                continue
            if kind == FOLIO and not (self.alive.get(ident, False) and self.head.get(ident) == ident):
                continue
            leaked += n
        leaked += sum(n for n in self.pinned.values() if n > 0)
        leaked += sum(s.shinfo.dataref for s in {id(s.shinfo): s for s in self.skbs.values()}.values())
        c["leaked_refs"] = leaked
        c["leaked_pages"] = self.pages_alive
        c["leaked_skbs"] = len(self.skbs)
        return Ledger(**{k: int(c[k]) for k in SCALARS},
                      ref_by_op=tuple(int(self.by_op[i]) for i in range(T.N_OPS)))


    def snapshot(self) -> dict:
        """The state in plain terms, to set beside ``engine.snapshot()``: refcounts and last writers by line,
        live pages (frags covering them, pins), buffers, ubuf_infos, skbs with their shared infos, and the
        ledger so far (the leak counts are finish()'s)."""
        skbs = {}
        for k, s in self.skbs.items():
            sh = s.shinfo
            skbs[k] = (s.cloned, sh.slot, sh.dataref, sh.uarg, tuple((f.pfn, f.off, f.len, f.buf, f.uarg)
                                                                      for f in sh.frags))
        led = {k: int(self.c[k]) for k in SCALARS if not k.startswith("leaked_")}
        return {"counts": {line: n for line, n in self.count.items() if n},
                "last_cpu": dict(self.last_cpu), "written": set(self.written),
                "pages": {q: (self.ptrs[q], self.pinned[q]) for q, a in self.alive.items() if a},
                "pages_alive": self.pages_alive,
                "buffers": {k: (b.holder, b.bias, len(b.pipe_held)) for k, b in self.buffers.items()},
                "uargs": {u: (self.uarg_ptrs[u], self.uarg_acct.get(u, False))
                          for u, a in self.uarg_active.items() if a},
                "skbs": skbs, "ledger": led, "by_op": tuple(int(self.by_op[i]) for i in range(T.N_OPS))}

def replay(trace, policy: Policy, *, max_frags: int = T.MAX_SKB_FRAGS) -> Ledger:
    """Replay ``trace`` under ``policy`` in plain Python."""
    sizes = T.sizes(trace)
    return Replay(policy, max_frags=max_frags, **sizes).run(trace)

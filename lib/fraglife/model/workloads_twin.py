"""Workload generators: realistic fragment-lifetime traces from a few parameters.

Each generator follows one kernel path (v6.18, the same in v6.12 unless noted)
closely enough that the references the engine counts are the ones that path
takes, and the frags it builds are the frags that path builds: the kernel, not
the reader, decides where a frag ends.

Every sender's ``sendmsg()`` (``tcp_sendmsg_locked()``, net/ipv4/tcp.c) appends
to the write queue's tail skb while it is still unsent, up to the size goal
(``tcp_xmit_size_goal()``), and starts new skbs after it; whether the partial
tail a call leaves is still unsent when the next call starts is timing (ACKs,
TX completions against autocork and TSQ, pacing, the window), one parameter for
every path: ``Config.tail_unsent``, the share of calls that find it unsent.

``tcp_send``
    Bulk TCP send with MSG_ZEROCOPY and TSO. Each ``sendmsg`` of ``send_size``
    bytes takes its ``ubuf_info`` (``msg_zerocopy_realloc()`` extends the one
    the unsent tail skb carries, while it is the latest, up to 512 KiB and
    ``USHRT_MAX - 2`` calls, else ``msg_zerocopy_alloc()`` makes a new one, a
    notification skb; ``mm_account_pinned_pages()`` per call with
    ``Config.locked_vm_accounting``) and fills skbs with frags of the user
    buffer (``skb_zerocopy_iter_stream()`` -> ``zerocopy_fill_skb_from_iter()``):
    one GUP call per skb pass, per iovec, per at most ``MAX_SKB_FRAGS -
    nr_frags`` pages; a frag is a run of pages inside one folio, and pages that
    continue the last frag's folio grow that frag. ``__tcp_transmit_skb()`` clones each skb for
    the device; the TX completion frees the clone; ACKs trim acknowledged bytes
    (``tcp_trim_head()`` -> ``__pskb_trim_head()``, after ``skb_unclone()`` ->
    ``pskb_expand_head()`` if the clone is still in flight) and free fully
    acknowledged skbs. A lost segment is cut out of its skb (``tcp_fragment()``
    -> ``skb_split()``), retransmitted as a fresh clone (``pskb_copy()`` if the
    old clone is still in flight) and freed when the cumulative ACK covers it.
    The application keeps its buffers and reuses one only after reading the
    completion of the send that used it (msg_zerocopy.rst); it unmaps them at
    the end.
``tcp_gso``
    The same with software GSO: each transmitted clone is cut into MSS
    segments by ``skb_segment()``, which references every frag once per
    segment (and the ``ubuf_info`` once per segment, ``skb_zerocopy_clone()``),
    and the clone is consumed.
``splice_send``
    ``splice()`` of ``send_size`` bytes from a pipe to a TCP socket
    (``splice_to_socket()``, fs/splice.c): one ``sendmsg()`` (MSG_SPLICE_PAGES)
    per 16 pipe buffers, all but the call's last with MSG_MORE;
    ``skb_splice_from_iter()`` cuts at every page and ``skb_append_pagefrags()``
    takes ``get_page()`` per frag; the pipe releases the buffers each
    ``sendmsg()`` sent, one put per page, as soon as it returns.
``devmem_send``
    Devmem TCP TX (v6.16): MSG_ZEROCOPY path from a dma-buf bound to the
    device; one frag per ``net_iov`` (one page), never merged; every frag ref
    is a ref on the binding.
``rx_gro``
    Receive: a page_pool driver places each packet in a buffer of ``rx_buf``
    bytes (a page split into slots, ``page_pool_alloc_frag_netmem()``, or a
    whole page when the buffer is over half of it), GRO appends frags to the
    flow's skb (``skb_gro_receive()``, frags moved), TCP coalesces into the
    receive queue tail (``tcp_try_coalesce()`` -> ``skb_try_coalesce()``) and
    the reader is done with skbs after copying: ``tcp_eat_recv_skb()`` ->
    ``skb_attempt_defer_free()`` leaves each to the CPU that allocated it (the
    NAPI CPU), which frees it at its next ``net_rx_action()``
    (``skb_defer_free_flush()``) unless the reader runs there or the defer list
    is full (``Config.skb_defer_max``; :class:`_DeferList`). A lost packet
    holds everything behind it until the retransmission arrives. The pool
    drains a page's unused bias when it moves on to the next page
    (``page_pool_drain_frag()``).
``splice_gso`` (:data:`EXTRA`, chapter 05)
    ``splice_send`` with software GSO.
``kmalloc_copy``, ``kmalloc_pages``, ``kmalloc_send`` (:data:`EXTRA`, :data:`SERVICES`, chapter 07)
    A kernel service sends messages of ``send_size`` bytes it built in kmalloc'd memory, each with
    MSG_SPLICE_PAGES, and frees its own hold when ``sendmsg()`` returns. ``kmalloc_copy`` copies each
    message into ``page_frag_cache`` fragments (at most one cache page each, carved top down; the
    cache drops its bias when the next fragment does not fit and reuses the page in place if that was
    its last ref, ``__page_frag_alloc_align()``) and ``page_frag_free()``s them after the send, as
    ``svc_tcp_sendmsg()`` does with its record marker (net/sunrpc/svcsock.c). ``kmalloc_pages`` copies
    into freshly allocated order-0 pages and puts them after the send. ``kmalloc_send`` passes the
    kmalloc'd buffer itself: a slab object up to ``KMALLOC_MAX_CACHE_SIZE``, which today's kernel
    refuses (``skb_splice_from_iter()``: -EIO), a compound page above it, which it takes page refs on;
    its lifetime is the destructor design's to manage.
``physrange_send`` (the thread's *future*, not today's kernel)
    A splice send whose frags are physical ranges of ``frag_size`` bytes that
    may span pages and folios (a frag as a ``bio_vec`` of phys + len), with
    the pipe letting go at return as today. Today's single ref per frag is
    then a use-after-free; this workload exists to show it.

CPU placement: the application runs on CPU 0; TX completions on CPU
``1 % cpus``; received ACKs and packets on CPU ``2 % cpus`` when there are more
than two CPUs, else on CPU ``1 % cpus`` (one NIC queue per flow, RSS).

Two implementations, one trace. This module is the specification, written
to be read against the kernel: the Python classes and functions here, and the
definitions both implementations share (:class:`Config` and the functions of
it a generator sets itself up from, the constants, :data:`WORKLOADS`).
:mod:`.workloads`, beside it, runs the same paths compiled (numba) and is the
module the rest of the package imports: its ``generate()`` runs the compiled
generators unless asked for ``impl="twin"``, which runs this module's. Same
parameters and seed give the identical trace, event for event, and identical
:data:`STATS` (tests/test_workloads_differential.py).

A new generator (splice from a file, vmsplice, kmalloc'd sends, a receive
variant) follows the same pattern:

1. Write the twin here first, plainly: a :class:`_Sender` memory mode or a
   function like :func:`_rx_gro`, taking random numbers only from one
   :class:`~.rng.SplitMix64` seeded with ``Config.seed``, in a fixed order.
2. Port it to :mod:`.workloads`: the same steps in the same order, events
   through ``_ev``, state in rows of a 2-D int64 array (dict and list state
   become id freelists, rings indexed by ``b & mask`` with a tag row, stacks),
   capacities sized from the parameters with an overflow bit in ``M[M_STATUS]``
   so the driver grows them and runs again; ``_nrt=False``; inline only small
   helpers and the hot ones (a call passing the state arrays costs more than
   the work of a small helper).
3. Register it in :data:`WORKLOADS` (chapter 01's paths) or :data:`EXTRA` (and :data:`SENDERS` for a sender mode)
   (the identity tests and the bench take every workload from there); its speed shows in ``fraglife bench``'s
   ``"workloads"`` section.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from . import kernels
from . import trace as T
from .rng import SplitMix64
from .trace import PAGE_SIZE, TraceBuilder

KiB = 1024
UARG_BYTE_LIMIT = 1 << 19  # msg_zerocopy_realloc(): "limit to a few TSO"
UARG_LEN_LIMIT = (1 << 16) - 2  # msg_zerocopy_realloc(): a new uarg once uarg->len == USHRT_MAX - 1 (send calls)
SPLICE_BVECS = 16  # splice_to_socket(): pipe buffers per sendmsg (its on-stack bvec[16], fs/splice.c, v6.18 = v6.12)
SKB_DEFER_MAX = 64  # net.core.skb_defer_max default (net/core/hotdata.c, v6.18 and v6.12; 128 from v6.19)
GSO_LEGACY_MAX_SIZE = 65536  # include/linux/netdevice.h
MAX_TCP_HEADER = 320  # L1_CACHE_ALIGN(128 + MAX_HEADER), include/net/tcp.h; MAX_HEADER = 176 on x86_64 distro configs
GSO_MAX_SIZE = GSO_LEGACY_MAX_SIZE - (MAX_TCP_HEADER + 1)  # sk_setup_caps(), net/core/sock.c
NAPI_BUDGET = 64  # packets per NAPI poll (NAPI_POLL_WEIGHT, include/linux/netdevice.h)
DEVMEM_DMABUF_PAGES = 16000  # the udmabuf the devmem selftest binds (NUM_PAGES, tools/.../hw/ncdevmem.c)
# kmalloc() above this is a compound page from the page allocator, not a slab object (KMALLOC_MAX_CACHE_SIZE =
# 1 << (PAGE_SHIFT + 1), include/linux/slab.h; mm/slub.c ___kmalloc_large_node(), v6.12)
KMALLOC_MAX_CACHE_SIZE = 2 * PAGE_SIZE
PAGE_FRAG_PAGES = T.PAGE_FRAG_CACHE_MAX_SIZE // PAGE_SIZE  # one page_frag_cache refill: an order-3 page
#: What a generator counts besides the trace (what the kernel's tracepoints count too, chapter 01):
STATS = (
    "sendmsg",        # sendmsg() calls
    "transmissions",  # skbs handed to the device: a clone or copy of a write-queue skb, retransmissions included
    "retransmits",    # of which retransmissions
    "gso_segments",   # segments skb_segment() made in software
    "lost_segments",  # segments lost on the wire (first transmissions)
    "packets",        # packets received
    "page_allocs",    # page allocator calls for the memory sent (page_frag refills, whole pages, large kmalloc)
    "frag_reuses",    # page_frag_cache pages reused in place (every fragment was freed before the cache moved on)
    "passes",         # passes of tcp_sendmsg_locked()'s loop (tcp:tcp_sendmsg_locked): an skb started or extended
    "no_tail",        # sendmsg() calls that found no unsent tail skb to append to
    "notifications",  # new ubuf_infos: zerocopy notification skbs (msg_zerocopy_alloc())
    "deferred",       # received skbs the reader's skb_attempt_defer_free() left to the CPU that allocated them
)


@dataclass(frozen=True)
class Config:
    bytes_sent: int = 16 * 1024 * KiB
    mss: int = 1448
    send_size: int = 64 * KiB  # bytes per sendmsg
    frag_size: int = 16 * KiB  # physrange_send only: bytes per physical-range frag
    loss_rate: float = 0.01
    loss_burst: float = 1.0  # mean length of a run of lost segments (1: isolated losses)
    cpus: int = 2
    seed: int = 1
    folio_pages: int = 1  # pages per folio of the memory sent (and of page_pool pages on receive)
    inflight: int = 8  # skbs sent before the first of them is acknowledged
    txc_lag: int = 1  # skbs sent before a transmitted clone is completed (0: at once)
    ack_every: int = 2  # segments per ACK (delayed ACK)
    # net.core.max_skb_frags: the frags the splice and copy paths put in one skb (skb_splice_from_iter()'s
    # frag_limit, tcp_sendmsg_locked()); MSG_ZEROCOPY and devmem cap at the compile-time MAX_SKB_FRAGS whatever
    # it says (zerocopy_fill_skb_from_iter(), zerocopy_fill_skb_from_devmem(), net/core/datagram.c v6.18)
    max_frags: int = T.MAX_SKB_FRAGS
    rx_buf: int = 2048  # bytes per receive buffer in a page_pool page
    # The share of sendmsg() calls whose partial tail skb is still unsent when the next one starts, so that the
    # next appends to it (tcp_sendmsg_locked(): tcp_write_queue_tail() holds only unsent skbs). Timing decides
    # it (ACKs processed at release_sock(), TX completions against autocork and TSQ, pacing, the window), not a
    # constant: a comparison with a kernel transfer feeds the share that transfer measured (kcount's
    # tail_unsent). The default 1.0 is a bulk sender on a NIC whose TX completions lag (txc_lag >= 1): when a
    # sendmsg() ends with a sub-size_goal tail, an earlier skb of the socket is still waiting for its TX
    # completion, so tcp_should_autocork() holds the tail (net/ipv4/tcp.c, v6.18) until that completion, and a
    # sender writing back to back calls again first. (veth completes TX at once and never autocorks: there the
    # measured share is 0 with the window open and up to 0.96 when it is not, kcount_splice and kcount.)
    tail_unsent: float = 1.0
    # mm_account_pinned_pages() charges each MSG_ZEROCOPY sendmsg to user->locked_vm with a cmpxchg loop unless
    # the sender has CAP_IPC_LOCK or an unlimited RLIMIT_MEMLOCK (net/core/skbuff.c): on for an unprivileged
    # sender (the default); off to compare with transfers measured as root.
    locked_vm_accounting: bool = True
    # net.core.skb_defer_max: entries of a CPU's defer list before skb_attempt_defer_free() frees locally
    skb_defer_max: int = SKB_DEFER_MAX
    # whose rules: a release string; the receive path's defer list changed in 6.18 (model/kernels.py)
    kernel: str = kernels.NEWEST

    def __post_init__(self):
        p = self.tail_unsent
        if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0.0 <= p <= 1.0:
            raise ValueError(f"tail_unsent = {p!r} is not allowed: expected a share in [0, 1]")
        if not isinstance(self.locked_vm_accounting, (bool, np.bool_)):
            raise ValueError(f"locked_vm_accounting = {self.locked_vm_accounting!r} is not allowed: expected "
                             "True or False")
        if isinstance(self.max_frags, bool) or not isinstance(self.max_frags, (int, np.integer)) \
                or not 1 <= self.max_frags <= T.MAX_SKB_FRAGS:
            raise ValueError(f"max_frags = {self.max_frags!r} is not allowed: expected an integer in "
                             f"[1, {T.MAX_SKB_FRAGS}] (CONFIG_MAX_SKB_FRAGS)")
        d = self.skb_defer_max
        if isinstance(d, bool) or not isinstance(d, (int, np.integer)) or not 0 <= d <= 1 << 30:
            raise ValueError(f"skb_defer_max = {d!r} is not allowed: expected an integer in [0, 2**30]")
        try:
            kernels.version(self.kernel)
        except ValueError:
            raise ValueError(f"kernel = {self.kernel!r} is not allowed: expected a release such as "
                             f"{kernels.NEWEST!r} or {kernels.LTS!r}") from None

    @property
    def defer_lockless(self) -> bool:
        """skb_attempt_defer_free() as in v6.18 (lockless lists, an atomic count) rather than v6.12."""
        return kernels.follows(self.kernel, "skb_defer_lockless")

    @property
    def app_cpu(self) -> int:
        return 0

    @property
    def txc_cpu(self) -> int:
        return 1 % self.cpus

    @property
    def rx_cpu(self) -> int:
        return 2 % self.cpus if self.cpus > 2 else 1 % self.cpus

    @property
    def size_goal(self) -> int:
        """tcp_xmit_size_goal(): whole MSS multiples within sk_gso_max_size (45 x 1448 = 65160)."""
        return max(self.mss, GSO_MAX_SIZE // self.mss * self.mss)

    @property
    def send_pages(self) -> int:
        return -(-self.send_size // PAGE_SIZE)

    @property
    def loss_chain(self) -> tuple[float, float]:
        """(P(lost | previous kept), P(lost | previous lost)) of a two-state chain whose stationary loss rate is
        ``loss_rate`` and whose runs of lost segments last ``loss_burst`` segments on average."""
        r, b = self.loss_rate, max(self.loss_burst, 1.0)
        if r <= 0:
            return 0.0, 0.0
        return min(1.0, r / (b * (1 - r))), 1 - 1 / b

    @property
    def rx_hole_packets(self) -> int:
        """Packets that arrive behind a lost one before its retransmission does: one round trip's worth."""
        return -(-self.inflight * self.size_goal // self.mss)


# --------------------------------------------------------------------------- a sender's memory
#: A sender's memory modes: whose memory a send hands over (the workloads' SENDERS name one per sender).
MEMORIES = ("user", "devmem", "pipe", "physrange", "page_frag", "pages", "slab")


def require(cfg: Config, memory: str) -> None:
    """Refuse a sender the kernel named by ``cfg.kernel`` does not have: devmem TX came in 6.16."""
    if memory == "devmem" and not kernels.follows(cfg.kernel, "frag_ref_get_netmem"):
        raise ValueError(f"kernel = {cfg.kernel!r} is not allowed for a devmem sender: devmem TX came in "
                         f"{kernels.rule('frag_ref_get_netmem').changed_in} (net_devmem_get_binding(), commit "
                         "bd61848900bf)")


def zerocopy(memory: str) -> bool:
    """Whether sends of ``memory`` go through MSG_ZEROCOPY (a ubuf_info, memory the application keeps)."""
    return memory in ("user", "devmem")


def folio_pages(cfg: Config, memory: str) -> int:
    """Pages per folio of the memory a sender hands over."""
    c = cfg
    if memory == "devmem":
        return 1  # net_iovs are single pages
    if memory in ("pipe", "physrange"):
        # a send gets whole folios of its own (a larger page-cache folio would be shared by sends)
        fp = min(c.folio_pages, c.send_pages)
        return fp if c.send_pages % fp == 0 else 1
    if memory == "page_frag":
        return PAGE_FRAG_PAGES  # one compound page per refill
    if memory == "slab":
        return send_alloc_pages(c, memory) if c.send_size > KMALLOC_MAX_CACHE_SIZE else 1
    if memory == "pages":
        return 1  # alloc_page() per page
    return c.folio_pages


def send_alloc_pages(cfg: Config, memory: str) -> int:
    """Pages a send's own buffer takes: a kmalloc() over KMALLOC_MAX_CACHE_SIZE is a compound page of
    get_order(size) (mm/slub.c ___kmalloc_large_node()); the rest, the pages its bytes cover."""
    sp = cfg.send_pages
    if memory == "slab" and cfg.send_size > KMALLOC_MAX_CACHE_SIZE:
        return 1 << (sp - 1).bit_length()
    return sp


def send_held_pages(cfg: Config, memory: str, size: int, pages: int) -> int:
    """Pages a send's buffer holds refs on: a pipe holds only the buffers its bytes filled (a transfer's
    last splice may fill fewer than send_size), in whole folios; other buffers are allocated whole."""
    if memory != "pipe":
        return pages
    filled, fp = -(-size // PAGE_SIZE), folio_pages(cfg, memory)
    return min(pages, -(-filled // fp) * fp)


def send_kind(cfg: Config, memory: str) -> int:
    """The memory kind (trace.MEM_*) of a send's own buffer (pipe, pages, slab memory)."""
    if memory == "slab":
        return T.MEM_PAGES if cfg.send_size > KMALLOC_MAX_CACHE_SIZE else T.MEM_SLAB
    return T.MEM_PAGES if memory == "pages" else T.MEM_PIPE


def send_page_allocs(cfg: Config, memory: str) -> int:
    """Page allocator calls for one send's own buffer."""
    if memory == "pages":
        return cfg.send_pages
    return int(memory == "slab" and cfg.send_size > KMALLOC_MAX_CACHE_SIZE)


def region_pages(cfg: Config, memory: str) -> int:
    """Pages of one region of user (or dma-buf) memory the application maps and cuts into send slots."""
    sp = cfg.send_pages
    if memory == "devmem":
        return max(DEVMEM_DMABUF_PAGES, sp)
    fp = folio_pages(cfg, memory)
    return -(-max(sp, fp) // fp) * fp


def sendmsg_bytes(cfg: Config, memory: str) -> int:
    """Bytes per sendmsg() of a splice() call: splice_to_socket() sends SPLICE_BVECS pipe buffers at a time (a
    page each, or a physical range each in the future); 0 for the senders that hand a whole send to one."""
    if memory == "pipe":
        return SPLICE_BVECS * PAGE_SIZE
    if memory == "physrange":
        return SPLICE_BVECS * cfg.frag_size
    return 0


def region_kind(memory: str) -> int:
    """The memory kind (trace.MEM_*) of such a region."""
    return T.MEM_DEVMEM if memory == "devmem" else T.MEM_USER


class _Ids:
    """Recycles integer ids LIFO, like a slab freelist."""

    def __init__(self):
        self.free: list[int] = []
        self.next = 0

    def get(self) -> int:
        if self.free:
            return self.free.pop()
        self.next += 1
        return self.next - 1

    def put(self, i: int) -> None:
        self.free.append(i)


class _Pages:
    """Page-frame ranges, reused LIFO per size."""

    def __init__(self):
        self.free: dict[int, list[int]] = {}
        self.next = 0

    def get(self, n: int) -> int:
        lst = self.free.get(n)
        if lst:
            return lst.pop()
        self.next += n
        return self.next - n

    def put(self, pfn: int, n: int) -> None:
        self.free.setdefault(n, []).append(pfn)


# --------------------------------------------------------------------------- TX
class _Sender:
    """Bulk TCP sender; see the module docstring for the kernel paths."""

    def __init__(self, cfg: Config, *, memory: str, tso: bool):
        require(cfg, memory)
        self.c = cfg
        self.tb = TraceBuilder()
        self.rng = SplitMix64(cfg.seed)
        self.memory = memory  # "user" | "devmem" | "pipe" | "physrange" | "page_frag" | "pages" | "slab"
        self.zerocopy = zerocopy(memory)
        self.tso = tso
        self.stats = dict.fromkeys(STATS, 0)
        self.prev_lost = False
        self.skb_ids, self.buf_ids, self.uarg_ids, self.pages = _Ids(), _Ids(), _Ids(), _Pages()
        # stream byte ranges: skb -> [lo, hi); send index -> its memory
        self.range: dict[int, list[int]] = {}
        self.users: dict[int, int] = {}  # send index -> live skbs overlapping it
        self.queued: set[int] = set()  # send indexes whose bytes are all in skbs
        self.clone_of: dict[int, int] = {}  # write-queue skb -> clone in flight
        # pipe memory (and a kernel service's pages or kmalloc'd buffer): send index -> (buffer id, pfn, pages)
        self.pipe: dict[int, tuple[int, int, int]] = {}
        # page_frag memory: the cache's page [buffer id, pfn, bytes left below the last fragment], each page's
        # sends not yet done, the pages the cache moved on from, and each send's fragments
        self.frag_page: list[int] | None = None
        self.frag_pending: dict[int, int] = {}
        self.frag_pfn: dict[int, int] = {}
        self.frag_drained: set[int] = set()
        self.frag_deferred: list[int] = []  # pages the current send's fragments are in that the cache left
        self.frags: dict[int, list[tuple[int, int, int, int]]] = {}  # send -> [(buffer id, pfn, offset, bytes)]
        # user / devmem memory: regions the application keeps, cut into send slots
        self.regions: list[int] = []  # buffer ids, released at the end
        self.free_slots: list[tuple[int, int, int]] = []  # (buffer id, region pfn, first page of the slot)
        self.slot_of: dict[int, tuple[int, int, int]] = {}
        # zerocopy notifications
        self.uarg_of: dict[int, int] = {}  # send index -> uarg
        self.uarg_sends: dict[int, list[int]] = {}
        self.uarg_pending: dict[int, int] = {}  # uarg -> sends still referenced by skbs
        self.cur_uarg: int | None = None
        self.uarg_bytes = 0
        # the open (unsent) tail skb and its last frag: (buffer id, folio head, end offset from head, uarg)
        self.skb: int | None = None
        self.sent = 0  # skbs transmitted so far: the model's clock
        self.skb_frags = 0
        self.skb_uarg = -1
        self.last_frag: tuple[int, int, int, int] | None = None
        self.call_left = 0  # bytes left in the current GUP call (user memory)
        self.in_pass = False  # bytes went into an skb in the current pass of tcp_sendmsg_locked()'s loop

    # memory layout: the module's functions of (Config, memory), which the compiled sender reads too
    @property
    def folio_pages(self) -> int:
        return folio_pages(self.c, self.memory)

    def _send_alloc_pages(self) -> int:
        return send_alloc_pages(self.c, self.memory)

    def _send_held_pages(self, size: int, pages: int) -> int:
        return send_held_pages(self.c, self.memory, size, pages)

    def _send_kind(self) -> int:
        return send_kind(self.c, self.memory)

    def _send_page_allocs(self) -> int:
        return send_page_allocs(self.c, self.memory)

    # page_frag memory (mm/page_alloc.c __page_frag_alloc_align(), v6.12)
    def _frag_alloc(self, b: int, n: int) -> tuple[int, int, int]:
        """page_frag_alloc(): ``n`` bytes below the last fragment; when they do not fit, the cache drops its
        bias (page_ref_sub_and_test()) and reuses the page if that was the last ref, else refills.
        Returns (buffer id, pfn, offset).

        A page holding a fragment of this same send is still referenced by it, so it is not reused; the
        model writes its bias drop after the send frees its fragments (the same atomic, and the page dies
        no earlier: the fragment outlives the drop either way), which keeps a user's carve and its
        page_frag_free() one event in the trace (trace.BUF_RELEASE)."""
        fp = self.frag_page
        if fp is None or fp[2] < n:
            reused = False
            if fp is not None and self.frags[b] and self.frags[b][-1][0] == fp[0]:
                self.frag_deferred.append(fp[0])
            elif fp is not None:
                self.tb.buf_release(self.c.app_cpu, fp[0])
                self.frag_drained.add(fp[0])
                reused = self.frag_pending[fp[0]] == 0
                self._frag_recycle(fp[0])
            buf, pfn = self.buf_ids.get(), self.pages.get(PAGE_FRAG_PAGES)
            self.stats["frag_reuses" if reused else "page_allocs"] += 1
            self.tb.alloc(self.c.app_cpu, buf, pfn, PAGE_FRAG_PAGES, PAGE_FRAG_PAGES, T.MEM_PAGE_FRAG)
            self.frag_page = fp = [buf, pfn, T.PAGE_FRAG_CACHE_MAX_SIZE]
            self.frag_pending[buf] = 0
            self.frag_pfn[buf] = pfn
        fp[2] -= n
        return fp[0], fp[1], fp[2]

    def _frag_copy(self, b: int, size: int) -> None:
        """Send ``b``'s message copied into fragments of at most one cache page."""
        self.frags[b] = []
        for pos in range(0, size, T.PAGE_FRAG_CACHE_MAX_SIZE):
            n = min(T.PAGE_FRAG_CACHE_MAX_SIZE, size - pos)
            self.frags[b].append((*self._frag_alloc(b, n), n))
        for buf, _n in self._frag_groups(b):
            self.frag_pending[buf] += 1

    def _frag_recycle(self, buf: int) -> None:
        """A page the cache moved on from, whose sends are all done, is free (its ids can be reused)."""
        if buf in self.frag_drained and self.frag_pending[buf] == 0:
            self.frag_drained.discard(buf)
            del self.frag_pending[buf]
            self.buf_ids.put(buf)
            self.pages.put(self.frag_pfn.pop(buf), PAGE_FRAG_PAGES)

    def _frag_groups(self, b: int) -> list[tuple[int, int]]:
        """(buffer id, fragments) of send ``b``, page by page in order."""
        out: list[list[int]] = []
        for buf, *_ in self.frags[b]:
            if out and out[-1][0] == buf:
                out[-1][1] += 1
            else:
                out.append([buf, 1])
        return [(buf, n) for buf, n in out]

    def _region_pages(self) -> int:
        return region_pages(self.c, self.memory)

    def _slot(self) -> tuple[int, int, int]:
        """A send slot of user (or dma-buf) memory: reuse a completed one, else map a new region."""
        if not self.free_slots:
            pages = self._region_pages()
            buf, pfn = self.buf_ids.get(), self.pages.get(pages)
            kind = region_kind(self.memory)
            self.tb.alloc(self.c.app_cpu, buf, pfn, pages, self.folio_pages, kind)
            self.regions.append(buf)
            sp = self.c.send_pages
            for k in reversed(range(pages // sp)):
                self.free_slots.append((buf, pfn, pfn + k * sp))
        return self.free_slots.pop()

    def _head(self, base: int, q: int) -> int:
        fp = self.folio_pages
        return base + (q - base) // fp * fp

    # stream <-> sends
    def _sends_in(self, lo: int, hi: int) -> range:
        s = self.c.send_size
        return range(lo // s, (hi - 1) // s + 1) if hi > lo else range(0)

    def _new_skb(self, lo: int, hi: int) -> int:
        s = self.skb_ids.get()
        self.range[s] = [lo, hi]
        for b in self._sends_in(lo, hi):
            self.users[b] = self.users.get(b, 0) + 1
        return s

    def _set_range(self, s: int, lo: int, hi: int) -> None:
        old = set(self._sends_in(*self.range[s]))
        new = set(self._sends_in(lo, hi))
        self.range[s] = [lo, hi]
        for b in new - old:
            self.users[b] = self.users.get(b, 0) + 1
        for b in sorted(old - new):
            self._drop_user(b)

    def _free_skb(self, cpu: int, s: int) -> None:
        self.tb.free(cpu, s)
        self.clone_of.pop(s, None)  # a clone still in flight outlives its original
        lo, hi = self.range.pop(s)
        self.skb_ids.put(s)
        for b in self._sends_in(lo, hi):
            self._drop_user(b)

    def _drop_user(self, b: int) -> None:
        self.users[b] -= 1
        self._maybe_done(b)

    def _maybe_done(self, b: int) -> None:
        """No skb references send ``b`` any more and all of it was queued."""
        if self.users.get(b, 0) or b not in self.queued:
            return
        self.queued.discard(b)
        if self.zerocopy:
            u = self.uarg_of.pop(b)
            self.uarg_pending[u] -= 1
            self._try_complete(u)
        elif self.memory == "page_frag":
            for buf, _n in self._frag_groups(b):
                self.frag_pending[buf] -= 1
                self._frag_recycle(buf)
            del self.frags[b]
        else:
            buf, pfn, pages = self.pipe.pop(b)
            self.buf_ids.put(buf)
            self.pages.put(pfn, pages)

    def _try_complete(self, u: int) -> None:
        """__msg_zerocopy_callback() has run: the application reads it and may reuse the sends' memory."""
        if self.uarg_pending[u] or u == self.cur_uarg:
            return
        self.tb.zc_complete(self.c.app_cpu, u)
        for b in self.uarg_sends.pop(u):
            self.free_slots.append(self.slot_of.pop(b))
        del self.uarg_pending[u]
        self.uarg_ids.put(u)

    # the send side
    def _uarg_flags(self, b: int) -> tuple[int, int]:
        """(trace.UARG_* flags, dma-buf) of a sendmsg: locked_vm accounting for user memory unless the sender is
        exempt, the binding ref of devmem TX."""
        if self.memory == "devmem":
            return T.UARG_DEVMEM, self.slot_of[b][0]
        return (T.UARG_ACCOUNT if self.c.locked_vm_accounting else 0), -1

    def _uarg_for(self, b: int, size: int) -> int:
        """msg_zerocopy_realloc(): extend the uarg of the unsent tail skb (the latest one, up to 512 KiB and
        USHRT_MAX - 2 send calls), else msg_zerocopy_alloc() a new one (a notification skb)."""
        u = self.cur_uarg
        extend = (u is not None and self.skb is not None and self.skb_uarg == u
                  and self.uarg_bytes + size <= UARG_BYTE_LIMIT and len(self.uarg_sends[u]) < UARG_LEN_LIMIT)
        if not extend:
            if u is not None:
                self.cur_uarg = None
                self._try_complete(u)
            u = self.uarg_ids.get()
            self.cur_uarg, self.uarg_bytes = u, 0
            self.uarg_sends[u], self.uarg_pending[u] = [], 0
            self.stats["notifications"] += 1
        self.tb.uarg_get(self.c.app_cpu, u, *self._uarg_flags(b))
        self.uarg_bytes += size
        self.uarg_of[b] = u
        self.uarg_sends[u].append(b)
        self.uarg_pending[u] += 1
        return u

    def _pieces(self, b: int, size: int, start: int = 0):
        """The frags a send's bytes [start, size) become, in order: (buffer, frag page, offset from it, bytes, folio
        head)."""
        c = self.c
        if self.memory == "page_frag":
            for buf, pfn, offset, n in self.frags[b]:  # each fragment, cut at every page
                pos = 0
                while pos < n:
                    o = offset + pos
                    k = min(PAGE_SIZE - o % PAGE_SIZE, n - pos)
                    yield buf, pfn + o // PAGE_SIZE, o % PAGE_SIZE, k, pfn
                    pos += k
            return
        if self.zerocopy:
            buf, base, first = self.slot_of[b]
        else:
            buf, first, _ = self.pipe[b]
            base = first
        pos = start
        while pos < size:
            q = first + pos // PAGE_SIZE
            head = self._head(base, q)
            if self.memory == "user":  # a run inside one folio
                end = (head - first + self.folio_pages) * PAGE_SIZE
            elif self.memory == "physrange":  # the future: any physical range
                end = (pos // c.frag_size + 1) * c.frag_size
            else:  # one page per frag
                end = (pos // PAGE_SIZE + 1) * PAGE_SIZE
            n = min(end, size) - pos
            if self.memory in ("user", "physrange"):
                yield buf, head, (first - head) * PAGE_SIZE + pos, n, head
            else:
                yield buf, q, pos % PAGE_SIZE, n, head
            pos += n

    def _close_skb(self, pending_txc, pending_ack) -> None:
        if self.skb is None:
            return
        s = self.skb
        self.skb, self.last_frag = None, None
        self.call_left = 0
        now = self.sent
        self.sent += 1
        self._transmit(s, pending_txc, now + self.c.txc_lag)
        pending_ack.append((now + self.c.inflight, s))
        self._advance(pending_txc, pending_ack, now)

    def _advance(self, pending_txc, pending_ack, now: int) -> None:
        """Time counts skbs sent: skb i is completed at i + txc_lag and its first ACK comes at i + inflight;
        what falls due by ``now`` happens, completions first."""
        while pending_txc and pending_txc[0][0] <= now:
            self._complete(*pending_txc.pop(0)[1:])
        while pending_ack and pending_ack[0][0] <= now:
            self._ack(pending_ack.pop(0)[1])

    def _batch(self, size: int) -> int:
        return sendmsg_bytes(self.c, self.memory) or size

    def _send(self, b: int, lo: int, size: int, pending_txc, pending_ack) -> None:
        """One send of ``size`` bytes at stream offset ``lo``: a sendmsg() (MSG_ZEROCOPY, a kernel service's), or a
        splice() call, which splice_to_socket() sends in sendmsg()s of SPLICE_BVECS pipe buffers, all but the last
        with MSG_MORE, releasing the buffers each sent as it returns."""
        c, tb = self.c, self.tb
        cpu = c.app_cpu
        if self.zerocopy:
            self.slot_of[b] = self._slot()
        elif self.memory == "page_frag":  # the message is copied into fragments of at most one cache page
            self._frag_copy(b, size)
        else:
            pages = self._send_alloc_pages()
            buf, pfn = self.buf_ids.get(), self.pages.get(pages)
            tb.alloc(cpu, buf, pfn, self._send_held_pages(size, pages), self.folio_pages, self._send_kind())
            self.stats["page_allocs"] += self._send_page_allocs()
            self.pipe[b] = (buf, pfn, pages)
        step, released = self._batch(size), 0
        for start in range(0, size, step):
            stop = min(size, start + step)
            u = self._uarg_for(b, size) if self.zerocopy else -1
            self._sendmsg(b, u, lo, start, stop, stop == size, pending_txc, pending_ack)
            if self.zerocopy:
                tb.uarg_put(cpu, u, *self._uarg_flags(b))  # net_zcopy_put() as tcp_sendmsg_locked() returns
            elif stop < size:  # pipe_buf_release() of the buffers this sendmsg sent in full
                done = stop // PAGE_SIZE
                if done > released:
                    tb.buf_release(cpu, self.pipe[b][0], done - released, self.pipe[b][1] + released)
                    released = done
        if self.memory == "page_frag":
            for buf, n in self._frag_groups(b):
                tb.buf_release(cpu, buf, n)  # page_frag_free() of each fragment after sendmsg() returns
            for buf in self.frag_deferred:  # the bias drops of the pages the cache left during this send
                tb.buf_release(cpu, buf)
                self.frag_drained.add(buf)
                self._frag_recycle(buf)
            self.frag_deferred = []
        elif not self.zerocopy:
            # the pipe lets go of the rest as splice() returns; a service puts its pages or kfree()s its buffer
            tb.buf_release(cpu, self.pipe[b][0])
        self._maybe_done(b)

    def _sendmsg(self, b: int, u: int, lo: int, start: int, stop: int, last: bool, pending_txc, pending_ack) -> None:
        """One tcp_sendmsg_locked() of the send's bytes [start, stop): append to the unsent tail skb, else start
        new ones up to the size goal; for user memory one GUP call per skb pass of at most MAX_SKB_FRAGS -
        nr_frags pages (zerocopy_fill_skb_from_iter()); at its end tcp_push() sends a partial tail unless it is
        still unsent at the next call (Config.tail_unsent)."""
        c, tb = self.c, self.tb
        cpu = c.app_cpu
        self.stats["sendmsg"] += 1
        if self.skb is None:
            self.stats["no_tail"] += 1
        self.call_left, self.in_pass = 0, False
        cap = self._frag_cap()
        seq = lo + start
        for buf, pfn, off, n, head in self._pieces(b, stop, start):
            while n:
                if self.skb is not None and (self.skb_uarg != u and self.skb_frags):
                    self._close_skb(pending_txc, pending_ack)  # one uarg per skb: -EEXIST, new segment
                if self.skb is None:
                    self.skb = self._new_skb(seq, seq)
                    tb.skb_alloc(cpu, self.skb)
                    self.skb_frags, self.skb_uarg = 0, -1
                s = self.skb
                room = c.size_goal - (self.range[s][1] - self.range[s][0])
                if self.memory == "user" and self.call_left == 0:  # iov_iter_get_pages2(): a new GUP call
                    if self.skb_frags >= cap:
                        self._frags_full(pending_txc, pending_ack)  # -EMSGSIZE before any GUP
                        continue
                    pos = seq - lo
                    self.call_left = min(room, stop - pos, (cap - self.skb_frags) * PAGE_SIZE - pos % PAGE_SIZE)
                k = min(room, n, self.call_left) if self.memory == "user" else min(room, n)
                lf = self.last_frag
                if self.memory == "user" and lf is not None and lf == (buf, head, off, u):
                    tb.grow(cpu, s, buf, k, u)  # merged into the last frag
                elif self.skb_frags >= cap:
                    self._frags_full(pending_txc, pending_ack)  # -EMSGSIZE: new segment
                    continue
                else:
                    tb.attach(cpu, s, buf, pfn, off, k, u)
                    self.skb_frags += 1
                if not self.in_pass:
                    self.stats["passes"] += 1
                    self.in_pass = True
                self.skb_uarg = u
                self.last_frag = (buf, head, off + k, u)
                self._set_range(s, self.range[s][0], seq + k)
                seq += k
                off += k
                n -= k
                self.call_left = max(0, self.call_left - k)
                if k == room:
                    self._close_skb(pending_txc, pending_ack)
                    self.in_pass = False
        if last:
            self.queued.add(b)
        if self.skb is not None and not self._tail_kept():
            self._close_skb(pending_txc, pending_ack)  # tcp_push() sends the partial tail

    def _frag_cap(self) -> int:
        """Frags per skb: the compile-time MAX_SKB_FRAGS for MSG_ZEROCOPY and devmem, the sysctl otherwise."""
        return T.MAX_SKB_FRAGS if self.zerocopy else self.c.max_frags

    def _frags_full(self, pending_txc, pending_ack) -> None:
        """The skb has all its frags: -EMSGSIZE, tcp_mark_push() and a new segment; after progress in this pass
        tcp_sendmsg_locked() first comes round once more (one more pass, which fails at once)."""
        if self.in_pass:
            self.stats["passes"] += 1
        self._close_skb(pending_txc, pending_ack)

    def _tail_kept(self) -> bool:
        """Whether the partial tail this sendmsg leaves is still unsent when the next starts (Config.tail_unsent;
        a random draw only strictly between 0 and 1)."""
        p = self.c.tail_unsent
        if p >= 1:
            return True
        return p > 0 and self.rng.random() < p

    def generate(self) -> np.ndarray:
        c = self.c
        pending_txc: list[tuple[int, int, list[int]]] = []  # (due, write-queue skb, device skbs) to complete
        pending_ack: list[tuple[int, int]] = []  # (due, write-queue skb) to acknowledge
        b = 0
        while b * c.send_size < c.bytes_sent:
            lo = b * c.send_size
            self._send(b, lo, min(c.send_size, c.bytes_sent - lo), pending_txc, pending_ack)
            b += 1
        self._close_skb(pending_txc, pending_ack)  # tcp_push() of the last partial skb
        now = self.sent
        while pending_txc or pending_ack:  # the rest falls due in time, as if the link stayed busy
            self._advance(pending_txc, pending_ack, now)
            now += 1
        if self.cur_uarg is not None:
            u, self.cur_uarg = self.cur_uarg, None
            self._try_complete(u)
        if self.frag_page is not None:  # the cache is drained (page_frag_cache_drain())
            buf = self.frag_page[0]
            self.tb.buf_release(c.app_cpu, buf)
            self.frag_drained.add(buf)
            self._frag_recycle(buf)
        for buf in self.regions:  # munmap / unbind at exit
            self.tb.buf_release(c.app_cpu, buf)
        return self.tb.build(), self.stats

    def _transmit(self, s: int, pending_txc: list, due: int) -> None:
        """__tcp_transmit_skb(): clone for the device (pskb_copy if still cloned); GSO if no TSO."""
        c, tb = self.c, self.tb
        lo, hi = self.range[s]
        self.stats["transmissions"] += 1
        dev = self._new_skb(lo, hi)
        if s in self.clone_of:
            tb.segment(c.app_cpu, dev, s, 0, hi - lo)  # __pskb_copy_fclone(): a ref per frag
        else:
            tb.clone(c.app_cpu, dev, s)
            self.clone_of[s] = dev
        out = [dev]
        if not self.tso and hi - lo > c.mss:
            out = []
            for start in range(0, hi - lo, c.mss):
                seg = self._new_skb(lo + start, min(hi, lo + start + c.mss))
                tb.segment(c.app_cpu, seg, dev, start, min(c.mss, hi - lo - start))
                out.append(seg)
                self.stats["gso_segments"] += 1
            self._consume(c.app_cpu, s, dev)
        pending_txc.append((due, s, out))

    def _consume(self, cpu: int, s: int, dev: int) -> None:
        if self.clone_of.get(s) == dev:
            del self.clone_of[s]
        self._free_skb(cpu, dev)

    def _complete(self, s: int, devs: list[int]) -> None:
        for d in devs:
            self._consume(self.c.txc_cpu, s, d)

    def _unclone(self, s: int) -> None:
        if s in self.clone_of:
            self.tb.expand_head(self.c.rx_cpu, s)  # skb_unclone() -> pskb_expand_head()
            del self.clone_of[s]

    def _lost(self) -> bool:
        """Whether the next segment in stream order is lost (runs of losses per Config.loss_chain)."""
        start, stay = self.c.loss_chain
        self.prev_lost = self.rng.random() < (stay if self.prev_lost else start)
        return self.prev_lost

    def _ack(self, s: int) -> None:
        """Acknowledge write-queue skb ``s``: trims, loss repair, free."""
        c = self.c
        cpu = c.rx_cpu
        lo, hi = self.range[s]
        seg_starts = list(range(lo, hi, c.mss))
        lost = [self._lost() for _ in seg_starts]
        self.stats["lost_segments"] += sum(lost)
        acked = lo  # cumulative ACK point within s
        run = 0
        i = 0
        while i < len(seg_starts):
            if lost[i]:
                j = i  # a run of lost segments stays one skb and is retransmitted as one
                while j < len(seg_starts) and lost[j]:
                    j += 1
                end = min(seg_starts[j - 1] + c.mss, hi)
                if acked > self.range[s][0]:
                    self._trim(s, acked)
                if end < hi:  # cut the hole out: tcp_fragment() from the SACK walk
                    self._unclone(s)
                    rest = self._split(s, end)
                else:
                    rest = None
                self._retransmit(s)
                self._free_skb(cpu, s)
                if rest is None:
                    return
                s = rest
                acked = end
                run = 0
                i = j
                continue
            end = min(seg_starts[i] + c.mss, hi)
            run += 1
            acked = end
            if run % c.ack_every == 0 and end < hi:
                self._trim(s, acked)
            i += 1
        self._free_skb(cpu, s)

    def _trim(self, s: int, upto: int) -> None:
        lo, hi = self.range[s]
        if upto <= lo:
            return
        self._unclone(s)
        self.tb.pull(self.c.rx_cpu, s, upto - lo)
        self._set_range(s, upto, hi)

    def _split(self, s: int, at: int) -> int:
        lo, hi = self.range[s]
        rest = self._new_skb(at, hi)
        self.tb.split(self.c.rx_cpu, s, rest, at - lo)
        self._set_range(s, lo, at)
        return rest

    def _retransmit(self, s: int) -> None:
        """tcp_retransmit_skb(): resend until it gets through; each try is a clone completed by the device."""
        while True:
            pend: list = []
            self._transmit_retrans(s, pend)
            for item in pend:
                self._complete(*item)
            if self.rng.random() >= self.c.loss_rate:
                return

    def _transmit_retrans(self, s: int, pend: list) -> None:
        c = self.c
        lo, hi = self.range[s]
        self.stats["transmissions"] += 1
        self.stats["retransmits"] += 1
        dev = self._new_skb(lo, hi)
        if s in self.clone_of:
            self.tb.segment(c.rx_cpu, dev, s, 0, hi - lo)
        else:
            self.tb.clone(c.rx_cpu, dev, s)
            self.clone_of[s] = dev
        pend.append((s, [dev]))


# --------------------------------------------------------------------------- RX
def rx_layout(cfg: Config) -> tuple[int, int, int]:
    """(kind, pages per pool page, packets per pool page) for ``cfg``: page_pool_alloc_netmem() gives a
    whole page when a buffer is over half of it, else slots of ``rx_buf`` (at least one MSS)."""
    slot = max(cfg.rx_buf, cfg.mss)
    pages = max(cfg.folio_pages, -(-slot // PAGE_SIZE))
    if 2 * slot > pages * PAGE_SIZE:
        return T.MEM_POOL_PAGE, pages, 1
    return T.MEM_POOL_FRAG, pages, pages * PAGE_SIZE // slot


class _DeferList:
    """The NAPI CPU's skb defer list: skb_attempt_defer_free() (net/core/skbuff.c) as the reader calls it from
    tcp_eat_recv_skb(), and skb_defer_free_flush() (net/core/dev.c) as the NAPI CPU runs it at the start of
    each net_rx_action() round, or at once when the reader kicks it with an IPI.

    v6.18: ``atomic_long_inc_return(&defer_count)`` on every call, a local free once the count reaches
    skb_defer_max, else ``llist_add()`` (a cmpxchg loop): two atomics per skb deferred, one per skb freed
    locally; the IPI when ``count - 1 == max / 2``; the flush ``llist_del_all()`` (one xchg) and frees newest
    first. v6.12: a local free with no atomic once ``defer_count >= max``, else one ``spin_lock_bh()``; the IPI
    when the count before this one is max / 2; the flush takes the same lock. The IPI's flush is taken to run
    before the reader's next free (it asks the NAPI CPU to run the softirq; the reader copies out a whole skb
    in between)."""

    def __init__(self, c: Config, free):
        self.c, self.free = c, free
        self.on = c.app_cpu != c.rx_cpu  # the skb was allocated on this CPU: kfree_skb_napi_cache() here
        self.lockless = c.defer_lockless
        self.per = 2 if self.lockless else 1
        self.list: list[int] = []
        self.count = 0
        self.deferred = 0

    def attempt(self, s: int) -> None:
        c = self.c
        if not self.on:
            self.free(c.app_cpu, s)
            return
        if self.lockless:
            self.count += 1
            if self.count >= c.skb_defer_max:
                self.free(c.app_cpu, s, T.FREE_FULL, c.rx_cpu, 1)
                return
            kick = self.count - 1 == c.skb_defer_max >> 1
        else:
            if self.count >= c.skb_defer_max:
                self.free(c.app_cpu, s)
                return
            kick = self.count == c.skb_defer_max >> 1
            self.count += 1
        self.list.append(s)
        self.deferred += 1
        if kick:
            self.flush()

    def flush(self) -> None:
        """skb_defer_free_flush() on the NAPI CPU: the list, newest first; the last free carries the flush."""
        c = self.c
        n = len(self.list)
        for i, s in enumerate(reversed(self.list)):
            flags = T.FREE_DEFERRED | (T.FREE_FLUSH if i == n - 1 else 0)
            self.free(c.rx_cpu, s, flags, c.app_cpu, self.per)
        self.list.clear()
        self.count = 0


def _rx_gro(cfg: Config) -> np.ndarray:
    """Receive path with page_pool buffers, GRO and receive-queue coalescing; the reader's frees go to the CPU
    that allocated the skbs (:class:`_DeferList`)."""
    c = cfg
    tb = TraceBuilder()
    rng = SplitMix64(c.seed)
    skb_ids, buf_ids, pages = _Ids(), _Ids(), _Pages()
    kind, npages, per_page = rx_layout(c)
    slot = npages * PAGE_SIZE // per_page
    cur = None  # (buf_id, pfn, next slot)
    frags_left: dict[int, int] = {}  # buffer id -> live frags
    released: set[int] = set()
    buf_pfn: dict[int, int] = {}
    skb_bufs: dict[int, list[int]] = {}
    gro = None  # the flow's GRO skb
    gro_len = 0
    queue: list[int] = []  # receive queue (oldest first); queue[-1] may take coalesces
    blocked_until = -1  # packet index before which reads wait for a retransmission
    n_pkts = -(-c.bytes_sent // c.mss)
    stats = dict.fromkeys(STATS, 0)
    stats["packets"] = n_pkts

    def recycle(b):
        released.discard(b)
        buf_ids.put(b)
        pages.put(buf_pfn.pop(b), npages)

    def free(cpu, s, flags=0, other=-1, atomics=0):
        tb.free(cpu, s, flags, other, atomics)
        skb_ids.put(s)
        for b in skb_bufs.pop(s):
            frags_left[b] -= 1
            if frags_left[b] == 0 and b in released:
                recycle(b)

    def deliver(s):
        """TCP receive: coalesce into the queue tail when it fits, else append."""
        if queue and len(skb_bufs[queue[-1]]) + len(skb_bufs[s]) <= c.max_frags:
            tail = queue[-1]
            tb.coalesce(c.rx_cpu, tail, s)
            skb_bufs[tail].extend(skb_bufs[s])
            skb_bufs[s] = []
            free(c.rx_cpu, s)  # kfree_skb_partial()
        else:
            queue.append(s)

    def flush_gro():
        nonlocal gro, gro_len
        if gro is not None:
            deliver(gro)
            gro, gro_len = None, 0

    defer = _DeferList(c, free)

    def read(upto_pkt):
        # the application copies and frees whole skbs, oldest first (tcp_eat_recv_skb())
        while len(queue) > 1 and upto_pkt >= blocked_until:
            defer.attempt(queue.pop(0))

    for i in range(n_pkts):
        if i % NAPI_BUDGET == 0:
            defer.flush()  # net_rx_action() on the NAPI CPU starts with skb_defer_free_flush()
        length = min(c.mss, c.bytes_sent - i * c.mss)
        if cur is None or cur[2] >= per_page:
            if cur is not None:
                tb.buf_release(c.rx_cpu, cur[0])  # page_pool_drain_frag() as the next page is taken
                released.add(cur[0])
                if frags_left[cur[0]] == 0:
                    recycle(cur[0])
            b = buf_ids.get()
            pfn = pages.get(npages)
            tb.alloc(c.rx_cpu, b, pfn, npages, npages, kind)
            buf_pfn[b] = pfn
            frags_left[b] = 0
            cur = (b, pfn, 0)
        b, pfn, k = cur
        cur = (b, pfn, k + 1)
        s = skb_ids.get()
        tb.skb_alloc(c.rx_cpu, s)
        tb.attach(c.rx_cpu, s, b, pfn, k * slot, length)
        skb_bufs[s] = [b]
        frags_left[b] += 1
        if rng.random() < c.loss_rate:
            # a hole: GRO flushes, and readers wait a round trip for the retransmission
            stats["lost_segments"] += 1
            flush_gro()
            blocked_until = i + c.rx_hole_packets
        if gro is None:
            gro, gro_len = s, length
        elif len(skb_bufs[gro]) + 1 <= c.max_frags and gro_len + length < GSO_LEGACY_MAX_SIZE:
            tb.coalesce(c.rx_cpu, gro, s)  # skb_gro_receive(): frags move
            skb_bufs[gro].extend(skb_bufs[s])
            skb_bufs[s] = []
            gro_len += length
            free(c.rx_cpu, s)  # NAPI_GRO_FREE
        else:
            flush_gro()
            gro, gro_len = s, length
        if (i + 1) % NAPI_BUDGET == 0:
            flush_gro()  # napi_complete_done() -> gro_flush
            read(i)  # the reader copies out what one poll delivered
    flush_gro()
    while queue:
        defer.attempt(queue.pop(0))
    defer.flush()
    stats["deferred"] = defer.deferred
    if cur is not None:
        tb.buf_release(c.rx_cpu, cur[0])
    return tb.build(), stats


# --------------------------------------------------------------------------- the registry
def _make_twin(workload: str):
    memory, tso = SENDERS.get(workload, (None, None))
    if memory is None:
        return _rx_gro
    return lambda c: _Sender(c, memory=memory, tso=tso).generate()


#: The senders' memory and offload per workload (the others are receivers).
SENDERS = {"tcp_send": ("user", True), "tcp_gso": ("user", False), "splice_send": ("pipe", True),
            "devmem_send": ("devmem", True), "physrange_send": ("physrange", True),
            "kmalloc_copy": ("page_frag", True), "kmalloc_pages": ("pages", True), "kmalloc_send": ("slab", True),
            "splice_gso": ("pipe", False)}


@dataclass(frozen=True)
class Workload:
    name: str
    summary: str
    twin: Callable[[Config], tuple[np.ndarray, dict]]  # this module's generator: the specification
    today: bool = True  # False: the thread's future, a frag builder today's kernel does not have


def _workload(name: str, summary: str, today: bool = True) -> Workload:
    return Workload(name, summary, _make_twin(name), today)


WORKLOADS: dict[str, Workload] = {
    w.name: w
    for w in (
        _workload("tcp_send", "bulk TCP send, MSG_ZEROCOPY, TSO: clones, ACK trims, loss repair"),
        _workload("tcp_gso", "bulk TCP send, MSG_ZEROCOPY, software GSO: skb_segment per MSS"),
        _workload("splice_send", "splice from a pipe (MSG_SPLICE_PAGES): a frag per page; the pipe lets go at return"),
        _workload("devmem_send", "devmem TCP TX from a dma-buf: a frag per net_iov, refs on the binding"),
        _workload("rx_gro", "receive: page_pool buffers, GRO, receive-queue coalescing, reader frees"),
        _workload("physrange_send", "future: splice with frags as physical ranges of frag_size bytes across folios",
                  today=False),
    )
}
TODAY = tuple(name for name, w in WORKLOADS.items() if w.today)
#: Generators the later chapters add to chapter 01's paths above: a kernel service (a network filesystem, a
#: storage target) sending messages it built in kmalloc'd memory, ``send_size`` bytes per message, with
#: MSG_SPLICE_PAGES (chapter 07), and the splice path with software GSO (chapter 05's kernel comparison).
EXTRA: dict[str, Workload] = {
    w.name: w
    for w in (
        _workload("kmalloc_copy", "a kernel service copies each kmalloc'd message into page_frag_cache fragments "
                  "and splices those (today)"),
        _workload("kmalloc_pages", "a kernel service copies each message into freshly allocated whole pages and "
                  "splices those"),
        _workload("kmalloc_send", "a kernel service splices its kmalloc'd message itself: refused today up to "
                  "KMALLOC_MAX_CACHE_SIZE (slab), a compound page above; a destructor's to own"),
        _workload("splice_gso", "splice from a pipe (MSG_SPLICE_PAGES) with software GSO: skb_segment per MSS"),
    )
}
#: The kernel services' senders of chapter 07.
SERVICES = ("kmalloc_copy", "kmalloc_pages", "kmalloc_send")
#: Every generator, by name.
ALL = {**WORKLOADS, **EXTRA}


def lookup(workload: str) -> Workload:
    """The registered workload ``workload``; an unknown name is refused in one line."""
    try:
        return ALL[workload]
    except KeyError:
        raise ValueError(f"unknown workload {workload!r}; known: {', '.join(ALL)}") from None


def generate_with_stats(workload: str, **params) -> tuple[np.ndarray, dict]:
    """A trace of ``workload`` with the given :class:`Config` fields, and the generator's :data:`STATS`."""
    return lookup(workload).twin(Config(**params))


def generate(workload: str, **params) -> np.ndarray:
    """A trace of ``workload`` with the given :class:`Config` fields."""
    return generate_with_stats(workload, **params)[0]

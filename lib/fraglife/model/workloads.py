"""Workload generators: realistic fragment-lifetime traces from a few parameters.

Each generator follows one kernel path (v6.12 unless noted) closely enough that
the references the engine counts are the ones that path takes:

``tcp_send``
    Bulk TCP send with MSG_ZEROCOPY and TSO. ``tcp_sendmsg_locked()`` fills
    skbs up to the size goal (``tcp_xmit_size_goal()``) with frags of the
    user buffer (``skb_zerocopy_iter_stream()``); ``__tcp_transmit_skb()``
    clones each skb for the device; the TX completion frees the clone; ACKs
    trim acknowledged bytes (``tcp_trim_head()`` -> ``__pskb_trim_head()``,
    after ``skb_unclone()`` if the clone is still in flight) and free fully
    acknowledged skbs. A lost segment is cut out of its skb
    (``tcp_fragment()`` -> ``skb_split()``), retransmitted as a fresh clone,
    and freed when the cumulative ACK covers it. Buffers are reused once their
    completion (``__msg_zerocopy_callback()``) has been read.
``tcp_gso``
    The same with software GSO: each transmitted clone is cut into MSS
    segments by ``skb_segment()``, which references every frag once per
    segment, and the clone is consumed.
``multipage_send``
    MSG_SPLICE_PAGES-style send (``splice_to_socket()``) of buffers whose
    frags may span several pages; the holder (pipe, page cache, kernel
    service) lets go as soon as ``sendmsg()`` returns, which is legal only
    because the skb holds references. With ``folio_pages`` smaller than a
    frag, frags span several folios: the thread's case.
``rx_gro``
    Receive: a page_pool driver places each MSS-sized packet in a slot of a
    pool page, GRO appends frags to the flow's skb (``skb_gro_receive()``,
    frags moved), TCP coalesces into the receive queue tail
    (``tcp_try_coalesce()`` -> ``skb_try_coalesce()``) and the reader frees
    skbs after copying. A lost packet holds everything behind it until the
    retransmission arrives.

CPU placement: the application runs on CPU 0; TX completions on CPU
``1 % cpus``; received ACKs and packets on CPU ``2 % cpus`` when there are more
than two CPUs, else on CPU ``1 % cpus`` (one NIC queue per flow, RSS).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from .trace import MAX_SKB_FRAGS, PAGE_SIZE, TraceBuilder

KiB = 1024
UARG_BYTE_LIMIT = 1 << 19  # msg_zerocopy_realloc(): "limit to a few TSO"
GSO_MAX_SIZE = 65536  # GSO_LEGACY_MAX_SIZE, include/linux/netdevice.h
PAGE_FRAG_SIZE = 32 * KiB  # PAGE_FRAG_CACHE_MAX_SIZE, include/linux/mm_types.h
NAPI_BUDGET = 64  # packets per NAPI poll (NAPI_POLL_WEIGHT)


@dataclass(frozen=True)
class Config:
    bytes_sent: int = 16 * 1024 * KiB
    mss: int = 1448
    frag_size: int = 4 * KiB
    loss_rate: float = 0.01
    cpus: int = 2
    seed: int = 1
    folio_pages: int = 1
    inflight: int = 8  # skbs sent before the first of them is acknowledged
    txc_lag: int = 1  # skbs sent before a transmitted clone is completed
    ack_every: int = 2  # segments per ACK (delayed ACK)
    max_frags: int = MAX_SKB_FRAGS

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
        # tcp_xmit_size_goal(): whole MSS multiples below the GSO limit, less header room
        return max(self.mss, (GSO_MAX_SIZE // self.mss - 1) * self.mss)


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
    """Bulk TCP sender; see the module docstring for the kernel path."""

    def __init__(self, cfg: Config, *, source: str, tso: bool):
        self.c = cfg
        self.tb = TraceBuilder()
        self.rng = np.random.default_rng(cfg.seed)
        self.source = source  # "zerocopy" | "splice"
        self.tso = tso
        self.buf_bytes = max(64 * KiB, cfg.frag_size, cfg.folio_pages * PAGE_SIZE)
        self.skb_ids, self.buf_ids, self.uarg_ids, self.pages = _Ids(), _Ids(), _Ids(), _Pages()
        # stream byte ranges: skb -> [lo, hi); buffer index -> (id, pfn, pages)
        self.range: dict[int, list[int]] = {}
        self.bufs: dict[int, tuple[int, int, int]] = {}
        self.users: dict[int, int] = {}  # buffer index -> live skbs overlapping it
        self.queued: set[int] = set()  # buffer indexes whose bytes are all in skbs
        self.uarg_of: dict[int, int] = {}  # buffer index -> uarg id (until the buffer is done)
        self.uarg_bufs: dict[int, list[int]] = {}  # uarg id -> its buffer indexes
        self.uarg_pending: dict[int, int] = {}  # uarg id -> buffers still referenced
        self.uarg_open: set[int] = set()  # uargs that more sends may still extend
        self.cur_uarg: int | None = None
        self.uarg_bytes = 0
        self.clone_of: dict[int, int] = {}  # write-queue skb -> clone in flight

    # stream <-> buffers
    def _bufs_in(self, lo: int, hi: int) -> range:
        return range(lo // self.buf_bytes, (hi - 1) // self.buf_bytes + 1) if hi > lo else range(0)

    def _new_skb(self, lo: int, hi: int) -> int:
        s = self.skb_ids.get()
        self.range[s] = [lo, hi]
        for b in self._bufs_in(lo, hi):
            self.users[b] = self.users.get(b, 0) + 1
        return s

    def _set_range(self, s: int, lo: int, hi: int) -> None:
        old = set(self._bufs_in(*self.range[s]))
        new = set(self._bufs_in(lo, hi))
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
        for b in self._bufs_in(lo, hi):
            self._drop_user(b)

    def _drop_user(self, b: int) -> None:
        self.users[b] -= 1
        self._maybe_done(b)

    def _maybe_done(self, b: int) -> None:
        """No skb references buffer ``b`` any more and all of it was queued."""
        if self.users.get(b, 0) or b not in self.queued:
            return
        self.queued.discard(b)
        if self.source == "zerocopy":
            u = self.uarg_of.pop(b)
            self.uarg_pending[u] -= 1
            self._try_complete(u)
        else:
            self._recycle(b)

    def _try_complete(self, u: int) -> None:
        """__msg_zerocopy_callback(): the user reads the completion, then reuses the buffers."""
        if self.uarg_pending[u] or u in self.uarg_open:
            return
        cpu = self.c.app_cpu
        self.tb.zc_complete(cpu, u)
        for b in self.uarg_bufs.pop(u):
            self.tb.buf_release(cpu, self.bufs[b][0])
            self._recycle(b)
        del self.uarg_pending[u]
        self.uarg_ids.put(u)

    def _recycle(self, b: int) -> None:
        buf_id, pfn, pages = self.bufs.pop(b)
        self.buf_ids.put(buf_id)
        self.pages.put(pfn, pages)

    # the send side
    def _alloc_buffer(self, b: int, nbytes: int) -> None:
        c = self.c
        pages = -(-nbytes // PAGE_SIZE)
        pfn = self.pages.get(pages)
        buf_id = self.buf_ids.get()
        uarg = self._uarg_for(b, nbytes) if self.source == "zerocopy" else -1
        self.tb.alloc(c.app_cpu, buf_id, pfn, pages, min(c.folio_pages, pages), uarg)
        self.bufs[b] = (buf_id, pfn, pages)

    def _uarg_for(self, b: int, nbytes: int) -> int:
        """msg_zerocopy_realloc(): extend the current uarg up to 512 KiB, else start a new one."""
        u = self.cur_uarg
        if u is None or self.uarg_bytes + nbytes > UARG_BYTE_LIMIT:
            if u is not None:
                self._close_uarg(u)
            u = self.uarg_ids.get()
            self.cur_uarg, self.uarg_bytes = u, 0
            self.uarg_bufs[u], self.uarg_pending[u] = [], 0
            self.uarg_open.add(u)
        self.uarg_bytes += nbytes
        self.uarg_of[b] = u
        self.uarg_bufs[u].append(b)
        self.uarg_pending[u] += 1
        return u

    def _close_uarg(self, u: int) -> None:
        self.uarg_open.discard(u)
        self._try_complete(u)

    def generate(self) -> np.ndarray:
        c, tb = self.c, self.tb
        total, goal = c.bytes_sent, c.size_goal
        pending_txc: list[tuple[int, list[int]]] = []  # (write-queue skb, device skbs) awaiting completion
        pending_ack: list[int] = []
        seq = 0
        skb = None
        skb_frags = 0
        skb_uarg = None

        def close_skb():
            nonlocal skb
            if skb is None:
                return
            self._transmit(skb, pending_txc)
            pending_ack.append(skb)
            skb = None
            while len(pending_txc) > c.txc_lag:
                self._complete(*pending_txc.pop(0))
            while len(pending_ack) > c.inflight:
                self._ack(pending_ack.pop(0), pending_txc)

        while seq < total:
            b = seq // self.buf_bytes
            b_lo = b * self.buf_bytes
            b_hi = min(b_lo + self.buf_bytes, total)
            self._alloc_buffer(b, b_hi - b_lo)
            buf_id, pfn0, _ = self.bufs[b]
            u = self.uarg_of.get(b)
            if skb is not None and u is not None and skb_uarg is not None and u != skb_uarg:
                close_skb()  # an skb points at one uarg: -EEXIST -> new segment
            while seq < b_hi:
                if skb is None:
                    skb = self._new_skb(seq, seq)
                    tb.skb_alloc(c.app_cpu, skb)
                    skb_frags, skb_uarg = 0, None
                room = goal - (self.range[skb][1] - self.range[skb][0])
                in_buf = seq - b_lo
                frag_end = min((in_buf // c.frag_size + 1) * c.frag_size, b_hi - b_lo)
                n = min(room, frag_end - in_buf)
                # the frag names the page its first byte is on (zerocopy_fill_skb_from_iter())
                tb.attach(c.app_cpu, skb, buf_id, pfn0 + in_buf // PAGE_SIZE, in_buf % PAGE_SIZE, n)
                self._set_range(skb, self.range[skb][0], seq + n)
                skb_frags += 1
                skb_uarg = u
                seq += n
                if room == n or skb_frags >= c.max_frags:
                    close_skb()
            self.queued.add(b)
            if self.source == "splice":
                # splice_to_socket(): pipe_buf_release() as soon as sendmsg() returns
                tb.buf_release(c.app_cpu, buf_id)
            self._maybe_done(b)
        close_skb()
        while pending_txc:
            self._complete(*pending_txc.pop(0))
        while pending_ack:
            self._ack(pending_ack.pop(0), pending_txc)
            while pending_txc:
                self._complete(*pending_txc.pop(0))
        if self.cur_uarg is not None:
            self._close_uarg(self.cur_uarg)
        return tb.build()

    def _transmit(self, s: int, pending_txc: list) -> None:
        """__tcp_transmit_skb(): clone for the device (pskb_copy if still cloned); GSO if no TSO."""
        c, tb = self.c, self.tb
        lo, hi = self.range[s]
        if s in self.clone_of:
            dev = self._new_skb(lo, hi)
            tb.segment(c.app_cpu, dev, s, 0, hi - lo)  # __pskb_copy_fclone(): a ref per frag
        else:
            dev = self._new_skb(lo, hi)
            tb.clone(c.app_cpu, dev, s)
            self.clone_of[s] = dev
        out = [dev]
        if not self.tso and hi - lo > c.mss:
            out = []
            for start in range(0, hi - lo, c.mss):
                seg = self._new_skb(lo + start, min(hi, lo + start + c.mss))
                tb.segment(c.app_cpu, seg, dev, start, min(c.mss, hi - lo - start))
                out.append(seg)
            self._consume(c.app_cpu, s, dev)
        pending_txc.append((s, out))

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

    def _ack(self, s: int, pending_txc: list) -> None:
        """Acknowledge write-queue skb ``s``: trims, loss repair, free."""
        c = self.c
        cpu = c.rx_cpu
        lo, hi = self.range[s]
        seg_starts = list(range(lo, hi, c.mss))
        lost = self.rng.random(len(seg_starts)) < c.loss_rate
        acked = lo  # cumulative ACK point within s
        run = 0
        for i, start in enumerate(seg_starts):
            end = min(start + c.mss, hi)
            if lost[i]:
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
                continue
            run += 1
            acked = end
            if run % c.ack_every == 0 and end < hi:
                self._trim(s, acked)
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
        dev = self._new_skb(lo, hi)
        if s in self.clone_of:
            self.tb.segment(c.rx_cpu, dev, s, 0, hi - lo)
        else:
            self.tb.clone(c.rx_cpu, dev, s)
            self.clone_of[s] = dev
        pend.append((s, [dev]))


# --------------------------------------------------------------------------- RX
def _rx_gro(cfg: Config) -> np.ndarray:
    """Receive path with page_pool slots, GRO and receive-queue coalescing."""
    c = cfg
    tb = TraceBuilder()
    rng = np.random.default_rng(c.seed)
    skb_ids, buf_ids, pages = _Ids(), _Ids(), _Pages()
    slot = max(c.frag_size, c.mss)
    page_bytes = c.folio_pages * PAGE_SIZE
    per_page = max(1, page_bytes // slot)
    npages = max(c.folio_pages, -(-slot // PAGE_SIZE))
    fp = c.folio_pages if npages % c.folio_pages == 0 else 1
    cur = None  # (buf_id, pfn, next slot)
    frags_left: dict[int, int] = {}  # buffer id -> live frags
    released: set[int] = set()
    buf_pfn: dict[int, int] = {}
    skb_bufs: dict[int, list[int]] = {}
    gro = None  # the flow's GRO skb
    gro_len = 0
    queue: list[int] = []  # receive queue (oldest first); queue[-1] may take coalesces
    queue_len: dict[int, int] = {}
    blocked_until = -1  # packet index before which reads wait for a retransmission
    n_pkts = -(-c.bytes_sent // c.mss)
    read_lag = c.inflight

    def free(cpu, s):
        tb.free(cpu, s)
        skb_ids.put(s)
        for b in skb_bufs.pop(s):
            frags_left[b] -= 1
            if frags_left[b] == 0 and b in released:
                released.discard(b)
                buf_ids.put(b)
                pages.put(buf_pfn.pop(b), npages)

    def deliver(s, length):
        """TCP receive: coalesce into the queue tail when it fits, else append."""
        nonlocal queue
        if queue and len(skb_bufs[queue[-1]]) + len(skb_bufs[s]) <= c.max_frags:
            tail = queue[-1]
            tb.coalesce(c.rx_cpu, tail, s)
            skb_bufs[tail].extend(skb_bufs[s])
            skb_bufs[s] = []
            queue_len[tail] += length
            free(c.rx_cpu, s)  # kfree_skb_partial()
        else:
            queue.append(s)
            queue_len[s] = length

    def flush_gro():
        nonlocal gro, gro_len
        if gro is not None:
            deliver(gro, gro_len)
            gro, gro_len = None, 0

    def read(upto_pkt):
        # the application copies and frees whole skbs, oldest first
        while len(queue) > 1 and upto_pkt >= blocked_until:
            s = queue.pop(0)
            del queue_len[s]
            free(c.app_cpu, s)

    for i in range(n_pkts):
        length = min(c.mss, c.bytes_sent - i * c.mss)
        if cur is None or cur[2] >= per_page:
            if cur is not None:
                tb.buf_release(c.rx_cpu, cur[0])  # pool hands out its last slot of this page
                released.add(cur[0])
                if frags_left[cur[0]] == 0:
                    released.discard(cur[0])
                    buf_ids.put(cur[0])
                    pages.put(buf_pfn.pop(cur[0]), npages)
            b = buf_ids.get()
            pfn = pages.get(npages)
            tb.alloc(c.rx_cpu, b, pfn, npages, fp)
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
            # a hole: GRO flushes, and readers wait for the retransmission
            flush_gro()
            blocked_until = i + c.inflight
        if gro is None:
            gro, gro_len = s, length
        elif len(skb_bufs[gro]) + 1 <= c.max_frags and gro_len + length < GSO_MAX_SIZE:
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
        if (i + 1) % (NAPI_BUDGET // 2) == 0 and len(queue) > read_lag:
            read(i)
    flush_gro()
    while queue:
        s = queue.pop(0)
        free(c.app_cpu, s)
    if cur is not None:
        tb.buf_release(c.rx_cpu, cur[0])
    return tb.build()


@dataclass(frozen=True)
class Workload:
    name: str
    summary: str
    make: Callable[[Config], np.ndarray]


WORKLOADS: dict[str, Workload] = {
    w.name: w
    for w in (
        Workload("tcp_send", "bulk TCP send, MSG_ZEROCOPY, TSO: clones, ACK trims, loss repair",
                 lambda c: _Sender(c, source="zerocopy", tso=True).generate()),
        Workload("tcp_gso", "bulk TCP send, MSG_ZEROCOPY, software GSO: skb_segment per MSS",
                 lambda c: _Sender(c, source="zerocopy", tso=False).generate()),
        Workload("multipage_send", "MSG_SPLICE_PAGES send of multi-page frags; holder lets go at return",
                 lambda c: _Sender(c, source="splice", tso=True).generate()),
        Workload("rx_gro", "receive: page_pool slots, GRO, receive-queue coalescing, reader frees",
                 _rx_gro),
    )
}


def generate(workload: str, **params) -> np.ndarray:
    """A trace of ``workload`` with the given :class:`Config` fields."""
    try:
        w = WORKLOADS[workload]
    except KeyError:
        raise ValueError(f"unknown workload {workload!r}; known: {', '.join(WORKLOADS)}") from None
    return w.make(Config(**params))

"""The copy path of a plain send: ``tcp_sendmsg_locked()`` copying small messages into the socket's page_frag.

A kernel service that sends a kvec without MSG_SPLICE_PAGES (ceph's messenger v2, iSCSI, the SunRPC
client) and a user ``send()`` take the same path (net/ipv4/tcp.c ``tcp_sendmsg_locked()``, the
``zc == 0`` branch, v6.18; the same in v6.12). Its loop, once per pass (``tcp:tcp_sendmsg_locked``):

* the tail of the write queue, if it is still unsent and shorter than the size goal, takes more bytes;
  else a new skb (``tcp_stream_alloc_skb()``, a fast-clone pair) starts;
* ``sk_page_frag_refill()`` -> ``skb_page_frag_refill(32, ...)`` (net/core/sock.c): a page whose refcount
  is 1 again (every skb that pointed into it freed) is reused from offset 0; else it is kept while 32 bytes
  fit; else it is ``put_page()``'d and an order-3 (32 KiB, ``SKB_FRAG_PAGE_ORDER``) page allocated;
* the pass copies at most what is left of the skb's size goal and of the page (``pfrag->size -
  pfrag->offset``): a message is cut at both;
* the bytes grow the skb's last frag when they continue it (``skb_can_coalesce()``: same page, offset at its
  end), else make a new frag (``skb_fill_page_desc()``) and take ``page_ref_inc()``; past
  ``net.core.max_skb_frags`` frags the skb is closed (``tcp_mark_push()``, a new segment);
* at the end, ``tcp_push()`` sends a partial tail unless Nagle, autocork or the window holds it: whether the
  next call finds it unsent is timing, ``tail_unsent`` (as in :class:`fraglife.model.workloads.Config`).

Refcount atomics: one ``page_ref_inc()`` per new frag, one ``put_page()`` per frag when the last skb sharing
the data is freed, one ``put_page()`` per page the cache leaves (``skb_page_frag_refill()``). The page's
reuse in place needs every skb pointing into it freed before the next send: timing the model leaves out
(it counts one refill per 32 KiB copied, the most there can be). Allocation is no atomic (``alloc_pages()``
sets the count), and neither is the reuse test (``page_ref_count()`` reads it).

Plain Python (no compiled twin): a few passes per message, fast enough for every size the chapter needs.
"""

from __future__ import annotations

from dataclasses import dataclass

from . import trace as T
from .workloads_twin import Config

#: SKB_FRAG_PAGE_ORDER = get_order(32768): the socket's page_frag pages (include/net/sock.h)
PFRAG_BYTES = 32768
#: skb_page_frag_refill()'s ``sz`` from sk_page_frag_refill(): a page is kept while 32 bytes still fit
PFRAG_MIN = 32


@dataclass(frozen=True)
class CopyPath:
    """Counts of ``messages`` plain sends of ``size`` bytes each (whole run)."""

    size: int
    messages: int
    passes: int  # tcp:tcp_sendmsg_locked hits
    skbs: int  # write-queue skbs allocated (each transmitted once: no loss)
    frags: int  # new frags: page_ref_inc() each
    refills: int  # order-3 page allocations (no reuse in place)
    gso_skbs: int  # skbs longer than one MSS
    gso_frags: int  # frags in those

    @property
    def bytes(self) -> int:
        return self.size * self.messages

    def per_message(self, name: str) -> float:
        return getattr(self, name) / self.messages

    def per_mib(self, name: str) -> float:
        return getattr(self, name) * (1 << 20) / self.bytes

    @property
    def atomics(self) -> int:
        """Refcount atomics of the run: an inc per new frag and its put at free, a put per page left."""
        return 2 * self.frags + max(0, self.refills - 1)

    @property
    def send_atomics(self) -> int:
        """Those taken in sendmsg() on the sender's CPU (the frag incs and the page puts at refill)."""
        return self.frags + max(0, self.refills - 1)

    @property
    def free_atomics(self) -> int:
        """Those taken where the skbs are freed (the ACK's CPU): a put per frag."""
        return self.frags

    @property
    def frags_per_gso_skb(self) -> float:
        return self.gso_frags / self.gso_skbs if self.gso_skbs else 0.0

    @property
    def frags_per_skb(self) -> float:
        return self.frags / self.skbs if self.skbs else 0.0


def _check(size: int, messages: int, mss: int, tail_unsent: float, max_frags: int) -> None:
    for name, v, lo in (("size", size, 1), ("messages", messages, 1), ("mss", mss, 1), ("max_frags", max_frags, 1)):
        if isinstance(v, bool) or not isinstance(v, int) or v < lo:
            raise ValueError(f"{name} = {v!r} is not allowed: expected an integer >= {lo}")
    if isinstance(tail_unsent, bool) or not 0.0 <= float(tail_unsent) <= 1.0:
        raise ValueError(f"tail_unsent = {tail_unsent!r} is not allowed: expected a share in [0, 1]")


def copy_sends(size: int, messages: int, *, mss: int = 1448, tail_unsent: float = 0.0,
               max_frags: int = T.MAX_SKB_FRAGS) -> CopyPath:
    """``messages`` plain sends of ``size`` bytes through ``tcp_sendmsg_locked()``'s copy loop; ``tail_unsent``:
    the share of calls whose partial tail the next call still finds unsent (spread evenly, no randomness)."""
    _check(size, messages, mss, tail_unsent, max_frags)
    goal = Config(mss=mss).size_goal
    passes = skbs = frags = refills = gso_skbs = gso_frags = 0
    tail = None  # [len, frags] of the unsent tail skb
    page, off = -1, PFRAG_BYTES  # the socket's page_frag: no page yet
    last = None  # (page, end offset) of the tail skb's last frag
    kept = 0.0  # Bresenham accumulator of tail_unsent

    def close(t):
        nonlocal gso_skbs, gso_frags
        if t[0] > mss:
            gso_skbs += 1
            gso_frags += t[1]

    for _ in range(messages):
        left = size
        while left:
            passes += 1
            if tail is None or tail[0] >= goal:
                tail, last = [0, 0], None
                skbs += 1
            if PFRAG_BYTES - off < PFRAG_MIN:
                page, off = page + 1, 0
                refills += 1
            copy = min(goal - tail[0], left, PFRAG_BYTES - off)
            if last != (page, off):
                if tail[1] >= max_frags:  # tcp_mark_push(), new segment: no new pass
                    close(tail)
                    tail, last = [0, 0], None
                    skbs += 1
                frags += 1
                tail[1] += 1
            tail[0] += copy
            off += copy
            left -= copy
            last = (page, off)
            if tail[0] >= goal:  # tcp_push_one(): sent as it fills
                close(tail)
                tail = None
        kept += tail_unsent
        if tail is not None and kept >= 1.0 - 1e-12:
            kept -= 1.0  # still unsent at the next call
        elif tail is not None:
            close(tail)
            tail = None
    if tail is not None:
        close(tail)
    return CopyPath(size, messages, passes, skbs, frags, refills, gso_skbs, gso_frags)


def tail_share(size: int, skbs_per_message: float, mss: int = 1448) -> float:
    """The share of calls that found an unsent tail, from a transfer's skbs per message: each call leaves
    ``ceil(size / goal)`` skbs when every tail is pushed and ``size / goal`` when every tail is kept, and
    the kernel's count lies between (clamped to [0, 1])."""
    goal = Config(mss=mss).size_goal
    pushed, packed = -(-size // goal), size / goal
    if pushed <= packed:
        return 0.0
    return min(1.0, max(0.0, (pushed - skbs_per_message) / (pushed - packed)))

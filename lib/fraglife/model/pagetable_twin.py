"""Looking user buffers up for MSG_ZEROCOPY: per skb today, one batched lookup, or faulting up front.

The specification in plain Python. ``lookup`` (here, and compiled in :mod:`.pagetable`) replays
``messages`` sendmsg() iterators of ``iov_count`` iovecs of ``iov_size`` bytes
and count the page-table work each strategy does. Kernel rules (torvalds/linux
v6.12 unless said):

- ``per_skb`` (today): ``tcp_sendmsg_locked()`` fills an skb up to the size
  goal with ``skb_zerocopy_iter_stream()`` -> ``zerocopy_fill_skb_from_iter()``
  (net/core/datagram.c), which calls ``iov_iter_get_pages2()`` for at most
  ``MAX_SKB_FRAGS - nr_frags`` pages of *one* iovec at a time
  (``first_iovec_segment()``, lib/iov_iter.c); a page continuing the last frag
  of the same folio merges into it, any other page starts a frag; 17 frags
  close the skb (-EMSGSIZE, a new skb).
- Each call is one ``get_user_pages_fast()``: ``gup_fast()`` walks the page
  tables from the top without locks and stops at the first page it cannot
  take; the rest of the call goes to the slow path, ``__gup_longterm_locked()``
  -> ``__get_user_pages()``, under ``mmap_read_lock``, with one
  ``follow_page_mask()`` per page and a fault for a page not mapped
  (``gup_fast_fallback()``, mm/gup.c). A PTE page takes one reference; a
  PMD-mapped THP one ``try_grab_folio_fast()`` for all its pages in the call
  (``gup_fast_pmd_leaf()``).
- A read-only GUP of an anonymous page never written maps the shared zero page
  (``do_anonymous_page()`` without FAULT_FLAG_WRITE, mm/memory.c): no
  allocation.
- ``batched`` (the thread's proposal): at each sendmsg() one lookup of the whole
  remaining iterator, one call per run of contiguous iovecs, no page cap; the
  pages the socket does not take in this call are released and looked up again
  by the next call.
- ``populate``: the application faults its whole iterator in before the first
  sendmsg() of a message (``madvise(MADV_POPULATE_WRITE)``, mm/madvise.c: a
  write fault per page, allocating and zeroing it), then today's lookups.

Model choices, each stated in the chapter: every message uses fresh buffers
whose pages are mapped with probability ``resident_fraction`` (a page not
mapped has never been written); the 2 MiB regions a ``thp_share`` of the
buffer covers are mapped THPs; each sendmsg() starts a new skb; the socket
takes ``accept_bytes`` per call and the application calls again with the rest.
Give-backs of merged references (chapter 01) are left out: they are the same in
every strategy.
"""

from __future__ import annotations

import numpy as np

from .rng import GOLDEN, MASK, MIX1, MIX2

PAGE = 4096
PMD_PAGES = 512
MAX_SKB_FRAGS = 17
STRATEGIES = ("per_skb", "batched", "populate")
PER_SKB, BATCHED, POPULATE = range(3)
LAYOUTS = ("contiguous", "scattered")
#: the most bytes one sendmsg() may describe here (the kernel's cap is MAX_RW_COUNT, about 2 GiB)
MAX_MESSAGE = 1 << 30

LOOKUP_FIELDS = ("messages", "sendmsgs", "bytes", "skbs", "calls", "fast_pte", "pmd_leaves", "pmd_pages",
                 "slow_calls", "slow_pages", "zero_faults", "populate_calls", "populate_pages", "pages_looked_up",
                 "pages_sent", "frags", "local_puts")


def iovecs(iov_count: int, iov_size: int, layout: str) -> tuple[np.ndarray, np.ndarray]:
    """(byte offset, length) of each iovec in a 2 MiB-aligned region: back to back, or each on pages of its own
    with a page between them (so no two are contiguous)."""
    if layout not in LAYOUTS:
        raise ValueError(f"layout = {layout!r} is not allowed: expected one of {', '.join(LAYOUTS)}")
    if iov_count < 1 or iov_size < 1:
        raise ValueError(f"iov_count = {iov_count}, iov_size = {iov_size} are not allowed: expected both >= 1")
    stride = iov_size if layout == "contiguous" else (-(-iov_size // PAGE) + 1) * PAGE
    return (np.arange(iov_count, dtype=np.int64) * stride, np.full(iov_count, iov_size, dtype=np.int64))


def u01(seed: int, k: int) -> float:
    """:func:`_u01` in plain Python."""
    z = (seed + (k + 1) * GOLDEN) & MASK
    z = ((z ^ (z >> 30)) * MIX1) & MASK
    z = ((z ^ (z >> 27)) * MIX2) & MASK
    z ^= z >> 31
    return (z >> 11) * (1.0 / (1 << 53))


def check(iov_count, iov_size, layout, messages, resident_fraction, thp_share, accept_fraction, strategy, size_goal,
           max_frags):
    offs, lens = iovecs(iov_count, iov_size, layout)
    if strategy not in STRATEGIES:
        raise ValueError(f"strategy = {strategy!r} is not allowed: expected one of {', '.join(STRATEGIES)}")
    if iov_count * iov_size > MAX_MESSAGE:
        raise ValueError(f"iov_count x iov_size = {iov_count * iov_size} is not allowed: expected at most "
                         f"{MAX_MESSAGE} bytes per sendmsg()")
    if messages < 0 or not 0 <= resident_fraction <= 1 or not 0 <= thp_share <= 1 or not 0 < accept_fraction <= 1:
        raise ValueError(f"messages = {messages}, resident_fraction = {resident_fraction}, thp_share = {thp_share}, "
                         f"accept_fraction = {accept_fraction}: expected messages >= 0, fractions in [0, 1], "
                         f"accept_fraction > 0")
    if size_goal < PAGE or max_frags < 1:
        raise ValueError(f"size_goal = {size_goal}, max_frags = {max_frags}: expected size_goal >= {PAGE}, "
                         f"max_frags >= 1")
    accept = max(1, int(accept_fraction * iov_count * iov_size))
    return offs, lens, accept


def lookup(iov_count: int, iov_size: int, layout: str = "scattered", messages: int = 1,
           resident_fraction: float = 1.0, thp_share: float = 0.0, accept_fraction: float = 1.0,
           strategy: str = "per_skb", size_goal: int = 65160, max_frags: int = MAX_SKB_FRAGS,
           seed: int = 1) -> dict:
    """Page-table work of ``messages`` sendmsg() iterators under one strategy (counts of
    :data:`LOOKUP_FIELDS`), one page at a time over sets and dicts."""
    offs, lens, accept = check(iov_count, iov_size, layout, messages, resident_fraction, thp_share, accept_fraction,
                                strategy, size_goal, max_frags)
    offs, lens = [int(x) for x in offs], [int(x) for x in lens]
    c = dict.fromkeys(LOOKUP_FIELDS, 0)
    nv = len(offs)
    region_pages = -(-(offs[-1] + lens[-1]) // PAGE)  # ceil
    regions = -(-region_pages // PMD_PAGES)
    seed = int(seed) & MASK

    def runs(i, o):
        """Runs of contiguous iovecs from position (i, o): [lo, hi) byte ranges."""
        out, lo = [], offs[i] + o
        k = i
        while k < nv:
            hi = offs[k] + lens[k]
            while k + 1 < nv and offs[k + 1] == hi:
                k += 1
                hi = offs[k] + lens[k]
            out.append((lo, hi))
            k += 1
            if k < nv:
                lo = offs[k]
        return out

    def gup(q0, n, present, thp):
        c["calls"] += 1
        c["pages_looked_up"] += n
        fast, leaves = True, set()
        for q in range(q0, q0 + n):
            r = q // PMD_PAGES
            if fast and r in thp:  # a PMD leaf: one grab for all its pages in this call
                if r not in leaves:
                    c["pmd_leaves"] += 1
                    leaves.add(r)
                c["pmd_pages"] += 1
                continue
            if fast and q in present:
                c["fast_pte"] += 1
                continue
            if fast:  # gup-fast stops here; the slow path takes the rest of the call
                fast = False
                c["slow_calls"] += 1
            c["slow_pages"] += 1
            if q not in present and r not in thp:
                c["zero_faults"] += 1
                present.add(q)

    def fill(i, o, a, present, thp):
        skb_bytes, frags, last = size_goal, max_frags, None
        while a > 0:
            if skb_bytes >= size_goal or frags >= max_frags:
                c["skbs"] += 1
                skb_bytes, frags, last = 0, 0, None
            req = min(a, size_goal - skb_bytes, lens[i] - o)
            addr = offs[i] + o
            start = addr % PAGE
            n = min(-(-(start + req) // PAGE), max_frags - frags)
            copied = min(req, n * PAGE - start)
            if strategy != "batched":
                gup(addr // PAGE, n, present, thp)
            pos = addr
            while pos < addr + copied:
                q = pos // PAGE
                size = min(addr + copied - pos, PAGE - pos % PAGE)
                head = (q // PMD_PAGES) * PMD_PAGES if q // PMD_PAGES in thp else q
                if not (frags and last == (head, pos)):
                    frags += 1
                    c["frags"] += 1
                last = (head, pos + size)
                pos += size
            c["pages_sent"] += -(-(start + copied) // PAGE)
            a -= copied
            skb_bytes += copied
            o += copied
            if o == lens[i]:
                i, o = i + 1, 0
        return i, o

    for m in range(messages):
        c["messages"] += 1
        thp = {r for r in range(regions) if u01(seed, 2 * (m * regions + r)) < thp_share}
        present = {q for q in range(regions * PMD_PAGES)
                   if q // PMD_PAGES in thp or u01(seed, 2 * (m * regions * PMD_PAGES + q) + 1) < resident_fraction}
        if strategy == "populate":
            for lo, hi in runs(0, 0):
                c["populate_calls"] += 1
                for q in range(lo // PAGE, -(-hi // PAGE)):
                    if q not in present:
                        c["populate_pages"] += 1
                        present.add(q)
        i = o = 0
        left = sum(lens)
        while left > 0:
            c["sendmsgs"] += 1
            a = min(left, accept)
            if strategy == "batched":
                looked = 0
                for lo, hi in runs(i, o):
                    n = -(-hi // PAGE) - lo // PAGE
                    gup(lo // PAGE, n, present, thp)
                    looked += n
                before = c["pages_sent"]
                i, o = fill(i, o, a, present, thp)
                c["local_puts"] += max(0, looked - (c["pages_sent"] - before))
            else:
                i, o = fill(i, o, a, present, thp)
            left -= a
            c["bytes"] += a
    return c

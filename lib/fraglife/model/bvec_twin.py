"""Frags as bio_vecs of physical address + length: how many, in how many skbs, at what cost.

The specification, in plain Python: :func:`pack` and the address sums here are what :mod:`.bvec`
(the module the package imports) compiles, function by function, under the same names.

A buffer is its pages in virtual order and two facts between page i and page i+1
(from a pagemap measurement, or built): whether page i+1 is the next physical page
(``contig``), and whether it is the next page of the same folio (``same_folio``). Frag
rules (:data:`RULES`) cut the buffer where they must:

``splice``
    today's MSG_SPLICE_PAGES: ``skb_splice_from_iter()`` cuts at every page
    (``part = min(PAGE_SIZE - off, len)``) and ``skb_append_pagefrags()`` adds one frag
    per page (net/core/skbuff.c, v6.12);
``zerocopy``
    today's MSG_ZEROCOPY: ``zerocopy_fill_skb_from_iter()`` merges a page into the
    previous frag only if both have the same compound head and the offsets continue
    (net/core/datagram.c, v6.12), so a frag is a run of pages inside one folio;
``phys``
    the thread's future: a frag is a physical address and a length, so any physically
    contiguous run is one frag, across folio boundaries.

:func:`pack` fills skbs the way ``tcp_sendmsg_locked()`` does: frags are
appended until the skb holds ``max_frags`` of them or its payload reaches the size
goal, a frag that does not fit whole is cut there and its rest starts the next skb.
It counts skbs, frags, GSO segments of ``mss`` bytes and the frag pieces each
segment gets (``skb_segment()`` takes one frag reference per piece, v6.12), and,
for each frag, how many pages and folios it covers.

:func:`address_sum_page` / :func:`address_sum_phys` turn frags into
kernel virtual addresses the two ways: from a page pointer, as ``page_address()`` does
for a direct-mapped page on x86_64 (``page_to_virt()``: (page - vmemmap) / sizeof(struct
page) gives the PFN, shifted and added to PAGE_OFFSET; arch/x86/include/asm/page.h and
include/asm-generic/memory_model.h, v6.12), or from a physical address as
``phys_to_virt()`` does (``__va()``: add PAGE_OFFSET). Both are arithmetic; what differs
is a subtraction and a shift.
"""

from __future__ import annotations

import numpy as np

PAGE = 4096
RULES = ("splice", "zerocopy", "phys")
SPLICE, ZEROCOPY, PHYS = range(3)
# pack() results
COUNTS = ("skbs", "frags", "segments", "segment_pieces", "multi_folio_frags", "extra_folio_pages",
          "max_frags_in_skb", "bytes", "frag_pages", "multi_page_frags")

# x86_64 with 4-level paging and no KASLR (Documentation/arch/x86/x86_64/mm.rst, v6.12);
# only their arithmetic matters here
PAGE_OFFSET = 0xFFFF888000000000
VMEMMAP_START = 0xFFFFEA0000000000
STRUCT_PAGE = 64
MASK64 = (1 << 64) - 1


def check_pack(frag_pages, starts, first_byte, nbytes, max_frags, goal, mss):
    frag_pages = np.asarray(frag_pages, np.int64)
    starts = np.asarray(starts, np.int64)
    if frag_pages.sum() != starts.size:
        raise ValueError(f"frags cover {int(frag_pages.sum())} pages, the buffer has {starts.size}")
    if first_byte < 0 or first_byte + nbytes > starts.size * PAGE:
        raise ValueError(f"send of {nbytes} bytes at {first_byte} does not fit a buffer of {starts.size} pages")
    for name, v in (("max_frags", max_frags), ("goal", goal), ("mss", mss), ("nbytes", nbytes)):
        if v < 1:
            raise ValueError(f"{name} = {v!r} is not allowed: expected a positive integer")
    return frag_pages, starts


def pack(frag_pages, starts, *, first_byte: int = 0, nbytes: int, max_frags: int, goal: int, mss: int) -> dict:
    """Counts of sending ``nbytes`` of the buffer in skbs: byte ranges cut into frag pieces and skbs, in plain
    Python (:func:`.bvec.pack` compiles it)."""
    fp, st = check_pack(frag_pages, starts, first_byte, nbytes, max_frags, goal, mss)
    edges = [0]
    for n in fp.tolist():
        edges.append(edges[-1] + n * PAGE)
    folio_of = []  # folio index of each page
    for s in st.tolist():
        folio_of.append((folio_of[-1] if folio_of else -1) + s)
    c = dict.fromkeys(COUNTS, 0)
    pos, end = first_byte, first_byte + nbytes
    skbs: list[list[tuple[int, int]]] = [[]]
    while pos < end:
        skb = skbs[-1]
        used = sum(b - a for a, b in skb)
        frag_end = min(e for e in edges if e > pos)
        take = min(frag_end, end, pos + goal - used) - pos
        skb.append((pos, pos + take))
        pages = range(pos // PAGE, (pos + take - 1) // PAGE + 1)
        c["frag_pages"] += len(pages)
        c["multi_page_frags"] += len(pages) > 1
        folios = sorted({folio_of[p] for p in pages})
        if len(folios) > 1:
            c["multi_folio_frags"] += 1
            c["extra_folio_pages"] += sum(1 for p in pages if folio_of[p] != folio_of[pages[0]])
        pos += take
        if len(skb) == max_frags or used + take == goal or pos == end:
            skbs.append([])
    for skb in skbs:
        if not skb:
            continue
        size = sum(b - a for a, b in skb)
        c["skbs"] += 1
        c["frags"] += len(skb)
        c["bytes"] += size
        c["max_frags_in_skb"] = max(c["max_frags_in_skb"], len(skb))
        offsets, o = [], 0
        for a, b in skb:
            offsets.append((o, o + b - a))
            o += b - a
        for s in range(0, size, mss):
            c["segments"] += 1
            c["segment_pieces"] += sum(1 for lo, hi in offsets if lo < min(s + mss, size) and hi > s)
    return c


def address_sum_page(page, off, length) -> int:
    """Sum over frags of ``page_address(page) + off`` (and the lengths), modulo 2^64 as the machine adds."""
    return sum(PAGE_OFFSET + ((int(p) - VMEMMAP_START) // STRUCT_PAGE << 12) + int(o) + int(ln)
               for p, o, ln in zip(page, off, length)) & MASK64


def address_sum_phys(phys, length) -> int:
    """Sum over frags of ``phys_to_virt(phys)`` (and the lengths), modulo 2^64 as the machine adds."""
    return sum(PAGE_OFFSET + int(p) + int(ln) for p, ln in zip(phys, length)) & MASK64

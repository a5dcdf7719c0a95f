"""Frags as bio_vecs of physical address + length: how many, in how many skbs, at what cost.

The specification, in plain Python: :func:`pack`, :func:`zerocopy_pack` and the address sums here are
what :mod:`.bvec` (the module the package imports) compiles, function by function, under the same names.

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

:func:`zerocopy_pack` is MSG_ZEROCOPY's own fill, as the kernel does it (v6.18.0):
``zerocopy_fill_skb_from_iter()`` (net/core/datagram.c) looks pages up with one
``iov_iter_get_pages2()`` per at most ``max_frags - nr_frags`` pages (here ``max_frags`` is
the compile-time ``MAX_SKB_FRAGS``, 17 on this machine: ``net.core.max_skb_frags`` does not
limit this path); gup-fast grabs a PTE page once and a PMD-mapped THP once per leaf per call
and sets PG_referenced on each (``gup_fast_pte_range()``, ``gup_fast_pmd_leaf()``, mm/gup.c:
``flag_atomics``); a page continuing the last frag in the same folio merges into it, and each
run of merged pages in a call gives its surplus references back with one ``page_ref_sub()``.
An skb is full at the size goal or when a call leaves it with ``max_frags`` frags
(``-EMSGSIZE``): a page that would have merged then starts the next skb. Software GSO
(``skb_segment()``, net/core/skbuff.c) takes, per segment, one ``ubuf_info`` reference
(``skb_zerocopy_clone()`` -> ``net_zcopy_get()``) and one page reference per frag slice
(``__skb_frag_ref()``), dropped again when the segments are freed.

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
#: zerocopy_pack() results: COUNTS, then the lookups' and software GSO's
ZC_COUNTS = COUNTS + ("gup_calls", "gup_pages", "gup_pte", "gup_pmd", "pmd_pages", "give_backs", "flag_atomics",
                      "attach_ref_atomics", "gso_uarg_refs", "gso_page_refs")
PMD_PAGES = 512

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


def pmd_pages_default(frag_pages, starts) -> list[bool]:
    """Per page: PMD-mapped, taken as the pages of a folio of exactly ``PMD_PAGES`` pages in the buffer (an anonymous
    THP); pages of smaller folios are PTE-mapped."""
    st = [int(x) for x in np.asarray(starts).tolist()]
    out, i = [], 0
    while i < len(st):
        j = i + 1
        while j < len(st) and not st[j]:
            j += 1
        out += [j - i == PMD_PAGES] * (j - i)
        i = j
    return out


def zerocopy_pack(frag_pages, starts, *, first_byte: int = 0, nbytes: int, max_frags: int, goal: int, mss: int,
                  pmd_mapped=None) -> dict:
    """Counts (:data:`ZC_COUNTS`) of one MSG_ZEROCOPY send of ``nbytes`` of the buffer, the kernel's fill call by
    call, in plain Python (:func:`.bvec.zerocopy_pack` compiles it). ``frag_pages``: the zerocopy rule's frags;
    ``pmd_mapped``: per page (default :func:`pmd_pages_default`)."""
    fp, st = check_pack(frag_pages, starts, first_byte, nbytes, max_frags, goal, mss)
    pmd = [bool(x) for x in (pmd_pages_default(fp, st) if pmd_mapped is None else pmd_mapped)]
    if len(pmd) != st.size:
        raise ValueError(f"pmd_mapped has {len(pmd)} entries, the buffer {st.size} pages")
    frag_start = [False] * st.size  # pages that start a frag of the rule (not the next page of the same folio)
    k = 0
    for n in fp.tolist():
        frag_start[k] = True
        k += n
    folio = []
    for s_ in st.tolist():
        folio.append((folio[-1] if folio else -1) + s_)
    c = dict.fromkeys(ZC_COUNTS, 0)
    pos, end = first_byte, first_byte + nbytes
    skbs: list[list[list[int]]] = []  # per skb, its frags as [first byte, end byte]
    skb_bytes, skb_frags = goal, max_frags
    while pos < end:
        if skb_bytes >= goal or skb_frags >= max_frags:  # tcp_sendmsg_locked(): a new skb
            skbs.append([])
            skb_bytes, skb_frags = 0, 0
        frags = skbs[-1]
        copy = min(goal - skb_bytes, end - pos)
        while copy > 0 and skb_frags < max_frags:  # zerocopy_fill_skb_from_iter(): one GUP call
            start = pos % PAGE
            n = min(-(-(start + copy) // PAGE), max_frags - skb_frags)
            took = min(copy, n * PAGE - start)
            p0 = pos // PAGE
            c["gup_calls"] += 1
            c["gup_pages"] += n
            leaves = {folio[p] for p in range(p0, p0 + n) if pmd[p]}
            c["pmd_pages"] += sum(pmd[p] for p in range(p0, p0 + n))
            c["gup_pte"] += sum(not pmd[p] for p in range(p0, p0 + n))
            c["gup_pmd"] += len(leaves)
            merging = False
            at = pos
            for p in range(p0, p0 + n):
                piece = min(pos + took - at, PAGE - at % PAGE)
                if frags and frags[-1][1] == at and (at % PAGE or not frag_start[p]):  # continues the last frag
                    c["give_backs"] += not merging
                    merging = True
                    frags[-1][1] = at + piece
                else:
                    frags.append([at, at + piece])
                    skb_frags += 1
                    merging = False
                at += piece
            pos += took
            copy -= took
            skb_bytes += took
    for frags in skbs:
        size = sum(b - a for a, b in frags)
        c["skbs"] += 1
        c["frags"] += len(frags)
        c["bytes"] += size
        c["max_frags_in_skb"] = max(c["max_frags_in_skb"], len(frags))
        for a, b in frags:
            pages = (b - 1) // PAGE - a // PAGE + 1
            c["frag_pages"] += pages
            c["multi_page_frags"] += pages > 1
        offsets, o = [], 0
        for a, b in frags:
            offsets.append((o, o + b - a))
            o += b - a
        for s_ in range(0, size, mss):
            c["segments"] += 1
            c["segment_pieces"] += sum(1 for lo, hi in offsets if lo < min(s_ + mss, size) and hi > s_)
    c["flag_atomics"] = c["gup_pte"] + c["gup_pmd"]
    c["attach_ref_atomics"] = c["gup_pte"] + c["gup_pmd"] + c["give_backs"]
    c["gso_uarg_refs"] = c["segments"]
    c["gso_page_refs"] = c["segment_pieces"]
    return c


def gup_work(c: dict) -> dict:
    """What one send's lookups did (:func:`zerocopy_pack`), in the terms GUP's price is given in
    (:func:`fraglife.model.costs.price_gup`): every page is gup-fast (the buffer was written)."""
    return {"sends": 1, "gup_calls": c["gup_calls"], "pages": c["gup_pages"], "frags": c["frags"], "slow_calls": 0,
            "slow_pages": 0, "faulted_pages": 0, "flag_atomics": c["flag_atomics"],
            "ref_atomics": c["attach_ref_atomics"] + c["frags"], "pin_atomics": 0}


def address_sum_page(page, off, length) -> int:
    """Sum over frags of ``page_address(page) + off`` (and the lengths), modulo 2^64 as the machine adds."""
    return sum(PAGE_OFFSET + ((int(p) - VMEMMAP_START) // STRUCT_PAGE << 12) + int(o) + int(ln)
               for p, o, ln in zip(page, off, length)) & MASK64


def address_sum_phys(phys, length) -> int:
    """Sum over frags of ``phys_to_virt(phys)`` (and the lengths), modulo 2^64 as the machine adds."""
    return sum(PAGE_OFFSET + int(p) + int(ln) for p, ln in zip(phys, length)) & MASK64

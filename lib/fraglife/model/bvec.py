"""Frags as bio_vecs of physical address + length: how many, in how many skbs, at what cost.

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

:func:`pack` (numba) fills skbs the way ``tcp_sendmsg_locked()`` does: frags are
appended until the skb holds ``max_frags`` of them or its payload reaches the size
goal, a frag that does not fit whole is cut there and its rest starts the next skb.
It counts skbs, frags, GSO segments of ``mss`` bytes and the frag pieces each
segment gets (``skb_segment()`` takes one frag reference per piece, v6.12), and,
for each frag, how many pages and folios it covers. :mod:`.bvec_twin` is the specification: its
``pack`` and address sums are these, in plain Python, and it holds the definitions both share.

:func:`address_sum_page` / :func:`address_sum_phys` (numba; twins of the same names) turn frags into
kernel virtual addresses the two ways: from a page pointer, as ``page_address()`` does
for a direct-mapped page on x86_64 (``page_to_virt()``: (page - vmemmap) / sizeof(struct
page) gives the PFN, shifted and added to PAGE_OFFSET; arch/x86/include/asm/page.h and
include/asm-generic/memory_model.h, v6.12), or from a physical address as
``phys_to_virt()`` does (``__va()``: add PAGE_OFFSET). Both are arithmetic; what differs
is a subtraction and a shift.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ..jit import CACHE
from . import bvec_twin as twin
from .bvec_twin import (COUNTS, PAGE, PAGE_OFFSET, PHYS, PMD_PAGES, RULES, SPLICE, STRUCT_PAGE, VMEMMAP_START,
                        ZC_COUNTS, ZEROCOPY, check_pack, gup_work, pmd_pages_default)

# pack() results, indexes into COUNTS
(SKBS, FRAGS, SEGMENTS, SEG_PIECES, MULTI_FOLIO_FRAGS, EXTRA_FOLIO_PAGES, MAX_FRAGS_SEEN, BYTES,
 FRAG_PAGES, MULTI_PAGE_FRAGS) = range(10)
# zerocopy_pack() results beyond COUNTS
(GUP_CALLS, GUP_PAGES, GUP_PTE, GUP_PMD, ZC_PMD_PAGES, GIVE_BACKS, FLAG_ATOMICS, ATTACH_REF_ATOMICS, GSO_UARG_REFS,
 GSO_PAGE_REFS) = range(10, len(ZC_COUNTS))


def frag_lengths(contig: np.ndarray, same_folio: np.ndarray, rule: str) -> np.ndarray:
    """Pages per frag under ``rule`` for a buffer with these breaks between its pages."""
    if rule not in RULES:
        raise ValueError(f"rule = {rule!r} is not allowed: expected one of {', '.join(RULES)}")
    contig = np.asarray(contig, bool)
    same_folio = np.asarray(same_folio, bool)
    if contig.shape != same_folio.shape:
        raise ValueError("contig and same_folio must have one entry per pair of neighbouring pages")
    if np.any(same_folio & ~contig):
        raise ValueError("same_folio implies contig: the next page of a folio is the next physical page")
    n = contig.size + 1
    keep = {"splice": np.zeros(contig.size, bool), "zerocopy": same_folio, "phys": contig}[rule]
    ends = np.flatnonzero(~keep)
    edges = np.concatenate(([0], ends + 1, [n]))
    return np.diff(edges).astype(np.int64)


def folio_starts(same_folio: np.ndarray) -> np.ndarray:
    """1 where a page starts a new folio (page 0 always does), per page."""
    return np.concatenate(([1], (~np.asarray(same_folio, bool)).astype(np.int64)))


#: the most a device may ask for: 8 x GSO_MAX_SEGS (include/linux/netdevice.h)
GSO_MAX_SIZE = 8 * 65535


def size_goal(mss: int, gso_max_size: int, max_tcp_header: int = 320) -> int:
    """``tcp_xmit_size_goal()``: whole MSS below ``sk_gso_max_size``, which ``sk_setup_caps()``
    sets to the device's GSO limit (at most ``GSO_MAX_SIZE``) less ``MAX_TCP_HEADER + 1``
    (``sk_dst_gso_max_size()``, net/core/sock.c; net/ipv4/tcp.c, v6.12). ``MAX_TCP_HEADER`` is
    ``L1_CACHE_ALIGN(128 + MAX_HEADER)``: 320 bytes where MAX_HEADER is LL_MAX_HEADER (128) + 48."""
    limit = min(int(gso_max_size), GSO_MAX_SIZE)
    return max(int(mss), (limit - max_tcp_header - 1) // int(mss) * int(mss))


@njit(cache=CACHE)
def pack_array(frag_pages, starts, first_byte, nbytes, max_frags, goal, mss):
    """Counts (COUNTS) of sending ``nbytes`` from byte ``first_byte`` of the buffer.

    ``frag_pages``: pages per frag, in order; ``starts``: per page, 1 if it starts a folio.
    """
    out = np.zeros(10, np.int64)
    # the frags' byte ranges in the buffer
    nfr = len(frag_pages)
    fstart = np.empty(nfr + 1, np.int64)
    fstart[0] = 0
    for i in range(nfr):
        fstart[i + 1] = fstart[i] + frag_pages[i] * 4096
    folio_cum = np.empty(len(starts) + 1, np.int64)  # folios started before page p
    folio_cum[0] = 0
    for p in range(len(starts)):
        folio_cum[p + 1] = folio_cum[p] + starts[p]
    pos = first_byte
    end = first_byte + nbytes
    f = 0
    while f < nfr and fstart[f + 1] <= pos:
        f += 1
    skb_bytes = 0
    skb_frags = 0
    piece_lo = np.empty(64, np.int64)  # this skb's frag pieces, in skb offsets
    npiece = 0
    while pos < end:
        take = min(fstart[f + 1], end, pos + (goal - skb_bytes)) - pos
        # one frag piece [pos, pos + take)
        if npiece == len(piece_lo):
            bigger = np.empty(2 * len(piece_lo), np.int64)
            bigger[:npiece] = piece_lo[:npiece]
            piece_lo = bigger
        piece_lo[npiece] = skb_bytes
        npiece += 1
        out[FRAGS] += 1
        p0 = pos // 4096
        p1 = (pos + take - 1) // 4096
        out[FRAG_PAGES] += p1 - p0 + 1
        if p1 > p0:
            out[MULTI_PAGE_FRAGS] += 1
        folios = folio_cum[p1 + 1] - folio_cum[p0] + (1 - starts[p0])
        if folios > 1:
            out[MULTI_FOLIO_FRAGS] += 1
            # pages not in the folio of the frag's first page
            q = p0 + 1
            while q <= p1 and starts[q] == 0:
                q += 1
            out[EXTRA_FOLIO_PAGES] += p1 - q + 1
        skb_bytes += take
        skb_frags += 1
        pos += take
        if pos == fstart[f + 1]:
            f += 1
        if skb_frags == max_frags or skb_bytes == goal or pos == end:
            out[SKBS] += 1
            out[BYTES] += skb_bytes
            if skb_frags > out[MAX_FRAGS_SEEN]:
                out[MAX_FRAGS_SEEN] = skb_frags
            # GSO segments of mss bytes and the frag pieces each overlaps
            nseg = (skb_bytes + mss - 1) // mss
            out[SEGMENTS] += nseg
            j = 0
            for s in range(nseg):
                lo = s * mss
                hi = min(lo + mss, skb_bytes)
                while j + 1 < npiece and piece_lo[j + 1] <= lo:
                    j += 1
                k = j
                while k < npiece and piece_lo[k] < hi:
                    out[SEG_PIECES] += 1
                    k += 1
            skb_bytes = 0
            skb_frags = 0
            npiece = 0
    return out


def pack(frag_pages, starts, *, first_byte: int = 0, nbytes: int, max_frags: int, goal: int, mss: int) -> dict:
    """Counts of sending ``nbytes`` of the buffer in skbs (see the module docstring)."""
    fp, st = check_pack(frag_pages, starts, first_byte, nbytes, max_frags, goal, mss)
    c = pack_array(fp, st, int(first_byte), int(nbytes), int(max_frags), int(goal), int(mss))
    return dict(zip(COUNTS, (int(x) for x in c)))


@njit(cache=CACHE)
def _close_skb(lo, hi, nfr, mss, out):
    """An skb of frags [lo[i], hi[i]) for i < nfr: its counts, its GSO segments and the frag slices each gets."""
    size = 0
    for i in range(nfr):
        size += hi[i] - lo[i]
        pages = (hi[i] - 1) // 4096 - lo[i] // 4096 + 1
        out[FRAG_PAGES] += pages
        if pages > 1:
            out[MULTI_PAGE_FRAGS] += 1
    out[SKBS] += 1
    out[FRAGS] += nfr
    out[BYTES] += size
    if nfr > out[MAX_FRAGS_SEEN]:
        out[MAX_FRAGS_SEEN] = nfr
    nseg = (size + mss - 1) // mss
    out[SEGMENTS] += nseg
    for s in range(nseg):
        a = s * mss
        b = min(a + mss, size)
        o = 0
        for i in range(nfr):
            e = o + hi[i] - lo[i]
            if o < b and e > a:
                out[SEG_PIECES] += 1
            o = e


@njit(cache=CACHE)
def zerocopy_pack_array(frag_pages, starts, pmd, first_byte, nbytes, max_frags, goal, mss):
    """Counts (ZC_COUNTS) of one MSG_ZEROCOPY send: the kernel's fill, call by call (bvec_twin.zerocopy_pack)."""
    out = np.zeros(len(ZC_COUNTS), np.int64)
    npg = len(starts)
    frag_start = np.zeros(npg, np.bool_)
    k = 0
    for i in range(len(frag_pages)):
        frag_start[k] = True
        k += frag_pages[i]
    folio = np.empty(npg, np.int64)
    f = -1
    for p in range(npg):
        f += starts[p]
        folio[p] = f
    lo = np.empty(max_frags, np.int64)
    hi = np.empty(max_frags, np.int64)
    leaves = np.empty(max_frags, np.int64)
    pos = first_byte
    end = first_byte + nbytes
    skb_bytes = goal
    nfr = max_frags
    opened = False
    while pos < end:
        if skb_bytes >= goal or nfr >= max_frags:  # tcp_sendmsg_locked(): a new skb
            if opened:
                _close_skb(lo, hi, nfr, mss, out)
            opened = True
            skb_bytes = 0
            nfr = 0
        copy = min(goal - skb_bytes, end - pos)
        while copy > 0 and nfr < max_frags:  # zerocopy_fill_skb_from_iter(): one GUP call
            start = pos % PAGE
            n = min((start + copy + PAGE - 1) // PAGE, max_frags - nfr)
            took = min(copy, n * PAGE - start)
            p0 = pos // PAGE
            out[GUP_CALLS] += 1
            out[GUP_PAGES] += n
            nleaves = 0
            for p in range(p0, p0 + n):
                if pmd[p]:
                    out[ZC_PMD_PAGES] += 1
                    seen = False
                    for j in range(nleaves):
                        if leaves[j] == folio[p]:
                            seen = True
                    if not seen:  # one grab per PMD leaf per call
                        leaves[nleaves] = folio[p]
                        nleaves += 1
                else:
                    out[GUP_PTE] += 1
            out[GUP_PMD] += nleaves
            merging = False
            at = pos
            for p in range(p0, p0 + n):
                piece = min(pos + took - at, PAGE - at % PAGE)
                if nfr > 0 and hi[nfr - 1] == at and (at % PAGE != 0 or not frag_start[p]):  # continues the last frag
                    if not merging:
                        out[GIVE_BACKS] += 1
                    merging = True
                    hi[nfr - 1] = at + piece
                else:
                    lo[nfr] = at
                    hi[nfr] = at + piece
                    nfr += 1
                    merging = False
                at += piece
            pos += took
            copy -= took
            skb_bytes += took
    if opened:
        _close_skb(lo, hi, nfr, mss, out)
    out[FLAG_ATOMICS] = out[GUP_PTE] + out[GUP_PMD]
    out[ATTACH_REF_ATOMICS] = out[GUP_PTE] + out[GUP_PMD] + out[GIVE_BACKS]
    out[GSO_UARG_REFS] = out[SEGMENTS]
    out[GSO_PAGE_REFS] = out[SEG_PIECES]
    return out


def zerocopy_pack(frag_pages, starts, *, first_byte: int = 0, nbytes: int, max_frags: int, goal: int, mss: int,
                  pmd_mapped=None) -> dict:
    """Counts (:data:`ZC_COUNTS`) of one MSG_ZEROCOPY send of ``nbytes`` of the buffer, filled as the kernel fills it
    (see the module docstring of :mod:`.bvec_twin`). ``frag_pages``: the ``zerocopy`` rule's frags
    (:func:`frag_lengths`); ``max_frags``: the compile-time MAX_SKB_FRAGS; ``pmd_mapped``: per page, whether a PMD
    maps it (default: the pages of folios of ``PMD_PAGES`` pages)."""
    fp, st = check_pack(frag_pages, starts, first_byte, nbytes, max_frags, goal, mss)
    pmd = np.asarray(pmd_pages_default(fp, st) if pmd_mapped is None else pmd_mapped, np.bool_)
    if pmd.size != st.size:
        raise ValueError(f"pmd_mapped has {pmd.size} entries, the buffer {st.size} pages")
    c = zerocopy_pack_array(fp, st, pmd, int(first_byte), int(nbytes), int(max_frags), int(goal), int(mss))
    return dict(zip(ZC_COUNTS, (int(x) for x in c)))


def phys_from_layout(contig: np.ndarray, seed: int = 1) -> np.ndarray:
    """Physical page numbers for a buffer with these contiguity breaks (runs placed apart)."""
    rng = np.random.default_rng(seed)
    n = contig.size + 1
    pfn = np.empty(n, np.int64)
    pfn[0] = 1 << 20
    jumps = rng.integers(2, 1 << 18, size=n)
    for i in range(1, n):
        pfn[i] = pfn[i - 1] + 1 if contig[i - 1] else pfn[i - 1] + jumps[i]
    return pfn


# -- frag -> virtual address ----------------------------------------------------------------------

@njit(cache=CACHE)
def address_sum_page(page, off, length):
    """Sum over frags of ``page_address(page) + off`` (and the lengths): the page-pointer way."""
    s = np.uint64(0)
    for i in range(len(page)):
        pfn = (page[i] - VMEMMAP_START) >> 6  # / sizeof(struct page)
        s += PAGE_OFFSET + (pfn << 12) + off[i] + length[i]
    return s


@njit(cache=CACHE)
def address_sum_phys(phys, length):
    """Sum over frags of ``phys_to_virt(phys)`` (and the lengths): the phys+len way."""
    s = np.uint64(0)
    for i in range(len(phys)):
        s += PAGE_OFFSET + phys[i] + length[i]
    return s


def frags_for_access(n: int, seed: int = 1) -> dict:
    """``n`` frags in both encodings, describing the same memory: page pointers + offsets, and
    physical addresses (both as uint64)."""
    rng = np.random.default_rng(seed)
    pfn = rng.integers(1 << 10, 1 << 26, size=n, dtype=np.int64)
    off = rng.integers(0, PAGE, size=n, dtype=np.int64)
    length = rng.integers(1, PAGE + 1, size=n, dtype=np.int64)
    page = (np.uint64(VMEMMAP_START) + pfn.astype(np.uint64) * np.uint64(STRUCT_PAGE))
    phys = (pfn.astype(np.uint64) << np.uint64(12)) + off.astype(np.uint64)
    return {"page": page, "off": off.astype(np.uint64), "len": length.astype(np.uint64), "phys": phys}


def bench_section(args=None, *, pages: int = 1 << 16, twin_pages: int = 1 << 10, repeats: int = 3) -> dict:
    """``fraglife bench`` section: pages packed per second (numba vs twin, per rule) and frags turned into
    addresses per second, both ways (one run)."""
    rng = np.random.default_rng(1)

    def buffer(n):
        contig = rng.random(n - 1) < 0.7
        return contig, contig & (rng.random(n - 1) < 0.5)

    big, small = buffer(pages), buffer(twin_pages)
    kw = dict(max_frags=17, goal=size_goal(1448, 65536), mss=1448)
    out: dict = {"pages": pages, "twin_pages": twin_pages, "pack": {}}
    for rule in RULES:
        fb, sb = (frag_lengths(c, s, rule) for c, s in (big, small))
        args_big = (fb, folio_starts(big[1]))
        args_small = (sb, folio_starts(small[1]))
        pack(*args_small, nbytes=twin_pages * PAGE, **kw)
        best = min(_timed(lambda: pack(*args_big, nbytes=pages * PAGE, **kw)) for _ in range(repeats))
        t_twin = _timed(lambda: twin.pack(*args_small, nbytes=twin_pages * PAGE, **kw))
        out["pack"][rule] = {"pages_per_s": pages / best, "twin_pages_per_s": twin_pages / t_twin,
                             "numba_over_twin": (pages / best) / (twin_pages / t_twin)}
    f = frags_for_access(1 << 20)
    small_f = frags_for_access(1 << 12)
    address_sum_page(small_f["page"], small_f["off"], small_f["len"])
    address_sum_phys(small_f["phys"], small_f["len"])
    tp = min(_timed(lambda: address_sum_page(f["page"], f["off"], f["len"])) for _ in range(repeats))
    tq = min(_timed(lambda: address_sum_phys(f["phys"], f["len"])) for _ in range(repeats))
    t_twin = _timed(lambda: twin.address_sum_page(small_f["page"], small_f["off"], small_f["len"]))
    n = len(f["page"])
    out["address"] = {"page_frags_per_s": n / tp, "phys_frags_per_s": n / tq, "page_over_phys_time": tp / tq,
                      "numba_over_twin": (n / tp) / (len(small_f["page"]) / t_twin)}
    return out


def _timed(fn) -> float:
    import time

    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0

"""Memory descriptors: what walking a frag loads, the specification in plain Python.

Two models for chapter 02 (``struct page`` shrinking to one typed word).

**Memory.** Today every page frame has a 64-byte ``struct page`` (the memmap). The
memdesc plan (kernelnewbies.org/MatthewWilcox/Memdescs and .../Memdescs/Path) shrinks
it in two steps: to 32 bytes, once folios, slabs, page tables, zpdescs and the
page_pool "bump" allocator have descriptors of their own allocated from slab caches;
then to one 8-byte word whose low 4 bits give the type and the rest point to the
descriptor (free pages too get one). Descriptors come from slabs aligned to 16 bytes,
so their sizes are multiples of 16 (Memdescs page). :func:`metadata` adds up the
memmap and the descriptors for a census of units (one per folio, slab, page table,
free block...); sizes are the caller's (from BTF, or the plan's sketch).

**Indirection.** What reaching a frag's metadata (the refcount, the page_pool
fields) loads, per layout (:data:`LAYOUTS`):

``struct_page``
    today: the frag points at a ``struct page``; ``page_folio()`` reads the page's
    ``compound_head`` word, and for a tail page the refcount is then in the head's
    ``struct page`` (include/linux/page-flags.h ``page_folio()``, ``_compound_head()``,
    v6.12): one dependent load for a base page or a head, two for a tail.
``memdesc32``, ``memdesc8``
    the plan: the page is 32 or 8 bytes and holds the memdesc word; the refcount
    lives in the separately allocated descriptor. Always two dependent loads, but
    the memmap is 2 or 8 times denser, so neighbouring pages share a line.
``desc_ref``
    the frag points at the descriptor itself, as ``netmem_ref`` already does for a
    ``net_iov`` (include/net/netmem.h, v6.12): one load, no memmap.

A ``net_iov`` frag is the same in every layout: its descriptor is already separate
(``struct net_iov`` in the ``niovs`` array of its ``net_iov_area``).

:func:`walk` (here; compiled in :mod:`.memdesc`, the module the package imports) counts,
per skb, the cache lines each frag's metadata touches: a line first touched in this
skb's walk is a *miss* (priced by the caller at the working set's load latency),
one touched again a *hit*; and the dependent depth of each frag's chain.
"""

from __future__ import annotations

import numpy as np

from . import kernels

LINE = 64
PAGE = 4096
LAYOUTS = ("struct_page", "memdesc32", "memdesc8", "desc_ref")
STRUCT_PAGE, MEMDESC32, MEMDESC8, DESC_REF = range(4)
#: memmap bytes per page frame in each layout (desc_ref keeps whichever memmap; the walk never reads it)
PAGE_BYTES = {"struct_page": 64, "memdesc32": 32, "memdesc8": 8, "desc_ref": 8}
#: where the memdesc word sits in the page: the 32-byte sketch puts it after ``flags``
#: (kernelnewbies Memdescs/Path), the 8-byte page is nothing but the word
MEMDESC_WORD_OFFSET = {"memdesc32": 8, "memdesc8": 0}
KINDS = ("folio", "page_pool", "net_iov")
FOLIO, PAGE_POOL, NET_IOV = range(3)
#: the struct page word page_folio() reads first: compound_head, in the first union (v6.12; BTF offset 8)
COMPOUND_HEAD_OFFSET = 8
# counts a walk returns
COUNTS = ("loads", "misses", "hits", "depth_sum", "max_depth", "frags", "skbs")
REGION = 1 << 44  # descriptors of kind k live at (k + 1) * REGION; the memmap starts at 0

#: The folio descriptor sketched for the 32-byte stage (kernelnewbies Memdescs/Path), field by
#: field; large folios "will store more information here".
FOLIO_SKETCH = (("flags", 8), ("lru", 16), ("mapping", 8), ("index", 8), ("private", 8), ("_refcount", 4),
                ("_mapcount", 4), ("pincount", 4), ("order", 1), ("(3 bytes available)", 3), ("pfn", 8),
                ("memcg", 8))
FOLIO_SKETCH_REFCOUNT = 48  # offset of _refcount in the sketch

MEMDESCS = "kernelnewbies.org/MatthewWilcox/Memdescs"
MEMDESCS_PATH = "kernelnewbies.org/MatthewWilcox/Memdescs/Path"
#: The end state's memmap per page frame is a range, not one number (kernel-facts "Memmap overhead";
#: notes: rules-send item 8). Wilcox's pages give the two ends: one 8-byte word per page with free
#: pages described out of line (Memdescs: type 5 "Free (struct buddy pointer)"), and the interim
#: 32-byte struct page whose buddy_list / pcp_list overlap the memdesc word (Memdescs/Path). Between
#: them, free-page linkage kept in the memmap (one or two words) is this book's reading of the
#: plan, not Wilcox's: his pages state only the two ends.
END_STATE = (
    ("8 B", 8, "one memdesc word; free pages described out of line (type Free, a struct buddy pointer)",
     f"{MEMDESCS}"),
    ("16 B", 16, "the word and one word of free-page linkage kept in the memmap",
     f"this book's reading of {MEMDESCS} and {MEMDESCS_PATH} (Wilcox states only the two ends)"),
    ("24 B", 24, "the word and two words (a list_head) of free-page linkage kept in the memmap",
     f"this book's reading of {MEMDESCS} and {MEMDESCS_PATH} (Wilcox states only the two ends)"),
    ("32 B", 32, "the interim struct page: flags, buddy_list/pcp_list over the memdesc word, private, "
     "_mapcount, _refcount", f"{MEMDESCS_PATH}"),
)


def end_state(page: int = PAGE) -> list[dict]:
    """The end state's memmap bytes per page frame, low to high, with its share of RAM and where each comes from;
    ``cited`` marks the ends Wilcox's pages state."""
    return [{"stage": name, "page_bytes": b, "share_of_ram": b / page, "what": what, "source": src,
             "cited": not src.startswith("this book's")} for name, b, what, src in END_STATE]


def end_state_range(pages: float) -> tuple[float, float]:
    """(lowest, highest) bytes of memmap for ``pages`` page frames in the end state."""
    return float(pages) * END_STATE[0][1], float(pages) * END_STATE[-1][1]


#: sizeof(struct folio): four overlaid struct pages since the hugetlb fields moved to page[3]
#: (rule folio_256, 6.15; backported to 6.12.y), three before.
FOLIO_BYTES_BEFORE, FOLIO_BYTES_AFTER = 192, 256


def folio_bytes(release: str) -> int:
    """sizeof(struct folio) on kernel ``release`` (:mod:`.kernels` rule ``folio_256``; BTF is the authority on a
    running kernel: 256 B on this machine's 6.18)."""
    return FOLIO_BYTES_AFTER if kernels.follows(release, "folio_256") else FOLIO_BYTES_BEFORE


def walk_args(layout: str, stride, lo, hi, page_lo, page_hi):
    if layout not in LAYOUTS:
        raise ValueError(f"layout = {layout!r} is not allowed: expected one of {', '.join(LAYOUTS)}")
    vec = [np.asarray(v, np.int64) for v in (stride, lo, hi, page_lo, page_hi)]
    for name, v in zip(("stride", "lo", "hi", "page_lo", "page_hi"), vec):
        if v.shape != (3,):
            raise ValueError(f"{name} = {v!r} is not allowed: expected one value per kind ({', '.join(KINDS)})")
    if np.any(vec[2] <= vec[1]) or np.any(vec[4] <= vec[3]):
        raise ValueError("field spans must be non-empty: hi > lo and page_hi > page_lo for every kind")
    return (LAYOUTS.index(layout), PAGE_BYTES[layout], MEMDESC_WORD_OFFSET.get(layout, 0), *vec)


def walk(frags: dict, layout: str, *, stride, lo, hi, page_lo, page_hi) -> dict:
    """Walk the frags of every skb once under ``layout``; counts by name (:func:`.memdesc.walk` compiles it
    and documents the arguments)."""
    li, page_bytes, word_off, stride, lo, hi, page_lo, page_hi = walk_args(layout, stride, lo, hi, page_lo, page_hi)
    c = dict.fromkeys(COUNTS, 0)
    ss = [int(x) for x in frags["skb_start"]]

    def touch(addr, size, seen):
        for line in range(addr // LINE, (addr + size - 1) // LINE + 1):
            c["loads"] += 1
            if line in seen:
                c["hits"] += 1
            else:
                c["misses"] += 1
                seen.add(line)

    for s in range(len(ss) - 1):
        c["skbs"] += 1
        seen: set[int] = set()
        for f in range(ss[s], ss[s + 1]):
            c["frags"] += 1
            k, p, h, u = (int(frags[n][f]) for n in ("kind", "pfn", "head", "unit"))
            if k == NET_IOV:
                depth = 1
                touch(3 * REGION + u * int(stride[k]) + int(lo[k]), int(hi[k] - lo[k]), seen)
            elif LAYOUTS[li] == "struct_page":
                touch(p * 64 + COMPOUND_HEAD_OFFSET, 8, seen)
                depth = 2 if h != p else 1
                touch(h * 64 + int(page_lo[k]), int(page_hi[k] - page_lo[k]), seen)
            else:
                desc = (k + 1) * REGION + int(frags["slot"][u]) * int(stride[k]) + int(lo[k])
                if LAYOUTS[li] == "desc_ref":
                    depth = 1
                else:
                    depth = 2
                    touch(p * page_bytes + word_off, 8, seen)
                touch(desc, int(hi[k] - lo[k]), seen)
            c["depth_sum"] += depth
            c["max_depth"] = max(c["max_depth"], depth)
    return c


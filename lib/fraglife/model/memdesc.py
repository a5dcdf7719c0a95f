"""Memory descriptors: what the memmap costs at each stage, and what walking a frag loads.

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

:func:`walk` (numba) and ``memdesc_twin.walk`` (plain Python, the specification, in
:mod:`.memdesc_twin` with the definitions both share, re-exported here) count,
per skb, the cache lines each frag's metadata touches: a line first touched in this
skb's walk is a *miss* (priced by the caller at the working set's load latency),
one touched again a *hit*; and the dependent depth of each frag's chain.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ..jit import CACHE
from . import memdesc_twin as twin
from .memdesc_twin import (COMPOUND_HEAD_OFFSET, COUNTS, DESC_REF, END_STATE, FOLIO, FOLIO_BYTES_AFTER,
                           FOLIO_BYTES_BEFORE, FOLIO_SKETCH, FOLIO_SKETCH_REFCOUNT, KINDS, LAYOUTS, LINE, MEMDESC8,
                           MEMDESC32, MEMDESC_WORD_OFFSET, MEMDESCS, MEMDESCS_PATH, NET_IOV, PAGE, PAGE_BYTES,
                           PAGE_POOL, REGION, STRUCT_PAGE, end_state, end_state_range, folio_bytes, walk_args)

LOADS, MISSES, HITS, DEPTH_SUM, MAX_DEPTH, FRAGS, SKBS = range(7)


def round16(n: int) -> int:
    """Bytes a descriptor takes from a slab aligned to 16 bytes (Memdescs: sizes are multiples of 16)."""
    return -(-int(n) // 16) * 16


def sketch_bytes() -> int:
    return sum(b for _, b in FOLIO_SKETCH)


# -- memory ----------------------------------------------------------------------------------

def metadata(pages: float, units: dict[str, float], sizes: dict[str, float], page_bytes: float) -> dict:
    """Memmap and descriptor bytes: ``pages`` x ``page_bytes`` plus, for each unit type,
    ``units[t]`` descriptors of ``sizes[t]`` bytes (types without a size take none)."""
    desc = {t: float(n) * float(sizes[t]) for t, n in units.items() if sizes.get(t)}
    memmap = float(pages) * float(page_bytes)
    return {"memmap": memmap, "descriptors": sum(desc.values()), "total": memmap + sum(desc.values()),
            "by_type": desc}


def bytes_per_page(folio_pages: float, page_bytes: float, desc_bytes: float) -> float:
    """Metadata per page frame for memory in folios of ``folio_pages`` pages."""
    return page_bytes + desc_bytes / folio_pages


# -- the frag walk ----------------------------------------------------------------------------

@njit(cache=CACHE, inline="always")
def _touch(addr, size, seen, nseen, out):
    """Load the lines of [addr, addr + size); a line already in ``seen`` is a hit."""
    first = addr >> 6
    last = (addr + size - 1) >> 6
    for line in range(first, last + 1):
        out[LOADS] += 1
        hit = False
        for i in range(nseen):
            if seen[i] == line:
                hit = True
                break
        if hit:
            out[HITS] += 1
        else:
            out[MISSES] += 1
            seen[nseen] = line
            nseen += 1
    return nseen


@njit(cache=CACHE)
def walk_array(skb_start, pfn, head, unit, kind, layout, page_bytes, word_off, stride, lo, hi, page_lo, page_hi,
               slot):
    """Counts (see COUNTS) of walking every skb's frags once; arguments as :func:`walk`."""
    out = np.zeros(len(COUNTS), np.int64)
    seen = np.empty(64 * 8, np.int64)
    for s in range(len(skb_start) - 1):
        nseen = 0
        out[SKBS] += 1
        for f in range(skb_start[s], skb_start[s + 1]):
            if nseen > len(seen) - 8:  # a very long skb: grow the set
                bigger = np.empty(2 * len(seen), np.int64)
                bigger[:nseen] = seen[:nseen]
                seen = bigger
            out[FRAGS] += 1
            k = kind[f]
            if k == 2:  # net_iov: the frag points at its descriptor in every layout
                depth = 1
                nseen = _touch(3 * REGION + unit[f] * stride[k] + lo[k], hi[k] - lo[k], seen, nseen, out)
            elif layout == 0:  # struct_page
                base = pfn[f] * 64
                nseen = _touch(base + 8, 8, seen, nseen, out)  # compound_head
                depth = 1
                if head[f] != pfn[f]:
                    depth = 2
                    base = head[f] * 64
                nseen = _touch(base + page_lo[k], page_hi[k] - page_lo[k], seen, nseen, out)
            elif layout == 3:  # desc_ref
                depth = 1
                nseen = _touch((k + 1) * REGION + slot[unit[f]] * stride[k] + lo[k], hi[k] - lo[k], seen, nseen, out)
            else:  # memdesc32 / memdesc8: the word, then the descriptor it points at
                depth = 2
                nseen = _touch(pfn[f] * page_bytes + word_off, 8, seen, nseen, out)
                nseen = _touch((k + 1) * REGION + slot[unit[f]] * stride[k] + lo[k], hi[k] - lo[k], seen, nseen, out)
            out[DEPTH_SUM] += depth
            if depth > out[MAX_DEPTH]:
                out[MAX_DEPTH] = depth
    return out


def walk(frags: dict, layout: str, *, stride, lo, hi, page_lo, page_hi) -> dict:
    """Walk the frags of every skb once under ``layout``; counts by name.

    ``frags``: arrays ``skb_start`` (n_skbs + 1 offsets), and per frag ``pfn`` (the page
    the frag points at), ``head`` (its folio's head page), ``unit`` (its descriptor: folio,
    pool page or net_iov index), ``kind`` (0 folio, 1 page_pool, 2 net_iov), and ``slot``
    (per unit: where its descriptor sits in its slab). Per kind: descriptor bytes
    (``stride``), the byte span of the fields read in the descriptor (``lo``..``hi``) and
    in today's ``struct page`` (``page_lo``..``page_hi``).
    """
    a = walk_args(layout, stride, lo, hi, page_lo, page_hi)
    c = walk_array(frags["skb_start"], frags["pfn"], frags["head"], frags["unit"], frags["kind"], *a,
                   frags["slot"])
    return dict(zip(COUNTS, (int(x) for x in c)))



def frag_population(*, sample_pages: int, working_set_pages: int, folio_pages, folio_weights=None,
                    kind: str = "folio", rule: str = "splice", max_frags: int = 17, skb_pages: float = 16,
                    seed: int = 1) -> dict:
    """Frags of a buffer of ``sample_pages`` pages sent from memory of ``working_set_pages``.

    Folio sizes are drawn from ``folio_pages`` (pages each) with ``folio_weights`` (share of
    pages in each size). The buffer's folios sit at random, naturally aligned places in the
    working set, in an order unrelated to the buffer's (so consecutive folios are not
    physically adjacent), and their descriptors in random slab slots (as with
    CONFIG_SLAB_FREELIST_RANDOM). ``rule``: "splice" puts each page in a frag of its own
    (``skb_splice_from_iter()``), "zerocopy" each folio (``zerocopy_fill_skb_from_iter()``
    merges pages of one folio and points the frag at the head). An skb closes at
    ``max_frags`` frags or once it holds ``skb_pages`` pages of payload.
    ``kind`` "net_iov": the units are net_iovs, one per page, in array order.
    """
    if kind not in KINDS:
        raise ValueError(f"kind = {kind!r} is not allowed: expected one of {', '.join(KINDS)}")
    if rule not in ("splice", "zerocopy"):
        raise ValueError(f"rule = {rule!r} is not allowed: expected 'splice' or 'zerocopy'")
    rng = np.random.default_rng(seed)
    sizes = np.atleast_1d(np.asarray(folio_pages, np.int64))
    w = np.ones(sizes.size) if folio_weights is None else np.asarray(folio_weights, float)
    if kind == "net_iov":
        sizes, w = np.array([1]), np.array([1.0])
    # folios of each size in proportion to their pages
    per_folio = w / sizes
    p = per_folio / per_folio.sum()
    n_pages = int(sample_pages)
    draws = []
    total = 0
    while total < n_pages:
        d = sizes[rng.choice(sizes.size, size=max(16, (n_pages - total) // int(sizes.min()) // 2 + 1), p=p)]
        draws.append(d)
        total += int(d.sum())
    fsz = np.concatenate(draws)
    fsz = fsz[: int(np.searchsorted(np.cumsum(fsz), n_pages)) + 1]
    nf = fsz.size
    # physical places: the working set as slots of each folio's own size, aligned; distinct per size
    ws = max(int(working_set_pages), int(fsz.sum()))
    heads = np.empty(nf, np.int64)
    for sz in np.unique(fsz):
        idx = np.flatnonzero(fsz == sz)
        slots = ws // int(sz)
        pick = rng.choice(slots, size=idx.size, replace=False) if idx.size <= slots else rng.integers(0, slots, idx.size)
        heads[idx] = pick * int(sz)
    unit_slot = rng.permutation(nf).astype(np.int64)
    if kind == "net_iov":
        unit_slot = np.arange(nf, dtype=np.int64)
        heads = np.arange(nf, dtype=np.int64)
    kcode = KINDS.index(kind)
    if rule == "splice":
        fid = np.repeat(np.arange(nf), fsz)
        first = np.repeat(heads, fsz)
        off = np.arange(fsz.sum()) - np.repeat(np.cumsum(fsz) - fsz, fsz)
        pfn = first + off
        head = first
        npages = np.ones(pfn.size, np.int64)
    else:
        fid = np.arange(nf)
        pfn = heads.copy()
        head = heads.copy()
        npages = fsz.copy()
    # skbs: close at max_frags frags or skb_pages pages
    starts = [0]
    frags, pages = 0, 0
    for i, n in enumerate(npages.tolist()):
        if frags == max_frags or pages >= skb_pages:
            starts.append(i)
            frags, pages = 0, 0
        frags += 1
        pages += n
    starts.append(len(npages))
    return {"skb_start": np.asarray(starts, np.int64), "pfn": pfn.astype(np.int64), "head": head.astype(np.int64),
            "unit": fid.astype(np.int64), "kind": np.full(pfn.size, kcode, np.int64), "slot": unit_slot,
            "pages": int(npages.sum()), "folios": int(nf), "mean_folio_pages": float(fsz.mean())}


PMD_PAGES = 512
MAX_SKB_FRAGS = 17


def gup_visits(per_page: dict, *, max_frags: int = MAX_SKB_FRAGS, pmd_pages: int = PMD_PAGES) -> dict:
    """The metadata visits of MSG_ZEROCOPY's lookups of a buffer: ``per_page`` is the buffer as
    :func:`frag_population` gives it with ``rule="splice"`` (a frag per page, in order).

    Each of its skbs is looked up in calls of at most ``max_frags`` pages (``zerocopy_fill_skb_from_iter()``,
    net/core/datagram.c). gup-fast grabs a PTE page through its own ``struct page`` (``try_grab_folio_fast()``:
    ``page_folio()``, then the head), so every page of a PTE-mapped folio is a visit; a folio of ``pmd_pages``
    pages (taken as a PMD-mapped THP) is grabbed once per leaf per call at its head (``gup_fast_pmd_leaf()``,
    mm/gup.c, v6.18), so it is one visit per call, not one per page. Returns a population of the same form,
    one entry per visit."""
    n_units = int(per_page["unit"].max()) + 1 if len(per_page["unit"]) else 0
    pages_per_unit = np.bincount(per_page["unit"], minlength=n_units)
    keep, starts = [], [0]
    ss = per_page["skb_start"]
    for s in range(len(ss) - 1):
        for c0 in range(int(ss[s]), int(ss[s + 1]), max_frags):  # the GUP calls of this skb
            seen = set()
            for i in range(c0, min(c0 + max_frags, int(ss[s + 1]))):
                u = int(per_page["unit"][i])
                pmd = per_page["kind"][i] == FOLIO and pages_per_unit[u] == pmd_pages
                if not pmd:
                    keep.append(i)
                elif u not in seen:  # the leaf's one grab, at its head
                    seen.add(u)
                    keep.append(i)
        starts.append(len(keep))
    idx = np.asarray(keep, np.int64)
    pmd_head = (per_page["kind"][idx] == FOLIO) & (pages_per_unit[per_page["unit"][idx]] == pmd_pages)
    return {**per_page, "skb_start": np.asarray(starts, np.int64),
            "pfn": np.where(pmd_head, per_page["head"][idx], per_page["pfn"][idx]), "head": per_page["head"][idx],
            "unit": per_page["unit"][idx], "kind": per_page["kind"][idx], "visits": int(idx.size)}


def footprint(layout: str, kind: str, working_set_pages: float, mean_folio_pages: float, stride) -> float:
    """Bytes of metadata the walk reads from, over the whole working set: the memmap (if read)
    plus one descriptor per folio (or per net_iov)."""
    k = KINDS.index(kind)
    if kind == "net_iov":
        return working_set_pages * float(stride[k])
    units = working_set_pages / mean_folio_pages
    if layout == "struct_page":
        return working_set_pages * 64.0
    if layout == "desc_ref":
        return units * float(stride[k])
    return working_set_pages * PAGE_BYTES[layout] + units * float(stride[k])


# -- load latency by working set ---------------------------------------------------------------

def latency_at(points: list[tuple[float, float]], nbytes: float) -> float:
    """ns per load at a working set of ``nbytes``, from measured (bytes, ns) points.

    Interpolated in log2(bytes) over the monotone envelope of the points (a bigger working
    set is never priced faster than a smaller one, whatever the noise of one sample); below
    the smallest point the smallest's value, above the largest the largest's (DRAM).
    """
    pts = sorted((float(b), float(v)) for b, v in points)
    if not pts:
        raise ValueError("points = [] is not allowed: expected measured (bytes, ns) pairs")
    xs = np.log2([b for b, _ in pts])
    ys = np.maximum.accumulate([v for _, v in pts])
    return float(np.interp(np.log2(max(float(nbytes), 1.0)), xs, ys))


def bench_section(args=None, *, pages: int = 1 << 18, twin_pages: int = 1 << 14, repeats: int = 3) -> dict:
    """``fraglife bench`` section: frags walked per second, numba vs twin, per layout (one run)."""
    spans = dict(stride=[80, 48, 64], lo=[48, 8, 8], hi=[52, 48, 56], page_lo=[52, 8, 0], page_hi=[56, 48, 8])
    big = frag_population(sample_pages=pages, working_set_pages=1 << 24, folio_pages=[1, 16], seed=1)
    small = frag_population(sample_pages=twin_pages, working_set_pages=1 << 24, folio_pages=[1, 16], seed=1)
    out = {"frags": len(big["pfn"]), "twin_frags": len(small["pfn"]), "layouts": {}}
    for layout in LAYOUTS:
        walk(small, layout, **spans)  # compile or load outside the timing
        best = min(_timed(lambda: walk(big, layout, **spans)) for _ in range(repeats))
        t_twin = _timed(lambda: twin.walk(small, layout, **spans))
        fast, slow = len(big["pfn"]) / best, len(small["pfn"]) / t_twin
        out["layouts"][layout] = {"frags_per_s": fast, "twin_frags_per_s": slow, "numba_over_twin": fast / slow}
    return out


def _timed(fn) -> float:
    import time

    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0

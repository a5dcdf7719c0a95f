"""A census of this machine's physical pages by type, from /proc/kpageflags.

``/proc/kpageflags`` holds one 64-bit flag word per page frame, indexed by
PFN, readable by root only (fs/proc/page.c ``kpageflags_read`` and
``stable_page_flags``, v6.12; bit numbers from
include/uapi/linux/kernel-page-flags.h and, for bits 32 and up,
include/linux/kernel-page-flags.h, v6.12). Facts about the flags used here,
from ``stable_page_flags`` (v6.12):

- ``NOPAGE`` marks a hole (no struct page), distinct from a page with no flags.
- ``BUDDY`` is reported for every free page, head or not
  (``PageBuddy`` or ``page_count == 0 && is_free_buddy_page``).
- ``SLAB`` is tested on the folio, so a slab's tail pages count as slab too.
- ``THP`` is set for every page of any large rmappable folio (any THP size,
  anonymous or page cache), not only PMD-sized ones; ``COMPOUND_HEAD`` /
  ``COMPOUND_TAIL`` tell head from tail.
- ``ZERO_PAGE`` marks the shared zero page (and the huge zero folio).

``categories`` assigns each page exactly one type, first match in the
order listed in ``CATEGORIES``; ``flags`` counts every flag bit
independently. Free pages from BUDDY are cross-checked against
``nr_free_pages`` in /proc/vmstat. Pages with no flag at all are counted
apart: besides flagless kernel allocations they include memory that has a
struct page but is not managed by the page allocator (/proc/zoneinfo
``present`` − ``managed``) and PFNs a zone spans but does not have
(``spanned`` − ``present``); both sums are reported so a chapter does not
mistake them for used memory. ``MemFree`` is reported as is.

For the memdesc arithmetic of chapter 02, each category also counts its
``descriptors``: pages that are not a compound tail, i.e. one per folio, slab
or other compound page, one per base page; ``folio_sizes`` gives, for the
categories in ``SIZED``, how many units of each size (pages) there are; and
``buddyinfo`` the free blocks per order from /proc/buddyinfo (every free
page carries BUDDY, so flags alone cannot count free blocks).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from . import _sys
from ._base import ProbeUnavailable, kernel_release

NAME = "kpageflags"
TITLE = "census of physical pages by type (/proc/kpageflags)"
REQUIRED = ("kernel", "categories", "flags")

KPAGEFLAGS = "/proc/kpageflags"
CHUNK_PAGES = 1 << 20  # 8 MiB of flag words per read

# include/uapi/linux/kernel-page-flags.h (v6.12)
FLAGS = {
    "LOCKED": 0, "ERROR": 1, "REFERENCED": 2, "UPTODATE": 3, "DIRTY": 4, "LRU": 5, "ACTIVE": 6,
    "SLAB": 7, "WRITEBACK": 8, "RECLAIM": 9, "BUDDY": 10, "MMAP": 11, "ANON": 12, "SWAPCACHE": 13,
    "SWAPBACKED": 14, "COMPOUND_HEAD": 15, "COMPOUND_TAIL": 16, "HUGE": 17, "UNEVICTABLE": 18,
    "HWPOISON": 19, "NOPAGE": 20, "KSM": 21, "THP": 22, "OFFLINE": 23, "ZERO_PAGE": 24, "IDLE": 25,
    "PGTABLE": 26,
    # include/linux/kernel-page-flags.h (v6.12): kernel-internal, exported too
    "RESERVED": 32, "MLOCKED": 33, "OWNER_2": 34, "PRIVATE": 35, "PRIVATE_2": 36, "OWNER_PRIVATE": 37,
    "ARCH": 38, "SOFTDIRTY": 40, "ARCH_2": 41, "ARCH_3": 42,
}


#: categories whose pages come in compound units of several sizes: pages per unit, counted
SIZED = ("slab", "anon_thp", "file_large", "compound_other", "hugetlb", "page_table")


def _b(*names: str) -> np.uint64:
    v = 0
    for n in names:
        v |= 1 << FLAGS[n]
    return np.uint64(v)


def _has(f: np.ndarray, *names: str) -> np.ndarray:
    return (f & _b(*names)) != 0


#: Exclusive categories, first match wins: (name, test, meaning).
CATEGORIES = (
    ("hole", lambda f: _has(f, "NOPAGE"), "no struct page at this PFN"),
    ("hwpoison", lambda f: _has(f, "HWPOISON"), "memory failure"),
    ("offline", lambda f: _has(f, "OFFLINE"), "logically offline (balloon, hotplug)"),
    ("free", lambda f: _has(f, "BUDDY"), "free in the buddy allocator"),
    ("zero_page", lambda f: _has(f, "ZERO_PAGE"), "the shared zero page"),
    ("reserved", lambda f: _has(f, "RESERVED"), "reserved (kernel image, memmap, firmware)"),
    ("hugetlb", lambda f: _has(f, "HUGE"), "hugetlbfs pages"),
    ("slab", lambda f: _has(f, "SLAB"), "slab allocator (kmalloc, caches)"),
    ("page_table", lambda f: _has(f, "PGTABLE"), "page tables"),
    ("anon_thp", lambda f: _has(f, "ANON") & _has(f, "THP"), "anonymous large folios (THP)"),
    ("file_large", lambda f: ~_has(f, "ANON") & _has(f, "THP"), "page-cache large folios"),
    ("anon", lambda f: _has(f, "ANON"), "anonymous memory, base pages"),
    ("file", lambda f: _has(f, "LRU", "UPTODATE", "DIRTY", "SWAPBACKED", "MMAP", "WRITEBACK"),
     "page cache and shmem, base pages"),
    ("compound_other", lambda f: _has(f, "COMPOUND_HEAD", "COMPOUND_TAIL"),
     "other compound pages (page_pool, large kmalloc, ...)"),
    ("no_flags", lambda f: f == 0, "no flag at all: kernel allocations without flags (vmalloc, "
     "alloc_pages), and memory the page allocator does not manage (see crosscheck)"),
    ("other", lambda f: np.ones(f.shape, bool), "flags, but none that tells the type"),
)


def _census(path: str) -> tuple[dict, dict, dict, int, dict, dict]:
    cats = {name: 0 for name, _, _ in CATEGORIES}
    heads = {name: 0 for name, _, _ in CATEGORIES}
    sizes: dict[str, dict[int, int]] = {name: {} for name in SIZED}
    flags = {name: 0 for name in FLAGS}
    extra = {"thp_head": 0, "thp_tail": 0, "compound_head": 0, "compound_tail": 0, "mmap": 0}
    total = 0
    fd = os.open(path, os.O_RDONLY)
    try:
        while True:
            raw = os.read(fd, 8 * CHUNK_PAGES)
            if not raw:
                break
            f = np.frombuffer(raw, dtype=np.uint64)
            total += f.size
            left = np.ones(f.shape, bool)
            # a compound page is its head and the tails after it; chunks are 2^20 PFNs, aligned,
            # so only a gigantic (> 4 GiB) page could straddle two of them
            start = ~_has(f, "COMPOUND_TAIL")
            starts = np.flatnonzero(start)
            span = np.diff(np.append(starts, f.size))
            for name, test, _ in CATEGORIES:
                hit = left & test(f)
                cats[name] += int(hit.sum())
                heads[name] += int((hit & start).sum())
                if name in sizes:
                    n, c = np.unique(span[hit[starts]], return_counts=True)
                    for k, v in zip(n.tolist(), c.tolist()):
                        sizes[name][k] = sizes[name].get(k, 0) + v
                left &= ~hit
            for name, bit in FLAGS.items():
                flags[name] += int(((f >> np.uint64(bit)) & np.uint64(1)).sum())
            thp = _has(f, "THP")
            extra["thp_head"] += int((thp & _has(f, "COMPOUND_HEAD")).sum())
            extra["thp_tail"] += int((thp & _has(f, "COMPOUND_TAIL")).sum())
            extra["compound_head"] += int(_has(f, "COMPOUND_HEAD").sum())
            extra["compound_tail"] += int(_has(f, "COMPOUND_TAIL").sum())
            extra["mmap"] += int(_has(f, "MMAP").sum())
    finally:
        os.close(fd)
    return cats, flags, extra, total, heads, sizes


def _buddyinfo(path: str = "/proc/buddyinfo") -> dict:
    """Free blocks by order, summed over zones (mm/vmstat.c ``frag_show_print``)."""
    out: dict[str, int] = {}
    try:
        for line in Path(path).read_text().splitlines():
            counts = line.split("zone", 1)[1].split()[1:] if "zone" in line else []
            for order, n in enumerate(counts):
                out[str(order)] = out.get(str(order), 0) + int(n)
    except (OSError, ValueError, IndexError):
        return {}
    return out


def _zones() -> dict:
    """Sums over /proc/zoneinfo: spanned, present and managed pages."""
    out = {"spanned": 0, "present": 0, "managed": 0}
    try:
        for line in Path("/proc/zoneinfo").read_text().splitlines():
            parts = line.split()
            if len(parts) == 2 and parts[0] in out:
                out[parts[0]] += int(parts[1])
    except (OSError, ValueError):
        return {}
    return out


def _vmstat(key: str) -> int | None:
    try:
        for line in Path("/proc/vmstat").read_text().splitlines():
            k, v = line.split()
            if k == key:
                return int(v)
    except (OSError, ValueError):
        pass
    return None


def _meminfo() -> dict:
    out = {}
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            key, rest = line.split(":", 1)
            parts = rest.split()
            if parts:
                out[key] = int(parts[0])
    except (OSError, ValueError):
        pass
    return out


def measure(quick: bool = False) -> dict:
    if not os.path.exists(KPAGEFLAGS):
        raise ProbeUnavailable(f"{KPAGEFLAGS} is missing (CONFIG_PROC_PAGE_MONITOR off?)")
    try:
        cats, flags, extra, total, heads, sizes = _census(KPAGEFLAGS)
    except PermissionError as e:
        raise ProbeUnavailable(f"{KPAGEFLAGS} is readable by root only ({e.strerror})") from e
    if total == 0:
        raise ProbeUnavailable(f"{KPAGEFLAGS} returned no entries")
    mem = _meminfo()
    zones = _zones()
    page_kib = _sys.PAGE // 1024
    present = total - cats["hole"]
    return {
        "kernel": kernel_release(),
        "page_size": _sys.PAGE,
        "pfns": total,
        "pages": present,
        "categories": cats,
        "category_meaning": {name: meaning for name, _, meaning in CATEGORIES},
        "flags": flags,
        "compound": extra,
        "descriptors": heads,
        "folio_sizes": {name: {str(k): v for k, v in sorted(d.items())} for name, d in sizes.items()},
        "buddyinfo": _buddyinfo(),
        "memmap_bytes": present * 64,
        "crosscheck": {
            "free_pages_from_buddy_flag": cats["free"],
            "vmstat_nr_free_pages": _vmstat("nr_free_pages"),
            "zone_pages": zones,
            "present_not_managed_pages": zones["present"] - zones["managed"] if zones else None,
            "spanned_not_present_pages": zones["spanned"] - zones["present"] if zones else None,
            "MemTotal_kib": mem.get("MemTotal"), "MemFree_kib": mem.get("MemFree"),
            "AnonHugePages_kib": mem.get("AnonHugePages"), "Slab_kib": mem.get("Slab"),
            "PageTables_kib": mem.get("PageTables"),
            "page_kib": page_kib,
        },
    }


def summarize(data: dict) -> list[str]:
    pages = data["pages"]
    lines = [f"{data['pfns']} PFNs read, {pages} with a struct page ({pages * data['page_size'] >> 20} MiB), "
             f"{data['pfns'] - pages} holes"]
    for name, n in sorted(data["categories"].items(), key=lambda kv: -kv[1]):
        if name != "hole" and n:
            lines.append(f"{name:15s} {n:>10d} pages {n / pages:7.2%}")
    c = data["compound"]
    lines.append(f"THP head/tail {c['thp_head']}/{c['thp_tail']}, compound head/tail "
                 f"{c['compound_head']}/{c['compound_tail']}")
    x = data["crosscheck"]
    lines.append(f"free (BUDDY) {x['free_pages_from_buddy_flag']} pages vs vmstat nr_free_pages "
                 f"{x['vmstat_nr_free_pages']}; MemFree {x['MemFree_kib']} KiB")
    if x.get("present_not_managed_pages"):
        lines.append(f"zoneinfo: {x['present_not_managed_pages']} pages present but not managed by the page "
                     f"allocator, {x['spanned_not_present_pages']} spanned but not present (both read as no_flags)")
    return lines


def frame(data: dict):
    import pandas as pd

    pages = data["pages"]
    return pd.DataFrame([{"category": k, "pages": v, "share": v / pages if k != "hole" else None,
                          "meaning": data["category_meaning"].get(k)}
                         for k, v in data["categories"].items()]).set_index("category")

"""Physical contiguity of user buffers, from /proc/self/pagemap.

``/proc/PID/pagemap`` holds one 64-bit entry per virtual page: bits 0-54
the page frame number if present, bit 63 "present"; since Linux 4.2 the
PFN reads as zero without CAP_SYS_ADMIN (Documentation/admin-guide/mm/
pagemap.rst, v6.12; fs/proc/task_mmu.c ``pagemap_read``).

For each buffer (fresh anonymous mapping, every page written first) the
probe counts the physically contiguous runs: maximal stretches where the
next virtual page's PFN is the previous PFN + 1. A run is what one
phys-addr+len fragment (the bio_vec-as-phys+len idea of chapter 06) could
describe; the page count is what one frag per page needs. Buffers of 1 MiB
and 16 MiB, kept out of THP (``MADV_NOHUGEPAGE``) or asked for THP
(``MADV_HUGEPAGE`` on a 2 MiB-aligned mapping of at least 2 MiB, of which
the first ``bytes`` are examined), each over ``repeats`` fresh mappings.
"""

from __future__ import annotations

import os
import statistics

import numpy as np

from . import _sys
from ._base import ProbeUnavailable, kernel_release

NAME = "pagemap"
TITLE = "physically contiguous runs of user buffers (/proc/self/pagemap)"
REQUIRED = ("kernel", "buffers")

PAGEMAP = "/proc/self/pagemap"
PFN_MASK = (1 << 55) - 1
PRESENT = 1 << 63
MIB = 1 << 20
BUFFERS = {"1MiB_4k": (MIB, False), "16MiB_4k": (16 * MIB, False),
           "1MiB_thp": (MIB, True), "16MiB_thp": (16 * MIB, True)}


def pfns(addr: int, size: int, path: str | None = None) -> np.ndarray:
    """PFNs of the pages of [addr, addr+size); raises ProbeUnavailable if they are hidden."""
    n = size // _sys.PAGE
    fd = os.open(path or PAGEMAP, os.O_RDONLY)
    try:
        raw = os.pread(fd, 8 * n, (addr // _sys.PAGE) * 8)
    finally:
        os.close(fd)
    if len(raw) != 8 * n:
        raise ProbeUnavailable(f"{path or PAGEMAP}: short read ({len(raw)} of {8 * n} bytes)")
    ent = np.frombuffer(raw, dtype=np.uint64)
    present = (ent & np.uint64(PRESENT)) != 0
    if not present.all():
        raise ProbeUnavailable(f"{int((~present).sum())} of {n} touched pages not present")
    pfn = ent & np.uint64(PFN_MASK)
    if not pfn.any():
        raise ProbeUnavailable(f"{path or PAGEMAP} shows PFN 0 for every page: needs CAP_SYS_ADMIN")
    return pfn.astype(np.int64)


def runs(pfn: np.ndarray) -> np.ndarray:
    """Lengths (in pages) of the maximal runs with pfn[i+1] == pfn[i] + 1."""
    if pfn.size == 0:
        return np.zeros(0, np.int64)
    breaks = np.flatnonzero(np.diff(pfn) != 1) + 1
    edges = np.concatenate(([0], breaks, [pfn.size]))
    return np.diff(edges)


def _one(size: int, thp: bool) -> dict:
    mapping = max(size, _sys.HUGE) if thp else size
    with _sys.Mapping(mapping, align=_sys.HUGE if thp else _sys.PAGE, thp=thp) as m:
        a = m.array()
        a[:: _sys.PAGE] = 1
        del a
        pfn = pfns(m.addr, size)
        thp = _sys.thp_fraction(m) if thp else 0.0
    r = runs(pfn)
    return {"runs": int(r.size), "thp_backed": thp, "largest_run_pages": int(r.max()), "single_page_runs": int((r == 1).sum()),
            "huge_aligned_runs": int(sum(1 for s, ln in zip(np.cumsum(np.r_[0, r[:-1]]), r)
                                         if ln >= 512 and pfn[s] % 512 == 0)),
            "run_lengths": _histogram(r)}


def _histogram(r: np.ndarray) -> dict:
    """Run lengths bucketed by powers of two: {"1": n, "2-3": n, "4-7": n, ...}."""
    out = {}
    for lo in (1 << k for k in range(0, 16)):
        hi = 2 * lo - 1
        c = int(((r >= lo) & (r <= hi)).sum())
        if c:
            out[str(lo) if lo == hi else f"{lo}-{hi}"] = c
    return out


def measure(quick: bool = False) -> dict:
    if not os.path.exists(PAGEMAP):
        raise ProbeUnavailable(f"{PAGEMAP} is missing")
    repeats = 3 if quick else 5
    buffers = {}
    for name, (size, thp) in BUFFERS.items():
        trials = [_one(size, thp) for _ in range(repeats)]
        counts = [t["runs"] for t in trials]
        med = sorted(trials, key=lambda t: t["runs"])[len(trials) // 2]
        buffers[name] = {"bytes": size, "pages": size // _sys.PAGE, "thp_requested": thp,
                         "mapping_bytes": max(size, _sys.HUGE) if thp else size,
                         "runs": statistics.median(counts), "runs_each": counts,
                         "thp_backed": min(t["thp_backed"] for t in trials),
                         "median_trial": med}
    return {"kernel": kernel_release(), "page_size": _sys.PAGE, "repeats": repeats, "buffers": buffers}


def summarize(data: dict) -> list[str]:
    return [f"{k:10s} {b['pages']:>5d} pages -> {b['runs']:g} contiguous runs (each trial: {b['runs_each']}), "
            f"largest {b['median_trial']['largest_run_pages']} pages" for k, b in data["buffers"].items()]


def frame(data: dict):
    import pandas as pd

    return pd.DataFrame([{"buffer": k, "bytes": b["bytes"], "pages": b["pages"], "thp": b["thp_requested"],
                          "runs": b["runs"], "largest_run_pages": b["median_trial"]["largest_run_pages"]}
                         for k, b in data["buffers"].items()]).set_index("buffer")

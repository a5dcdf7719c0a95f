"""Physical contiguity and folio layout of real buffers, from /proc/self/pagemap and /proc/kpageflags.

``/proc/PID/pagemap`` holds one 64-bit entry per virtual page: bits 0-54
the page frame number if present, bit 63 "present"; since Linux 4.2 the
PFN reads as zero without CAP_SYS_ADMIN (Documentation/admin-guide/mm/
pagemap.rst, v6.12; fs/proc/task_mmu.c ``pagemap_read``). ``/proc/kpageflags``
(root) gives each PFN's flags; ``COMPOUND_TAIL`` (bit 16) says the page
belongs to the same folio as the page before it in physical memory
(include/uapi/linux/kernel-page-flags.h, fs/proc/page.c ``stable_page_flags``,
v6.12).

For each buffer (every page touched first) the probe walks the pages in
virtual order and records where they break:

- a *physical run* ends where the next page's PFN is not this PFN + 1: what
  one phys-addr+len fragment (the bio_vec-as-phys+len idea of chapter 06)
  could describe;
- a *folio run* ends where the next page is not the next page of the same
  folio (not PFN + 1, or not a compound tail): what today's MSG_ZEROCOPY path
  puts in one frag (``zerocopy_fill_skb_from_iter()`` merges a page into the
  previous frag only if both have the same compound head and the offsets
  continue; net/core/datagram.c, v6.12);
- a page is what MSG_SPLICE_PAGES puts in one frag (``skb_splice_from_iter()``
  cuts at every page; net/core/skbuff.c, v6.12).

``layout`` is the median trial's sequence of folio runs, run-length encoded
as ``PAGES.LINK.REPEAT`` entries: a run of ``PAGES`` pages of one folio,
whether the next run starts at the next PFN (``LINK`` 1: physically
contiguous, another folio), ``REPEAT`` times in a row (:func:`encode`,
:func:`decode`). It is the whole page order of the buffer in one line, enough
to replay any frag rule on it.

Buffers (``BUFFERS``): fresh anonymous mappings kept out of THP
(``MADV_NOHUGEPAGE``) or asked for THP (``MADV_HUGEPAGE`` on a 2 MiB-aligned
mapping of at least 2 MiB, of which the first ``bytes`` are examined); the
page cache of a file on a block-device filesystem, written, dropped from the
cache (``POSIX_FADV_DONTNEED``), read back sequentially (so readahead
allocates its folios) and mapped; and anonymous buffers allocated after the
process has fragmented free memory: it maps ``FRAGMENT_BYTES`` of 4 KiB
pages, touches them, and gives back every other page (``MADV_DONTNEED``),
leaving isolated free pages for the next allocations to take. Each buffer
kind is measured over ``repeats`` fresh trials.
"""

from __future__ import annotations

import ctypes
import mmap
import os
import statistics
import tempfile
from contextlib import ExitStack
from pathlib import Path

import numpy as np

from . import _sys
from ._base import ProbeUnavailable, kernel_release

NAME = "pagemap"
TITLE = "physically contiguous runs and folio runs of real buffers (/proc/self/pagemap, /proc/kpageflags)"
REQUIRED = ("kernel", "buffers")

PAGEMAP = "/proc/self/pagemap"
KPAGEFLAGS = "/proc/kpageflags"
PFN_MASK = (1 << 55) - 1
PRESENT = 1 << 63
COMPOUND_TAIL = 16  # include/uapi/linux/kernel-page-flags.h KPF_COMPOUND_TAIL
MIB = 1 << 20
FRAGMENT_BYTES = 256 * MIB
#: name -> (bytes, kind); kinds: anon_4k, anon_thp, file, anon_4k_fragmented, anon_thp_fragmented
BUFFERS = {"1MiB_4k": (MIB, "anon_4k"), "16MiB_4k": (16 * MIB, "anon_4k"),
           "1MiB_thp": (MIB, "anon_thp"), "16MiB_thp": (16 * MIB, "anon_thp"),
           "16MiB_file": (16 * MIB, "file"),
           "16MiB_4k_fragmented": (16 * MIB, "anon_4k_fragmented"),
           "16MiB_thp_fragmented": (16 * MIB, "anon_thp_fragmented")}
THP_SYSFS = "/sys/kernel/mm/transparent_hugepage"


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


def tails(pfn: np.ndarray, path: str | None = None) -> np.ndarray:
    """Whether each PFN is a compound tail (/proc/kpageflags), one read per physical run."""
    path = path or KPAGEFLAGS
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError as e:
        raise ProbeUnavailable(f"{path} is missing (CONFIG_PROC_PAGE_MONITOR off?)") from e
    except PermissionError as e:
        raise ProbeUnavailable(f"{path} is readable by root only ({e.strerror})") from e
    out = np.zeros(pfn.size, bool)
    try:
        start = 0
        for n in runs(pfn):
            raw = os.pread(fd, 8 * int(n), int(pfn[start]) * 8)
            f = np.frombuffer(raw, dtype=np.uint64)
            out[start:start + len(f)] = ((f >> np.uint64(COMPOUND_TAIL)) & np.uint64(1)) != 0
            start += int(n)
    finally:
        os.close(fd)
    return out


def runs(pfn: np.ndarray) -> np.ndarray:
    """Lengths (in pages) of the maximal runs with pfn[i+1] == pfn[i] + 1."""
    if pfn.size == 0:
        return np.zeros(0, np.int64)
    breaks = np.flatnonzero(np.diff(pfn) != 1) + 1
    edges = np.concatenate(([0], breaks, [pfn.size]))
    return np.diff(edges)


def folio_layout(pfn: np.ndarray, tail: np.ndarray) -> list[list]:
    """The folio runs in virtual order, run-length encoded: [[pages, contiguous_with_next, repeat], ...]
    (recorded as text by :func:`encode`)."""
    contig = np.diff(pfn) == 1
    same = contig & tail[1:]  # the next page is the next page of this folio
    ends = np.flatnonzero(~same)  # index of each folio run's last page (but the last page)
    edges = np.concatenate(([0], ends + 1, [pfn.size]))
    lengths = np.diff(edges)
    links = np.append(contig[ends], False)  # the next folio run starts at the next PFN
    out: list[list] = []
    for ln, link in zip(lengths.tolist(), links.tolist()):
        if out and out[-1][0] == ln and out[-1][1] == link:
            out[-1][2] += 1
        else:
            out.append([ln, bool(link), 1])
    return out


def encode(layout: list[list]) -> str:
    """A layout as one line of text: "PAGES.LINK.REPEAT" entries (LINK 1 or 0), space-separated."""
    return " ".join(f"{p}.{int(bool(link))}.{rep}" for p, link, rep in layout)


def decode(text: str) -> list[list]:
    out = []
    for tok in text.split():
        p, link, rep = tok.split(".")
        out.append([int(p), link == "1", int(rep)])
    return out


def expand(layout: list[list] | str) -> tuple[np.ndarray, np.ndarray]:
    """A layout (list or text) back into per-page breaks: (contig[i], same_folio[i]) between page i and i + 1."""
    if isinstance(layout, str):
        layout = decode(layout)
    contig, same = [], []
    for pages, link, repeat in layout:
        one_c = [True] * (pages - 1) + [bool(link)]
        one_s = [True] * (pages - 1) + [False]
        contig += one_c * repeat
        same += one_s * repeat
    return np.array(contig[:-1], bool), np.array(same[:-1], bool)


def _histogram(r: np.ndarray) -> dict:
    """Run lengths bucketed by powers of two: {"1": n, "2-3": n, "4-7": n, ...}."""
    out = {}
    for lo in (1 << k for k in range(0, 16)):
        hi = 2 * lo - 1
        c = int(((r >= lo) & (r <= hi)).sum())
        if c:
            out[str(lo) if lo == hi else f"{lo}-{hi}"] = c
    return out


def _describe(pfn: np.ndarray, tail: np.ndarray, thp: float) -> dict:
    r = runs(pfn)
    lay = folio_layout(pfn, tail)
    folio_runs = sum(rep for _, _, rep in lay)
    crossing = 0  # physical runs that span more than one folio
    start = 0
    for n in r.tolist():
        if n > 1 and not tail[start + 1: start + n].all():
            crossing += 1
        start += n
    return {"runs": int(r.size), "folio_runs": int(folio_runs), "runs_crossing_folios": crossing,
            "thp_backed": thp, "largest_run_pages": int(r.max()), "single_page_runs": int((r == 1).sum()),
            "huge_aligned_runs": int(sum(1 for s, ln in zip(np.cumsum(np.r_[0, r[:-1]]), r)
                                         if ln >= 512 and pfn[s] % 512 == 0)),
            "run_lengths": _histogram(r), "layout": encode(lay)}


def _anon(size: int, thp: bool) -> dict:
    mapping = max(size, _sys.HUGE) if thp else size
    with _sys.Mapping(mapping, align=_sys.HUGE if thp else _sys.PAGE, thp=thp) as m:
        a = m.array()
        a[:: _sys.PAGE] = 1
        del a
        pfn = pfns(m.addr, size)
        tail = tails(pfn)
        frac = _sys.thp_fraction(m) if thp else 0.0
    return _describe(pfn, tail, frac)


def _fragmented(size: int, thp: bool) -> dict:
    """A buffer allocated while every other page of FRAGMENT_BYTES is freed back."""
    with _sys.Mapping(FRAGMENT_BYTES, thp=False) as holes:
        a = holes.array()
        a[:: _sys.PAGE] = 1
        del a
        for off in range(0, FRAGMENT_BYTES, 2 * _sys.PAGE):
            holes.madvise(_sys.MADV_DONTNEED, off, _sys.PAGE)
        return _anon(size, thp)


def data_dir() -> tuple[Path, str]:
    """A writable directory on a block-device filesystem (so its page cache is a real one)."""
    try:
        return _sys.direct_io_dir()
    except OSError as e:
        raise ProbeUnavailable(str(e)) from e


def _file(size: int) -> dict:
    d, fs = data_dir()
    with ExitStack() as stack:
        fd, name = tempfile.mkstemp(prefix="fraglife-pagemap-", dir=d)
        stack.callback(os.unlink, name)
        stack.callback(os.close, fd)
        os.write(fd, os.urandom(size))
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)  # out of the page cache ...
        os.lseek(fd, 0, os.SEEK_SET)
        while os.read(fd, MIB):  # ... and back in, through readahead
            pass
        m = mmap.mmap(fd, size, flags=mmap.MAP_PRIVATE, prot=mmap.PROT_READ | mmap.PROT_WRITE)
        stack.callback(m.close)
        anchor = ctypes.c_char.from_buffer(m)  # its address; reading never copies a private file page
        try:
            a = np.frombuffer(m, dtype=np.uint8)
            int(a[:: _sys.PAGE].sum())
            del a
            pfn = pfns(ctypes.addressof(anchor), size)
            tail = tails(pfn)
        finally:
            del anchor
    out = _describe(pfn, tail, 0.0)
    out["filesystem"] = fs
    return out


def _one(size: int, kind: str) -> dict:
    if kind == "file":
        return _file(size)
    if kind.endswith("_fragmented"):
        return _fragmented(size, kind.startswith("anon_thp"))
    return _anon(size, kind == "anon_thp")


def thp_settings(root: str = THP_SYSFS) -> dict:
    """THP mode and the enabled multi-size THP orders (sysfs), as the kernel reports them."""
    def sel(path: Path) -> str | None:
        try:
            text = path.read_text()
        except OSError:
            return None
        return text[text.index("[") + 1: text.index("]")] if "[" in text else text.strip()

    base = Path(root)
    out = {"enabled": sel(base / "enabled"), "defrag": sel(base / "defrag"), "sizes": {}}
    for d in sorted(base.glob("hugepages-*kB")):
        out["sizes"][d.name.split("-", 1)[1]] = sel(d / "enabled")
    return out


def measure(quick: bool = False) -> dict:
    if not os.path.exists(PAGEMAP):
        raise ProbeUnavailable(f"{PAGEMAP} is missing")
    repeats = 3 if quick else 5
    buffers = {}
    for name, (size, kind) in BUFFERS.items():
        trials = [_one(size, kind) for _ in range(repeats)]
        counts = [t["runs"] for t in trials]
        med = sorted(trials, key=lambda t: t["runs"])[len(trials) // 2]
        buffers[name] = {"bytes": size, "pages": size // _sys.PAGE, "kind": kind,
                         "thp_requested": "thp" in kind,
                         "mapping_bytes": max(size, _sys.HUGE) if "thp" in kind else size,
                         "runs": statistics.median(counts), "runs_each": counts,
                         "folio_runs": statistics.median(t["folio_runs"] for t in trials),
                         "folio_runs_each": [t["folio_runs"] for t in trials],
                         "thp_backed": min(t["thp_backed"] for t in trials),
                         "median_trial": med}
        if kind == "file":
            buffers[name]["filesystem"] = med["filesystem"]
    return {"kernel": kernel_release(), "page_size": _sys.PAGE, "repeats": repeats, "buffers": buffers,
            "fragment_bytes": FRAGMENT_BYTES, "thp": thp_settings()}


def summarize(data: dict) -> list[str]:
    out = []
    for k, b in data["buffers"].items():
        line = (f"{k:20s} {b['pages']:>5d} pages -> {b['runs']:g} physical runs (each trial: {b['runs_each']}), "
                f"largest {b['median_trial']['largest_run_pages']} pages")
        if "folio_runs" in b:
            line += f"; {b['folio_runs']:g} folio runs"
        out.append(line)
    return out


def frame(data: dict):
    import pandas as pd

    return pd.DataFrame([{"buffer": k, "kind": b.get("kind"), "bytes": b["bytes"], "pages": b["pages"],
                          "thp": b["thp_requested"], "runs": b["runs"], "folio_runs": b.get("folio_runs"),
                          "largest_run_pages": b["median_trial"]["largest_run_pages"]}
                         for k, b in data["buffers"].items()]).set_index("buffer")

"""What GUP costs per call and per page on this machine: pin, unpin, the slow path, faults.

Every timing is one system call over a whole buffer divided by its pages
(median and quartiles over ``repeats`` fresh buffers), so no Python runs
between pages.

- ``register``: ``IORING_REGISTER_BUFFERS`` of a buffer cut into iovecs of
  ``n`` pages, then ``IORING_UNREGISTER_BUFFERS``. Each iovec is one
  ``pin_user_pages_fast(FOLL_WRITE | FOLL_LONGTERM)`` call
  (io_uring/rsrc.c ``io_sqe_buffer_register`` -> io_uring/memmap.c
  ``io_pin_pages``, v6.12) and one ``unpin_user_pages()`` at unregister
  (io_uring/rsrc.c ``io_buffer_unmap``, v6.12). Fitting
  ``time = iovecs x per_call + pages x per_page`` over the sizes separates
  what a call costs from what a page costs. Both include io_uring's own work
  per buffer (its allocations, the accounting) and per page (the bvec
  table), so they are upper bounds for the GUP part.
- ``thp_share``: the same registration (iovecs of 256 pages) of a 16 MiB
  buffer of which a share of the 2 MiB-aligned regions asked for THP
  (``MADV_HUGEPAGE``, the rest ``MADV_NOHUGEPAGE``). gup-fast takes a
  PMD-mapped THP with one ``try_grab_folio_fast()`` for all its pages
  (mm/gup.c ``gup_fast_pmd_leaf``, v6.12); io_uring keeps one pin per folio
  (io_uring/rsrc.c ``io_do_coalesce_buffer``, v6.12).
- ``slow_path``: the first page of each iovec is dropped
  (``MADV_DONTNEED``) after the buffer was faulted in, so gup-fast stops at
  once and the whole iovec goes to the slow path (mm/gup.c
  ``gup_fast_fallback`` -> ``__gup_longterm_locked`` -> ``__get_user_pages``:
  ``mmap_read_lock``, one ``follow_page_mask()`` walk per page, v6.12); one
  page in each iovec is faulted again.
- ``cold``: a buffer never touched: the slow path faults every page in
  (``faultin_page()``, a write fault that allocates and zeroes a page,
  mm/memory.c ``do_anonymous_page``, v6.12).
- ``read_fault_zero``: the first read of each page of an untouched mapping:
  a read fault maps the shared zero page, nothing is allocated
  (mm/memory.c ``do_anonymous_page``, the ``!(vmf->flags & FAULT_FLAG_WRITE)``
  branch, v6.12). The same fault a read-only GUP of an untouched page takes
  in the slow path, here with the exception entry and exit on top.
- ``vmsplice_get``: ``vmsplice`` of 256 resident pages into a pipe sized to
  hold them: ``iov_iter_get_pages2()`` -> ``get_user_pages_fast()``, one
  FOLL_GET reference per page, plus a pipe buffer each (fs/splice.c
  ``iter_to_pipe``, v6.12). The pipe is closed outside the timing.
- ``vmsplice_calls``: the same 256 pages as 256 one-page iovecs and as one
  iovec. ``iter_to_pipe()`` makes one ``iov_iter_get_pages2()`` call per
  segment and per 16 pages (``PIPE_DEF_BUFFERS``), so 256 calls against 16 for
  the same pages, references and pipe buffers: the difference over 240 calls is
  what one gup-fast call costs beyond its pages (the walk from the top level,
  interrupts off and on, the iterator's step).
"""

from __future__ import annotations

import fcntl
import os
import time

import numpy as np

from . import _jit, _sys
from ._base import ProbeUnavailable, measured, spread

NAME = "gup"
TITLE = "GUP per call and per page: pin, unpin, THP, slow path, faults, FOLL_GET"
REQUIRED = ("kernel", "register", "fit")

IOV_PAGES = (4, 16, 64, 256, 1024)
THP_SHARES = (0.0, 0.25, 0.5, 0.75, 1.0)
SIZE = 16 << 20
QUICK_SIZE = 8 << 20
PIPE_PAGES = 256


def _ns() -> int:
    return time.perf_counter_ns()


def _ring() -> int:
    if os.path.exists("/proc/sys/kernel/io_uring_disabled"):
        with open("/proc/sys/kernel/io_uring_disabled") as f:
            if f.read().strip() == "2":
                raise ProbeUnavailable("io_uring is disabled (kernel.io_uring_disabled = 2)")
    return _sys.io_uring_setup(4)


def _register(m: _sys.Mapping, per_iov: int) -> tuple[float, float]:
    """(register ns, unregister ns) for the mapping cut into iovecs of ``per_iov`` pages."""
    n = m.size // _sys.PAGE
    iovs = [m.iov(i * _sys.PAGE, min(per_iov, n - i) * _sys.PAGE) for i in range(0, n, per_iov)]
    ring = _ring()
    try:
        t0 = _ns()
        _sys.io_uring_register_buffers(ring, iovs)
        t1 = _ns()
        _sys.io_uring_unregister_buffers(ring)
        t2 = _ns()
    finally:
        os.close(ring)
    return float(t1 - t0), float(t2 - t1)


def _touched(size: int, align: int = _sys.PAGE, thp: bool | None = False) -> _sys.Mapping:
    m = _sys.Mapping(size, align=align, thp=thp)
    _jit.touch_write(m.array(), _sys.PAGE)
    return m


def _per_page(values, pages: int) -> dict:
    return spread(v / pages for v in values)


def register_series(size: int, repeats: int) -> dict:
    out = {}
    pages = size // _sys.PAGE
    for n in IOV_PAGES:
        reg, unreg = [], []
        for _ in range(repeats):
            with _touched(size) as m:
                r, u = _register(m, n)
            reg.append(r)
            unreg.append(u)
        out[str(n)] = {"iov_pages": n, "iovecs": -(-pages // n), "pages": pages, "bytes": size,
                       "register_ns": spread(reg), "unregister_ns": spread(unreg),
                       "register_ns_per_page": _per_page(reg, pages),
                       "unregister_ns_per_page": _per_page(unreg, pages)}
    return out


def fit(series: dict, key: str) -> dict:
    """Least squares ``ns = iovecs x per_call + pages x per_page`` over the medians of ``series``."""
    rows = list(series.values())
    a = np.array([[r["iovecs"], r["pages"]] for r in rows], dtype=float)
    y = np.array([r[key]["median"] for r in rows], dtype=float)
    (per_call, per_page), *_ = np.linalg.lstsq(a, y, rcond=None)
    pred = a @ np.array([per_call, per_page])
    return {"per_call_ns": float(per_call), "per_page_ns": float(per_page),
            "max_relative_error": float(np.max(np.abs(pred - y) / y)), "points": len(rows)}


def thp_series(size: int, repeats: int) -> dict:
    out = {}
    pages = size // _sys.PAGE
    regions = size // _sys.HUGE
    for share in THP_SHARES:
        huge = round(share * regions)
        reg, unreg, backed = [], [], []
        for _ in range(repeats):
            with _sys.Mapping(size, align=_sys.HUGE, thp=None) as m:
                if huge:
                    m.madvise(_sys.MADV_HUGEPAGE, 0, huge * _sys.HUGE)
                if huge < regions:
                    m.madvise(_sys.MADV_NOHUGEPAGE, huge * _sys.HUGE)
                _jit.touch_write(m.array(), _sys.PAGE)
                backed.append(_thp_backed(m, regions))
                r, u = _register(m, 256)
            reg.append(r)
            unreg.append(u)
        out[f"{share:g}"] = {"thp_share_asked": share, "thp_backed": min(backed), "pages": pages, "bytes": size,
                             "register_ns_per_page": _per_page(reg, pages),
                             "unregister_ns_per_page": _per_page(unreg, pages)}
    return out


def _thp_backed(m: _sys.Mapping, regions: int) -> float:
    """Share of the mapping's 2 MiB regions that are PMD-mapped THPs (AnonHugePages of its VMAs)."""
    total = 0
    start, end = m.addr, m.addr + m.size
    with open("/proc/self/smaps") as f:
        inside = False
        for line in f:
            head = line.split(maxsplit=1)[0] if line.strip() else ""
            if "-" in head and not line[0].isupper():
                lo, hi = (int(x, 16) for x in head.split("-"))
                inside = lo >= start and hi <= end
            elif inside and line.startswith("AnonHugePages:"):
                total += int(line.split()[1]) * 1024
    return total / (regions * _sys.HUGE)


def slow_path(size: int, repeats: int, per_iov: int = 256) -> dict:
    pages = size // _sys.PAGE
    reg = []
    for _ in range(repeats):
        with _touched(size) as m:
            for off in range(0, size, per_iov * _sys.PAGE):
                m.madvise(_sys.MADV_DONTNEED, off, _sys.PAGE)
            r, _ = _register(m, per_iov)
        reg.append(r)
    return {"iov_pages": per_iov, "pages": pages, "bytes": size, "refaulted_pages": pages // per_iov,
            "register_ns_per_page": _per_page(reg, pages)}


def cold(size: int, repeats: int, per_iov: int = 256) -> dict:
    pages = size // _sys.PAGE
    reg, unreg = [], []
    for _ in range(repeats):
        with _sys.Mapping(size, thp=False) as m:
            r, u = _register(m, per_iov)
        reg.append(r)
        unreg.append(u)
    return {"iov_pages": per_iov, "pages": pages, "bytes": size,
            "register_ns_per_page": _per_page(reg, pages), "unregister_ns_per_page": _per_page(unreg, pages)}


def read_fault_zero(size: int, repeats: int) -> dict:
    pages = size // _sys.PAGE
    first, again = [], []
    for _ in range(repeats):
        with _sys.Mapping(size, thp=False) as m:
            a = m.array()
            t0 = _ns()
            _jit.touch_read(a, _sys.PAGE)
            t1 = _ns()
            _jit.touch_read(a, _sys.PAGE)
            t2 = _ns()
            del a
        first.append(t1 - t0)
        again.append(t2 - t1)
    return {"pages": pages, "bytes": size, "ns_per_page": _per_page(first, pages),
            "reread_ns_per_page": _per_page(again, pages)}


def _timed_vmsplice(iovs, size: int) -> int:
    """ns for one vmsplice() of ``iovs`` (``size`` bytes) into a fresh pipe sized to take them whole."""
    r, w = os.pipe()
    try:
        fcntl.fcntl(w, fcntl.F_SETPIPE_SZ, size)
        t0 = _ns()
        n = _sys.vmsplice(w, iovs)
        t1 = _ns()
    finally:
        os.close(r)
        os.close(w)
    if n != size:
        raise OSError(f"vmsplice moved {n} of {size} bytes")
    return t1 - t0


def vmsplice_get(repeats: int) -> dict:
    size = PIPE_PAGES * _sys.PAGE
    per = []
    for _ in range(repeats * 3):
        with _touched(size) as m:
            per.append(_timed_vmsplice([m.iov()], size))
    return {"pages": PIPE_PAGES, "bytes": size, "ns_per_page": _per_page(per, PIPE_PAGES)}


def vmsplice_calls(repeats: int) -> dict:
    size = PIPE_PAGES * _sys.PAGE
    many, one = [], []
    for _ in range(repeats * 3):
        with _touched(size) as m:
            many.append(_timed_vmsplice([m.iov(i * _sys.PAGE, _sys.PAGE) for i in range(PIPE_PAGES)], size))
            one.append(_timed_vmsplice([m.iov()], size))
    calls_many, calls_one = PIPE_PAGES, PIPE_PAGES // 16
    diffs = [(a - b) / (calls_many - calls_one) for a, b in zip(many, one)]
    return {"pages": PIPE_PAGES, "calls": [calls_many, calls_one], "one_page_iovecs_ns": spread(many),
            "one_iovec_ns": spread(one), "per_call_ns": spread(diffs)}


def measure(quick: bool = False) -> dict:
    size = QUICK_SIZE if quick else SIZE
    repeats = 3 if quick else 5
    _jit.warm()
    missing: dict[str, str] = {}
    try:
        series = register_series(size, repeats)
    except OSError as e:
        raise ProbeUnavailable(f"io_uring buffer registration failed: {e}") from e
    out = {"register": series,
           "fit": {"register": fit(series, "register_ns"), "unregister": fit(series, "unregister_ns")}}
    parts = {"thp_share": lambda: thp_series(SIZE, repeats), "slow_path": lambda: slow_path(size, repeats),
             "cold": lambda: cold(size, repeats), "read_fault_zero": lambda: read_fault_zero(size, repeats),
             "vmsplice_get": lambda: vmsplice_get(repeats), "vmsplice_calls": lambda: vmsplice_calls(repeats)}
    for name, fn in parts.items():
        try:
            out[name] = fn()
        except OSError as e:
            missing[name] = f"{type(e).__name__}: {e}"
    return measured(missing, page_size=_sys.PAGE, repeats=repeats, **out,
                    method="wall time of one system call over a whole buffer / its pages; median and quartiles "
                           "over fresh buffers; pages touched by a numba loop")


def summarize(data: dict) -> list[str]:
    lines = []
    for k in ("register", "unregister"):
        f = data["fit"][k]
        lines.append(f"{k:10s} fit: {f['per_call_ns']:8.0f} ns per call + {f['per_page_ns']:6.1f} ns per page "
                     f"(worst point off by {f['max_relative_error']:.0%})")
    for name, r in data["register"].items():
        lines.append(f"  iovecs of {name:>4s} pages: register {r['register_ns_per_page']['median']:7.1f} ns/page, "
                     f"unregister {r['unregister_ns_per_page']['median']:6.1f} ns/page")
    for name, r in data.get("thp_share", {}).items():
        if isinstance(r, dict) and "register_ns_per_page" in r:
            lines.append(f"  THP share {name:>4s} (backed {r['thp_backed']:.0%}): register "
                         f"{r['register_ns_per_page']['median']:6.1f} ns/page, unregister "
                         f"{r['unregister_ns_per_page']['median']:5.1f}")
    for name in ("slow_path", "cold", "read_fault_zero", "vmsplice_get"):
        r = data.get(name, {})
        if "source" in r and r["source"] != "live" and "ns_per_page" not in r and "register_ns_per_page" not in r:
            lines.append(f"{name:16s} {r.get('source')}: {r.get('reason')}")
            continue
        s = r.get("register_ns_per_page") or r.get("ns_per_page")
        if s:
            lines.append(f"{name:16s} {s['median']:8.1f} ns/page")
    vc = data.get("vmsplice_calls", {})
    if "per_call_ns" in vc:
        lines.append(f"{'vmsplice_calls':16s} {vc['per_call_ns']['median']:8.1f} ns per gup-fast call")
    return lines


def frame(data: dict):
    import pandas as pd

    rows = []
    for name, r in data["register"].items():
        rows.append({"case": f"register, iovecs of {name} pages", "ns_per_page": r["register_ns_per_page"]["median"],
                     "unregister_ns_per_page": r["unregister_ns_per_page"]["median"]})
    for name, r in data.get("thp_share", {}).items():
        if isinstance(r, dict) and "register_ns_per_page" in r:
            rows.append({"case": f"register, THP share {name}", "ns_per_page": r["register_ns_per_page"]["median"],
                         "unregister_ns_per_page": r["unregister_ns_per_page"]["median"]})
    for name in ("slow_path", "cold", "read_fault_zero", "vmsplice_get"):
        r = data.get(name, {})
        s = r.get("register_ns_per_page") or r.get("ns_per_page")
        if s:
            u = r.get("unregister_ns_per_page")
            rows.append({"case": name, "ns_per_page": s["median"],
                         "unregister_ns_per_page": u["median"] if u else None})
    return pd.DataFrame(rows).set_index("case")

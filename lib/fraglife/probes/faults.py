"""Page-fault and GUP costs per page on this machine.

Measured per 4 KiB page, median and quartiles over ``repeats`` fresh
mappings (pages touched by a compiled loop, one write per page, in address
order):

- ``first_touch_4k``: first write to each page of a mapping kept out of THP
  (``MADV_NOHUGEPAGE``): one anonymous write fault per page, which allocates
  and zeroes a page (mm/memory.c ``do_anonymous_page``, v6.12).
- ``retouch_4k``: the same writes again: no fault, only the TLB/cache cost.
- ``populate_write_4k``: ``madvise(MADV_POPULATE_WRITE)`` faults the whole
  range up front in one call (mm/madvise.c ``madvise_populate``, v6.12).
- ``first_touch_thp`` / ``retouch_thp``: a 2 MiB-aligned mapping with
  ``MADV_HUGEPAGE`` (THP "madvise" mode): the first write in each 2 MiB
  allocates and zeroes a whole PMD-sized folio
  (mm/huge_memory.c ``do_huge_pmd_anonymous_page``, v6.12); reported per
  4 KiB page and per huge page, with the fraction actually THP-backed
  (``AnonHugePages`` in /proc/self/smaps).
- ``process_vm_readv``: copying an already-faulted buffer through
  ``process_vm_readv`` (own pid), which pins and unpins every source page
  (mm/process_vm_access.c ``process_vm_rw_single_vec``:
  ``pin_user_pages_remote`` in batches of up to ``PVM_MAX_USER_PAGES`` = 1024
  pages on x86_64, each batch under ``mmap_read_lock``, v6.12), next to a
  plain ``memcpy`` of the same size; the difference is the GUP cost.
- ``io_uring_register`` / ``io_uring_register_thp``: registering and
  unregistering the buffer as an io_uring fixed buffer: pin_user_pages_fast
  with FOLL_LONGTERM and unpin of every page, no copy (io_uring/memmap.c
  ``io_pin_pages``, v6.12); on THP io_uring keeps one pin per folio
  (io_uring/rsrc.c ``io_do_coalesce_buffer``, v6.12).

O_DIRECT is not timed here: on this machine its time is the disk's.
"""

from __future__ import annotations

import os
import resource
import time

from . import _jit, _sys
from ._base import ProbeUnavailable, measured, spread

NAME = "faults"
TITLE = "first-touch faults, THP faults and GUP cost per page"
REQUIRED = ("kernel", "ops")

SIZE = 64 << 20
QUICK_SIZE = 16 << 20
THP_ENABLED = "/sys/kernel/mm/transparent_hugepage/enabled"


def _ns() -> int:
    return time.perf_counter_ns()


def thp_mode() -> str | None:
    try:
        text = open(THP_ENABLED).read()
    except OSError:
        return None
    return text[text.index("[") + 1: text.index("]")] if "[" in text else None


def _touch_pair(size: int, thp: bool) -> tuple[float, float, float]:
    """(first-touch ns/page, retouch ns/page, THP-backed fraction) for one fresh mapping."""
    pages = size // _sys.PAGE
    with _sys.Mapping(size, align=_sys.HUGE if thp else _sys.PAGE, thp=thp) as m:
        a = m.array()
        t0 = _ns()
        _jit.touch_write(a, _sys.PAGE)
        t1 = _ns()
        _jit.touch_write(a, _sys.PAGE)
        t2 = _ns()
        del a
        frac = _sys.thp_fraction(m)
    return (t1 - t0) / pages, (t2 - t1) / pages, frac


def _populate(size: int) -> float:
    with _sys.Mapping(size, thp=False) as m:
        t0 = _ns()
        m.madvise(_sys.MADV_POPULATE_WRITE)
        return (_ns() - t0) / (size // _sys.PAGE)


def _pvr_and_memcpy(size: int) -> tuple[float, float]:
    pages = size // _sys.PAGE
    with _sys.Mapping(size) as src, _sys.Mapping(size) as dst:
        src.array()[:: _sys.PAGE] = 1
        dst.array()[:: _sys.PAGE] = 1
        pid = os.getpid()
        t0 = _ns()
        n = _sys.process_vm_readv(pid, [dst.iov()], [src.iov()])
        t1 = _ns()
        _jit.memcpy_repeat(dst.addr, src.addr, size, 1)
        t2 = _ns()
        if n != size:
            raise OSError(f"process_vm_readv copied {n} of {size}")
    return (t1 - t0) / pages, (t2 - t1) / pages


def _io_uring(size: int, thp: bool) -> tuple[float, float, float]:
    pages = size // _sys.PAGE
    with _sys.Mapping(size, align=_sys.HUGE if thp else _sys.PAGE, thp=thp) as m:
        m.array()[:: _sys.PAGE] = 1
        ring = _sys.io_uring_setup(4)
        try:
            t0 = _ns()
            _sys.io_uring_register_buffers(ring, [m.iov()])
            t1 = _ns()
            _sys.io_uring_unregister_buffers(ring)
            t2 = _ns()
        finally:
            os.close(ring)
        frac = _sys.thp_fraction(m)
    return (t1 - t0) / pages, (t2 - t1) / pages, frac


def _io_uring_size(size: int) -> int:
    """Registered buffers count against RLIMIT_MEMLOCK for a ring without CAP_IPC_LOCK
    (io_uring/rsrc.c ``io_account_mem`` charges ``ctx->user``, v6.12): stay within half the limit."""
    if os.geteuid() == 0:
        return size
    soft, _ = resource.getrlimit(resource.RLIMIT_MEMLOCK)
    if soft == resource.RLIM_INFINITY:
        return size
    return max(_sys.HUGE, min(size, soft // 2 // _sys.HUGE * _sys.HUGE))


def measure(quick: bool = False) -> dict:
    size = QUICK_SIZE if quick else SIZE
    repeats = 3 if quick else 7
    _jit.warm()
    ops: dict[str, dict] = {}
    missing: dict[str, str] = {}

    def add(name, values, what, **extra):
        ops[name] = {"ns_per_page": spread(values), "bytes": size, "pages": size // _sys.PAGE,
                     "what": what, **extra}

    try:
        pairs = [_touch_pair(size, thp=False) for _ in range(repeats)]
    except OSError as e:
        raise ProbeUnavailable(f"anonymous mappings failed: {e}") from e
    add("first_touch_4k", [p[0] for p in pairs], "first write to each 4 KiB page (one fault per page)")
    add("retouch_4k", [p[1] for p in pairs], "second write to each page (no fault)")
    try:
        add("populate_write_4k", [_populate(size) for _ in range(repeats)],
            "madvise(MADV_POPULATE_WRITE) over the range, per page")
    except OSError as e:
        missing["ops.populate_write_4k"] = str(e)

    mode = thp_mode()
    if mode in ("always", "madvise"):
        pairs = [_touch_pair(size, thp=True) for _ in range(repeats)]
        frac = min(p[2] for p in pairs)
        add("first_touch_thp", [p[0] for p in pairs], "first write per 4 KiB page of a MADV_HUGEPAGE mapping",
            thp_backed=frac, ns_per_huge_page=spread(p[0] * 512 for p in pairs))
        add("retouch_thp", [p[1] for p in pairs], "second write per 4 KiB page of the THP mapping",
            thp_backed=frac)
    else:
        why = f"THP is {mode!r} here ({THP_ENABLED})"
        missing["ops.first_touch_thp"] = why
        missing["ops.retouch_thp"] = why

    try:
        pv = [_pvr_and_memcpy(size) for _ in range(repeats)]
        add("process_vm_readv", [p[0] for p in pv], "process_vm_readv of a faulted buffer (pin, copy, unpin)")
        add("memcpy_same_size", [p[1] for p in pv], "memcpy of the same buffer, for comparison")
        ops["process_vm_readv"]["gup_ns_per_page"] = spread(p[0] - p[1] for p in pv)
    except OSError as e:
        missing["ops.process_vm_readv"] = str(e)

    io_size = _io_uring_size(size)
    for name, thp in (("io_uring_register", False), ("io_uring_register_thp", True)):
        if thp and mode not in ("always", "madvise"):
            missing[f"ops.{name}"] = f"THP is {mode!r} here"
            continue
        try:
            io = [_io_uring(io_size, thp) for _ in range(repeats)]
        except OSError as e:
            missing[f"ops.{name}"] = f"io_uring: {e}"
            continue
        add(name, [p[0] for p in io], "IORING_REGISTER_BUFFERS: pin every page (FOLL_LONGTERM)",
            unregister_ns_per_page=spread(p[1] for p in io), bytes=io_size, pages=io_size // _sys.PAGE,
            **({"thp_backed": min(p[2] for p in io)} if thp else {}))

    return measured(missing, thp_mode=mode, page_size=_sys.PAGE, repeats=repeats, ops=ops,
                    method="per-page nanoseconds = wall time of one operation over a whole mapping / pages; "
                           "median and quartiles over fresh mappings; pages touched by a numba loop")


def summarize(data: dict) -> list[str]:
    lines = []
    for name, op in data["ops"].items():
        if "ns_per_page" not in op:
            lines.append(f"{name:24s} {op.get('source')}: {op.get('reason')}")
            continue
        s = op["ns_per_page"]
        extra = ""
        if "ns_per_huge_page" in op:
            extra = f"; {op['ns_per_huge_page']['median'] / 1000:.1f} us per 2 MiB, THP-backed {op['thp_backed']:.0%}"
        if "unregister_ns_per_page" in op:
            extra = f"; unregister {op['unregister_ns_per_page']['median']:.1f} ns/page"
        if "gup_ns_per_page" in op:
            extra = f"; minus memcpy: {op['gup_ns_per_page']['median']:.1f} ns/page"
        lines.append(f"{name:24s} {s['median']:8.1f} ns/page (q1 {s['q1']:.1f}, q3 {s['q3']:.1f}){extra}")
    return lines


def frame(data: dict):
    import pandas as pd

    rows = []
    for name, op in data["ops"].items():
        s = op.get("ns_per_page", {})
        rows.append({"op": name, "ns_per_page": s.get("median"), "q1": s.get("q1"), "q3": s.get("q3"),
                     "source": op.get("source", "live"), "what": op.get("what")})
    return pd.DataFrame(rows).set_index("op")

"""Splice from the page cache: filemap batches and pipe buffers per MiB, and the file's folio sizes.

What is measured. A file of ``bytes`` on a block-device filesystem (ext4 here; never
tmpfs, whose page cache is shmem: :func:`fraglife.probes._sys.direct_io_dir`), written,
dropped from the page cache (``POSIX_FADV_DONTNEED``) and read back sequentially, so
readahead allocates its folios (``page_cache_ra_order()``, mm/readahead.c: large
folios where the filesystem allows them, growing with the readahead window; ext4
allows them for regular files from 6.16, reported as commit 7ac67301e82f and not
checked here: the probe reads what this kernel did). Then:

- ``folios``: the folio sizes of the file's page cache, twice: as readahead added
  them (every ``filemap:mm_filemap_add_to_page_cache`` of the file during the read,
  sampled; its ``order`` field), and as they sit afterwards (the file mapped and
  touched, each page's PFN from /proc/self/pagemap, the folio boundaries from
  /proc/kpageflags' compound head/tail bits, as :mod:`fraglife.probes.pagemap`
  does).
- ``pipe_buffer``: how many bytes one pipe buffer takes from the page cache.
  ``filemap_splice_read()`` fills one ``pipe_buffer`` per page of a folio
  (``splice_folio_into_pipe()``: ``part = min(PAGE_SIZE - offset, ...)``, fs/splice.c,
  v6.12), whatever the folio's size. Observed directly: ``splice(2)`` of 1 MiB from
  the file into a pipe of one slot (``F_SETPIPE_SZ`` = one page) moves what one buffer
  holds, at offsets at the start, inside and across large folios; and into a pipe of
  16 slots, what 16 buffers hold.
- ``splice``: the whole file spliced in calls of ``call`` bytes (4 KiB ... 1 MiB), the
  pipe sized to hold one call: file -> pipe -> ``/dev/null`` (no socket;
  ``splice_write_null()`` drops the buffers) and file -> pipe -> a TCP socket over a
  veth pair between two namespaces (:func:`fraglife.probes._counting.counted_transfer`).
  Counted, exactly (filters on the file's inode ``i_ino`` and device ``s_dev``, the
  sending thread, the sending veth): ``filemap:mm_filemap_get_pages`` (one per batch
  ``filemap_splice_read()`` asks ``filemap_get_pages()`` for: up to
  ``PAGEVEC_SIZE`` = 31 folios, ``filemap_get_read_batch()``),
  ``filemap:mm_filemap_add_to_page_cache`` (0 while the file stays cached), and on the
  socket path ``tcp:tcp_sendmsg_locked`` and ``net:net_dev_queue``. Pipe buffers
  filled: each call's bytes cut at page boundaries (one buffer per page, as observed
  in ``pipe_buffer``).

Per MiB and per call, with ``low == high`` (every counter here is filtered to the
transfer). Cleanup: the file is written down before it is created
(:func:`fraglife.probes._cleanup.temp_file`) and removed on every path; the
namespaces of the socket runs likewise.
"""

from __future__ import annotations

import fcntl
import mmap
import os
import select
import shutil
from collections import Counter as Tally
from contextlib import ExitStack

import numpy as np

from ..params import Param
from . import _cleanup, _counting, _net, _perf, _sys
from . import pagemap as _pagemap
from ._base import ProbeUnavailable, measured
from ._counting import Counter

NAME = "kcount_filemap"
TITLE = "Splice from the page cache: filemap batches and pipe buffers per MiB, the file's folio sizes"
REQUIRED = ("file", "folios", "pipe_buffer", "splice", "tracepoints")

NS_PREFIX = "fraglife-fm"
FILE_PREFIX = "fraglife-fm"
GROUPS = ("filemap", "tcp", "net")
MiB = 1 << 20
PAGE = _sys.PAGE
CALLS = (4096, 16384, 65536, 262144, MiB)
FILE_BYTES = 64 * MiB

_FILE = "i_ino == {ino} && s_dev == {kdev}"
#: Counter keys: a tracepoint ``group:event``, with ``[variant]`` for a narrower filter of the same one.
COUNTERS: dict[str, Counter] = {
    "filemap:mm_filemap_get_pages": Counter("filemap:mm_filemap_get_pages", _FILE, True,
                                            "batches filemap_get_pages() fetched from the file's page cache",
                                            ("i_ino", "s_dev")),
    "filemap:mm_filemap_add_to_page_cache": Counter("filemap:mm_filemap_add_to_page_cache", _FILE, True,
                                                    "folios added to the file's page cache (0: it stayed cached)",
                                                    ("i_ino", "s_dev")),
}
SOCKET_COUNTERS: dict[str, Counter] = {
    **COUNTERS,
    "tcp:tcp_sendmsg_locked": Counter("tcp:tcp_sendmsg_locked", "common_pid == {tx_tid}", True,
                                      "passes of tcp_sendmsg_locked() (skbs started or extended)"),
    "net:net_dev_queue": Counter("net:net_dev_queue", 'name == "{tx_if}"', True,
                                 "skbs TCP handed to the sending veth", ("name",)),
}
_P = {
    "call": Param("call", int, 65536, "bytes per splice call", lo=PAGE, hi=4 * MiB),
    "size": Param("size", int, FILE_BYTES, "file bytes", lo=MiB, hi=1 << 30),
}


def _check() -> None:
    if os.geteuid() != 0:
        raise ProbeUnavailable("counting tracepoints and reading /proc/kpageflags and PFNs need root "
                               "(CAP_PERFMON, CAP_SYS_ADMIN)")


_events: dict = {}


def available() -> dict:
    if not _events:
        _events.update(_perf.tracefs_layouts(GROUPS))
    return _events


def kernel_dev(st_dev: int) -> int:
    """A device number as the kernel's tracepoints print it (``MKDEV``: major << 20 | minor)."""
    return (os.major(st_dev) << 20) | os.minor(st_dev)


def pipe_buffers(calls) -> int:
    """Pipe buffers a file -> pipe splice fills for calls of (offset, bytes): one per page touched."""
    return sum((off + n - 1) // PAGE - off // PAGE + 1 for off, n in calls if n > 0)


class PageCacheFile:
    """A file of ``size`` bytes in the page cache of a block-device filesystem, read in by readahead;
    the folio orders readahead added are sampled on the way."""

    def __init__(self, stack: ExitStack, size: int, events: dict):
        try:
            directory, self.fs = _sys.direct_io_dir()
        except OSError as e:
            raise ProbeUnavailable(str(e)) from e
        self.directory = str(directory)
        self.fd, self.path = stack.enter_context(_cleanup.temp_file(directory, FILE_PREFIX))
        self.size = size
        block = np.random.default_rng(0).integers(0, 256, MiB, dtype=np.uint8).tobytes()
        for _ in range(size // MiB):
            os.write(self.fd, block)
        os.fsync(self.fd)
        st = os.fstat(self.fd)
        self.ino, self.kdev = st.st_ino, kernel_dev(st.st_dev)
        self.filter = _FILE.format(ino=self.ino, kdev=self.kdev)
        os.posix_fadvise(self.fd, 0, 0, os.POSIX_FADV_DONTNEED)
        self.added = Tally()
        self.lost = 0
        ev = events.get("filemap:mm_filemap_add_to_page_cache")
        sampler = _perf.Sampler(ev["id"], self.filter, 256) if ev and "order" in ev["layout"] else None
        try:
            if sampler:
                sampler.enable()
            os.lseek(self.fd, 0, os.SEEK_SET)
            while os.read(self.fd, MiB):
                pass
            if sampler:
                sampler.disable()
                for _, _, raw in sampler.drain():
                    self.added[_perf.decode(ev["layout"], raw, ("order",))[0]] += 1
                self.lost = sampler.lost
        finally:
            if sampler:
                sampler.close()

    def folio_pages(self) -> Tally:
        """Folio sizes (pages) of the cached file now: the file mapped, every page touched, PFNs and
        compound head/tail bits read (a folio is a head and the tails that follow it)."""
        m = mmap.mmap(self.fd, self.size, flags=mmap.MAP_SHARED, prot=mmap.PROT_READ)
        a = None
        try:
            a = np.frombuffer(m, dtype=np.uint8)
            int(a[::PAGE].sum())  # map every page
            pfn = _pagemap.pfns(a.__array_interface__["data"][0], self.size)
            tail = _pagemap.tails(pfn)
        finally:
            a = None  # no view may outlive the mapping
            m.close()
        out = Tally()
        for pages, _link, repeat in _pagemap.folio_layout(pfn, tail):
            out[pages] += repeat
        return out


def _splice_in(fd: int, w: int, off: int, n: int) -> int:
    moved = 0
    while moved < n:
        m = os.splice(fd, w, n - moved, offset_src=off + moved)
        if m <= 0:
            raise OSError(f"splice from the file at {off + moved} moved {m} bytes")
        moved += m
    return moved


def _drain(r: int, out: int, n: int) -> None:
    while n:
        n -= os.splice(r, out, n)


def _pipe(stack: ExitStack, nbytes: int) -> tuple[int, int, int]:
    r, w = os.pipe()
    stack.callback(os.close, r)
    stack.callback(os.close, w)
    got = fcntl.fcntl(w, fcntl.F_SETPIPE_SZ, nbytes)
    return r, w, got


def pipe_buffer_bytes(f: PageCacheFile) -> dict:
    """Bytes one splice moves into a pipe of one slot, and of 16 slots, at several offsets."""
    offsets = sorted({0, PAGE, 3 * PAGE, 64 * 1024 + 512, f.size // 2 + 5 * PAGE, f.size - 2 * PAGE})
    out = {"offsets": offsets}
    null = os.open(os.devnull, os.O_WRONLY)
    try:
        for slots in (1, 16):
            with ExitStack() as stack:
                r, w, size = _pipe(stack, slots * PAGE)
                moved = []
                for off in offsets:
                    n = os.splice(f.fd, w, MiB, offset_src=off)
                    moved.append(n)
                    _drain(r, null, n)
                out[f"{slots}_slot" + ("s" if slots > 1 else "")] = {"pipe_bytes": size, "moved": moved}
    finally:
        os.close(null)
    one = out["1_slot"]["moved"]
    out["bytes_per_buffer"] = max(one) if one else None
    out["one_buffer_per_page"] = all(n == PAGE - off % PAGE for n, off in zip(one, offsets))
    return out


def _plan(size: int, call: int) -> list[tuple[int, int]]:
    return [(off, min(call, size - off)) for off in range(0, size, call)]


def splice_to_pipe(f: PageCacheFile, call: int, events: dict) -> dict:
    """The whole file spliced into a pipe in calls of ``call`` bytes, each drained to /dev/null; counted."""
    call = _P["call"].check(call)
    specs, method, skipped = _counting.specs(COUNTERS, events, {"ino": f.ino, "kdev": f.kdev})
    plan = _plan(f.size, call)
    with ExitStack() as stack:
        r, w, psize = _pipe(stack, call + (PAGE if call % PAGE else 0))
        null = os.open(os.devnull, os.O_WRONLY)
        stack.callback(os.close, null)
        ctr = stack.enter_context(_perf.Counters(specs))

        def go():
            for off, n in plan:
                _drain(r, null, _splice_in(f.fd, w, off, n))
            return len(plan)

        ctr.enable()
        window = _perf.windowed(ctr, go, idle=False)
    return _splice_record("file_to_pipe", f, call, plan, psize, window, method, ctr.rejected, skipped)


def splice_to_socket(f: PageCacheFile, call: int, events: dict) -> dict:
    """The whole file spliced into a pipe and the pipe into a TCP socket over veth, in calls of ``call``."""
    call = _P["call"].check(call)
    plan = _plan(f.size, call)
    online = _perf.online_cpus()

    def send(fl: _net.Flow) -> dict:
        with ExitStack() as stack:
            r, w, psize = _pipe(stack, call + (PAGE if call % PAGE else 0))
            for off, n in plan:
                left = _splice_in(f.fd, w, off, n)
                while left:
                    try:
                        left -= os.splice(r, fl.tx.fileno(), left)
                    except BlockingIOError:
                        select.select([], [fl.tx], [], 0.1)
        return {"bytes": f.size, "calls": len(plan), "pipe_bytes": psize}

    raw = _counting.counted_transfer(send, prefix=NS_PREFIX, counters=SOCKET_COUNTERS, events=events,
                                     per=lambda _: 1.0, tso=True, sender_cpu=online[0],
                                     reader_cpu=online[1] if len(online) > 1 else online[0],
                                     subs={"ino": f.ino, "kdev": f.kdev})
    window = {"seconds": raw["seconds"]}
    rec = _splice_record("file_to_socket", f, call, plan, raw["send"]["pipe_bytes"], window, None, {}, raw["skipped"],
                         counts=raw["counts"])
    rec.update(snmp=raw["snmp"], features=raw["features"], cpus=raw["cpus"])
    return rec


def _splice_record(path: str, f: PageCacheFile, call: int, plan, psize: int, window: dict, method, rejected,
                   skipped, counts: dict | None = None) -> dict:
    if counts is None:
        counts = _counting.counts(window, method, rejected, 1.0)
    mib = f.size / MiB
    bufs = pipe_buffers(plan)
    per_mib = {k: {x: round(c[x] / mib, 4) for x in ("value", "low", "high")} for k, c in counts.items()}
    per_call = {k: {x: round(c[x] / len(plan), 4) for x in ("value", "low", "high")} for k, c in counts.items()}
    return {"name": f"{path}_{call // 1024}k", "path": path, "call": call, "bytes": f.size, "calls": len(plan),
            "pipe_bytes": psize, "seconds": round(window["seconds"], 4), "counts": counts,
            "per_mib": per_mib, "per_call": per_call, "skipped": skipped,
            "pipe_buffers": bufs, "pipe_buffers_per_mib": round(bufs / mib, 3),
            "pipe_buffers_per_call": round(bufs / len(plan), 3)}


def _hist(t: Tally) -> dict:
    return {str(k): t[k] for k in sorted(t)}


def measure(quick: bool = False) -> dict:
    _check()
    if shutil.which("ip") is None:
        raise ProbeUnavailable("iproute2 `ip` is not installed (the socket runs need a veth pair)")
    try:
        events = available()
    except (OSError, TimeoutError) as e:
        raise ProbeUnavailable(f"tracepoints unreadable: {e}") from e
    if "filemap:mm_filemap_get_pages" not in events:
        raise ProbeUnavailable("filemap:mm_filemap_get_pages does not exist on this kernel")
    size = 16 * MiB if quick else FILE_BYTES
    with ExitStack() as stack:
        f = PageCacheFile(stack, size, events)
        pages = f.folio_pages()
        folios = {
            "added_by_readahead": {"order": _hist(f.added), "lost_samples": f.lost,
                                   "pages": sum((1 << o) * n for o, n in f.added.items())},
            "cached": {"pages_per_folio": _hist(pages), "folios": sum(pages.values()),
                       "pages": sum(k * n for k, n in pages.items()),
                       "bytes_in_large_folios": sum(k * n for k, n in pages.items() if k > 1) * PAGE},
        }
        buffers = pipe_buffer_bytes(f)
        runs = []
        for call in CALLS:
            runs.append(splice_to_pipe(f, call, events))
            runs.append(splice_to_socket(f, call, events))
        after = f.folio_pages()
        file = {"bytes": size, "filesystem": f.fs, "directory": f.directory, "kernel_dev": f.kdev,
                "folios_unchanged": after == pages}
    return measured(file=file, folios=folios, pipe_buffer=buffers, splice=runs,
                    tracepoints=_counting.tracepoint_table(SOCKET_COUNTERS, events), page_size=PAGE, quick=quick)


def leftovers() -> list[str]:
    """This probe's namespaces and files that still exist (after a run: none)."""
    left = _net.leftover_netns(NS_PREFIX + "-")
    try:
        directory, _ = _sys.direct_io_dir()
        left += sorted(str(p) for p in directory.glob(FILE_PREFIX + "-*"))
    except OSError:
        pass
    return left


def summarize(data: dict) -> list[str]:
    c = data["folios"]["cached"]
    lines = [f"file {data['file']['bytes'] // MiB} MiB on {data['file']['filesystem']}: folios (pages: count) "
             f"{c['pages_per_folio']}; readahead added orders {data['folios']['added_by_readahead']['order']}",
             f"one pipe buffer holds {data['pipe_buffer']['bytes_per_buffer']} bytes "
             f"(one per page: {data['pipe_buffer']['one_buffer_per_page']})"]
    for r in data["splice"]:
        gp = r["per_mib"]["filemap:mm_filemap_get_pages"]["value"]
        lines.append(f"{r['name']:22s} {r['calls']:6d} calls: get_pages {gp:g}/MiB "
                     f"({r['per_call']['filemap:mm_filemap_get_pages']['value']:g}/call), "
                     f"pipe buffers {r['pipe_buffers_per_mib']:g}/MiB")
    return lines


def frame(data: dict):
    import pandas as pd

    rows = []
    for r in data["splice"]:
        for k in r["counts"]:
            rows.append({"run": r["name"], "path": r["path"], "call": r["call"], "counter": k,
                         "per_mib": r["per_mib"][k]["value"], "per_call": r["per_call"][k]["value"],
                         "pipe_buffers_per_mib": r["pipe_buffers_per_mib"]})
    return pd.DataFrame(rows)

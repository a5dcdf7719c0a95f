"""How many FOLL_PIN pins the kernel takes and drops per operation.

Source of the numbers: ``/proc/vmstat`` ``nr_foll_pin_acquired`` and
``nr_foll_pin_released``. Every pin adds the number of base pages it covers
(``node_stat_mod_folio(folio, NR_FOLL_PIN_ACQUIRED, refs)`` in mm/gup.c
``try_grab_folio`` and ``try_grab_folio_fast``, v6.12) and every unpin
subtracts them (mm/gup.c ``gup_put_folio``, v6.12); a reference taken with
FOLL_GET (``get_user_pages``, ``iov_iter_get_pages2``) does not count. The
zero page is never pinned (``is_zero_folio`` check in ``try_grab_folio``).

The counters are kept per CPU and folded in batches; writing to
``/proc/sys/vm/stat_refresh`` folds them (mm/vmstat.c ``vmstat_refresh``,
v6.12) and needs root. Each reading here refreshes first. The counters are
machine-wide, so each operation is repeated in rounds (see
:func:`measure_op`): the result is the median of the per-window deltas, and
a round counts only if idle windows as long as a sample, before and after
it, read zero and most samples are balanced and agree exactly. An operation
with no such round comes from the recording, with the reason.

Operations on a 1 MiB page-aligned anonymous buffer, faulted in beforehand
and kept out of THP unless the name says ``thp``:

- ``o_direct_read``: ``preadv`` of a file opened ``O_DIRECT`` on a block
  filesystem; iomap direct I/O extracts user pages with
  ``bio_iov_iter_get_pages`` → ``iov_iter_extract_pages``, which pins user
  memory (lib/iov_iter.c ``iov_iter_extract_user_pages`` calls
  ``pin_user_pages_fast``; block/bio.c ``__bio_iov_iter_get_pages`` sets
  ``BIO_PAGE_PINNED``, v6.12).
- ``o_direct_read_plus_4k``: the same for 1 MiB + 4 KiB.
- ``o_direct_read_thp``: 2 MiB buffer backed by one THP.
- ``process_vm_readv``: read the buffer through the cross-process path
  (own pid); remote pages are pinned (mm/process_vm_access.c
  ``process_vm_rw_single_vec``: ``pin_user_pages_remote``, v6.12).
- ``io_uring_register_buffers``: register the buffer with a ring
  (io_uring/rsrc.c ``io_sqe_buffer_register`` → io_uring/memmap.c
  ``io_pin_pages``: ``pin_user_pages_fast(FOLL_WRITE | FOLL_LONGTERM)``,
  v6.12); pins are held while registered and dropped at unregister.
- ``io_uring_register_buffers_thp``: a 2 MiB THP buffer; io_uring keeps one
  pin per folio and drops the rest at registration
  (io_uring/rsrc.c ``io_do_coalesce_buffer``, v6.12).
- ``msg_zerocopy_send``: TCP loopback send with ``MSG_ZEROCOPY``, until the
  completion is read from the error queue; pages are taken with
  ``iov_iter_get_pages2`` (net/core/datagram.c ``zerocopy_fill_skb_from_iter``,
  v6.12): references, not pins.
- ``vmsplice``: ``vmsplice`` into a pipe and read the pipe empty; fs/splice.c
  ``iter_to_pipe`` uses ``iov_iter_get_pages2`` (v6.12): references.
- ``splice_to_socket``: the buffer already vmspliced into a pipe (outside
  the measured window) is spliced into a loopback TCP socket and received
  (fs/splice.c ``splice_to_socket`` sends with ``MSG_SPLICE_PAGES``, v6.12).
- ``sendfile``: 1 MiB of a page-cached file on the block filesystem to a
  loopback TCP socket.

A zero is a finding (the operation holds references, not pins), not a
failure.
"""

from __future__ import annotations

import fcntl
import os
import statistics
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

from . import _net, _sys
from ._base import ProbeUnavailable, measured

NAME = "pins"
TITLE = "FOLL_PIN pins per operation (/proc/vmstat)"
REQUIRED = ("kernel", "ops")

VMSTAT = "/proc/vmstat"
STAT_REFRESH = "/proc/sys/vm/stat_refresh"
MIB = 1 << 20

KERNEL_SOURCE = {
    "o_direct_read": "fs/iomap/direct-io.c iomap_dio_bio_iter -> block/bio.c bio_iov_iter_get_pages -> "
                     "lib/iov_iter.c iov_iter_extract_user_pages: pin_user_pages_fast (v6.12)",
    "process_vm_readv": "mm/process_vm_access.c process_vm_rw_single_vec: pin_user_pages_remote (v6.12)",
    "io_uring_register_buffers": "io_uring/rsrc.c io_sqe_buffer_register -> io_uring/memmap.c io_pin_pages: "
                                 "pin_user_pages_fast(FOLL_WRITE|FOLL_LONGTERM) (v6.12)",
    "io_uring_register_buffers_thp": "io_uring/rsrc.c io_do_coalesce_buffer: unpins all but the first page "
                                     "of each folio (v6.12)",
    "msg_zerocopy_send": "net/core/datagram.c zerocopy_fill_skb_from_iter: iov_iter_get_pages2 (refs) (v6.12)",
    "vmsplice": "fs/splice.c iter_to_pipe: iov_iter_get_pages2 (refs) (v6.12)",
    "splice_to_socket": "fs/splice.c splice_to_socket: MSG_SPLICE_PAGES; net/core/skbuff.c "
                        "skb_splice_from_iter -> skb_append_pagefrags: get_page (v6.12)",
    "sendfile": "page-cache pages spliced to the socket (fs/splice.c splice_to_socket, v6.12)",
}
KERNEL_SOURCE["o_direct_read_plus_4k"] = KERNEL_SOURCE["o_direct_read"]
KERNEL_SOURCE["o_direct_read_thp"] = KERNEL_SOURCE["o_direct_read"]

OPS = ("o_direct_read", "o_direct_read_plus_4k", "o_direct_read_thp", "process_vm_readv",
       "io_uring_register_buffers", "io_uring_register_buffers_thp", "msg_zerocopy_send",
       "vmsplice", "splice_to_socket", "sendfile")


def read_counters(path: str | None = None) -> tuple[int, int]:
    """(acquired, released) after folding the per-CPU deltas."""
    fd = os.open(STAT_REFRESH, os.O_WRONLY)
    try:
        os.write(fd, b"1")
    finally:
        os.close(fd)
    acq = rel = None
    with open(path or VMSTAT) as f:
        for line in f:
            if line.startswith("nr_foll_pin_acquired "):
                acq = int(line.split()[1])
            elif line.startswith("nr_foll_pin_released "):
                rel = int(line.split()[1])
    if acq is None or rel is None:
        raise ProbeUnavailable(f"{path or VMSTAT} has no nr_foll_pin_acquired/nr_foll_pin_released")
    return acq, rel


def check_access() -> None:
    if not os.path.exists(VMSTAT):
        raise ProbeUnavailable(f"{VMSTAT} is missing")
    if not os.path.exists(STAT_REFRESH):
        raise ProbeUnavailable(f"{STAT_REFRESH} is missing: per-CPU counter batches cannot be folded")
    if not os.access(STAT_REFRESH, os.W_OK):
        raise ProbeUnavailable(f"{STAT_REFRESH} is not writable (needs root); without it the counters lag")
    try:
        read_counters()
    except PermissionError as e:
        raise ProbeUnavailable(f"writing {STAT_REFRESH} was refused: {e.strerror} (needs root)") from e
    except OSError as e:
        raise ProbeUnavailable(f"reading the pin counters failed: {e}") from e


class Prepared:
    """An operation with a preparation step that runs before each window, unmeasured."""

    def __init__(self, prepare, op):
        self.prepare, self.op = prepare, op


def _window(fn) -> tuple[int, int]:
    """Pin deltas across one call of ``fn`` (a callable or a :class:`Prepared`)."""
    if isinstance(fn, Prepared):
        fn.prepare()
        fn = fn.op
    a0, r0 = read_counters()
    fn()
    a1, r1 = read_counters()
    return a1 - a0, r1 - r0


def _idle(seconds: float):
    """A no-op window as long as a sample: other pinning on the machine shows in it as it would there."""
    return lambda: time.sleep(seconds)


def _balanced(sample: tuple) -> bool:
    """Every operation gives back within its sample all it pinned (acquired at even, released at odd places)."""
    return sum(sample[0::2]) == sum(sample[1::2])


def measure_op(sample, reps: int, rounds: int = 6) -> dict:
    """Median of ``reps`` calls of ``sample()`` (a tuple of counter deltas), per component.

    ``/proc/vmstat`` counts every pin on the machine, so a round counts only
    if the no-op windows before and after its samples, each as long as a
    sample, are all zero and more than half the samples are balanced
    (another process's pins caught half-way are not) and equal the median
    of the balanced ones. Rounds repeat, up to ``rounds``, until one does.
    """
    idle = 0.0
    for rnd in range(1, rounds + 1):
        baseline = [_window(_idle(idle)) for _ in range(3)]
        samples, took = [], []
        for _ in range(reps):
            t0 = time.perf_counter()
            samples.append(tuple(sample()))
            took.append(time.perf_counter() - t0)
        idle = min(0.05, statistics.median(took))
        baseline += [_window(_idle(idle)) for _ in range(3)]
        clean = [s for s in samples if _balanced(s)] or samples
        med = tuple(int(statistics.median(col)) for col in zip(*clean))
        agree = sum(1 for s in samples if s == med and _balanced(s))
        quiet = all(b == (0, 0) for b in baseline)
        if quiet and agree * 2 > reps:
            break
        if rnd < rounds:
            time.sleep(0.1 * rnd)  # let whatever else pins on this machine finish
    return {"median": med, "reps": reps, "agree": agree, "rounds": rnd,
            "stable": bool(quiet and agree * 2 > reps),
            "baseline": [list(b) for b in baseline], "samples": [list(s) for s in samples]}


def measure_window(fn, reps: int) -> dict:
    """Pins acquired and released across ``fn`` (see :func:`measure_op`)."""
    res = measure_op(lambda: _window(fn), reps)
    res["pins_acquired"], res["pins_released"] = res.pop("median")
    return res


# -- operations ------------------------------------------------------------------------

def _buffer(stack: ExitStack, size: int, thp: bool = False) -> _sys.Mapping:
    m = stack.enter_context(_sys.Mapping(size, align=_sys.HUGE if thp else _sys.PAGE, thp=thp))
    m.array()[:: _sys.PAGE] = 1  # fault in every page before measuring
    return m


def _data_file(stack: ExitStack, size: int) -> tuple[int, Path, str]:
    d, kind = _sys.direct_io_dir()
    fd, name = tempfile.mkstemp(prefix="fraglife-pins-", dir=d)
    stack.callback(os.unlink, name)
    stack.callback(os.close, fd)
    os.write(fd, os.urandom(size))
    os.fsync(fd)
    return fd, Path(name), kind


def _o_direct(stack: ExitStack, size: int, thp: bool = False) -> tuple:
    _, path, kind = _data_file(stack, 4 * MIB)
    fd = os.open(path, os.O_RDONLY | os.O_DIRECT)
    stack.callback(os.close, fd)
    m = _buffer(stack, max(size, _sys.HUGE) if thp else size, thp=thp)
    view = memoryview(m.array())[:size]
    stack.callback(view.release)

    def op():
        n = os.preadv(fd, [view], 0)
        if n != size:
            raise OSError(f"O_DIRECT read returned {n} of {size} bytes")

    extra = {"filesystem": kind}
    if thp:
        extra["thp_backed"] = _sys.thp_fraction(m)
    return op, extra


def _process_vm_readv(stack: ExitStack, size: int) -> tuple:
    src = _buffer(stack, size)
    dst = _buffer(stack, size)
    pid = os.getpid()

    def op():
        n = _sys.process_vm_readv(pid, [dst.iov()], [src.iov()])
        if n != size:
            raise OSError(f"process_vm_readv returned {n} of {size}")

    return op, {}


def _io_uring(stack: ExitStack, size: int, reps: int, thp: bool = False) -> dict:
    """Register and unregister separately: what is held while registered."""
    if os.path.exists("/proc/sys/kernel/io_uring_disabled"):
        if Path("/proc/sys/kernel/io_uring_disabled").read_text().strip() == "2":
            raise ProbeUnavailable("io_uring is disabled (kernel.io_uring_disabled = 2)")
    m = _buffer(stack, size, thp=thp)
    ring = _sys.io_uring_setup(4)
    stack.callback(os.close, ring)

    def sample():
        reg = _window(lambda: _sys.io_uring_register_buffers(ring, [m.iov()]))
        unreg = _window(lambda: _sys.io_uring_unregister_buffers(ring))
        return (*reg, *unreg)

    before = _sys.thp_fraction(m) if thp else None
    res = measure_op(sample, reps)
    after = _sys.thp_fraction(m) if thp else None
    if after != before:  # io_uring keeps one pin per folio: the answer moved
        raise ProbeUnavailable(f"the buffer's THP backing changed while measuring ({before} -> {after})")
    ra, rr, ua, ur = res.pop("median")
    out = {"pins_acquired": ra + ua, "pins_released": rr + ur,
           "held_while_registered": ra - rr, "released_at_register": rr, "released_at_unregister": ur,
           "sample_columns": ["register_acquired", "register_released", "unregister_acquired",
                              "unregister_released"], **res}
    if thp:
        out["thp_backed"] = before
    return out


def _msg_zerocopy(stack: ExitStack, size: int) -> tuple:
    m = _buffer(stack, size)
    tx, drain = _net.drained_pair(stack, zerocopy=True)
    view = memoryview(m.array())
    stack.callback(view.release)
    state = {"sent": 0, "next_id": 0, "copied": 0, "notifications": 0}

    def op():
        calls = _net.send_zerocopy(tx, view)
        state["sent"] += size
        first = state["next_id"]
        state["next_id"] += calls
        drain.wait(state["sent"])
        got = _net.wait_completions(tx, state["next_id"] - 1)
        state["notifications"] += len(got)
        state["copied"] += sum(1 for *_, c in got if c)
        assert min(lo for lo, _, _ in got) >= first

    return op, state


def _pipe(stack: ExitStack, size: int) -> tuple[int, int]:
    r, w = os.pipe()
    stack.callback(os.close, r)
    stack.callback(os.close, w)
    fcntl.fcntl(w, fcntl.F_SETPIPE_SZ, size)
    return r, w


def _vmsplice(stack: ExitStack, size: int) -> tuple:
    m = _buffer(stack, size)
    r, w = _pipe(stack, size)

    def op():
        n = _sys.vmsplice(w, [m.iov()])
        got = 0
        while got < n:
            got += len(os.read(r, n - got))
        if n != size:
            raise OSError(f"vmsplice moved {n} of {size} bytes")

    return op, {}


def _splice_to_socket(stack: ExitStack, size: int) -> tuple:
    m = _buffer(stack, size)
    r, w = _pipe(stack, size)
    tx, drain = _net.drained_pair(stack)
    state = {"sent": 0}

    def prepare():
        n = _sys.vmsplice(w, [m.iov()])
        if n != size:
            raise OSError(f"vmsplice moved {n} of {size} bytes")

    def op():
        left = size
        while left:
            left -= os.splice(r, tx.fileno(), left)
        state["sent"] += size
        drain.wait(state["sent"])

    return Prepared(prepare, op), {"vmsplice_outside_window": True}


def _sendfile(stack: ExitStack, size: int) -> tuple:
    fd, _, kind = _data_file(stack, size)
    os.pread(fd, size, 0)  # page cache warm
    tx, drain = _net.drained_pair(stack)
    state = {"sent": 0}

    def op():
        off = 0
        while off < size:
            off += os.sendfile(tx.fileno(), fd, off, size - off)
        state["sent"] += size
        drain.wait(state["sent"])

    return op, {"filesystem": kind}


def _run_op(name: str, reps: int) -> dict:
    size = {"o_direct_read_plus_4k": MIB + _sys.PAGE, "o_direct_read_thp": _sys.HUGE,
            "io_uring_register_buffers_thp": _sys.HUGE}.get(name, MIB)
    out = {"bytes": size, "pages": size // _sys.PAGE}
    with ExitStack() as stack:
        if name.startswith("io_uring"):
            out.update(_io_uring(stack, size, reps, thp=name.endswith("_thp")))
        else:
            extra = {}
            if name.startswith("o_direct"):
                op, extra = _o_direct(stack, size, thp=name.endswith("_thp"))
            elif name == "process_vm_readv":
                op, extra = _process_vm_readv(stack, size)
            elif name == "msg_zerocopy_send":
                op, state = _msg_zerocopy(stack, size)
            elif name == "vmsplice":
                op, extra = _vmsplice(stack, size)
            elif name == "splice_to_socket":
                op, extra = _splice_to_socket(stack, size)
            elif name == "sendfile":
                op, extra = _sendfile(stack, size)
            else:
                raise ValueError(name)
            out.update(measure_window(op, reps))
            if name == "msg_zerocopy_send":
                out["notifications"] = state["notifications"]
                out["completions_copied"] = state["copied"]
                out["sends"] = state["next_id"]
            out.update(extra)
    out["pins_per_page"] = out["pins_acquired"] / out["pages"]
    out["kernel_source"] = KERNEL_SOURCE[name]
    return out


def measure(quick: bool = False) -> dict:
    check_access()
    reps = 3 if quick else 5
    ops, missing = {}, {}
    for name in OPS:
        try:
            op = _run_op(name, reps)
            if not op["stable"]:
                raise ProbeUnavailable(
                    f"windows disturbed by other pinning on this machine: no-op baseline {op['baseline']}, "
                    f"{op['agree']} of {op['reps']} windows agree after {op['rounds']} rounds")
            ops[name] = op
        except ProbeUnavailable as e:
            missing[f"ops.{name}"] = str(e)
        except Exception as e:  # one operation failing does not lose the others
            missing[f"ops.{name}"] = f"{type(e).__name__}: {e}"
    if not ops:
        first = {}  # one example per kind of reason (the text before its first colon)
        for op, why in missing.items():
            first.setdefault(why.split(":", 1)[0], f"{op.split('.', 1)[-1]}: {why}")
        raise ProbeUnavailable(f"no operation could be measured ({len(missing)} tried): " + "; ".join(first.values()))
    return measured(missing, page_size=_sys.PAGE, ops=ops,
                    method="median of per-window deltas of nr_foll_pin_{acquired,released} with "
                           "/proc/sys/vm/stat_refresh written before every read; rounds repeated until idle "
                           "windows as long as a sample read 0 and most samples are balanced and agree")


def summarize(data: dict) -> list[str]:
    lines = []
    for name, op in data["ops"].items():
        if "pins_acquired" not in op:
            lines.append(f"{name:32s} {op.get('source')}: {op.get('reason')}")
            continue
        extra = ""
        if "held_while_registered" in op:
            extra = f", held while registered {op['held_while_registered']}"
        tag = "" if op.get("source", "live") == "live" else f" [{op['source']}]"
        lines.append(f"{name:32s} {op['bytes']:>8d} B  acquired {op['pins_acquired']:>4d}  "
                     f"released {op['pins_released']:>4d}{extra}{tag}")
    return lines


def frame(data: dict):
    import pandas as pd

    rows = []
    for name, op in data["ops"].items():
        rows.append({"op": name, "bytes": op.get("bytes"), "pages": op.get("pages"),
                     "pins_acquired": op.get("pins_acquired"), "pins_released": op.get("pins_released"),
                     "held_while_registered": op.get("held_while_registered"),
                     "source": op.get("source", "live"), "kernel_source": op.get("kernel_source")})
    return pd.DataFrame(rows).set_index("op")

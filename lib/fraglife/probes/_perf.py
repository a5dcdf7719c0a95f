"""Counting kernel tracepoints with perf_event_open(2), no perf binary.

A tracepoint counter is a perf event of ``type = PERF_TYPE_TRACEPOINT`` whose
``config`` is the event's id from tracefs (``events/GROUP/NAME/id``); with
``pid = -1`` and one ``cpu`` it counts every hit on that CPU, whichever task
caused it (perf_event_open(2); kernel/events/core.c, v6.12). A filter in
ftrace syntax on the event's fields (``events/GROUP/NAME/format``) is set
with the ``PERF_EVENT_IOC_SET_FILTER`` ioctl and makes the kernel count only
matching hits (kernel/trace/trace_events_filter.c ``ftrace_profile_set_filter``,
v6.12). Counts are read with read(2) as one u64 per event.

tracefs may not be mounted; then a short-lived child process mounts it in a
private mount namespace of its own (unshare(CLONE_NEWNS)), reads the ids and
formats and exits, so no mount is left behind whatever happens.

All perf events of one tracepoint share its registration: the last one closed
unregisters the probe and waits for an RCU grace period
(``perf_trace_event_unreg()`` -> ``tracepoint_synchronize_unregister()``,
kernel/trace/trace_event_perf.c, v6.18), about 18 ms per tracepoint here. A
probe counting ~50 tracepoints over ten transfers would wait that out on every
transfer; inside :func:`registrations_held` (a probe's live run) one disabled
event per tracepoint keeps each registration until the run ends. It counts
nothing (a disabled event is on no CPU's list) and changes no count.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import json
import os
import struct
import subprocess
import sys
from pathlib import Path

# arch/x86/entry/syscalls/syscall_64.tbl (v6.12)
SYS_PERF_EVENT_OPEN = 298
# include/uapi/linux/perf_event.h (v6.12)
PERF_TYPE_TRACEPOINT = 2
PERF_FLAG_FD_CLOEXEC = 1 << 3
PERF_ATTR_SIZE_VER0 = 64
PERF_EVENT_IOC_ENABLE = 0x2400  # _IO('$', 0)
PERF_EVENT_IOC_DISABLE = 0x2401  # _IO('$', 1)
PERF_EVENT_IOC_SET_FILTER = 0x40082406  # _IOW('$', 6, char *)
_ATTR_DISABLED = 1 << 0  # first bit of the flag word

TRACEFS = ("/sys/kernel/tracing", "/sys/kernel/debug/tracing")
KALLSYMS = "/proc/kallsyms"
CHILD_TIMEOUT = 20

_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
_syscall = _libc.syscall
_syscall.restype = ctypes.c_long
_ioctl = _libc.ioctl
_ioctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_void_p]


class perf_event_attr(ctypes.Structure):
    """The first PERF_ATTR_SIZE_VER0 (64) bytes: all a counting tracepoint event needs."""

    _fields_ = [
        ("type", ctypes.c_uint32),
        ("size", ctypes.c_uint32),
        ("config", ctypes.c_uint64),
        ("sample_period", ctypes.c_uint64),
        ("sample_type", ctypes.c_uint64),
        ("read_format", ctypes.c_uint64),
        ("flags", ctypes.c_uint64),  # disabled:1, inherit:1, pinned:1, ... (bitfield word)
        ("wakeup_events", ctypes.c_uint32),
        ("bp_type", ctypes.c_uint32),
        ("config1", ctypes.c_uint64),
    ]


assert ctypes.sizeof(perf_event_attr) == PERF_ATTR_SIZE_VER0


def perf_event_open(attr: perf_event_attr, pid: int, cpu: int, group_fd: int = -1,
                    flags: int = PERF_FLAG_FD_CLOEXEC) -> int:
    fd = _syscall(ctypes.c_long(SYS_PERF_EVENT_OPEN), ctypes.byref(attr), ctypes.c_int(pid), ctypes.c_int(cpu),
                  ctypes.c_int(group_fd), ctypes.c_ulong(flags))
    if fd < 0:
        e = ctypes.get_errno()
        raise OSError(e, f"perf_event_open(config={attr.config}, cpu={cpu}): {os.strerror(e)}")
    return int(fd)


def ioctl(fd: int, request: int, arg) -> None:
    if _ioctl(fd, request, arg) != 0:
        e = ctypes.get_errno()
        raise OSError(e, f"ioctl({request:#x}): {os.strerror(e)}")


def online_cpus() -> list[int]:
    """CPU numbers from /sys/devices/system/cpu/online ("0-3,6")."""
    try:
        text = Path("/sys/devices/system/cpu/online").read_text().strip()
    except OSError:
        return list(range(os.cpu_count() or 1))
    cpus: list[int] = []
    for part in text.split(","):
        lo, _, hi = part.partition("-")
        cpus += range(int(lo), int(hi or lo) + 1)
    return cpus


# -- tracefs -----------------------------------------------------------------------------------

def parse_format(text: str) -> dict[str, str]:
    """Field name -> C type from an event's ``format`` file (common_* fields included)."""
    fields = {}
    for line in text.splitlines():
        line = line.strip()
        if not line.startswith("field:"):
            continue
        decl = line[len("field:"):].split(";", 1)[0].strip()
        ctype, _, name = decl.rpartition(" ")
        name = name.split("[", 1)[0]
        fields[name] = ctype.strip() + ("[]" if "[" in decl.rpartition(" ")[2] else "")
    return fields


def mounted_tracefs() -> str | None:
    """Where tracefs is mounted in this mount namespace, if anywhere."""
    try:
        mounts = Path("/proc/self/mounts").read_text().splitlines()
    except OSError:
        return None
    points = [m.split()[1] for m in mounts if len(m.split()) > 2 and m.split()[2] == "tracefs"]
    for p in TRACEFS:
        if p in points:
            return p
    return points[0] if points else None


def _read_events(root: str, groups) -> dict:
    out = {}
    for g in groups:
        gdir = Path(root, "events", g)
        if not gdir.is_dir():
            continue
        for ev in sorted(gdir.iterdir()):
            try:
                eid = int((ev / "id").read_text())
                fmt = (ev / "format").read_text()
            except (OSError, ValueError):
                continue
            out[f"{g}:{ev.name}"] = {"id": eid, "fields": parse_format(fmt)}
    return out


# Runs in a fresh interpreter: unshare the mount namespace, mount tracefs privately, print JSON.
_CHILD = r"""
import ctypes, json, os, sys
from pathlib import Path
libc = ctypes.CDLL(None, use_errno=True)
CLONE_NEWNS, MS_REC, MS_PRIVATE = 0x00020000, 0x4000, 1 << 18
def check(ret, what):
    if ret != 0:
        e = ctypes.get_errno()
        print(json.dumps({"error": f"{what}: {os.strerror(e)}"})); sys.exit(0)
check(libc.unshare(CLONE_NEWNS), "unshare(CLONE_NEWNS)")
check(libc.mount(b"none", b"/", None, MS_REC | MS_PRIVATE, None), "mount --make-rprivate /")
target = sys.argv[1]
check(libc.mount(b"nodev", target.encode(), b"tracefs", 0, None), f"mount -t tracefs nodev {target}")
out = {}
for g in sys.argv[2:]:
    gdir = Path(target, "events", g)
    if not gdir.is_dir():
        continue
    for ev in sorted(gdir.iterdir()):
        try:
            out[f"{g}:{ev.name}"] = {"id": int((ev / "id").read_text()), "format": (ev / "format").read_text()}
        except (OSError, ValueError):
            pass
print(json.dumps({"events": out}))
"""


def tracefs_events(groups) -> tuple[dict, str]:
    """Every event of ``groups``: ``{"group:name": {"id", "fields"}}``, and how tracefs was reached.

    Raises OSError when tracefs cannot be read (not root, no tracefs)."""
    root = mounted_tracefs()
    if root is not None:
        events = _read_events(root, groups)
        if events:
            return events, f"tracefs mounted at {root}"
    target = next((p for p in TRACEFS if os.path.isdir(p)), None)
    if target is None:
        raise OSError("tracefs is not mounted and there is no /sys/kernel/tracing to mount it on")
    proc = subprocess.run([sys.executable, "-I", "-c", _CHILD, target, *groups], capture_output=True, text=True,
                          timeout=CHILD_TIMEOUT)
    try:
        answer = json.loads(proc.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        raise OSError(f"reading tracefs in a private mount namespace failed: {proc.stderr.strip()[-300:]}") from None
    if "error" in answer:
        raise OSError(f"tracefs is not mounted and mounting it privately failed: {answer['error']}")
    events = {k: {"id": v["id"], "fields": parse_format(v["format"])} for k, v in answer["events"].items()}
    if not events:
        raise OSError(f"tracefs has no events in groups {', '.join(groups)}")
    return events, "tracefs mounted privately by a child process (mount namespace gone with it)"


_kallsyms_cache: dict[frozenset, dict[str, tuple[int, int]]] = {}


def kallsyms(names) -> dict[str, tuple[int, int]]:
    """Address range [start, end) of each named kernel text symbol found in /proc/kallsyms.

    The end is the next text symbol's address. Addresses read as 0 without
    CAP_SYSLOG (kptr_restrict); those names are left out. Kept per process once
    every name is found (reading the file takes ~0.2 s; a name still missing may
    be in a module not yet loaded, so that answer is read again)."""
    key = frozenset(names)
    if key in _kallsyms_cache:
        return dict(_kallsyms_cache[key])
    out = _read_kallsyms(key)
    if len(out) == len(key):
        _kallsyms_cache[key] = dict(out)
    return out


def _read_kallsyms(want: frozenset) -> dict[str, tuple[int, int]]:
    text = []
    try:
        with open(KALLSYMS) as f:
            for line in f:
                parts = line.split()
                if len(parts) >= 3 and parts[1] in "tT":
                    text.append((int(parts[0], 16), parts[2]))
    except OSError:
        return {}
    text.sort()
    out = {}
    for (addr, name), nxt in zip(text, text[1:] + [(0, "")]):
        if name in want and addr and name not in out and nxt[0] > addr:
            out[name] = (addr, nxt[0])
    return out


# -- counters ----------------------------------------------------------------------------------

_held: dict[int, int] | None = None  # tracepoint id -> its keeper's fd, inside registrations_held()


@contextlib.contextmanager
def registrations_held():
    """Keep every tracepoint a :class:`Counters` opens registered until the block ends (module docstring:
    closing the last event of a tracepoint waits for RCU). Nested blocks share the outermost one's."""
    global _held
    if _held is not None:
        yield
        return
    _held = {}
    try:
        yield
    finally:
        held, _held = _held, None
        for fd in held.values():
            try:
                os.close(fd)
            except OSError:
                pass


def _hold(attr, cpus: list[int]) -> None:
    if _held is None or not cpus or attr.config in _held:
        return
    try:
        _held[attr.config] = perf_event_open(attr, -1, cpus[0])
    except OSError:
        pass  # only slower without it


class Counters:
    """Tracepoint counters, one perf event per (key, CPU), optionally filtered.

    ``specs``: key -> (tracepoint id, filter or None). A filter the kernel
    rejects is dropped and the reason kept in :attr:`rejected` (that key
    then counts unfiltered). Use as a context manager; counting starts at
    :meth:`enable`, and :meth:`read` may be called any number of times.
    """

    def __init__(self, specs: dict[str, tuple[int, str | None]], cpus: list[int] | None = None):
        self.cpus = list(cpus if cpus is not None else online_cpus())
        self.fds: dict[str, list[int]] = {}
        self.filters: dict[str, str | None] = {}
        self.rejected: dict[str, str] = {}
        try:
            for key, (eid, flt) in specs.items():
                self._open(key, eid, flt)
        except BaseException:
            self.close()
            raise

    def _open(self, key: str, eid: int, flt: str | None) -> None:
        attr = perf_event_attr()
        attr.type = PERF_TYPE_TRACEPOINT
        attr.size = ctypes.sizeof(attr)
        attr.config = eid
        attr.sample_period = 1
        attr.flags = _ATTR_DISABLED
        fds = self.fds.setdefault(key, [])
        _hold(attr, self.cpus)
        for cpu in self.cpus:
            fds.append(perf_event_open(attr, -1, cpu))
        self.filters[key] = None
        if flt:
            buf = ctypes.create_string_buffer(flt.encode())
            try:
                for fd in fds:
                    ioctl(fd, PERF_EVENT_IOC_SET_FILTER, ctypes.addressof(buf))
                self.filters[key] = flt
            except OSError as e:
                self.rejected[key] = f"filter {flt!r} rejected: {e.strerror}"
                for fd in fds:  # a partly applied filter would count unevenly: start over unfiltered
                    os.close(fd)
                fds.clear()
                for cpu in self.cpus:
                    fds.append(perf_event_open(attr, -1, cpu))

    def _each(self, request: int) -> None:
        for fds in self.fds.values():
            for fd in fds:
                ioctl(fd, request, None)

    def enable(self) -> None:
        self._each(PERF_EVENT_IOC_ENABLE)

    def disable(self) -> None:
        self._each(PERF_EVENT_IOC_DISABLE)

    def read(self) -> dict[str, int]:
        """Each key's count summed over CPUs, since :meth:`enable`."""
        return {key: sum(struct.unpack("=Q", os.read(fd, 8))[0] for fd in fds) for key, fds in self.fds.items()}

    def close(self) -> None:
        for fds in self.fds.values():
            for fd in fds:
                try:
                    os.close(fd)
                except OSError:
                    pass
            fds.clear()

    def __enter__(self) -> "Counters":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


# -- per-CPU counts, counting windows, raw samples (receive-side, copy-path and page-cache probes) --
#
# A counter's per-CPU values say where the counted work ran (pid = -1 counts every task on that CPU).
# A sampler records each hit's raw tracepoint fields (PERF_SAMPLE_RAW) in a ring buffer per CPU
# (perf_event_open(2), "MMAP layout": struct perf_event_mmap_page, then 2^n data pages; data_head
# at byte 1024, data_tail at 1032), so a probe can follow one object (an skb address) from event
# to event, or histogram a field the filter grammar cannot bucket (a caller's address).

PERF_SAMPLE_TIME = 1 << 2  # include/uapi/linux/perf_event.h (v6.12)
PERF_SAMPLE_CPU = 1 << 7
PERF_SAMPLE_RAW = 1 << 10
PERF_RECORD_LOST = 2
PERF_RECORD_SAMPLE = 9
_DATA_HEAD, _DATA_TAIL = 1024, 1032  # offsets in struct perf_event_mmap_page


def per_cpu(counters: Counters) -> dict[str, list[int]]:
    """Each key's count on each CPU of ``counters.cpus`` (same order), since :meth:`Counters.enable`."""
    return {key: [struct.unpack("=Q", os.read(fd, 8))[0] for fd in fds] for key, fds in counters.fds.items()}


def _diff(a: dict, b: dict) -> dict:
    return {k: [y - x for x, y in zip(a[k], b[k])] for k in a}


def windowed(counters: Counters, action, *, idle_before: float = 0.25, idle_after_max: float = 5.0,
             idle: bool = True) -> dict:
    """Count ``action()`` with enabled ``counters``, per CPU, with idle windows around it.

    Returns ``{"result": action's return value, "seconds", "raw": {key: [per CPU]}, "idle": {key:
    {"before": [...], "after": [...]}}, "idle_seconds": {"before", "after"}, "estimate": {key:
    [per CPU]}}``: ``estimate`` is the idle rate (both windows pooled) times the action's duration,
    what a counter that cannot be narrowed to the action would have counted anyway. The window after
    lasts as long as the action (at least ``idle_before``, at most ``idle_after_max``)."""
    import time

    windows: dict[str, tuple[dict, float]] = {}
    if idle:
        a = per_cpu(counters)
        time.sleep(idle_before)
        windows["before"] = (_diff(a, per_cpu(counters)), idle_before)
    start = per_cpu(counters)
    t0 = time.monotonic()
    result = action()
    seconds = time.monotonic() - t0
    end = per_cpu(counters)
    if idle:
        span = min(max(seconds, idle_before), idle_after_max)
        time.sleep(span)
        windows["after"] = (_diff(end, per_cpu(counters)), span)
    raw = _diff(start, end)
    total = sum(s for _, s in windows.values())
    est = {k: [round(sum(w[k][i] for w, _ in windows.values()) / total * seconds, 2) if total else 0.0
               for i in range(len(v))] for k, v in raw.items()}
    return {"result": result, "seconds": seconds, "raw": raw,
            "idle": {k: {w: c[k] for w, (c, _) in windows.items()} for k in raw},
            "idle_seconds": {w: round(s, 4) for w, (_, s) in windows.items()}, "estimate": est}


def parse_layout(text: str) -> dict[str, tuple[int, int, bool]]:
    """Field name -> (offset, size, signed) in the raw record, from an event's ``format`` file."""
    out = {}
    for line in text.splitlines():
        line = line.strip()
        if not line.startswith("field:"):
            continue
        parts = dict(p.strip().split(":", 1) for p in line.split(";") if ":" in p)
        decl = parts["field"].strip()
        name = decl.rpartition(" ")[2].split("[", 1)[0]
        out[name] = (int(parts["offset"]), int(parts["size"]), parts.get("signed", "0").strip() == "1")
    return out


def tracefs_layouts(groups) -> dict[str, dict]:
    """Every event of ``groups``: ``{"group:name": {"id", "layout": {field: (offset, size, signed)}}}``
    (as :func:`tracefs_events`, with where each field sits in a raw sample)."""
    root = mounted_tracefs()
    texts = {}
    if root is not None:
        for g in groups:
            gdir = Path(root, "events", g)
            for ev in sorted(gdir.iterdir()) if gdir.is_dir() else ():
                try:
                    texts[f"{g}:{ev.name}"] = (int((ev / "id").read_text()), (ev / "format").read_text())
                except (OSError, ValueError):
                    continue
    if not texts:
        target = next((p for p in TRACEFS if os.path.isdir(p)), None)
        if target is None:
            raise OSError("tracefs is not mounted and there is no /sys/kernel/tracing to mount it on")
        proc = subprocess.run([sys.executable, "-I", "-c", _CHILD, target, *groups], capture_output=True,
                              text=True, timeout=CHILD_TIMEOUT)
        try:
            answer = json.loads(proc.stdout.strip().splitlines()[-1])
        except (ValueError, IndexError):
            raise OSError(f"reading tracefs failed: {proc.stderr.strip()[-300:]}") from None
        if "error" in answer:
            raise OSError(f"tracefs is not mounted and mounting it privately failed: {answer['error']}")
        texts = {k: (v["id"], v["format"]) for k, v in answer["events"].items()}
    return {k: {"id": eid, "layout": parse_layout(fmt)} for k, (eid, fmt) in texts.items()}


def decode(layout: dict, raw: bytes, fields) -> tuple:
    """The values of integer ``fields`` of one raw sample."""
    out = []
    for f in fields:
        off, size, signed = layout[f]
        out.append(int.from_bytes(raw[off:off + size], "little", signed=signed))
    return tuple(out)


class Sampler:
    """Raw samples of one tracepoint on every CPU (every hit: sample_period 1), optionally filtered.

    ``pages`` data pages per CPU (a power of two); what does not fit before :meth:`drain` is lost
    and counted in :attr:`lost`. Use as a context manager; :meth:`drain` returns ``(time, cpu,
    raw)`` triples, ``time`` in ns of the kernel's perf clock (comparable across CPUs), in each
    CPU's order, CPU after CPU."""

    def __init__(self, eid: int, flt: str | None = None, pages: int = 1024, cpus: list[int] | None = None):
        import mmap

        if pages & (pages - 1):
            raise ValueError(f"pages must be a power of two, got {pages}")
        self.cpus = list(cpus if cpus is not None else online_cpus())
        self.page = mmap.PAGESIZE
        self.size = pages * self.page
        self.fds: list[int] = []
        self.maps: list = []
        self.lost = 0
        self.filter = flt
        attr = perf_event_attr()
        attr.type = PERF_TYPE_TRACEPOINT
        attr.size = ctypes.sizeof(attr)
        attr.config = eid
        attr.sample_period = 1
        attr.sample_type = PERF_SAMPLE_TIME | PERF_SAMPLE_CPU | PERF_SAMPLE_RAW
        attr.flags = _ATTR_DISABLED
        try:
            for cpu in self.cpus:
                fd = perf_event_open(attr, -1, cpu)
                self.fds.append(fd)
                if flt:
                    buf = ctypes.create_string_buffer(flt.encode())
                    ioctl(fd, PERF_EVENT_IOC_SET_FILTER, ctypes.addressof(buf))
                self.maps.append(mmap.mmap(fd, self.size + self.page, mmap.MAP_SHARED,
                                           mmap.PROT_READ | mmap.PROT_WRITE))
        except BaseException:
            self.close()
            raise

    def enable(self) -> None:
        for fd in self.fds:
            ioctl(fd, PERF_EVENT_IOC_ENABLE, None)

    def disable(self) -> None:
        for fd in self.fds:
            ioctl(fd, PERF_EVENT_IOC_DISABLE, None)

    def drain(self) -> list[tuple[int, int, bytes]]:
        out = []
        for m in self.maps:
            head = struct.unpack_from("=Q", m, _DATA_HEAD)[0]
            tail = struct.unpack_from("=Q", m, _DATA_TAIL)[0]
            data = m[self.page:self.page + self.size]
            data = data + data  # a record may wrap around the end
            while tail < head:
                off = tail % self.size
                kind, _misc, size = struct.unpack_from("=IHH", data, off)
                if size == 0:
                    break
                if kind == PERF_RECORD_SAMPLE:  # header, u64 time, u32 cpu + u32 res, u32 size + raw
                    t, cpu, _res, rawsz = struct.unpack_from("=QIIi", data, off + 8)
                    out.append((t, cpu, bytes(data[off + 28: off + 28 + rawsz])))
                elif kind == PERF_RECORD_LOST:
                    self.lost += struct.unpack_from("=QQ", data, off + 8)[1]
                tail += size
            struct.pack_into("=Q", m, _DATA_TAIL, tail)
        return out

    def close(self) -> None:
        for m in self.maps:
            try:
                m.close()
            except (BufferError, ValueError):
                pass
        self.maps.clear()
        for fd in self.fds:
            try:
                os.close(fd)
            except OSError:
                pass
        self.fds.clear()

    def __enter__(self) -> "Sampler":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class Symbols:
    """Kernel text symbols from /proc/kallsyms, to name a caller's address (zero without CAP_SYSLOG)."""

    def __init__(self, path: str = KALLSYMS):
        import bisect

        self._bisect = bisect.bisect_right
        rows = []
        try:
            with open(path) as f:
                for line in f:
                    parts = line.split()
                    if len(parts) >= 3 and parts[1] in "tT":
                        rows.append((int(parts[0], 16), parts[2]))
        except OSError:
            pass
        rows.sort()
        self.addrs = [a for a, _ in rows]
        self.names = [n for _, n in rows]

    def name(self, addr: int) -> str:
        i = self._bisect(self.addrs, addr) - 1
        return self.names[i] if i >= 0 and self.addrs[i] else f"{addr:#x}"


# -- counters of one task ----------------------------------------------------------------------

def require(groups, tracepoints) -> dict:
    """:func:`tracefs_events` of ``groups``; ProbeUnavailable if tracefs is unreadable or any of
    ``tracepoints`` ("group:name") is missing."""
    from ._base import ProbeUnavailable

    try:
        events, _ = tracefs_events(groups)
    except (OSError, TimeoutError, subprocess.SubprocessError) as e:
        raise ProbeUnavailable(f"tracepoints unreadable: {e}") from e
    missing = sorted({tp for tp in tracepoints if tp not in events})
    if missing:
        raise ProbeUnavailable(f"this kernel lacks tracepoints {', '.join(missing)}")
    return events


#: include/linux/trace_events.h (v6.18): TRACE_FLAG_HARDIRQ 0x08, TRACE_FLAG_SOFTIRQ 0x10,
#: TRACE_FLAG_NMI 0x40 in an event's ``common_flags``
IRQ_FLAGS = 0x08 | 0x10 | 0x40


def task_counters(events: dict, wanted: dict, tid: int) -> Counters:
    """Enabled counters of ``wanted`` (key -> (tracepoint, extra filter or None)) that count task
    ``tid``'s own work only: ``common_pid`` is the task, and no interrupt, softirq or NMI flag is set
    (an interrupt records the task it interrupted, e.g. another process's packets received on that
    CPU). A filter the kernel refuses is an error, not a fallback: the unfiltered count would be the
    whole machine's."""
    from ._base import ProbeUnavailable

    own = f"common_pid == {tid} && !(common_flags & {IRQ_FLAGS:#x})"
    specs = {k: (events[tp]["id"], own + (f" && {extra}" if extra else "")) for k, (tp, extra) in wanted.items()}
    c = Counters(specs)
    if c.rejected:
        c.close()
        raise ProbeUnavailable("tracepoint filters refused: " + "; ".join(c.rejected.values()))
    c.enable()
    return c

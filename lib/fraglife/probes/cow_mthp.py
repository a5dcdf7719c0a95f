"""fork() and a write to every page, on 64 KiB mTHP folios and on order-0 pages: what the kernel copies.

A 1 MiB anonymous buffer is written (every page faulted in), verified to be
backed as asked (``/proc/self/pagemap`` PFNs and ``/proc/kpageflags``
compound tails, as :mod:`.pagemap` reads them), held by nothing, by an
in-flight MSG_ZEROCOPY send, or by an io_uring registered buffer, and the
process forks. Then one process writes one byte to every page of the buffer:

- ``parent_child_alive``: the parent, while the child still maps the buffer;
- ``parent_child_exited``: the parent, after the child has exited;
- ``child``: the child, while the parent maps the buffer.

Buffers (``FOLIOS``): ``64k``, a 64 KiB-aligned mapping with
``MADV_HUGEPAGE`` while ``/sys/kernel/mm/transparent_hugepage/hugepages-64kB/enabled``
says ``madvise`` (the probe sets it for the 64k cases when needed and puts
the original back; a state file lets the next live probe put it back after
a SIGKILL, :func:`._cleanup.knob`); 1 MiB is less than a PMD, so the first
write of each 64 KiB range allocates one order-4 folio (mm/memory.c
``alloc_anon_folio``, v6.18); ``4k``, the same with ``MADV_NOHUGEPAGE``
(order-0 pages).

Holders (``HOLDERS``):

- ``none``;
- ``zerocopy``: the whole buffer sent with MSG_ZEROCOPY on a loopback TCP
  connection whose receiver never reads and advertises a small window, behind
  256 KiB of ordinary data that fill it, so every byte of the buffer stays in
  the sender's write queue, its pages referenced by the skbs' frags
  (``zerocopy_fill_skb_from_iter()`` -> ``iov_iter_get_pages2()``: FOLL_GET
  references, one per frag, net/core/datagram.c, v6.18); ``holder.notsent_bytes``
  (``tcp_info``) is read just before the fork and after the write;
- ``pinned``: the buffer registered with io_uring
  (``IORING_REGISTER_BUFFERS``: ``pin_user_pages_fast(FOLL_WRITE | FOLL_LONGTERM)``,
  io_uring/rsrc.c, v6.18), which also sets ``MMF_HAS_PINNED`` on the process.

Counted for each case, ``repeats`` times (each a fresh buffer and fork):

- ``fork``: pages allocated by the parent's thread during ``fork()``
  (``kmem:mm_page_alloc`` filtered on ``common_pid``, task context and ``order``,
  :func:`._perf.task_counters`; they include
  page tables and the new process' own memory), and how many pages of the
  child's mapping are other frames than the parent's right after fork
  (``child_copied_pages``: copied at fork);
- ``write``: for the writing thread, within the write alone, minor faults
  (``getrusage(RUSAGE_THREAD).ru_minflt``), ``exceptions:page_fault_user``
  hits and pages allocated by order (``kmem:mm_page_alloc``, keys
  ``order_0``, ``order_4`` = a 64 KiB folio, ``other_orders``), each less a
  baseline: the same write, through the same code, to a private buffer
  already written (no fault expected); ``raw`` and ``baseline`` are kept;
- ``outcome``: per folio of the buffer as verified before the fork, whether
  the writer's mapping still has the same frames after the write
  (``folios_reused``; for the child: the frames it had right after fork),
  none of them (``folios_copied``) or some
  (``folios_partly``); ``pages_moved``; the folio sizes the writer's mapping
  has after the write (``after_folio_pages``: run length -> count).

Every count is a median over repeats with its spread (``min``/``max``,
quartiles). The probe only counts; the rules the chapters compare with are
in mm/memory.c ``do_wp_page`` -> ``wp_can_reuse_anon_folio`` /
``__wp_can_reuse_large_anon_folio`` (v6.18) and ``copy_present_ptes`` ->
``folio_try_dup_anon_rmap_ptes`` / ``copy_present_page`` (v6.18).

Needs root (PFNs, kpageflags, tracepoints, the sysfs knob). Without the
64 KiB knob (no mTHP) the 64k cases come from the recording. A quick run
measures only :data:`LIVE_CASES` and takes the other cases from the recording
(each case's ``source`` says which; ``cases_live`` lists the live ones).
"""

from __future__ import annotations

import gc
import json
import os
import socket
import struct
import threading
import time
from contextlib import ExitStack

import numpy as np

from . import _cleanup, _jit, _net, _perf, _sys, pagemap
from ._base import ProbeUnavailable, measured, spread

NAME = "cow_mthp"
TITLE = "fork, then a write to every page: 64 KiB mTHP folios and order-0 pages reused or copied"
REQUIRED = ("kernel", "cases", "mthp")

SIZE = 1 << 20
FOLIO_BYTES = 64 << 10
FOLIO_ORDER = 4  # 64 KiB of 4 KiB pages
#: buffer kind -> pages per folio asked for
FOLIOS = {"64k": FOLIO_BYTES // _sys.PAGE, "4k": 1}
HOLDERS = ("none", "zerocopy", "pinned")
WRITERS = ("parent_child_alive", "parent_child_exited", "child")
KNOB = f"{_sys.MTHP}/hugepages-{FOLIO_BYTES >> 10}kB/enabled"
GROUPS = ("kmem", "exceptions")
#: counter key -> (tracepoint, extra filter)
EVENTS = {"page_fault_user": ("exceptions:page_fault_user", None),
          "order_0": ("kmem:mm_page_alloc", "order == 0"),
          f"order_{FOLIO_ORDER}": ("kmem:mm_page_alloc", f"order == {FOLIO_ORDER}"),
          "other_orders": ("kmem:mm_page_alloc", f"order != 0 && order != {FOLIO_ORDER}")}
ALLOC_KEYS = tuple(k for k in EVENTS if k != "page_fault_user")
JUNK = 256 << 10  # ordinary data ahead of the zerocopy send: fills the receiver's window
RCVBUF = 4096
SNDBUF = 16 << 20
SO_SNDBUFFORCE = 32  # include/uapi/asm-generic/socket.h (v6.12)
SETTLE_S = 0.05
CHILD_TIMEOUT = 30.0
#: the child's word that its write is done, and the parent's that it may report (Child.ask)
WRITTEN, REPORT = b"d", b"c"


# -- the buffer and its folios ---------------------------------------------------------------

def folio_runs(pfn: np.ndarray, tail: np.ndarray) -> list[tuple[int, int]]:
    """(first page, pages) of each folio in virtual order: a page continues the folio of the page
    before it when it is that page's next frame and a compound tail."""
    if pfn.size == 0:
        return []
    same = (np.diff(pfn) == 1) & tail[1:]
    starts = np.concatenate(([0], np.flatnonzero(~same) + 1))
    ends = np.append(starts[1:], pfn.size)
    return [(int(s), int(e - s)) for s, e in zip(starts, ends)]


def whole_folios(pfn: np.ndarray, tail: np.ndarray, pages: int) -> list[tuple[int, int]]:
    """The folio runs of exactly ``pages`` pages whose first frame is aligned to them and is no tail
    (a whole folio of that size inside the buffer)."""
    return [(s, n) for s, n in folio_runs(pfn, tail)
            if n == pages and int(pfn[s]) % pages == 0 and (pages == 1 or not tail[s])]


def _layout(addr: int) -> tuple[np.ndarray, np.ndarray]:
    pfn = pagemap.pfns(addr, SIZE)
    return pfn, pagemap.tails(pfn)


def _histogram(runs) -> dict[str, int]:
    out: dict[str, int] = {}
    for _, n in runs:
        out[str(n)] = out.get(str(n), 0) + 1
    return dict(sorted(out.items(), key=lambda kv: int(kv[0])))


# -- writing -------------------------------------------------------------------------------------

def _write(a: np.ndarray) -> int:
    """Write one byte of every page of ``a``; the writing thread's minor faults meanwhile."""
    r0 = _sys.thread_minflt()
    _jit.touch_write(a, _sys.PAGE)
    return _sys.thread_minflt() - r0


# -- the child --------------------------------------------------------------------------------

def _send_msg(fd: int, obj) -> None:
    raw = json.dumps(obj).encode()
    os.write(fd, struct.pack("=I", len(raw)) + raw)


def _read_exact(fd: int, n: int, deadline: float) -> bytes:
    out = b""
    while len(out) < n:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError(f"the child sent {len(out)} of {n} bytes in {CHILD_TIMEOUT} s")
        import select

        if not select.select([fd], [], [], left)[0]:
            continue
        chunk = os.read(fd, n - len(out))
        if not chunk:
            raise OSError("the child closed its pipe early")
        out += chunk
    return out


def _recv_msg(fd: int):
    deadline = time.monotonic() + CHILD_TIMEOUT
    (n,) = struct.unpack("=I", _read_exact(fd, 4, deadline))
    return json.loads(_read_exact(fd, n, deadline))


def _child_main(addr: int, a: np.ndarray, cmd: int, rep: int) -> None:
    """The forked child: report its frames, then serve commands: "s" (write a private scratch buffer
    of its own), "w" (write the shared buffer), each answered with the minor faults of the write and
    the frames after it, by the same code; "x" or EOF: exit. After each write it says "d" and waits
    for "c" before it reports: the parent's counting window ends there, so it holds the write and not
    the pagemap read and reply, whose allocations fault a page or two in one window or the other (it
    gave +-2 faults and order-0 pages of the child's 1 MiB write on loaded runs)."""
    _send_msg(rep, pagemap.pfns(addr, SIZE).tolist())
    scratch = None
    while True:
        c = os.read(cmd, 1)
        if c in (b"", b"x"):
            return
        if c == b"s" and scratch is None:
            scratch = _sys.Mapping(SIZE)
            scratch.array()[:] = 1
        target, where = (scratch.array(), scratch.addr) if c == b"s" else (a, addr)
        n = _write(target)
        os.write(rep, WRITTEN)
        if os.read(cmd, 1) != REPORT:
            return
        _send_msg(rep, {"minflt": n, "pfns": pagemap.pfns(where, SIZE).tolist()})


class Child:
    """A forked child that maps the buffer; it dies with the parent (PR_SET_PDEATHSIG) and on EOF."""

    def __init__(self, addr: int, a: np.ndarray):
        cmd_r, cmd_w = os.pipe()
        rep_r, rep_w = os.pipe()
        parent = os.getpid()
        pid = os.fork()
        if pid == 0:
            code = 0
            try:
                _sys.die_with_parent(parent)
                os.close(cmd_w)
                os.close(rep_r)
                _child_main(addr, a, cmd_r, rep_w)
            except BaseException:  # noqa: BLE001 (the parent sees the pipe close)
                code = 1
            finally:
                os._exit(code)
        os.close(cmd_r)
        os.close(rep_w)
        self.pid, self.cmd, self.rep = pid, cmd_w, rep_r
        self.reaped = self.closed = False

    def pfns(self) -> np.ndarray:
        return np.array(_recv_msg(self.rep), dtype=np.int64)

    def ask(self, c: bytes, written=lambda: None) -> dict:
        """Command ``c``; ``written()`` runs once the child has written, before it reports."""
        os.write(self.cmd, c)
        got = _read_exact(self.rep, 1, time.monotonic() + CHILD_TIMEOUT)
        if got != WRITTEN:
            raise OSError(f"the child answered {got!r} to {c!r}")
        written()
        os.write(self.cmd, REPORT)
        return _recv_msg(self.rep)

    def exit(self) -> None:
        if self.reaped:
            return
        try:
            os.write(self.cmd, b"x")
        except OSError:
            pass
        deadline = time.monotonic() + CHILD_TIMEOUT
        while True:
            done, _ = os.waitpid(self.pid, os.WNOHANG)
            if done:
                break
            if time.monotonic() > deadline:
                os.kill(self.pid, 9)
                os.waitpid(self.pid, 0)
                break
            time.sleep(0.001)
        self.reaped = True

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        try:
            self.exit()
        finally:
            for fd in (self.cmd, self.rep):
                try:
                    os.close(fd)
                except OSError:
                    pass


# -- holders ----------------------------------------------------------------------------------

def _hold_zerocopy(stack: ExitStack, a: np.ndarray) -> dict:
    ls = _net.listener()
    try:
        ls.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RCVBUF)  # inherited by the accepted socket
        tx, rx = _net.connect(ls)
    finally:
        ls.close()
    stack.callback(tx.close)
    stack.callback(rx.close)  # closed first: the reset frees the sender's queue
    tx.setsockopt(socket.SOL_SOCKET, SO_SNDBUFFORCE, SNDBUF)
    _net.enable_zerocopy(tx)
    tx.sendall(bytes(JUNK))
    time.sleep(SETTLE_S)  # what fits the window is sent and acknowledged
    view = memoryview(a)
    stack.callback(view.release)
    calls = _net.send_zerocopy(tx, view)
    time.sleep(SETTLE_S)
    return {"sock": tx, "send_calls": calls}


def _hold(stack: ExitStack, holder: str, m: _sys.Mapping, a: np.ndarray) -> dict:
    if holder == "none":
        return {}
    if holder == "zerocopy":
        return _hold_zerocopy(stack, a)
    ring = _sys.io_uring_setup(4)
    stack.callback(os.close, ring)
    _sys.io_uring_register_buffers(ring, [m.iov()])
    stack.callback(_sys.io_uring_unregister_buffers, ring)
    return {"ring": ring}


def _notsent(h: dict) -> int | None:
    return _net.tcp_info(h["sock"]).get("notsent_bytes") if "sock" in h else None


# -- one case ---------------------------------------------------------------------------------

def _windows(c: _perf.Counters, step) -> tuple[dict, int]:
    """Counter deltas and minor faults across one ``step(written)``, which returns the minor faults and may
    call ``written()`` to end the window early (a child, when its write is done and its report not yet)."""
    c0 = c.read()
    end: dict = {}
    n = step(lambda: end.setdefault("c1", c.read()))
    c1 = end["c1"] if "c1" in end else c.read()
    return {k: c1[k] - c0[k] for k in c0}, n


def write_pages(c: _perf.Counters, step_scratch, step_buffer) -> dict:
    """Two warm-ups, a baseline and the measured write, in that order: the warm-ups take whatever
    faults the code path itself takes the first time (after fork the interpreter's own pages are
    shared too)."""
    _windows(c, step_scratch)
    _windows(c, step_scratch)
    base, base_flt = _windows(c, step_scratch)
    raw, raw_flt = _windows(c, step_buffer)
    raw["minflt"], base["minflt"] = raw_flt, base_flt
    return {"raw": raw, "baseline": base, "net": {k: raw[k] - base[k] for k in raw}}


def run_case(folio: str, holder: str, writer: str, events: dict) -> dict:
    """One fresh buffer, one fork, one writer; every resource is released on every path."""
    per_folio = FOLIOS[folio]
    with ExitStack() as stack:
        m = stack.enter_context(_sys.Mapping(SIZE, align=FOLIO_BYTES, thp=folio != "4k"))
        a = m.array()
        _jit.touch_write(a, _sys.PAGE)
        h = _hold(stack, holder, m, a)
        before, tail = _layout(m.addr)  # after the holder: a long-term pin may migrate pages
        folios = whole_folios(before, tail, per_folio)
        if not folios:
            raise ProbeUnavailable(f"no {folio} folio in the buffer (folio sizes "
                                   f"{_histogram(folio_runs(before, tail))})")
        info = {"notsent_bytes_at_fork": _notsent(h)} if holder == "zerocopy" else {}
        tid = threading.get_native_id()
        c = stack.enter_context(_perf.task_counters(events, EVENTS, tid))
        f0 = c.read()
        child = Child(m.addr, a)
        f1 = c.read()
        stack.callback(child.close)
        child_pfns = child.pfns()
        fork_allocs = {k: f1[k] - f0[k] for k in ALLOC_KEYS}
        if writer == "parent_child_exited":
            child.exit()
        if writer == "child":
            cc = stack.enter_context(_perf.task_counters(events, EVENTS, child.pid))
            step_s = lambda written: child.ask(b"s", written)["minflt"]  # noqa: E731
            box: dict = {}

            def step_b(written):
                box.update(child.ask(b"w", written))
                return box["minflt"]

            w = write_pages(cc, step_s, step_b)
            after, ref = np.array(box["pfns"], dtype=np.int64), child_pfns
        else:
            scratch = stack.enter_context(_sys.Mapping(SIZE))
            sa = scratch.array()
            sa[:] = 1
            w = write_pages(c, lambda _written: _write(sa), lambda _written: _write(a))
            after, ref = pagemap.pfns(m.addr, SIZE), before
        if holder == "zerocopy":
            info["notsent_bytes_after_write"] = _notsent(h)
        child.close()
        after_tail = pagemap.tails(after)
    moved = after != ref
    changed = [int(moved[s:s + n].sum()) for s, n in folios]
    return {"fork_allocs": fork_allocs, "child_copied_pages": int((child_pfns != before).sum()),
            "write": w, "folios": len(folios),
            "folios_reused": sum(1 for x in changed if x == 0),
            "folios_copied": sum(1 for x, (_, n) in zip(changed, folios) if x == n),
            "folios_partly": sum(1 for x, (_, n) in zip(changed, folios) if 0 < x < n),
            "pages_moved": int(moved.sum()),
            "after_folio_pages": _histogram(folio_runs(after, after_tail)), **info}


def _median_int(values) -> int:
    vals = sorted(values)
    return vals[len(vals) // 2]


def summarise_runs(folio: str, holder: str, writer: str, runs: list[dict]) -> dict:
    """One case over its repeats: medians with spreads, the per-run values kept where small."""
    pages = SIZE // _sys.PAGE
    keys = list(runs[0]["write"]["net"])
    out = {"folio": folio, "folio_pages": FOLIOS[folio], "holder": holder, "writer": writer,
           "bytes": SIZE, "pages": pages, "repeats": len(runs),
           "folios": _median_int(r["folios"] for r in runs),
           "fork": {"allocs": {k: spread(r["fork_allocs"][k] for r in runs) for k in ALLOC_KEYS},
                    "child_copied_pages": spread(r["child_copied_pages"] for r in runs)},
           "write": {"net": {k: spread(r["write"]["net"][k] for r in runs) for k in keys},
                     "raw": {k: spread(r["write"]["raw"][k] for r in runs) for k in keys},
                     "baseline": {k: spread(r["write"]["baseline"][k] for r in runs) for k in keys}},
           "outcome": {k: spread(r[k] for r in runs)
                       for k in ("folios_reused", "folios_copied", "folios_partly", "pages_moved")},
           "after_folio_pages": [r["after_folio_pages"] for r in runs]}
    if holder == "zerocopy":
        out["notsent_bytes"] = {"at_fork": [r["notsent_bytes_at_fork"] for r in runs],
                                "after_write": [r["notsent_bytes_after_write"] for r in runs]}
    return out


def case_name(folio: str, holder: str, writer: str) -> str:
    return f"{folio}.{holder}.{writer}"


def _mthp_ready() -> tuple[str | None, str | None]:
    """(value to set or None to leave it, or a reason the 64k cases cannot run)."""
    if not os.path.exists(KNOB):
        return None, f"{KNOB} is missing (no multi-size THP for anonymous memory)"
    now = _cleanup.knob_value(KNOB)
    top = _cleanup.knob_value(f"{_sys.MTHP}/enabled") if os.path.exists(f"{_sys.MTHP}/enabled") else None
    if now in ("always", "madvise") or (now == "inherit" and top in ("always", "madvise")):
        return None, None
    return "madvise", None


#: The cases a quick live run measures: 64 KiB folios, the parent writing after the child exited, held by nothing
#: (the case that decides the versioned reuse rule) and pinned. A quick run takes the other cases from the
#: recording (named in ``_missing``: each then says ``"source": "recorded"``, its date and why; ``cases_live`` lists
#: the live ones); a full run (``quick=False``, what a recording is) measures every case.
LIVE_CASES = ("64k.none.parent_child_exited", "64k.pinned.parent_child_exited")
QUICK_REASON = "a quick run measures the default cases only (cow_mthp.LIVE_CASES)"


def measure(quick: bool = False) -> dict:
    if os.geteuid() != 0:
        raise ProbeUnavailable("needs root (PFNs, /proc/kpageflags, tracepoints, the mTHP knob)")
    repeats = 2 if quick else 5
    events = _perf.require(GROUPS, {tp for tp, _ in EVENTS.values()})
    _jit.warm()
    want, why_not = _mthp_ready()
    # without 64 KiB folios a quick run measures the same cases on order-0 pages
    wanted = tuple(n.replace("64k.", "4k.", 1) for n in LIVE_CASES) if why_not else LIVE_CASES
    original = _cleanup.knob_value(KNOB) if os.path.exists(KNOB) else None
    cases, missing = {}, {}
    enabled = gc.isenabled()
    gc.disable()  # no collection inside a window
    try:
        for folio in FOLIOS:
            with ExitStack() as stack:
                if folio != "4k":
                    if why_not:
                        for holder in HOLDERS:
                            for writer in WRITERS:
                                missing[f"cases.{case_name(folio, holder, writer)}"] = why_not
                        continue
                    if want:
                        stack.enter_context(_cleanup.knob(KNOB, want))
                for holder in HOLDERS:
                    for writer in WRITERS:
                        name = case_name(folio, holder, writer)
                        if quick and name not in wanted:
                            cases[name] = {}  # the recording's, in its place
                            missing[f"cases.{name}"] = QUICK_REASON
                            continue
                        try:
                            runs = [run_case(folio, holder, writer, events) for _ in range(repeats)]
                        except ProbeUnavailable as e:  # e.g. no 64 KiB folio could be had
                            missing[f"cases.{name}"] = str(e)
                            continue
                        except (OSError, TimeoutError) as e:
                            missing[f"cases.{name}"] = f"{type(e).__name__}: {e}"
                            continue
                        cases[name] = summarise_runs(folio, holder, writer, runs)
    finally:
        if enabled:
            gc.enable()
    live = [n for n in cases if f"cases.{n}" not in missing]
    if not live:
        raise ProbeUnavailable("no case could be measured: " + "; ".join(sorted(set(missing.values()))))
    return measured(missing, page_size=_sys.PAGE, repeats=repeats, cases=cases, cases_live=live,
                    mthp={"knob": KNOB, "original": original, "set_to": want,
                          "restored": (_cleanup.knob_value(KNOB) == original) if original else None},
                    method="counts of the writing thread within the write, less a baseline write of a "
                           "private written buffer through the same code; tracepoints filtered on "
                           "common_pid (and order); minor faults from getrusage(RUSAGE_THREAD); frames "
                           "from /proc/PID/pagemap before and after")


def summarize(data: dict) -> list[str]:
    lines = []
    for name, c in data["cases"].items():
        if "write" not in c:
            lines.append(f"{name:34s} {c.get('source')}: {c.get('reason')}")
            continue
        n = c["write"]["net"]
        o = c["outcome"]
        lines.append(f"{name:34s} faults {n['minflt']['median']:5.0f}  order-0 allocs {n['order_0']['median']:5.0f}"
                     f"  folios reused {o['folios_reused']['median']:3.0f} copied {o['folios_copied']['median']:3.0f}"
                     f" of {c['folios']}; copied at fork {c['fork']['child_copied_pages']['median']:.0f} pages")
    m = data.get("mthp", {})
    lines.append(f"mTHP knob {m.get('knob')}: was {m.get('original')}, set to {m.get('set_to')}, "
                 f"put back: {m.get('restored')}")
    return lines


def frame(data: dict):
    import pandas as pd

    rows = []
    for name, c in data["cases"].items():
        if "write" not in c:
            continue
        n, o = c["write"]["net"], c["outcome"]
        rows.append({"case": name, "folio": c["folio"], "holder": c["holder"], "writer": c["writer"],
                     "folios": c["folios"], "faults": n["minflt"]["median"],
                     "page_fault_user": n["page_fault_user"]["median"], "alloc_order_0": n["order_0"]["median"],
                     f"alloc_order_{FOLIO_ORDER}": n[f"order_{FOLIO_ORDER}"]["median"],
                     "folios_reused": o["folios_reused"]["median"], "folios_copied": o["folios_copied"]["median"],
                     "pages_moved": o["pages_moved"]["median"],
                     "copied_at_fork": c["fork"]["child_copied_pages"]["median"]})
    return pd.DataFrame(rows).set_index("case")

"""fork() and copy-on-write with referenced and pinned buffers; RLIMIT_MEMLOCK accounting.

Four measurements on the running kernel:

- ``fork``: a buffer (faulted in, order-0 pages or THP) is forked over,
  unpinned or pinned as an io_uring fixed buffer
  (``pin_user_pages_fast(FOLL_WRITE | FOLL_LONGTERM)``, io_uring/memmap.c
  ``io_pin_pages``, v6.12). The child reports its page frame numbers from
  ``/proc/self/pagemap`` and exits; the parent then writes every page. For a
  page that may be pinned ``copy_present_ptes()`` copies the page for the
  child at fork (mm/memory.c, v6.12: ``folio_try_dup_anon_rmap_pte()``
  refuses an anon-exclusive page of a folio ``folio_needs_cow_for_dma()``
  says may be pinned, include/linux/rmap.h ``__folio_try_dup_anon_rmap``);
  a PMD-mapped THP is split first (mm/huge_memory.c ``copy_huge_pmd``,
  v6.12). Any other page is shared and write-protected, and the parent's
  next write takes a write-protect fault (mm/memory.c ``do_wp_page``,
  v6.12). Reported: fork time, pages the child got copies of, pages the
  parent's own mapping moved to, the parent's write per page afterwards;
  ``child_alive`` repeats the unpinned order-0 case with the child still
  holding the pages while the parent writes (each write then copies). The
  cases alternate in each round, and the copy at fork per page is the median
  over rounds of (pinned fork - unpinned fork) / pages copied.
- ``after_fork``: what a holder of the pages sees after fork and a write by
  the parent. A FOLL_GET reference (``vmsplice`` into a pipe: fs/splice.c
  ``iter_to_pipe``, v6.12) keeps the old page while the parent's write goes
  to a copy; a pin keeps the parent on the pinned page.
- ``false_positive``: a page with k extra FOLL_GET references (k vmsplices
  of it into pipes) in a process with and without ``MMF_HAS_PINNED`` (set
  by its first FOLL_PIN, mm/gup.c ``mm_set_has_pinned_flag``; not inherited
  over fork, include/linux/sched/coredump.h ``MMF_INIT_MASK``, v6.12).
  ``folio_maybe_dma_pinned()`` is "refcount >= 1024" for a small folio
  (include/linux/mm.h, v6.12), so fork copies the unpinned page once the
  references reach the bias. Reported: for each k, whether the page was
  copied.
- ``memlock``: a process without ``CAP_IPC_LOCK`` (``nobody`` when the probe
  runs as root) and ``RLIMIT_MEMLOCK`` of 64 KiB sends with MSG_ZEROCOPY:
  ``mm_account_pinned_pages()`` charges ``(size >> PAGE_SHIFT) + 2`` pages
  per send to the user's ``locked_vm`` and fails with ENOBUFS over the
  limit (net/core/skbuff.c, v6.12); an io_uring buffer registration charges
  its pages and fails with ENOMEM over the limit (io_uring/rsrc.c
  ``io_account_mem``, v6.12). The ring may charge memory of its own, so the
  registrations tried are one page and twice the limit, where the verdict
  does not depend on it.

PFNs need CAP_SYS_ADMIN (they read as 0 otherwise); the parts that need
them come from the recording without it.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import resource
import struct
import time

from . import _jit, _net, _sys
from ._base import ProbeUnavailable, measured, spread

NAME = "cow"
TITLE = "fork with pinned and referenced buffers; false 'maybe pinned'; RLIMIT_MEMLOCK accounting"
REQUIRED = ("kernel", "fork", "after_fork", "false_positive", "memlock")

PAGEMAP = "/proc/self/pagemap"
PFN_MASK = (1 << 55) - 1
SIZE = 64 << 20
QUICK_SIZE = 16 << 20
BIAS = 1024  # GUP_PIN_COUNTING_BIAS, include/linux/mm.h (v6.12)
FP_REFS = (1019, 1020, 1021, 1022, 1023)
PIPE_SLOTS = 256  # 1 MiB pipes (fs.pipe-max-size default) of 4 KiB buffers
MEMLOCK_LIMIT = 64 << 10
MEMLOCK_SENDS = (8 << 10, 56 << 10, 60 << 10, 64 << 10, 1 << 20)
MEMLOCK_REGISTER = (4 << 10, 128 << 10)
NOBODY = 65534


def _ns() -> int:
    return time.perf_counter_ns()


def _pfn_bytes(addr: int, size: int) -> bytes:
    fd = os.open(PAGEMAP, os.O_RDONLY)
    try:
        return os.pread(fd, 8 * (size // _sys.PAGE), (addr // _sys.PAGE) * 8)
    finally:
        os.close(fd)


def _pfns(raw: bytes) -> list[int]:
    return [e & PFN_MASK for e in struct.unpack(f"{len(raw) // 8}Q", raw)]


def check_pfns() -> None:
    with _sys.Mapping(_sys.PAGE) as m:
        m.array()[0] = 1
        if not any(_pfns(_pfn_bytes(m.addr, _sys.PAGE))):
            raise ProbeUnavailable(f"{PAGEMAP} shows PFN 0: needs CAP_SYS_ADMIN")


def _read_all(fd: int) -> bytes:
    out = b""
    while True:
        chunk = os.read(fd, 1 << 20)
        if not chunk:
            return out
        out += chunk


def _ring() -> int:
    return _sys.io_uring_setup(4)


def _fork_once(size: int, pinned: bool, thp: bool, child_alive: bool = False) -> dict:
    align = _sys.HUGE if thp else _sys.PAGE
    with _sys.Mapping(size, align=align, thp=thp) as m:
        a = m.array()
        _jit.touch_write(a, _sys.PAGE)
        backed = _sys.thp_fraction(m) if thp else 0.0
        before = _pfns(_pfn_bytes(m.addr, size))
        ring = None
        if pinned:
            ring = _ring()
            _sys.io_uring_register_buffers(ring, [m.iov()])
        try:
            rep_r, rep_w = os.pipe()
            go_r, go_w = os.pipe()
            t0 = _ns()
            pid = os.fork()
            if pid == 0:  # the child: report its PFNs, then wait or leave
                try:
                    os.write(rep_w, _pfn_bytes(m.addr, size))
                    os.close(rep_w)
                    if child_alive:
                        os.read(go_r, 1)
                finally:
                    os._exit(0)
            t1 = _ns()
            os.close(rep_w)
            child = _pfns(_read_all(rep_r))
            os.close(rep_r)
            if not child_alive:
                os.waitpid(pid, 0)
            t2 = _ns()
            _jit.touch_write(a, _sys.PAGE)
            t3 = _ns()
            if child_alive:
                os.write(go_w, b"x")
                os.waitpid(pid, 0)
            os.close(go_r)
            os.close(go_w)
            after = _pfns(_pfn_bytes(m.addr, size))
        finally:
            if ring is not None:
                _sys.io_uring_unregister_buffers(ring)
                os.close(ring)
        del a
    pages = size // _sys.PAGE
    return {"fork_ns": t1 - t0, "write_ns_per_page": (t3 - t2) / pages, "thp_backed": backed,
            "child_copied": sum(c != b for c, b in zip(child, before)),
            "parent_moved": sum(x != b for x, b in zip(after, before))}


FORK_CASES = {"4k": (False, False, False), "4k_pinned": (True, False, False), "thp": (False, True, False),
              "thp_pinned": (True, True, False), "4k_child_alive": (False, False, True)}


def fork_cases(size: int, repeats: int) -> dict:
    """Each case ``repeats`` times; unpinned and pinned forks of one kind alternate, so a slow moment of the
    machine lands on both and the copy cost is the median of paired differences."""
    runs: dict[str, list[dict]] = {name: [] for name in FORK_CASES}
    for _ in range(repeats):
        for name, (pinned, thp, alive) in FORK_CASES.items():
            runs[name].append(_fork_once(size, pinned, thp, alive))
    out = {}
    pages = size // _sys.PAGE
    for name, (pinned, thp, alive) in FORK_CASES.items():
        rs = runs[name]
        out[name] = {"bytes": size, "pages": pages, "pinned": pinned, "thp": thp, "child_alive": alive,
                     "thp_backed": min(r["thp_backed"] for r in rs),
                     "fork_ns": spread(r["fork_ns"] for r in rs),
                     "write_after_fork_ns_per_page": spread(r["write_ns_per_page"] for r in rs),
                     "child_copied": sorted(r["child_copied"] for r in rs)[len(rs) // 2],
                     "parent_moved": sorted(r["parent_moved"] for r in rs)[len(rs) // 2]}
    with _sys.Mapping(size, thp=False) as m:  # the parent's write without a fork before it
        a = m.array()
        _jit.touch_write(a, _sys.PAGE)
        t = []
        for _ in range(repeats):
            t0 = _ns()
            _jit.touch_write(a, _sys.PAGE)
            t.append((_ns() - t0) / pages)
        del a
    out["no_fork_write_ns_per_page"] = spread(t)
    for kind in ("4k", "thp"):
        copied = max(1, out[f"{kind}_pinned"]["child_copied"])
        diffs = [(p["fork_ns"] - u["fork_ns"]) / copied for u, p in zip(runs[kind], runs[f"{kind}_pinned"])]
        out[f"{kind}_copy_at_fork"] = spread(diffs)
        out[f"{kind}_copy_at_fork_ns_per_page"] = out[f"{kind}_copy_at_fork"]["median"]
    return out


def after_fork(pages: int = 16) -> dict:
    size = pages * _sys.PAGE
    out = {}
    for name, fork, pin in (("ref_no_fork", False, False), ("ref_fork", True, False), ("pin_fork", True, True)):
        with _sys.Mapping(size) as m:
            a = m.array()
            a[:] = 0x11
            before = _pfns(_pfn_bytes(m.addr, size))
            ring = r = w = None
            try:
                if pin:
                    ring = _ring()
                    _sys.io_uring_register_buffers(ring, [m.iov()])
                else:
                    r, w = os.pipe()
                    fcntl.fcntl(w, fcntl.F_SETPIPE_SZ, size)
                    if _sys.vmsplice(w, [m.iov()]) != size:
                        raise OSError("vmsplice moved less than the buffer")
                child = None
                if fork:
                    rep_r, rep_w = os.pipe()
                    pid = os.fork()
                    if pid == 0:
                        try:
                            os.write(rep_w, _pfn_bytes(m.addr, size))
                        finally:
                            os._exit(0)
                    os.close(rep_w)
                    child = _pfns(_read_all(rep_r))
                    os.close(rep_r)
                    os.waitpid(pid, 0)
                a[:] = 0x22
                after = _pfns(_pfn_bytes(m.addr, size))
                res = {"pages": pages, "holder": "io_uring pin" if pin else "pipe (vmsplice ref)", "fork": fork,
                       "parent_moved": sum(x != b for x, b in zip(after, before)),
                       "child_copied": None if child is None else sum(c != b for c, b in zip(child, before))}
                if not pin:
                    got = b""
                    while len(got) < size:
                        got += os.read(r, size - len(got))
                    new, old = got.count(0x22), got.count(0x11)
                    res["holder_sees"] = "new" if new == size else "old" if old == size else "mixed"
            finally:
                if ring is not None:
                    _sys.io_uring_unregister_buffers(ring)
                    os.close(ring)
                for fd in (r, w):
                    if fd is not None:
                        os.close(fd)
            del a
        out[name] = res
    return out


def _copied_at_fork(m: _sys.Mapping) -> bool:
    """Fork; whether the child's first page of ``m`` is another frame than the parent's."""
    mine = _pfn_bytes(m.addr, _sys.PAGE)
    rep_r, rep_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.write(rep_w, _pfn_bytes(m.addr, _sys.PAGE))
        finally:
            os._exit(0)
    os.close(rep_w)
    theirs = _read_all(rep_r)
    os.close(rep_r)
    os.waitpid(pid, 0)
    return _pfns(theirs)[0] != _pfns(mine)[0]


def _fp_helper() -> dict:
    """In a fresh process (MMF_HAS_PINNED clear): copied at fork by extra refs, before and after a first pin."""
    out = {}
    for has_pinned in (False, True):
        if has_pinned:  # a first FOLL_PIN of another buffer sets MMF_HAS_PINNED for good
            other = _sys.Mapping(_sys.PAGE)
            other.array()[0] = 1
            ring = _ring()
            _sys.io_uring_register_buffers(ring, [other.iov()])
            _sys.io_uring_unregister_buffers(ring)
            os.close(ring)
        row = {}
        for k in FP_REFS:
            with _sys.Mapping(_sys.PAGE) as m:
                m.array()[0] = 1
                fds = []
                try:
                    left = k
                    while left:
                        r, w = os.pipe()
                        fds += [r, w]
                        fcntl.fcntl(w, fcntl.F_SETPIPE_SZ, PIPE_SLOTS * _sys.PAGE)
                        for _ in range(min(left, PIPE_SLOTS)):
                            _sys.vmsplice(w, [m.iov()])
                        left -= min(left, PIPE_SLOTS)
                    row[str(k)] = _copied_at_fork(m)
                finally:
                    for fd in fds:
                        os.close(fd)
        out["has_pinned" if has_pinned else "never_pinned"] = row
    return out


def _in_child(fn, drop_privileges: bool = False, memlock: int | None = None) -> dict:
    """Run ``fn()`` in a forked child; its JSON result (or its error) comes back through a pipe."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            os.close(r)
            if memlock is not None:
                resource.setrlimit(resource.RLIMIT_MEMLOCK, (memlock, memlock))
            if drop_privileges and os.geteuid() == 0:
                os.setgroups([])
                os.setgid(NOBODY)
                os.setuid(NOBODY)
            payload = {"ok": fn()}
        except BaseException as e:  # noqa: BLE001 (reported to the parent)
            payload = {"error": f"{type(e).__name__}: {e}"}
            code = 1
        try:
            os.write(w, json.dumps(payload).encode())
        finally:
            os._exit(code)
    os.close(w)
    raw = _read_all(r)
    os.close(r)
    os.waitpid(pid, 0)
    try:
        payload = json.loads(raw or b"{}")
    except ValueError:
        payload = {"error": f"unreadable child result: {raw[:200]!r}"}
    if "ok" not in payload:
        raise OSError(payload.get("error", "the child reported nothing"))
    return payload["ok"]


def false_positive() -> dict:
    res = _in_child(_fp_helper)
    first = {state: min((int(k) for k, v in row.items() if v), default=None) for state, row in res.items()}
    return {"refs": list(FP_REFS), "copied": res, "first_copied_at": first, "bias": BIAS}


def _memlock_child() -> dict:
    sends = []
    for size in MEMLOCK_SENDS:
        tx, rx = _net.tcp_pair()
        try:
            _net.enable_zerocopy(tx)
            buf = bytearray(size)
            try:
                n = tx.send(buf, _net.MSG_ZEROCOPY)
                _net.wait_completions(tx, 0)
                got = "ok" if n == size else f"partial {n}"
            except OSError as e:
                got = errno.errorcode.get(e.errno, str(e.errno))
        finally:
            tx.close()
            rx.close()
        sends.append({"bytes": size, "charged_pages": size // _sys.PAGE + 2, "result": got})
    regs = []
    for size in MEMLOCK_REGISTER:
        m = _sys.Mapping(size)
        m.array()[:: _sys.PAGE] = 1
        ring = _ring()
        try:
            _sys.io_uring_register_buffers(ring, [m.iov()])
            got = "ok"
            _sys.io_uring_unregister_buffers(ring)
        except OSError as e:
            got = errno.errorcode.get(e.errno, str(e.errno))
        finally:
            os.close(ring)
            m.close()
        regs.append({"bytes": size, "charged_pages": size // _sys.PAGE, "result": got})
    return {"uid": os.geteuid(), "sends": sends, "register": regs}


def memlock() -> dict:
    res = _in_child(_memlock_child, drop_privileges=True, memlock=MEMLOCK_LIMIT)
    limit = MEMLOCK_LIMIT // _sys.PAGE
    for row in res["sends"]:
        row["expected"] = "ok" if row["charged_pages"] <= limit else "ENOBUFS"
    for row in res["register"]:
        row["expected"] = "ok" if row["charged_pages"] <= limit else "ENOMEM"
    res["limit_bytes"] = MEMLOCK_LIMIT
    res["limit_pages"] = limit
    res["as_expected"] = all(r["result"] == r["expected"] for r in res["sends"] + res["register"])
    return res


def measure(quick: bool = False) -> dict:
    size = QUICK_SIZE if quick else SIZE
    repeats = 3 if quick else 9
    _jit.warm()
    check_pfns()
    try:
        _sys.io_uring_setup  # noqa: B018 (a wrapper exists; failures below say why)
        forks = fork_cases(size, repeats)
    except OSError as e:
        raise ProbeUnavailable(f"fork with a pinned buffer failed: {e}") from e
    out, missing = {"fork": forks}, {}
    for name, fn in (("after_fork", after_fork), ("false_positive", false_positive), ("memlock", memlock)):
        try:
            out[name] = fn()
        except (OSError, TimeoutError) as e:
            missing[name] = f"{type(e).__name__}: {e}"
    return measured(missing, page_size=_sys.PAGE, repeats=repeats, **out)


def summarize(data: dict) -> list[str]:
    lines = []
    f = data["fork"]
    for name in FORK_CASES:
        c = f[name]
        lines.append(f"fork {name:15s} {c['pages']} pages: fork {c['fork_ns']['median'] / 1e6:6.1f} ms, child copied "
                     f"{c['child_copied']}, parent moved {c['parent_moved']}, parent's write "
                     f"{c['write_after_fork_ns_per_page']['median']:7.1f} ns/page")
    lines.append(f"copy at fork per pinned page: 4k {f['4k_copy_at_fork_ns_per_page']:.0f} ns, "
                 f"thp {f['thp_copy_at_fork_ns_per_page']:.0f} ns")
    a = data.get("after_fork", {})
    for name, r in a.items():
        if isinstance(r, dict) and "parent_moved" in r:
            lines.append(f"{name:12s} parent moved {r['parent_moved']}/{r['pages']}, holder sees "
                         f"{r.get('holder_sees', '-')}")
    fp = data.get("false_positive", {})
    if "first_copied_at" in fp:
        lines.append(f"false positive: first copied at {fp['first_copied_at']} extra refs")
    ml = data.get("memlock", {})
    if "sends" in ml:
        lines.append("memlock 64 KiB: " + ", ".join(f"{r['bytes'] >> 10} KiB {r['result']}" for r in ml["sends"])
                     + "; register " + ", ".join(f"{r['bytes'] >> 10} KiB {r['result']}" for r in ml["register"]))
    return lines


def frame(data: dict):
    import pandas as pd

    rows = []
    for name in FORK_CASES:
        c = data["fork"][name]
        rows.append({"case": name, "pages": c["pages"], "pinned": c["pinned"], "thp_backed": c["thp_backed"],
                     "child_alive": c["child_alive"], "fork_ms": c["fork_ns"]["median"] / 1e6,
                     "child_copied": c["child_copied"], "parent_moved": c["parent_moved"],
                     "write_after_fork_ns_per_page": c["write_after_fork_ns_per_page"]["median"]})
    return pd.DataFrame(rows).set_index("case")

"""Which GUP path MSG_ZEROCOPY's page lookups take, by what the buffer's pages are: mmap_lock and faults.

A MSG_ZEROCOPY TCP sender looks its pages up once per skb it fills
(``tcp_sendmsg_locked()`` -> ``skb_zerocopy_iter_stream()`` ->
``zerocopy_fill_skb_from_iter()`` -> ``iov_iter_get_pages2()`` ->
``get_user_pages_fast()``, net/ipv4/tcp.c, net/core/datagram.c, v6.18).
``gup_fast_fallback()`` (mm/gup.c, v6.18) walks the page tables without
locks first and stops at the first page it cannot take; the rest of that
call goes to the slow path, ``__gup_longterm_locked()`` ->
``__get_user_pages_locked()``, which takes ``mmap_read_lock`` once per call
and faults in missing pages (``faultin_page()``). gup-fast refuses a special
PTE (``gup_fast_pte_range()``: ``pte_special()``), and a read fault on a
never-written anonymous page maps the shared zero page with a special PTE
(mm/memory.c ``do_anonymous_page()``, v6.18). A fault taken inside GUP is
counted in the task's ``min_flt`` (mm/memory.c ``mm_account_fault()``) but,
having no user registers, fires no ``exceptions:page_fault_user``.

One buffer (``SIZE``, kept out of THP) is laid out page by page as
(``LAYOUTS``): ``a`` only read before the send (zero page), ``b`` written
(present), ``c`` mapped and never touched (no PTE); the layout is checked
before every send with ``/proc/self/pagemap`` (present bit, and the zero
page's frame, found through ``/proc/kpageflags`` ``KPF_ZERO_PAGE``). The whole
buffer is then sent with MSG_ZEROCOPY in calls of ``send_size`` bytes over a
veth pair between two network namespaces (MTU 1500), with TSO and GSO on or
off, or with a TCP-MD5 key, the one setting that makes the socket build one
skb per MSS (``CONFIGS``); a thread drains the receiver.

Each connection first sends the buffer (written) ``WARMUP_SENDS`` times, so
the window has opened and skbs are as large as they get. Counted for the
sending thread only (tracepoints filtered on ``common_pid``, interrupt
context left out: :func:`._perf.task_counters`) and within the send calls only (counters read just before the first and
after the last), less a baseline window of the same length in which the
same thread runs the same loop without sending:

- ``mmap_lock``: ``mmap_lock:mmap_lock_start_locking`` (every acquisition),
  ``mmap_lock_read`` (those with ``write == 0``);
- ``minflt``: the thread's minor faults (``getrusage(RUSAGE_THREAD)``);
- ``page_fault_user``: ``exceptions:page_fault_user``;
- ``sendmsg_iterations``: ``tcp:tcp_sendmsg_locked``, which fires once per
  pass of ``tcp_sendmsg_locked()``'s loop: once per skb filled, each with one
  ``iov_iter_get_pages2()`` call (more if the skb runs out of frags), plus
  passes that only waited for memory (the socket's buffer is made large, and
  ``tcp_info.sndbuf_limited`` shows whether it waited).

In layout ``a`` every GUP call meets a zero-page PTE at once and goes to the
slow path, which takes mmap_lock once, so its ``mmap_lock`` count is the
number of GUP calls of that configuration (``gup_calls``, the same for every
layout: the skbs do not depend on what the pages are).

Per layout and configuration: each count as median and spread over
``repeats`` (``raw``, ``baseline``, ``net``), ``per_mib`` (net median per
MiB sent), ``per_gup_call`` (net median / ``gup_calls``) and
``per_sendmsg_iteration``. The probe counts only; the chapters compare.

Needs root (tracepoints, PFNs, namespaces) and iproute2.
"""

from __future__ import annotations

import gc
import os
import shutil
import socket
import struct
import threading
import time
from contextlib import ExitStack

import numpy as np

from . import _net, _perf, _sys
from ._base import ProbeUnavailable, measured, spread

NAME = "gup_paths"
TITLE = "MSG_ZEROCOPY's page lookups by buffer layout: mmap_lock taken and faults of the sending thread"
REQUIRED = ("kernel", "configs", "layouts", "runs")

MiB = 1 << 20
SIZE = 4 * MiB
QUICK_SIZE = 1 * MiB
MTU = 1500
NS_PREFIX = "fraglife-gp"
SNDBUF = 32 * MiB
SO_SNDBUFFORCE = 32  # include/uapi/asm-generic/socket.h (v6.12)
PAGEMAP = "/proc/self/pagemap"
KPAGEFLAGS = "/proc/kpageflags"
PRESENT = 1 << 63
PFN_MASK = (1 << 55) - 1
KPF_ZERO_PAGE = 24  # include/uapi/linux/kernel-page-flags.h
ZERO, WRITTEN, UNTOUCHED = 0, 1, 2
KINDS = {"a": ZERO, "b": WRITTEN, "c": UNTOUCHED}


def _halves(x: int, y: int):
    return lambda n: np.where(np.arange(n) < n // 2, x, y)


def _thirds(n: int) -> np.ndarray:
    return np.minimum(np.arange(n) * 3 // n, 2)  # a (0), b (1), c (2)


#: name -> (what, page kinds of an n-page buffer: 0 = a, 1 = b, 2 = c)
LAYOUTS = {
    "a": ("every page read only (zero page)", lambda n: np.full(n, ZERO)),
    "b": ("every page written", lambda n: np.full(n, WRITTEN)),
    "c": ("every page untouched (no PTE)", lambda n: np.full(n, UNTOUCHED)),
    "a_b": ("first half read only, second half written", _halves(ZERO, WRITTEN)),
    "b_c": ("first half written, second half untouched", _halves(WRITTEN, UNTOUCHED)),
    "a_b_c": ("thirds: read only, written, untouched", _thirds),
    "ab_pages": ("pages alternate read only, written", lambda n: np.arange(n) % 2),
    "b_c_every_16": ("written, but every 16th page untouched", lambda n: np.where(np.arange(n) % 16 == 15,
                                                                                  UNTOUCHED, WRITTEN)),
}
#: name -> (TSO and GSO on the sending veth, a TCP-MD5 key on the connection, bytes per send call).
#: A TCP socket builds skbs of up to 64 KiB whatever the device offers: ``sk_setup_caps()`` adds
#: NETIF_F_GSO for TCP (net/core/sock.c, v6.18) and ``tcp_xmit_size_goal()`` sizes skbs by
#: ``sk_can_gso()`` (net/ipv4/tcp.c, v6.18). Only ``sk_gso_disabled`` stops it, which a TCP-MD5 key
#: sets (net/ipv4/tcp_ipv4.c ``tcp_md5sig_info_add()`` -> ``sk_gso_disable()``, v6.18): then each skb
#: holds one MSS and takes its own GUP call.
CONFIGS = {"tso_64k": (True, False, 64 << 10), "tso_1m": (True, False, MiB),
           "no_tso_64k": (False, False, 64 << 10), "md5_64k": (True, True, 64 << 10)}
TCP_MD5SIG = 14  # include/uapi/linux/tcp.h (v6.12)
MD5_KEY = b"fraglife-gup-paths"
GROUPS = ("mmap_lock", "exceptions", "tcp")
#: counter key -> (tracepoint, extra filter)
EVENTS = {"mmap_lock": ("mmap_lock:mmap_lock_start_locking", None),
          "mmap_lock_read": ("mmap_lock:mmap_lock_start_locking", "write == 0"),
          "page_fault_user": ("exceptions:page_fault_user", None),
          "sendmsg_iterations": ("tcp:tcp_sendmsg_locked", None)}
KEYS = ("mmap_lock", "mmap_lock_read", "minflt", "page_fault_user", "sendmsg_iterations")
TIMEOUT = 20.0
WARMUP_SENDS = 2


# -- the buffer -------------------------------------------------------------------------------

def kinds(layout: str, pages: int) -> np.ndarray:
    return np.asarray(LAYOUTS[layout][1](pages), dtype=np.int8)


def lay_out(m: _sys.Mapping, k: np.ndarray) -> None:
    """Give the buffer layout ``k``: drop every page, write the b pages, read the a pages."""
    m.madvise(_sys.MADV_DONTNEED)
    a = m.array()
    b_idx = np.flatnonzero(k == WRITTEN) * _sys.PAGE
    a_idx = np.flatnonzero(k == ZERO) * _sys.PAGE
    a[b_idx] = 1
    int(a[a_idx].sum())  # a read fault per page: the zero page is mapped
    del a


def _entries(addr: int, pages: int) -> np.ndarray:
    fd = os.open(PAGEMAP, os.O_RDONLY)
    try:
        raw = os.pread(fd, 8 * pages, (addr // _sys.PAGE) * 8)
    finally:
        os.close(fd)
    return np.frombuffer(raw, dtype=np.uint64)


def zero_pfn() -> int:
    """The shared zero page's frame: read a fresh page, check /proc/kpageflags says ZERO_PAGE."""
    with _sys.Mapping(_sys.PAGE) as m:
        int(m.array()[0])
        e = int(_entries(m.addr, 1)[0])
    pfn = e & PFN_MASK
    if not e & PRESENT or not pfn:
        raise ProbeUnavailable(f"{PAGEMAP} hides frames (needs CAP_SYS_ADMIN)")
    try:
        fd = os.open(KPAGEFLAGS, os.O_RDONLY)
    except OSError as e:
        raise ProbeUnavailable(f"{KPAGEFLAGS} unreadable: {e.strerror}") from e
    try:
        flags = int(np.frombuffer(os.pread(fd, 8, pfn * 8), dtype=np.uint64)[0])
    finally:
        os.close(fd)
    if not flags >> KPF_ZERO_PAGE & 1:
        raise ProbeUnavailable("a read-only page is not the zero page here (use_zero_page off?)")
    return pfn


def census(m: _sys.Mapping, zero: int) -> dict[str, int]:
    """Pages of the buffer now: on the zero page, present otherwise, not present."""
    e = _entries(m.addr, m.size // _sys.PAGE)
    present = (e & np.uint64(PRESENT)) != 0
    on_zero = present & ((e & np.uint64(PFN_MASK)) == np.uint64(zero))
    return {"a": int(on_zero.sum()), "b": int((present & ~on_zero).sum()), "c": int((~present).sum())}


# -- counting -----------------------------------------------------------------------------------

def _send_calls(tx: socket.socket, view: memoryview, send_size: int) -> int:
    calls = off = 0
    while off < len(view):
        try:
            n = tx.send(view[off:off + send_size], _net.MSG_ZEROCOPY)
        except OSError as e:
            import errno

            if e.errno == errno.ENOBUFS:  # optmem: notifications not read yet
                _net.read_completions(tx)
                time.sleep(0.0005)
                continue
            raise
        calls += 1
        off += n
    return calls


def _idle_calls(view: memoryview, send_size: int, seconds: float) -> int:
    """The send loop's own work without the send, for ``seconds``."""
    end = time.perf_counter() + seconds
    calls = off = 0
    while time.perf_counter() < end:
        view[off:off + send_size]  # noqa: B018
        off = (off + send_size) % len(view)
        calls += 1
    return calls


def send_window(tx: socket.socket, view: memoryview, send_size: int, c: _perf.Counters) -> tuple[dict, float, int]:
    """Counts of the sending thread across the send calls alone; the calls' duration; send calls."""
    r0 = _sys.thread_minflt()
    c0 = c.read()
    t0 = time.perf_counter()
    calls = _send_calls(tx, view, send_size)
    t1 = time.perf_counter()
    c1 = c.read()
    r1 = _sys.thread_minflt()
    out = {k: c1[k] - c0[k] for k in c0}
    out["minflt"] = r1 - r0
    return out, t1 - t0, calls


def idle_window(view: memoryview, send_size: int, seconds: float, c: _perf.Counters) -> dict:
    r0 = _sys.thread_minflt()
    c0 = c.read()
    _idle_calls(view, send_size, seconds)
    c1 = c.read()
    r1 = _sys.thread_minflt()
    out = {k: c1[k] - c0[k] for k in c0}
    out["minflt"] = r1 - r0
    return out


# -- one configuration ----------------------------------------------------------------------------

def md5_key(sock: socket.socket, peer: str, key: bytes = MD5_KEY) -> None:
    """TCP_MD5SIG for IPv4 ``peer``: struct tcp_md5sig (include/uapi/linux/tcp.h, v6.12) is a
    128-byte sockaddr_storage, flags, prefixlen, keylen, ifindex, then an 80-byte key."""
    addr = struct.pack("=HH4s", socket.AF_INET, 0, socket.inet_aton(peer)).ljust(128, b"\0")
    sock.setsockopt(socket.IPPROTO_TCP, TCP_MD5SIG, addr + struct.pack("=BBHi", 0, 0, len(key), 0)
                    + key.ljust(80, b"\0"))


def _connection(stack: ExitStack, link: _net.Veth, md5: bool):
    ls = _net.listen_in_netns(link.rx_ns, link.rx_ip)
    stack.callback(ls.close)
    tx = _net.in_netns(link.tx_ns, lambda: socket.socket(socket.AF_INET, socket.SOCK_STREAM))
    stack.callback(tx.close)
    if md5:  # both ends, before the handshake: the accepted socket inherits the listener's key
        md5_key(ls, link.tx_ip)
        md5_key(tx, link.rx_ip)
    tx.setsockopt(socket.SOL_SOCKET, SO_SNDBUFFORCE, SNDBUF)
    tx.settimeout(TIMEOUT)
    tx.connect((link.rx_ip, ls.getsockname()[1]))
    rx, _ = ls.accept()
    stack.callback(rx.close)
    _net.enable_zerocopy(tx)
    drain = _net.Drainer(rx)
    stack.callback(drain.close)
    return tx, drain


def run_config(link: _net.Veth, tso: bool, md5: bool, send_size: int, size: int, repeats: int, events: dict,
               zero: int) -> tuple[dict, dict]:
    """Every layout ``repeats`` times (layouts interleaved within a repeat) over one connection, made
    after TSO and GSO were set (a socket reads the device's offloads when it connects)."""
    feats = _net.in_netns(link.tx_ns, lambda: _net.device_features(link.tx_if, {"tso": tso, "gso": tso}))
    if feats["tso"] != tso or feats["gso"] != tso:
        raise OSError(f"TSO/GSO did not take on {link.tx_if}: asked {tso}, read back {feats}")
    pages = size // _sys.PAGE
    runs: dict[str, list[dict]] = {name: [] for name in LAYOUTS}
    with ExitStack() as stack:
        tx, drain = _connection(stack, link, md5)
        m = stack.enter_context(_sys.Mapping(size, thp=False))
        view = memoryview(m.array())
        stack.callback(view.release)
        c = stack.enter_context(_perf.task_counters(events, EVENTS, threading.get_native_id()))
        sent = next_id = copied = 0
        lay_out(m, kinds("b", pages))
        for _ in range(WARMUP_SENDS):  # past slow start: skbs are then as large as they get
            next_id += _send_calls(tx, view, send_size)
            sent += size
        drain.wait(sent, TIMEOUT)
        _net.wait_completions(tx, next_id - 1, TIMEOUT)
        info0 = _net.tcp_info(tx)
        for _ in range(repeats):
            for name in LAYOUTS:
                k = kinds(name, pages)
                lay_out(m, k)
                want = {x: int((k == v).sum()) for x, v in KINDS.items()}
                have = census(m, zero)
                raw, seconds, calls = send_window(tx, view, send_size, c)
                base = idle_window(view, send_size, seconds, c)
                sent += size
                next_id += calls
                drain.wait(sent, TIMEOUT)
                got = _net.wait_completions(tx, next_id - 1, TIMEOUT)
                copied += sum(1 for *_, cp in got if cp)
                runs[name].append({"raw": raw, "baseline": base, "calls": calls, "census": have,
                                   "expected": want, "seconds": seconds})
        info1 = _net.tcp_info(tx)
        sndbuf = tx.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF)
    conf = {"tso": feats["tso"], "gso": feats["gso"], "md5": md5, "send_size": send_size, "mtu": MTU, "mss": info1["snd_mss"], "features": feats,
            "bytes_per_send_window": size, "windows": repeats * len(LAYOUTS),
            "sndbuf_limited_us": info1.get("sndbuf_limited", 0) - info0.get("sndbuf_limited", 0),
            "copied_notifications": copied, "sndbuf": sndbuf}
    return conf, runs


def summarise(runs: list[dict], size: int) -> dict:
    """One layout of one configuration over its repeats."""
    raw = {k: [r["raw"][k] for r in runs] for k in KEYS}
    base = {k: [r["baseline"][k] for r in runs] for k in KEYS}
    net = {k: [a - b for a, b in zip(raw[k], base[k])] for k in KEYS}
    med = {k: spread(v)["median"] for k, v in net.items()}
    calls = med["sendmsg_iterations"]
    return {"bytes": size, "pages": size // _sys.PAGE, "repeats": len(runs),
            "expected_pages": runs[0]["expected"],
            "census": [r["census"] for r in runs],
            "layout_ok": all(r["census"] == r["expected"] for r in runs),
            "send_calls": spread(r["calls"] for r in runs),
            "raw": {k: spread(v) for k, v in raw.items()}, "baseline": {k: spread(v) for k, v in base.items()},
            "net": {k: spread(v) for k, v in net.items()},
            "per_mib": {k: med[k] / (size / MiB) for k in KEYS},
            "per_sendmsg_iteration": {k: (med[k] / calls if calls else None) for k in KEYS
                                      if k != "sendmsg_iterations"}}


def with_gup_calls(layouts: dict) -> dict:
    """Add ``gup_calls`` (layout a's net mmap_lock median: one slow-path call per GUP call) and each
    count per GUP call."""
    calls = layouts["a"]["net"]["mmap_lock"]["median"] if "a" in layouts else None
    for r in layouts.values():
        r["gup_calls"] = calls
        r["per_gup_call"] = {k: (r["net"][k]["median"] / calls if calls else None) for k in KEYS
                             if k != "sendmsg_iterations"}
    return layouts


def _check() -> None:
    if os.geteuid() != 0:
        raise ProbeUnavailable("needs root (tracepoints, PFNs, network namespaces)")
    if shutil.which("ip") is None:
        raise ProbeUnavailable("iproute2 `ip` is not installed (needed for the veth pair)")


def measure(quick: bool = False) -> dict:
    _check()
    size = QUICK_SIZE if quick else SIZE
    repeats = 3 if quick else 5
    events = _perf.require(GROUPS, {tp for tp, _ in EVENTS.values()})
    zero = zero_pfn()
    configs, out, missing = {}, {}, {}
    enabled = gc.isenabled()
    gc.disable()  # no collection inside a window
    try:
        with _net.veth_pair(NS_PREFIX, sender_ns=True, mtu=MTU) as link:
            for cname, (tso, md5, send_size) in CONFIGS.items():
                try:
                    conf, runs = run_config(link, tso, md5, send_size, size, repeats, events, zero)
                except (OSError, TimeoutError) as e:
                    missing[f"runs.{cname}"] = f"{type(e).__name__}: {e}"
                    missing[f"configs.{cname}"] = f"{type(e).__name__}: {e}"
                    continue
                configs[cname] = conf
                out[cname] = with_gup_calls({name: summarise(rs, size) for name, rs in runs.items()})
    finally:
        if enabled:
            gc.enable()
    if not out:
        raise ProbeUnavailable("no configuration could be measured: " + "; ".join(sorted(set(missing.values()))))
    layouts = {name: {"what": what, "pages": {x: int((kinds(name, size // _sys.PAGE) == v).sum())
                                              for x, v in KINDS.items()}}
               for name, (what, _) in LAYOUTS.items()}
    return measured(missing, page_size=_sys.PAGE, repeats=repeats, bytes=size, configs=configs,
                    layouts=layouts, runs=out,
                    method="tracepoints filtered on the sending thread (common_pid), read just before the "
                           "first and after the last send call; minor faults from getrusage(RUSAGE_THREAD); "
                           "less a window as long in which the thread runs the send loop without sending")


def summarize(data: dict) -> list[str]:
    lines = []
    for cname, layouts in data["runs"].items():
        if "a" not in layouts:
            lines.append(f"{cname}: {layouts.get('source')}: {layouts.get('reason')}")
            continue
        conf = data["configs"].get(cname, {})
        lines.append(f"{cname} (TSO/GSO {'on' if conf.get('tso') else 'off'}{', TCP-MD5' if conf.get('md5') else ''}, "
                     f"{conf.get('send_size', 0) >> 10} KiB per send, MSS {conf.get('mss')}): "
                     f"{layouts['a']['gup_calls']:.0f} GUP calls per {data['bytes'] >> 20} MiB; per MiB:")
        for name, r in layouts.items():
            p, g = r["per_mib"], r["per_gup_call"]
            slow = f"{g['mmap_lock']:.2f}" if g["mmap_lock"] is not None else "-"
            lines.append(f"   {name:13s} mmap_lock {p['mmap_lock']:7.1f} ({slow} per GUP call)  faults "
                         f"{p['minflt']:6.1f}  page_fault_user {p['page_fault_user']:4.1f}  sendmsg iterations "
                         f"{p['sendmsg_iterations']:6.1f}")
    return lines


def frame(data: dict):
    import pandas as pd

    rows = []
    for cname, layouts in data["runs"].items():
        for name, r in layouts.items():
            if not isinstance(r, dict) or "per_mib" not in r:
                continue
            rows.append({"config": cname, "layout": name, **{f"{k}_per_mib": v for k, v in r["per_mib"].items()},
                         "gup_calls": r["gup_calls"], "mmap_lock_per_gup_call": r["per_gup_call"]["mmap_lock"],
                         "faults_per_gup_call": r["per_gup_call"]["minflt"], "layout_ok": r["layout_ok"]})
    return pd.DataFrame(rows).set_index(["config", "layout"])

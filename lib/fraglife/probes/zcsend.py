"""What a MSG_ZEROCOPY send costs the sender against a copy, per call, and GUP's price in it.

The sending thread's CPU time (``CLOCK_THREAD_CPUTIME_ID``: time it ran, and the softirqs that
interrupted it, since this kernel has no IRQ time accounting) around a sample of send calls of one
size, copy (plain ``send``) or zerocopy (``send(MSG_ZEROCOPY)`` on a socket with ``SO_ZEROCOPY``),
by a C program (``zcsend.c`` beside this module, built at probe time) pinned to one CPU with
``sched_setaffinity``, so no interpreter runs between calls: a call's cost (``ns``) is the sample's
time over its calls. After each zerocopy sample it reads the notifications from the error queue until
every call's id has completed, timed apart: ``completion_read_ns`` per sample (consecutive
completions merge into one notification, so it hardly depends on the calls the read covers; an
application that reads every N calls adds it over N to each call). The completion itself (the last
reference on the ``ubuf_info`` dropped, the notification queued) runs where the skb is freed: in the
send for ``udp``, after the ACK for ``tcp``.

Two paths, chosen so that nothing charges the sender for copying the data afterwards: a locally
delivered zerocopy skb is copied on delivery (``skb_orphan_frags_rx()`` in
``ip_local_deliver_finish()``, net/ipv4/ip_input.c, v6.18; Documentation/networking/msg_zerocopy.rst),
and on a veth pair that receive work would run in the sender's context.

- ``udp``: UDP with ``UDP_SEGMENT`` (one GSO skb per call, up to 60 KiB) into a veth whose peer is
  down, with a permanent neighbour entry (no ARP). The device has no carrier, so its qdisc is the noop
  qdisc and every skb is dropped at enqueue (``noop_enqueue()``, net/sched/sch_generic.c, v6.18),
  never copied: the completions say "not copied" and the device's ``tx_dropped`` counts every call
  (``checks``). Zerocopy needs a device with scatter-gather and checksum offload
  (``__ip_append_data()``, net/ipv4/ip_output.c, v6.18), which veth has.
- ``tcp``: TCP over a veth pair between two namespaces, ``TCP_NODELAY``, autocorking off, 64 MiB
  socket buffers; RPS (``rps_cpus`` of both devices) steers all receive processing to the other CPU,
  where a thread drains the receiver (``MSG_TRUNC``: it needs no data). The completions say "copied":
  the delivery copy ran on the other CPU. The receiver frees what it received through
  ``skb_attempt_defer_free()`` (net/core/skbuff.c, v6.18), which hands each skb back to the CPU that
  allocated it, the sender's, so freeing the delivery copy's pages and the copy path's page-frag
  pages runs there, as does ACK processing that arrives while the sender holds the socket
  (``sender_events_per_call`` counts it). TCP's terms are the TCP send path's; GUP's own price
  is best read from ``udp``.

Buffers (``CASES``): ``4k`` order-0 pages (``MADV_NOHUGEPAGE``), ``thp`` one 2 MiB THP
(``MADV_HUGEPAGE`` on a 2 MiB-aligned mapping), ``mix`` a send straddling the end of a THP and the
order-0 pages after it (half in each); ``present`` written before (reused, so cache-hot) or
``absent`` (a fresh, untouched mapping per sample, one region per call: the send faults its pages in
with a read fault, which maps the zero page; for ``thp`` the huge zero page). ``backing`` and
``after_send`` are read from /proc/self/pagemap and /proc/kpageflags (``KPF_THP``,
``KPF_ZERO_PAGE``). gup-fast refuses special PTEs such as the zero page's (``gup_fast_pte_range()``,
mm/gup.c, v6.18), so an absent or zero-page buffer goes through the slow path every time.

Statistics: every (size, buffer, state) is sampled in both modes back to back, in a shuffled order, in
``rounds`` rounds after a warm-up round (which also counts ``SENDER_EVENTS`` in the sender's
context). A reference window (a fixed loop of 16 KiB memcpy and getppid) runs every few samples; a
sample counts only if the windows before and after it took at most ``REF_TOLERANCE`` over the run's
fastest (``reference``), the way the pins probe discards rounds with a busy no-op window. Medians and
quartiles per call over the samples that count. ``movsb`` times ``rep movsb``, the instruction
``copy_from_user()`` uses on a CPU with FSRM (arch/x86/include/asm/uaccess_64.h, v6.18).

The fit (:func:`fit`, pure): each mode's median ns per call as a sum of terms (:data:`MODEL`),
least squares relative to the measured cost, on every other size of the ``4k`` and ``thp`` buffers;
checked on the held-out sizes and on the ``mix`` buffer, where the model's zerocopy/copy ratio must
sit within ``HELDOUT_TOLERANCE`` of the measured one. GUP's price is what zerocopy pays beyond the
copy's intercept, the send path both share (see :func:`fit`). ``crossover`` gives the send size above
which zerocopy costs the sender less, measured and from the fit.

The namespaces (and with them the devices, their RPS masks and sysctls), the sockets, the sender
process and the perf events are released on every path; a killed run's namespaces are deleted by the
next live run of any probe (:func:`fraglife.probes._cleanup.sweep`). Runs take turns with other transfers over veth
(:func:`fraglife.probes._net.one_transfer_at_a_time`).
"""

from __future__ import annotations

import json
import os
import random
import shutil
import socket
import statistics
import subprocess
from contextlib import ExitStack
from pathlib import Path

from . import _cc, _net, _perf, _sys
from ._base import ProbeUnavailable, measured, spread

NAME = "zcsend"
TITLE = "MSG_ZEROCOPY against copy: the sender's CPU per send call (UDP into a dropping veth, TCP with RPS)"
REQUIRED = ("kernel", "paths", "fit", "crossover")

SOURCE = Path(__file__).with_name("zcsend.c")
CFLAGS = ("-O2", "-pthread", "-std=gnu11")
NS_PREFIX = "fraglife-zs"
PATHS = ("udp", "tcp")
MODES = ("copy", "zerocopy")
_MODE_ARG = {"copy": "copy", "zerocopy": "zc"}
#: (buffer, state): order-0 pages, one THP, half THP and half order-0 (present only); pages present
#: (written before) or absent (a fresh mapping per sample: the send faults them in).
CASES = (("4k", "present"), ("thp", "present"), ("mix", "present"), ("4k", "absent"), ("thp", "absent"))
SIZES = {"udp": (4096, 8192, 16384, 24576, 32768, 40960, 49152, 61440),
         "tcp": (4096, 8192, 16384, 32768, 65536, 131072, 262144, 524288, 1048576)}
QUICK_SIZES = {"udp": (4096, 16384, 32768, 61440), "tcp": (4096, 65536, 262144, 1048576)}
ROUNDS = {"udp": 15, "tcp": 40}
QUICK_ROUNDS = {"udp": 3, "tcp": 4}
#: Bytes a sample sends (calls = this / size, 4 to 256 calls), and samples between reference windows.
SAMPLE_BYTES = {"udp": 1 << 20, "tcp": 2 << 20}
MIN_CALLS, MAX_CALLS = 4, 256
REF_EVERY, REF_ITERS = 6, 200
#: A sample counts if both reference windows around it took at most this much over the run's fastest.
REF_TOLERANCE = 0.15
MTU = 1500
GSO_SIZE = MTU - 28  # UDP_SEGMENT: one IPv4 + UDP header per segment
UDP_SEGMENT = 103  # include/uapi/linux/udp.h (v6.12)
SO_SNDBUFFORCE, SO_RCVBUFFORCE = 32, 33  # include/uapi/asm-generic/socket.h (v6.12)
SOCKET_BUF = 64 << 20
OPTMEM = 4 << 20
RUN_TIMEOUT_S = 900
MOVSB_SIZES = (4096, 32768)
#: Counted in the sending thread's context (softirqs that interrupt it included) in round 0:
#: what else the sender's CPU did per call.
SENDER_EVENTS = ("kmem:mm_page_alloc", "kmem:mm_page_free", "irq:softirq_entry", "tcp:tcp_probe",
                 "net:netif_receive_skb", "exceptions:page_fault_kernel", "mmap_lock:mmap_lock_start_locking")


# -- the plan: which samples, in which order -------------------------------------------------------

def calls_for(path: str, size: int) -> int:
    """Send calls in one sample of ``size`` bytes: about :data:`SAMPLE_BYTES` in all."""
    return max(MIN_CALLS, min(MAX_CALLS, SAMPLE_BYTES[path] // size))


def plan(path: str, sizes, cases=CASES, rounds: int = 15, seed: int = 0) -> list[tuple]:
    """The commands of one run, in order: a warm-up round, then ``rounds`` rounds.

    A round takes every (size, buffer, state) once, in a shuffled order, each as a copy sample and a
    zerocopy sample back to back (which first, at random), so slow drifts of the machine fall on
    both modes alike. A reference window opens the run and follows every :data:`REF_EVERY` samples
    and the last. Commands: ``("S", id, round, mode, size, buffer, state, calls)``,
    ``("R", id, REF_ITERS)``, ``("M", id, size, iters)``.
    """
    rng = random.Random(seed)
    out: list[tuple] = []
    ident = 0

    def add(*cmd):
        nonlocal ident
        out.append((cmd[0], ident, *cmd[1:]))
        ident += 1

    add("R", REF_ITERS)
    since = 0
    for rnd in range(rounds + 1):
        cells = [(s, b, st) for s in sizes for b, st in cases]
        rng.shuffle(cells)
        for size, buf, state in cells:
            modes = list(MODES)
            rng.shuffle(modes)
            for mode in modes:
                add("S", rnd, mode, size, buf, state, calls_for(path, size))
                since += 1
                if since >= REF_EVERY:
                    add("R", REF_ITERS)
                    since = 0
        for size in MOVSB_SIZES:
            add("M", size, max(1, (1 << 24) // size))
    if since:
        add("R", REF_ITERS)
    return out


def _line(cmd: tuple) -> str:
    if cmd[0] == "S":
        _, ident, rnd, mode, size, buf, state, calls = cmd
        return f"S {ident} {_MODE_ARG[mode]} {size} {buf} {state} {calls} {int(rnd == 0)}"
    return " ".join(str(x) for x in cmd)


# -- running the sender ------------------------------------------------------------------------------

def check_access() -> None:
    if os.geteuid() != 0:
        raise ProbeUnavailable("needs root: network namespaces, veth, RPS masks, /proc/kpageflags")
    for tool in ("ip",):
        if shutil.which(tool) is None:
            raise ProbeUnavailable(f"iproute2 `{tool}` is not installed")
    if not os.path.exists("/proc/kpageflags"):
        raise ProbeUnavailable("/proc/kpageflags is missing: the buffers' backing cannot be checked")


def cpus() -> tuple[int, int | None]:
    """(sender CPU, receiver CPU): the first two this process may run on (None: only one)."""
    allowed = sorted(os.sched_getaffinity(0))
    return allowed[0], (allowed[1] if len(allowed) > 1 else None)


def _mac(ns: str, dev: str) -> str:
    return json.loads(_net.ip("-n", ns, "-j", "link", "show", "dev", dev))[0]["address"]


def _udp_socket(link: _net.Veth) -> socket.socket:
    """A UDP socket in the sender's namespace, connected to the peer, with UDP_SEGMENT (GSO)."""

    def make():
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.setsockopt(socket.SOL_UDP, UDP_SEGMENT, GSO_SIZE)
        s.connect((link.rx_ip, 9))
        return s

    return _net.in_netns(link.tx_ns, make)


def _tcp_sockets(link: _net.Veth, stack: ExitStack) -> tuple[socket.socket, socket.socket]:
    ls = _net.listen_in_netns(link.rx_ns, link.rx_ip)
    stack.callback(ls.close)
    ls.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, SOCKET_BUF)  # before the SYN: the window scale

    def make():
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.setsockopt(socket.SOL_SOCKET, SO_SNDBUFFORCE, SOCKET_BUF)
        return s

    tx = _net.in_netns(link.tx_ns, make)
    stack.callback(tx.close)
    tx.settimeout(_net.TIMEOUT)
    tx.connect((link.rx_ip, ls.getsockname()[1]))
    rx, _ = ls.accept()
    stack.callback(rx.close)
    return tx, rx


def _skb_counter(link: _net.Veth, stack: ExitStack) -> tuple[object | None, str | None]:
    """Counters of ``net:net_dev_queue`` on the sending device (every skb handed to it), or why not."""
    try:
        events, _ = _perf.tracefs_events(["net"])
        eid = events["net:net_dev_queue"]["id"]
        counters = stack.enter_context(_perf.Counters({"skbs": (eid, f'name == "{link.tx_if}"')}))
    except (OSError, KeyError, subprocess.SubprocessError) as e:
        return None, f"skbs not counted: {e}"
    if counters.rejected:
        return None, f"skbs not counted: {counters.rejected['skbs']}"
    counters.enable()
    return counters, None


def _setup(path: str, link: _net.Veth, stack: ExitStack, rx_cpu: int | None) -> tuple[socket.socket, socket.socket | None, dict]:
    setup = {"mtu": MTU, "optmem_max": int(_net.sysctl(link.tx_ns, "net/core/optmem_max", str(OPTMEM)))}
    if path == "udp":
        mac = _mac(link.rx_ns, link.rx_if)
        _net.ip("-n", link.rx_ns, "link", "set", link.rx_if, "down")
        _net.ip("-n", link.tx_ns, "neigh", "replace", link.rx_ip, "lladdr", mac, "dev", link.tx_if,
                "nud", "permanent")
        tx = _udp_socket(link)
        stack.callback(tx.close)
        rx = None
        setup.update(gso_size=GSO_SIZE, peer="down", neighbour="permanent")
    else:
        if rx_cpu is None:
            raise ProbeUnavailable("TCP needs two CPUs: one sends, the other receives (RPS)")
        mask = format(1 << rx_cpu, "x")
        setup["rps_cpus"] = {side: _net.sysfs(ns, f"class/net/{dev}/queues/rx-0/rps_cpus", mask)
                             for side, ns, dev in (("rx", link.rx_ns, link.rx_if), ("tx", link.tx_ns, link.tx_if))}
        setup["tcp_autocorking"] = int(_net.sysctl(link.tx_ns, "net/ipv4/tcp_autocorking", "0"))
        setup["tcp_slow_start_after_idle"] = int(_net.sysctl(link.tx_ns, "net/ipv4/tcp_slow_start_after_idle", "0"))
        tx, rx = _tcp_sockets(link, stack)
        setup.update(tcp_nodelay=True, sndbuf=tx.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF),
                     rcvbuf=rx.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF), mss=_net.tcp_info(tx)["snd_mss"])
    _net.enable_zerocopy(tx)
    return tx, rx, setup


def sender_events() -> tuple[dict[str, int], str]:
    """Tracepoint ids of :data:`SENDER_EVENTS` this kernel has, and how tracefs was read."""
    events, how = _perf.tracefs_events(sorted({e.split(":")[0] for e in SENDER_EVENTS}))
    return {e: events[e]["id"] for e in SENDER_EVENTS if e in events}, how


def _launch(exe: str, tx: socket.socket, rx: socket.socket | None, tx_cpu: int, rx_cpu: int | None,
            perf_fds: list[int], events: dict[str, int], stack: ExitStack) -> subprocess.Popen:
    fds = [tx.fileno()] + ([rx.fileno()] if rx is not None else []) + perf_fds
    args = [exe, str(tx.fileno()), str(rx.fileno() if rx is not None else -1), str(tx_cpu),
            str(rx_cpu if rx_cpu is not None else tx_cpu), ",".join(map(str, perf_fds)) or "-",
            ",".join(f"{k}:{v}" for k, v in events.items()) or "-"]
    proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            pass_fds=fds)

    def stop():
        if proc.poll() is None:
            proc.kill()
        proc.wait()

    stack.callback(stop)
    return proc


def session(path: str, commands: list[tuple], exe: str) -> dict:
    """Run ``commands`` through the C sender over a fresh veth pair; the raw records and the checks.

    Everything (namespaces, devices, their RPS masks and sysctls, sockets, the sender process, the
    perf events) is gone when this returns or raises.
    """
    tx_cpu, rx_cpu = cpus()
    with ExitStack() as stack:
        stack.enter_context(_net.one_transfer_at_a_time())
        link = stack.enter_context(_net.veth_pair(NS_PREFIX, sender_ns=True, mtu=MTU))
        tx, rx, setup = _setup(path, link, stack, rx_cpu)
        counters, why = _skb_counter(link, stack)
        try:
            events, _ = sender_events()
        except (OSError, subprocess.SubprocessError):
            events = {}
        perf_fds = [fd for fds in counters.fds.values() for fd in fds] if counters is not None else []
        before = _net.link_stats(link.tx_ns, link.tx_if)
        proc = _launch(exe, tx, rx, tx_cpu, rx_cpu, perf_fds, events, stack)
        try:
            out, err = proc.communicate("".join(_line(c) + "\n" for c in commands) + "Q\n", timeout=RUN_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            raise TimeoutError(f"the {path} sender did not finish in {RUN_TIMEOUT_S} s") from None
        records = [json.loads(x) for x in out.splitlines() if x.startswith("{")]
        fatal = [r["fatal"] for r in records if "fatal" in r]
        if proc.returncode or fatal:
            raise OSError(f"the {path} sender failed ({proc.returncode}): {'; '.join(fatal) or err.strip()[-300:]}")
        after = _net.link_stats(link.tx_ns, link.tx_if)
        if path == "tcp":
            setup["retransmits"] = _net.tcp_info(tx)["total_retrans"]
    errors = [r["error"] for r in records if "error" in r]
    if errors:
        raise OSError(f"the {path} sender refused {len(errors)} commands, e.g. {errors[0]}")
    link_delta = {k: (after[k] or 0) - (before[k] or 0) for k in after}
    return {"records": records, "setup": setup, "link": link_delta, "skbs_counted": counters is not None,
            "skbs_note": why, "cpus": {"sender": tx_cpu, "receiver": rx_cpu}}


def leftovers() -> list[str]:
    """Namespaces this probe created that still exist (should always be empty)."""
    return _net.leftover_netns(NS_PREFIX + "-")


# -- from records to points ---------------------------------------------------------------------------

def quiet_samples(records: list[dict], tolerance: float = REF_TOLERANCE) -> tuple[set[int], dict]:
    """Ids of the samples whose reference windows before and after took at most ``1 + tolerance`` times the
    run's fastest (the machine ran as when it was least disturbed), and a summary of the windows."""
    refs = [(i, r["reference_ns"]) for i, r in enumerate(records) if "reference_ns" in r]
    if not refs:
        return {r["id"] for r in records if "send_ns" in r}, {"windows": 0}
    floor = min(v for _, v in refs)
    limit = floor * (1 + tolerance)
    quiet: set[int] = set()
    prev_ok, pending = False, []
    for r in records:
        if "reference_ns" in r:
            ok = r["reference_ns"] <= limit
            if prev_ok and ok:
                quiet.update(pending)
            pending, prev_ok = [], ok
        elif "send_ns" in r:
            pending.append(r["id"])
    vals = [v for _, v in refs]
    return quiet, {"windows": len(vals), "ns": spread(vals), "floor_ns": floor, "tolerance": tolerance,
                   "quiet_share": round(sum(v <= limit for v in vals) / len(vals), 3), "iters": REF_ITERS}


def _frags(buf: str, pages: int, skbs: float) -> float:
    """Frags per call under zerocopy: ``zerocopy_fill_skb_from_iter()`` merges a page into the frag before
    it when both lie in the same folio and continue it (net/core/datagram.c, v6.12), so an order-0
    page is a frag of its own and a THP gives one frag per skb it spans."""
    if buf == "4k":
        return float(pages)
    if buf == "thp":
        return max(1.0, skbs)
    half = pages // 2  # mix: the first half in the THP
    return (max(1.0, skbs * half / pages) if half else 0.0) + (pages - half)


def features(size: int, buf: str, state: str, skbs: float) -> dict:
    """What one send call of ``size`` bytes from buffer ``buf`` in ``state`` consists of (per call)."""
    pages = -(-size // _sys.PAGE)
    absent = state == "absent"
    return {"call": 1.0, "bytes": float(size), "pages": float(pages), "frags": _frags(buf, pages, skbs),
            "skbs": float(skbs), "pte_faults": float(pages) if absent and buf == "4k" else 0.0,
            "pmd_faults": float(-(-size // _sys.HUGE)) if absent and buf == "thp" else 0.0}


def points(records: list[dict], quiet: set[int], min_quiet: int = 3) -> list[dict]:
    """One point per (size, buffer, state): each mode's ns per call (median, quartiles) over its quiet
    samples (all samples if fewer than ``min_quiet`` were quiet), skbs per call, completions, backing."""
    by: dict[tuple, list[dict]] = {}
    for r in records:
        if "send_ns" in r:
            by.setdefault((r["size"], r["buf"], r["state"], r["mode"]), []).append(r)
    out = {}
    for (size, buf, state, mode), rs in sorted(by.items()):
        timed = [r for r in rs if r.get("round") != 0]  # round 0 warms up and counts events
        kept = [r for r in timed if r["id"] in quiet]
        disturbed = len(kept) < min_quiet
        use = timed if disturbed else kept
        send = [r["send_ns"] / r["calls"] for r in use]
        skbs = [r["skbs"] / r["calls"] for r in rs if r.get("skbs", -1) >= 0]
        key = (size, buf, state)
        p = out.setdefault(key, {"size": size, "buffer": buf, "state": state, "calls": rs[0]["calls"]})
        name = "zerocopy" if mode == "zc" else "copy"
        m = {"ns": spread(send), "n": len(use), "n_all": len(timed), "disturbed": disturbed,
             "skbs_per_call": statistics.median(skbs) if skbs else None,
             "retransmits": sum(r.get("retrans", 0) for r in rs), "enobufs": sum(r.get("enobufs", 0) for r in rs)}
        census = [r for r in rs if r.get("round") == 0 and "events" in r]
        if census:
            m["sender_events_per_call"] = {k: round(statistics.median(r["events"][k] / r["calls"] for r in census), 3)
                                           for k in census[0]["events"]}
        if name == "zerocopy":
            m.update(completion_read_ns=spread(r["completion_ns"] for r in use),
                     notifications_per_read=statistics.median(r["notifications"] for r in use),
                     notifications=sum(r["notifications"] for r in rs),
                     copied_notifications=sum(r["copied"] for r in rs), ids=sum(r["ids"] for r in rs),
                     sends=sum(r["calls"] for r in rs),
                     completion_timeouts=sum(1 for r in rs if r.get("completion_timeout")))
        p[name] = m
        if state == "absent":
            p.setdefault("after_send", {})[name] = {k: min(r["after"][k] for r in rs) for k in rs[0]["after"]}
        else:
            p["backing"] = {k: min(r["backing"][k] for r in rs) for k in rs[0]["backing"]}
    res = []
    for key, p in out.items():
        if "copy" in p and "zerocopy" in p:
            for mode in MODES:  # without counters: one skb per call
                k = p[mode]["skbs_per_call"]
                p[mode]["features"] = features(p["size"], p["buffer"], p["state"], 1.0 if k is None else k)
            p["zerocopy_over_copy"] = p["zerocopy"]["ns"]["median"] / p["copy"]["ns"]["median"]
            res.append(p)
    return res


def movsb(records: list[dict]) -> dict:
    """ns per rep movsb copy of each size (median over the run's windows)."""
    by: dict[int, list[float]] = {}
    for r in records:
        if "movsb_ns" in r:
            by.setdefault(r["size"], []).append(r["movsb_ns"] / r["iters"])
    return {str(s): {"bytes": s, "ns": spread(v), "ns_per_page": spread(x / (s / _sys.PAGE) for x in v)}
            for s, v in sorted(by.items())}


# -- the fit ------------------------------------------------------------------------------------------

#: Terms of each mode's cost per call, per path. ``call``: per send call; ``bytes``: per byte copied;
#: ``pages``: per page looked up; ``frags``: per frag filled and released (an order-0 page is a frag
#: of its own, a THP one per skb); ``skbs``: per skb handed to the device; ``pte_faults``/``pmd_faults``:
#: per page or 2 MiB region faulted in by the send (absent buffers). A UDP send is one skb, so its
#: per-skb work is part of ``call``. On TCP the skbs per call grow with the size in both modes, so a
#: per-skb term cannot be told from the per-byte and per-page ones (fitted, it went negative) and the
#: noise does not carry the split of a page between page and frag: TCP's per-page and per-byte terms
#: hold the per-skb work too.
MODEL = {
    "udp": {"copy": ("call", "bytes", "pte_faults", "pmd_faults"),
            "zerocopy": ("call", "pages", "frags", "pte_faults", "pmd_faults")},
    "tcp": {"copy": ("call", "bytes", "pte_faults", "pmd_faults"),
            "zerocopy": ("call", "pages", "pte_faults", "pmd_faults")},
}
#: The held-out check: the model's zerocopy/copy ratio within this share of the measured one.
HELDOUT_TOLERANCE = 0.20
FIT_BUFFERS = ("4k", "thp")


def split(pts: list[dict], fit_buffers=FIT_BUFFERS) -> tuple[list[dict], list[dict]]:
    """(fit set, held-out set): every other size, smallest and largest in the fit set, of the fit
    buffers; the other sizes and every point of any other buffer (the half-THP ``mix``) are held out."""
    sizes = sorted({p["size"] for p in pts})
    fit_sizes = set(sizes[::2]) | {sizes[-1]} if sizes else set()
    fit = [p for p in pts if p["size"] in fit_sizes and p["buffer"] in fit_buffers]
    return fit, [p for p in pts if p not in fit]


def _columns(path: str) -> list[tuple[str, str]]:
    """The unknowns, as (mode, term)."""
    return [(mode, t) for mode in MODES for t in MODEL[path][mode]]


def _row(mode: str, feats: dict, cols) -> list[float]:
    return [feats[t] if m == mode else 0.0 for m, t in cols]


def predict(coef: dict, path: str, mode: str, feats: dict) -> float:
    """ns per call of ``mode`` for a call with these features, from fitted ``coef`` (``fit()["coefficients"]``)."""
    return float(sum(coef[mode].get(t, 0.0) * feats[t] for t in MODEL[path][mode]))


def fit(path: str, pts: list[dict], fit_buffers=FIT_BUFFERS) -> dict:
    """Least squares of every mode's median ns per call on its terms (:data:`MODEL`), relative (each
    row weighted by 1/measured, costs span three orders of magnitude; no term negative: one whose best
    value is below zero is fixed at zero and the rest refitted, ``fixed_at_zero``), over the fit set of
    :func:`split`; then the held-out points' zerocopy/copy ratios, model against measured.

    GUP's price is what a zerocopy call costs beyond the copy's intercept (the send path both share:
    syscall, skb, headers, device): ``per_call_ns`` the zerocopy intercept less the copy's
    (``ubuf_info``, its accounting, the notification; reading it is ``completion_read_ns``, per read,
    apart), ``per_page_ns`` what each order-0
    page adds (lookup, reference, frag, its release), ``per_frag_ns`` the part of that each frag
    carries (a THP page costs ``per_thp_page_ns``; None where the model has no frag term),
    ``per_page_absent_ns`` an order-0 page the send faults in. ``copy.per_page_ns`` is the copy's
    price per 4 KiB (the copy itself and the page-frag work around it).
    """
    import numpy as np

    fit_pts, held = split(pts, fit_buffers)
    cols = _columns(path)
    rows, ys = [], []
    for p in fit_pts:
        for mode in MODES:
            rows.append(_row(mode, p[mode]["features"], cols))
            ys.append(p[mode]["ns"]["median"])
    a, y = np.array(rows, float), np.array(ys, float)
    used = list(np.flatnonzero(np.abs(a).sum(axis=0) > 0))  # terms the fit set exercises
    w = 1.0 / y
    sol = np.zeros(len(cols))
    fixed = []
    while used:
        sol[:] = 0.0
        sol[used] = np.linalg.lstsq(a[:, used] * w[:, None], y * w, rcond=None)[0]
        if sol.min() >= 0:
            break
        # A cost is never negative: the most negative term is one the data cannot resolve above zero.
        worst = int(np.argmin(sol))
        fixed.append(cols[worst])
        used.remove(worst)
    coef: dict = {m: {} for m in MODES}
    for (m, t), v in zip(cols, sol):
        coef[m][t] = float(v)
    residuals = []
    for p in fit_pts:
        for mode in MODES:
            meas = p[mode]["ns"]["median"]
            model = predict(coef, path, mode, p[mode]["features"])
            residuals.append({"size": p["size"], "buffer": p["buffer"], "state": p["state"], "mode": mode,
                              "measured_ns": meas, "model_ns": model, "relative": (model - meas) / meas})
    checks = heldout(coef, path, held)
    c, z = coef["copy"], coef["zerocopy"]
    frag = z.get("frags", 0.0)
    gup = {"per_call_ns": z["call"] - c["call"], "per_page_ns": z["pages"] + frag,
           "per_frag_ns": z.get("frags"), "per_thp_page_ns": z["pages"] if "frags" in z else None,
           "per_page_absent_ns": z["pages"] + frag + z.get("pte_faults", 0.0)}
    copy = {"per_call_ns": c["call"], "per_page_ns": c["bytes"] * _sys.PAGE,
            "per_page_absent_ns": c["bytes"] * _sys.PAGE + c.get("pte_faults", 0.0)}
    if path == "tcp":
        gup["includes"] = ("the TCP send path's per-skb work (per page, as skbs per call grow with the size), "
                           "ACK processing and frees of received skbs that run on the sender's CPU")
    return {"model": {m: list(MODEL[path][m]) for m in MODES}, "coefficients": coef, "gup": gup, "copy": copy,
            "fixed_at_zero": [f"{m}.{t}" for m, t in fixed],
            "fit_sizes": sorted({p["size"] for p in fit_pts}), "fit_buffers": list(fit_buffers),
            "fit_points": len(fit_pts), "residuals": residuals,
            "max_fit_residual": max((abs(r["relative"]) for r in residuals), default=None),
            "heldout": checks, "heldout_tolerance": HELDOUT_TOLERANCE,
            "max_heldout_error": max((abs(h["error"]) for h in checks), default=None),
            "heldout_ok": all(abs(h["error"]) <= HELDOUT_TOLERANCE for h in checks) if checks else None}


def heldout(coef: dict, path: str, held: list[dict]) -> list[dict]:
    """At each held-out point: the measured zerocopy/copy ratio, the model's, and the model's error
    relative to the measured ratio."""
    out = []
    for p in held:
        model = (predict(coef, path, "zerocopy", p["zerocopy"]["features"]) /
                 predict(coef, path, "copy", p["copy"]["features"]))
        meas = p["zerocopy_over_copy"]
        out.append({"size": p["size"], "buffer": p["buffer"], "state": p["state"], "measured_ratio": meas,
                    "model_ratio": model, "error": (model - meas) / meas})
    return out


def crossover(path: str, pts: list[dict], coef: dict | None = None, step: int = _sys.PAGE) -> dict:
    """Per buffer and state: the send size above which zerocopy costs the sender less than a copy,
    measured (linear interpolation of zerocopy - copy between the sizes where it changes sign) and from
    the fit (scanned in ``step`` bytes, skbs per call interpolated from the measurements). ``None``:
    never cheaper in the measured range; a value equal to the smallest size: cheaper at every size."""
    import numpy as np

    out = {}
    for buf, state in sorted({(p["buffer"], p["state"]) for p in pts}):
        row = sorted((p for p in pts if (p["buffer"], p["state"]) == (buf, state)), key=lambda p: p["size"])
        sizes = [p["size"] for p in row]
        diff = [p["zerocopy"]["ns"]["median"] - p["copy"]["ns"]["median"] for p in row]
        entry = {"measured_bytes": _first_below(sizes, diff), "sizes": [sizes[0], sizes[-1]]}
        if coef is not None:
            grid = np.arange(sizes[0], sizes[-1] + 1, step)
            skbs = {m: np.interp(grid, sizes, [p[m]["features"]["skbs"] for p in row]) for m in MODES}
            d = [predict(coef, path, "zerocopy", features(int(s), buf, state, kz)) -
                 predict(coef, path, "copy", features(int(s), buf, state, kc))
                 for s, kz, kc in zip(grid, skbs["zerocopy"], skbs["copy"])]
            entry["fit_bytes"] = _first_below([int(s) for s in grid], d)
        out[f"{buf}/{state}"] = entry
    return out


def _first_below(xs, ds) -> float | None:
    """The x at which d(x) turns negative for good (interpolated), xs[0] if it always is, None if never."""
    if not ds or ds[-1] >= 0:
        return None
    i = len(ds) - 1
    while i > 0 and ds[i - 1] < 0:
        i -= 1
    if i == 0:
        return float(xs[0])
    x0, x1, d0, d1 = xs[i - 1], xs[i], ds[i - 1], ds[i]
    return float(x0 + (x1 - x0) * d0 / (d0 - d1))


# -- the probe ----------------------------------------------------------------------------------------

WHAT = {
    "udp": "UDP with UDP_SEGMENT (GSO, one skb per call) into a veth whose peer is down, with a permanent "
           "neighbour entry: every skb is dropped at the sending device, nothing is delivered, nothing copies "
           "zerocopy frags afterwards",
    "tcp": "TCP over a veth pair between two namespaces, TCP_NODELAY, autocorking off, 64 MiB socket buffers; "
           "RPS steers both devices' receive to the other CPU, so the delivery copy of zerocopy frags "
           "(skb_orphan_frags_rx) and the receiver run there",
}


def _checks(path: str, pts: list[dict], run: dict) -> dict:
    """What the kernel reported about the run: completions, drops, skbs, retransmissions."""
    zc = [p["zerocopy"] for p in pts]
    sends = sum(z["sends"] for z in zc)
    calls = sum(r["calls"] for r in run["records"] if "send_ns" in r)
    out = {"send_calls": calls, "zerocopy_sends": sends, "notifications": sum(z["notifications"] for z in zc),
           "ids_completed": sum(z["ids"] for z in zc),
           "copied_notifications": sum(z["copied_notifications"] for z in zc),
           "completion_timeouts": sum(z["completion_timeouts"] for z in zc),
           "enobufs": sum(p[m]["enobufs"] for p in pts for m in MODES),
           "retransmits": sum(p[m]["retransmits"] for p in pts for m in MODES),
           "skbs_counted": run["skbs_counted"], "link": run["link"]}
    if run["skbs_note"]:
        out["skbs_note"] = run["skbs_note"]
    if path == "udp":
        out["skbs_per_call"] = sorted({p[m]["skbs_per_call"] for p in pts for m in MODES} - {None})
        out["all_dropped_at_device"] = run["link"].get("tx_dropped") == calls and not run["link"].get("tx_packets")
    return out


def measure_path(path: str, sizes, rounds: int, exe: str, seed: int = 0) -> tuple[dict, dict, dict]:
    """(paths entry, fit, crossover) of one path."""
    commands = plan(path, sizes, rounds=rounds, seed=seed)
    run = session(path, commands, exe)
    records = run["records"]
    rnd = {c[1]: c[2] for c in commands if c[0] == "S"}
    for r in records:
        if "send_ns" in r:
            r["round"] = rnd[r["id"]]
    quiet, ref = quiet_samples(records)
    pts = points(records, quiet)
    verify = next((r for r in records if r.get("verify")), {})
    entry = {"what": WHAT[path], "setup": run["setup"], "cpus": run["cpus"], "rounds": rounds,
             "reference": ref, "movsb": movsb(records), "checks": _checks(path, pts, run),
             "backing_at_end": {k: v for k, v in verify.items() if k != "verify"}, "points": pts}
    f = fit(path, pts)
    return entry, f, crossover(path, pts, f["coefficients"])


def load() -> dict:
    """How busy the machine is: 1-minute load average and CPU pressure (``some avg10``, per cent)."""
    out: dict = {}
    try:
        out["loadavg_1min"] = float(Path("/proc/loadavg").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        pass
    try:
        some = Path("/proc/pressure/cpu").read_text().splitlines()[0].split()
        out["cpu_pressure_some_avg10"] = float(dict(x.split("=") for x in some[1:])["avg10"])
    except (OSError, ValueError, IndexError, KeyError):
        pass
    return out


def measure(quick: bool = False) -> dict:
    check_access()
    load_before = load()
    exe, compiler = _cc.build(SOURCE, "zcsend", CFLAGS)
    sizes, rounds = (QUICK_SIZES, QUICK_ROUNDS) if quick else (SIZES, ROUNDS)
    paths, fits, cross, missing = {}, {}, {}, {}
    for path in PATHS:
        try:
            paths[path], fits[path], cross[path] = measure_path(path, sizes[path], rounds[path], exe)
        except (ProbeUnavailable, OSError, TimeoutError, subprocess.SubprocessError) as e:
            for part in ("paths", "fit", "crossover"):
                missing[f"{part}.{path}"] = str(e)
    if not paths:
        raise ProbeUnavailable("; ".join(sorted(set(missing.values()))))
    return measured(missing, paths=paths, fit=fits, crossover=cross, quick=quick, compiler=compiler,
                    load={"before": load_before, "after": load()},
                    page_size=_sys.PAGE,
                    method="C sender (probes/zcsend.c) pinned to one CPU; CLOCK_THREAD_CPUTIME_ID around each "
                           "sample of send calls (completions read after it, timed apart); samples interleaved "
                           "copy/zerocopy in shuffled rounds; samples next to a slow reference window left out; "
                           "median and quartiles per call")


def _label(size: int) -> str:
    return f"{size >> 20} MiB" if size >= 1 << 20 and not size % (1 << 20) else f"{size / 1024:g} KiB"


def summarize(data: dict) -> list[str]:
    lines = []
    for path, entry in data["paths"].items():
        if "points" not in entry:
            lines.append(f"{path}: {entry.get('source')}: {entry.get('reason')}")
            continue
        lines.append(f"{path}: ns per send call, copy -> zerocopy (zerocopy/copy)")
        for p in entry["points"]:
            lines.append(f"  {_label(p['size']):>9s} {p['buffer']:3s} {p['state']:7s} "
                         f"{p['copy']['ns']['median']:9.0f} -> {p['zerocopy']['ns']['median']:9.0f} "
                         f"({p['zerocopy_over_copy']:.2f})")
    for path, f in data.get("fit", {}).items():
        if "gup" not in f:
            continue
        g = f["gup"]
        split = (f" ({g['per_thp_page_ns']:.1f} per THP page + {g['per_frag_ns']:.1f} per frag)"
                 if g.get("per_frag_ns") is not None else "")
        lines.append(f"{path} fit: GUP {g['per_call_ns']:.0f} ns per call + {g['per_page_ns']:.1f} ns per order-0 "
                     f"page{split}; copy {f['copy']['per_page_ns']:.1f} ns per page; worst fit residual "
                     f"{f['max_fit_residual']:.0%}, worst held-out ratio error {f['max_heldout_error']:.0%}")
    for path, c in data.get("crossover", {}).items():
        for case, e in c.items():
            if isinstance(e, dict) and "measured_bytes" in e:
                m, fb = e["measured_bytes"], e.get("fit_bytes")
                lines.append(f"{path} {case}: zerocopy cheaper above {'never' if m is None else _label(int(m))} "
                             f"measured, {'never' if fb is None else _label(int(fb))} from the fit")
    return lines


def frame(data: dict):
    import pandas as pd

    rows = []
    for path, entry in data["paths"].items():
        for p in entry.get("points", []):
            rows.append({"path": path, "bytes": p["size"], "buffer": p["buffer"], "state": p["state"],
                         "copy_ns": p["copy"]["ns"]["median"], "copy_q1": p["copy"]["ns"]["q1"],
                         "copy_q3": p["copy"]["ns"]["q3"], "zerocopy_ns": p["zerocopy"]["ns"]["median"],
                         "zerocopy_q1": p["zerocopy"]["ns"]["q1"], "zerocopy_q3": p["zerocopy"]["ns"]["q3"],
                         "zerocopy_over_copy": p["zerocopy_over_copy"],
                         "copy_skbs_per_call": p["copy"]["skbs_per_call"],
                         "zerocopy_skbs_per_call": p["zerocopy"]["skbs_per_call"],
                         "source": entry.get("source", "live")})
    return pd.DataFrame(rows)

"""TCP pairs, a draining receiver, MSG_ZEROCOPY completions, namespaces and a veth pair.

MSG_ZEROCOPY (Documentation/networking/msg_zerocopy.rst, v6.12): a socket
opts in with ``SO_ZEROCOPY``; every ``send`` flagged ``MSG_ZEROCOPY`` that
queues data takes the next 32-bit notification id; completions arrive on
the socket's error queue as ``struct sock_extended_err`` with
``ee_origin = SO_EE_ORIGIN_ZEROCOPY`` and the inclusive id range
``[ee_info, ee_data]``, consecutive completions coalesced into one
notification; ``ee_code`` carries ``SO_EE_CODE_ZEROCOPY_COPIED`` when the
kernel had to copy after all (include/uapi/linux/errqueue.h, v6.12).
"""

from __future__ import annotations

import ctypes
import fcntl
import json
import os
import secrets
import select
import shutil
import socket
import struct
import subprocess
import termios
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from . import _sys

SO_ZEROCOPY = 60  # include/uapi/asm-generic/socket.h (v6.12)
MSG_ZEROCOPY = 0x4000000  # include/linux/socket.h (v6.12)
SO_EE_ORIGIN_ZEROCOPY = 5  # include/uapi/linux/errqueue.h (v6.12)
SO_EE_CODE_ZEROCOPY_COPIED = 1  # include/uapi/linux/errqueue.h (v6.12)
IP_RECVERR = 11  # include/uapi/linux/in.h (v6.12)
IPV6_RECVERR = 25  # include/uapi/linux/in6.h (v6.12)
_SOCK_EE = struct.Struct("=IBBBBII")  # struct sock_extended_err

TIMEOUT = 10.0


def listener(host: str = "127.0.0.1", family: int = socket.AF_INET) -> socket.socket:
    ls = socket.socket(family, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((host, 0))
    ls.listen(1)
    ls.settimeout(TIMEOUT)
    return ls


def connect(ls: socket.socket, host: str | None = None) -> tuple[socket.socket, socket.socket]:
    """Connect to listener ``ls``; returns (sender, receiver)."""
    addr = ls.getsockname()
    family = ls.family
    tx = socket.socket(family, socket.SOCK_STREAM)
    tx.settimeout(TIMEOUT)
    tx.connect((host or addr[0], addr[1]))
    rx, _ = ls.accept()
    rx.settimeout(TIMEOUT)
    return tx, rx


def tcp_pair() -> tuple[socket.socket, socket.socket]:
    """A connected loopback TCP pair (sender, receiver)."""
    ls = listener()
    try:
        return connect(ls)
    finally:
        ls.close()


def drained_pair(stack, *, zerocopy: bool = False) -> tuple[socket.socket, "Drainer"]:
    """A loopback TCP sender whose receiver is drained by a thread; ``stack`` closes all three."""
    tx, rx = tcp_pair()
    stack.callback(tx.close)
    stack.callback(rx.close)
    if zerocopy:
        enable_zerocopy(tx)
    drain = Drainer(rx)
    stack.callback(drain.close)
    return tx, drain


class Drainer:
    """A thread that reads a socket and counts bytes; keeps what it read if asked."""

    def __init__(self, sock: socket.socket, keep: bool = False):
        self.sock = sock
        self.keep = keep
        self.data = bytearray()
        self.total = 0
        self.error: BaseException | None = None
        self._cond = threading.Condition()
        self._stop = False
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        buf = bytearray(1 << 20)
        view = memoryview(buf)
        self.sock.settimeout(0.2)
        try:
            while not self._stop:
                try:
                    n = self.sock.recv_into(view)
                except socket.timeout:
                    continue
                if n == 0:
                    break
                with self._cond:
                    if self.keep:
                        self.data += view[:n]
                    self.total += n
                    self._cond.notify_all()
        except OSError as e:
            self.error = e
        finally:
            with self._cond:
                self._stop = True
                self._cond.notify_all()

    def wait(self, total: int, timeout: float = TIMEOUT) -> None:
        """Block until ``total`` bytes have been read in all."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self.total < total:
                if self._stop:
                    raise OSError(f"receiver stopped after {self.total} of {total} bytes: {self.error}")
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"receiver got {self.total} of {total} bytes in {timeout} s")
                self._cond.wait(left)

    @property
    def tid(self) -> int | None:
        """The reading thread's kernel task id (what tracepoints record as ``common_pid``)."""
        return self._thread.native_id

    def close(self) -> None:
        self._stop = True
        self._thread.join(2.0)


def enable_zerocopy(sock: socket.socket) -> None:
    sock.setsockopt(socket.SOL_SOCKET, SO_ZEROCOPY, 1)


def send_zerocopy(sock: socket.socket, view: memoryview) -> int:
    """Send all of ``view`` with MSG_ZEROCOPY; returns the number of send calls (ids used)."""
    calls = 0
    off = 0
    while off < len(view):
        try:
            n = sock.send(view[off:], MSG_ZEROCOPY)
        except BlockingIOError:
            time.sleep(0.001)
            continue
        except OSError as e:
            import errno

            if e.errno == errno.ENOBUFS:  # optmem limit: too many uncompleted notifications
                time.sleep(0.001)
                continue
            raise
        calls += 1
        off += n
    return calls


def read_completions(sock: socket.socket) -> list[tuple[int, int, bool]]:
    """Everything on the error queue now: (lo, hi, copied) per zerocopy notification."""
    out = []
    timeout = sock.gettimeout()
    sock.settimeout(0.0)  # with a timeout, Python would wait for POLLIN, which the error queue never raises
    try:
        while True:
            try:
                _, anc, _, _ = sock.recvmsg(0, 512, socket.MSG_ERRQUEUE)
            except (BlockingIOError, InterruptedError):
                return out
            out += _parse(anc)
    finally:
        sock.settimeout(timeout)


def _parse(anc) -> list[tuple[int, int, bool]]:
    out = []
    for level, kind, data in anc:
        if (level, kind) not in ((socket.SOL_IP, IP_RECVERR), (socket.IPPROTO_IPV6, IPV6_RECVERR)):
            continue
        ee_errno, origin, _type, code, _pad, info, hi = _SOCK_EE.unpack_from(data)
        if origin != SO_EE_ORIGIN_ZEROCOPY:
            continue
        out.append((info, hi, bool(code & SO_EE_CODE_ZEROCOPY_COPIED)))
    return out


def wait_completions(sock: socket.socket, upto: int, timeout: float = TIMEOUT) -> list[tuple[int, int, bool]]:
    """Read notifications until id ``upto`` (inclusive) has completed."""
    got: list[tuple[int, int, bool]] = []
    deadline = time.monotonic() + timeout
    poller = select.poll()
    poller.register(sock.fileno(), 0)  # POLLERR is always reported
    while not got or max(hi for _, hi, _ in got) < upto:
        left = deadline - time.monotonic()
        if left <= 0:
            done = max((hi for _, hi, _ in got), default=-1)
            raise TimeoutError(f"zerocopy completions reached id {done}, waited for {upto}")
        poller.poll(min(left, 0.1) * 1000)
        got += read_completions(sock)
    return got


# -- network namespaces and a veth pair between them -------------------------------------------
#
# iproute2's `ip` and `tc` do the setup (never installed at run time); sockets are created inside a
# namespace by a thread that joined it with setns(), which changes that thread only.

TOOL_TIMEOUT = 10


def _tool(name: str, *args: str) -> str:
    exe = shutil.which(name)
    if exe is None:
        raise FileNotFoundError(f"iproute2 `{name}` is not installed")
    proc = subprocess.run([exe, *args], capture_output=True, text=True, timeout=TOOL_TIMEOUT)
    if proc.returncode:
        raise OSError(f"{name} {' '.join(args)}: {proc.stderr.strip() or proc.returncode}")
    return proc.stdout


def ip(*args: str) -> str:
    return _tool("ip", *args)


def tc(*args: str) -> str:
    return _tool("tc", *args)


def in_netns(ns: str | None, fn, timeout: float = TOOL_TIMEOUT):
    """``fn()`` run by a thread that joined network namespace ``ns`` (None: the caller's own)."""
    if ns is None:
        return fn()
    box: dict = {}

    def body():
        try:
            fd = os.open(f"/run/netns/{ns}", os.O_RDONLY)
            try:
                _sys.setns(fd, _sys.CLONE_NEWNET)  # this thread only
            finally:
                os.close(fd)
            box["value"] = fn()
        except BaseException as e:  # reported to the caller
            box["error"] = e

    t = threading.Thread(target=body, daemon=True)
    t.start()
    t.join(timeout)
    if "error" in box:
        raise box["error"]
    if "value" not in box:
        raise TimeoutError(f"work inside network namespace {ns} did not finish in {timeout} s")
    return box["value"]


def listen_in_netns(ns: str | None, host: str) -> socket.socket:
    """A listening socket created inside network namespace ``ns``."""
    return in_netns(ns, lambda: listener(host))


@dataclass(frozen=True)
class Veth:
    """A veth pair: ``tx_if`` (address ``tx_ip``) in ``tx_ns`` (None: the caller's namespace),
    its peer ``rx_if`` (``rx_ip``) in ``rx_ns``."""

    tx_ns: str | None
    rx_ns: str
    tx_if: str
    rx_if: str
    tx_ip: str
    rx_ip: str


@contextmanager
def veth_pair(prefix: str, *, sender_ns: bool = False, mtu: int | None = None):
    """Create namespace(s) and a veth pair, yield a :class:`Veth`, delete everything on exit.

    IPv6 is switched off on both ends before they come up, so no neighbour
    discovery or MLD packet crosses the pair: every packet on it is the
    caller's. The receiving end always lives in a new namespace ``PREFIX-PID-TAG``; with
    ``sender_ns`` the sending end gets one too (``...-tx``; the receiver's is
    then ``...-rx``), so that nothing of the transfer runs in the caller's
    namespace and per-namespace counters (/proc/net/snmp) see only it.
    Interface names carry a random tag, unique on the machine, so tracepoint
    filters on the device name select this pair. Deleting a namespace
    deletes its devices and their qdiscs; the host end is deleted explicitly.
    """
    tag = secrets.token_hex(3)
    base = f"{prefix}-{os.getpid()}-{tag}"
    tx_ns = f"{base}-tx" if sender_ns else None
    rx_ns = f"{base}-rx" if sender_ns else base
    net = f"10.{200 + secrets.randbelow(50)}.{secrets.randbelow(256)}"
    link = Veth(tx_ns, rx_ns, f"flh{tag}", f"flp{tag}", f"{net}.1", f"{net}.2")
    tx = ("-n", tx_ns) if tx_ns else ()
    rx = ("-n", rx_ns)
    made: list[str] = []
    try:
        for ns in (tx_ns, rx_ns):
            if ns:
                ip("netns", "add", ns)
                made.append(ns)
        ip(*tx, "link", "add", link.tx_if, "type", "veth", "peer", "name", link.rx_if, "netns", rx_ns)
        for ns, dev in ((tx_ns, link.tx_if), (rx_ns, link.rx_if)):
            in_netns(ns, lambda: _no_ipv6(dev))
        for side, dev, addr in ((tx, link.tx_if, link.tx_ip), (rx, link.rx_if, link.rx_ip)):
            if mtu is not None:
                ip(*side, "link", "set", "dev", dev, "mtu", str(mtu))
            ip(*side, "addr", "add", f"{addr}/30", "dev", dev)
            ip(*side, "link", "set", dev, "up")
        for ns in made:
            ip("-n", ns, "link", "set", "lo", "up")
        yield link
    finally:
        for args in ([("link", "del", link.tx_if)] if tx_ns is None else []) + [("netns", "del", ns) for ns in made]:
            try:
                ip(*args)
            except (OSError, subprocess.SubprocessError):
                pass


def _no_ipv6(dev: str) -> None:
    """disable_ipv6 on ``dev`` in this thread's namespace (/proc/sys/net is per namespace)."""
    path = Path(f"/proc/sys/net/ipv6/conf/{dev}/disable_ipv6")
    if path.exists():
        path.write_text("1")


def leftover_netns(prefix: str) -> list[str]:
    """Named namespaces starting with ``prefix`` that still exist."""
    try:
        return sorted(n for n in os.listdir("/run/netns") if n.startswith(prefix))
    except OSError:
        return []


# -- device features through the ethtool ioctl ------------------------------------------------

SIOCETHTOOL = 0x8946  # include/uapi/linux/sockios.h (v6.12)
# include/uapi/linux/ethtool.h (v6.12): legacy get/set of one feature, struct ethtool_value
ETHTOOL_FEATURES = {"tso": (0x1E, 0x1F), "gso": (0x23, 0x24), "gro": (0x2B, 0x2C)}
_IFNAMSIZ = 16


def _ethtool_value(sock: socket.socket, ifname: str, cmd: int, data: int = 0) -> int:
    value = (ctypes.c_uint32 * 2)(cmd, data)  # struct ethtool_value {cmd, data}
    ifr = bytearray(struct.pack(f"{_IFNAMSIZ}sP", ifname.encode(), ctypes.addressof(value)).ljust(40, b"\0"))
    fcntl.ioctl(sock.fileno(), SIOCETHTOOL, ifr)
    return int(value[1])


def device_features(ifname: str, want: dict[str, bool] | None = None) -> dict[str, bool]:
    """Set (``want``) and read back the tso/gso/gro features of ``ifname`` in this thread's namespace.

    The legacy ETHTOOL_S* commands go through ``ethtool_set_one_feature()``
    (net/ethtool/ioctl.c, v6.12; ETHTOOL_STSO covers all TSO bits); what the
    device ends up with is read back with the matching ETHTOOL_G* command."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for name, on in (want or {}).items():
            _ethtool_value(s, ifname, ETHTOOL_FEATURES[name][1], int(bool(on)))
        return {name: bool(_ethtool_value(s, ifname, get)) for name, (get, _) in ETHTOOL_FEATURES.items()}


# -- per-socket and per-namespace counters ----------------------------------------------------

TCP_INFO = 11  # include/uapi/linux/tcp.h (v6.12)
# struct tcp_info (include/uapi/linux/tcp.h, v6.12): 8 u8 bytes, then these u32/u64 fields in order
_TCP_INFO_FIELDS = (
    [("I", n) for n in ("rto", "ato", "snd_mss", "rcv_mss", "unacked", "sacked", "lost", "retrans", "fackets",
                        "last_data_sent", "last_ack_sent", "last_data_recv", "last_ack_recv", "pmtu",
                        "rcv_ssthresh", "rtt", "rttvar", "snd_ssthresh", "snd_cwnd", "advmss", "reordering",
                        "rcv_rtt", "rcv_space", "total_retrans")]
    + [("Q", n) for n in ("pacing_rate", "max_pacing_rate", "bytes_acked", "bytes_received")]
    + [("I", n) for n in ("segs_out", "segs_in", "notsent_bytes", "min_rtt", "data_segs_in", "data_segs_out")]
    + [("Q", n) for n in ("delivery_rate", "busy_time", "rwnd_limited", "sndbuf_limited")]
    + [("I", n) for n in ("delivered", "delivered_ce")]
    + [("Q", n) for n in ("bytes_sent", "bytes_retrans")]
    + [("I", n) for n in ("dsack_dups", "reord_seen", "rcv_ooopack", "snd_wnd", "rcv_wnd", "rehash")]
    + [("H", n) for n in ("total_rto", "total_rto_recoveries")] + [("I", "total_rto_time")]
)


def tcp_info(sock: socket.socket) -> dict[str, int]:
    """The socket's struct tcp_info, as far as this kernel fills it."""
    raw = sock.getsockopt(socket.IPPROTO_TCP, TCP_INFO, 256)
    out = {"state": raw[0], "ca_state": raw[1]}
    off = 8
    for code, name in _TCP_INFO_FIELDS:
        size = struct.calcsize(code)
        if off + size > len(raw):
            break
        out[name] = struct.unpack_from("=" + code, raw, off)[0]
        off += size
    return out


def snmp(ns: str | None) -> dict[str, int]:
    """The namespace's SNMP and netstat MIB counters, "Tcp.RetransSegs" style (/proc/net/{snmp,netstat})."""

    def read() -> dict[str, int]:
        out = {}
        for name in ("snmp", "netstat"):
            lines = Path(f"/proc/thread-self/net/{name}").read_text().splitlines()
            for head, vals in zip(lines[::2], lines[1::2]):
                group, _, keys = head.partition(":")
                for k, v in zip(keys.split(), vals.partition(":")[2].split()):
                    try:
                        out[f"{group}.{k}"] = int(v)
                    except ValueError:
                        pass
        return out

    return in_netns(ns, read)


def link_stats(ns: str | None, ifname: str) -> dict:
    """RX/TX packets, bytes and drops of one device (``ip -s -j link``)."""
    args = (("-n", ns) if ns else ()) + ("-s", "-j", "link", "show", "dev", ifname)
    d = json.loads(ip(*args))[0]
    s = d.get("stats64") or d.get("stats") or {}
    return {f"{way}_{k}": s.get(way, {}).get(k) for way in ("rx", "tx") for k in ("packets", "bytes", "dropped")}


def outq(sock: socket.socket) -> int:
    """Bytes not yet acknowledged by the peer (SIOCOUTQ: write_seq - snd_una for TCP)."""
    buf = bytearray(4)
    fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ, buf)
    return struct.unpack("=i", buf)[0]


# -- namespace knobs, leftovers and taking turns --------------------------------------------------
#
# /proc/sys/net is the namespace of the thread that opens it; /sys/class/net is the namespace sysfs
# was mounted in, so a device's sysfs files are reached through `ip netns exec`, which mounts a
# fresh sysfs in a private mount namespace of its own. Both die with the namespace.

def sysctl(ns: str | None, name: str, value: str | None = None) -> str:
    """Read (and with ``value``, first write) ``/proc/sys/NAME`` inside namespace ``ns``, e.g.
    ``net/core/optmem_max``; returns what it reads."""
    path = Path("/proc/sys") / name

    def body() -> str:
        if value is not None:
            path.write_text(str(value))
        return path.read_text().strip()

    return in_netns(ns, body)


def sysfs(ns: str, path: str, value: str | None = None) -> str:
    """Read (and with ``value``, first write) a sysfs file as namespace ``ns`` sees it, e.g.
    ``class/net/DEV/queues/rx-0/rps_cpus``; returns what it reads."""
    full = "/sys/" + path.lstrip("/")
    script = 'if [ -n "$2" ]; then printf %s "$2" > "$1" || exit 1; fi; cat "$1"'
    return ip("netns", "exec", ns, "sh", "-c", script, "sh", full, "" if value is None else str(value)).strip()


# -- a pinned TCP flow across a veth pair (receive-side, copy-path and page-cache probes) ----------
#
# Where kernel work runs decides per-CPU counts. The sending thread does the veth transmit, and
# veth schedules the receiving end's NAPI on the CPU that transmitted (veth_xmit ->
# __veth_xdp_flush -> napi_schedule; drivers/net/veth.c, v6.12); the receiver's ACKs reach the
# sender's namespace through __netif_rx, queued to the backlog of the CPU RPS picks
# (get_rps_cpu(), net/core/dev.c), and the sender's TCP transmits again from there when an ACK
# opens the window. So: pin the sender and the reader, and steer the sending veth's received
# packets (the ACKs) to the sender's CPU with RPS, and every transmit, NAPI poll and softirq of the
# data path runs on the sender's CPU, every recvmsg() on the reader's.

TRANSFER_LOCK = "fraglife-kcount.lock"  # the kcount probe's: one transfer at a time across processes


@contextmanager
def one_transfer_at_a_time(wait_s: float = 300.0):
    """Hold the transfer lock file (the one :mod:`fraglife.probes.kcount` takes), so no other
    process's transfer runs in the window; waits up to ``wait_s``."""
    import tempfile

    path = os.path.join(tempfile.gettempdir(), TRANSFER_LOCK)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        deadline = time.monotonic() + wait_s
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"another transfer held {path} for {wait_s:.0f} s") from None
                time.sleep(0.05)
        yield
    finally:
        os.close(fd)


@contextmanager
def pinned(cpu: int | None):
    """Run the calling thread on ``cpu`` (None: leave it) and give it its old CPU set back on exit."""
    if cpu is None:
        yield
        return
    old = os.sched_getaffinity(0)  # pid 0: the calling thread
    os.sched_setaffinity(0, {cpu})
    try:
        yield
    finally:
        os.sched_setaffinity(0, old)


def set_rps(ns: str, ifname: str, cpus) -> dict[str, str]:
    """Steer packets ``ifname`` receives in namespace ``ns`` to ``cpus`` (RPS, every rx queue's
    ``rps_cpus``; Documentation/networking/scaling.rst). /sys/class/net shows the namespace of whoever
    mounted sysfs, so this runs in ``ip netns exec``, which mounts the namespace's own; the knob
    dies with the device. Returns queue -> mask read back."""
    mask = format(sum(1 << c for c in cpus), "x")
    script = (f'for q in /sys/class/net/{ifname}/queues/rx-*; do echo {mask} > "$q/rps_cpus"; '
              f'echo "${{q##*/}} $(cat "$q/rps_cpus")"; done')
    out = ip("netns", "exec", ns, "sh", "-c", script)
    return dict(line.split() for line in out.splitlines() if line.strip())


@dataclass
class Flow:
    """A connected TCP pair across a veth pair: ``tx`` in the sending namespace, ``rx`` (drained by
    ``drain``, a thread) in the receiving one, and the CPUs each side was pinned to."""

    link: Veth
    tx: socket.socket
    rx: socket.socket
    drain: Drainer
    sender_cpu: int | None
    reader_cpu: int | None
    rps: dict

    @property
    def ports(self) -> tuple[int, int]:
        return self.tx.getsockname()[1], self.tx.getpeername()[1]


@contextmanager
def flow(link: Veth, *, sender_cpu: int | None = None, reader_cpu: int | None = None,
         rcvbuf: int | None = None, nodelay: bool = False, mss: int | None = None, zerocopy: bool = False):
    """Connect a TCP flow over ``link`` (:func:`veth_pair` with ``sender_ns``), drain it, and pin:
    the calling thread (the sender) to ``sender_cpu``, the draining thread to ``reader_cpu``, the
    ACKs the sending veth receives to ``sender_cpu`` (RPS). ``rcvbuf`` fixes the receiver's buffer
    (SO_RCVBUFFORCE before the handshake; None: autotuning); ``nodelay`` sets TCP_NODELAY; ``mss``
    TCP_MAXSEG. Everything is closed, and the sender's CPU set given back, on exit."""
    from contextlib import ExitStack

    so_rcvbufforce = 33  # include/uapi/asm-generic/socket.h (v6.12)
    with ExitStack() as stack:
        rps = set_rps(link.tx_ns, link.tx_if, {sender_cpu}) if sender_cpu is not None and link.tx_ns else {}
        ls = listen_in_netns(link.rx_ns, link.rx_ip)
        stack.callback(ls.close)
        if rcvbuf is not None:
            ls.setsockopt(socket.SOL_SOCKET, so_rcvbufforce, rcvbuf)

        def make():
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            if mss is not None:
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG, mss)
            return s

        tx = in_netns(link.tx_ns, make)
        stack.callback(tx.close)
        tx.settimeout(TIMEOUT)
        tx.connect((link.rx_ip, ls.getsockname()[1]))
        rx, _ = ls.accept()
        stack.callback(rx.close)
        if nodelay:
            tx.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if zerocopy:
            enable_zerocopy(tx)
        drain = Drainer(rx)
        stack.callback(drain.close)
        if reader_cpu is not None:
            os.sched_setaffinity(drain.tid, {reader_cpu})
        stack.enter_context(pinned(sender_cpu))
        yield Flow(link, tx, rx, drain, sender_cpu, reader_cpu, rps)


def wait_acked(sock: socket.socket, timeout: float = TIMEOUT) -> None:
    """Until the peer has acknowledged everything ``sock`` sent (SIOCOUTQ reads 0)."""
    deadline = time.monotonic() + timeout
    while outq(sock):
        if time.monotonic() > deadline:
            raise TimeoutError(f"{outq(sock)} bytes still unacknowledged after {timeout} s")
        time.sleep(0.001)

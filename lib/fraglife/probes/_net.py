"""TCP pairs, a draining receiver and MSG_ZEROCOPY completions.

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

import select
import socket
import struct
import threading
import time

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

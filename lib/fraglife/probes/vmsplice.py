"""Does a reader see writes made to a buffer after it was vmspliced?

``vmsplice`` without copying puts the caller's pages themselves into the
pipe: fs/splice.c ``iter_to_pipe`` takes page references with
``iov_iter_get_pages2`` and wraps each page in a pipe buffer with
``user_page_pipe_buf_ops`` (v6.12). Nothing is copied and nothing stops the
process writing to those pages afterwards, so a later reader (of the pipe,
or of a socket the pipe was spliced into, whose skb frags reference the
same pages via ``skb_splice_from_iter`` → ``skb_append_pagefrags``,
net/core/skbuff.c, v6.12) sees the new contents. vmsplice(2): with
``SPLICE_F_GIFT`` the application must not modify the memory afterwards.
The reference follows the physical page, not the address: after
``MADV_DONTNEED`` the process gets a fresh page and the pipe keeps the old
one.

Each case fills a buffer with 'A', moves it into a pipe, overwrites the
buffer with 'B', then reads. ``write`` is the copying baseline.
"""

from __future__ import annotations

import fcntl
import os
import socket

from . import _net, _sys
from ._base import ProbeUnavailable, measured

NAME = "vmsplice"
TITLE = "vmsplice'd pages modified after the splice (the chapter 05 hazard)"
REQUIRED = ("kernel", "cases")

OLD, NEW = 0x41, 0x42  # 'A', 'B'
SIZE = 64 << 10

CASES = {
    "write": "write() copies into the pipe's own pages, then the buffer is overwritten",
    "vmsplice": "vmsplice the buffer into a pipe, overwrite the buffer, read the pipe",
    "vmsplice_gift": "as vmsplice with SPLICE_F_GIFT (the caller promised not to write)",
    "vmsplice_dontneed": "vmsplice, MADV_DONTNEED the buffer (new pages), write, read the pipe",
    "vmsplice_munmap": "vmsplice, munmap the buffer, read the pipe (the pipe's refs keep the pages)",
    "vmsplice_splice_tcp": "vmsplice, splice the pipe into a loopback TCP socket, overwrite, then receive",
}


def _verdict(data: bytes) -> dict:
    new = data.count(NEW)
    old = data.count(OLD)
    other = len(data) - new - old
    if new == len(data):
        sees = "new"
    elif old == len(data):
        sees = "old"
    elif other == len(data):
        sees = "neither"
    else:
        sees = "mixed"
    return {"bytes_read": len(data), "bytes_new": new, "bytes_old": old, "bytes_other": other,
            "reader_sees": sees}


def _read_all(fd: int, n: int) -> bytes:
    out = bytearray()
    while len(out) < n:
        chunk = os.read(fd, n - len(out))
        if not chunk:
            break
        out += chunk
    return bytes(out)


def _pipe_case(case: str) -> dict:
    r, w = os.pipe()
    m = _sys.Mapping(SIZE)
    try:
        fcntl.fcntl(w, fcntl.F_SETPIPE_SZ, SIZE)
        a = m.array()
        a[:] = OLD
        if case == "write":
            moved = os.write(w, bytes(a))
        else:
            flags = _sys.SPLICE_F_GIFT if case == "vmsplice_gift" else 0
            moved = _sys.vmsplice(w, [m.iov()], flags)
        if case == "vmsplice_dontneed":
            m.madvise(_sys.MADV_DONTNEED)
        if case == "vmsplice_munmap":
            del a
            m.close()
        else:
            a[:] = NEW
            del a
        out = _verdict(_read_all(r, moved))
        out["bytes_moved"] = moved
        return out
    finally:
        os.close(r)
        os.close(w)
        m.close()


def _tcp_case() -> dict:
    r, w = os.pipe()
    m = _sys.Mapping(SIZE)
    tx, rx = _net.tcp_pair()
    try:
        fcntl.fcntl(w, fcntl.F_SETPIPE_SZ, SIZE)
        for s, opt in ((tx, socket.SO_SNDBUF), (rx, socket.SO_RCVBUF)):
            s.setsockopt(socket.SOL_SOCKET, opt, 4 * SIZE)
        a = m.array()
        a[:] = OLD
        moved = _sys.vmsplice(w, [m.iov()])
        sent = 0
        while sent < moved:
            sent += os.splice(r, tx.fileno(), moved - sent)
        a[:] = NEW  # after the data is in the socket, before anyone reads it
        del a
        data = bytearray()
        while len(data) < sent:
            chunk = rx.recv(sent - len(data))
            if not chunk:
                break
            data += chunk
        out = _verdict(bytes(data))
        out["bytes_moved"] = sent
        return out
    finally:
        tx.close()
        rx.close()
        os.close(r)
        os.close(w)
        m.close()


def measure(quick: bool = False) -> dict:
    cases, missing = {}, {}
    for case in CASES:
        try:
            res = _tcp_case() if case == "vmsplice_splice_tcp" else _pipe_case(case)
        except OSError as e:
            if case == "write":
                raise ProbeUnavailable(f"pipes do not work here: {e}") from e
            missing[f"cases.{case}"] = f"{type(e).__name__}: {e}"
            continue
        res["what"] = CASES[case]
        cases[case] = res
    if "vmsplice" not in cases:
        raise ProbeUnavailable(f"vmsplice failed: {missing.get('cases.vmsplice')}")
    return measured(missing, bytes=SIZE, cases=cases,
                    reader_sees_new_data=cases["vmsplice"].get("reader_sees") == "new")


def summarize(data: dict) -> list[str]:
    lines = [f"after vmsplice, the pipe reader sees the new data: {data['reader_sees_new_data']}"]
    for case, c in data["cases"].items():
        lines.append(f"{case:22s} reader sees {c.get('reader_sees', c.get('source'))}")
    return lines


def frame(data: dict):
    import pandas as pd

    return pd.DataFrame([{"case": k, **{f: v.get(f) for f in ("reader_sees", "bytes_new", "bytes_old",
                                                              "bytes_read", "what")}}
                         for k, v in data["cases"].items()]).set_index("case")

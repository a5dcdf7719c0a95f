"""Kernel tracepoint counts of splice transfers: a file spliced through a pipe into TCP over veth.

The ``kcount`` probe's transfer (:func:`fraglife.probes.kcount.transfer`) with ``sender="splice"``:
a page-cached file is spliced into a pipe, and the pipe into the socket (``splice(2)`` both ways),
in calls of ``chunk`` bytes (the last one short when ``chunk`` does not divide the transfer:
:func:`kcount.plan_calls`), with the pipe resized to hold one call (``F_SETPIPE_SZ``). So each call
fills the pipe with page-cache pages (``filemap_splice_read()``) and ``splice_to_socket()`` empties
it in ``sendmsg()`` calls of at most 16 buffers each, ``MSG_SPLICE_PAGES`` (fs/splice.c, v6.12).
Two runs, TSO on and TSO off, over a fresh veth pair each, with the same counters, filters and
idle subtraction as ``kcount`` (its docstring says how each is narrowed to the transfer), and the
same named counts per transfer (:func:`kcount.kernel_quantities`) for a model of the splice path
to be compared with.
"""

from __future__ import annotations

from . import kcount
from ._base import ProbeUnavailable, measured

NAME = "kcount_splice"
TITLE = "Kernel tracepoint counts of splice transfers over veth (file -> pipe -> TCP)"
REQUIRED = ("runs", "tracepoints")
MiB = 1 << 20
CHUNK = 256 * 1024  # bytes per splice() call; the pipe holds one chunk (64 slots)


def _runs(quick: bool) -> list[tuple[str, dict]]:
    n = 4 * MiB if quick else 16 * MiB
    return [
        ("splice_tso_on", dict(nbytes=n, tso=True, sender="splice", chunk=CHUNK)),
        ("splice_tso_off", dict(nbytes=n, tso=False, sender="splice", chunk=CHUNK)),
    ]


def measure(quick: bool = False) -> dict:
    kcount.check_root()
    try:
        events, how = kcount.available()
    except (OSError, TimeoutError) as e:
        raise ProbeUnavailable(f"tracepoints unreadable: {e}") from e
    runs = [kcount.least_disturbed(name, kw) for name, kw in _runs(quick)]
    return measured(runs=runs, tracepoints=kcount.tracepoint_table(events), tracefs=how, quick=quick)


def summarize(data: dict) -> list[str]:
    return kcount.summarize(data)


def frame(data: dict):
    return kcount.frame(data)

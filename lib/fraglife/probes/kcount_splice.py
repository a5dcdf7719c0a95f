"""Kernel tracepoint counts of splice transfers: a file spliced through a pipe into TCP over veth.

The ``kcount`` probe's transfer (:func:`fraglife.probes.kcount.transfer`) with ``sender="splice"``:
a page-cached file is spliced into a pipe, and the pipe into the socket (``splice(2)`` both ways),
in calls of ``chunk`` bytes (the last one short when ``chunk`` does not divide the transfer:
:func:`kcount.plan_calls`), with the pipe resized to hold one call (``F_SETPIPE_SZ``). So each call
fills the pipe with page-cache pages (``filemap_splice_read()``) and ``splice_to_socket()`` empties
it in ``sendmsg()`` calls of at most 16 buffers each (its on-stack ``bvec[16]``), ``MSG_SPLICE_PAGES``,
all but the last of a call with ``MSG_MORE``, releasing each buffer as soon as it is sent (fs/splice.c,
v6.18, unchanged since v6.12). The same counters, filters and idle subtraction as ``kcount`` (its
docstring says how each is narrowed to the transfer), and the same named counts per transfer
(:func:`kcount.kernel_quantities`) for a model of the splice path to be compared with. Every transfer
records ``tail_unsent``: the share of full-sized sendmsg calls that found the previous one's tail skb
still unsent and appended to it (``kcount``'s ``[first]`` and ``[no_tail]`` counters).

Two sets of transfers:

- ``runs``: ``chunk`` = 256 KiB, TSO on and off, MTU 1500, the receiver's buffer autotuned (as a
  default socket has it). Such a transfer is receive-window-limited for a varying part of its time,
  and a window-limited sender also cuts skbs at the window's edge (``tcp_mss_split_point()`` ->
  ``tso_fragment()``) and merges queued ones when the window opens (``tcp_grow_skb()``), both in
  ``tcp_write_xmit()`` (net/ipv4/tcp_output.c, v6.18): between repetitions of one setting the skb count
  varies by up to 70 %.
- ``grid``: splice calls of 4 KiB to 1 MiB (:data:`SIZES`) x MTU 1500 and 9000 x TSO on and off, the
  receiver's buffer fixed at 64 MiB (``SO_RCVBUFFORCE`` before connect,
  :data:`fraglife.probes.kcount.GRID_RCVBUF`): the window never limits the sender, so what is left to
  timing is only whether a sendmsg's tail is still unsent when the next one starts, which
  ``tail_unsent`` records. This is the grid a model of the splice path is checked against; the two
  ``runs`` show what the window adds. A quick run measures only :data:`LIVE_GRID` of it and takes the
  rest from the recording (each transfer's ``source`` says which; ``grid_live`` lists the live ones).
"""

from __future__ import annotations

from . import kcount
from ._base import ProbeUnavailable, measured

NAME = "kcount_splice"
TITLE = "Kernel tracepoint counts of splice transfers over veth (file -> pipe -> TCP)"
REQUIRED = ("runs", "grid", "tracepoints")
MiB = 1 << 20
KiB = 1 << 10
CHUNK = 256 * 1024  # bytes per splice() call of the default-buffer runs; the pipe holds one chunk (64 slots)
#: Bytes per splice() call in the grid.
SIZES = (4 * KiB, 16 * KiB, 64 * KiB, 256 * KiB, 1 * MiB)
MTUS = (1500, 9000)


def _runs(quick: bool) -> list[tuple[str, dict]]:
    n = 4 * MiB if quick else 16 * MiB
    return [
        ("splice_tso_on", dict(nbytes=n, tso=True, sender="splice", chunk=CHUNK)),
        ("splice_tso_off", dict(nbytes=n, tso=False, sender="splice", chunk=CHUNK)),
    ]


def grid_settings(quick: bool) -> list[tuple[str, dict]]:
    """The grid's transfers: (name, :func:`kcount.transfer` keyword arguments)."""
    n = 4 * MiB if quick else 16 * MiB
    return [(f"splice_{c // KiB}k_mtu{mtu}_tso_{'on' if tso else 'off'}",
             dict(nbytes=n, mtu=mtu, tso=tso, sender="splice", chunk=c, rcvbuf=kcount.GRID_RCVBUF))
            for c in SIZES for mtu in MTUS for tso in (True, False)]


#: The grid settings a quick live run measures: the chapter's defaults (256 KiB splice calls at MTU 1500, TSO on
#: and off). A quick run leaves the rest of the grid to the recording (named in ``_missing``: each such transfer
#: then says ``"source": "recorded"``, its date and why); a full run (``quick=False``, what a recording is)
#: measures every setting.
LIVE_GRID = ("splice_256k_mtu1500_tso_on", "splice_256k_mtu1500_tso_off")
QUICK_REASON = "a quick run measures the grid's default settings only (kcount_splice.LIVE_GRID)"


def measure(quick: bool = False) -> dict:
    kcount.check_root()
    try:
        events, how = kcount.available()
    except (OSError, TimeoutError) as e:
        raise ProbeUnavailable(f"tracepoints unreadable: {e}") from e
    runs = [kcount.least_disturbed(name, kw) for name, kw in _runs(quick)]
    grid, missing = kcount.measure_grid(grid_settings(quick), LIVE_GRID if quick else None, QUICK_REASON)
    return measured(missing, runs=runs, grid=grid, tracepoints=kcount.tracepoint_table(events), tracefs=how,
                    quick=quick, grid_live=[g["name"] for g in grid if f"grid.{g['name']}" not in missing])


def summarize(data: dict) -> list[str]:
    lines = kcount.summarize(data)
    for r in data.get("grid", []):
        t = r.get("tail_unsent") or {}
        lines.append(f"{r['name']:28s} mss={r['mss']} skbs/MiB {r['per_mib'].get('net:net_dev_queue', 0):.1f} "
                     f"sendmsg passes/MiB {r['per_mib'].get('tcp:tcp_sendmsg_locked', 0):.1f} "
                     f"tail unsent {t.get('share')}")
    return lines


def frame(data: dict):
    return kcount.frame(data)

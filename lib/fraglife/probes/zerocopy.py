"""MSG_ZEROCOPY completions on loopback and across a veth pair.

What is measured: for runs of ``messages`` TCP sends of ``bytes_per_message``
each with ``MSG_ZEROCOPY`` (``sends`` counts the send calls, more when one
returned short; each call takes one notification id), how many completion notifications arrive on the
error queue, which id ranges they cover (consecutive completions coalesce
into one ``[ee_info, ee_data]`` range), and whether the kernel set
``SO_EE_CODE_ZEROCOPY_COPIED`` (it had to copy the data after all). Each run
is done twice: reading the error queue after every send, and only at the
end (the most coalescing an application can see).

Documentation/networking/msg_zerocopy.rst (v6.12), "Loopback": packets
sent with MSG_ZEROCOPY that are looped to a local socket incur a deferred
copy, because a receiver that does not read could otherwise delay the
notification without bound; "Testing" adds that a veth pair across
namespaces is such a local pair, and that the restriction lives in
``skb_orphan_frags_rx`` (include/linux/skbuff.h, v6.12). The probe measures
what the completions report on both rather than assuming it.

The veth part creates a network namespace with a unique name and a veth
pair with iproute2's ``ip`` (never installed at run time), opens the
receiving socket inside the namespace from a thread that joined it with
``setns``, and removes the namespace and the link in ``finally``. Without
``ip`` or without CAP_NET_ADMIN that part comes from the recording.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess

from . import _net, _sys
from ._base import ProbeUnavailable, measured

NAME = "zerocopy"
TITLE = "MSG_ZEROCOPY completions: loopback and veth across a network namespace"
REQUIRED = ("kernel", "transports")

RUNS = ((32, 4096), (32, 64 << 10), (8, 1 << 20))
QUICK_RUNS = ((16, 4096), (8, 64 << 10))
MAX_RANGES = 64


def _run_sends(tx: socket.socket, rx: socket.socket, sends: int, size: int, eager: bool) -> dict:
    """``sends`` messages of ``size``; completions read after each send (eager) or only at the end."""
    m = _sys.Mapping(max(size, _sys.PAGE))
    view = None
    drain = _net.Drainer(rx)
    got: list[tuple[int, int, bool]] = []
    try:
        a = m.array()
        a[:] = 0x5A
        view = memoryview(a)[:size]
        del a
        calls = 0
        for _ in range(sends):
            calls += _net.send_zerocopy(tx, view)
            if eager:
                got += _net.read_completions(tx)
        drain.wait(sends * size)
        if not got or max(hi for _, hi, _ in got) < calls - 1:
            got += _net.wait_completions(tx, calls - 1)
    finally:
        drain.close()
        if view is not None:
            view.release()
        m.close()
    got.sort()
    covered = sum(hi - lo + 1 for lo, hi, _ in got)
    copied = sum(1 for *_, c in got if c)
    return {
        "messages": sends,
        "bytes_per_message": size,
        "sends": calls,
        "reader": "after_each_send" if eager else "at_end",
        "notifications": len(got),
        "sends_covered": covered,
        "sends_per_notification": covered / len(got) if got else None,
        "largest_range": max((hi - lo + 1 for lo, hi, _ in got), default=0),
        "copied_notifications": copied,
        "kernel_copied": bool(got) and copied == len(got),
        "ranges": [[lo, hi] for lo, hi, _ in got[:MAX_RANGES]],
        "ranges_truncated": len(got) > MAX_RANGES,
    }


def _transport(connect, runs) -> dict:
    """Each run on a fresh connection so ids start at 0."""
    out = {}
    for sends, size in runs:
        for eager in (True, False):
            tx, rx = connect()
            try:
                _net.enable_zerocopy(tx)
                key = f"{sends}x{size}/{'after_each_send' if eager else 'at_end'}"
                out[key] = _run_sends(tx, rx, sends, size, eager)
            finally:
                tx.close()
                rx.close()
    return out


def loopback(runs=RUNS) -> dict:
    return {"what": "TCP over 127.0.0.1", "runs": _transport(_net.tcp_pair, runs)}


NS_PREFIX = "fraglife-zc"
_listen_in_netns = _net.listen_in_netns


def veth(runs=RUNS) -> dict:
    if shutil.which("ip") is None:
        raise ProbeUnavailable("iproute2 `ip` is not installed")
    if os.geteuid() != 0:
        raise ProbeUnavailable("creating a network namespace and veth pair needs root (CAP_NET_ADMIN)")
    with _net.veth_pair(NS_PREFIX) as link:
        ls = _listen_in_netns(link.rx_ns, link.rx_ip)
        try:
            return {"what": "TCP from the host into a network namespace over a veth pair",
                    "runs": _transport(lambda: _net.connect(ls), runs)}
        finally:
            ls.close()


def leftovers() -> list[str]:
    """Namespaces this probe created that still exist (should always be empty)."""
    return _net.leftover_netns(NS_PREFIX + "-")


def measure(quick: bool = False) -> dict:
    runs = QUICK_RUNS if quick else RUNS
    try:
        lo = loopback(runs)
    except OSError as e:
        raise ProbeUnavailable(f"MSG_ZEROCOPY on loopback failed: {e}") from e
    transports, missing = {"loopback": lo}, {}
    try:
        transports["veth"] = veth(runs)
    except (ProbeUnavailable, OSError, subprocess.SubprocessError) as e:
        missing["transports.veth"] = str(e)
    return measured(missing, transports=transports)


def summarize(data: dict) -> list[str]:
    lines = []
    for tname, t in data["transports"].items():
        if "runs" not in t:
            lines.append(f"{tname:9s} {t.get('source')}: {t.get('reason')}")
            continue
        tag = "" if t.get("source", "live") == "live" else f" [{t['source']}]"
        for run, r in t["runs"].items():
            lines.append(f"{tname:9s} {run:>26s}: {r['sends']} sends -> {r['notifications']} notifications, "
                         f"copied={r['kernel_copied']}{tag}")
    return lines


def frame(data: dict):
    import pandas as pd

    rows = []
    for tname, t in data["transports"].items():
        for run, r in t.get("runs", {}).items():
            rows.append({"transport": tname, "run": run, "source": t.get("source", "live"),
                         **{k: r[k] for k in ("messages", "bytes_per_message", "sends", "reader", "notifications",
                                              "sends_per_notification", "largest_range",
                                              "copied_notifications", "kernel_copied")}})
    return pd.DataFrame(rows)

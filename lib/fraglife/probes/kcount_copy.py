"""The copy path of small sends, counted per message and per MiB; and frags per skb of three senders.

What is measured (``messages``). A TCP flow over a veth pair between two network
namespaces (TSO on, no XDP; :func:`fraglife.probes._counting.counted_transfer`),
the sender pinned to one CPU and the reader to another. The sender writes
``count`` messages of ``size`` bytes, each with one plain ``send`` (no
``MSG_ZEROCOPY``, no ``MSG_SPLICE_PAGES``), with ``TCP_NODELAY`` on or off. Such a
send copies into the socket's page fragment: ``tcp_sendmsg_locked()`` appends to the
write queue's tail skb while it is not yet sent and has room, else allocates an skb
(``tcp_stream_alloc_skb()``, a fast-clone pair), and copies the bytes into
``sk_page_frag()`` (the task's ``task_frag``), merging into the skb's last frag when
the bytes continue it (``skb_can_coalesce()``); the fragment is refilled by
``skb_page_frag_refill()`` with an order-3 (32 KiB, ``SKB_FRAG_PAGE_ORDER``) compound
page, or one order-0 page when that fails or ``net.core.high_order_alloc_disable``
is set; but a fragment page whose every reference is gone again (``page_ref_count()``
== 1: the skbs that pointed into it are freed) is reused from offset 0 without an
allocation, so small messages that the reader keeps up with refill less than once
per 32 KiB (net/ipv4/tcp.c, net/core/sock.c ``skb_page_frag_refill()``, v6.12).

Counters (``method`` per counter, :mod:`fraglife.probes._counting`); ``{tx_tid}`` is
the sending thread:

- ``kmem:mm_page_alloc[order3]`` / ``[order0]`` / ``[other]``: page allocations in
  the sending thread (``common_pid``) by ``order``. Order 3 there is a page_frag
  refill (slab caches of the skbs grow with pages of their own orders, rarely in a
  steady run); order 0 may also be other work of the thread (a page fault, the
  receiver's softirq running on its time), so it bounds fallback refills from above.
- ``kmem:kmem_cache_alloc[skb]``: sk_buff slab allocations (``call_site`` in
  ``__alloc_skb``, ``skb_clone``, ``__build_skb``, ``__napi_build_skb``) in the sending
  thread, and ``[fclone]``: those not from ``skbuff_head_cache``, i.e. fast-clone
  pairs: TCP write-queue skbs (the rest are ACKs the receiving stack built in softirq
  on the sender's time).
- ``tcp:tcp_sendmsg_locked`` (sending thread): passes of the copy loop, one per skb
  a send started or extended.
- ``net:net_dev_queue`` (sending veth, ``name``): skbs TCP transmitted, and ``[gso]``
  those longer than one frame.

Per message and per MiB (``per_message``, ``per_mib``): each counter's value with its
bracket. Bytes per skb and messages per skb follow from ``net_dev_queue``.

Frags per skb (``frags``). No transmit tracepoint of this kernel records the number
of frags: ``net:net_dev_start_xmit`` has ``len``, ``data_len``, ``gso_size``,
``gso_segs``, ``gso_type`` but no ``nr_frags``; ``net:net_dev_queue`` and
``net_dev_xmit`` only the length. The receive-side entry events
(``net_dev_rx_verbose_template``: ``netif_rx_entry``, ``netif_receive_skb_entry``,
``napi_gro_receive_entry``, ...) do record ``nr_frags``, ``len``, ``data_len``,
``gso_size``, ``truesize``. veth (no XDP on the peer) hands the transmitted skb
itself to the peer with ``__netif_rx()`` (``veth_forward_skb()``,
drivers/net/veth.c), and with TSO on a GSO skb crosses whole, so
``net:netif_rx_entry`` on the receiving veth sees each skb TCP transmitted with the
frags TCP built (a zerocopy skb's user pages are copied only later, by
``skb_orphan_frags_rx()`` on delivery). Every hit is sampled (raw fields,
:class:`fraglife.probes._perf.Sampler`) and ``nr_frags`` histogrammed, for four
senders of 64 KiB calls: ``send`` (the copy path), ``zerocopy`` (``MSG_ZEROCOPY``
from 4 KiB anonymous pages: a frag per page, merged only within a folio,
``zerocopy_fill_skb_from_iter()``), ``zerocopy_thp`` (the same from a THP-backed
buffer), ``splice`` (a file on a block-device filesystem, read into the page cache,
spliced through a pipe into the socket: ``MSG_SPLICE_PAGES``, a frag per page,
``skb_splice_from_iter()``).

Cleanup: the namespaces go on every path (and by the next probe's sweep if this
process is killed); the splice sender's file is written down first
(:func:`fraglife.probes._cleanup.temp_file`).
"""

from __future__ import annotations

import fcntl
import os
import select
import shutil
import time
from collections import Counter as Tally
from contextlib import ExitStack

from ..params import Param, ParamError
from . import _cleanup, _counting, _net, _perf, _sys
from ._base import ProbeUnavailable, measured
from ._counting import Counter

NAME = "kcount_copy"
TITLE = "The copy path of small sends over veth (page_frag refills, skbs per message) and frags per skb"
REQUIRED = ("messages", "frags", "tracepoints")

NS_PREFIX = "fraglife-cp"
FILE_PREFIX = "fraglife-cp"
GROUPS = ("net", "tcp", "kmem")
MiB = 1 << 20
SIZES = (64, 256, 1024, 4096, 16384, 65536)
TARGET_BYTES = 16 * MiB
MIN_MESSAGES, MAX_MESSAGES = 256, 16384
FRAG_BYTES = 16 * MiB
FRAG_CALL = 64 * 1024
FRAG_SENDERS = ("send", "zerocopy", "zerocopy_thp", "splice")
SAMPLE_PAGES = 1024
TIMEOUT = 30.0

_PID = "common_pid == {tx_tid}"
#: Counter keys: a tracepoint ``group:event``, with ``[variant]`` for a narrower filter of the same one.
COUNTERS: dict[str, Counter] = {
    "kmem:mm_page_alloc[order3]": Counter("kmem:mm_page_alloc", _PID + " && order == 3", True,
                                          "order-3 (32 KiB) page allocations in the sending thread: "
                                          "page_frag refills", ("order",)),
    "kmem:mm_page_alloc[order0]": Counter("kmem:mm_page_alloc", _PID + " && order == 0", True,
                                          "order-0 page allocations in the sending thread", ("order",)),
    "kmem:mm_page_alloc[other]": Counter("kmem:mm_page_alloc", _PID + " && order != 0 && order != 3", True,
                                         "page allocations of other orders in the sending thread", ("order",)),
    "kmem:kmem_cache_alloc[skb]": Counter("kmem:kmem_cache_alloc", _PID + " && ({alloc_sites})", True,
                                          "sk_buff slab allocations in the sending thread", ("call_site",)),
    "kmem:kmem_cache_alloc[fclone]": Counter("kmem:kmem_cache_alloc",
                                             _PID + ' && ({alloc_sites}) && name != "skbuff_head_cache"', True,
                                             "of those, fast-clone pairs (TCP write-queue skbs)",
                                             ("call_site", "name")),
    "tcp:tcp_sendmsg_locked": Counter("tcp:tcp_sendmsg_locked", _PID, True,
                                      "passes of tcp_sendmsg_locked()'s copy loop (skbs started or extended)"),
    "net:net_dev_queue": Counter("net:net_dev_queue", 'name == "{tx_if}"', True,
                                 "skbs TCP handed to the sending veth", ("name",)),
    "net:net_dev_queue[gso]": Counter("net:net_dev_queue", 'name == "{tx_if}" && len > {gso_len}', True,
                                      "of those, longer than one frame (GSO skbs)", ("name", "len")),
}

_P = {
    "size": Param("size", int, 1024, "bytes per message", lo=1, hi=MiB),
    "count": Param("count", int, 4096, "messages", lo=1, hi=1 << 20),
    "nodelay": Param("nodelay", bool, False, "TCP_NODELAY"),
    "sender": Param("sender", str, "send", "how the frags sender writes", choices=FRAG_SENDERS),
    "nbytes": Param("nbytes", int, FRAG_BYTES, "bytes to transfer", lo=FRAG_CALL, hi=1 << 30),
}


def _check() -> None:
    if os.geteuid() != 0:
        raise ProbeUnavailable("counting tracepoints system-wide and creating network namespaces need root "
                               "(CAP_PERFMON, CAP_NET_ADMIN)")
    if shutil.which("ip") is None:
        raise ProbeUnavailable("iproute2 `ip` is not installed")


_events: dict = {}


def available() -> dict:
    if not _events:
        _events.update(_perf.tracefs_layouts(GROUPS))
    return _events


def _events_or_unavailable() -> dict:
    _check()
    try:
        return available()
    except (OSError, TimeoutError) as e:
        raise ProbeUnavailable(f"tracepoints unreadable: {e}") from e


def cpus() -> tuple[int, int]:
    online = _perf.online_cpus()
    return online[0], online[1] if len(online) > 1 else online[0]


def messages_for(size: int, quick: bool = False) -> int:
    """How many messages of ``size`` a run sends: :data:`TARGET_BYTES` worth, within
    [:data:`MIN_MESSAGES`, :data:`MAX_MESSAGES`] (an eighth of that when quick)."""
    n = min(MAX_MESSAGES, max(MIN_MESSAGES, TARGET_BYTES // size))
    return max(1, n // 8) if quick else n


def send_messages(size: int = 1024, count: int = 4096, *, nodelay: bool = False, name: str | None = None) -> dict:
    """``count`` plain sends of ``size`` bytes over a fresh veth pair, counted; the run's record."""
    size, count, nodelay = _P["size"].check(size), _P["count"].check(count), _P["nodelay"].check(nodelay)
    events = _events_or_unavailable()
    block = memoryview(b"\x5a" * size)
    tx_cpu, rx_cpu = cpus()

    def send(fl: _net.Flow) -> dict:
        calls = 0
        for _ in range(count):
            fl.tx.sendall(block)
            calls += 1
        return {"bytes": size * count, "calls": calls}

    raw = _counting.counted_transfer(send, prefix=NS_PREFIX, counters=COUNTERS, events=events,
                                     per=lambda r: 1.0, nodelay=nodelay, tso=True, sender_cpu=tx_cpu,
                                     reader_cpu=rx_cpu)
    nbytes = size * count
    counts = raw["counts"]  # per 1: whole-run counts; the two views divide them
    per_msg = {k: _scaled(c, count) for k, c in counts.items()}
    per_mib = {k: _scaled(c, nbytes / MiB) for k, c in counts.items()}
    skbs = counts.get("net:net_dev_queue", {}).get("value") or 0
    return {
        "name": name, "size": size, "messages": count, "bytes": nbytes, "nodelay": nodelay,
        "seconds": raw["seconds"], "idle_seconds": raw["idle_seconds"],
        "counts": counts, "per_message": per_msg, "per_mib": per_mib,
        "bytes_per_skb": round(nbytes / skbs, 1) if skbs else None,
        "messages_per_skb": round(count / skbs, 3) if skbs else None,
        "skipped": raw["skipped"], "snmp": raw["snmp"], "tcp_info": raw["tcp_info"],
        "features": raw["features"], "cpus": raw["cpus"],
        "high_order_alloc_disable": _read_int("/proc/sys/net/core/high_order_alloc_disable"),
    }


def _scaled(c: dict, by: float) -> dict:
    return {k: round(c[k] / by, 6) for k in ("value", "low", "high")} | {"per_cpu": [round(v / by, 6) for v in c["per_cpu"]]}


def _read_int(path: str) -> int | None:
    try:
        return int(open(path).read().strip())
    except (OSError, ValueError):
        return None


# -- frags per skb --------------------------------------------------------------------------------------

class _Splicer:
    """A page-cached file on a block-device filesystem, spliced in calls through a pipe into a socket."""

    def __init__(self, stack: ExitStack, size: int, call: int):
        try:
            directory, self.fs = _sys.direct_io_dir()
        except OSError as e:
            raise ProbeUnavailable(str(e)) from e
        self.fd, self.path = stack.enter_context(_cleanup.temp_file(directory, FILE_PREFIX))
        block = b"\x5a" * call
        for _ in range(size // call):
            os.write(self.fd, block)
        os.fsync(self.fd)
        os.lseek(self.fd, 0, os.SEEK_SET)
        while os.read(self.fd, MiB):  # into the page cache before the window
            pass
        self.size = size
        r, w = os.pipe()
        stack.callback(os.close, r)
        stack.callback(os.close, w)
        fcntl.fcntl(w, fcntl.F_SETPIPE_SZ, call)
        self.pipe = (r, w)

    def send(self, sock, nbytes: int, call: int) -> int:
        r, w = self.pipe
        sent = calls = 0
        while sent < nbytes:
            n = min(call, nbytes - sent)
            off = sent % self.size
            moved = 0
            while moved < n:
                m = os.splice(self.fd, w, n - moved, offset_src=off + moved)
                if m <= 0:
                    raise OSError(f"splice from the file at {off + moved} moved {m} bytes")
                moved += m
            left = moved
            while left:
                try:
                    left -= os.splice(r, sock.fileno(), left)
                except BlockingIOError:
                    select.select([], [sock], [], 0.1)
            sent += n
            calls += 1
        return calls


def frags_run(sender: str = "send", nbytes: int = FRAG_BYTES, *, name: str | None = None) -> dict:
    """One transfer of ``nbytes`` in 64 KiB calls by ``sender``; the frags of every skb the receiving veth
    took in (``net:netif_rx_entry`` samples): histogram of ``nr_frags``, mean, bytes per skb."""
    sender, nbytes = _P["sender"].check(sender), _P["nbytes"].check(nbytes)
    if nbytes % FRAG_CALL:
        raise ParamError(f"parameter 'nbytes' = {nbytes} is not allowed: expected a multiple of {FRAG_CALL}")
    events = _events_or_unavailable()
    if "net:netif_rx_entry" not in events or "nr_frags" not in events["net:netif_rx_entry"]["layout"]:
        raise ProbeUnavailable("net:netif_rx_entry with an nr_frags field does not exist on this kernel")
    tx_cpu, rx_cpu = cpus()
    facts: dict = {}
    with ExitStack() as stack:
        if sender == "splice":
            src = _Splicer(stack, min(nbytes, 8 * MiB), FRAG_CALL)
            facts["filesystem"] = src.fs
        elif sender in ("zerocopy", "zerocopy_thp"):
            thp = sender == "zerocopy_thp"
            m = _sys.Mapping(_sys.HUGE if thp else FRAG_CALL, align=_sys.HUGE if thp else _sys.PAGE, thp=thp)
            stack.callback(m.close)
            a = m.array()
            a[:] = 0x5A
            view = memoryview(a)[:FRAG_CALL]
            del a
            stack.callback(view.release)
            facts["thp_backed"] = _sys.thp_fraction(m)
        else:
            view = memoryview(b"\x5a" * FRAG_CALL)

        def send(fl: _net.Flow) -> dict:
            calls = completions = 0
            if sender == "splice":
                calls = src.send(fl.tx, nbytes, FRAG_CALL)
            elif sender == "send":
                for _ in range(nbytes // FRAG_CALL):
                    fl.tx.sendall(view)
                    calls += 1
            else:
                got = []
                for _ in range(nbytes // FRAG_CALL):
                    calls += _net.send_zerocopy(fl.tx, view)
                    got += _net.read_completions(fl.tx)
                fl.drain.wait(nbytes, TIMEOUT)
                if not got or max(hi for _, hi, _ in got) < calls - 1:
                    got += _net.wait_completions(fl.tx, calls - 1, TIMEOUT)
                completions = len(got)
            return {"bytes": nbytes, "calls": calls, "completions": completions}

        raw = _counting.counted_transfer(
            send, prefix=NS_PREFIX, counters={}, events=events, per=lambda r: nbytes / MiB, tso=True,
            zerocopy=sender.startswith("zerocopy"), sender_cpu=tx_cpu, reader_cpu=rx_cpu,
            samples={"skbs": ("net:netif_rx_entry", 'name == "{rx_if}"', SAMPLE_PAGES)})
    lay = events["net:netif_rx_entry"]["layout"]
    rows = [_perf.decode(lay, r, ("len", "data_len", "nr_frags", "gso_size")) for _, _, r in raw["samples"]["skbs"]]
    data = [r for r in rows if r[0] > 100]  # data skbs; the rest are the handshake's and window updates
    n = len(data) or 1
    hist = Tally(r[2] for r in data)
    gso = Tally(r[2] for r in data if r[3])  # GSO skbs: more than one segment's worth
    return {
        "name": name or sender, "sender": sender, "bytes": nbytes, "call": FRAG_CALL, **facts,
        "send": raw["send"], "skbs": len(data), "other_skbs": len(rows) - len(data),
        "lost_samples": raw["lost"].get("skbs", 0),
        "nr_frags": {str(k): hist[k] for k in sorted(hist)},
        "mean_frags": round(sum(k * v for k, v in hist.items()) / n, 3),
        "gso_skbs": sum(gso.values()), "nr_frags_gso": {str(k): gso[k] for k in sorted(gso)},
        "mean_frags_gso": round(sum(k * v for k, v in gso.items()) / max(1, sum(gso.values())), 3),
        "mean_len": round(sum(r[0] for r in data) / n, 1),
        "linear_bytes_mean": round(sum(r[0] - r[1] for r in data) / n, 1),
        "gso_size": dict(Tally(str(r[3]) for r in data).most_common(3)),
        "bytes_per_frag": round(sum(r[1] for r in data) / max(1, sum(r[2] for r in data)), 1),
        "skbs_per_mib": round(len(data) / (nbytes / MiB), 3),
        "seconds": raw["seconds"], "features": raw["features"], "cpus": raw["cpus"],
    }


# -- the probe -------------------------------------------------------------------------------------------

def measure(quick: bool = False) -> dict:
    events = _events_or_unavailable()
    reps = 1 if quick else 3
    runs = []
    for nodelay in (False, True):
        for size in SIZES:
            name = f"{size}B_nodelay_{'on' if nodelay else 'off'}"
            runs.append(_counting.least_disturbed(
                lambda s=size, nd=nodelay, n=name: send_messages(s, messages_for(s, quick), nodelay=nd, name=n),
                reps))
    nbytes = 4 * MiB if quick else FRAG_BYTES
    frags = [frags_run(s, nbytes) for s in FRAG_SENDERS]
    tp = _counting.tracepoint_table(COUNTERS, events)
    for ev in ("net:netif_rx_entry", "net:net_dev_start_xmit"):
        fields = (events.get(ev) or {}).get("layout") or {}
        tp[ev] = {"present": bool(fields), "fields": [f for f in fields if not f.startswith("common_")]}
    return measured(messages=runs, frags=frags, tracepoints=tp,
                    max_skb_frags=_read_int("/proc/sys/net/core/max_skb_frags"),
                    high_order_alloc_disable=_read_int("/proc/sys/net/core/high_order_alloc_disable"),
                    quick=quick)


def leftovers() -> list[str]:
    """This probe's namespaces and files that still exist (after a run: none)."""
    left = _net.leftover_netns(NS_PREFIX + "-")
    try:
        directory, _ = _sys.direct_io_dir()
        left += sorted(str(p) for p in directory.glob(FILE_PREFIX + "-*"))
    except OSError:
        pass
    return left


SHOWN = ("kmem:mm_page_alloc[order3]", "kmem:kmem_cache_alloc[fclone]", "tcp:tcp_sendmsg_locked",
         "net:net_dev_queue")


def summarize(data: dict) -> list[str]:
    lines = []
    for r in data["messages"]:
        pm = r["per_message"]
        lines.append(f"{r['name']:22s} {r['messages']:6d} msgs: per message "
                     + ", ".join(f"{k.split(':')[1]} {pm[k]['value']:.4g}" for k in SHOWN if k in pm)
                     + f"; {r['bytes_per_skb']} B per skb")
    for f in data["frags"]:
        lines.append(f"frags {f['sender']:13s} {f['skbs']} skbs, mean {f['mean_frags']} frags, "
                     f"{f['mean_len']:.0f} B per skb: {f['nr_frags']}")
    return lines


def frame(data: dict):
    """One row per message run and counter: per message and per MiB, with brackets."""
    import pandas as pd

    rows = []
    for r in data["messages"]:
        for k in r["counts"]:
            rows.append({"run": r["name"], "size": r["size"], "nodelay": r["nodelay"], "counter": k,
                         "per_message": r["per_message"][k]["value"], "per_mib": r["per_mib"][k]["value"],
                         "per_mib_low": r["per_mib"][k]["low"], "per_mib_high": r["per_mib"][k]["high"],
                         "method": r["counts"][k]["method"]})
    return pd.DataFrame(rows)

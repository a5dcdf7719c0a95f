"""Kernel tracepoint counts for one real TCP transfer over a veth pair.

What is measured: a bulk TCP transfer of ``bytes`` from a sender in one
network namespace to a receiver in another, over a veth pair made for the
run (:func:`fraglife.probes._net.veth_pair`), and how often each of a set of
kernel tracepoints fires because of it, per MiB sent. The sender writes with
``MSG_ZEROCOPY`` (default), plain ``send`` or ``splice(2)`` from a file
through a pipe into the socket. Knobs: the MSS (``TCP_MAXSEG`` before
connect), the MTU, TSO/GSO on the sending veth and GRO on the receiving one
(set through the ethtool ioctl and read back), and an optional ``tbf``
bottleneck qdisc on the sending veth whose drops make TCP retransmit (its
sent and dropped packet counts are read with ``tc -s``).

The counters are perf events of type PERF_TYPE_TRACEPOINT, one per CPU,
system-wide (:mod:`fraglife.probes._perf`). System-wide counters also count
what every other process on the machine does, so each counter is narrowed to
the transfer in one of two ways, recorded per counter in ``method``:

- ``filter: EXPR``: an ftrace filter the kernel evaluates per hit, on a field
  that names the flow: the device name (``name``) for the ``net:`` events
  (the veth names carry a random tag, unique on the machine), the
  connection's ports for ``tcp:tcp_retransmit_skb``, the sending thread's
  task id (``common_pid``) for ``tcp:tcp_sendmsg_locked`` (it runs only in
  the sender's process context; its fields name the skb, not the socket).
- ``idle-subtracted``: events with no field that identifies the flow
  (``skb:consume_skb`` and ``skb:kfree_skb`` record only the skb and the
  caller; ``kmem:kmem_cache_*`` the slab object, cache and call site, which
  a filter uses to pick sk_buff allocations but not this flow's) are counted
  system-wide and an idle estimate is subtracted: the rate in an idle window
  just before the transfer (0.25 s) and one of the transfer's length just
  after it (at least 0.25 s), times the transfer's duration. The transfer
  is short (tens to hundreds of milliseconds), so the estimate is small next
  to the counts; a negative per-MiB value is noise. Filtering these on the two
  threads' task ids is not enough, because softirq work (ACK processing,
  deferred frees, ksoftirqd) runs in whichever task is current; the
  ``@pids`` variants count that way and are a lower bound.

A quick transfer lasts milliseconds, so one burst of another process's
networking in it (or a tail-loss probe when the receiving thread was not
scheduled in time) shows in the counts. The runs without a qdisc are
therefore made ``CLEAN_REPS`` times and the least disturbed is kept
(:func:`least_disturbed`; its ``reps`` records all of them): such noise only
adds events.

Every counter also reports its idle counts (a filtered counter should read
0 there). The namespaces' own SNMP counters (``/proc/net/snmp`` and
``netstat`` read from inside each namespace, where only this connection
lives), both sockets' ``tcp_info`` and the veth link counters are recorded
alongside as exact cross-checks.

Counter keys: a tracepoint name ``group:event``, optionally with
``[variant]`` (same tracepoint, narrower filter) or ``@ack`` (the reverse
direction: the receiver's ACKs) or ``@pids`` (see above). Kernel sources
(v6.12 unless noted; this kernel's tracefs formats are recorded in
``tracepoints``):

- ``tcp:tcp_sendmsg_locked`` (added in v6.14): one hit per pass of the copy
  loop of ``tcp_sendmsg_locked()`` (net/ipv4/tcp.c), i.e. per skb started or
  extended by a send call. The event fires at the top of each pass with
  ``skb_addr`` = the write queue's tail (``tcp_write_queue_tail()``: the write
  queue holds only unsent skbs, ``tcp_event_new_data_sent()`` moves a sent one
  to the retransmit queue), or 0 when there is none. ``[first]`` counts the
  first pass of each full-sized send call (``msg_left`` equal to the bytes one
  call hands over: :func:`sendmsg_len`; a short call, after a partial send on a
  full send buffer, is left out), ``[no_tail]`` those of them that found no
  unsent tail skb. So ``1 - no_tail / first`` (``tail_unsent`` in the record) is
  the share of send calls that found the previous call's tail still unsent and
  appended to it: what the kernel decided for this connection (ACK arrival
  against ``release_sock()``, pacing, TSQ, the window; v6.18 net/ipv4/tcp.c,
  tcp_output.c), the one timing input a model of the tail rule needs. ftrace
  filters compare a field with a constant only, hence ``msg_left == N``.
- ``net:net_dev_queue``: ``__dev_queue_xmit()`` (net/core/dev.c), once per skb
  TCP hands to the device, before the qdisc and before software GSO: TCP
  transmissions, retransmissions included. ``[gso]``: those longer than one
  MTU-sized frame, i.e. the GSO skbs.
- ``net:net_dev_xmit``: ``xmit_one()`` (net/core/dev.c), once per skb the
  driver's ``ndo_start_xmit`` took, after software GSO split a GSO skb into
  segments (``validate_xmit_skb()`` -> ``skb_gso_segment()``) and after the
  qdisc dropped what it dropped.
- ``tcp:tcp_retransmit_skb``: ``__tcp_retransmit_skb()``
  (net/ipv4/tcp_output.c) per retransmitted skb (an skb may carry several
  segments); on this kernel the event has an ``err`` field and also fires for
  attempts that failed, counted in ``[err]`` (e.g. -EBUSY from
  ``skb_still_in_host_queue()`` while the original is still in a qdisc or
  driver queue).
- ``skb:consume_skb`` / ``skb:kfree_skb``: ``consume_skb()``,
  ``napi_consume_skb()`` and ``kfree_skb_reason()`` (net/core/skbuff.c);
  ``__kfree_skb()``, which TCP uses for acknowledged write-queue skbs
  (``tcp_wmem_free_skb()``), for pure ACKs it has processed and for
  coalesced receive skbs, fires neither, so these undercount frees.
- ``kmem:kmem_cache_alloc[skb]``: slab allocations of a struct sk_buff made
  from ``__alloc_skb()``, ``skb_clone()`` or ``__build_skb()``, selected by
  the ``call_site`` address (ranges from /proc/kallsyms); ``[fclone]``: those
  not from ``skbuff_head_cache``, i.e. fast-clone pairs (``alloc_skb_fclone()``:
  a TCP write-queue skb and the clone it is transmitted with, one object).
  Every skb allocated in the window is freed by its end (the transfer is
  waited out), so this is the best count of skbs freed the kernel offers.
  ``kmem:kmem_cache_free[skbuff_head_cache]`` (by cache name) counts frees of
  single skbs; fast-clone frees cannot be selected (``kfree_skbmem()`` ends in
  a tail call, so their call site is its caller's, and the fast-clone cache is
  merged with other caches of its size). The per-CPU NAPI skb cache
  (``napi_skb_cache_get/put``) works in bulk without these events.
- receive side, on the receiving veth (filter ``name``): ``net:netif_rx``
  (veth hands each packet to the peer with ``__netif_rx()``),
  ``net:netif_receive_skb`` (``__netif_receive_skb_core()``, every received
  skb), and the NAPI entry points ``net:netif_receive_skb_entry``,
  ``net:netif_receive_skb_list_entry``, ``net:napi_gro_receive_entry``
  (veth uses NAPI only with GRO or XDP enabled on the peer, and even then
  passes TCP skbs from a sender with TSO on straight to ``__netif_rx()``:
  ``veth_skb_is_eligible_for_gro()``, drivers/net/veth.c). Which of these
  exist on the running kernel is recorded.

Runs: ``runs`` are the three transfers above (TSO on, off, a bottleneck),
with the receiver's buffer autotuned; ``grid`` holds a few MSG_ZEROCOPY
settings (MTU, send size, TSO) with the receiver's buffer fixed at 64 MiB
(:data:`GRID_RCVBUF`), so that the receive window never limits the sender: a
window-limited sender also splits skbs at the window's edge, which a model of
the tail rule leaves out (see :data:`GRID_RCVBUF`). Every run records
``tail_unsent``, the share of send calls that appended to the previous call's
unsent tail skb (from the ``[first]`` and ``[no_tail]`` counters below). A
quick run measures only :data:`LIVE_GRID` of the grid and takes the rest from
the recording (each transfer's ``source`` says which; ``grid_live`` lists the
live ones).

Completions: the zerocopy notifications read from the error queue
(``completions``), the send-call ids they cover (``completion_ids``) and
whether any carried ``SO_EE_CODE_ZEROCOPY_COPIED`` (``copied``): veth
delivery is local, so ``skb_orphan_frags_rx()`` copies and every
notification is expected to say so (Documentation/networking/msg_zerocopy.rst,
v6.12).

Cleanup: the namespaces (and with them the veth pair and the qdisc), the
temporary file of the splice sender, the sockets, threads and perf events are
released on every path, including errors and KeyboardInterrupt;
:func:`leftovers` lists anything that survived. tracefs, when not mounted,
is read by a child process in a private mount namespace (nothing to clean).
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import select
import shutil
import socket
import tempfile
import threading
import time
from contextlib import ExitStack
from dataclasses import asdict, dataclass
from typing import Iterable, Mapping

from ..params import Param, ParamError
from . import _counting, _net, _perf, _sys
from ._base import ProbeUnavailable, measured

NAME = "kcount"
TITLE = "Kernel tracepoint counts per MiB of a real TCP transfer over veth (TSO on, off, bottleneck)"
REQUIRED = ("runs", "grid", "tracepoints")

NS_PREFIX = "fraglife-kc"
FILE_PREFIX = "fraglife-kc-"
MiB = 1 << 20
TIMEOUT = 30.0  # a transfer that makes no progress for this long fails
IDLE_BEFORE_S = 0.25  # also the shortest idle window after the transfer
IDLE_AFTER_MAX_S = 5.0
SPLICE_FILE_MAX = 8 * MiB
GROUPS = ("net", "tcp", "skb", "kmem")
SENDERS = ("zerocopy", "send", "splice")
ETH_HLEN = 14
SO_RCVBUFFORCE = 33  # include/uapi/asm-generic/socket.h (v6.12): SO_RCVBUF past rmem_max, CAP_NET_ADMIN
GSO_MAX_SIZE = 65536  # GSO_LEGACY_MAX_SIZE (include/linux/netdevice.h, v6.12): the largest TCP GSO skb here

SKB_ALLOC_SITES = ("__alloc_skb", "skb_clone", "__build_skb", "__napi_build_skb")


@dataclass(frozen=True)
class Counter:
    """One counter: a tracepoint and a filter template ({tx_if}, {rx_if}, {sport}, {dport}, {tx_tid},
    {rx_tid}, {gso_len}, {alloc_sites}); ``flow`` says whether the filter names the flow
    (else the count is idle-subtracted). ``needs`` are fields the filter uses."""

    tracepoint: str
    filter: str | None
    flow: bool
    what: str
    needs: tuple[str, ...] = ()


_PIDS = "common_pid == {tx_tid} || common_pid == {rx_tid}"
_FLOW = "sport == {sport} && dport == {dport}"

#: Every counter this probe knows, in display order.
COUNTERS: dict[str, Counter] = {
    "tcp:tcp_sendmsg_locked": Counter("tcp:tcp_sendmsg_locked", "common_pid == {tx_tid}", True,
                                      "passes of tcp_sendmsg_locked()'s copy loop (skbs started or extended)"),
    "tcp:tcp_sendmsg_locked[first]": Counter("tcp:tcp_sendmsg_locked",
                                             "common_pid == {tx_tid} && msg_left == {first_len}", True,
                                             "first passes of full-sized send calls", ("msg_left",)),
    "tcp:tcp_sendmsg_locked[no_tail]": Counter("tcp:tcp_sendmsg_locked",
                                               "common_pid == {tx_tid} && msg_left == {first_len} && skb_addr == 0",
                                               True, "of those, the ones that found no unsent tail skb",
                                               ("msg_left", "skb_addr")),
    "net:net_dev_queue": Counter("net:net_dev_queue", 'name == "{tx_if}"', True,
                                 "skbs handed to the sending veth (TCP transmissions incl. retransmits)", ("name",)),
    "net:net_dev_queue[gso]": Counter("net:net_dev_queue", 'name == "{tx_if}" && len > {gso_len}', True,
                                      "of those, skbs longer than one frame (GSO skbs)", ("name", "len")),
    "net:net_dev_xmit": Counter("net:net_dev_xmit", 'name == "{tx_if}"', True,
                                "packets the sending veth transmitted (after software GSO and qdisc drops)",
                                ("name",)),
    "tcp:tcp_retransmit_skb": Counter("tcp:tcp_retransmit_skb", _FLOW, True,
                                      "retransmissions of this connection's skbs", ("sport", "dport")),
    "tcp:tcp_retransmit_skb[err]": Counter("tcp:tcp_retransmit_skb", _FLOW + " && err != 0", True,
                                           "of those, attempts that failed (-EBUSY: still in a host queue)",
                                           ("sport", "dport", "err")),
    "skb:consume_skb": Counter("skb:consume_skb", None, False, "skbs freed through consume_skb()"),
    "skb:kfree_skb": Counter("skb:kfree_skb", None, False, "skbs freed through kfree_skb_reason() (drops)"),
    "kmem:kmem_cache_alloc[skb]": Counter("kmem:kmem_cache_alloc", "{alloc_sites}", False,
                                          "struct sk_buff slab allocations (__alloc_skb, skb_clone, build_skb)",
                                          ("call_site",)),
    "kmem:kmem_cache_alloc[fclone]": Counter("kmem:kmem_cache_alloc",
                                             '({alloc_sites}) && name != "skbuff_head_cache"', False,
                                             "of those, fast-clone pairs (TCP write-queue skbs with their clone)",
                                             ("call_site", "name")),
    "kmem:kmem_cache_free[skbuff_head_cache]": Counter("kmem:kmem_cache_free", 'name == "skbuff_head_cache"', False,
                                                       "frees of single (not fast-clone) sk_buffs", ("name",)),
    "net:netif_rx": Counter("net:netif_rx", 'name == "{rx_if}"', True,
                            "packets the veth handed to the receiving peer (__netif_rx)", ("name",)),
    "net:netif_receive_skb": Counter("net:netif_receive_skb", 'name == "{rx_if}"', True,
                                     "skbs the receiving namespace's stack took in", ("name",)),
    "net:netif_receive_skb_entry": Counter("net:netif_receive_skb_entry", 'name == "{rx_if}"', True,
                                           "netif_receive_skb() calls (NAPI drivers)", ("name",)),
    "net:netif_receive_skb_list_entry": Counter("net:netif_receive_skb_list_entry", 'name == "{rx_if}"', True,
                                                "netif_receive_skb_list() entries (NAPI drivers)", ("name",)),
    "net:napi_gro_receive_entry": Counter("net:napi_gro_receive_entry", 'name == "{rx_if}"', True,
                                          "packets offered to GRO on the receiving veth", ("name",)),
    "net:net_dev_xmit@ack": Counter("net:net_dev_xmit", 'name == "{rx_if}"', True,
                                    "packets the receiver's veth transmitted (ACKs)", ("name",)),
    "net:netif_receive_skb@ack": Counter("net:netif_receive_skb", 'name == "{tx_if}"', True,
                                         "skbs the sender's namespace took in (ACKs)", ("name",)),
    "skb:consume_skb@pids": Counter("skb:consume_skb", _PIDS, False,
                                    "consume_skb() in the sender's or receiver's thread (lower bound)"),
    "skb:kfree_skb@pids": Counter("skb:kfree_skb", _PIDS, False,
                                  "kfree_skb() in the sender's or receiver's thread (lower bound)"),
}

#: The receive-side tracepoints this probe looks for (whichever the kernel has).
RECEIVE_SIDE = ("net:netif_rx", "net:netif_receive_skb", "net:netif_receive_skb_entry",
                "net:netif_receive_skb_list_entry", "net:napi_gro_receive_entry")

#: Per-namespace SNMP counters kept in a run (all nonzero deltas are kept; these always).
SNMP_KEEP = ("Tcp.OutSegs", "Tcp.RetransSegs", "Tcp.InSegs", "Ip.OutRequests", "TcpExt.TCPSpuriousRtxHostQueues",
             "TcpExt.DelayedACKs", "TcpExt.TCPFastRetrans", "TcpExt.TCPLostRetransmit", "TcpExt.TCPTimeouts",
             "TcpExt.TCPLossProbes",
             "TcpExt.TCPSackRecovery", "TcpExt.TCPRcvCoalesce", "TcpExt.TCPOrigDataSent")
TCP_INFO_KEEP = ("snd_mss", "rcv_mss", "advmss", "pmtu", "total_retrans", "segs_out", "segs_in", "data_segs_out",
                 "data_segs_in", "bytes_sent", "bytes_retrans", "bytes_acked", "bytes_received", "delivered",
                 "lost", "sacked", "reordering", "dsack_dups", "rcv_ooopack", "total_rto", "snd_cwnd")


@dataclass(frozen=True)
class Tbf:
    """A token-bucket bottleneck (``tc qdisc add ... tbf rate R burst B limit L``, net/sched/sch_tbf.c).

    Packets that find more than ``limit`` bytes queued are dropped; GSO skbs
    longer than ``burst`` are segmented by the qdisc (``tbf_segment()``)."""

    rate_mbit: float = 1000.0
    burst: int = 32 * 1024
    limit: int = 32 * 1024


#: Three runs of the probe: (name, transfer keyword arguments).
def _runs(quick: bool) -> list[tuple[str, dict]]:
    big, small = (4 * MiB, 4 * MiB) if quick else (64 * MiB, 16 * MiB)
    return [
        ("tso_on", dict(nbytes=big, tso=True)),
        ("tso_off", dict(nbytes=big, tso=False)),
        ("bottleneck", dict(nbytes=small, tso=False, bottleneck=BOTTLENECK)),
    ]


#: 1 Gbit/s with a 96 KiB queue and a 16 KiB burst (so the qdisc segments every GSO skb and drops
#: single packets): tail drops whenever the congestion window overshoots the queue. In trials here
#: with every counter on, 0.5-7 % of a 4-16 MiB transfer, varying from run to run. With a 128 KiB
#: queue some runs dropped nothing, more often with every counter on (their cost slows the sender)
#: than with two; not established why (TCP Small Queues, tcp_small_queue_check() in
#: net/ipv4/tcp_output.c, caps what one socket keeps queued below it). The rate is measured, not
#: set, and the model is fed the measured one.
BOTTLENECK = Tbf(rate_mbit=1000.0, burst=16 * 1024, limit=96 * 1024)

_P = {
    "nbytes": Param("nbytes", int, 16 * MiB, "bytes to transfer", lo=64 * 1024, hi=1 << 30),
    "mss": Param("mss", int, 1448, "TCP_MAXSEG before connect", lo=256, hi=65495),
    "mtu": Param("mtu", int, 1500, "veth MTU", lo=576, hi=65535),
    "chunk": Param("chunk", int, 256 * 1024, "bytes per send call", lo=4096, hi=MiB),
    "sender": Param("sender", str, "zerocopy", "how the sender writes", choices=SENDERS),
    "rcvbuf": Param("rcvbuf", int, 8 * MiB, "receiver's SO_RCVBUF", lo=64 * 1024, hi=256 * MiB),
    "tso": Param("tso", bool, True, "TSO on the sending veth"),
    "gso": Param("gso", bool, True, "GSO on the sending veth"),
    "gro": Param("gro", bool, False, "GRO on the receiving veth"),
    "rate_mbit": Param("bottleneck.rate_mbit", float, 1000.0, "tbf rate", lo=1.0, hi=100_000.0),
    "burst": Param("bottleneck.burst", int, 32 * 1024, "tbf burst bytes", lo=1600, hi=64 * MiB),
    "limit": Param("bottleneck.limit", int, 32 * 1024, "tbf queue limit bytes", lo=1600, hi=64 * MiB),
}
_TP_NAME = re.compile(r"^[a-z0-9_]+:[a-z0-9_]+$")


def _bottleneck(b) -> Tbf | None:
    if b is None:
        return None
    if isinstance(b, Mapping):
        unknown = set(b) - {"rate_mbit", "burst", "limit"}
        if unknown:
            raise ParamError(f"parameter 'bottleneck' has unknown keys {sorted(unknown)}: "
                             "expected rate_mbit, burst, limit")
        b = Tbf(**b)
    if not isinstance(b, Tbf):
        raise ParamError(f"parameter 'bottleneck' = {b!r} is not allowed: expected None, a Tbf or a dict "
                         "with rate_mbit, burst, limit")
    return Tbf(_P["rate_mbit"].check(b.rate_mbit), _P["burst"].check(b.burst), _P["limit"].check(b.limit))


def _counter_keys(tracepoints) -> list[str]:
    if tracepoints is None:
        return list(COUNTERS)
    if isinstance(tracepoints, str):
        tracepoints = [tracepoints]
    keys = list(dict.fromkeys(tracepoints))
    for k in keys:
        if k not in COUNTERS and not (isinstance(k, str) and _TP_NAME.match(k)):
            raise ParamError(f"parameter 'tracepoints' has {k!r}: expected counter keys ({', '.join(COUNTERS)}) "
                             "or other tracepoints as 'group:event'")
    if not keys:
        raise ParamError("parameter 'tracepoints' = [] is not allowed: expected at least one tracepoint")
    return keys


def check_root() -> None:
    """Raise ProbeUnavailable unless this process may count tracepoints and make namespaces (root, iproute2)."""
    for tool in ("ip",):
        if shutil.which(tool) is None:
            raise ProbeUnavailable(f"iproute2 `{tool}` is not installed")
    if os.geteuid() != 0:
        raise ProbeUnavailable("counting tracepoints system-wide and creating network namespaces need root "
                               "(CAP_PERFMON, CAP_NET_ADMIN)")


_events_cache: dict = {}


def available(groups: Iterable[str] = GROUPS) -> tuple[dict, str]:
    """Tracepoints of ``groups`` on this kernel (id and fields), and how tracefs was read; cached."""
    key = tuple(groups)
    if key not in _events_cache:
        _events_cache[key] = _perf.tracefs_events(key)
    return _events_cache[key]


def _sites(names) -> tuple[str | None, list[str]]:
    ranges = _perf.kallsyms(names)
    if not ranges:
        return None, []
    expr = " || ".join(f"(call_site >= {a:#x} && call_site < {b:#x})" for a, b in ranges.values())
    return expr, sorted(ranges)


def _specs(keys, events, subs) -> tuple[dict, dict, dict]:
    """(perf specs, method per key, skipped key -> reason)."""
    specs, method, skipped = {}, {}, {}
    for key in keys:
        c = COUNTERS.get(key) or Counter(key, None, False, "")
        ev = events.get(c.tracepoint)
        if ev is None:
            skipped[key] = f"tracepoint {c.tracepoint} does not exist on this kernel"
            continue
        missing = [f for f in c.needs if f not in ev["fields"]]
        if missing:
            skipped[key] = f"{c.tracepoint} has no field {', '.join(missing)} on this kernel"
            continue
        flt = c.filter.format(**subs) if c.filter else None
        if "{alloc_sites}" in (c.filter or "") and not subs["alloc_sites"]:
            skipped[key] = "call-site ranges unreadable (/proc/kallsyms)"
            continue
        specs[key] = (ev["id"], flt)
        method[key] = f"filter: {flt}" if c.flow else ("idle-subtracted" + (f"; filter: {flt}" if flt else ""))
    return specs, method, skipped


def _qdisc_stats(link: _net.Veth) -> dict | None:
    out = json.loads(_net.tc("-n", link.tx_ns, "-s", "-j", "qdisc", "show", "dev", link.tx_if))
    for q in out:
        if q.get("kind") == "tbf":
            return {k: q.get(k) for k in ("packets", "bytes", "drops", "overlimits", "requeues", "backlog", "qlen")}
    return None


def source_size(sender: str, nbytes: int, chunk: int) -> int:
    """Bytes the sender's source holds: one call's buffer, or the file spliced from.

    The file is a whole number of calls (at most :data:`SPLICE_FILE_MAX`, at least one call),
    so every planned call reads inside it; a transfer longer than the file wraps to offset 0.
    """
    if sender != "splice":
        return -(-chunk // _sys.PAGE) * _sys.PAGE
    return chunk * max(1, min(nbytes, SPLICE_FILE_MAX) // chunk)


def plan_calls(sender: str, nbytes: int, chunk: int) -> list[tuple[int, int]]:
    """The send calls of one transfer, as (source offset, length): ``nbytes`` in calls of
    ``chunk``, the last one short when ``chunk`` does not divide ``nbytes``.

    A mapped buffer is sent from offset 0 each call; a spliced file is read call after call and
    wraps at its end (:func:`source_size`), so no call ever reads past it.
    """
    size = source_size(sender, nbytes, chunk)
    calls, sent = [], 0
    while sent < nbytes:
        n = min(chunk, nbytes - sent)
        calls.append((sent % size if sender == "splice" else 0, n))
        sent += n
    return calls


def pipe_size(chunk: int) -> int:
    """Pipe capacity for splice calls of ``chunk`` bytes at offsets that are multiples of it: the
    pages one call can span (one more when ``chunk`` is not page-aligned), so one file -> pipe
    splice always moves the whole call (the kernel rounds up to a power of two pages)."""
    pages = -(-chunk // _sys.PAGE) + (1 if chunk % _sys.PAGE else 0)
    return pages * _sys.PAGE


class _Source:
    """What the sender writes from: a mapped buffer, or a file spliced through a pipe."""

    def __init__(self, sender: str, nbytes: int, chunk: int, stack: ExitStack):
        self.sender = sender
        self.chunk = chunk
        self.calls = plan_calls(sender, nbytes, chunk)
        size = source_size(sender, nbytes, chunk)
        if sender == "splice":
            self.file_size = size
            fd, path = tempfile.mkstemp(prefix=FILE_PREFIX)
            stack.callback(_unlink, path)
            stack.callback(os.close, fd)
            block = b"\x5a" * chunk
            for _ in range(size // chunk):
                os.write(fd, block)
            self.fd = fd
            r, w = os.pipe()
            stack.callback(os.close, r)
            stack.callback(os.close, w)
            try:
                fcntl.fcntl(w, fcntl.F_SETPIPE_SZ, pipe_size(chunk))
            except OSError:
                pass
            self.pipe = (r, w)
        else:
            m = _sys.Mapping(size)
            stack.callback(m.close)
            a = m.array()
            a[:] = 0x5A
            self.view = memoryview(a)
            stack.callback(self.view.release)
            del a


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def _poll_out(sock: socket.socket, deadline: float) -> None:
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError(f"sender made no progress for {TIMEOUT} s")
    select.select([], [sock], [], min(left, 0.1))


def _send_all(tx: socket.socket, src: _Source, nbytes: int) -> tuple[int, list]:
    """Make the planned calls (:func:`plan_calls`); returns (zerocopy send calls, completions read on the way)."""
    calls, got = 0, []
    deadline = time.monotonic() + TIMEOUT
    for off, n in src.calls:
        if src.sender == "zerocopy":
            calls += _net.send_zerocopy(tx, src.view[:n])
            got += _net.read_completions(tx)
        elif src.sender == "send":
            tx.sendall(src.view[:n])
        else:
            _splice_call(tx, src, off, n, deadline)
        deadline = time.monotonic() + TIMEOUT
    return calls, got


def _splice_call(tx: socket.socket, src: _Source, off: int, n: int, deadline: float) -> None:
    """One planned call: ``n`` bytes of the file at ``off`` into the pipe, then all of it into the socket."""
    r, w = src.pipe
    moved = 0
    while moved < n:  # the pipe holds a whole call (pipe_size), so this loops only on a short read
        m = os.splice(src.fd, w, n - moved, offset_src=off + moved)
        if m <= 0:
            raise OSError(f"splice from the source file at offset {off + moved} moved {m} bytes "
                          f"(file of {src.file_size} bytes)")
        moved += m
    left = moved
    while left:
        try:
            left -= os.splice(r, tx.fileno(), left)
        except BlockingIOError:
            _poll_out(tx, deadline)


def _quiesce(tx: socket.socket, drain: _net.Drainer, nbytes: int, calls: int, got: list) -> list:
    """Wait until the receiver read everything, every send completed and the peer acknowledged all."""
    drain.wait(nbytes, TIMEOUT)
    if calls and (not got or max(hi for _, hi, _ in got) < calls - 1):
        got = got + _net.wait_completions(tx, calls - 1, TIMEOUT)
    deadline = time.monotonic() + TIMEOUT
    while _net.outq(tx):
        if time.monotonic() > deadline:
            raise TimeoutError(f"{_net.outq(tx)} bytes still unacknowledged after {TIMEOUT} s")
        time.sleep(0.001)
    return got


def transfer(nbytes: int = 16 * MiB, *, mss: int | None = None, mtu: int = 1500, tso: bool = True,
             gso: bool = True, gro: bool = False, bottleneck: Tbf | dict | None = None, sender: str = "zerocopy",
             chunk: int = 256 * 1024, rcvbuf: int | None = None, tracepoints: Iterable[str] | None = None,
             idle: bool = True, name: str | None = None) -> dict:
    """Count kernel tracepoints during one TCP transfer over a fresh veth pair; returns one run's record.

    ``nbytes`` bytes are sent in calls of ``chunk`` bytes by ``sender``
    ("zerocopy": MSG_ZEROCOPY from an anonymous mapping; "send": plain copy;
    "splice": a page-cached file -> pipe -> socket with splice(2)). ``mss``
    (None: what the MTU gives) is set with TCP_MAXSEG before connect; ``tso``,
    ``gso`` (sending veth) and ``gro`` (receiving veth) are set and read back;
    ``bottleneck`` adds a :class:`Tbf` qdisc on the sending veth; ``rcvbuf``
    fixes the receiver's buffer (SO_RCVBUFFORCE; None: autotuning).
    ``tracepoints``: counter keys of :data:`COUNTERS` or other ``group:event``
    names (counted unfiltered, idle-subtracted); default all of
    :data:`COUNTERS`. ``idle`` = False skips the idle windows (no
    subtraction; for callers that only need the filtered counters).

    The record: ``per_mib`` (count per MiB sent, idle-subtracted where the
    method says so), ``raw`` (counts in the transfer window), ``idle``
    (window counts and the subtracted estimate), ``method``, ``skipped``,
    ``drop_rate`` and ``qdisc``, zerocopy ``completions``/``copied``,
    ``tcp_info``, ``snmp`` (per-namespace deltas), ``links``, ``features``,
    ``mss`` (the sender's MSS after connect), ``seconds``.

    Raises ParamError for a bad parameter, ProbeUnavailable when the machine
    does not allow the measurement, OSError/TimeoutError when it fails; the
    namespaces, qdisc and temporary files are gone in every case.
    """
    nbytes = _P["nbytes"].check(nbytes)
    mtu = _P["mtu"].check(mtu)
    mss = _check_mss(mss, mtu)
    sender = _P["sender"].check(sender)
    chunk = _P["chunk"].check(chunk)
    if rcvbuf is not None:
        rcvbuf = _P["rcvbuf"].check(rcvbuf)
    tso, gso, gro, idle = (_P["tso"].check(tso), _P["gso"].check(gso), _P["gro"].check(gro),
                           Param("idle", bool, True, "").check(idle))
    tbf = _bottleneck(bottleneck)
    keys = _counter_keys(tracepoints)
    check_root()
    if tbf is not None and shutil.which("tc") is None:
        raise ProbeUnavailable("iproute2 `tc` is not installed (needed for the bottleneck)")
    try:
        events, _ = available()
    except (OSError, TimeoutError) as e:
        raise ProbeUnavailable(f"tracepoints unreadable: {e}") from e

    with ExitStack() as stack:
        stack.enter_context(_net.one_transfer_at_a_time())  # two transfers disturb each other's counts
        link, features = _link(stack, mtu, tso, gso, gro, tbf)
        tx, rx, drain = _connect(stack, link, mss, rcvbuf, sender)
        src = _Source(sender, nbytes, chunk, stack)
        alloc_sites, alloc_names = _sites(SKB_ALLOC_SITES)
        subs = dict(tx_if=link.tx_if, rx_if=link.rx_if, sport=tx.getsockname()[1], dport=tx.getpeername()[1],
                    tx_tid=threading.get_native_id(), rx_tid=drain.tid, gso_len=mtu + ETH_HLEN,
                    alloc_sites=alloc_sites or "", first_len=sendmsg_len(sender, chunk, nbytes))
        specs, method, skipped = _specs(keys, events, subs)
        counters = stack.enter_context(_perf.Counters(specs))
        for key, why in counters.rejected.items():
            method[key] = f"idle-subtracted ({why})"
        counters.enable()
        stack.callback(counters.disable)
        w = _count(counters, link, tx, rx, drain, src, tbf, nbytes, idle)

    raw = {k: w["c_end"][k] - w["c_start"][k] for k in specs}
    idle_rec, per_mib = _per_mib(specs, method, raw, w, nbytes, idle)
    tcp = _tcp_record(w, tbf)
    return {
        "name": name,
        "sender": sender,
        "tso": tso,
        "gso": gso,
        "software_gso": (not tso) or (tbf is not None and tbf.burst < GSO_MAX_SIZE),
        "gro": gro,
        "bytes": nbytes,
        "chunk": chunk,
        "sendmsg_len": subs["first_len"],
        "rcvbuf": rcvbuf,
        "mtu": mtu,
        "mss_requested": mss,
        **{k: tcp[k] for k in ("mss", "drop_rate", "retransmit_rate", "qdisc")},
        "per_mib": per_mib,
        "tail_unsent": tail_unsent(raw),
        "raw": raw,
        "idle": idle_rec,
        "idle_seconds": {k: round(v[2], 4) for k, v in w["windows"].items()},
        "method": method,
        "skipped": skipped,
        "completions": len(w["got"]),
        "completion_ids": sum(hi - lo + 1 for lo, hi, _ in w["got"]),
        "send_calls": w["calls"],
        "copied": any(c for *_, c in w["got"]),
        "seconds": round(w["seconds"], 4),
        "tcp_info": tcp["tcp_info"],
        "snmp": {side: _counting.delta(w["after"]["snmp"][side], w["before"]["snmp"][side], SNMP_KEEP) for side in ("tx", "rx")},
        "links": {side: _counting.delta(w["after"]["links"][side], w["before"]["links"][side]) for side in ("tx", "rx")},
        "features": features,
        "skb_alloc_sites": alloc_names,
    }


#: Pipe buffers splice_to_socket() gathers into one sendmsg (its on-stack ``struct bio_vec bvec[16]``,
#: fs/splice.c, v6.18 and v6.12).
SPLICE_BVECS = 16


def sendmsg_len(sender: str, chunk: int, nbytes: int) -> int:
    """Bytes one full-sized send call hands to ``tcp_sendmsg_locked()``: a call's ``chunk``, or for splice one
    sendmsg per :data:`SPLICE_BVECS` pipe buffers (page-sized here: the file is spliced from page-aligned
    offsets), all but the last of a splice() call with MSG_MORE."""
    n = min(chunk, nbytes)
    return min(n, SPLICE_BVECS * _sys.PAGE) if sender == "splice" else n


def tail_unsent(raw: Mapping) -> dict | None:
    """The share of full-sized send calls whose first pass found an unsent tail skb (``[first]``, ``[no_tail]``
    of ``tcp:tcp_sendmsg_locked``), with the counts; None when the run lacks the counters."""
    first, none = raw.get("tcp:tcp_sendmsg_locked[first]"), raw.get("tcp:tcp_sendmsg_locked[no_tail]")
    if first is None or none is None:
        return None
    return {"first": first, "no_tail": none, "share": round(1 - none / first, 4) if first else None}


def _check_mss(mss: int | None, mtu: int) -> int | None:
    if mss is None:
        return None
    mss = _P["mss"].check(mss)
    if mss > mtu - 40:
        raise ParamError(f"parameter 'mss' = {mss} is not allowed: expected at most mtu - 40 = {mtu - 40}")
    return mss


def _link(stack: ExitStack, mtu: int, tso: bool, gso: bool, gro: bool, tbf: Tbf | None):
    """A fresh veth pair with the offloads asked for (read back) and the bottleneck qdisc, if any."""
    link = stack.enter_context(_net.veth_pair(NS_PREFIX, sender_ns=True, mtu=mtu))
    features = {
        "tx": _net.in_netns(link.tx_ns, lambda: _net.device_features(link.tx_if, {"tso": tso, "gso": gso})),
        "rx": _net.in_netns(link.rx_ns, lambda: _net.device_features(link.rx_if, {"gro": gro})),
    }
    if features["tx"]["tso"] != tso or features["tx"]["gso"] != gso or features["rx"]["gro"] != gro:
        raise OSError(f"veth features did not take: asked tso={tso} gso={gso} gro={gro}, read back {features}")
    if tbf is not None:
        _net.tc("-n", link.tx_ns, "qdisc", "add", "dev", link.tx_if, "root", "tbf", "rate",
                f"{tbf.rate_mbit}mbit", "burst", str(tbf.burst), "limit", str(tbf.limit))
        stack.callback(_del_qdisc, link)
    return link, features


def _connect(stack: ExitStack, link: _net.Veth, mss: int | None, rcvbuf: int | None, sender: str):
    """The connection over the pair: the sender's socket (its MSS set before connect), the receiver's, and the
    thread that drains it."""
    ls = _net.listen_in_netns(link.rx_ns, link.rx_ip)
    stack.callback(ls.close)
    if rcvbuf is not None:  # before any connection: the window scale is chosen at SYN time
        ls.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, rcvbuf)

    def make_tx():
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if mss is not None:
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG, mss)
        return s

    tx = _net.in_netns(link.tx_ns, make_tx)
    stack.callback(tx.close)
    tx.settimeout(TIMEOUT)
    tx.connect((link.rx_ip, ls.getsockname()[1]))
    rx, _ = ls.accept()
    stack.callback(rx.close)
    if sender == "zerocopy":
        _net.enable_zerocopy(tx)
    drain = _net.Drainer(rx)
    stack.callback(drain.close)
    return tx, rx, drain


def _count(counters, link, tx, rx, drain, src: _Source, tbf, nbytes: int, idle: bool) -> dict:
    """The counted transfer: an idle window before (``idle``), the transfer waited out, an idle window after;
    the counters and the namespaces' own counts around it."""
    windows = {}
    if idle:
        c0 = counters.read()
        time.sleep(IDLE_BEFORE_S)
        windows["before"] = (c0, counters.read(), IDLE_BEFORE_S)
    before = _snapshot(link, tx, rx, tbf)

    c_start = counters.read()
    t0 = time.monotonic()
    calls, got = _send_all(tx, src, nbytes)
    got = _quiesce(tx, drain, nbytes, calls, got)
    seconds = time.monotonic() - t0
    c_end = counters.read()

    after = _snapshot(link, tx, rx, tbf)
    if idle:
        span = min(max(seconds, IDLE_BEFORE_S), IDLE_AFTER_MAX_S)
        c4 = counters.read()
        time.sleep(span)
        windows["after"] = (c4, counters.read(), span)
    return {"c_start": c_start, "c_end": c_end, "windows": windows, "seconds": seconds, "calls": calls, "got": got,
            "before": before, "after": after}


def _per_mib(specs: dict, method: dict, raw: dict, w: dict, nbytes: int, idle: bool) -> tuple[dict, dict]:
    """Per counter: its idle windows and the estimate subtracted, and its count per MiB sent (``method`` says
    which counters are idle-subtracted; without idle windows nothing is, and ``method`` says so)."""
    windows, seconds = w["windows"], w["seconds"]
    idle_rec, per_mib = {}, {}
    span_total = sum(x[2] for x in windows.values())
    for k in specs:
        counts = {name: after_[k] - before_[k] for name, (before_, after_, _) in windows.items()}
        est = round(sum(counts.values()) / span_total * seconds, 2) if span_total else 0.0
        subtract = method[k].startswith("idle-subtracted") and idle
        idle_rec[k] = {**counts, "estimate": est, "subtracted": subtract}
        per_mib[k] = round((raw[k] - (est if subtract else 0.0)) / (nbytes / MiB), 3)
    if not idle:
        for k in specs:
            if method[k].startswith("idle-subtracted"):
                method[k] = "unfiltered, nothing subtracted (idle=False)" + method[k][len("idle-subtracted"):]
    return idle_rec, per_mib


def _tcp_record(w: dict, tbf: Tbf | None) -> dict:
    """The transfer's MSS, drops, retransmission rate, qdisc counts and both sockets' tcp_info."""
    before, after = w["before"], w["after"]
    qdisc = None
    drop_rate = 0.0
    if tbf is not None:
        qdisc = {"kind": "tbf", **asdict(tbf), **_counting.delta(after["qdisc"], before["qdisc"],
                                                         keep=("packets", "drops", "bytes", "overlimits"))}
        offered = qdisc["packets"] + qdisc["drops"]
        drop_rate = qdisc["drops"] / offered if offered else 0.0
    ti = {side: {k: after["tcp_info"][side].get(k) for k in TCP_INFO_KEEP} for side in ("tx", "rx")}
    for side in ("tx", "rx"):
        ti[side]["segs_out"] -= before["tcp_info"][side]["segs_out"]
        ti[side]["segs_in"] -= before["tcp_info"][side]["segs_in"]
    return {
        "mss": ti["tx"]["snd_mss"],
        "drop_rate": round(drop_rate, 6),
        "retransmit_rate": round(ti["tx"]["total_retrans"] / ti["tx"]["data_segs_out"], 6)
        if ti["tx"]["data_segs_out"] else 0.0,
        "qdisc": qdisc,
        "tcp_info": ti,
    }


def _del_qdisc(link: _net.Veth) -> None:
    try:
        _net.tc("-n", link.tx_ns, "qdisc", "del", "dev", link.tx_if, "root")
    except (OSError, TimeoutError):
        pass


def _snapshot(link: _net.Veth, tx: socket.socket, rx: socket.socket, tbf) -> dict:
    return {
        "snmp": {"tx": _net.snmp(link.tx_ns), "rx": _net.snmp(link.rx_ns)},
        "tcp_info": {"tx": _net.tcp_info(tx), "rx": _net.tcp_info(rx)},
        "links": {"tx": _net.link_stats(link.tx_ns, link.tx_if), "rx": _net.link_stats(link.rx_ns, link.rx_if)},
        "qdisc": _qdisc_stats(link) if tbf is not None else None,
    }


def leftovers() -> list[str]:
    """Namespaces and temporary files this probe created that still exist (should always be empty)."""
    left = _net.leftover_netns(NS_PREFIX + "-")
    tmp = tempfile.gettempdir()
    try:
        left += sorted(os.path.join(tmp, f) for f in os.listdir(tmp) if f.startswith(FILE_PREFIX))
    except OSError:
        pass
    return left


def tracepoint_table(events: dict) -> dict:
    """What this kernel has of the tracepoints the counters use: id and fields, or absent."""
    out = {}
    for tp in dict.fromkeys(c.tracepoint for c in COUNTERS.values()):
        ev = events.get(tp)
        out[tp] = ({"present": True, "id": ev["id"], "fields": [f for f in ev["fields"] if not f.startswith("common_")]}
                   if ev else {"present": False})
    return out


#: Tries of the bottleneck run, each with half the queue of the one before, until the qdisc drops.
BOTTLENECK_TRIES = 3


def _transfer_dropping(name: str, kw: dict) -> dict:
    """The bottleneck run, repeated with a shorter queue while it drops nothing (the drop rate varies from run
    to run, and a run without drops counts no retransmission); ``tries`` says how many it took."""
    tbf = kw["bottleneck"]
    for attempt in range(1, BOTTLENECK_TRIES + 1):
        run = transfer(name=name, **dict(kw, bottleneck=tbf))
        run["tries"] = attempt
        if (run.get("qdisc") or {}).get("drops", 0) > 0:
            break
        tbf = Tbf(rate_mbit=tbf.rate_mbit, burst=tbf.burst, limit=max(tbf.burst, tbf.limit // 2))
    return run


#: Repetitions of a run that should be clean (no qdisc): the one with the fewest events is kept.
CLEAN_REPS = 3


def disturbance(run: dict) -> tuple[float, float]:
    """How much a run was disturbed, smallest first: segments retransmitted on a link that dropped
    nothing (timer retransmissions: the receiver was late), then every counted event per MiB."""
    drops = (run.get("qdisc") or {}).get("drops", 0)
    retrans = run.get("snmp", {}).get("tx", {}).get("Tcp.RetransSegs", 0)
    return (float(retrans if not drops else 0), float(sum(v for v in run["per_mib"].values() if v > 0)))


def least_disturbed(name: str, kw: dict, reps: int = CLEAN_REPS) -> dict:
    """``reps`` transfers of one setting; the least disturbed (:func:`disturbance`) is returned.

    On a shared host, noise only adds events: another flow's softirq run in the sender's or the
    receiver's context, a loss probe or RTO when the receiving thread was not scheduled in time.
    So the run with the fewest is the closest to the transfer alone (as the fastest of repeated
    timings is). ``reps`` and every repetition's (retransmitted segments, events per MiB) are kept."""
    runs = [transfer(name=name, **kw) for _ in range(reps)]
    keys = [disturbance(r) for r in runs]
    best = min(range(reps), key=lambda i: keys[i])
    run = runs[best]
    run["reps"] = {"n": reps, "kept": best, "disturbance": [list(k) for k in keys]}
    return run


#: The receiver's buffer of the grid transfers: fixed large (SO_RCVBUFFORCE before connect), so the receive
#: window never limits the sender. A window-limited sender also cuts skbs at the window's edge
#: (tcp_mss_split_point() -> tso_fragment(), tcp_write_xmit(), net/ipv4/tcp_output.c v6.18) and merges queued
#: ones when it opens (tcp_grow_skb()), which the model's tail rule leaves out; with the window open the rule
#: has nothing but the tail decision left to timing.
GRID_RCVBUF = 64 * MiB


def grid_settings(quick: bool) -> list[tuple[str, dict]]:
    """MSG_ZEROCOPY settings with the window open: the tail rule's check (the model fed each one's settings)."""
    n = 4 * MiB if quick else 16 * MiB
    cells = ((9000, 16 * 1024, True), (1500, 16 * 1024, True), (1500, 64 * 1024, True), (9000, 256 * 1024, False))
    return [(f"zc_{c // 1024}k_mtu{mtu}_tso_{'on' if tso else 'off'}",
             dict(nbytes=n, mtu=mtu, chunk=c, tso=tso, rcvbuf=GRID_RCVBUF)) for mtu, c, tso in cells]


#: The grid settings a quick live run measures: the book's usual send (64 KiB MSG_ZEROCOPY calls at MTU 1500, TSO
#: on). A quick run takes the rest of the grid from the recording (named in ``_missing``: each such transfer then
#: says ``"source": "recorded"``, its date and why; ``grid_live`` lists the live ones); a full run (``quick=False``,
#: what a recording is) measures every setting.
LIVE_GRID = ("zc_64k_mtu1500_tso_on",)
QUICK_REASON = "a quick run measures the grid's default setting only (kcount.LIVE_GRID)"


def measure_grid(settings, live, reason: str) -> tuple[list, dict]:
    """A grid's settings measured (each the least disturbed of its tries), or, where ``live`` (names; None: all)
    leaves one out, a placeholder the recording fills, with ``reason`` as its missing part's note. Returns (grid,
    missing)."""
    grid, missing = [], {}
    for name, kw in settings:
        if live is not None and name not in live:
            grid.append({"name": name})  # the recording's, in its place
            missing[f"grid.{name}"] = reason
        else:
            grid.append(least_disturbed(name, kw))
    return grid, missing


def measure(quick: bool = False) -> dict:
    check_root()
    try:
        events, how = available()
    except (OSError, TimeoutError) as e:
        raise ProbeUnavailable(f"tracepoints unreadable: {e}") from e
    runs = [_transfer_dropping(name, kw) if kw.get("bottleneck") else least_disturbed(name, kw)
            for name, kw in _runs(quick)]
    grid, missing = measure_grid(grid_settings(quick), LIVE_GRID if quick else None, QUICK_REASON)
    return measured(
        missing,
        runs=runs,
        grid=grid,
        tracepoints=tracepoint_table(events),
        receive_side=[tp for tp in RECEIVE_SIDE if tp in events],
        tracefs=how,
        quick=quick,
        grid_live=[g["name"] for g in grid if f"grid.{g['name']}" not in missing],
    )


# -- reading a result ------------------------------------------------------------------------------

SHOWN = ("tcp:tcp_sendmsg_locked", "net:net_dev_queue", "net:net_dev_xmit", "tcp:tcp_retransmit_skb",
         "skb:consume_skb", "skb:kfree_skb", "kmem:kmem_cache_alloc[skb]", "net:netif_receive_skb",
         "net:net_dev_xmit@ack")


def summarize(data: dict) -> list[str]:
    lines = []
    for r in data["runs"]:
        pm = r["per_mib"]
        head = (f"{r['name']:10s} {r['sender']} tso={'on' if r['tso'] else 'off'} {r['bytes'] // MiB} MiB "
                f"mss={r['mss']} drop={r['drop_rate']:.2%} {r['seconds']:.2f}s completions={r['completions']} "
                f"copied={r['copied']}")
        lines.append(head)
        lines.append("   per MiB: " + ", ".join(f"{k} {pm[k]:g}" for k in SHOWN if k in pm))
    return lines


def frame(data: dict):
    """One row per run and counter: per MiB, raw, idle estimate, method."""
    import pandas as pd

    rows = []
    for r in data["runs"]:
        for k, v in r["per_mib"].items():
            rows.append({"run": r["name"], "counter": k, "per_mib": v, "raw": r["raw"][k],
                         "idle_estimate": r["idle"][k]["estimate"], "method": r["method"][k],
                         "tso": r["tso"], "sender": r["sender"], "bytes": r["bytes"], "mss": r["mss"],
                         "drop_rate": r["drop_rate"]})
    return pd.DataFrame(rows)


# -- the kernel's counts of what a fragment-lifetime model follows --------------------------------

#: The quantities :func:`kernel_quantities` counts (what each means for a model, and which chapters
#: compare it, is the chapters' business: :mod:`fraglife.chapters.kit.compare`).
QUANTITIES = ("transmissions", "retransmits", "skbs_freed", "gso_segments", "completions")


def kernel_quantities(run: dict) -> dict[str, dict]:
    """Per MiB, the kernel's count of each of :data:`QUANTITIES` in ``run``.

    Each value: ``{"per_mib", "low", "high", "exact"}``; ``per_mib`` is the point
    estimate, ``low``/``high`` bracket it where the kernel count cannot be pinned
    to one meaning (else equal to it; ``exact`` False), ``per_mib`` is None when
    the run lacks the counters. How each is formed:

    - transmissions: ``net:net_dev_queue`` on the sending veth, one per skb TCP hands
      to the device (retransmissions included; before GSO and the qdisc);
    - retransmits: ``tcp:tcp_retransmit_skb`` less its failed attempts (``[err]``);
      the namespace's ``Tcp.RetransSegs`` (segments, not skbs) widens the bracket;
    - skbs_freed: struct sk_buff slab allocations in the window (all freed by its end),
      a fast-clone pair counted twice, less the receiver's ACKs and the zerocopy
      notification skbs (between the notifications read and the send calls);
    - gso_segments: with software GSO, packets the veth transmitted (and the qdisc
      dropped) less the skbs that passed whole; 0 without it;
    - completions: between the notifications read and the send-call ids they cover."""
    pm, mib = run["per_mib"], run["bytes"] / MiB
    out: dict[str, dict] = {}

    def put(name, value, low=None, high=None, exact=True):
        r = None if value is None else round(value, 3)
        out[name] = {"per_mib": r, "low": r if low is None else round(low, 3),
                     "high": r if high is None else round(high, 3), "exact": exact}

    def get(*keys):
        return None if any(k not in pm for k in keys) else [pm[k] for k in keys]

    v = get("net:net_dev_queue")
    put("transmissions", v and v[0])
    v = get("tcp:tcp_retransmit_skb", "tcp:tcp_retransmit_skb[err]")
    segs = run.get("snmp", {}).get("tx", {}).get("Tcp.RetransSegs")
    if v:
        skbs = v[0] - v[1]
        put("retransmits", skbs, low=min(skbs, segs / mib) if segs is not None else None,
            high=max(skbs, segs / mib) if segs is not None else None, exact=segs is None or segs / mib == skbs)
    else:
        put("retransmits", None)
    v = get("kmem:kmem_cache_alloc[skb]", "kmem:kmem_cache_alloc[fclone]", "net:net_dev_xmit@ack")
    if v:
        alloc, fclone, acks = v
        base = alloc + fclone - acks
        hi_n, lo_n = run["completions"] / mib, run["completion_ids"] / mib
        put("skbs_freed", base - (hi_n + lo_n) / 2, low=base - lo_n, high=base - hi_n, exact=False)
    else:
        put("skbs_freed", None)
    v = get("net:net_dev_xmit", "net:net_dev_queue", "net:net_dev_queue[gso]")
    if v:
        xmit, queued, gso_skbs = v
        drops = (run["qdisc"] or {}).get("drops", 0) / mib
        if not run["software_gso"]:
            put("gso_segments", 0.0)
        else:  # every GSO skb is cut (by the qdisc or before the device); the rest pass whole
            put("gso_segments", xmit + drops - (queued - gso_skbs), exact=run["tso"] is False)
    else:
        put("gso_segments", None)
    if run["sender"] == "zerocopy":
        lo, hi = run["completions"] / mib, run["completion_ids"] / mib
        put("completions", (lo + hi) / 2, low=lo, high=hi, exact=False)
    else:
        put("completions", 0.0)
    return out

"""Receive with page_pool: a TCP transfer into a veth whose receiving end runs XDP, counted per MiB
and per CPU.

What is measured. A veth pair between two network namespaces; on the receiving end
an XDP program that passes every packet (:mod:`fraglife.probes._xdp`), which makes
veth receive through its NAPI and copy every packet into memory from its
``page_pool`` (``veth_xdp_rcv_skb()`` -> ``veth_convert_skb_to_xdp_buff()`` ->
``skb_pp_cow_data()``: a TCP skb is a clone, so its head is locked and it is
always copied; drivers/net/veth.c, net/core/skbuff.c, v6.12). A TCP transfer of
``bytes`` crosses it. The sending thread is pinned to one CPU and the reading
thread to another, and the ACKs the sending veth receives are steered to the
sender's CPU by RPS (:func:`fraglife.probes._net.flow`): every transmit, NAPI poll
and softirq of the data path then runs on the sender's CPU (the "NAPI CPU"), every
``recvmsg()`` on the reader's.

Counters (perf events per CPU, :mod:`fraglife.probes._perf`; ``method`` says how
each is narrowed to the transfer, :mod:`fraglife.probes._counting`):

- ``page_pool:page_pool_state_hold`` / ``page_pool_state_release``: a page
  entering the pool from the page allocator (``page_pool_alloc_pages`` slow
  path) and leaving it for good (``page_pool_return_page()``: the ring was
  full or the page could not be recycled); recycled pages fire neither
  (net/core/page_pool.c). Idle-subtracted (the pool's address is not known
  before the run). ``CONFIG_PAGE_POOL_STATS`` is off here, so there is no
  count of recycled pages.
- ``net:napi_gro_receive_entry`` (every packet veth's NAPI hands to GRO) and
  ``net:netif_receive_skb`` (every skb going up the stack, after GRO), both on
  the receiving veth (filter ``name``); ``napi:napi_poll`` on it (``dev_name``):
  NAPI polls, per CPU: where NAPI ran.
- ``skb:consume_skb`` / ``skb:kfree_skb`` (idle-subtracted), and
  ``skb:consume_skb[deferred]``: those called from ``skb_defer_free_flush()``
  (filter on the caller's address, ``location``), i.e. skbs another CPU handed
  back to the CPU that allocated them (``skb_attempt_defer_free()``,
  net/core/skbuff.c).
- ``skb:skb_copy_datagram_iovec`` in the reading thread (``common_pid``): one
  per skb (or part of one) ``tcp_recvmsg()`` copied to user space.
- ``kmem:kmem_cache_free[skbuff_head_cache]`` (idle-subtracted): frees of
  sk_buff structs to the slab, e.g. heads TCP stole when it coalesced an skb
  into the one before (``kfree_skb_partial()``).

Samples (every hit's raw fields, :class:`fraglife.probes._perf.Sampler`, only
while the transfer runs, on the two CPUs the flow is pinned to): the callers of ``consume_skb``/``kfree_skb`` per CPU
(``free_sites``, kernel symbols), the received packets' ``len``, ``data_len``,
``truesize`` and ``nr_frags`` (``packets``), and the skbs the reader copied.
Following each skb the reader copied (its address) to its next free event
gives ``reader_frees``: on which CPU, from which function, the skbs
``tcp_recvmsg()`` consumed were freed. A TCP receive skb is freed by
``tcp_eat_recv_skb()`` -> ``skb_attempt_defer_free()``: queued back to
``skb->alloc_cpu`` (the NAPI CPU, where ``skb_pp_cow_data()`` built it) and
freed there by ``skb_defer_free_flush()`` -> ``napi_consume_skb()``, which fires
``consume_skb``; or, when that CPU's list is full
(``net.core.skb_defer_max``) or it is the reader's own, freed at once by
``kfree_skb_napi_cache()``, which fires no tracepoint. So a consumed skb with
no free event was freed on the reader's CPU; the bracket ``[low, high]`` of the
reader's share says how sure that is (low: frees seen there, high: plus those
not seen at all).

Runs (:data:`RUNS`): GRO off and on (the receiving veth); a receive buffer
fixed at 256 KiB (the receive queue then holds less than the pool's 128-page
cache and 256-entry ring, so pages can recycle); and sender, NAPI and reader
all on one CPU (``skb->alloc_cpu`` is then the reader's own, so nothing is
deferred). Each is the least disturbed of ``reps`` transfers.

Why not ``skb_defer_max`` = 0 for the "nothing deferred" case: since "net: use
llist for sd->defer_list" (Eric Dumazet, ``<20250928084934.3266948-3-edumazet@google.com>``;
the behaviour below matches it, the release that merged it was not checked)
``skb_attempt_defer_free()`` increments the CPU's ``defer_count`` before
comparing it with the limit, also when it then frees at once, and only
``skb_defer_free_flush()`` resets it, and only when the list holds an skb. With
the limit at 0 nothing is ever listed, so the count grows with every consumed
skb; put back to 64, the count is already past it and the CPU never takes a
deferred skb again, until the limit is raised above the count for a while
(seen here: after one transfer at 0, every later transfer freed all its skbs
on the reader's CPU; raising the limit to 10^6 for one transfer re-armed it).
A probe must not leave the machine that way, so it changes no global knob.

Buffer facts recorded with each run (``buffers``): the MTU and the largest MTU
veth allows with XDP (``max_mtu``), the features of both ends after XDP (veth
turns TSO off on the sending end while its peer runs XDP, so the sender's stack
segments in software: ``veth_fix_features()``), and the packets' truesize:
``skb_pp_cow_data()`` puts a packet of up to about 3.5 KiB whole in one
page_pool fragment, ``napi_build_skb()`` sets ``truesize`` = fragment + 256
(``SKB_TRUESIZE``), so ``truesize`` - 256 is the fragment a packet takes and
4096 over it the packets one page can hold.

Cleanup: the namespaces (with the veth pair and the XDP program) go on every
path, and the next probe's sweep deletes them if this process is killed
(:mod:`fraglife.probes._cleanup`); the sender's CPU set is given back.
"""

from __future__ import annotations

import bisect
import os
import shutil
from collections import Counter as Tally

from ..params import Param
from . import _counting, _net, _perf, _xdp
from ._base import ProbeUnavailable, measured
from ._counting import Counter

NAME = "kcount_rx"
TITLE = "Receive with page_pool: TCP into veth with XDP, counts per MiB and on which CPU skbs are freed"
REQUIRED = ("runs", "tracepoints", "cpus")

NS_PREFIX = "fraglife-rx"
GROUPS = ("net", "skb", "page_pool", "kmem", "napi")
MiB = 1 << 20
CHUNK = 256 * 1024
DEFER_MAX = "/proc/sys/net/core/skb_defer_max"
SAMPLE_PAGES = 2048  # 8 MiB per CPU per sampled event: a 64 MiB transfer's packets fit with room
SKB_TRUESIZE_OVERHEAD = 256  # SKB_DATA_ALIGN(sizeof(struct sk_buff)) = 256 for the 224-byte sk_buff here
PAGE = 4096

#: Counter keys: a tracepoint ``group:event``, with ``[variant]`` for a narrower filter of the same one.
COUNTERS: dict[str, Counter] = {
    "page_pool:page_pool_state_hold": Counter("page_pool:page_pool_state_hold", None, False,
                                              "pages entering the page_pool from the page allocator"),
    "page_pool:page_pool_state_release": Counter("page_pool:page_pool_state_release", None, False,
                                                 "pages leaving the page_pool for good"),
    "net:napi_gro_receive_entry": Counter("net:napi_gro_receive_entry", 'name == "{rx_if}"', True,
                                          "packets veth's NAPI handed to GRO", ("name",)),
    "net:netif_receive_skb": Counter("net:netif_receive_skb", 'name == "{rx_if}"', True,
                                     "skbs going up the receiving stack (after GRO)", ("name",)),
    "napi:napi_poll": Counter("napi:napi_poll", 'dev_name == "{rx_if}"', True,
                              "NAPI polls of the receiving veth", ("dev_name",)),
    "skb:consume_skb": Counter("skb:consume_skb", None, False, "consume_skb() / napi_consume_skb()"),
    "skb:consume_skb[deferred]": Counter("skb:consume_skb", "{deferred}", False,
                                         "of those, from skb_defer_free_flush(): frees handed back to "
                                         "the allocating CPU", ("location",)),
    "skb:kfree_skb": Counter("skb:kfree_skb", None, False, "kfree_skb_reason() (drops)"),
    "skb:skb_copy_datagram_iovec": Counter("skb:skb_copy_datagram_iovec", "common_pid == {rx_tid}", True,
                                           "skbs (or parts) the reader copied to user space"),
    "kmem:kmem_cache_free[skbuff_head_cache]": Counter("kmem:kmem_cache_free", 'name == "skbuff_head_cache"',
                                                       False, "sk_buff structs freed to the slab", ("name",)),
}

#: (name, settings): GRO on the receiving veth, SO_RCVBUF (None: autotuned), everything on one CPU
RUNS = (
    ("gro_off", dict(gro=False)),
    ("gro_on", dict(gro=True)),
    ("gro_off_rcvbuf_256k", dict(gro=False, rcvbuf=256 * 1024)),
    ("gro_off_same_cpu", dict(gro=False, same_cpu=True)),
)
_P = {
    "nbytes": Param("nbytes", int, 64 * MiB, "bytes to transfer", lo=CHUNK, hi=1 << 30),
    "mtu": Param("mtu", int, 1500, "veth MTU", lo=576, hi=3506),
    "rcvbuf": Param("rcvbuf", int, 256 * 1024, "receiver's SO_RCVBUF", lo=4096, hi=256 * MiB),
    "gro": Param("gro", bool, False, "GRO on the receiving veth"),
    "same_cpu": Param("same_cpu", bool, False, "reader on the sender's CPU"),
}


def _check() -> None:
    if os.geteuid() != 0:
        raise ProbeUnavailable("counting tracepoints, loading XDP and creating network namespaces need root "
                               "(CAP_PERFMON, CAP_BPF, CAP_NET_ADMIN)")
    if not shutil.which("ip"):
        raise ProbeUnavailable("iproute2 `ip` is not installed")


_events: dict = {}


def available() -> dict:
    """This kernel's tracepoints of :data:`GROUPS` with their raw layouts (cached)."""
    if not _events:
        _events.update(_perf.tracefs_layouts(GROUPS))
    return _events


def cpus() -> tuple[int, int]:
    """(sender/NAPI CPU, reader CPU): the first two online CPUs (both the same on one CPU)."""
    online = _perf.online_cpus()
    return online[0], online[1] if len(online) > 1 else online[0]


def _histogram(values, top: int = 12) -> dict:
    """{value: count} of the ``top`` most common values (as strings), plus "other"."""
    t = Tally(values)
    out = {str(k): n for k, n in t.most_common(top)}
    rest = sum(t.values()) - sum(out.values())
    if rest:
        out["other"] = rest
    return out


def follow_reader_frees(copies, frees, site: str = "skb_defer_free_flush") -> dict:
    """Which of the skbs the reader consumed were handed back to another CPU to be freed.

    ``copies``: (time, skbaddr) of the reader's ``skb_copy_datagram_iovec`` hits; consecutive hits on
    one address are one skb read in parts. ``frees``: (time, cpu, skbaddr, caller) of every
    ``consume_skb``/``kfree_skb`` hit. A consumed skb was deferred if its address is freed from
    ``site`` after its last copy and before it is copied again (an address is reused only once
    the skb is freed, and a deferred free is the next thing that can happen to it). Every other
    consumed skb was freed at once where it was read, by ``kfree_skb_napi_cache()``, which fires no
    tracepoint; ``first_other_free`` says where the address was next freed for those that were
    (a later life of the address, for information). Returns ``{"skbs", "deferred": {cpu: n},
    "not_deferred", "first_other_free": {cpu: {caller: n}}}``."""
    skbs: list[tuple[int, int]] = []  # (time of the last copy, address)
    for t, addr in sorted(copies):
        if skbs and skbs[-1][1] == addr:
            skbs[-1] = (t, addr)
        else:
            skbs.append((t, addr))
    by_addr: dict[int, tuple[list[int], list[tuple[int, str]]]] = {}
    for t, cpu, addr, caller in sorted(frees):
        times, what = by_addr.setdefault(addr, ([], []))
        times.append(t)
        what.append((cpu, caller))
    copied_at: dict[int, list[int]] = {}
    for t, addr in skbs:
        copied_at.setdefault(addr, []).append(t)
    deferred, other = Tally(), {}
    for t, addr in skbs:
        times, what = by_addr.get(addr, ([], []))
        i = bisect.bisect_right(times, t)
        later = copied_at[addr]
        j = bisect.bisect_right(later, t)
        if i < len(times) and (j == len(later) or times[i] < later[j]):
            cpu, caller = what[i]
            if caller == site:
                deferred[str(cpu)] += 1
                continue
            other.setdefault(str(cpu), Tally())[caller] += 1
    n_def = sum(deferred.values())
    return {"skbs": len(skbs), "deferred": dict(sorted(deferred.items())), "not_deferred": len(skbs) - n_def,
            "first_other_free": {c: dict(v.most_common(5)) for c, v in sorted(other.items())}}


def transfer(nbytes: int = 64 * MiB, *, mtu: int = 1500, gro: bool = False, rcvbuf: int | None = None,
             same_cpu: bool = False, name: str | None = None, samples: bool = True) -> dict:
    """One transfer into a veth with XDP_PASS on its receiving end; returns the run's record (see the
    module docstring). ``same_cpu`` puts the reader on the sender's (and NAPI's) CPU. Raises
    ProbeUnavailable without root, OSError/TimeoutError when it fails; the namespaces are gone in
    every case."""
    nbytes = _P["nbytes"].check(nbytes)
    mtu = _P["mtu"].check(mtu)
    gro = _P["gro"].check(gro)
    same_cpu = _P["same_cpu"].check(same_cpu)
    if rcvbuf is not None:
        rcvbuf = _P["rcvbuf"].check(rcvbuf)
    _check()
    try:
        events = available()
    except (OSError, TimeoutError) as e:
        raise ProbeUnavailable(f"tracepoints unreadable: {e}") from e
    napi_cpu, reader_cpu = cpus()
    if same_cpu:
        reader_cpu = napi_cpu
    block = b"\x5a" * CHUNK

    def send(fl: _net.Flow) -> dict:
        sent = 0
        while sent < nbytes:
            n = min(CHUNK, nbytes - sent)
            fl.tx.sendall(block[:n])
            sent += n
        return {"bytes": nbytes}

    samples = {"consume": ("skb:consume_skb", None, SAMPLE_PAGES), "kfree": ("skb:kfree_skb", None, 256),
               "copy": ("skb:skb_copy_datagram_iovec", "common_pid == {rx_tid}", 512),
               "packets": ("net:napi_gro_receive_entry", 'name == "{rx_if}"', SAMPLE_PAGES)} if samples else {}
    mib = nbytes / MiB
    raw = _counting.counted_transfer(send, prefix=NS_PREFIX, counters=COUNTERS, events=events, per=lambda _: mib,
                                     samples=samples, mtu=mtu, xdp=True, gro=gro, rcvbuf=rcvbuf,
                                     sender_cpu=napi_cpu, reader_cpu=reader_cpu)
    run = {
        "name": name, "bytes": nbytes, "mtu": mtu, "gro": gro, "rcvbuf": rcvbuf, "same_cpu": same_cpu,
        "skb_defer_max": _read_int(DEFER_MAX),
        "cpus": {"napi": napi_cpu, **{k: v for k, v in raw["cpus"].items() if k != "sender"}},
        "xdp": raw["xdp"], "features": raw["features"], "link": raw["link"],
        "seconds": raw["seconds"], "idle_seconds": raw["idle_seconds"],
        "counts": raw["counts"], "unit": "per MiB sent", "skipped": raw["skipped"],
        "snmp": raw["snmp"], "tcp_info": raw["tcp_info"],
    }
    if samples:
        run.update(_from_samples(raw["samples"], raw["lost"], events, _perf.Symbols(), mib))
    run["skbs"] = _skb_fates(run, mib)
    return run


def _from_samples(drained: dict, lost: dict, events: dict, symbols: _perf.Symbols, mib: float) -> dict:
    frees, sites = [], {}
    for key, tp in (("consume", "skb:consume_skb"), ("kfree", "skb:kfree_skb")):
        lay = events[tp]["layout"] if tp in events else None
        for t, cpu, raw in drained.get(key, []):
            addr, loc = _perf.decode(lay, raw, ("skbaddr", "location"))
            site = symbols.name(loc)
            frees.append((t, cpu, addr, site))
            sites.setdefault(f"{key}@cpu{cpu}", Tally())[site] += 1
    copies = []
    if "copy" in drained:
        lay = events["skb:skb_copy_datagram_iovec"]["layout"]
        copies = [(t, _perf.decode(lay, raw, ("skbaddr",))[0]) for t, _, raw in drained["copy"]]
    packets = {}
    if "packets" in drained:
        lay = events["net:napi_gro_receive_entry"]["layout"]
        rows = [(cpu, *_perf.decode(lay, raw, ("len", "data_len", "truesize", "nr_frags")))
                for _, cpu, raw in drained["packets"]]
        n = len(rows) or 1
        truesizes = [r[3] for r in rows]
        common = Tally(truesizes).most_common(1)
        frag = common[0][0] - SKB_TRUESIZE_OVERHEAD if common else None
        packets = {
            "n": len(rows), "per_cpu": dict(Tally(f"cpu{r[0]}" for r in rows)),
            "mean_len": round(sum(r[1] for r in rows) / n, 1),
            "linear": sum(1 for r in rows if r[2] == 0),
            "truesize": _histogram(truesizes), "nr_frags": _histogram(r[4] for r in rows),
            "len": _histogram((r[1] for r in rows), top=6),
            "fragment_bytes": frag,
            "packets_per_page": (PAGE // frag) if frag and 0 < frag <= PAGE else None,
        }
    per_mib = {k: {s: round(c / mib, 2) for s, c in v.most_common(10)} for k, v in sorted(sites.items())}
    follow = follow_reader_frees(copies, frees) if copies else None
    return {"samples": {"lost": lost, "counts": {k: len(v) for k, v in drained.items()}},
            "free_sites": per_mib, "packets": packets, "reader_frees": follow}


def _skb_fates(run: dict, mib: float) -> dict:
    """What became of the received skbs, per MiB: packets, merged by GRO, coalesced by TCP into the skb
    before (freed in NAPI on the NAPI CPU), consumed by the reader and where those were freed."""
    c = run["counts"]

    def v(key):
        return c[key]["value"] if key in c else None

    packets, up = v("net:napi_gro_receive_entry"), v("net:netif_receive_skb")
    snmp = run["snmp"]["rx"]
    out = {"packets": packets, "skbs_up_the_stack": up,
           "merged_by_gro": None if packets is None or up is None else round(packets - up, 3),
           "coalesced_by_tcp": round(snmp.get("TcpExt.TCPRcvCoalesce", 0) / mib, 3),
           "coalesced_in_backlog": round(snmp.get("TcpExt.TCPBacklogCoalesce", 0) / mib, 3)}
    f = run.get("reader_frees")
    if f:
        skbs = f["skbs"] or 1
        missed = run["samples"]["lost"].get("consume", 0)  # each could have been a deferred free
        here = {"low": max(0, f["not_deferred"] - missed), "high": f["not_deferred"]}
        out["consumed_by_reader"] = round(f["skbs"] / mib, 3)
        out["deferred_to"] = {f"cpu{c}": round(n / mib, 3) for c, n in f["deferred"].items()}
        out["freed_on_reader_cpu"] = {k: round(v / mib, 3) for k, v in here.items()}
        out["share_freed_on_reader_cpu"] = {k: round(v / skbs, 4) for k, v in here.items()}
    return out


def measure(quick: bool = False) -> dict:
    _check()
    try:
        events = available()
    except (OSError, TimeoutError) as e:
        raise ProbeUnavailable(f"tracepoints unreadable: {e}") from e
    nbytes, reps = (8 * MiB, 1) if quick else (64 * MiB, 3)
    runs = [_counting.least_disturbed(lambda kw=kw, n=n: transfer(nbytes, name=n, **kw), reps) for n, kw in RUNS]
    napi_cpu, reader_cpu = cpus()
    return measured(
        runs=runs,
        cpus={"napi": napi_cpu, "reader": reader_cpu, "online": _perf.online_cpus()},
        tracepoints=_counting.tracepoint_table(COUNTERS, events),
        max_skb_frags=_read_int("/proc/sys/net/core/max_skb_frags"),
        quick=quick,
    )


def _read_int(path: str) -> int | None:
    try:
        return int(open(path).read().strip())
    except (OSError, ValueError):
        return None


def leftovers() -> list[str]:
    """This probe's namespaces that still exist (after a run: none)."""
    return _net.leftover_netns(NS_PREFIX + "-")


# -- reading a result --------------------------------------------------------------------------------

SHOWN = ("page_pool:page_pool_state_hold", "page_pool:page_pool_state_release", "net:napi_gro_receive_entry",
         "net:netif_receive_skb", "skb:consume_skb", "skb:consume_skb[deferred]", "skb:skb_copy_datagram_iovec")


def summarize(data: dict) -> list[str]:
    lines = []
    for r in data["runs"]:
        c = r["counts"]
        lines.append(f"{r['name']}: {r['bytes'] // MiB} MiB, MTU {r['mtu']}, GRO {'on' if r['gro'] else 'off'}, "
                     f"skb_defer_max {r['skb_defer_max']}, rcvbuf {r['rcvbuf'] or 'auto'}, {r['seconds']:.2f} s")
        lines.append("   per MiB: " + ", ".join(f"{k.split(':')[1]} {c[k]['value']:g} {c[k]['per_cpu']}"
                                                for k in SHOWN if k in c))
        s = r["skbs"]
        if "share_freed_on_reader_cpu" in s:
            sh = s["share_freed_on_reader_cpu"]
            lines.append(f"   consumed by the reader {s['consumed_by_reader']:g}/MiB; freed on the reader's CPU "
                         f"{sh['low']:.0%}-{sh['high']:.0%}; coalesced by TCP {s['coalesced_by_tcp']:g}/MiB")
    return lines


def frame(data: dict):
    """One row per run, counter and CPU: value per MiB, bracket, method."""
    import pandas as pd

    rows = []
    for r in data["runs"]:
        for k, c in r["counts"].items():
            rows.append({"run": r["name"], "counter": k, "per_mib": c["value"], "low": c["low"], "high": c["high"],
                         **{f"cpu{cpu}": v for cpu, v in zip(r["cpus"]["counted"], c["per_cpu"])},
                         "method": c["method"]})
    return pd.DataFrame(rows)

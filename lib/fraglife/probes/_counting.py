"""Counting one transfer's tracepoints, per CPU, narrowed to the transfer: the rules the
``kcount_rx``, ``kcount_copy`` and ``kcount_filemap`` probes share.

A counter is narrowed to the transfer in one of two ways (its ``method``):

- ``filter: EXPR``: an ftrace filter that names the transfer (its device, its
  threads' task ids, its file's inode); the count is exact, ``low == high``;
- ``idle-subtracted``: counted system-wide, less the idle rate (windows
  before and after, :func:`fraglife.probes._perf.windowed`) times the
  transfer's duration (at least 0). On a shared machine noise only adds events,
  so the raw count is the upper bound (``high``) and the raw count less the
  busier idle window's rate times the duration the lower one (``low``, at least
  0). ``per_cpu`` subtracts each CPU's own idle rate (each at least 0).

Each probe repeats a setting and keeps the least disturbed repetition
(:func:`least_disturbed`), as kcount does.
"""

from __future__ import annotations

from dataclasses import dataclass

MiB = 1 << 20


@dataclass(frozen=True)
class Counter:
    """A tracepoint and a filter template (``str.format`` fields given by the probe); ``flow``
    says whether the filter names the transfer; ``needs`` are fields the filter uses."""

    tracepoint: str
    filter: str | None
    flow: bool
    what: str
    needs: tuple[str, ...] = ()


def specs(counters: dict[str, Counter], events: dict, subs: dict) -> tuple[dict, dict, dict]:
    """(perf specs key -> (id, filter), method per key, skipped key -> reason) for this kernel."""
    out, method, skipped = {}, {}, {}
    for key, c in counters.items():
        ev = events.get(c.tracepoint)
        if ev is None:
            skipped[key] = f"tracepoint {c.tracepoint} does not exist on this kernel"
            continue
        fields = ev.get("fields") or ev.get("layout") or {}
        missing = [f for f in c.needs if f not in fields]
        if missing:
            skipped[key] = f"{c.tracepoint} has no field {', '.join(missing)} on this kernel"
            continue
        try:
            flt = c.filter.format(**subs) if c.filter else None
        except KeyError as e:
            skipped[key] = f"nothing to fill {e} in the filter here"
            continue
        out[key] = (ev["id"], flt)
        method[key] = f"filter: {flt}" if c.flow else ("idle-subtracted" + (f"; filter: {flt}" if flt else ""))
    return out, method, skipped


def counts(window: dict, method: dict, rejected: dict, per: float) -> dict:
    """Each counter of a :func:`fraglife.probes._perf.windowed` result as ``{"value", "low", "high",
    "per_cpu", "raw", "idle", "idle_estimate", "method"}``, values divided by ``per`` (MiB sent,
    messages, ...). ``per_cpu`` is the value's split over CPUs (idle-subtracted per CPU)."""
    out = {}
    secs = window["seconds"]
    spans = window["idle_seconds"]
    for key, raw in window["raw"].items():
        m = method[key]
        if key in rejected:
            m = f"idle-subtracted ({rejected[key]})"
        if m.startswith("idle-subtracted") and not spans:
            m = "unfiltered, nothing subtracted (no idle windows)" + m[len("idle-subtracted"):]
        subtract = m.startswith("idle-subtracted")
        est = window["estimate"][key]
        idle = window["idle"][key]
        if subtract:
            busiest = max(sum(idle[w]) / spans[w] for w in spans) * secs
            value = max(0.0, sum(raw) - sum(est)) / per  # more idle than counted: nothing to attribute
            low, high = max(0.0, sum(raw) - busiest) / per, sum(raw) / per
            cpu = [max(0.0, r - e) / per for r, e in zip(raw, est)]
        else:
            value = low = high = sum(raw) / per
            cpu = [r / per for r in raw]
        out[key] = {"value": round(value, 3), "low": round(min(low, value), 3), "high": round(max(high, value), 3),
                    "per_cpu": [round(c, 3) for c in cpu], "raw": raw, "idle": idle,
                    "idle_estimate": est, "method": m}
    return out


def disturbance(run: dict) -> tuple[float, float, float]:
    """Smallest first: segments retransmitted (the receiver or the link was late), then how busy the
    machine was around the run (events per second in the idle windows, all counters), then every
    counted event per unit (noise only adds events)."""
    retrans = (run.get("snmp") or {}).get("tx", {}).get("Tcp.RetransSegs", 0)
    spans = run.get("idle_seconds") or {}
    busy = sum(sum(c["idle"].get(w, [])) / s for c in run["counts"].values() for w, s in spans.items() if s)
    return float(retrans), round(float(busy), 3), float(sum(max(0.0, c["value"]) for c in run["counts"].values()))


def least_disturbed(make, reps: int) -> dict:
    """``reps`` runs of ``make()``; the least disturbed (:func:`disturbance`), with ``reps`` =
    {n, kept, disturbance of each, values: each counter's value in each run}: their spread is
    the run-to-run variation the kept run's bracket does not show."""
    runs = [make() for _ in range(reps)]
    keys = [disturbance(r) for r in runs]
    best = min(range(reps), key=lambda i: keys[i])
    run = runs[best]
    run["reps"] = {"n": reps, "kept": best, "disturbance": [list(k) for k in keys],
                   "values": {k: [r["counts"].get(k, {}).get("value") for r in runs] for k in run["counts"]}}
    return run


def delta(after: dict, before: dict, keep=()) -> dict:
    """Nonzero differences of two counter snapshots (and the ``keep`` keys even when zero)."""
    out = {}
    for k, v in after.items():
        d = v - before.get(k, 0)
        if d or k in keep:
            out[k] = d
    return out


def tracepoint_table(counters: dict[str, Counter], events: dict) -> dict:
    """What this kernel has of the tracepoints ``counters`` use: id and fields, or absent."""
    out = {}
    for tp in dict.fromkeys(c.tracepoint for c in counters.values()):
        ev = events.get(tp)
        if not ev:
            out[tp] = {"present": False}
            continue
        fields = ev.get("fields") or ev.get("layout") or {}
        out[tp] = {"present": True, "id": ev["id"], "fields": [f for f in fields if not f.startswith("common_")]}
    return out


def site_filter(field: str, names) -> str | None:
    """A filter matching ``field`` (a caller's address: ``call_site``, ``location``) inside any of the
    kernel functions ``names`` (address ranges from /proc/kallsyms); None if none is found."""
    from . import _perf

    ranges = _perf.kallsyms(names)
    if not ranges:
        return None
    return " || ".join(f"({field} >= {a:#x} && {field} < {b:#x})" for a, b in ranges.values())


#: The functions that allocate a struct sk_buff from the slab (the ``call_site`` of kmem_cache_alloc).
SKB_ALLOC_SITES = ("__alloc_skb", "skb_clone", "__build_skb", "__napi_build_skb")
SNMP_KEEP = ("Tcp.RetransSegs", "Tcp.InSegs", "Tcp.OutSegs", "TcpExt.TCPRcvCoalesce", "TcpExt.TCPBacklogCoalesce",
             "TcpExt.TCPOFOQueue", "TcpExt.TCPRcvQDrop", "TcpExt.TCPZeroWindowDrop", "TcpExt.DelayedACKs")
TCP_INFO_KEEP = ("snd_mss", "rcv_mss", "total_retrans", "segs_out", "segs_in", "rcv_space", "snd_cwnd")


def _link_facts(link) -> dict:
    import json

    from . import _net

    out = {}
    for side, ns, dev in (("tx", link.tx_ns, link.tx_if), ("rx", link.rx_ns, link.rx_if)):
        d = json.loads(_net.ip("-n", ns, "-d", "-j", "link", "show", "dev", dev))[0]
        out[side] = {k: d.get(k) for k in ("mtu", "min_mtu", "max_mtu", "num_rx_queues", "num_tx_queues",
                                            "gso_max_size", "gro_max_size")}
    return out


def counted_transfer(send, *, prefix: str, counters: dict[str, Counter], events: dict, per,
                     samples: dict | None = None, mtu: int = 1500, xdp: bool = False, gro: bool = False,
                     tso: bool | None = None, rcvbuf: int | None = None, nodelay: bool = False,
                     zerocopy: bool = False, sender_cpu: int | None = None, reader_cpu: int | None = None,
                     subs: dict | None = None) -> dict:
    """One TCP transfer over a fresh veth pair between two namespaces, counted.

    ``send(flow)`` sends (from the calling thread, pinned to ``sender_cpu``) and returns a dict of
    its own facts, or raises; the counting window ends when the reader has read what ``send``
    returned as ``bytes`` and the sender's data is acknowledged. ``per(result)`` is what the counts
    are divided by (MiB, messages). ``xdp`` attaches an XDP_PASS program to the receiving end; ``gro``
    (receiving end) and ``tso`` (sending end; None: leave it) are set and read back. ``counters``
    are narrowed with filters filled from ``subs`` plus ``tx_if``, ``rx_if``, ``tx_tid``, ``rx_tid``,
    ``sport``, ``dport``, ``gso_len`` (one frame with its Ethernet header), ``alloc_sites`` (skb slab
    allocations by ``call_site``) and ``deferred`` (``location`` in skb_defer_free_flush).
    ``samples``: key -> (tracepoint, filter template, pages): raw samples, taken only while ``send``
    runs. Returns the raw record: ``send`` (its facts), ``window``, ``counts``, ``samples``,
    ``lost``, ``snmp``, ``tcp_info``, ``features``, ``xdp``, ``link``, ``cpus``, ``skipped``,
    ``seconds``. The namespaces (and the XDP program) are gone on every path."""
    import threading
    from contextlib import ExitStack

    from . import _net, _perf, _xdp

    samples = samples or {}
    with ExitStack() as stack:
        stack.enter_context(_net.one_transfer_at_a_time())
        link = stack.enter_context(_net.veth_pair(prefix, sender_ns=True, mtu=mtu))
        xdp_state = _xdp.attach_pass(link.rx_ns, link.rx_if) if xdp else None
        want_tx = {} if tso is None else {"tso": tso}
        features = {
            "rx": _net.in_netns(link.rx_ns, lambda: _net.device_features(link.rx_if, {"gro": gro})),
            "tx": _net.in_netns(link.tx_ns, lambda: _net.device_features(link.tx_if, want_tx)),
        }
        if features["rx"]["gro"] != gro or (tso is not None and features["tx"]["tso"] != tso):
            raise OSError(f"veth features did not take: asked gro={gro} tso={tso}, read back {features}")
        fl = stack.enter_context(_net.flow(link, sender_cpu=sender_cpu, reader_cpu=reader_cpu, rcvbuf=rcvbuf,
                                           nodelay=nodelay, zerocopy=zerocopy))
        sport, dport = fl.ports
        fill = {"tx_if": link.tx_if, "rx_if": link.rx_if, "tx_tid": threading.get_native_id(),
                "rx_tid": fl.drain.tid, "sport": sport, "dport": dport, "gso_len": mtu + 14,
                "alloc_sites": site_filter("call_site", SKB_ALLOC_SITES),
                "deferred": site_filter("location", ["skb_defer_free_flush"]), **(subs or {})}
        fill = {k: v for k, v in fill.items() if v is not None}
        specs_, method, skipped = specs(counters, events, fill)
        ctr = stack.enter_context(_perf.Counters(specs_))
        samplers = {}
        # samples on the two CPUs the flow is pinned to (each sampler maps pages x CPUs of locked memory)
        where = sorted({sender_cpu, reader_cpu}) if sender_cpu is not None and reader_cpu is not None else ctr.cpus
        for key, (tp, flt, pages) in samples.items():
            if tp in events:
                samplers[key] = stack.enter_context(
                    _perf.Sampler(events[tp]["id"], flt.format(**fill) if flt else None, pages, cpus=where))
        snmp0 = {"tx": _net.snmp(link.tx_ns), "rx": _net.snmp(link.rx_ns)}
        ti0 = {"tx": _net.tcp_info(fl.tx), "rx": _net.tcp_info(fl.rx)}

        def action():
            for s in samplers.values():
                s.enable()
            facts = send(fl) or {}
            if "bytes" in facts:
                fl.drain.wait(facts["bytes"], 30.0)
            _net.wait_acked(fl.tx, 30.0)
            for s in samplers.values():
                s.disable()
            return facts

        ctr.enable()  # idle windows only when a counter is not narrowed to the transfer by its filter
        window = _perf.windowed(ctr, action, idle=any(not m.startswith("filter") for m in method.values())
                                or bool(ctr.rejected))
        ctr.disable()
        snmp1 = {"tx": _net.snmp(link.tx_ns), "rx": _net.snmp(link.rx_ns)}
        ti1 = {"tx": _net.tcp_info(fl.tx), "rx": _net.tcp_info(fl.rx)}
        drained = {k: s.drain() for k, s in samplers.items()}
        lost = {k: s.lost for k, s in samplers.items()}
        facts = _link_facts(link)
        rps = fl.rps
    result = window["result"]
    unit = per(result)
    ti = {side: {k: ti1[side].get(k) for k in TCP_INFO_KEEP} for side in ("tx", "rx")}
    for side in ("tx", "rx"):
        for k in ("segs_out", "segs_in"):
            ti[side][k] -= ti0[side][k]
    return {
        "send": result, "seconds": round(window["seconds"], 4), "idle_seconds": window["idle_seconds"],
        "counts": counts(window, method, ctr.rejected, unit), "skipped": skipped,
        "samples": drained, "lost": lost,
        "snmp": {side: delta(snmp1[side], snmp0[side], SNMP_KEEP) for side in ("tx", "rx")},
        "tcp_info": ti, "features": features, "xdp": xdp_state, "link": facts,
        "cpus": {"sender": sender_cpu, "reader": reader_cpu, "counted": ctr.cpus, "rps_acks": rps},
    }

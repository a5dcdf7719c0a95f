"""Chapter 07 (book/07_kmalloc_sends.ipynb): kmalloc'd data in MSG_SPLICE_PAGES sends.

A kernel service that built a message in kmalloc'd memory cannot splice it today: slab pages
fail ``sendpage_ok()`` and ``skb_splice_from_iter()`` refuses them with -EIO. It copies instead,
into ``page_frag_cache`` fragments or whole pages; a destructor on the message's owner would let
it send the kmalloc'd memory itself. Per message: the copy (``memcpy`` probe), the allocations
(cited figures), the refcount atomics of the send (replay engine, :mod:`fraglife.model.workloads`'
``kmalloc_copy``, ``kmalloc_pages``, ``kmalloc_send``), and the memory held in flight (Little's
law). Charts are in :mod:`fraglife.views.kmalloc_sends`; the contract is in :mod:`fraglife.chapters`.
"""

from __future__ import annotations

import math
from functools import cached_property
from typing import Iterable, Mapping

import numpy as np
import pandas as pd

from ..claims import Claim
from ..model import costs, engine, trace as T, workloads
from ..model.costs import SLAB_CURVE, slab_ns  # noqa: F401  (the cited SLUB curve, where this chapter reads it)
from ..params import Params
from . import kit

KiB, MiB = 1 << 10, 1 << 20
PAGE = T.PAGE_SIZE
SLAB_MAX = workloads.KMALLOC_MAX_CACHE_SIZE
FRAG_PAGE = T.PAGE_FRAG_CACHE_MAX_SIZE
#: the designs compared: the generator and the policy it is replayed under
DESIGNS = {
    "copy to page_frag": ("kmalloc_copy", "page_ref"),
    "copy to whole pages": ("kmalloc_pages", "page_ref"),
    "destructor": ("kmalloc_send", "owner_skb"),
    "kmalloc page refs": ("kmalloc_send", "page_ref"),  # today, above KMALLOC_MAX_CACHE_SIZE only
}
COPIES = ("copy to page_frag", "copy to whole pages")
TODAY_LABEL = "copy to page_frag"
SIZES = (64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384, 32768, 65536)
LATENCIES_US = (5.0, 20.0, 50.0, 200.0, 1000.0, 5000.0)
MIXES = {
    # the kmalloc'd pieces of the senders below (SENDERS), one each
    "headers": (4, 24, 32, 48, 72, 1440, 2048),
    # every power of two from 64 B to 64 KiB, one each
    "log_uniform": SIZES,
}
#: An owner object: a refcount, a destructor and its argument, from kmalloc-64 (an assumption of the design).
OWNER_BYTES = 64
# kmalloc() size classes up to KMALLOC_MAX_CACHE_SIZE on x86_64 (mm/slab_common.c kmalloc_info[], v6.12)
KMALLOC_CLASSES = (8, 16, 32, 64, 96, 128, 192, 256, 512, 1024, 2048, 4096, 8192)
#: Upper bounds for the library-mode claims test (tests/test_claims.py).
SMALL = {"bytes_sent": 512 * KiB}
CLAIMS_EXAMPLES = 10

#: Kernel services and the kmalloc'd (or otherwise slab) pieces they send, with what they do today (v6.12).
SENDERS = (
    ("SunRPC server (NFS server)", "TCP record marker", 4, "copies it into a page_frag_alloc() fragment, "
     "splices that with the reply's pages, page_frag_free() after", "net/sunrpc/svcsock.c svc_tcp_sendmsg()"),
    ("nvme-tcp host", "data PDU header (struct nvme_tcp_data_pdu)", 24, "PDUs come from a page_frag_cache; "
     "MSG_SPLICE_PAGES cleared when !sendpages_ok()", "drivers/nvme/host/tcp.c, include/linux/nvme-tcp.h"),
    ("Ceph messenger v2", "frame preamble (CEPH_PREAMBLE_LEN)", 32, "kvecs sent without MSG_SPLICE_PAGES "
     "(copied); page data only if sendpage_ok()", "net/ceph/messenger_v2.c, include/linux/ceph/messenger.h"),
    ("iSCSI initiator", "basic header segment (ISCSI_HDR_LEN)", 48, "header sent from its buffer without "
     "MSG_SPLICE_PAGES (copied); data pages spliced", "drivers/scsi/iscsi_tcp.c, include/scsi/iscsi_proto.h"),
    ("nvme-tcp host", "command capsule PDU (8 B header + 64 B command)", 72, "page_frag_alloc() per request, "
     "spliced", "drivers/nvme/host/tcp.c nvme_tcp_init_request()"),
    ("rxrpc (AFS)", "DATA packet (1412 B + 28 B wire header)", 1440, "built in page_frag_alloc_align() memory, "
     "spliced", "net/rxrpc/txbuf.c, net/rxrpc/protocol.h RXRPC_JUMBO_DATALEN"),
    ("SunRPC client (NFS client)", "call buffer from rpc_malloc() (up to RPC_BUFFER_MAXSIZE)", 2048,
     "xprt_sock_sendmsg() sends without MSG_SPLICE_PAGES: copied", "net/sunrpc/sched.c, net/sunrpc/socklib.c"),
)
#: What happens to a slab page in a MSG_SPLICE_PAGES send, step by step (v6.12).
KERNEL_SITES = (
    ("sendpage_ok()", "!PageSlab(page) && page_count(page) >= 1", "include/linux/net.h"),
    ("skb_splice_from_iter()", "extracts the pages, then for each: WARN_ON_ONCE(!sendpage_ok(page)) and -EIO; "
     "its kernel-doc says such pages are copied, the code does not copy", "net/core/skbuff.c"),
    ("kmalloc() above KMALLOC_MAX_CACHE_SIZE (8 KiB)", "a compound page from the page allocator, not PageSlab, "
     "kfree() is folio_put(): sendpage_ok() passes and frags take page refs", "mm/slub.c ___kmalloc_large_node(), "
     "free_large_kmalloc()"),
    ("senders that check", "ceph: MSG_SPLICE_PAGES only if sendpage_ok(); nvme-tcp, drbd: cleared when "
     "!sendpages_ok(); TLS WARNs", "net/ceph/messenger_v1.c, messenger_v2.c; drivers/nvme/host/tcp.c; "
     "drivers/block/drbd/drbd_main.c; net/tls/tls_sw.c"),
    ("the copy when the flag is cleared", "tcp_sendmsg_locked() copies into the socket's page_frag "
     "(sk_page_frag_refill(): a 32 KiB page reused while it is the only user), page_ref_inc() per new frag",
     "net/ipv4/tcp.c, net/core/sock.c skb_page_frag_refill()"),
    ("page_frag_cache", "refill: one order-3 page, page_ref_add(PAGE_FRAG_CACHE_MAX_SIZE); a fragment: "
     "pagecnt_bias--; used up: page_ref_sub_and_test(pagecnt_bias), the page reused in place if that was the "
     "last ref", "mm/page_alloc.c __page_frag_alloc_align(), include/linux/mm_types.h"),
)


# ---------------------------------------------------------------- unit costs
def kmalloc_bytes(size: int) -> int:
    """What a kmalloc(size) occupies: its size class, or a compound page of get_order(size) above 8 KiB."""
    if size <= SLAB_MAX:
        return next(c for c in KMALLOC_CLASSES if c >= size)
    return PAGE << max(0, math.ceil(math.log2(-(-size // PAGE))))


def memcpy_curve(mode: str) -> tuple[np.ndarray, np.ndarray, object]:
    """(bytes, ns per copy) from the ``memcpy`` probe, live if it can, and the result (for its note)."""
    r = kit.probe("memcpy", mode)
    f = r.frame()
    return f.index.to_numpy(dtype=float), f["ns_per_copy"].to_numpy(dtype=float), r


def memcpy_ns(size: float, curve) -> float:
    """ns to copy ``size`` bytes: log-log interpolation of the probe's curve, flat below its smallest size."""
    b, ns = curve[0], curve[1]
    return float(np.exp(np.interp(np.log(max(size, b[0])), np.log(b), np.log(ns))))


# ---------------------------------------------------------------- the replays
def config(params: Mapping, size: int) -> dict:
    """Generator settings for messages of ``size`` bytes: the run's transfer, its TCP, and the skbs in flight
    over the latency at the service's rate (the generator's clock counts skbs)."""
    cfg = workloads.Config(mss=params["mss"])
    skb_bytes = min(cfg.size_goal, T.MAX_SKB_FRAGS * size)  # a frag per message or page, at most 17 per skb
    skb_us = skb_bytes * 8 / (params["rate_gbit"] * 1e3)
    return {"bytes_sent": max(params["bytes_sent"], size), "mss": params["mss"], "send_size": size,
            "loss_rate": params["loss_rate"], "cpus": params["cpus"], "seed": params["seed"],
            "inflight": max(1, min(4096, round(params["latency_us"] / skb_us))), "txc_lag": 1}


def per_message(params: Mapping, size: int, units: costs.UnitCosts) -> list[dict]:
    """Per design at one message size: refcount atomics and their time, page allocations, from replays."""
    out = []
    cfg = config(params, size)
    traces: dict[str, tuple] = {}
    for design, (workload, policy) in DESIGNS.items():
        if design == "kmalloc page refs" and size <= SLAB_MAX:
            continue  # today's kernel refuses slab memory: nothing to replay
        if workload not in traces:
            traces[workload] = workloads.generate_with_stats(workload, **cfg)
        tr, st = traces[workload]
        led = engine.replay(tr, policy)
        msgs = st["sendmsg"]
        ns = costs.total(costs.price_ledger(led, units, cfg["bytes_sent"])) * cfg["bytes_sent"] / MiB
        out.append({"design": design, "bytes": size, "messages": msgs, "atomics": led.atomics / msgs,
                    "refs_ns": ns / msgs, "page_allocs": st["page_allocs"] / msgs, "clean": led.clean,
                    "uaf_pages": led.uaf_pages, "trace_errors": led.trace_errors})
    return out


def replays(params: Mapping, units: costs.UnitCosts, sizes: Iterable[int] = SIZES) -> pd.DataFrame:
    return pd.DataFrame([r for s in sizes for r in per_message(params, s, units)])


# ---------------------------------------------------------------- time and memory per message
def in_flight(size: float, rate_gbit: float, latency_us: float) -> float:
    """Messages in flight (Little's law): messages per second x seconds each is held."""
    return rate_gbit * 1e9 / 8 / size * latency_us * 1e-6


def cost_ns(design: str, size: float, refs: Mapping, curve, units: costs.UnitCosts, rate_gbit: float,
            latency_us: float) -> dict:
    """CPU ns per message of ``design`` by cause. ``refs`` has the design's ``refs_ns`` and ``page_allocs`` per
    message (from the replays). The data buffer is kmalloc'd in every design: the copies free it at once (one
    object outstanding), the destructor and today's large-kmalloc splice hold it for the latency."""
    n = in_flight(size, rate_gbit, latency_us)
    page = units["page_alloc_ns"]
    held = design in ("destructor", "kmalloc page refs")
    data = slab_ns(n if held else 1) if size <= SLAB_MAX else page
    row = {"copy": 0.0, "data buffer": data, "page allocations": 0.0, "owner object": 0.0,
           "refcount atomics": refs["refs_ns"]}
    if design in COPIES:
        row["copy"] = memcpy_ns(size, curve)
        row["page allocations"] = refs["page_allocs"] * page
    elif design == "destructor":
        row["owner object"] = slab_ns(n)
    row["total"] = sum(row.values())
    return row


def held_bytes(design: str, size: float, rate_gbit: float, latency_us: float) -> float:
    """Bytes held in flight (Little's law): rate x latency, scaled by what each message occupies; a page_frag
    page lives until its last fragment is done, so one more cache page is held."""
    base = rate_gbit * 1e9 / 8 * latency_us * 1e-6
    if design == "copy to page_frag":
        per = FRAG_PAGE / (FRAG_PAGE // size * size) if size <= FRAG_PAGE else 1.0
        return base * per + FRAG_PAGE
    if design == "copy to whole pages":
        return base * (-(-size // PAGE) * PAGE) / size
    owner = OWNER_BYTES if design == "destructor" else 0
    return base * (kmalloc_bytes(int(size)) + owner) / size


def interp_refs(table: pd.DataFrame, design: str, size: float) -> dict:
    """A design's per-message refs and page allocations at any size: log interpolation of the replays."""
    t = table[table.design == design].sort_values("bytes")
    x = np.log(t["bytes"].to_numpy(dtype=float))
    s = math.log(min(max(size, t["bytes"].min()), t["bytes"].max()))
    return {k: float(np.interp(s, x, t[k].to_numpy(dtype=float))) for k in ("refs_ns", "page_allocs", "atomics")}


def costs_over(table: pd.DataFrame, curve, units, rate_gbit: float, latency_us: float,
               sizes: Iterable[float]) -> pd.DataFrame:
    """ns per message and per MiB and bytes held, per design and size (tidy)."""
    rows = []
    for size in sizes:
        for design in DESIGNS:
            if design == "kmalloc page refs" and size <= SLAB_MAX:
                continue
            refs = interp_refs(table, design, size)
            c = cost_ns(design, size, refs, curve, units, rate_gbit, latency_us)
            rows.append({"design": design, "bytes": size, **c, "ns_per_mib": c["total"] * MiB / size,
                         "held_bytes": held_bytes(design, size, rate_gbit, latency_us),
                         "in_flight": in_flight(size, rate_gbit, latency_us)})
    return pd.DataFrame(rows)


def crossover(table: pd.DataFrame, curve, units, rate_gbit: float, latency_us: float) -> float:
    """The smallest message size at which the destructor costs no more CPU than copying into a page_frag
    (log-spaced sizes from 16 B to 64 KiB; inf if it never does)."""
    sizes = np.unique(np.round(np.logspace(4, 16, 97, base=2)))
    c = costs_over(table, curve, units, rate_gbit, latency_us, sizes)
    piv = c.pivot_table(index="bytes", columns="design", values="total")
    won = piv[piv["destructor"] <= piv["copy to page_frag"]]
    return float(won.index.min()) if len(won) else math.inf


def mix_sizes(params: Mapping) -> tuple[int, ...]:
    return (params["msg_bytes"],) if params["mix"] == "fixed" else MIXES[params["mix"]]


class Results:
    """Chapter 07's analyses for one parameter set, each computed once on first use."""

    def __init__(self, params: Mapping):
        self.P = Params.of(params)

    @cached_property
    def units(self) -> costs.UnitCosts:
        return kit.unit_costs(self.P.measurements, "alloc")

    @cached_property
    def memcpy(self):
        return memcpy_curve(self.P.measurements)

    @cached_property
    def unit_table(self) -> pd.DataFrame:
        u, curve = self.units, self.memcpy
        rows = [{"cost": r["name"], "ns": r["value"], "source": r["source"], "detail": r["detail"]}
                for r in u.rows() if r["name"] in ("local_atomic_ns", "line_transfer_ns", "page_alloc_ns",
                                                   "slab_alloc_free_ns", "slab_alloc_free_held_ns")]
        label = costs.measured_label(curve[2].source)
        for size in (64, 1024, 8192, 65536):
            rows.append({"cost": f"memcpy of {size} B", "ns": memcpy_ns(size, curve), "source": label,
                         "detail": "memcpy probe: glibc memcpy, cache-hot, median of repeats"})
        return pd.DataFrame(rows)

    @cached_property
    def table(self) -> pd.DataFrame:
        """Replays at every size of the grid and of the run's mix."""
        sizes = sorted(set(SIZES) | {s for s in mix_sizes(self.P) if s >= SIZES[0]})
        return replays(self.P, self.units, sizes)

    @cached_property
    def per_size(self) -> pd.DataFrame:
        """ns per message and bytes held, per design and size of the grid, at the run's rate and latency."""
        return costs_over(self.table, self.memcpy, self.units, self.P.rate_gbit, self.P.latency_us, SIZES)

    @cached_property
    def crossover_grid(self) -> pd.DataFrame:
        """The crossover size at each latency of the grid, at the run's rate (and at the run's latency)."""
        lat = kit.with_run(LATENCIES_US, self.P.latency_us)
        return pd.DataFrame([{"latency_us": w, "crossover_bytes": crossover(self.table, self.memcpy, self.units,
                                                                            self.P.rate_gbit, w)} for w in lat])

    @cached_property
    def crossover(self) -> float:
        g = self.crossover_grid
        return float(g[g.latency_us == self.P.latency_us].crossover_bytes.iloc[0])

    @cached_property
    def mix(self) -> pd.DataFrame:
        """The run's message mix: per design, ns per message and per MiB, atomics, bytes held (equal weights)."""
        sizes = mix_sizes(self.P)
        c = costs_over(self.table, self.memcpy, self.units, self.P.rate_gbit, self.P.latency_us, sizes)
        rows = []
        for design, g in c.groupby("design", sort=False):
            if len(g) < len(sizes):
                continue  # today's large-kmalloc splice covers only part of the mix
            atomics = np.mean([interp_refs(self.table, design, s)["atomics"] for s in sizes])
            rows.append({"design": design, "ns_per_message": g.total.mean(),
                         "ns_per_mib": g.total.sum() * MiB / g.bytes.sum(), "atomics_per_message": atomics,
                         "held_kib": g.held_bytes.mean() / KiB})
        return pd.DataFrame(rows)

    @cached_property
    def senders(self) -> pd.DataFrame:
        """The in-tree senders' pieces with the run's cost of copying against the destructor."""
        rows = []
        for who, piece, size, today, source in SENDERS:
            c = costs_over(self.table, self.memcpy, self.units, self.P.rate_gbit, self.P.latency_us, [size])
            c = c.set_index("design").total
            side = "destructor" if c["destructor"] <= c[TODAY_LABEL] else "copy"
            rows.append({"sender": who, "piece": piece, "bytes": size, "today": today,
                         "copy ns": round(c[TODAY_LABEL], 1), "destructor ns": round(c["destructor"], 1),
                         "cheaper": side, "source": f"{source}, v6.12"})
        return pd.DataFrame(rows)

    @cached_property
    def refused(self) -> dict[str, object]:
        """The tiny trace of a slab splice, replayed today and with the destructor."""
        tr = slab_splice_trace()
        return {"today": engine.replay(tr, "page_ref"), "destructor": engine.replay(tr, "owner_skb")}

    @cached_property
    def headline(self) -> dict:
        m = self.mix.set_index("design")
        return {
            "crossover_bytes": self.crossover,
            "copy_ns_per_message": float(m.loc[TODAY_LABEL, "ns_per_message"]),
            "destructor_ns_per_message": float(m.loc["destructor", "ns_per_message"]),
            "pages_ns_per_message": float(m.loc["copy to whole pages", "ns_per_message"]),
            "copy_held_kib": float(m.loc[TODAY_LABEL, "held_kib"]),
            "destructor_held_kib": float(m.loc["destructor", "held_kib"]),
            "pages_held_kib": float(m.loc["copy to whole pages", "held_kib"]),
            "probes": kit.measured(self.units),
        }


def slab_splice_trace() -> np.ndarray:
    """A kernel service passes 2 KiB of kmalloc'd memory to sendmsg(MSG_SPLICE_PAGES), kfree()s it when the call
    returns, and the skb is freed later."""
    tb = T.TraceBuilder()
    tb.alloc(0, buf=0, pfn=0, pages=1, folio_pages=1, kind=T.MEM_SLAB)
    tb.skb_alloc(0, skb=0)
    tb.attach(0, skb=0, buf=0, pfn=0, off=0, length=2048)
    tb.buf_release(0, buf=0)
    tb.free(1, skb=0)
    return tb.build()


def walk(trace: np.ndarray, policy: str) -> pd.DataFrame:
    """The twin stepped through a small trace: per event, accepted or refused, and the refcounts after it."""
    from ..model.policies import POLICIES
    from ..model.engine_twin import Replay

    r = Replay(POLICIES[policy], **T.sizes(trace))
    rows = []
    for ev in trace:
        ok = r.step(*(int(ev[k]) for k in T.EVENT.names))
        counts = " ".join(f"{kind} {ident}: {n}" for (kind, ident), n in r.count.items() if n)
        rows.append({"event": T.OP_NAMES[int(ev["op"])], "accepted": "yes" if ok else "no (-EIO)",
                     "refcounts": counts or "-", "pages alive": sum(r.alive.values())})
    return pd.DataFrame(rows)


def kernel_sites() -> pd.DataFrame:
    return pd.DataFrame(list(KERNEL_SITES), columns=["where", "what it does", "source (v6.12)"])


def headline(**params) -> dict:
    """Chapter 07's result as one record: the crossover size at the run's rate and latency, and per message of the
    run's mix the CPU time and the memory held of each design."""
    return Results(params).headline


def panel_data(params: Mapping, *, mix: str, msg_bytes: int, rate_gbit: float, latency_us: float) -> pd.DataFrame:
    """ns per message by cause for one setting (replays at 512 KiB, sizes of the grid and the mix)."""
    p = dict(params, mix=mix, msg_bytes=msg_bytes, rate_gbit=rate_gbit, latency_us=latency_us,
             bytes_sent=min(params["bytes_sent"], 512 * KiB))
    units = kit.unit_costs(params["measurements"], "alloc")
    curve = memcpy_curve(params["measurements"])
    sizes = mix_sizes(p)
    grid = sorted({min(SIZES, key=lambda g: abs(math.log(g / max(s, 1)))) for s in sizes} | {64, 65536})
    table = replays(p, units, grid)
    c = costs_over(table, curve, units, rate_gbit, latency_us, sizes)
    return c.groupby("design", sort=False)[["copy", "data buffer", "page allocations", "owner object",
                                            "refcount atomics", "total", "held_bytes"]].mean().reset_index()


# ---------------------------------------------------------------- prose
def _size(b: float) -> str:
    if math.isinf(b):
        return "no size up to 64 KiB"
    return f"{b / KiB:.1f} KiB" if b >= KiB else f"{b:.0f} B"


def _slab_knee() -> tuple[int, float]:
    """Where the cited SLUB curve steps up (the last N before its largest rise) and how much dearer an
    allocation is at its far end than there."""
    n, ns = zip(*SLAB_CURVE)
    i = int(np.argmax(np.diff(ns)))
    return n[i], ns[-1] / ns[i]


def costs_remark(R: Results) -> str:
    t = R.per_size.set_index(["design", "bytes"]).total
    knee, dearer = _slab_knee()
    small = (f"At {R.P.rate_gbit:g} Gbit/s and {R.P.latency_us:g} us in flight a 64 B message costs "
             f"**{t['copy to page_frag', 64]:.0f} ns** copied into a page_frag and **{t['destructor', 64]:.0f} ns** "
             f"with a destructor")
    return (f"{small}; an 8 KiB one **{t['copy to page_frag', 8192]:.0f}** and **{t['destructor', 8192]:.0f} ns**. "
            f"In the cited measurement an allocation costs {dearer:.1f} times as much once more than {knee} objects "
            f"of its cache are outstanding. The crossover here: **{_size(R.crossover)}**.")


def memory_remark(R: Results) -> str:
    kib = R.per_size.set_index(["design", "bytes"]).held_bytes.xs(256, level="bytes") / KiB
    owned = f"kmalloc'd with their owners ({OWNER_BYTES} bytes each, from kmalloc-{OWNER_BYTES})"
    return (f"Held in flight at {R.P.rate_gbit:g} Gbit/s for {R.P.latency_us:g} us, 256 B messages copied into whole "
            f"pages hold **{kib['copy to whole pages']:.0f} KiB**, into a page_frag "
            f"{kib['copy to page_frag']:.0f} KiB, {owned} {kib['destructor']:.0f} KiB.")


def senders_remark(R: Results) -> str:
    s = R.senders
    copy = s[s.cheaper == "copy"]
    dest = s[s.cheaper == "destructor"]
    return (f"At this rate and latency {len(copy)} of the {len(s)} pieces are cheaper to copy "
            f"({', '.join(f'{b} B' for b in copy.bytes)}) and {len(dest)} cheaper to send with a destructor"
            f"{' (' + ', '.join(f'{b} B' for b in dest.bytes) + ')' if len(dest) else ''}.")


def conclusion(R: Results) -> str:
    h = R.headline
    g = R.crossover_grid
    today, dest = R.refused["today"], R.refused["destructor"]
    return "\n".join([
        f"- **Today.** The model's replay of one slab splice: {today.trace_errors} refused frag, "
        f"{today.page_atomics} page refs; with a destructor the same trace replays clean, {dest.owner_atomics} "
        f"owner atomics.",
        f"- **Crossover.** The destructor pays from **{_size(R.crossover)}** messages at {R.P.rate_gbit:g} Gbit/s "
        f"and {R.P.latency_us:g} us in flight, and from {_size(g.crossover_bytes.min())} to "
        f"{_size(g.crossover_bytes.max())} over latencies from {g.latency_us.min():g} to {g.latency_us.max():g} us.",
        f"- **The run's mix.** **{h['copy_ns_per_message']:.0f} ns** per message copied into a page_frag, "
        f"**{h['pages_ns_per_message']:.0f}** into whole pages and **{h['destructor_ns_per_message']:.0f}** with "
        f"the destructor, holding {h['copy_held_kib']:.0f}, {h['pages_held_kib']:.0f} and "
        f"{h['destructor_held_kib']:.0f} KiB in flight.",
        f"- **The senders.** Their kmalloc'd pieces are {_piece_sizes()}; {_sides(R)}",
    ])


def _piece_sizes() -> str:
    """The SENDERS pieces' sizes in words: headers (under 1 KiB) and buffers."""
    sizes = sorted(size for _, _, size, _, _ in SENDERS)
    head = [b for b in sizes if b < KiB]
    body = [b for b in sizes if b >= KiB]
    parts = [f"headers of {head[0]} to {head[-1]} bytes"] if head else []
    parts += [f"buffers of {body[0] / KiB:.1f} to {body[-1] / KiB:.1f} KiB"] if body else []
    return " and ".join(parts)


def _sides(R: Results) -> str:
    s = R.senders
    dest = s[s.cheaper == "destructor"]
    if dest.empty:
        return f"at this rate and latency all {len(s)} are cheaper to copy."
    return (f"at this rate and latency {len(s) - len(dest)} of {len(s)} are cheaper to copy, and "
            f"{', '.join(f'{b} B' for b in dest.bytes)} cheaper with a destructor.")


# ---------------------------------------------------------------- claims
def _fixed_costs(R: Results, size: int) -> pd.DataFrame:
    """ns per message at ``size`` over the latency grid and at the range's rates (1 and 400 Gbit/s)."""
    rows = []
    for rate in (1.0, R.P.rate_gbit, 400.0):
        for w in (1.0, *LATENCIES_US, 100_000.0):
            c = costs_over(R.table, R.memcpy, R.units, rate, w, [size]).set_index("design").total
            rows.append({"rate": rate, "latency_us": w, "copy_ns": c[TODAY_LABEL], "destructor_ns": c["destructor"]})
    return pd.DataFrame(rows)


def _refused_today(R: Results):
    today, dest = R.refused["today"], R.refused["destructor"]
    return (today.trace_errors == 1 and today.page_atomics == 0 and dest.clean and dest.page_atomics == 0), {
        "today_refused": today.trace_errors, "destructor_owner_atomics": dest.owner_atomics}


def _large_kmalloc_splices(R: Results):
    t = R.table.set_index(["design", "bytes"])
    big = t.loc[("kmalloc page refs", 16384)]
    small = engine.replay(workloads.generate("kmalloc_send", **config(R.P, SLAB_MAX)), "page_ref")
    return bool(big.clean) and small.trace_errors > 0, {"16KiB_clean": bool(big.clean),
                                                          "8KiB_refused_frags": small.trace_errors}


def _copy_wins_at_64(R: Results):
    f = _fixed_costs(R, 64)
    return bool((f.copy_ns < f.destructor_ns).all()), {"worst_margin_ns": float((f.destructor_ns - f.copy_ns).min())}


def _destructor_wins_at_16k(R: Results):
    f = _fixed_costs(R, 16384)
    return bool((f.destructor_ns < f.copy_ns).all()), {"worst_margin_ns": float((f.copy_ns - f.destructor_ns).min())}


def _whole_pages_waste(R: Results):
    ratios = {s: held_bytes("copy to whole pages", s, 1.0, 1.0) / held_bytes("destructor", s, 1.0, 1.0)
              for s in (64, 256, 1024)}
    return all(r >= 3.5 for r in ratios.values()), {str(k): round(v, 2) for k, v in ratios.items()}


def _ledgers_balance(R: Results):
    t = R.table
    return bool(t.clean.all()), {"replays": len(t), "unclean": int((~t.clean).sum())}


CLAIMS = (
    Claim("slab_memory_is_refused_today",
          "Today's kernel refuses a slab object in a MSG_SPLICE_PAGES send (-EIO, no frag, no ref); with a "
          "destructor on its owner the same send replays clean with no page ref.",
          "holds", _refused_today),
    Claim("large_kmalloc_splices_today",
          "A 16 KiB kmalloc'd message (over KMALLOC_MAX_CACHE_SIZE, 8 KiB) splices today with page refs on its "
          "compound page; one of 8 KiB is refused.",
          "holds", _large_kmalloc_splices),
    Claim("copying_64_bytes_beats_the_destructor",
          "A 64 B message costs less CPU copied into a page_frag than sent with a destructor, at every rate from 1 "
          "to 400 Gbit/s and every latency from 1 us to 100 ms.",
          "holds", _copy_wins_at_64),
    Claim("the_destructor_beats_copying_16k",
          "A 16 KiB message costs less CPU sent with a destructor than copied into a page_frag, at every rate "
          "from 1 to 400 Gbit/s and every latency from 1 us to 100 ms.",
          "holds", _destructor_wins_at_16k),
    Claim("whole_pages_waste_memory_below_a_page",
          "Copying messages of 64 B to 1 KiB into whole pages holds at least 3.5 times the bytes in flight that the "
          "destructor's kmalloc'd messages and owners hold, at any rate and latency.",
          "holds", _whole_pages_waste),
    Claim("every_ledger_balances",
          "Every replay of the three designs ends clean: no reference held, no page left, no page freed under a "
          "live frag, no refused frag.",
          "holds", _ledgers_balance),
)
#: The claims the conference talk shows (fraglife talk).
TALK_CLAIMS = ("slab_memory_is_refused_today", "copying_64_bytes_beats_the_destructor",
               "the_destructor_beats_copying_16k")

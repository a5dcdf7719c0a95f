"""Chapter 01 (book/01_refcount_removal.ipynb): the refs today's stack takes on frag memory, in count and time.

Analyses over :mod:`fraglife.model` (workloads, engine, twin, cost model) and
two probes (``atomics`` for unit costs, ``kcount`` for the kernel's own
counts of a real transfer); the chapter's :class:`Results`, ``headline``,
``CLAIMS`` and ``conclusion``. Charts are in
:mod:`fraglife.views.refcount_removal`; the contract is in
:mod:`fraglife.chapters`.
"""

from __future__ import annotations

from functools import cached_property
from typing import Iterable, Mapping

import numpy as np
import pandas as pd

from .. import answers, cited
from ..claims import Claim
from ..model import costs, engine, kernels, replays, trace as T, workloads
from ..model.ledger import Ledger
from ..model.policies import POLICIES
from ..model.engine_twin import Replay
from ..model.replays import KIND_LABELS, KINDS, Replays, config, per_mib, timing
from ..params import ParamError, Params
from . import kit
from .kit import compare

KiB = 1 << 10
MiB = 1 << 20
TODAY = workloads.TODAY
TX_TODAY = tuple(w for w in TODAY if w != "rx_gro")
#: The versioned rule without which a kernel has no devmem TX (model/kernels.py).
DEVMEM_TX_RULE = "frag_ref_get_netmem"


def sig3(x):
    """Numbers (a scalar, Series or frame) to three significant figures: what a table of times shows."""
    f = np.vectorize(lambda v: float(f"{v:.3g}") if np.isfinite(v) else v, otypes=[float])
    if isinstance(x, pd.DataFrame):
        return x.apply(lambda col: pd.Series(f(col.to_numpy(dtype=float)), index=col.index))
    if isinstance(x, pd.Series):
        return pd.Series(f(x.to_numpy(dtype=float)), index=x.index, name=x.name)
    return float(f(float(x)))


def today_workloads(release: str) -> tuple[str, ...]:
    """Today's workloads on kernel ``release``: devmem TX only where it exists (6.16+)."""
    return tuple(w for w in TODAY if w != "devmem_send" or kernels.follows(release, DEVMEM_TX_RULE))
#: The policies in the model's order: every chart gives each one colour, the same in every chapter.
POLICY_ORDER = tuple(POLICIES)
#: The model's events in order (the charts' legend order).
EVENT_ORDER = tuple(T.OP_NAMES)
# The grids the chapter shows; every other parameter is the run's.
LOSS_RATES = (0, 0.005, 0.01, 0.02, 0.05)
GRID_FOLIO_PAGES = (1, 16, 512)
#: The loss x folio grid's policies: page_ref_all is page_ref wherever frags stay in a folio, as every frag of
#: today's workloads does (claim today_frags_stay_in_a_folio), so the grid leaves it out.
GRID_POLICIES = tuple(p for p in POLICIES if p != "page_ref_all")
SPAN_FRAG_SIZES = (4096, 16384, 65536, 262144)
SPAN_FOLIO_PAGES = (1, 4, 16, 64)
OVERRIDE_RTT_US = (5, 10, 15, 20, 25, 40, 60)
#: Upper bounds for the library-mode claims test (tests/test_claims.py).
SMALL = {"bytes_sent": 512 * KiB, "send_size": 256 * KiB}
#: Examples per run of the library-mode claims test (each builds a whole Results).
CLAIMS_EXAMPLES = 12
#: Where the model is known not to follow a kernel count of chapter 01's transfers, and why.
EXPECTED_GAPS = {
    ("bottleneck", "completions"): (
        "Behind the bottleneck `sendmsg()` waits for send-buffer space (`sk_stream_wait_memory()`), pushing "
        "the skb it was filling first; the next call then finds no unsent tail skb whose `ubuf_info` it could "
        "extend (`msg_zerocopy_realloc(sk, size, skb_zcopy(tcp_write_queue_tail(sk)))`, net/ipv4/tcp.c "
        "`tcp_sendmsg_locked()`, v6.18 and v6.12) and allocates a new one. The model never waits, so it always extends "
        "up to 512 KiB."),
    ("bottleneck", "transmissions"): (
        "A sender limited by its congestion window transmits part of an skb and cuts it "
        "(`tso_fragment()`, net/ipv4/tcp_output.c, v6.18 and v6.12); the model sends whole skbs."),
    ("bottleneck", "skbs_freed"): (
        "Each `tso_fragment()` cut allocates a new write-queue skb, and its transmission another clone; the "
        "model's whole skbs make fewer."),
    ("bottleneck", "retransmits"): (
        "The skbs `tso_fragment()` cut are smaller than a size goal, so a run of lost segments spans more of "
        "them and takes more retransmitted skbs; the model's skbs are whole."),
}


def policy_table(runs: Replays, workload: str, units: costs.UnitCosts | None = None,
                 gbit: float = 100) -> pd.DataFrame:
    """One row per policy for one workload: atomics by kind and bounces per MiB, time (the book's one definition,
    :func:`fraglife.model.replays.lifetime_cost`), memory, violations."""
    rows = []
    for name in POLICIES:
        led = runs.ledger(workload, name)
        if units is not None:
            row = replays.lifetime_cost(runs, workload, name, units, gbit)
        else:
            row = {"policy": name, **per_mib(led, runs.nbytes), "pages_peak": led.pages_peak,
                   "uaf_pages": led.uaf_pages, "leaked_refs": led.leaked_refs}
        row.pop("workload", None)
        rows.append({**row, "clean": led.clean})
    return pd.DataFrame(rows)


def by_kind(runs: Replays, workload_names: Iterable[str] = TODAY, policy: str = "page_ref") -> pd.DataFrame:
    """Atomics per MiB by refcount kind, one row per workload (tidy: workload, kind, per_mib)."""
    rows = []
    for w in workload_names:
        led = runs.ledger(w, policy)
        for k in KINDS:
            rows.append({"workload": w, "kind": KIND_LABELS[k], "per_mib": getattr(led, k) / (runs.nbytes / MiB)})
    return pd.DataFrame(rows)


def by_event(runs: Replays, workload_names: Iterable[str] = TODAY, policy: str = "page_ref") -> pd.DataFrame:
    """Frag-memory ref atomics per MiB by event type, one block per workload (tidy: workload, event, per_mib)."""
    rows = []
    for w in workload_names:
        for event, n in runs.ledger(w, policy).by_op().items():
            rows.append({"workload": w, "event": event, "ref_atomics": n, "per_mib": n / (runs.nbytes / MiB)})
    return pd.DataFrame(rows)


def event_matrix(events: pd.DataFrame) -> pd.DataFrame:
    """by_event() as workload x event, every event type present (zero where none was paid)."""
    m = events.pivot_table(index="workload", columns="event", values="per_mib", aggfunc="sum", fill_value=0)
    return m.reindex(columns=[e for e in T.OP_NAMES if e != "alloc"], fill_value=0)


def _replays_over(params: Mapping, workload: str, settings: Iterable[dict], policies: Iterable[str]):
    """(setting, trace, policy, ledger) per setting (overrides of the run's parameters) and policy."""
    base = config(params)
    for setting in settings:
        tr = workloads.generate(workload, **dict(base, **setting))
        for name in policies:
            yield setting, tr, name, engine.replay(tr, name)


def loss_folio_grid(params: Mapping, *, workload: str, loss_rates: Iterable[float] = LOSS_RATES,
                    folio_pages: Iterable[int] = GRID_FOLIO_PAGES, policies: Iterable[str] = POLICIES):
    """Atomics and bounces per MiB over loss rate x folio size of the memory sent (tidy)."""
    settings = [{"folio_pages": int(f), "loss_rate": float(x)} for f in folio_pages for x in loss_rates]
    nbytes = params["bytes_sent"]
    return pd.DataFrame([{**s, "folio_kib": s["folio_pages"] * 4, "policy": name, **per_mib(led, nbytes),
                          "uaf_pages": led.uaf_pages}
                         for s, _, name, led in _replays_over(params, workload, settings, policies)])


def spanning_frags(params: Mapping, *, frag_sizes: Iterable[int] = SPAN_FRAG_SIZES,
                   folio_pages: Iterable[int] = SPAN_FOLIO_PAGES, policies: Iterable[str] = POLICIES):
    """The thread's future as a grid: physical-range frags over folios of various sizes (physrange_send)."""
    # sends of whole folios (all powers of two, so the largest is a multiple of the others)
    settings = [{"frag_size": int(f), "folio_pages": int(fp), "send_size": max(int(f), int(fp) * T.PAGE_SIZE, 64 * KiB)}
                for fp in folio_pages for f in frag_sizes]
    nbytes = params["bytes_sent"]
    rows = []
    for s, tr, name, led in _replays_over(params, "physrange_send", settings, policies):
        rows.append({"folio_kib": s["folio_pages"] * 4, "frag_kib": s["frag_size"] // 1024, "policy": name,
                     "frags": int((tr["op"] == T.ATTACH).sum()), "uaf_pages": led.uaf_pages,
                     "uaf_share": led.uaf_pages / max(1, int(tr[tr["op"] == T.ALLOC]["len"].sum())),
                     "ref_atomics_per_mib": led.ref_atomics / (nbytes / MiB), "pages_peak": led.pages_peak})
    return pd.DataFrame(rows)


def override_sweep(params: Mapping, rtts: Iterable[float] = OVERRIDE_RTT_US,
                   policies: Iterable[str] = ("page_ref", "owner_skb")) -> pd.DataFrame:
    """The pskb_expand_head() override as the round trip shrinks under the completion delay (tcp_send)."""
    rows = []
    for rtt in rtts:
        p = dict(params, rtt_us=float(rtt))
        cfg = config(p)
        tr = workloads.generate("tcp_send", **cfg)
        expands = int((tr["op"] == T.EXPAND_HEAD).sum())
        for name in policies:
            led = engine.replay(tr, name)
            rows.append({"rtt_us": float(rtt), "inflight": cfg["inflight"], "txc_lag": cfg["txc_lag"],
                         "policy": name, "expand_head_per_mib": expands / (cfg["bytes_sent"] / MiB),
                         "ref_atomics_per_mib": led.ref_atomics / (cfg["bytes_sent"] / MiB),
                         "expand_head_ref_atomics_per_mib":
                             led.ref_by_op[T.EXPAND_HEAD] / (cfg["bytes_sent"] / MiB)})
    return pd.DataFrame(rows)


def tiny_spanning_trace() -> np.ndarray:
    """One 16 KiB frag as a physical range over four order-0 pipe pages, sent and let go of like a splice.

    A pipe (the holder) owns four separate pages; a future splice builds one frag
    over all of them, the socket clones it for the device, and the pipe releases
    its buffers as soon as sendmsg() returns (pipe_buf_release() in fs/splice.c,
    v6.12). Only the skbs' refs keep the data alive.
    """
    tb = T.TraceBuilder()
    tb.alloc(0, buf=0, pfn=0, pages=4, folio_pages=1, kind=T.MEM_PIPE)
    tb.skb_alloc(0, skb=0)
    tb.attach(0, skb=0, buf=0, pfn=0, off=0, length=4 * T.PAGE_SIZE)
    tb.clone(0, new=1, src=0)
    tb.buf_release(0, buf=0)
    tb.free(1, skb=0)  # ACK: the write-queue skb goes first
    tb.free(1, skb=1)  # TX completion: the device is done with the clone
    return tb.build()


def walk(trace: np.ndarray, policy: str) -> pd.DataFrame:
    """Step the twin through a small trace; show the refcounts and freed-but-pointed pages after each event."""
    r = Replay(POLICIES[policy], **T.sizes(trace))
    rows = []
    for ev in trace:
        r.c["events"] += 1
        r.step(*(int(ev[k]) for k in T.EVENT.names))
        pages = sorted(r.alive)
        counts = " ".join(f"{kind} {ident}: {n}" for (kind, ident), n in r.count.items()
                          if n and (kind != "folio" or r.alive.get(ident)))
        rows.append({"event": T.OP_NAMES[int(ev["op"])], "refcounts": counts or "-",
                     "pages freed": " ".join(str(q) for q in pages if not r.alive[q]) or "-",
                     "frag still points at freed page": int(r.c["uaf_pages"])})
    return pd.DataFrame(rows)


def policy_summaries() -> pd.DataFrame:
    """The policies under comparison, each with what a frag reference takes."""
    return pd.DataFrame([{"policy": p.name, "what a frag reference takes": p.summary} for p in POLICIES.values()])


def workload_summaries() -> pd.DataFrame:
    return pd.DataFrame([{"workload": w.name, "today's kernel": "yes" if w.today else "no (the thread's future)",
                          "what it does": w.summary} for w in workloads.WORKLOADS.values()])


# Where today's kernel takes and drops frag references, per model event: v6.18, each function read the same in
# v6.12 for its frag refs (devmem TX came in 6.16: none in v6.12).
KERNEL_SITES = (
    ("attach (user memory)", "tcp_sendmsg_locked() -> skb_zerocopy_iter_stream() -> zerocopy_fill_skb_from_iter()",
     "GUP ref per page (one per PMD for a THP); pages of one folio merge into one frag and give their surplus "
     "back with one page_ref_sub(); the frag keeps one ref on the compound head",
     "net/core/datagram.c zerocopy_fill_skb_from_iter(), lib/iov_iter.c iov_iter_get_pages2(), v6.18 and v6.12"),
    ("grow", "zerocopy_fill_skb_from_iter() merging the next pages of the same folio into the last frag",
     "GUP refs the new pages, all given back with one page_ref_sub()", "net/core/datagram.c, v6.18 and v6.12"),
    ("attach (pipe pages)", "splice_to_socket() -> tcp_sendmsg_locked(MSG_SPLICE_PAGES) -> skb_splice_from_iter()",
     "cut at every page; get_page() per new frag (skb_append_pagefrags())", "net/core/skbuff.c, v6.18 and v6.12"),
    ("attach (page_pool)", "driver: page_pool_alloc_frag_netmem() / page_pool_alloc_netmems()",
     "no atomic: pp_ref_count was charged with a bias by one plain store; a slot is frag_users++",
     "net/core/page_pool.c, include/net/page_pool/helpers.h, v6.18 and v6.12"),
    ("attach (devmem)", "tcp_sendmsg_locked() -> zerocopy_fill_skb_from_devmem() -> get_netmem()",
     "one ref on the dma-buf binding per frag (net_devmem_get_net_iov()); one frag per net_iov",
     "net/core/devmem.c, net/core/skbuff.c get_netmem(), v6.18 (6.16+; none in v6.12)"),
    ("uarg_get / uarg_put", "tcp_sendmsg_locked(): msg_zerocopy_realloc() ... net_zcopy_put()",
     "the sendmsg holds its ubuf_info while it runs (a new one is a plain store)", "net/core/skbuff.c, v6.18 and v6.12"),
    ("clone", "__tcp_transmit_skb() -> skb_clone() -> __skb_clone()",
     "none: shinfo->dataref + 1, both skbs marked cloned", "net/core/skbuff.c __skb_clone(), v6.18 and v6.12"),
    ("split", "tcp_fragment() -> skb_split() -> skb_split_no_header()",
     "one, for the frag straddling the split; whole frags move; one ubuf_info ref for the new skb",
     "net/core/skbuff.c skb_split_no_header(), v6.18 and v6.12"),
    ("segment", "validate_xmit_skb() -> skb_segment()",
     "one per frag per output segment, and one ubuf_info ref per segment (skb_zerocopy_clone())",
     "net/core/skbuff.c skb_segment(), v6.18 and v6.12"),
    ("segment", "__tcp_transmit_skb() on a still-cloned skb -> pskb_copy() -> __pskb_copy_fclone()",
     "one per frag", "net/core/skbuff.c __pskb_copy_fclone(), v6.18 and v6.12"),
    ("expand_head", "tcp_trim_head() / tcp_fragment() -> skb_unclone() -> pskb_expand_head()",
     "one per frag, only when the shared info is shared (skb_cloned()): the 'override'",
     "net/core/skbuff.c pskb_expand_head(), v6.18 and v6.12"),
    ("coalesce", "skb_gro_receive(), tcp_try_coalesce() -> skb_try_coalesce()",
     "none when frags move; one per frag when the source is cloned", "net/core/skbuff.c skb_try_coalesce(), v6.18 and v6.12"),
    ("pull", "tcp_clean_rtx_queue() -> tcp_trim_head() -> __pskb_trim_head()",
     "drops one per fully acknowledged frag", "net/ipv4/tcp_output.c __pskb_trim_head(), v6.18 and v6.12"),
    ("free", "kfree_skb() / consume_skb() -> skb_release_data()",
     "drops one per frag when dataref reaches zero (put_page(), or page_pool_unref_netmem(): a read for the "
     "page's last user); an atomic on dataref only if cloned",
     "net/core/skbuff.c skb_release_data(), napi_pp_put_page(), v6.18 and v6.12"),
    ("buf_release", "the holder lets go: pipe_buf_release(), page_pool_drain_frag(), unbinding a dma-buf",
     "the pipe: one put per page; the pool: one atomic for the unused bias unless every user is gone; the "
     "application's mapping: nothing (it keeps its pages; the model marks when it may reuse them)",
     "fs/splice.c, net/core/page_pool.c, v6.18 and v6.12"),
)
NOT_MODELLED = (
    ("skb_shift()", "tcp_shift_skb_data() (SACK) moves bytes between skbs; a partially shifted frag takes one ref",
     "net/core/skbuff.c skb_shift(), net/ipv4/tcp_input.c, v6.18 and v6.12"),
    ("tso_fragment()", "a cwnd- or pacing-limited sender cuts an skb it sends in part",
     "net/ipv4/tcp_output.c tso_fragment(), v6.18 and v6.12"),
    ("skb_still_in_host_queue()", "a retransmission waits while the clone is still in the host's queues "
     "(returns -EBUSY), which makes the retransmit pskb_copy() branch rare",
     "net/ipv4/tcp_output.c skb_still_in_host_queue(), v6.18 and v6.12"),
)


def kernel_sites() -> pd.DataFrame:
    return pd.DataFrame(list(KERNEL_SITES), columns=["model event", "kernel path", "frag refs today", "source"])


def not_modelled() -> pd.DataFrame:
    return pd.DataFrame(list(NOT_MODELLED), columns=["kernel path", "what it does", "source"])


def constants(params: Mapping) -> pd.DataFrame:
    """Every constant the workloads use, with its value here and where it comes from."""
    cfg = workloads.Config(**config(params))
    t = timing(params)
    rows = [
        ("size goal", f"{cfg.size_goal} B ({cfg.size_goal // cfg.mss} x MSS)", "kernel rule",
         "sk_setup_caps(): sk_gso_max_size = GSO_LEGACY_MAX_SIZE - (MAX_TCP_HEADER + 1); tcp_xmit_size_goal(), "
         "net/core/sock.c, net/ipv4/tcp.c, v6.18 and v6.12"),
        ("frags per skb", f"{cfg.max_frags}", "kernel rule", "CONFIG_MAX_SKB_FRAGS default, net/Kconfig, v6.18 and v6.12"),
        ("ubuf_info extension", f"{workloads.UARG_BYTE_LIMIT >> 10} KiB", "kernel rule",
         "msg_zerocopy_realloc(): byte_limit = 1 << 19, net/core/skbuff.c, v6.18 and v6.12"),
        ("bytes per sendmsg", f"{cfg.send_size} B", "parameter send_size",
         "MSG_ZEROCOPY pays for writes over around 10 KB (Documentation/networking/msg_zerocopy.rst)"),
        ("skb on the wire", f"{t['skb_us']:.2f} us", "derived", "size goal x 8 / line_gbit"),
        ("in flight before the first ACK", f"{cfg.inflight} skbs", "derived from parameter rtt_us",
         "datacenter round trips are tens of us (Swift, SIGCOMM 2020: short-RPC tail latency under 50 us at "
         "under 3x the minimum, https://research.google/pubs/pub49448/)"),
        ("TX completion lag", f"{cfg.txc_lag} skbs", "derived from parameter txc_us",
         "mlx5 completes TX after 16 us or 32 completions by default (MLX5E_PARAMS_DEFAULT_TX_CQ_MODERATION_USEC "
         "0x10, _PKTS 0x20, drivers/net/ethernet/mellanox/mlx5/core/en.h)"),
        ("ACK cadence", f"every {cfg.ack_every} segments", "kernel rule",
         "__tcp_ack_snd_check(): ACK when more than one full frame was received, net/ipv4/tcp_input.c, v6.18 and v6.12"),
        ("loss", f"{cfg.loss_rate:.2%} of segments, runs of {cfg.loss_burst:g} on average",
         "parameters loss_rate, loss_burst", "measured on this machine's bottleneck run (kcount probe, below)"),
        ("receive buffer", f"{params.get('rx_buf', cfg.rx_buf)} B in a page_pool page of {cfg.folio_pages * 4} KiB",
         "parameters rx_buf, folio_pages",
         "page_pool_alloc_netmem(): a whole page when the buffer is over half of it, include/net/page_pool/helpers.h"),
        ("NAPI poll", f"{workloads.NAPI_BUDGET} packets, then GRO flushes and the reader copies",
         "kernel rule + model choice", "NAPI_POLL_WEIGHT, include/linux/netdevice.h, v6.18 and v6.12"),
        ("CPUs", f"application CPU 0, TX completions CPU {cfg.txc_cpu}, ACKs and packets CPU {cfg.rx_cpu}",
         "parameter cpus", "one NIC queue per flow, its interrupt on another CPU than the application"),
        ("devmem dma-buf", f"{workloads.DEVMEM_DMABUF_PAGES} pages", "cited",
         "NUM_PAGES of the devmem selftest's udmabuf, tools/testing/selftests/drivers/net/hw/ncdevmem.c"),
    ]
    return pd.DataFrame(rows, columns=["constant", "value", "kind", "source"])


# ---------------------------------------------------------------- the model against this kernel
def model_inputs(run: Mapping) -> dict:
    """The generator settings that reproduce one kcount transfer: its size, MSS, send size, TSO setting and the
    drop rate and loss runs it measured (Tcp.RetransSegs per retransmitted skb)."""
    segs = run.get("snmp", {}).get("tx", {}).get("Tcp.RetransSegs", 0)
    pm = run.get("per_mib", {})
    skbs = (pm.get("tcp:tcp_retransmit_skb", 0) - pm.get("tcp:tcp_retransmit_skb[err]", 0)) * run["bytes"] / MiB
    cwnd = run.get("tcp_info", {}).get("tx", {}).get("snd_cwnd", 10)
    cfg = workloads.Config(mss=run["mss"])
    return {"workload": "tcp_gso" if run["software_gso"] else "tcp_send",
            "bytes_sent": min(run["bytes"], 16 * MiB), "mss": run["mss"], "send_size": run["chunk"],
            "loss_rate": run["drop_rate"], "loss_burst": max(1.0, segs / skbs) if skbs else 1.0,
            "inflight": max(1, round(cwnd / (cfg.size_goal // cfg.mss))), "txc_lag": 0}


def model_quantities(inputs: Mapping) -> dict:
    """The model's count per MiB of each kcount quantity for one transfer."""
    cfg = {k: v for k, v in inputs.items() if k != "workload"}
    tr, st = workloads.generate_with_stats(inputs["workload"], **cfg)
    c, mib = T.counts(tr), cfg["bytes_sent"] / MiB
    return {"transmissions": st["transmissions"] / mib, "retransmits": st["retransmits"] / mib,
            "skbs_freed": c["free"] / mib, "gso_segments": st["gso_segments"] / mib,
            "completions": c["zc_complete"] / mib}


#: The model against the kcount probe's MSG_ZEROCOPY transfers over veth, counted by tracepoints.
AGAINST = compare.Against("01_refcount_removal", "kcount", model_inputs, model_quantities, EXPECTED_GAPS,
                          sender="zerocopy")


# ---------------------------------------------------------------- the receive path against this kernel
#: veth's copy of a packet into its page_pool (skb_pp_cow_data(), net/core/skbuff.c, v6.18): headroom, the
#: skb_shared_info's aligned size on x86-64, and the page the head must fit in with both.
VETH_XDP_HEADROOM = 256
SHINFO_ALIGNED = 320
RX_PAGE = 4096


def veth_rx_buf(mtu: int) -> int:
    """Bytes of a pool page one packet takes on veth with XDP at ``mtu``: ``skb_pp_cow_data()`` allocates the head
    with ``page_pool_dev_alloc_va(pool, &truesize)``, ``truesize = SKB_HEAD_ALIGN(size) + XDP_PACKET_HEADROOM``,
    ``size = min(len, SKB_WITH_OVERHEAD(PAGE_SIZE - XDP_PACKET_HEADROOM))``, ``SKB_HEAD_ALIGN(x) = ALIGN(x, 64) +
    320`` (net/core/skbuff.c, include/linux/skbuff.h, v6.18). An MTU-1500 frame (1514 B) needs 2112 B: over half a
    page, so ``page_pool_alloc_netmem()`` gives it a whole page (include/net/page_pool/helpers.h, v6.18)."""
    frame = mtu + 14
    size = min(frame, RX_PAGE - VETH_XDP_HEADROOM - SHINFO_ALIGNED)
    return -(-size // 64) * 64 + SHINFO_ALIGNED + VETH_XDP_HEADROOM


#: What each receive quantity means (per MiB received, or a share), for the model and in the kernel's counts.
RX_QUANTITIES = {
    "packets_received": "packets veth's NAPI handed to GRO: net:napi_gro_receive_entry on the receiving veth; "
                        "the model's packets of one MSS",
    "pool_pages": "page_pool pages the packets were copied into: packets x the pool bytes each took (sampled "
                  "truesize: a 4 KiB fragment at MTU 1500) / 4 KiB; the model's page_pool pages at veth's "
                  "buffer size (veth_rx_buf)",
    "reader_frees_deferred": "share of the skbs the reader consumed that skb_attempt_defer_free() handed back to "
                             "the NAPI CPU: each copied skb followed to its free (consume_skb from "
                             "skb_defer_free_flush(), else freed on the reader's CPU, low/high); the model's "
                             "deferred frees over its reader frees",
    "reader_skbs": "skbs the reader consumed (copied and freed, followed by address); the model's queue skbs the "
                   "reader frees (GRO on only: the model always runs GRO)",
}
#: Where the model does not follow a receive count, and why (by quantity; GRO on).
RX_GAPS = {
    "reader_skbs": (
        "GRO keeps merging into an skb whose frags are full: skb_gro_receive() chains further packets on its "
        "frag_list up to the GRO size (64 KiB here) or the end of the NAPI poll (net/core/gro.c, v6.18), and "
        "tcp_try_coalesce() merges more in the receive queue; the model closes a GRO skb at MAX_SKB_FRAGS frags, "
        "so the reader gets more, smaller skbs. Frag references are the same either way: every packet's page "
        "is one frag or one frag_list skb's head."),
}


def rx_inputs(run: Mapping, release: str | None = None) -> dict:
    """The receive generator's settings for one kcount_rx transfer: its size, the receiver's MSS, veth's buffer
    size at its MTU, order-0 pool pages (veth_create_page_pool(): order 0, drivers/net/veth.c), no loss (none
    was measured), two CPUs unless the reader shared the NAPI CPU, and the kernel it ran on."""
    tcp = run.get("tcp_info", {}).get("rx", {})
    out = {"bytes_sent": min(int(run["bytes"]), 16 * MiB), "mss": int(tcp.get("rcv_mss") or 1448),
           "rx_buf": veth_rx_buf(int(run.get("mtu", 1500))), "folio_pages": 1, "loss_rate": 0.0,
           "cpus": 1 if run.get("same_cpu") else 2, "gro": bool(run.get("gro"))}
    if release:
        out["kernel"] = release
    return out


def rx_model(inputs: Mapping) -> dict:
    """The model's value of each :data:`RX_QUANTITIES` for the settings ``inputs``."""
    cfg = {k: v for k, v in inputs.items() if k != "gro"}
    tr, st = workloads.generate_with_stats("rx_gro", **cfg)
    c, mib = T.counts(tr), cfg["bytes_sent"] / MiB
    reader = c["free"] - c["coalesce"]  # every coalesce frees its source: GRO's NAPI_GRO_FREE, kfree_skb_partial()
    return {"packets_received": st["packets"] / mib, "pool_pages": c["alloc"] / mib,
            "reader_frees_deferred": st["deferred"] / reader if reader else 0.0,
            "reader_skbs": reader / mib if inputs.get("gro") else None}


def rx_kernel(run: Mapping) -> dict[str, dict]:
    """The kernel's value of each :data:`RX_QUANTITIES` in one kcount_rx transfer, ``{value, low, high, exact,
    n}`` (``n``: the events behind a share, for the one-event slack)."""
    c, skbs, pk = run["counts"], run.get("skbs", {}), run.get("packets", {})
    g = c["net:napi_gro_receive_entry"]
    per_page = RX_PAGE / max(1, pk.get("fragment_bytes") or RX_PAGE)
    on_reader = skbs.get("share_freed_on_reader_cpu") or {"low": 0.0, "high": 0.0}
    n = max(1, (run.get("reader_frees") or {}).get("skbs") or 1)
    consumed = skbs.get("consumed_by_reader")
    return {
        "packets_received": {"value": g["value"], "low": g["low"], "high": g["high"], "exact": True, "n": None},
        "pool_pages": {"value": g["value"] / per_page, "low": g["low"] / per_page, "high": g["high"] / per_page,
                       "exact": False, "n": None},
        "reader_frees_deferred": {"value": 1 - (on_reader["low"] + on_reader["high"]) / 2,
                                  "low": 1 - on_reader["high"], "high": 1 - on_reader["low"], "exact": False,
                                  "n": n},
        "reader_skbs": {"value": consumed, "low": consumed, "high": consumed, "exact": False, "n": None},
    }


def rx_rows(result, release_of=None) -> pd.DataFrame:
    """The receive model fed each kcount_rx transfer against the kernel's counts, one compare row per transfer
    and quantity (a share compares within one skb of the transfer's reader frees)."""
    rows = []
    for run in (result.data.get("runs", []) if result is not None else []):
        mib = run["bytes"] / MiB
        inputs = rx_inputs(run, run.get("kernel") or result.kernel)
        model, kern = rx_model(inputs), rx_kernel(run)
        for q, meaning in RX_QUANTITIES.items():
            k = kern[q]
            share = k["n"] is not None
            rows.append(compare.row(
                "01_refcount_removal", f"rx {run['name']}", q, k["value"], model[q],
                mib=(k["n"] if share else mib), low=k["low"], high=k["high"],
                reason=RX_GAPS.get(q, "") if run.get("gro") else "", measured=result.source, exact=k["exact"],
                how_counted=meaning))
    return compare.table([rows])


#: Workloads whose frag memory a NIC maps once, not per frag (:data:`fraglife.cited.MAPPED_ONCE`).
MAPPED_ONCE = {"rx_gro": "page_pool", "devmem_send": "devmem"}


class Results(compare.Compares):
    """Chapter 01's analyses for one parameter set, each computed once on first use."""

    AGAINST = AGAINST

    def __init__(self, params: Mapping):
        self.P = Params.of(params)
        if self.P.kernel != "running":  # the running kernel's release is known once the probe has run
            self._refuse(kit.kernel_release(self.P.kernel, self.P.measurements))

    def _refuse(self, release: str) -> None:
        if self.P.workload == "devmem_send" and not kernels.follows(release, DEVMEM_TX_RULE):
            raise ParamError(f"parameter 'kernel' = {self.P.kernel!r} is not allowed with workload "
                             f"{self.P.workload!r}: {kit.kernel_label(release)} has no devmem TX (it came in "
                             f"{kernels.rule(DEVMEM_TX_RULE).changed_in})")

    @cached_property
    def release(self) -> str:
        """The kernel whose rules the model follows: the kcount probe's (live: this machine's; recorded: the
        recording's), or 6.12 LTS."""
        r = kit.kernel_release(self.P.kernel, self.P.measurements, self.kernel)
        self._refuse(r)
        return r

    @cached_property
    def p(self) -> dict:
        """The run's parameters and the release the model follows (what the model's helpers take)."""
        return {**{k: self.P[k] for k in self.P}, "release": self.release}

    @cached_property
    def cfg(self) -> dict:
        return config(self.p)

    @cached_property
    def runs(self) -> Replays:
        return Replays(self.cfg)

    @cached_property
    def today(self) -> tuple[str, ...]:
        """Today's workloads on the kernel the model follows."""
        return today_workloads(self.release)

    @cached_property
    def tx_today(self) -> tuple[str, ...]:
        return tuple(w for w in self.today if w != "rx_gro")

    @cached_property
    def rx_kernel(self):
        """The kcount_rx probe's receive transfers, counted by this kernel's tracepoints."""
        return kit.probe("kcount_rx", self.P.measurements)

    @cached_property
    def send_comparison(self) -> pd.DataFrame:
        """The send side: the model fed each kcount MSG_ZEROCOPY transfer against the kernel's counts."""
        return self.AGAINST.rows(self.kernel)

    @cached_property
    def rx_comparison(self) -> pd.DataFrame:
        """The receive side: the model fed each kcount_rx transfer against the kernel's counts."""
        return rx_rows(self.rx_kernel)

    @cached_property
    def rx_comparison_table(self) -> pd.DataFrame:
        """The receive side, the columns the chapter shows."""
        return self.rx_comparison[compare.TABLE_COLUMNS]

    @cached_property
    def send_comparison_table(self) -> pd.DataFrame:
        """The send side, the columns the chapter shows."""
        return self.send_comparison[compare.TABLE_COLUMNS]

    @cached_property
    def comparison(self) -> pd.DataFrame:
        """Both sides, one compare row per transfer and quantity (what ``fraglife kernel-check`` lists)."""
        return compare.table([self.send_comparison, self.rx_comparison])

    @cached_property
    def timing(self) -> dict:
        return {**timing(self.p), "inflight": self.cfg["inflight"], "txc_lag": self.cfg["txc_lag"]}

    @cached_property
    def constants(self) -> pd.DataFrame:
        return constants(self.p)

    @cached_property
    def trace(self) -> np.ndarray:
        """The chosen workload's trace."""
        return self.runs.trace(self.P.workload)

    @cached_property
    def workload_summary(self) -> str:
        return workloads.WORKLOADS[self.P.workload].summary

    @cached_property
    def event_counts(self) -> pd.DataFrame:
        return pd.Series({k: v for k, v in T.counts(self.trace).items() if v}, name="events").to_frame().T

    @cached_property
    def kinds(self) -> pd.DataFrame:
        """Today's atomics per MiB by refcount kind, every workload of today's kernel (tidy)."""
        return by_kind(self.runs, self.today)

    @cached_property
    def kind_matrix(self) -> pd.DataFrame:
        m = self.kinds.pivot_table(index="workload", columns="kind", values="per_mib", aggfunc="sum")
        return m.reindex(index=list(self.today), columns=[KIND_LABELS[k] for k in KINDS]).round(1)

    @cached_property
    def events(self) -> pd.DataFrame:
        """Today's frag-memory ref atomics per MiB by event, every workload of today's kernel (tidy)."""
        return by_event(self.runs, self.today)

    @cached_property
    def event_matrix(self) -> pd.DataFrame:
        return event_matrix(self.events)

    @cached_property
    def gso(self) -> dict:
        """Software GSO vs TSO: ref atomics per MiB, their ratio, where GSO pays, and its ubuf_info refs."""
        ev = self.event_matrix
        total = ev.sum(axis=1)
        tso, gso = self.runs.ledger("tcp_send", "page_ref"), self.runs.ledger("tcp_gso", "page_ref")
        mib = self.runs.nbytes / MiB
        return {"tso_per_mib": float(total["tcp_send"]), "ratio": float(total["tcp_gso"] / total["tcp_send"]),
                "segment_per_mib": float(ev.loc["tcp_gso", "segment"]), "free_per_mib": float(ev.loc["tcp_gso", "free"]),
                "segmented": self.runs.traced("tcp_gso")[1]["gso_segments"] > 0,
                "tso_uarg_per_mib": tso.uarg_atomics / mib, "gso_uarg_per_mib": gso.uarg_atomics / mib}

    @cached_property
    def rx(self) -> dict:
        """The receive path's pp_ref_count atomics, at this run's buffer size and with a whole page per packet."""
        out = {}
        for label, rx_buf in (("run", self.P.rx_buf), ("whole_page", 4096 * self.P.folio_pages)):
            cfg = dict(self.cfg, rx_buf=rx_buf)
            if cfg == self.runs.cfg:  # the run's own receive: the trace and ledger the chapter already made
                (tr, st), led = self.runs.traced("rx_gro"), self.runs.ledger("rx_gro", "page_ref")
            else:
                tr, st = workloads.generate_with_stats("rx_gro", **cfg)
                led = engine.replay(tr, "page_ref")
            kind, pages, per_page = workloads.rx_layout(workloads.Config(**cfg))
            out[label] = {"rx_buf": rx_buf, "split": kind == T.MEM_POOL_FRAG, "packets_per_page": per_page,
                          "packets": st["packets"], "pp_atomics": led.pp_atomics, "pp_reads": led.pp_reads,
                          "page_atomics": led.page_atomics, "pool_pages": int((tr["op"] == T.ALLOC).sum()),
                          "pp_per_packet": led.pp_atomics / st["packets"]}
        return out

    @cached_property
    def units(self) -> costs.UnitCosts:
        return kit.unit_costs(self.P.measurements)

    @cached_property
    def unit_table(self) -> pd.DataFrame:
        return pd.DataFrame(self.units.rows())

    @cached_property
    def dma(self) -> pd.DataFrame:
        """What a real NIC adds per frag of the run's workload: mapping each for DMA (cited: veth maps nothing),
        beside today's frag lifetime work priced here."""
        today = replays.lifetime_cost(self.runs, self.P.workload, replays.TODAY, self.units, self.P.line_gbit)
        return kit.dma_per_frag(self.trace, self.runs.nbytes, today["ns_per_mib"],
                                f"today's frag lifetime work, {self.P.workload}",
                                MAPPED_ONCE.get(self.P.workload, ""))

    @cached_property
    def tx_costs(self) -> dict[str, pd.DataFrame]:
        """policy_table() of every transmit workload of today's kernel, priced."""
        return {w: policy_table(self.runs, w, self.units, self.P.line_gbit) for w in self.tx_today}

    @cached_property
    def policies(self) -> pd.DataFrame:
        """policy_table() of the chosen workload, priced."""
        if self.P.workload in self.tx_costs:
            return self.tx_costs[self.P.workload]
        return policy_table(self.runs, self.P.workload, self.units, self.P.line_gbit)

    @cached_property
    def time(self) -> pd.DataFrame:
        """ns per MiB and share of one core at the line rate, every workload of today's kernel x policy (tidy)."""
        rows = []
        for w in self.today:
            t = self.tx_costs[w] if w in self.tx_costs else policy_table(self.runs, w, self.units, self.P.line_gbit)
            for r in t.itertuples():
                rows.append({"workload": w, "policy": r.policy, "local_atomic_ns": r.local_atomic_ns,
                             "line_transfer_ns": r.line_transfer_ns, "ns_per_mib": r.ns_per_mib,
                             "core_share": r.core_share})
        return pd.DataFrame(rows)

    @cached_property
    def time_matrix(self) -> pd.DataFrame:
        """Share of one core at the line rate, workload x policy, in percent."""
        m = self.time.pivot_table(index="workload", columns="policy", values="core_share")
        return sig3(100 * m.reindex(index=list(self.today), columns=list(POLICIES)))

    @cached_property
    def override(self) -> pd.DataFrame:
        return override_sweep(self.p)

    @cached_property
    def grid(self) -> pd.DataFrame:
        """Atomics over loss rate x folio size (a receive or future run shows the TSO send instead)."""
        w = self.P.workload if self.P.workload in self.tx_today else "tcp_send"
        return loss_folio_grid(self.p, workload=w, policies=GRID_POLICIES)

    @cached_property
    def spanning(self) -> pd.DataFrame:
        return spanning_frags(self.p)

    @cached_property
    def worst_spanning(self) -> pd.Series:
        """The frag/folio size where today's single ref frees the largest share of pages early."""
        return self.spanning[self.spanning.policy == "page_ref"].sort_values("uaf_share").iloc[-1]

    @cached_property
    def peaks_64k(self) -> pd.DataFrame:
        """Peak pages held with 64 KiB frags, by folio size and policy."""
        s = self.spanning
        return s[s.frag_kib == 64].pivot_table(index="folio_kib", columns="policy", values="pages_peak")

    @cached_property
    def policy_kinds(self) -> pd.DataFrame:
        """The chosen workload's policies: atomics per MiB by kind, line transfers, memory, violations."""
        cols = ["policy", "atomics_per_mib", *(f"{k}_per_mib" for k in KINDS), "bounces_per_mib", "pages_peak",
                "uaf_pages"]
        return self.policies[cols].round(1)

    @cached_property
    def attribution(self) -> pd.DataFrame:
        """Every transmit workload of today's kernel, design by design: today; today with pins (the pinning change
        alone); the owner with pins, each charged for what it adds (:func:`fraglife.model.replays.attribution`)."""
        frames = [replays.attribution(self.runs, w, self.units, self.P.line_gbit) for w in self.tx_today]
        return pd.concat(frames, ignore_index=True)

    @cached_property
    def attribution_table(self) -> pd.DataFrame:
        """The attribution as the chapter shows it: atomics, pin atomics, time with its range, what each step adds."""
        a = self.attribution
        rng = [f"{answers.format_number(v, lo, hi)}" for v, lo, hi in zip(a.ns_per_mib, a.ns_low, a.ns_high)]
        add = [f"{answers.format_number(v, lo, hi)}" if s != "today" else "-"
               for s, v, lo, hi in zip(a.step, a.added_ns_per_mib, a.added_ns_low, a.added_ns_high)]
        return pd.DataFrame({"workload": a.workload, "design": a.step, "policy": a.policy,
                             "atomics/MiB": a.atomics_per_mib.round(0).astype(int),
                             "of them FOLL_PIN": a.pin_atomics_per_mib.round(0).astype(int),
                             "ns/MiB (range)": rng, "adds ns/MiB (range)": add,
                             f"% core at {self.P.line_gbit}G": sig3(100 * a.core_share)})

    @cached_property
    def other_release(self) -> str:
        """The kernel set beside the one the model follows: 6.12 LTS, or the running kernel when the run is 6.12."""
        if kernels.series(self.release) != kernels.LTS:
            return kernels.LTS
        return kit.kernel_release("running", self.P.measurements, self.kernel)

    @cached_property
    def kernel_rules(self) -> pd.DataFrame:
        """The versioned rules that differ between the two kernels and move this chapter's numbers."""
        rows = [{"rule": r.name, "changed in": r.changed_in, "before": r.before, "after": r.after,
                 "source (before)": r.cite_before, "source (after)": r.cite_after}
                for r in kernels.differences(self.release, self.other_release) if "01" in r.chapters]
        return pd.DataFrame(rows, columns=["rule", "changed in", "before", "after", "source (before)",
                                           "source (after)"])

    @cached_property
    def kernels_table(self) -> pd.DataFrame:
        """Today's refs and the per-skb owner on the kernel the model follows and on the other (6.12 LTS or the
        running one): atomics per MiB, the skb defer list's among them, and the share of a core."""
        other = Replays(dict(self.cfg, kernel=self.other_release))
        a, b = kit.kernel_label(self.release), kit.kernel_label(self.other_release)
        rows = []
        for w in dict.fromkeys(self.today + today_workloads(self.other_release)):
            for policy in ("page_ref", "owner_skb"):
                row = {"workload": w, "design": "today" if policy == "page_ref" else "owner"}
                for label, runs, ws in ((a, self.runs, self.today), (b, other, today_workloads(self.other_release))):
                    if w not in ws:
                        row.update({f"atomics/MiB on {label}": None, f"defer list on {label}": None,
                                    f"% core on {label}": None})
                        continue
                    c = replays.lifetime_cost(runs, w, policy, self.units, self.P.line_gbit)
                    row.update({f"atomics/MiB on {label}": round(c["atomics_per_mib"]),
                                f"defer list on {label}": round(c["defer_atomics_per_mib"], 1),
                                f"% core on {label}": float(sig3(100 * c["core_share"]))})
                rows.append(row)
        return pd.DataFrame(rows)

    @cached_property
    def headline(self) -> dict:
        """Today's refs vs the per-skb owner for the chosen workload, as plain numbers."""
        w, nbytes = self.P.workload, self.runs.nbytes
        today, owner = self.runs.ledger(w, "page_ref"), self.runs.ledger(w, "owner_skb")
        t, o = per_mib(today, nbytes), per_mib(owner, nbytes)
        tt = replays.lifetime_cost(self.runs, w, "page_ref", self.units, 100)
        to = replays.lifetime_cost(self.runs, w, "owner_skb", self.units, 100)
        return {
            "events": int(len(self.trace)),
            "page_ref_atomics_per_mib": tt["atomics_per_mib"],
            "owner_atomics_per_mib": to["atomics_per_mib"],
            "owner_saving": 1 - to["atomics_per_mib"] / tt["atomics_per_mib"] if tt["atomics_per_mib"] else 0.0,
            "page_ref_uarg_atomics_per_mib": t["uarg_atomics_per_mib"],
            "page_ref_bounces_per_mib": t["bounces_per_mib"],
            "owner_bounces_per_mib": o["bounces_per_mib"],
            "today_ns_per_mib": tt["ns_per_mib"],
            "owner_ns_per_mib": to["ns_per_mib"],
            "today_core_share_100g": tt["core_share"],
            "page_ref_uaf_pages": today.uaf_pages,
            "owner_uaf_pages": owner.uaf_pages,
            "page_ref_pages_peak": today.pages_peak,
            "owner_pages_peak": owner.pages_peak,
            "probes": kit.measured(self.units),
        }


def headline(**params) -> dict:
    """Chapter 01's result as one tidy record: today's refs vs the per-skb owner for one workload, in count and
    time (ns per MiB and the share of a core at 100 Gbit/s on this machine's unit costs)."""
    return Results(params).headline


def panel_data(params: Mapping, *, workload: str, loss_rate: float, folio_pages: int, rtt_us: float,
               line_gbit: int, line_transfer_ns: float) -> pd.DataFrame:
    """The control panel's table: policy_table() for one setting, priced with the reader's line transfer cost."""
    p = dict(params, loss_rate=loss_rate, folio_pages=folio_pages, rtt_us=rtt_us, line_gbit=line_gbit)
    units = kit.unit_costs(params["measurements"]).override(line_transfer_ns=line_transfer_ns)
    return policy_table(Replays.of(p), workload, units, line_gbit)


# ---------------------------------------------------------------- prose

def gso_remark(R: Results) -> str:
    """Markdown: what software GSO adds to a MiB sent, from the run."""
    g = {k: f"{v:.0f}" for k, v in R.gso.items() if k.endswith("_per_mib")}
    return (f"With TSO a MiB sent costs **{g['tso_per_mib']}** frag-memory ref atomics; software GSO takes "
            f"**{R.gso['ratio']:.1f}** times as many, {g['segment_per_mib']} per MiB in `skb_segment()` and "
            f"{g['free_per_mib']} in freeing its segments. ubuf_info atomics per MiB: **{g['gso_uarg_per_mib']}** "
            f"with software GSO, **{g['tso_uarg_per_mib']}** with TSO.")


def rx_remark(R: Results) -> str:
    """Markdown: the receive path's pp_ref_count atomics, from the run."""
    run, whole = R.rx["run"], R.rx["whole_page"]
    split = (f"a page_pool page holds {run['packets_per_page']} packets: {run['pp_atomics']} `pp_ref_count` "
             f"atomics for {run['packets']} packets in {run['pool_pages']} pages, **{run['pp_per_packet']:.2f}** "
             f"per packet" if run["split"] else "each packet gets a whole page")
    page = run["page_atomics"] + whole["page_atomics"]
    return (f"With {run['rx_buf']} B buffers {split}. Given whole pages, the {whole['packets']} packets pay "
            f"**{whole['pp_atomics']}** atomics. Page `_refcount` atomics: **{page}** in both runs.")


def override_remark(R: Results) -> str:
    """Markdown: the round trips for which the first ACK beats the TX completion, from the run's sweep."""
    o, t, P = R.override, R.timing, R.P
    fired = o[(o.policy == "page_ref") & (o.expand_head_per_mib > 0)]
    if fired.empty:
        return "No round trip in the sweep lets an ACK reach an skb whose clone is still in flight."
    return " ".join((
        f"At {P.line_gbit} Gbit/s an skb of one size goal takes {t['skb_us']:.1f} us on the wire.",
        f"With a {P.txc_us:g} us completion delay, round trips up to **{fired.rtt_us.max():g} us** bring the first "
        f"ACK before the completion: {fired.expand_head_ref_atomics_per_mib.max():.0f} more page atomics per MiB "
        f"at the shortest round trip.",
        f"This run's round trip ({P.rtt_us:g} us) gives {t['inflight']} skbs in flight against a completion lag "
        f"of {t['txc_lag']}."))


#: Markdown: each kernel count the model does not follow in this run, with the kernel path behind it.
gaps_remark = compare.results_remark


def units_remark(R: Results) -> str:
    """Markdown: the unit costs this run used, where they come from, and the recording beside them."""
    u, rec = R.units, kit.unit_costs("recorded")
    return (f"This run prices a local atomic at **{u['local_atomic_ns']:.1f} ns** and a line transfer at "
            f"**{u['line_transfer_ns']:.1f} ns**, {u.source('line_transfer_ns')}; the recording says "
            f"{rec['local_atomic_ns']:.1f} ns and {rec['line_transfer_ns']:.1f} ns.")


#: The refcount kinds the conclusion names, and the word for each.
CONCLUSION_KINDS = {"page_atomics": "page", "pp_atomics": "page_pool", "owner_atomics": "binding",
                    "uarg_atomics": "ubuf_info", "dataref_atomics": "dataref", "flag_atomics": "page flags",
                    "cmpxchg_atomics": "cmpxchg", "notif_atomics": "notification", "defer_atomics": "defer list"}
#: The workload the answer is about when the run's is not a transmit workload of today's kernel.
ANSWER_WORKLOAD = "tcp_send"


def _fmt(v: float, lo: float | None = None, hi: float | None = None, unit: str = "") -> str:
    return answers.format_number(v, lo, hi, unit)


def _share(row, gbit: float) -> str:
    """A lifetime cost's share of a core with its range: "19 % of a core at 100 Gbit/s (7.8 to 21)"."""
    return _fmt(100 * row.core_share, 100 * row.core_share_low, 100 * row.core_share_high,
                f"% of a core at {gbit:g} Gbit/s")


def _added(row) -> str:
    """What a design step adds ("adds 1,740 ns/MiB (...)") or saves ("saves 1,180 ns/MiB (...)"), with its range."""
    v, lo, hi = row.added_ns_per_mib, row.added_ns_low, row.added_ns_high
    if v < 0:
        return "saves " + _fmt(-v, -hi, -lo, "ns/MiB")
    return "adds " + _fmt(v, lo, hi, "ns/MiB")


def answer_workload(R: Results) -> str:
    return R.P.workload if R.P.workload in R.tx_today else ANSWER_WORKLOAD


def today_cost(R: Results) -> dict:
    """Today's frag lifetime cost for the answer's workload (:func:`fraglife.model.replays.lifetime_cost`)."""
    return replays.lifetime_cost(R.runs, answer_workload(R), "page_ref", R.units, R.P.line_gbit)


def step_rows(R: Results, workload: str) -> pd.DataFrame:
    return R.attribution[R.attribution.workload == workload].set_index("step")


def attribution_remark(R: Results) -> str:
    """Markdown: what the pinning change alone adds, and what the owner adds to it, per workload, from the run."""
    lines = []
    for w in R.tx_today:
        a = step_rows(R, w)
        pins, owner = a.loc["today with pins"], a.loc["owner with pins"]
        if pins.policy == "page_ref":
            pin_text = "the pinning change leaves it alone (no user memory)"
        else:
            pin_text = f"the pinning change alone {_added(pins)}"
        t = a.loc["today"]
        lines.append(f"- `{w}`: today {_fmt(t.ns_per_mib, t.ns_low, t.ns_high, 'ns/MiB')}; {pin_text}; the owner "
                     f"then {_added(owner)}.")
    return "\n".join(lines)


def kernels_remark(R: Results) -> str:
    """Markdown: which rules differ between the two kernels and what moves, from the run."""
    a, b = kit.kernel_label(R.release), kit.kernel_label(R.other_release)
    rules = R.kernel_rules
    if rules.empty:
        return f"{a} and {b} follow the same rules for this chapter: the numbers are the same."
    t = R.kernels_table
    moved = []
    for r in t.itertuples(index=False):
        x, y = r[2], r[5]
        if x is None or y is None or pd.isna(x) or pd.isna(y):
            moved.append(f"`{r.workload}` ({r.design}) runs on one of them only")
        elif x != y:
            moved.append(f"`{r.workload}` ({r.design}) {x:.0f} atomics per MiB on {a}, {y:.0f} on {b}")
    names = kit.words(f"`{n}` ({c})" for n, c in zip(rules["rule"], rules["changed in"]))
    return (f"Rules that differ between {a} and {b} for this chapter: {names}. "
            + ("What moves: " + "; ".join(dict.fromkeys(moved)) + "." if moved else "No number moves."))


def dma_remark(R: Results) -> str:
    """What mapping the run's frags for DMA would add on a real NIC, against this chapter's own price (cited)."""
    return cited.remark(R.dma)


def rx_compare_remark(R: Results) -> str:
    """Markdown: the receive comparison in two sentences, from the run."""
    c = compare.compared(R.rx_comparison)
    agree, n = int((c.agrees == True).sum()), len(c)  # noqa: E712
    d = c[c.quantity == "reader_frees_deferred"]
    two = d[d.transfer.str.endswith("gro_on")]
    share = float(two.kernel.iloc[0]) if len(two) else float("nan")
    return (f"Receive: {agree} of {n} quantities agree {compare.RULE} ({R.rx_kernel.source}); with the reader on "
            f"another CPU the kernel handed **{share:.1%}** of the reader's frees back to the NAPI CPU, the model "
            f"{float(two.model.iloc[0]) if len(two) else float('nan'):.1%}.")


def conclusion(R: Results) -> str:
    """Markdown: the chapter's three closing points, quoting the checked numbers (the reasoning is in the
    notebook)."""
    P, t = R.P, R.policies.set_index("policy")
    today = t.loc["page_ref"]
    worst = R.worst_spanning
    agree, compared = compare.tally(R.comparison)
    run = f"`{P.workload}` on {kit.kernel_label(R.release)}"
    kinds = ", ".join(f"{today[f'{k}_per_mib']:.0f} {word}" for k, word in CONCLUSION_KINDS.items()
                      if round(today[f"{k}_per_mib"]))
    if P.workload in R.tx_today:
        a = step_rows(R, P.workload)
        pins, owner = a.loc["today with pins"], a.loc["owner with pins"]
        steps = (f"charged only for what it adds, the owner with pins **{_added(owner)}** against "
                 + (f"today with pins (the pinning change alone {_added(pins)})"
                    if pins.policy != "page_ref" else "today (no user memory to pin)"))
    else:
        steps = "the receive path takes no page refs per packet: the owner changes nothing there"
    return kit.points(
        f"Today, {run}: **{today.atomics_per_mib:.0f}** atomics per MiB ({kinds}), "
        f"**{_fmt(today.ns_per_mib, today.ns_low, today.ns_high, 'ns/MiB')}**, "
        f"**{_share(today, P.line_gbit)}**; {agree} of {compared} kernel counts "
        f"agree {compare.RULE}, the rest with their kernel paths named.",
        f"Per skb and send, {steps}.",
        f"One page ref for a frag over many folios frees up to **{worst.uaf_share:.0%}** of its pages under it "
        f"({worst.frag_kib} KiB frags on {worst.folio_kib} KiB folios); no per-send owner frees any.")


def answer(R: Results) -> answers.Answer:
    """Chapter 01's row of the answers table: item (a), from this run's numbers."""
    w = answer_workload(R)
    c = today_cost(R)
    worst = R.worst_spanning
    gso = R.attribution[(R.attribution.workload == "tcp_gso") & (R.attribution.step == "today")]
    gso_text = f" and {_fmt(float(gso.atomics_per_mib.iloc[0]))} with software GSO" if len(gso) and w != "tcp_gso" else ""
    owner = step_rows(R, w).loc["owner with pins"]
    agree, n = compare.tally(R.comparison)
    number = answers.Number(100 * c["core_share"], 100 * c["core_share_low"], 100 * c["core_share_high"],
                            unit=f"% of a core at {R.P.line_gbit} Gbit/s",
                            what=f"CPU on frag refcounts today ({w}, {kit.kernel_label(R.release)})")
    sentence = (f"Today's stack takes {_fmt(c['atomics_per_mib'])} refcount atomics per MiB on `{w}`"
                f"{gso_text}, one page ref on a frag over {worst.folio_kib} KiB folios lets up to "
                f"{_fmt(100 * worst.uaf_share, unit='%')} of its pages be freed under it, and one owner per send "
                f"closes that hole and {_added(owner)} against the pinning change alone.")
    evidence = answers.cross_checked(
        f"kcount's MSG_ZEROCOPY transfers and kcount_rx's page_pool receive over veth, {agree} of {n} tracepoint "
        f"counts agreeing {compare.RULE}; priced by the atomics probe", kit.measured(R.units))
    return answers.Answer("a", sentence, "agree", number, evidence)


# ---------------------------------------------------------------- claims
def _today_frags_in_folio(R: Results):
    leds = {w: R.runs.ledger(w, "page_ref") for w in R.today}
    return all(led.uaf_pages == 0 and led.clean for led in leds.values()), {
        w: led.uaf_pages for w, led in leds.items()}


def _gso_costs_more(R: Results):
    g = R.gso
    return g["ratio"] >= 1 and (g["ratio"] > 1 or not g["segmented"]), {"ratio": g["ratio"],
                                                                         "segmented": g["segmented"]}


def _rx_pp(R: Results):
    run, whole = R.rx["run"], R.rx["whole_page"]
    per_slot = run["pp_atomics"] == (run["packets"] if run["split"] else 0)
    return per_slot and whole["pp_atomics"] == 0 and run["page_atomics"] == whole["page_atomics"] == 0, {
        "pp_per_packet": run["pp_per_packet"], "whole_page_pp_atomics": whole["pp_atomics"]}


COPIED = ("tcp_gso", "splice_send", "devmem_send")


def _copied_tables(R: Results) -> dict[str, pd.DataFrame]:
    """Priced policy tables of the workloads that reference frags more than once, with sends of 64 KiB."""
    copied = [w for w in COPIED if w in R.today]
    if R.P.send_size == 64 * KiB:
        return {w: R.tx_costs[w] for w in copied}
    runs = Replays.of(R.p, send_size=64 * KiB)
    return {w: policy_table(runs, w, R.units, R.P.line_gbit) for w in copied}


def _owner_over_today_where_frags_copied(R: Results, column: str):
    """Software GSO, splice, devmem: the per-skb owner's ``column`` over today's; below 1 on every one?"""
    ratios = {}
    for w, t in _copied_tables(R).items():
        t = t.set_index("policy")
        ratios[w] = round(t.loc["owner_skb", column] / t.loc["page_ref", column], 3)
    return all(r < 1 for r in ratios.values()), ratios


def _owner_cheaper_where_frags_copied(R: Results):
    return _owner_over_today_where_frags_copied(R, "atomics_per_mib")


def _owner_time_less_where_frags_copied(R: Results):
    """Time per MiB at this machine's costs."""
    return _owner_over_today_where_frags_copied(R, "ns_per_mib")


def _owner_adds_nothing_to_the_pins(R: Results):
    """Each transmit workload with 64 KiB sends: the owner with pins against today with pins (the pinning change
    alone)."""
    out, ok = {}, True
    runs = R.runs if R.P.send_size == 64 * KiB else Replays.of(R.p, send_size=64 * KiB)
    for w in R.tx_today:
        a = replays.attribution(runs, w, R.units, R.P.line_gbit).set_index("step")
        added = float(a.loc["owner with pins", "added_atomics_per_mib"])
        out[w] = round(added, 1)
        ok = ok and added <= 0
    return ok, out


def _pins_dearer_than_gup_refs(R: Results):
    """TSO, 64 KiB sends, no loss, no override, order-0 pages and 64 KiB folios: FOLL_PIN makes the owner dearer."""
    out, ok = {}, True
    for fp, (today, owner, _nbytes) in replays.pins_against_refs(R.p).items():
        out[f"{fp * 4}k"] = {"today": today.atomics, "owner_skb": owner.atomics, "owner_pin": owner.pin_atomics,
                             "today_page": today.page_atomics}
        ok = ok and owner.atomics > today.atomics
    return ok, out


def _override_needs_late_completion(R: Results):
    o = R.override[R.override.policy == "page_ref"]
    fired = o.expand_head_per_mib > 0
    late = o.txc_lag > o.inflight
    reref = o.expand_head_ref_atomics_per_mib > 0
    return bool((fired == late).all() and (reref == fired).all()), {"rtt_us_with_override": list(o[fired].rtt_us)}


def _one_ref_uaf(R: Results):
    span = R.spanning[R.spanning.policy == "page_ref"]
    order0 = span[(span.folio_kib == 4) & (span.frag_kib > 4)]
    within = span[span.frag_kib <= span.folio_kib]
    return (bool((order0.uaf_pages > 0).all() and (within.uaf_pages == 0).all()),
            {"worst_share": R.worst_spanning.uaf_share, "order0_min_share": order0.uaf_share.min()})


def _per_send_owners_never_free_early(R: Results):
    safe = ("page_ref_all", "owner_frag", "owner_skb", "owner_clone")
    bad = int(R.spanning[R.spanning.policy.isin(safe)].uaf_pages.sum())
    bad += int(R.grid[R.grid.policy.isin(safe)].uaf_pages.sum())
    bad += sum(R.runs.ledger(w, p).uaf_pages for w in R.today for p in safe)
    return bad == 0, {"uaf_pages": bad}


def _binding_frees_holder_memory(R: Results):
    """1 MiB, order-0 pages, 2048 B receive buffers, the run's other settings."""
    runs = Replays.of(R.p, bytes_sent=max(R.P.bytes_sent, MiB), folio_pages=1, rx_buf=2048)
    uaf = {w: runs.ledger(w, "owner_binding").uaf_pages for w in ("splice_send", "rx_gro")}
    safe = {w: runs.ledger(w, "owner_binding").uaf_pages for w in ("tcp_send", "devmem_send") if w in R.today}
    return all(v > 0 for v in uaf.values()) and all(v == 0 for v in safe.values()), {**uaf, **safe}


def _devmem_is_binding(R: Results):
    if "devmem_send" not in R.today:
        return True, {"devmem_tx": f"none on {kit.kernel_label(R.release)}"}
    today, binding = R.runs.ledger("devmem_send", "page_ref"), R.runs.ledger("devmem_send", "owner_binding")
    same = all(today.ref_by_op[op] == binding.ref_by_op[op] for op in range(T.N_OPS) if op != T.BUF_RELEASE)
    return same and today.uarg_atomics == binding.uarg_atomics and today.page_atomics == 0, {
        "owner_atomics_today": today.owner_atomics, "owner_atomics_binding": binding.owner_atomics}


def _model_follows_kernel(R: Results):
    return compare.follows(R.comparison, R.kernel.source)


def _run_owner_clean(R: Results):
    """The run's own workload only (the headline's two replays): what a sweep point can check for free."""
    w = R.P.workload
    today, owner = R.runs.ledger(w, "page_ref"), R.runs.ledger(w, "owner_skb")
    return owner.clean and today.leaked_refs == 0 and today.leaked_pages == 0, {
        "workload": w, "owner_violations": owner.violations, "owner_trace_errors": owner.trace_errors,
        "today_leaked_refs": today.leaked_refs, "today_leaked_pages": today.leaked_pages}


def _ledgers_balance(R: Results):
    tables = [R.policies, *R.tx_costs.values()]
    return all(bool(t.leaked_refs.eq(0).all()) for t in tables), {}


#: The claims the talk shows (the rest are in the chapter).
TALK_CLAIMS = ("owner_cheaper_where_frags_are_copied", "owner_adds_no_atomics_to_the_pins",
               "one_ref_for_many_pages_is_use_after_free", "model_follows_this_kernel")

#: A sweep point checks only ``the_runs_owner_is_clean``, read from the two replays its headline already made.
#: The rest (``per_point=False``) each need more than the point's own workload's replays: today's other
#: workloads (folios, GSO, receive, devmem, the copied-frag and pin attributions, every ledger), other settings
#: (64 KiB sends, the pins' and the binding's fixed settings, the override's round trips), the chapter's grids
#: (spanning frags, loss x folio) or the kcount probes' transfers. The chapter run checks them all.
CLAIMS = (
    Claim("today_frags_stay_in_a_folio",
          "Every workload of today's kernel builds frags inside one folio, so today's one ref per frag frees no "
          "page under a live frag and every ledger balances.",
          "holds", _today_frags_in_folio, per_point=False),
    Claim("gso_costs_more_refs",
          "Software GSO never takes fewer frag-memory ref atomics per MiB than TSO, and takes more whenever it "
          "segments at all (skb_segment refs every frag once per output segment).",
          "holds", _gso_costs_more, per_point=False),
    Claim("page_pool_pays_per_slot_not_per_page_ref",
          "The receive path takes no page _refcount atomic per packet: a page split into k buffers pays k "
          "pp_ref_count atomics, a page given whole pays none.",
          "holds", _rx_pp, per_point=False),
    Claim("owner_cheaper_where_frags_are_copied",
          "With 64 KiB sends, where the kernel references a frag more than once (software GSO, splice, devmem's "
          "binding refs), one owner ref per skb costs fewer atomics per MiB than today.",
          "holds", _owner_cheaper_where_frags_copied, per_point=False),
    Claim("owner_time_less_where_frags_are_copied",
          "With 64 KiB sends, where the kernel references a frag more than once (software GSO, splice, devmem), "
          "the per-skb owner also costs less time per MiB than today, at this machine's unit costs.",
          "holds", _owner_time_less_where_frags_copied, per_point=False),
    Claim("pins_cost_more_than_gup_refs",
          "On a TSO zerocopy send of 64 KiB sends with no loss and TX completions before ACKs, from order-0 "
          "pages and from 64 KiB folios, the per-skb owner "
          "takes more atomics than today: pinning user pages (FOLL_PIN: three atomics per page or PMD leaf in "
          "the fast path with PG_referenced, and the unpin) costs more than the GUP refs it replaces (two with "
          "PG_referenced); the pinning change, not the owner, pays for that (next claim).",
          "holds", _pins_dearer_than_gup_refs, per_point=False),
    Claim("owner_adds_no_atomics_to_the_pins",
          "With 64 KiB sends, charged only for what it adds, the per-skb owner takes no more atomics per MiB than "
          "today with pins (the pinning change alone: user pages pinned, a ref per frag reference on the pinning "
          "owner) on every transmit workload of the kernel the model follows.",
          "holds", _owner_adds_nothing_to_the_pins, per_point=False),
    Claim("override_needs_an_ack_before_the_completion",
          "pskb_expand_head() re-refs frags exactly when the first ACK comes before the TX completion (txc_lag "
          "> inflight).",
          "holds", _override_needs_late_completion, per_point=False),
    Claim("one_ref_for_many_pages_is_use_after_free",
          "The future physical-range frag: with one page ref per frag, frags over order-0 pages always get pages "
          "freed under them; frags within a folio never do.",
          "holds", _one_ref_uaf, per_point=False),
    Claim("per_send_owners_never_free_early",
          "page_ref_all and every per-send owner free no page under a live frag, on any workload, frag or folio "
          "size, at any loss rate.",
          "holds", _per_send_owners_never_free_early, per_point=False),
    Claim("binding_does_not_protect_holder_memory",
          "A binding-wide owner (devmem's rule for all memory) frees pipe and page_pool pages under live frags "
          "(1 MiB over order-0 pages, 2048 B receive buffers), and none of the user or dma-buf memory, whose "
          "holder keeps it until the completion.",
          "holds", _binding_frees_holder_memory, per_point=False),
    Claim("devmem_today_is_the_binding_rule",
          "Today's devmem TX takes exactly the binding policy's refs (one per frag reference on the binding) plus "
          "the same ubuf_info refs.",
          "holds", _devmem_is_binding, per_point=False),
    Claim("model_follows_this_kernel",
          "Fed a real transfer's size, MSS, send size, TSO setting and measured loss, the model's counts of "
          "transmissions, retransmits, skbs freed, GSO segments and completions agree with this kernel's "
          "tracepoints within 20 % (or one event of the transfer); fed a real receive's MSS, MTU and CPUs, its "
          "packets, page_pool pages and the share of the reader's frees deferred to the NAPI CPU agree too; "
          "every other count names the kernel path the model leaves out.",
          "holds", _model_follows_kernel, per_point=False),
    Claim("the_runs_owner_is_clean",
          "On the run's own workload and settings, the per-skb owner's replay is clean (no page freed under a "
          "live frag, no early completion, no reference, page or skb left, no invalid event), and today's "
          "leaves no reference or page behind.",
          "holds", _run_owner_clean),
    Claim("every_ledger_balances",
          "Every replay in this chapter ends with no reference held and no page left allocated.",
          "holds", _ledgers_balance, per_point=False),
)

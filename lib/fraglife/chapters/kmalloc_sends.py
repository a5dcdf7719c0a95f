"""Chapter 07 (book/07_kmalloc_sends.ipynb): kmalloc'd data in MSG_SPLICE_PAGES sends.

A kernel service that built a message in kmalloc'd memory cannot splice it today: slab pages
fail ``sendpage_ok()`` and ``skb_splice_from_iter()`` refuses them with -EIO. It copies instead:
most senders hand the piece to ``sendmsg()`` without MSG_SPLICE_PAGES and TCP copies it into the
socket's page_frag (:mod:`fraglife.model.copypath`, checked against the ``kcount_copy`` probe's
counts of the running kernel: ``Results.comparison``); a few copy it into ``page_frag_cache``
fragments and splice those; a destructor on the message's owner would let it send the kmalloc'd
memory itself. Per message: the copy (``memcpy`` probe), the allocations (cited figures), the
refcount atomics of the send (the copy-path model; the replay engine, :mod:`fraglife.model.workloads`'
``kmalloc_copy``, ``kmalloc_pages``, ``kmalloc_send``), and the memory held in flight (Little's
law). Rules at v6.18 (the running kernel), 6.12 LTS where it differs (``kernel`` parameter). Charts
are in :mod:`fraglife.views.kmalloc_sends`; the contract is in :mod:`fraglife.chapters`.
"""

from __future__ import annotations

import math
from functools import cached_property
from typing import Iterable, Mapping

import numpy as np
import pandas as pd

from .. import answers, cited
from ..claims import Claim
from ..model import copypath, costs, engine, kernels, trace as T, workloads
from ..model.costs import SLAB_CURVE, slab_ns  # noqa: F401  (the cited SLUB curve, where this chapter reads it)
from ..params import Params
from . import kit
from .kit import compare

KiB, MiB = 1 << 10, 1 << 20
PAGE = T.PAGE_SIZE
SLAB_MAX = workloads.KMALLOC_MAX_CACHE_SIZE
FRAG_PAGE = T.PAGE_FRAG_CACHE_MAX_SIZE
#: Today's path for most senders: a plain sendmsg() whose bytes tcp_sendmsg_locked() copies (model/copypath.py).
TCP_COPY = "TCP copy"
#: the designs replayed by the engine: the generator and the policy it is replayed under
DESIGNS = {
    "copy to page_frag": ("kmalloc_copy", "page_ref"),
    "copy to whole pages": ("kmalloc_pages", "page_ref"),
    "destructor": ("kmalloc_send", "owner_skb"),
    "kmalloc page refs": ("kmalloc_send", "page_ref"),  # today, above KMALLOC_MAX_CACHE_SIZE only
}
#: every design priced: today's copy path, then the engine's
ALL_DESIGNS = (TCP_COPY, *DESIGNS)
COPIES = (TCP_COPY, "copy to page_frag", "copy to whole pages")
TODAY_LABEL = TCP_COPY
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
# kmalloc() size classes up to KMALLOC_MAX_CACHE_SIZE on x86_64 (mm/slab_common.c kmalloc_info[], v6.18)
KMALLOC_CLASSES = (8, 16, 32, 64, 96, 128, 192, 256, 512, 1024, 2048, 4096, 8192)
#: Upper bounds for the library-mode claims test (tests/test_claims.py).
SMALL = {"bytes_sent": 512 * KiB}
CLAIMS_EXAMPLES = 10

#: How a sender puts a small piece in a send today (the ``path`` of :data:`SENDERS`).
PATHS = {
    "copied by TCP": "sendmsg() without MSG_SPLICE_PAGES: tcp_sendmsg_locked() copies it into the socket's page_frag",
    "page_frag, spliced": "copied into a page_frag_alloc() fragment, spliced, page_frag_free() after the send",
    "page_frag per request": "page_frag_alloc()'d once per request and reused for every I/O of it, spliced",
    "rxrpc txbuf": "built in page_frag_alloc_align() txbufs and spliced over UDP; a separate page_frag'd wire header "
                   "per transmission since 6.14",
}
#: Kernel services and the small pieces they send, what they do with them today (v6.18; 6.12 where it differs).
SENDERS = (
    ("SunRPC server (NFS server)", "TCP record marker", 4, "page_frag, spliced",
     "copied into a page_frag_alloc() fragment (svsk->sk_frag_cache), spliced in front of the reply's pages, "
     "page_frag_free() after", "net/sunrpc/svcsock.c svc_tcp_sendmsg()"),
    ("SunRPC client (NFS client)", "TCP record marker (on the stack)", 4, "copied by TCP",
     "sent with the head kvec without MSG_SPLICE_PAGES, MSG_MORE but on the last piece", "net/sunrpc/socklib.c "
     "xprt_send_rm_and_kvec(), xprt_sock_sendmsg()"),
    ("nvme-tcp host", "data PDU header (struct nvme_tcp_data_pdu)", 24, "page_frag per request",
     "the request's PDU buffer; spliced when no h2c data is left, else copied", "drivers/nvme/host/tcp.c "
     "nvme_tcp_init_request(), nvme_tcp_try_send_data_pdu()"),
    ("Ceph messenger v2", "frame preamble (CEPH_PREAMBLE_LEN)", 32, "copied by TCP",
     "kvecs through do_sendmsg() without MSG_SPLICE_PAGES; data pages spliced only if sendpage_ok()",
     "net/ceph/messenger_v2.c do_sendmsg(), do_try_sendpage()"),
    ("iSCSI initiator", "basic header segment (ISCSI_HDR_LEN)", 48, "copied by TCP",
     "segment->data by bvec_set_virt() without MSG_SPLICE_PAGES; data pages spliced unless a data digest",
     "drivers/scsi/iscsi_tcp.c iscsi_sw_tcp_xmit_segment()"),
    ("nvme-tcp host", "command capsule PDU (8 B header + 64 B command)", 72, "page_frag per request",
     "allocated once per request at init, reused per I/O, spliced (MSG_MORE if inline data follows)",
     "drivers/nvme/host/tcp.c nvme_tcp_init_request(), nvme_tcp_try_send_cmd_pdu()"),
    ("rxrpc (AFS, over UDP)", "DATA packet (1412 B + 28 B wire header)", 1440, "rxrpc txbuf",
     "data in a page_frag txbuf, spliced; the wire header a separate page_frag'd buffer per transmission "
     "(6.12: inside the txbuf)", "net/rxrpc/txbuf.c rxrpc_alloc_data_txbuf(), output.c rxrpc_send_data_packet(); "
     "commit 06ea2c9c4163"),
    ("SunRPC client (NFS client)", "call buffer from rpc_malloc() (up to RPC_BUFFER_MAXSIZE)", 2048,
     "copied by TCP", "the head kvec, without MSG_SPLICE_PAGES", "net/sunrpc/sched.c rpc_malloc(), "
     "net/sunrpc/socklib.c xprt_sock_sendmsg()"),
)
#: Bytes of rxrpc's separate wire header (sizeof(struct rxrpc_wire_header), net/rxrpc/protocol.h).
RXRPC_WIRE_HEADER = 28
#: A spliced frag's refcount atomics: get_page() in skb_append_pagefrags() and put_page() when the skb is freed
#: (net/core/skbuff.c skb_splice_from_iter()).
SPLICED_FRAG_ATOMICS = 2
#: page_frag_free(): one put on the cache page (mm/page_frag_cache.c, v6.18; mm/page_alloc.c, v6.12).
PAGE_FRAG_FREE_ATOMICS = 1
#: page_frag_cache per refill: page_ref_add() of the bias, page_ref_sub_and_test() when the page is used up.
PAGE_FRAG_REFILL_ATOMICS = 2

#: What happens to a slab page in a MSG_SPLICE_PAGES send, step by step (v6.18; the same in 6.12 but where said).
KERNEL_SITES = (
    ("sendpage_ok()", "!PageSlab(page) && page_count(page) >= 1", "include/linux/net.h"),
    ("skb_splice_from_iter()", "extracts the pages, then for each: WARN_ON_ONCE(!sendpage_ok(page)) and -EIO; "
     "its kernel-doc says such pages are copied, the code does not copy", "net/core/skbuff.c"),
    ("kmalloc() above KMALLOC_MAX_CACHE_SIZE (8 KiB)", "a compound page from the page allocator, not PageSlab, "
     "kfree() is free_large_kmalloc(): sendpage_ok() passes and frags take page refs", "mm/slub.c "
     "___kmalloc_large_node(), free_large_kmalloc()"),
    ("senders that check", "ceph: MSG_SPLICE_PAGES only if sendpage_ok(); nvme-tcp, drbd: cleared when "
     "!sendpages_ok(); TLS WARNs", "net/ceph/messenger_v2.c; drivers/nvme/host/tcp.c; "
     "drivers/block/drbd/drbd_main.c; net/tls/tls_main.c tls_push_sg()"),
    ("the copy without the flag", "tcp_sendmsg_locked() copies into the socket's page_frag: "
     "skb_page_frag_refill() reuses the page from offset 0 when its refcount is 1, keeps it while 32 bytes fit, "
     "else an order-3 (32 KiB) page; the bytes grow the last frag when they continue it, else a new frag and "
     "page_ref_inc()", "net/ipv4/tcp.c tcp_sendmsg_locked(), net/core/sock.c skb_page_frag_refill()"),
    ("page_frag_cache", "refill: one order-3 page, page_ref_add() of the bias; a fragment: the bias drops, no "
     "atomic; used up: page_ref_sub_and_test(); page_frag_free(): one put. Offsets ascend since 6.13 (in 6.12, "
     "mm/page_alloc.c, they count down)", "mm/page_frag_cache.c __page_frag_alloc_align()"),
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
#: The share of a service's sends whose partial tail the next send finds unsent: none. Each message is a request
#: or a reply that tcp_push() sends as its sendmsg() returns (TCP_NODELAY, or Nagle with nothing unacknowledged);
#: the kcount_copy transfers with TCP_NODELAY confirm it skb for skb. Messages that coalesce into an unsent tail
#: take fewer atomics on the copy path (:func:`copy_path_table`).
TAIL_UNSENT = 0.0
#: Messages a copy-path run sends, at most (its counts per message settle long before).
COPY_MESSAGES = 4096


def config(params: Mapping, size: int) -> dict:
    """Generator settings for messages of ``size`` bytes: the run's transfer, its TCP, and the skbs in flight
    over the latency at the service's rate (the generator's clock counts skbs)."""
    cfg = workloads.Config(mss=params["mss"])
    skb_bytes = min(cfg.size_goal, T.MAX_SKB_FRAGS * size)  # a frag per message or page, at most 17 per skb
    skb_us = skb_bytes * 8 / (params["rate_gbit"] * 1e3)
    return {"bytes_sent": max(params["bytes_sent"], size), "mss": params["mss"], "send_size": size,
            "loss_rate": params["loss_rate"], "cpus": params["cpus"], "seed": params["seed"],
            "inflight": max(1, min(4096, round(params["latency_us"] / skb_us))), "txc_lag": 1,
            "tail_unsent": TAIL_UNSENT}


def copy_sends(params: Mapping, size: int, tail_unsent: float = TAIL_UNSENT) -> copypath.CopyPath:
    """The copy path for messages of ``size`` bytes at the run's MSS."""
    n = max(16, min(COPY_MESSAGES, params["bytes_sent"] // size))
    return copypath.copy_sends(size, n, mss=params["mss"], tail_unsent=tail_unsent)


def copy_counts(m: copypath.CopyPath, cpus: int) -> dict:
    """The copy path's atomics as a ledger's counts: the frags' puts run where the skbs are freed, on the ACK's
    CPU (another CPU when there are two or more, as in the workloads' placement), so each is a line transfer."""
    return {"atomics": m.atomics, "bounces": m.free_atomics if cpus > 1 else 0}


def _refs_ns(counts: Mapping, units: costs.UnitCosts, nbytes: float, messages: float) -> float:
    return costs.total(costs.price_ledger(counts, units, nbytes)) * nbytes / MiB / messages


def loss_extra(params: Mapping, size: int, cfg: Mapping, lossy: Mapping) -> dict:
    """What loss adds to a frag's refcounting per message: the page_frag design's ledger (``lossy``: its counts,
    per message) less the same replay without loss. A lost segment's skb is split (``tcp_fragment()`` ->
    ``skb_split()``: a ref per frag it shares) and retransmitted as a copy while its clone is in flight
    (``pskb_copy()``: a ref per frag) whatever memory the frag is in, so TCP's copy, whose skbs carry one frag per
    message as that design's do, pays the same (net/ipv4/tcp_output.c, v6.18)."""
    if params["loss_rate"] == 0:
        return {}
    tr, st = workloads.generate_with_stats("kmalloc_copy", **{**cfg, "loss_rate": 0.0})
    clean = costs.ledger_counts(engine.replay(tr, "page_ref"))
    msgs = st["sendmsg"]
    return {k: max(0.0, lossy[k] - clean[k] / msgs) for k in ("atomics", "bounces") if k in lossy and k in clean}


def per_message(params: Mapping, size: int, units: costs.UnitCosts) -> list[dict]:
    """Per design at one message size: refcount atomics and their time, page allocations, from the copy-path
    model and the replays (``counts``: what the time was priced from, to price again with other units)."""
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
        counts = costs.ledger_counts(led)
        out.append({"design": design, "bytes": size, "messages": msgs, "atomics": led.atomics / msgs,
                    "refs_ns": _refs_ns(counts, units, cfg["bytes_sent"], msgs),
                    "page_allocs": st["page_allocs"] / msgs, "clean": led.clean,
                    "uaf_pages": led.uaf_pages, "trace_errors": led.trace_errors, "counts": counts,
                    "nbytes": cfg["bytes_sent"]})
    pf = next(r for r in out if r["design"] == "copy to page_frag")
    extra = loss_extra(params, size, cfg, {k: v / pf["messages"] for k, v in pf["counts"].items()})
    m = copy_sends(params, size)
    counts = copy_counts(m, params["cpus"])
    counts = {k: v + extra.get(k, 0.0) * m.messages for k, v in counts.items()}
    return [{"design": TCP_COPY, "bytes": size, "messages": m.messages, "atomics": counts["atomics"] / m.messages,
             "refs_ns": _refs_ns(counts, units, m.bytes, m.messages), "page_allocs": m.refills / m.messages,
             "clean": True, "uaf_pages": 0, "trace_errors": 0, "counts": counts, "nbytes": m.bytes}] + out


def replays(params: Mapping, units: costs.UnitCosts, sizes: Iterable[int] = SIZES) -> pd.DataFrame:
    return pd.DataFrame([r for s in sizes for r in per_message(params, s, units)])


def repriced(table: pd.DataFrame, units: costs.UnitCosts) -> pd.DataFrame:
    """The replays' refcount time priced with other unit costs (the counts stay)."""
    t = table.copy()
    t["refs_ns"] = [_refs_ns(c, units, n, m) for c, n, m in zip(t["counts"], t["nbytes"], t["messages"])]
    return t


def copy_path_table(params: Mapping, sizes: Iterable[int] = (64, 256, 1024, 4096, 16384, 65536)) -> pd.DataFrame:
    """The copy path per message, each message pushed (``TAIL_UNSENT``) and every tail kept unsent (messages
    coalesce): passes, skbs, frags, order-3 refills and refcount atomics."""
    rows = []
    for size in sizes:
        for label, share in (("pushed", 0.0), ("coalesced", 1.0)):
            m = copy_sends(params, size, share)
            rows.append({"bytes": size, "tails": label, "passes": m.per_message("passes"),
                         "skbs": m.per_message("skbs"), "frags": m.per_message("frags"),
                         "refills": m.per_message("refills"), "atomics": m.atomics / m.messages})
    return pd.DataFrame(rows)


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
    page (the socket's or a page_frag_cache's) lives until its last fragment is done, so one more page is held."""
    base = rate_gbit * 1e9 / 8 * latency_us * 1e-6
    if design == TCP_COPY:  # packed back to back in the socket's 32 KiB pages, one of them partly used
        return base + FRAG_PAGE
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
        for design in ALL_DESIGNS:
            if design == "kmalloc page refs" and size <= SLAB_MAX:
                continue
            refs = interp_refs(table, design, size)
            c = cost_ns(design, size, refs, curve, units, rate_gbit, latency_us)
            rows.append({"design": design, "bytes": size, **c, "ns_per_mib": c["total"] * MiB / size,
                         "held_bytes": held_bytes(design, size, rate_gbit, latency_us),
                         "in_flight": in_flight(size, rate_gbit, latency_us)})
    return pd.DataFrame(rows)


def crossover(table: pd.DataFrame, curve, units, rate_gbit: float, latency_us: float) -> float:
    """The smallest message size at which the destructor costs no more CPU than today's copy (``TODAY_LABEL``;
    log-spaced sizes from 16 B to 64 KiB; inf if it never does)."""
    sizes = np.unique(np.round(np.logspace(4, 16, 97, base=2)))
    c = costs_over(table, curve, units, rate_gbit, latency_us, sizes)
    piv = c.pivot_table(index="bytes", columns="design", values="total")
    won = piv[piv["destructor"] <= piv[TODAY_LABEL]]
    return float(won.index.min()) if len(won) else math.inf


# ---------------------------------------------------------------- the senders' atomics, by kernel
def page_frag_atomics(size: int) -> float:
    """A page_frag_alloc()'d piece spliced and freed: the skb's get and put, page_frag_free(), and its share of the
    cache page's refill (two atomics per 32 KiB page)."""
    return SPLICED_FRAG_ATOMICS + PAGE_FRAG_FREE_ATOMICS + PAGE_FRAG_REFILL_ATOMICS * size / FRAG_PAGE


def path_atomics(path: str, size: int, release: str, params: Mapping) -> float:
    """Refcount atomics per message of a piece of ``size`` bytes sent the way ``path`` says (:data:`PATHS`), on
    ``release``'s rules."""
    if path == "copied by TCP":
        m = copy_sends(params, size)
        return m.atomics / m.messages
    if path == "page_frag, spliced":
        return page_frag_atomics(size)
    if path == "page_frag per request":  # allocated and freed once per request, not per I/O
        return float(SPLICED_FRAG_ATOMICS)
    if path == "rxrpc txbuf":
        header = page_frag_atomics(RXRPC_WIRE_HEADER) if kernels.follows(release, "rxrpc_separate_header") else 0.0
        return page_frag_atomics(size) + header
    raise ValueError(f"path = {path!r} is not allowed: expected one of {', '.join(PATHS)}")


# ---------------------------------------------------------------- the model against the running kernel
#: What each compared quantity is, and how the kernel counted it (kcount_copy, the sending thread's tracepoints).
COPY_QUANTITIES = {
    "page_frag_refills": "order-3 (32 KiB) page allocations per MiB: kmem:mm_page_alloc with order 3 in the sending "
                         "thread, the page_frag refills of skb_page_frag_refill()",
    "sendmsg_passes": "passes of tcp_sendmsg_locked()'s loop per MiB: tcp:tcp_sendmsg_locked in the sending thread "
                      "(a message is cut at the size goal and at the end of a page_frag page)",
    "skbs_transmitted": "skbs TCP handed to the sending veth per MiB: net:net_dev_queue",
    "frags_per_gso_skb": "frags of each skb longer than one MSS, mean: net:netif_rx_entry's nr_frags on the "
                         "receiving veth, which sees the skb TCP built (64 KiB sends)",
    "frags_per_skb": "frags of each data skb, mean: net:netif_rx_entry's nr_frags (64 KiB sends)",
}
#: The kernel mechanisms the copy-path model leaves out, each where it moves a count below the model's.
PAGE_REUSE = ("skb_page_frag_refill() reuses the socket's page from offset 0, with no allocation, when its "
              "refcount is back to 1 (net/core/sock.c, v6.18): every skb that pointed into it was freed before the "
              "next send, as when small messages are acknowledged at once over veth; the model counts one refill "
              "per 32 KiB copied, the most there can be")
AUTOCORK = ("tcp_push() holds a tail shorter than the size goal while an earlier skb of the socket is still in the "
            "device's queue (tcp_should_autocork(): sk_wmem_alloc above the skb's truesize, net/ipv4/tcp.c, "
            "v6.18), even with TCP_NODELAY; over veth that skb goes when the receiving softirq runs, which on a "
            "busy machine comes after the next send, so messages share skbs; the model pushes every tail")
SPLIT = ("tcp_write_xmit() cuts skbs at the window edge and, when Nagle or autocork holds the rest, at a whole MSS "
         "(tcp_mss_split_point(), tso_fragment(), net/ipv4/tcp_output.c, v6.18): shorter skbs with fewer frags "
         "than the size-goal skbs the model builds, and more skbs than the tail share read from them assumes, so "
         "the model also misses merged tails (skbs of three frags)")
WAIT = ("a send that finds the send buffer full pushes what it has and waits (wait_for_space: tcp_push(), "
        "sk_stream_wait_memory()), then comes round tcp_sendmsg_locked()'s loop once more (net/ipv4/tcp.c, v6.18): "
        "a pass more, and a new skb, per wait, which large messages hit when the reader or its ACKs lag; the model "
        "never waits")
#: The mechanism that explains a row, by quantity and by where the kernel's count lies: below or above the model's.
REASONS = {
    "page_frag_refills": {"below": PAGE_REUSE},
    "skbs_transmitted": {"below": AUTOCORK, "above": WAIT},
    "sendmsg_passes": {"above": WAIT},
    "frags_per_gso_skb": {"below": SPLIT, "above": SPLIT},
    "frags_per_skb": {"below": SPLIT, "above": SPLIT},
}


def _reason(quantity: str, model: float, kernel: float, low: float, high: float, mib: float, **kw) -> str:
    """The mechanism that explains a row that does not agree, if one moves this quantity the way the kernel's
    count lies from the model's (:data:`REASONS`); else none."""
    if compare.agrees(model, kernel, low, high, mib, **kw):
        return ""
    return REASONS.get(quantity, {}).get("below" if kernel < model else "above", "")


def fed_tail(run: Mapping) -> float:
    """The share of a transfer's sends that found the previous tail unsent: none with TCP_NODELAY (each tail
    pushed; veth completes TX at once, so autocork holds none), else what its skbs per message say (Nagle's
    timing: :func:`fraglife.model.copypath.tail_share`)."""
    if run["nodelay"]:
        return 0.0
    skbs = run["per_message"]["net:net_dev_queue"]["value"]
    return copypath.tail_share(run["size"], skbs, _mss(run))


def _mss(run: Mapping, default: int = 1448) -> int:
    return int(((run.get("tcp_info") or {}).get("tx") or {}).get("snd_mss") or default)


def comparison_rows(result, mss: int = 1448) -> pd.DataFrame:
    """The copy-path model fed each kcount_copy transfer's size, TCP_NODELAY and tail share against the kernel's
    counts (compare's row format): refills and passes for every transfer, skbs where the setting decides the tail
    (TCP_NODELAY; without it the tail share is read from the skbs, so they are not compared), frags per skb of the
    64 KiB copy sends."""
    rows = []
    ch = "07_kmalloc_sends"
    for r in result.data.get("messages", []):
        m = copypath.copy_sends(r["size"], r["messages"], mss=_mss(r, mss), tail_unsent=fed_tail(r))
        mib = r["bytes"] / MiB
        pm = r["per_mib"]
        pairs = [("page_frag_refills", "kmem:mm_page_alloc[order3]", m.per_mib("refills")),
                 ("sendmsg_passes", "tcp:tcp_sendmsg_locked", m.per_mib("passes"))]
        if r["nodelay"]:
            pairs.append(("skbs_transmitted", "net:net_dev_queue", m.per_mib("skbs")))
        for q, counter, model in pairs:
            k = pm[counter]
            why = _reason(q, model, k["value"], k["low"], k["high"], mib)
            rows.append(compare.row(ch, r["name"], q, k["value"], model, mib=mib, low=k["low"], high=k["high"],
                                    reason=why, measured=result.source, how_counted=COPY_QUANTITIES[q]))
    for f in result.data.get("frags", []):
        if f["sender"] != "send":
            continue
        call = f["call"]
        share = copypath.tail_share(call, f["skbs_per_mib"] * call / MiB, mss)
        m = copypath.copy_sends(call, f["bytes"] // call, mss=mss, tail_unsent=share)
        for q, kern, model in (("frags_per_gso_skb", f["mean_frags_gso"], m.frags_per_gso_skb),
                               ("frags_per_skb", f["mean_frags"], m.frags_per_skb)):
            why = _reason(q, model, kern, kern, kern, f["bytes"] / MiB, slack_events=0.0)
            rows.append(compare.row(ch, f"{call // 1024}KiB_sends_frags", q, kern, model, mib=f["bytes"] / MiB,
                                    slack_events=0.0, reason=why, measured=result.source,
                                    how_counted=COPY_QUANTITIES[q]))
    return compare.table([rows])


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
    def dma(self) -> pd.DataFrame:
        """Per message size of the copy path's table: TCP's copy path priced here, each message pushed, beside
        mapping its frags for DMA on a real NIC (cited: veth maps nothing)."""
        frags = self.copy_path[self.copy_path.tails == "pushed"].set_index("bytes").frags
        c = self.per_size[self.per_size.design == TCP_COPY].set_index("bytes").total.reindex(frags.index)
        return cited.per_message(frags.index, frags, c, "TCP's copy path")

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
    def release(self) -> str:
        """The kernel whose rules the model follows (the ``kernel`` parameter; "running": the kcount_copy
        transfers' kernel)."""
        return kit.kernel_release(self.P.kernel, self.P.measurements, self.kernel)

    def sender_atomics(self, path: str, size: int, release: str) -> float:
        """Refcount atomics per message of a sender's piece on ``release``'s rules (``path``: :data:`PATHS`)."""
        return path_atomics(path, size, release, self.P)

    @cached_property
    def senders(self) -> pd.DataFrame:
        """The in-tree senders' pieces: what they do today, their refcount atomics per message (the chapter's
        kernel), and the run's cost of copying against the destructor."""
        rows = []
        for who, piece, size, path, today, source in SENDERS:
            c = costs_over(self.table, self.memcpy, self.units, self.P.rate_gbit, self.P.latency_us, [size])
            c = c.set_index("design").total
            side = "destructor" if c["destructor"] <= c[TODAY_LABEL] else "copy"
            rows.append({"sender": who, "piece": piece, "bytes": size, "path": path, "today": today,
                         "atomics": round(self.sender_atomics(path, size, self.release), 2),
                         "copy ns": round(c[TODAY_LABEL], 1), "destructor ns": round(c["destructor"], 1),
                         "cheaper": side, "source": f"{source}, v{kernels.series(self.release)}"})
        return pd.DataFrame(rows)

    @cached_property
    def on_lts(self) -> pd.DataFrame:
        """The senders whose atomics per message differ between the chapter's kernel and 6.12 LTS, both."""
        other = kernels.LTS if kernels.series(self.release) != kernels.LTS else kernels.NEWEST
        rows = []
        for who, piece, size, path, _today, _source in SENDERS:
            here, there = (self.sender_atomics(path, size, r) for r in (self.release, other))
            if abs(here - there) > 1e-9:
                rows.append({"sender": who, "piece": piece, kit.kernel_label(self.release): round(here, 2),
                             kit.kernel_label(other): round(there, 2)})
        return pd.DataFrame(rows)

    @cached_property
    def rules_612(self) -> pd.DataFrame:
        """This chapter's versioned rules: what changed since 6.12 LTS and whether the chapter's kernel has it."""
        return pd.DataFrame([{"rule": r.name, "since": r.changed_in, "6.12": r.before, "after": r.after,
                              "this kernel": "after" if kernels.follows(self.release, r.name) else "6.12",
                              "source": f"{r.cite_before}; {r.cite_after}"}
                             for r in kernels.VERSIONED_RULES if "07" in r.chapters])

    @cached_property
    def copy_path(self) -> pd.DataFrame:
        """The copy path per message by size, each message pushed or every tail coalesced."""
        return copy_path_table(self.P)

    # -------------------------------------------------------- the model against the kernel
    @cached_property
    def kernel(self):
        """The kcount_copy probe: plain sends over veth, counted by the running kernel's tracepoints."""
        return kit.probe("kcount_copy", self.P.measurements)

    @cached_property
    def transfers(self) -> pd.DataFrame:
        """The probe's transfers as the model is fed them: size, TCP_NODELAY, the tail share."""
        return pd.DataFrame([{"transfer": r["name"], "bytes": r["size"], "messages": r["messages"],
                              "nodelay": r["nodelay"], "tail_unsent": round(fed_tail(r), 3)}
                             for r in self.kernel.data.get("messages", [])])

    @cached_property
    def comparison(self) -> pd.DataFrame:
        """The copy-path model fed each transfer's settings against the kernel's counts (compare's rows)."""
        return comparison_rows(self.kernel, self.P.mss)

    @cached_property
    def comparison_table(self) -> pd.DataFrame:
        return self.comparison[compare.TABLE_COLUMNS]

    @cached_property
    def crossover_span(self) -> tuple[float, float, float]:
        """The crossover at the run's rate and latency over the measured unit costs' ranges: (value, low, high)."""
        def at(u):
            return crossover(repriced(self.table, u), self.memcpy, u, self.P.rate_gbit, self.P.latency_us)
        return self.units.span(at)

    @cached_property
    def refused(self) -> dict[str, object]:
        """The tiny trace of a slab splice, replayed today and with the destructor."""
        tr = slab_splice_trace()
        return {"today": engine.replay(tr, "page_ref"), "destructor": engine.replay(tr, "owner_skb")}

    @cached_property
    def headline(self) -> dict:
        m = self.mix.set_index("design")
        agree, n = compare.tally(self.comparison)
        cross, low, high = self.crossover_span
        pushed = self.copy_path[(self.copy_path.tails == "pushed") & (self.copy_path.bytes <= KiB)].atomics
        return {
            "crossover_bytes": self.crossover,
            "crossover_low_bytes": low,
            "crossover_high_bytes": high,
            "copy_ns_per_message": float(m.loc[TODAY_LABEL, "ns_per_message"]),
            "destructor_ns_per_message": float(m.loc["destructor", "ns_per_message"]),
            "pages_ns_per_message": float(m.loc["copy to whole pages", "ns_per_message"]),
            "copy_held_kib": float(m.loc[TODAY_LABEL, "held_kib"]),
            "destructor_held_kib": float(m.loc["destructor", "held_kib"]),
            "pages_held_kib": float(m.loc["copy to whole pages", "held_kib"]),
            "copy_atomics_small_pushed": float(pushed.max()),
            "copy_atomics_64_coalesced": float(self.copy_path.set_index(["bytes", "tails"]).atomics[64, "coalesced"]),
            "kernel_agree": agree,
            "kernel_compared": n,
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
    return pd.DataFrame(list(KERNEL_SITES), columns=["where", "what it does", "source (v6.18)"])


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
             f"**{t[TCP_COPY, 64]:.0f} ns** copied by TCP, {t['copy to page_frag', 64]:.0f} ns copied into a "
             f"page_frag_cache fragment and spliced, and **{t['destructor', 64]:.0f} ns** with a destructor")
    return (f"{small}; an 8 KiB one **{t[TCP_COPY, 8192]:.0f}**, {t['copy to page_frag', 8192]:.0f} and "
            f"**{t['destructor', 8192]:.0f} ns**. In the cited measurement an allocation costs {dearer:.1f} times as "
            f"much once more than {knee} objects of its cache are outstanding. The crossover with TCP's copy here: "
            f"**{_size(R.crossover)}**.")


def memory_remark(R: Results) -> str:
    kib = R.per_size.set_index(["design", "bytes"]).held_bytes.xs(256, level="bytes") / KiB
    owned = f"kmalloc'd with their owners ({OWNER_BYTES} bytes each, from kmalloc-{OWNER_BYTES})"
    return (f"Held in flight at {R.P.rate_gbit:g} Gbit/s for {R.P.latency_us:g} us, 256 B messages copied into whole "
            f"pages hold **{kib['copy to whole pages']:.0f} KiB**, copied by TCP {kib[TCP_COPY]:.0f} KiB, into "
            f"page_frag_cache fragments {kib['copy to page_frag']:.0f} KiB, {owned} {kib['destructor']:.0f} KiB.")


def senders_remark(R: Results) -> str:
    s = R.senders
    copy = s[s.cheaper == "copy"]
    dest = s[s.cheaper == "destructor"]
    by_tcp = s[s.path == "copied by TCP"]
    return (f"{len(by_tcp)} of the {len(s)} pieces are copied by TCP today, at "
            f"{by_tcp.atomics.min():.2f} to {by_tcp.atomics.max():.2f} refcount atomics each; the rest are "
            f"page_frag memory, spliced, at {s[s.path != 'copied by TCP'].atomics.min():.2f} to "
            f"{s[s.path != 'copied by TCP'].atomics.max():.2f}. At this rate and latency {len(copy)} of the {len(s)} "
            f"pieces are cheaper to copy and {len(dest)} cheaper to send with a destructor"
            f"{' (' + ', '.join(f'{b} B' for b in dest.bytes) + ')' if len(dest) else ''}.")


def copy_remark(R: Results) -> str:
    """The copy path's atomics per message, pushed and coalesced, from the model the kernel's counts check."""
    t = R.copy_path.set_index(["bytes", "tails"]).atomics
    h = R.headline
    return (f"A message of up to 1 KiB that leaves in its own skb takes at most **{h['copy_atomics_small_pushed']:.2f}** "
            f"refcount atomics (its frag's `page_ref_inc()` and the put when the skb is freed, and a share of a "
            f"page put per 32 KiB); 64 B messages that coalesce into an unsent tail share one frag per skb: "
            f"**{h['copy_atomics_64_coalesced']:.3f}** each. A 64 KiB message takes {t[65536, 'pushed']:.0f}.")


def comparison_remark(R: Results) -> str:
    agree, n = compare.tally(R.comparison)
    src = R.kernel.source
    why = ("as the run's measurements parameter asks" if R.P.measurements == "recorded" else
           f"this run could not count live: {getattr(R.kernel, 'reason', None) or 'no root or no tracepoints'}")
    where = ("counted now by this machine's tracepoints" if src == "live" else
             f"from the recording in data/probes/ (kernel {R.kernel.kernel or 'unknown'}, {R.kernel.recorded_at}), "
             f"{why}")
    off = R.comparison[R.comparison.agrees == False]  # noqa: E712 (None: not compared)
    lines = []
    for why, g in compare.by_reason(off, "**not explained by the chapter**: a rule to revisit").items():
        rows = ", ".join(f"`{r.transfer}` {r.quantity.replace('_', ' ')} (model {r.model:.1f}, kernel {r.kernel:.1f} "
                         f"per MiB)" for r in g)
        lines.append(f"- {rows}: {why}.")
    gaps = ("Where they differ:\n\n" + "\n".join(lines)) if lines else f"Every quantity agrees {compare.RULE}."
    return f"{agree} of {n} quantities agree {compare.RULE}; the kernel's counts are {where}. {gaps}"


def lts_remark(R: Results) -> str:
    t = R.on_lts
    if t.empty:
        return "No sender's atomics per message differ between the two kernels."
    return (f"Only {kit.words(t.sender)} differ{'s' if len(t) == 1 else ''}: the other senders' paths read the same in "
            f"6.12 and {kernels.series(R.release) if kernels.series(R.release) != kernels.LTS else kernels.NEWEST}.")


def conclusion(R: Results) -> str:
    h = R.headline
    g = R.crossover_grid
    s = R.senders
    below = s[s.bytes < R.crossover]
    return kit.points(
        f"**Today.** A slab object in a MSG_SPLICE_PAGES send is refused; the senders copy. TCP's copy path takes "
        f"{h['copy_atomics_64_coalesced']:.2f} to {h['copy_atomics_small_pushed']:.2f} refcount atomics per small "
        f"message; {h['kernel_agree']} of {h['kernel_compared']} of the kernel's counts agree with that model.",
        f"**Crossover.** A destructor costs less CPU than TCP's copy from **{_size(R.crossover)}** at "
        f"{R.P.rate_gbit:g} Gbit/s and {R.P.latency_us:g} us in flight ({_size(g.crossover_bytes.min())} to "
        f"{_size(g.crossover_bytes.max())} from {g.latency_us.min():g} to {g.latency_us.max():g} us).",
        f"**The senders.** {len(below)} of {len(s)} pieces are smaller than that; for them a destructor buys one "
        f"lifetime rule, not CPU.",
    )


def answer(R: Results) -> answers.Answer:
    """Chapter 07's row of the answers table: (g), with the crossover over the measured unit costs."""
    h = R.headline
    value, low, high = R.crossover_span
    if not all(map(math.isfinite, (value, low, high))):
        value = low = high = float(SIZES[-1])  # no crossover up to 64 KiB: the largest size priced
    cross = answers.Number(value, low, high, unit="B",
                           what="message size from which a destructor costs less CPU than TCP's copy")
    s = R.senders
    below = int((s.bytes < R.crossover).sum())
    pieces = (f"larger than every piece (up to {_size(s.bytes.max())}) the in-tree senders send" if below == len(s)
              else f"larger than {below} of the {len(s)} pieces the in-tree senders send")
    source = R.kernel.source if R.kernel.source == kit.measured(R.units) else "mixed"
    return answers.Answer(
        "g", f"Slab memory cannot be spliced today and the senders copy it, at {h['copy_atomics_64_coalesced']:.2f} "
             f"(coalesced) to {h['copy_atomics_small_pushed']:.2f} (one skb each) refcount atomics per small message "
             f"on TCP's copy path ({h['kernel_agree']} of {h['kernel_compared']} kernel counts agree with the model), "
             f"so a destructor saves CPU only from about {cross.text} per message, {pieces}.",
        "agree, at a cost", cross,
        answers.cross_checked("the kcount_copy probe's tracepoint counts of plain sends over veth: page_frag "
                              "refills, sendmsg passes and skbs; times priced by the memcpy and atomics probes "
                              "and cited allocation costs", source if source in ("live", "recorded") else "mixed"))


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


def _destructor_wins_at_64k(R: Results):
    f = _fixed_costs(R, 65536)
    return bool((f.destructor_ns < f.copy_ns).all()), {"worst_margin_ns": float((f.copy_ns - f.destructor_ns).min()),
                                                       "crossover_bytes": R.crossover}


def _whole_pages_waste(R: Results):
    ratios = {s: held_bytes("copy to whole pages", s, 1.0, 1.0) / held_bytes("destructor", s, 1.0, 1.0)
              for s in (64, 256, 1024)}
    return all(r >= 3.5 for r in ratios.values()), {str(k): round(v, 2) for k, v in ratios.items()}


def _ledgers_balance(R: Results):
    t = R.table
    return bool(t.clean.all()), {"replays": len(t), "unclean": int((~t.clean).sum())}


def _copy_path_follows_the_kernel(R: Results):
    return compare.follows(R.comparison, R.kernel.source)


def _copy_path_atomics(R: Results):
    t = R.copy_path.set_index(["bytes", "tails"]).atomics
    pushed = [t[b, "pushed"] for b in (64, 256, 1024)]
    coalesced = t[64, "coalesced"]
    return all(1.9 <= a <= 2.1 for a in pushed) and coalesced < 0.1, {
        "pushed_64_256_1024": [round(a, 3) for a in pushed], "coalesced_64": round(coalesced, 4)}


def _rxrpc_header_on_612(R: Results):
    size = next(b for _, _, b, path, _, _ in SENDERS if path == "rxrpc txbuf")
    new = path_atomics("rxrpc txbuf", size, kernels.NEWEST, R.P)
    old = path_atomics("rxrpc txbuf", size, kernels.LTS, R.P)
    return new > old and all(path_atomics(p, b, kernels.NEWEST, R.P) == path_atomics(p, b, kernels.LTS, R.P)
                             for _, _, b, p, _, _ in SENDERS if p != "rxrpc txbuf"), {
        "rxrpc_6.18": round(new, 3), "rxrpc_6.12": round(old, 3)}


#: Claims over the probes' counts of this kernel (per_point=False) are the chapter run's, not a sweep point's.
CLAIMS = (
    Claim("the_copy_path_follows_the_kernel",
          "TCP's copy path as the model follows it (a frag per skb or page_frag page, one order-3 refill per 32 KiB, "
          "a pass per piece cut at the size goal and the page's end) agrees with the kernel's counts of plain sends "
          f"{compare.RULE}, or the row names the kernel mechanism the model leaves out.",
          "holds", _copy_path_follows_the_kernel, per_point=False),
    Claim("a_copied_small_message_takes_two_atomics_or_none",
          "A message of 64 B to 1 KiB copied by TCP takes about 2 refcount atomics when it leaves in its own skb "
          "(its frag's inc and put), and under 0.1 when 64 B messages coalesce into an unsent tail.",
          "holds", _copy_path_atomics),
    Claim("only_rxrpc_differs_on_6_12",
          "Of the senders' pieces only rxrpc's DATA packet takes more atomics on 6.18 than on 6.12 LTS: its separate "
          "page_frag'd wire header since 6.14.",
          "holds", _rxrpc_header_on_612),
    Claim("slab_memory_is_refused_today",
          "Today's kernel refuses a slab object in a MSG_SPLICE_PAGES send (-EIO, no frag, no ref); with a "
          "destructor on its owner the same send replays clean with no page ref.",
          "holds", _refused_today),
    Claim("large_kmalloc_splices_today",
          "A 16 KiB kmalloc'd message (over KMALLOC_MAX_CACHE_SIZE, 8 KiB) splices today with page refs on its "
          "compound page; one of 8 KiB is refused.",
          "holds", _large_kmalloc_splices),
    Claim("copying_64_bytes_beats_the_destructor",
          "A 64 B message costs less CPU copied by TCP than sent with a destructor, at every rate from 1 "
          "to 400 Gbit/s and every latency from 1 us to 100 ms.",
          "holds", _copy_wins_at_64),
    # at 16 KiB the two tie on some machines: the crossover follows the memcpy probe (3.4-5.7 KiB on an AMD EPYC,
    # 16-17.4 KiB on an Intel Xeon whose 16 KiB copy took 66 ns, not 163): the claim is made at 64 KiB, where both agree
    Claim("the_destructor_beats_copying_64k",
          "A 64 KiB message costs less CPU sent with a destructor than copied by TCP, at every rate "
          "from 1 to 400 Gbit/s and every latency from 1 us to 100 ms; where smaller ones cross over depends on "
          "this machine's memcpy (the crossover above).",
          "holds", _destructor_wins_at_64k),
    Claim("whole_pages_waste_memory_below_a_page",
          "Copying messages of 64 B to 1 KiB into whole pages holds at least 3.5 times the bytes in flight that the "
          "destructor's kmalloc'd messages and owners hold, at any rate and latency.",
          "holds", _whole_pages_waste),
    Claim("every_ledger_balances",
          "Every replay of the designs ends clean: no reference held, no page left, no page freed under a "
          "live frag, no refused frag.",
          "holds", _ledgers_balance),
)
#: The claims the conference talk shows (fraglife talk).
TALK_CLAIMS = ("the_copy_path_follows_the_kernel", "slab_memory_is_refused_today",
               "copying_64_bytes_beats_the_destructor", "the_destructor_beats_copying_64k")


def dma_remark(R: Results) -> str:
    """What mapping each message's frag for DMA would add on a real NIC, against this chapter's price (cited)."""
    return cited.message_remark(R.dma)

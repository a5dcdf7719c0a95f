"""Chapter 01's analyses: page refs today vs owner refs, per workload and per MiB.

Everything here is a thin layer over :mod:`workloads` and :mod:`engine`; the
chapter calls these functions and narrates their results.
"""

from __future__ import annotations

from typing import Iterable

import numpy as np
import pandas as pd

from . import engine, trace as T, workloads
from .ledger import Ledger
from .policies import POLICIES

MiB = 1 << 20
WORKLOAD_KEYS = ("bytes_sent", "mss", "frag_size", "loss_rate", "cpus", "seed", "folio_pages")


def config(params) -> dict:
    """Generator settings from chapter parameters (ignores names the generators don't take)."""
    return {k: params[k] for k in WORKLOAD_KEYS if k in params}


def workloads_counts(trace: np.ndarray) -> dict[str, int]:
    """Events of each kind in a trace, leaving out kinds it never uses."""
    return {k: v for k, v in T.counts(trace).items() if v}


def replay_all(trace: np.ndarray, policies: Iterable[str] = POLICIES) -> dict[str, Ledger]:
    return {p: engine.replay(trace, p) for p in policies}


def per_mib(led: Ledger, nbytes: int) -> dict:
    """The ledger's counts normalised to one MiB of payload."""
    mib = nbytes / MiB
    return {
        "atomics_per_mib": led.atomics / mib,
        "ref_atomics_per_mib": led.ref_atomics / mib,
        "bounces_per_mib": led.bounces / mib,
        "refs_taken_per_mib": led.refs_taken / mib,
    }


def policy_table(workload: str, params) -> pd.DataFrame:
    """One row per policy for one workload: costs per MiB, memory held, violations."""
    cfg = config(params)
    tr = workloads.generate(workload, **cfg)
    rows = []
    for name, led in replay_all(tr).items():
        rows.append({
            "policy": name,
            **per_mib(led, cfg["bytes_sent"]),
            "lines": led.lines,
            "pages_peak": led.pages_peak,
            "uaf_pages": led.uaf_pages,
            "leaked_refs": led.leaked_refs,
            "clean": led.clean,
        })
    return pd.DataFrame(rows)


def by_event(params, workload_names: Iterable[str] = workloads.WORKLOADS, policy: str = "page_ref") -> pd.DataFrame:
    """Ref atomics per MiB by event type, one block per workload (tidy: workload, event, per_mib)."""
    cfg = config(params)
    rows = []
    for w in workload_names:
        led = engine.replay(workloads.generate(w, **cfg), policy)
        for event, n in led.by_op().items():
            rows.append({"workload": w, "event": event, "ref_atomics": n,
                         "per_mib": n / (cfg["bytes_sent"] / MiB)})
    return pd.DataFrame(rows)


def event_matrix(events: pd.DataFrame) -> pd.DataFrame:
    """by_event() as workload x event, every event type present (zero where none was paid)."""
    m = events.pivot_table(index="workload", columns="event", values="per_mib", aggfunc="sum", fill_value=0)
    return m.reindex(columns=[e for e in T.OP_NAMES if e != "alloc"], fill_value=0)


def sweep(params, *, workload: str, loss_rates: Iterable[float], frag_sizes: Iterable[int],
          policies: Iterable[str] = POLICIES) -> pd.DataFrame:
    """Costs per MiB over a grid of loss rate and frag size (tidy)."""
    base = config(params)
    rows = []
    for frag in frag_sizes:
        for loss in loss_rates:
            cfg = dict(base, frag_size=int(frag), loss_rate=float(loss))
            tr = workloads.generate(workload, **cfg)
            for name in policies:
                led = engine.replay(tr, name)
                rows.append({"frag_size": int(frag), "loss_rate": float(loss), "policy": name,
                             **per_mib(led, cfg["bytes_sent"]), "uaf_pages": led.uaf_pages})
    return pd.DataFrame(rows)


def spanning_frags(params, *, frag_sizes: Iterable[int], folio_pages: Iterable[int],
                   policies: Iterable[str] = POLICIES) -> pd.DataFrame:
    """The thread's warning as a grid: multi-page frags over folios of various sizes."""
    base = config(params)
    rows = []
    for fp in folio_pages:
        for frag in frag_sizes:
            cfg = dict(base, frag_size=int(frag), folio_pages=int(fp))
            tr = workloads.generate("multipage_send", **cfg)
            attached = tr[tr["op"] == T.ATTACH]
            for name in policies:
                led = engine.replay(tr, name)
                rows.append({"folio_kib": fp * 4, "frag_kib": frag // 1024, "policy": name,
                             "frags": len(attached), "uaf_pages": led.uaf_pages,
                             "uaf_share": led.uaf_pages / max(1, int(tr[tr["op"] == T.ALLOC]["len"].sum())),
                             "ref_atomics_per_mib": led.ref_atomics / (cfg["bytes_sent"] / MiB),
                             "pages_peak": led.pages_peak})
    return pd.DataFrame(rows)


def tiny_spanning_trace() -> np.ndarray:
    """One 16 KiB frag over four order-0 pages, sent and let go of like a splice.

    A pipe (the holder) owns four separate pages; splice_to_socket() builds one
    frag over all of them, the socket clones it for the device, and the pipe
    releases its buffers as soon as sendmsg() returns (pipe_buf_release() in
    fs/splice.c, v6.12). Only the device clone keeps the data alive.
    """
    tb = T.TraceBuilder()
    tb.alloc(0, buf=0, pfn=0, pages=4, folio_pages=1)
    tb.skb_alloc(0, skb=0)
    tb.attach(0, skb=0, buf=0, pfn=0, off=0, length=4 * T.PAGE_SIZE)
    tb.clone(0, new=1, src=0)
    tb.buf_release(0, buf=0)
    tb.free(1, skb=0)  # ACK: the write-queue skb goes first
    tb.free(1, skb=1)  # TX completion: the device is done with the clone
    return tb.build()


def walk(trace: np.ndarray, policy: str) -> pd.DataFrame:
    """Step the twin through a small trace; show folio/owner refcounts and freed-but-pointed pages."""
    from .reference import Replay

    r = Replay(POLICIES[policy], **T.sizes(trace))
    rows = []
    for ev in trace:
        r.c["events"] += 1
        r.step(*(int(ev[k]) for k in T.EVENT.names))
        pages = sorted(r.alive)
        rows.append({
            "event": T.OP_NAMES[int(ev["op"])],
            "refcounts": " ".join(
                f"{q}:{r.folio_ref.get(q, 0)}" for q in pages if r.head.get(q) == q
            ) if POLICIES[policy].holds_pages else " ".join(f"owner{b}:{x.owner_ref}" for b, x in r.buffers.items()),
            "pages freed": " ".join(str(q) for q in pages if not r.alive[q]) or "-",
            "frag still points at freed page": int(r.c["uaf_pages"]),
        })
    return pd.DataFrame(rows)


def headline(**params) -> dict:
    """Chapter 01's result as one tidy record: today's refs vs the owner design for one workload.

    Takes chapter 01's parameters (validated by the caller) and returns plain
    numbers: ref atomics and bounces per MiB under today's policy and the
    per-skb owner, their ratio, and the use-after-free pages today's single
    page ref allows.
    """
    cfg = config(params)
    tr = workloads.generate(params.get("workload", "tcp_send"), **cfg)
    today = engine.replay(tr, "page_ref")
    owner = engine.replay(tr, "owner_skb")
    t, o = per_mib(today, cfg["bytes_sent"]), per_mib(owner, cfg["bytes_sent"])
    return {
        "events": int(len(tr)),
        "page_ref_atomics_per_mib": t["ref_atomics_per_mib"],
        "owner_ref_atomics_per_mib": o["ref_atomics_per_mib"],
        "owner_saving": 1 - o["ref_atomics_per_mib"] / t["ref_atomics_per_mib"] if t["ref_atomics_per_mib"] else 0.0,
        "page_ref_bounces_per_mib": t["bounces_per_mib"],
        "owner_bounces_per_mib": o["bounces_per_mib"],
        "page_ref_uaf_pages": today.uaf_pages,
        "owner_uaf_pages": owner.uaf_pages,
        "page_ref_pages_peak": today.pages_peak,
        "owner_pages_peak": owner.pages_peak,
    }


# Where today's kernel takes and drops frag references, per model event (v6.12).
KERNEL_SITES = (
    ("attach", "tcp_sendmsg_locked() -> skb_zerocopy_iter_stream() -> zerocopy_fill_skb_from_iter()",
     "one page ref per frag (GUP refs each page; pages merged into one frag give theirs back in a batch)",
     "net/core/datagram.c zerocopy_fill_skb_from_iter(), v6.12"),
    ("attach", "splice_to_socket() -> skb_splice_from_iter() -> skb_append_pagefrags()",
     "get_page() per new frag", "net/core/skbuff.c skb_append_pagefrags(), v6.12"),
    ("clone", "__tcp_transmit_skb() -> skb_clone() -> __skb_clone()",
     "none: shinfo->dataref + 1, both skbs marked cloned", "net/core/skbuff.c __skb_clone(), v6.12"),
    ("split", "tcp_fragment() / tso_fragment() -> skb_split() -> skb_split_no_header()",
     "one, for the frag straddling the split; whole frags move", "net/core/skbuff.c skb_split_no_header(), v6.12"),
    ("segment", "validate_xmit_skb() -> skb_segment()",
     "one per frag per output segment (__skb_frag_ref)", "net/core/skbuff.c skb_segment(), v6.12"),
    ("segment", "__tcp_transmit_skb() on a still-cloned skb -> pskb_copy() -> __pskb_copy_fclone()",
     "one per frag", "net/core/skbuff.c __pskb_copy_fclone(), v6.12"),
    ("expand_head", "tcp_trim_head() / tcp_fragment() -> skb_unclone() -> pskb_expand_head()",
     "one per frag, only when the shared info is shared (skb_cloned())", "net/core/skbuff.c pskb_expand_head(), v6.12"),
    ("coalesce", "skb_gro_receive(), tcp_try_coalesce() -> skb_try_coalesce()",
     "none when frags move; one per frag when the source is cloned", "net/core/skbuff.c skb_try_coalesce(), v6.12"),
    ("pull", "tcp_clean_rtx_queue() -> tcp_trim_head() -> __pskb_trim_head()",
     "drops one per fully acknowledged frag", "net/ipv4/tcp_output.c __pskb_trim_head(), v6.12"),
    ("free", "kfree_skb() / consume_skb() -> skb_release_data()",
     "drops one per frag when dataref reaches zero; an atomic on dataref only if cloned and shared",
     "net/core/skbuff.c skb_release_data(), include/linux/skbuff.h skb_data_unref(), v6.12"),
    ("buf_release", "the holder lets go: munmap / pipe_buf_release() / page_pool drain",
     "one put per folio it held", "fs/splice.c splice_to_socket(), v6.12"),
)


def kernel_sites() -> pd.DataFrame:
    return pd.DataFrame(list(KERNEL_SITES), columns=["model event", "kernel path", "frag refs today", "source"])


# ---------------------------------------------------------------- charts
def chart_by_event(df: pd.DataFrame):
    """Stacked bars: page ref atomics per MiB by event type, one bar per workload."""
    import altair as alt

    return alt.Chart(df, title="Where today's page ref atomics come from").mark_bar().encode(
        y=alt.Y("workload:N", title=None),
        x=alt.X("per_mib:Q", title="page ref atomics per MiB of payload"),
        color=alt.Color("event:N", title="event", sort=list(T.OP_NAMES)),
        order=alt.Order("event:N"),
        tooltip=["workload", "event", alt.Tooltip("per_mib:Q", format=".1f")],
    ).properties(width=460, height=160)


def chart_policies(df: pd.DataFrame, workload: str):
    """Grouped bars: ref atomics and cache-line bounces per MiB for each policy."""
    import altair as alt

    from ..plots import POLICY_ORDER, policy_color

    long = df.melt(id_vars=["policy"], value_vars=["ref_atomics_per_mib", "bounces_per_mib"],
                   var_name="metric", value_name="per MiB")
    long["metric"] = long["metric"].map({"ref_atomics_per_mib": "ref atomics", "bounces_per_mib": "line bounces"})
    return alt.Chart(long, title=f"{workload}: cost per MiB by policy").mark_bar().encode(
        x=alt.X("policy:N", sort=POLICY_ORDER, title=None, axis=alt.Axis(labelAngle=-30)),
        y=alt.Y("per MiB:Q"),
        color=policy_color(),
        column=alt.Column("metric:N", title=None),
        tooltip=["policy", "metric", alt.Tooltip("per MiB:Q", format=".1f")],
    ).properties(width=220, height=220)


def chart_sweep(df: pd.DataFrame, metric: str = "ref_atomics_per_mib", title: str = "page/owner ref atomics per MiB"):
    """Lines over loss rate, one panel per frag size, one colour per policy."""
    import altair as alt

    from ..plots import policy_color

    return alt.Chart(df).mark_line(point=True).encode(
        x=alt.X("loss_rate:Q", title="segment loss rate", axis=alt.Axis(format="%")),
        y=alt.Y(f"{metric}:Q", title=title),
        color=policy_color(),
        column=alt.Column("frag_size:O", title="frag size (bytes)"),
        tooltip=["policy", "loss_rate", "frag_size", alt.Tooltip(f"{metric}:Q", format=".1f")],
    ).properties(width=170, height=200)


def chart_spanning(df: pd.DataFrame):
    """Heatmap: share of pages freed while a frag points at them, today's single page ref."""
    import altair as alt

    d = df[df["policy"] == "page_ref"]
    base = alt.Chart(d, title="page_ref: pages freed under a live frag").encode(
        x=alt.X("frag_kib:O", title="frag size (KiB)"),
        y=alt.Y("folio_kib:O", title="folio size (KiB)", sort="descending"),
    )
    cells = base.mark_rect().encode(
        color=alt.Color("uaf_share:Q", title="share of pages", scale=alt.Scale(scheme="orangered", domain=[0, 1])),
        tooltip=["frag_kib", "folio_kib", "uaf_pages", alt.Tooltip("uaf_share:Q", format=".0%")],
    )
    text = base.mark_text(fontSize=12).encode(
        text=alt.Text("uaf_share:Q", format=".0%"),
        color=alt.condition("datum.uaf_share > 0.5", alt.value("white"), alt.value("black")),
    )
    return (cells + text).properties(width=300, height=200)


def panel_view(workload: str, loss_rate: float, frag_size: int, cpus: int, params) -> list:
    """What the control panel shows for one setting: the policy chart and its table."""
    p = dict(config(params), loss_rate=loss_rate, frag_size=frag_size, cpus=cpus)
    df = policy_table(workload, p)
    cols = ["policy", "ref_atomics_per_mib", "bounces_per_mib", "pages_peak", "uaf_pages"]
    return [chart_policies(df, workload), df[cols].round(1)]

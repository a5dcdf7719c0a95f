"""Chapter 01 (book/01_refcount_removal.ipynb): page refs today vs owner refs, per workload and per MiB.

Analyses over :mod:`fraglife.model` (workloads, engine, twin), the chapter's
:class:`Results`, its ``headline``, ``CLAIMS`` and ``conclusion``; its charts
are in :mod:`fraglife.views.refcount_removal`. The contract is in
:mod:`fraglife.chapters`.
"""

from __future__ import annotations

from functools import cached_property
from typing import Iterable, Mapping

import numpy as np
import pandas as pd

from ..claims import Claim
from ..model import engine, trace as T, workloads
from ..model.ledger import Ledger
from ..model.policies import POLICIES
from ..model.reference import Replay
from ..params import Params

KiB = 1 << 10
MiB = 1 << 20
WORKLOAD_KEYS = ("bytes_sent", "mss", "frag_size", "loss_rate", "cpus", "seed", "folio_pages")
TX_WORKLOADS = ("tcp_send", "tcp_gso", "multipage_send")
# The grids the chapter shows; every other parameter is the run's.
LOSS_RATES = (0, 0.005, 0.01, 0.02, 0.05, 0.1)
FRAG_SIZES = (4096, 16384, 65536)
SPAN_FRAG_SIZES = (4096, 16384, 65536, 262144)
SPAN_FOLIO_PAGES = (1, 4, 16, 64)
#: Upper bounds for the library-mode claims test (tests/test_claims.py).
SMALL = {"bytes_sent": 512 * KiB}


def config(params: Mapping) -> dict:
    """Generator settings from chapter parameters (ignores names the generators don't take)."""
    return {k: params[k] for k in WORKLOAD_KEYS if k in params}


def workloads_counts(trace: np.ndarray) -> dict[str, int]:
    """Events of each kind in a trace, leaving out kinds it never uses."""
    return {k: v for k, v in T.counts(trace).items() if v}


def per_mib(led: Ledger, nbytes: int) -> dict:
    """The ledger's counts normalised to one MiB of payload."""
    mib = nbytes / MiB
    return {
        "atomics_per_mib": led.atomics / mib,
        "ref_atomics_per_mib": led.ref_atomics / mib,
        "bounces_per_mib": led.bounces / mib,
        "refs_taken_per_mib": led.refs_taken / mib,
    }


class Replays:
    """Traces and ledgers for one generator setting, each computed once (tables share them)."""

    def __init__(self, cfg: Mapping):
        self.cfg = config(cfg)
        self._traces: dict[str, np.ndarray] = {}
        self._ledgers: dict[tuple[str, str], Ledger] = {}

    def trace(self, workload: str) -> np.ndarray:
        if workload not in self._traces:
            self._traces[workload] = workloads.generate(workload, **self.cfg)
        return self._traces[workload]

    def ledger(self, workload: str, policy: str) -> Ledger:
        if (workload, policy) not in self._ledgers:
            self._ledgers[workload, policy] = engine.replay(self.trace(workload), policy)
        return self._ledgers[workload, policy]


def policy_table(runs: Replays, workload: str) -> pd.DataFrame:
    """One row per policy for one workload: costs per MiB, memory held, violations."""
    rows = []
    for name in POLICIES:
        led = runs.ledger(workload, name)
        rows.append({
            "policy": name,
            **per_mib(led, runs.cfg["bytes_sent"]),
            "lines": led.lines,
            "pages_peak": led.pages_peak,
            "uaf_pages": led.uaf_pages,
            "leaked_refs": led.leaked_refs,
            "clean": led.clean,
        })
    return pd.DataFrame(rows)


def by_event(runs: Replays, workload_names: Iterable[str] = workloads.WORKLOADS,
             policy: str = "page_ref") -> pd.DataFrame:
    """Ref atomics per MiB by event type, one block per workload (tidy: workload, event, per_mib)."""
    rows = []
    for w in workload_names:
        for event, n in runs.ledger(w, policy).by_op().items():
            rows.append({"workload": w, "event": event, "ref_atomics": n,
                         "per_mib": n / (runs.cfg["bytes_sent"] / MiB)})
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


def loss_frag_grid(params: Mapping, *, workload: str, loss_rates: Iterable[float], frag_sizes: Iterable[int],
                   policies: Iterable[str] = POLICIES) -> pd.DataFrame:
    """Costs per MiB over a grid of loss rate and frag size (tidy)."""
    settings = [{"frag_size": int(f), "loss_rate": float(x)} for f in frag_sizes for x in loss_rates]
    nbytes = config(params)["bytes_sent"]
    return pd.DataFrame([{**s, "policy": name, **per_mib(led, nbytes), "uaf_pages": led.uaf_pages}
                         for s, _, name, led in _replays_over(params, workload, settings, policies)])


def spanning_frags(params: Mapping, *, frag_sizes: Iterable[int], folio_pages: Iterable[int],
                   policies: Iterable[str] = POLICIES) -> pd.DataFrame:
    """The thread's warning as a grid: multi-page frags over folios of various sizes."""
    settings = [{"frag_size": int(f), "folio_pages": int(fp)} for fp in folio_pages for f in frag_sizes]
    nbytes = config(params)["bytes_sent"]
    rows = []
    for s, tr, name, led in _replays_over(params, "multipage_send", settings, policies):
        rows.append({"folio_kib": s["folio_pages"] * 4, "frag_kib": s["frag_size"] // 1024, "policy": name,
                     "frags": int((tr["op"] == T.ATTACH).sum()), "uaf_pages": led.uaf_pages,
                     "uaf_share": led.uaf_pages / max(1, int(tr[tr["op"] == T.ALLOC]["len"].sum())),
                     "ref_atomics_per_mib": led.ref_atomics / (nbytes / MiB),
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


def policy_summaries() -> pd.DataFrame:
    """The policies under comparison, each with what a frag reference takes."""
    return pd.DataFrame([{"policy": p.name, "what a frag reference takes": p.summary} for p in POLICIES.values()])


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


class Results:
    """Chapter 01's analyses for one parameter set, each computed once on first use."""

    def __init__(self, params: Mapping):
        self.P = Params.of(params)
        self.runs = Replays(self.P)

    @cached_property
    def trace(self) -> np.ndarray:
        """The chosen workload's trace."""
        return self.runs.trace(self.P.workload)

    @cached_property
    def workload_summary(self) -> str:
        return workloads.WORKLOADS[self.P.workload].summary

    @cached_property
    def event_counts(self) -> pd.DataFrame:
        return pd.Series(workloads_counts(self.trace), name="events").to_frame().T

    @cached_property
    def events(self) -> pd.DataFrame:
        """Today's page ref atomics per MiB by event, every workload (tidy)."""
        return by_event(self.runs)

    @cached_property
    def event_matrix(self) -> pd.DataFrame:
        return event_matrix(self.events)

    @cached_property
    def gso(self) -> dict:
        """Software GSO vs TSO: total ref atomics per MiB, their ratio, and where GSO pays."""
        ev = self.event_matrix
        total = ev.sum(axis=1)
        return {"tso_per_mib": float(total["tcp_send"]), "ratio": float(total["tcp_gso"] / total["tcp_send"]),
                "segment_per_mib": float(ev.loc["tcp_gso", "segment"]), "free_per_mib": float(ev.loc["tcp_gso", "free"]),
                "pull_per_mib": float(ev.loc["tcp_send", "pull"]), "segmented": bool(ev.loc["tcp_gso", "segment"] > 0)}

    @cached_property
    def tx_costs(self) -> dict[str, pd.DataFrame]:
        """policy_table() of every transmit workload."""
        return {w: policy_table(self.runs, w) for w in TX_WORKLOADS}

    @cached_property
    def policies(self) -> pd.DataFrame:
        """policy_table() of the chosen workload."""
        return self.tx_costs[self.P.workload] if self.P.workload in TX_WORKLOADS else \
            policy_table(self.runs, self.P.workload)

    @cached_property
    def grid(self) -> pd.DataFrame:
        """Costs over loss rate x frag size (receive runs show the TSO send instead)."""
        w = self.P.workload if self.P.workload != "rx_gro" else "tcp_send"
        return loss_frag_grid(self.P, workload=w, loss_rates=LOSS_RATES, frag_sizes=FRAG_SIZES)

    @cached_property
    def spanning(self) -> pd.DataFrame:
        return spanning_frags(self.P, frag_sizes=SPAN_FRAG_SIZES, folio_pages=SPAN_FOLIO_PAGES)

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
    def headline(self) -> dict:
        """Today's refs vs the per-skb owner for the chosen workload, as plain numbers."""
        w, nbytes = self.P.workload, self.runs.cfg["bytes_sent"]
        today, owner = self.runs.ledger(w, "page_ref"), self.runs.ledger(w, "owner_skb")
        t, o = per_mib(today, nbytes), per_mib(owner, nbytes)
        return {
            "events": int(len(self.trace)),
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


def headline(**params) -> dict:
    """Chapter 01's result as one tidy record: today's refs vs the owner design for one workload.

    Takes chapter 01's parameters (validated by the caller) and returns plain
    numbers: ref atomics and bounces per MiB under today's policy and the
    per-skb owner, their ratio, and the use-after-free pages today's single
    page ref allows.
    """
    return Results(params).headline


def panel_data(params: Mapping, *, workload: str, loss_rate: float, frag_size: int, cpus: int) -> pd.DataFrame:
    """The control panel's table: policy_table() for one setting, other parameters the run's."""
    return policy_table(Replays(dict(params, loss_rate=loss_rate, frag_size=frag_size, cpus=cpus)), workload)


def gso_remark(R: Results) -> str:
    """Markdown: what software GSO adds to a MiB sent, quoting the run's numbers."""
    g = R.gso
    return (
        f"With TSO, a MiB sent costs **{g['tso_per_mib']:.0f}** page ref atomics; software GSO "
        f"multiplies that by **{g['ratio']:.1f}**, paid in `skb_segment()` and in freeing its segments "
        f"({g['segment_per_mib']:.0f} and {g['free_per_mib']:.0f} per MiB; with skbs no longer "
        f"than one MSS there is nothing to segment). ACK processing trims acknowledged frags one by one "
        f"({g['pull_per_mib']:.0f} per MiB with TSO)."
    )


def conclusion(R: Results) -> str:
    """Markdown: what follows for the design, quoting the checked numbers."""
    P, t = R.P, R.policies.set_index("policy")
    today, owner, clone, worst = t.loc["page_ref"], t.loc["owner_skb"], t.loc["owner_clone"], R.worst_spanning
    return (
        f"On `{P.workload}` ({P.bytes_sent >> 20} MiB, {P.loss_rate:.1%} loss, {P.frag_size} B frags, "
        f"{P.cpus} CPUs), today's per-page scheme costs **{today.ref_atomics_per_mib:.0f}** ref atomics and "
        f"**{today.bounces_per_mib:.0f}** refcount line bounces per MiB. One owner reference per skb "
        f"and buffer costs **{owner.ref_atomics_per_mib:.0f}** and **{owner.bounces_per_mib:.0f}**; giving every "
        f"clone its own owner ref, as the thread suggests, costs **{clone.ref_atomics_per_mib:.0f}**. "
        f"Clones are not where today's refs come from; segmentation, trimming and the holder's per-page puts are. "
        f"The owner is also what makes multi-page frags safe: with one page ref per frag, up to "
        f"**{worst.uaf_share:.0%}** of pages are freed under a live frag ({worst.frag_kib} KiB frags on "
        f"{worst.folio_kib} KiB folios), and no owner policy frees any. The cost is memory held until a "
        f"buffer's last frag is gone."
    )


# ---------------------------------------------------------------- claims
def _gso_costs_more(R: Results):
    g = R.gso
    return g["ratio"] >= 1 and (g["ratio"] > 1 or not g["segmented"]), {"ratio": g["ratio"], "segmented": g["segmented"]}


def _owner_never_more_refs(R: Results):
    ratio = {w: t.set_index("policy").ref_atomics_per_mib for w, t in R.tx_costs.items()}
    return (all(r["owner_skb"] <= r["page_ref"] for r in ratio.values()),
            {w: round(r["owner_skb"] / r["page_ref"], 3) for w, r in ratio.items()})


def _owner_bounces_no_more(R: Results):
    b = R.grid.pivot_table(index=["frag_size", "loss_rate"], columns="policy", values="bounces_per_mib")
    return bool((b["owner_skb"] <= b["page_ref"]).all()), {}


def _one_ref_uaf(R: Results):
    span = R.spanning[R.spanning.policy == "page_ref"]
    order0 = span[(span.folio_kib == 4) & (span.frag_kib > 4)]
    within = span[span.frag_kib <= span.folio_kib]
    return (bool((order0.uaf_pages > 0).all() and (within.uaf_pages == 0).all()),
            {"worst_share": R.worst_spanning.uaf_share, "order0_min_share": order0.uaf_share.min()})


def _owners_never_free_early(R: Results):
    safe = R.spanning[R.spanning.policy != "page_ref"]
    return int(safe.uaf_pages.sum()) == 0 and int(R.grid[R.grid.policy != "page_ref"].uaf_pages.sum()) == 0, {}


def _owner_holds_longer(R: Results):
    peaks = R.spanning.pivot_table(index=["frag_kib", "folio_kib"], columns="policy", values="pages_peak")
    return (bool((peaks["owner_skb"] >= peaks["page_ref_all"]).all()),
            {"max_extra_pages": int((peaks["owner_skb"] - peaks["page_ref_all"]).max())})


def _ledgers_balance(R: Results):
    tables = [R.policies, *R.tx_costs.values()]
    return all(bool(t.leaked_refs.eq(0).all()) for t in tables), {}


CLAIMS = (
    Claim("gso_costs_more_page_refs",
          "Software GSO never takes fewer page ref atomics per MiB than TSO, and takes more whenever it segments "
          "at all (skb_segment refs every frag once per output segment).",
          "holds", _gso_costs_more),
    Claim("owner_never_takes_more_refs_on_tx",
          "On every transmit workload, one owner ref per skb costs no more ref atomics per MiB than today's page "
          "refs (equal only when each skb holds a single frag of a single folio).",
          "holds", _owner_never_more_refs),
    Claim("owner_bounces_no_more",
          "The per-skb owner never bounces refcount lines between CPUs more often than page refs do.",
          "holds", _owner_bounces_no_more),
    Claim("one_ref_for_many_pages_is_use_after_free",
          "With one page ref per frag, frags over order-0 pages always get pages freed under them; frags within "
          "a folio never do.",
          "holds", _one_ref_uaf),
    Claim("owners_never_free_early",
          "page_ref_all and every owner policy free no page under a live frag, on any frag or folio size, at any "
          "loss rate.",
          "holds", _owners_never_free_early),
    Claim("owner_holds_memory_longer",
          "An owner per buffer never frees memory earlier than per-folio refs: its peak pages held is at least "
          "theirs.",
          "holds", _owner_holds_longer),
    Claim("every_ledger_balances",
          "Every replay in this chapter ends with no reference held and no page left allocated.",
          "holds", _ledgers_balance),
)

"""The model against the running kernel: one row format for every chapter's comparisons.

A probe measures and returns counts (:func:`fraglife.probes.kcount.kernel_quantities`: the
named kernel counts of a transfer, each with the low/high bracket the kernel allows); what a
chapter shows of them is decided here. A chapter feeds the model the transfer's settings and
asks :func:`comparisons` for one row per transfer and quantity (:data:`COLUMNS`):

``chapter``, ``transfer`` (a transfer or setting), ``quantity``; ``kernel`` with
``kernel_low``/``kernel_high``; ``model``; ``ratio`` (model / kernel); ``agrees``; ``reason``
(why the model does not follow this count: the kernel mechanism it leaves out, with its source;
empty if none is known); ``measured`` ("live" or "recorded": where the kernel count comes
from); ``exact`` (the kernel count has the model's meaning, not a bracket) and ``how_counted``.

The rule (:func:`agrees`): the model agrees when it lies within the kernel's bracket widened by
:data:`TOLERANCE` (20 %), or within :data:`SLACK_EVENTS` (one) event of the whole transfer of
it, since a count of one or two events says nothing in percent. A row that does not agree
needs its reason in the text, never a tuned constant.

Rows of other chapters and probes join the same table through :func:`row` (one quantity at a
time) and :func:`table` (several chapters' rows in one frame, :data:`COLUMNS` first), so one
command can print every chapter's rows together. A chapter says how it compares in an
:class:`Against`; its ``Results`` gets ``kernel``, ``transfers``, ``comparison`` and
``comparison_table`` from :class:`Compares`. Chapters 01 (MSG_ZEROCOPY over veth) and 05
(splice over veth) compare now; what the kernel decided for a connection and the chapter does
not set (the share of send calls that found the previous tail unsent) is fed from the transfer
(:meth:`Against.fed`).

The model's send rules are checked on their own against the probes' grids (:func:`grid_rows`):
kcount_splice's splice calls of 4 KiB to 1 MiB at MTU 1500 and 9000, TSO on and off, and
kcount's MSG_ZEROCOPY settings, each with the receive window held open, the model fed each
transfer's settings and its measured tail share, within :data:`GRID_RULE`; a row that does not
agree names the kernel mechanism the model leaves out (:func:`grid_reason`). This module is not
a chapter module.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Callable, Iterable, Mapping

import pandas as pd

from ...model import kernels, workloads
from ...model import trace as T
from ...params import ParamError
from ...probes import kcount
from .. import kit

MiB = 1 << 20
#: Relative tolerance around the kernel's bracket.
TOLERANCE = 0.2
#: Events of the whole transfer the model may be off by whatever the percentage.
SLACK_EVENTS = 1.0
#: The rule in words, for the chapters' prose and the claims.
RULE = "within 20 % (or one event of the transfer)"

#: What each quantity of a transfer means, for the model and in the kernel's counts (per MiB sent).
QUANTITIES = {
    "transmissions": "skbs TCP handed to the device, retransmissions included: net:net_dev_queue on the "
                     "sending veth (one per __tcp_transmit_skb() clone or copy; before GSO and the qdisc)",
    "retransmits": "retransmitted skbs: tcp:tcp_retransmit_skb minus its failed attempts ([err]); "
                   "the namespace's Tcp.RetransSegs counts the segments in them (low/high)",
    "skbs_freed": "sk_buffs of the data path freed: slab allocations of struct sk_buff in the window "
                  "(all freed by its end), a fast-clone pair counted twice (the write-queue skb and its "
                  "clone), less the receiver's ACKs and the zerocopy notification skbs (one per ubuf_info: "
                  "between the notifications read and the send calls; low/high)",
    "gso_segments": "segments made by software GSO (skb_segment()): with TSO off, packets the veth "
                    "transmitted less the skbs that needed no segmenting; with TSO on and no qdisc, 0; with "
                    "a tbf qdisc the qdisc segments GSO skbs longer than its burst (approximate)",
    "completions": "zerocopy completions: one per ubuf_info in the model; the kernel coalesces consecutive "
                   "ones into one notification and extends a ubuf_info across send calls, so the notifications "
                   "read (low) and the send calls completed (high) bracket it",
}

#: Every row's columns, in order.
COLUMNS = ["chapter", "transfer", "quantity", "kernel", "kernel_low", "kernel_high", "model", "ratio", "agrees",
           "reason", "measured", "exact", "how_counted"]
#: The columns a chapter shows.
TABLE_COLUMNS = ["transfer", "quantity", "model", "kernel", "kernel_low", "kernel_high", "ratio", "agrees"]


def _check(tolerance: float, slack_events: float) -> None:
    if not 0 <= tolerance < 1:
        raise ParamError(f"parameter 'tolerance' = {tolerance!r} is not allowed: expected a number in [0, 1)")
    if not 0 <= slack_events <= 10:
        raise ParamError(f"parameter 'slack_events' = {slack_events!r} is not allowed: expected a number in [0, 10]")


def agrees(model: float | None, kernel: float | None, low: float, high: float, mib: float,
           tolerance: float = TOLERANCE, slack_events: float = SLACK_EVENTS) -> bool | None:
    """Whether the model's count per MiB lies within the kernel's [low, high] widened by ``tolerance``, or
    within ``slack_events`` events of a transfer of ``mib`` MiB (``slack_events = mib``: one per MiB); None
    when either side is missing."""
    if model is None or kernel is None:
        return None
    slack = slack_events / mib
    lo = min(low * (1 - tolerance), low - slack)
    hi = max(high * (1 + tolerance), high + slack)
    return bool(lo - 1e-9 <= model <= hi + 1e-9)


def row(chapter: str, transfer: str, quantity: str, kernel: float | None, model: float | None, *, mib: float,
        low: float | None = None, high: float | None = None, reason: str = "", measured: str = "",
        exact: bool = True, how_counted: str = "", tolerance: float = TOLERANCE,
        slack_events: float = SLACK_EVENTS) -> dict:
    """One comparison row (:data:`COLUMNS`): a kernel count per MiB (with its bracket, if any) of a
    transfer of ``mib`` MiB against the model's."""
    low = kernel if low is None else low
    high = kernel if high is None else high
    ok = agrees(model, kernel, low, high, mib, tolerance, slack_events)
    if ok is None:
        ratio = None
    else:
        ratio = round(model / kernel, 3) if kernel else (1.0 if model == 0 else None)
    return {"chapter": chapter, "transfer": transfer, "quantity": quantity, "kernel": kernel, "kernel_low": low,
            "kernel_high": high, "model": model, "ratio": ratio, "agrees": ok, "reason": reason,
            "measured": measured, "exact": exact, "how_counted": how_counted}


def comparison(model: Mapping[str, float | None], run: Mapping, *, chapter: str = "", measured: str = "",
               reasons: Mapping[str, str] | None = None, tolerance: float = TOLERANCE,
               slack_events: float = SLACK_EVENTS) -> pd.DataFrame:
    """The model's count per MiB against the kernel's for one kcount transfer ``run``, one row per quantity.

    ``model``: quantity (keys of :data:`QUANTITIES`) -> the model's count per MiB for the same
    transfer, or None for a quantity the model does not follow. In trace terms: transmissions =
    device skbs made by a clone or copy of a write-queue skb (first sends and retransmissions);
    retransmits = those made for a retransmission; skbs_freed = ``free`` events; gso_segments =
    ``segment`` events cut from a transmitted clone; completions = ``zc_complete`` events.
    ``reasons``: quantity -> why the model does not follow it (the kernel path it leaves out).
    """
    _check(tolerance, slack_events)
    unknown = set(model) - set(QUANTITIES)
    if unknown:
        raise ParamError(f"parameter 'model' has unknown quantities {sorted(unknown)}: "
                         f"expected some of {', '.join(QUANTITIES)}")
    mib = run["bytes"] / MiB
    rows = [row(chapter, run.get("name") or "", name, k["per_mib"], model.get(name), mib=mib, low=k["low"],
                high=k["high"], reason=(reasons or {}).get(name, ""), measured=measured, exact=k["exact"],
                how_counted=QUANTITIES[name], tolerance=tolerance, slack_events=slack_events)
            for name, k in kcount.kernel_quantities(run).items()]
    return pd.DataFrame(rows, columns=COLUMNS)


def comparisons(result, model_of: Callable[[Mapping], Mapping[str, float | None]], chapter: str,
                reasons: Mapping[tuple[str, str], str] | None = None, *, sender: str | None = None) -> pd.DataFrame:
    """:func:`comparison` for every transfer of a kcount-style probe ``result`` (a ProbeResult; only those of
    ``sender``, if given), one table: ``model_of(run)`` gives the model's counts per MiB for that transfer,
    ``reasons`` the known gaps keyed by (transfer, quantity)."""
    frames = []
    for run in result.data.get("runs", []):
        if sender is not None and run.get("sender") != sender:
            continue
        mine = {q: why for (t, q), why in (reasons or {}).items() if t == run["name"]}
        frames.append(comparison(model_of(run), run, chapter=chapter, measured=result.source, reasons=mine))
    return table(frames)


def table(frames: Iterable[pd.DataFrame | Iterable[Mapping[str, Any]]]) -> pd.DataFrame:
    """Several chapters' rows (frames or lists of :func:`row` records) in one frame, :data:`COLUMNS` first."""
    parts = [f if isinstance(f, pd.DataFrame) else pd.DataFrame(list(f), columns=COLUMNS) for f in frames]
    parts = [p for p in parts if len(p)]
    if not parts:
        return pd.DataFrame(columns=COLUMNS)
    out = pd.concat(parts, ignore_index=True)
    return out[COLUMNS + [c for c in out.columns if c not in COLUMNS]]


def compared(table: pd.DataFrame) -> pd.DataFrame:
    """The rows where both sides have a count."""
    return table[table.agrees.notna()]


def tally(table: pd.DataFrame) -> tuple[int, int]:
    """(rows that agree, rows compared)."""
    c = compared(table)
    return int((c.agrees == True).sum()), len(c)  # noqa: E712 (None means not compared)


def unexplained(table: pd.DataFrame) -> pd.DataFrame:
    """Compared rows that do not agree and have no reason."""
    c = compared(table)
    return c[(c.agrees == False) & (c.reason == "")]  # noqa: E712


def follows(table: pd.DataFrame, source: str) -> tuple[bool, dict]:
    """A claim's check: something was compared, and every row that does not agree has its reason; evidence:
    how many were compared and agree, the unexplained rows, where the kernel counts come from."""
    agree, n = tally(table)
    off = unexplained(table)
    return n > 0 and off.empty, {"compared": n, "agree": agree,
                                 "unexplained": [f"{r.transfer}/{r.quantity}" for r in off.itertuples()],
                                 "source": source}


def gaps_remark(table: pd.DataFrame) -> str:
    """Markdown: each compared row that does not agree, with its reason (or a flag that the chapter gives
    none)."""
    off = table[table.agrees == False]  # noqa: E712 (None means not compared)
    if off.empty:
        return f"Every quantity compared agrees {RULE}."
    groups = by_reason(off, "**not explained by the chapter**: a workload rule to revisit.")
    lines = ["- " + "; ".join(f"`{r.transfer}`, {r.quantity.replace('_', ' ')}: model {r.model:.2f} per MiB, "
                              f"kernel {r.kernel:.2f} ({r.kernel_low:.2f} to {r.kernel_high:.2f})" for r in rows)
             + f". {why}" for why, rows in groups.items()]
    return "Where they differ:\n\n" + "\n".join(lines)


def by_reason(off: pd.DataFrame, unexplained: str) -> dict:
    """The rows of ``off`` grouped by their reason, in order (a reason shared by several rows is told once)."""
    groups: dict = {}
    for r in off.itertuples():
        groups.setdefault(r.reason or unexplained, []).append(r)
    return groups


LIVE_COLUMNS = ["transfer", "quantity", "kernel (live)", "kernel (recorded)", "model", "live / recorded", "agrees"]


def live_against_recorded(now: pd.DataFrame, then: pd.DataFrame) -> pd.DataFrame:
    """The rows a quick live run measured (``now``: comparison rows whose ``measured`` is "live") beside the
    recording's count of the same setting and quantity (``then``: the same comparison of the recording) and the
    model: one row per setting and quantity (:data:`LIVE_COLUMNS`; none when the run measured nothing live)."""
    live = now[now.measured == "live"]
    if live.empty:
        return pd.DataFrame(columns=LIVE_COLUMNS)
    rec = then.set_index(["transfer", "quantity"]).kernel
    t = pd.DataFrame([{"transfer": r.transfer, "quantity": r.quantity, "kernel (live)": r.kernel,
                       "kernel (recorded)": rec.get((r.transfer, r.quantity)), "model": r.model, "agrees": r.agrees}
                      for r in live.itertuples()], columns=LIVE_COLUMNS)
    t["live / recorded"] = t["kernel (live)"] / t["kernel (recorded)"]
    return t


def live_remark(live: pd.DataFrame, settings: int, dates, what: str = "settings") -> str:
    """Markdown (a sentence, or nothing when every setting is the recording's): which of the ``settings`` ran
    live, how the live counts compare with the recording's and the model (``live``: :func:`live_against_recorded`),
    and the day the others were recorded (``dates``)."""
    if live.empty:
        return ""
    ratio = live["live / recorded"].replace([float("inf"), -float("inf")], float("nan")).dropna()
    agree = int((live.agrees == True).sum())  # noqa: E712
    spread = f"live / recorded {ratio.min():.2f} to {ratio.max():.2f}; " if len(ratio) else ""
    days = sorted({str(d)[:10] for d in dates if d})
    return (f" Measured live now: {kit.words(f'`{n}`' for n in dict.fromkeys(live.transfer))} ({spread}{agree} of "
            f"{len(live)} quantities agree with the model); the other {settings - live.transfer.nunique()} "
            f"{what} are the recording's ({', '.join(days) or 'undated'}).")


def results_remark(R) -> str:
    """:func:`gaps_remark` of a chapter's ``Results`` (its ``comparison``): what a chapter's notebook shows."""
    return gaps_remark(R.comparison)


@dataclass(frozen=True)
class Against:
    """How a chapter compares its model with a probe's transfers: the chapter (its id), the probe, the
    generator settings that reproduce one transfer (``inputs(run)``), the model's counts per MiB for those
    settings (``quantities(inputs)``), the known gaps keyed by (transfer, quantity), and the sender whose
    transfers count (None: all)."""

    chapter: str
    probe: str
    inputs: Callable[[Mapping], dict]
    quantities: Callable[[Mapping], dict]
    reasons: Mapping[tuple[str, str], str] = field(default_factory=dict)
    sender: str | None = None

    def runs(self, result) -> list[dict]:
        return [r for r in result.data.get("runs", []) if self.sender is None or r.get("sender") == self.sender]

    def fed(self, run: Mapping) -> dict:
        """The chapter's settings for ``run`` and what the kernel decided for that connection where the chapter
        sets none: the share of send calls that found the previous tail unsent (kcount's ``tail_unsent``), and
        no locked_vm accounting (the probes send as root, with CAP_IPC_LOCK)."""
        fed = dict(self.inputs(run))
        share = (run.get("tail_unsent") or {}).get("share")
        if share is not None:
            fed.setdefault("tail_unsent", min(1.0, max(0.0, share)))
        fed.setdefault("locked_vm_accounting", False)
        return fed

    def transfers(self, result) -> pd.DataFrame:
        """The probe's transfers as the model is fed them."""
        return pd.DataFrame([{"transfer": r["name"], **self.fed(r)} for r in self.runs(result)])

    def rows(self, result) -> pd.DataFrame:
        """One row per transfer and quantity (:data:`COLUMNS`)."""
        return comparisons(result, lambda run: self.quantities(self.fed(run)), self.chapter, self.reasons,
                           sender=self.sender)


class Compares:
    """What a chapter's ``Results`` that compares its model with a probe's transfers has, from the class's
    ``AGAINST`` (:class:`Against`): ``kernel`` (the probe, live or recorded as the run's measurements
    parameter says), ``transfers``, ``comparison`` (the rows) and ``comparison_table`` (the columns a chapter
    shows)."""

    AGAINST: Against

    @cached_property
    def kernel(self):
        """The probe's transfers, counted by this kernel's tracepoints."""
        return kit.probe(self.AGAINST.probe, self.P.measurements)

    @cached_property
    def transfers(self) -> pd.DataFrame:
        """The probe's transfers as the model is fed them."""
        return self.AGAINST.transfers(self.kernel)

    @cached_property
    def comparison(self) -> pd.DataFrame:
        """The model fed each transfer's settings against the kernel's counts, one row per transfer and quantity."""
        return self.AGAINST.rows(self.kernel)

    @cached_property
    def comparison_table(self) -> pd.DataFrame:
        """The model against the kernel, the columns the chapter shows."""
        return self.comparison[TABLE_COLUMNS]


# ---------------------------------------------------------------- the model's rules against measured grids
#: What each quantity of a grid transfer means (per MiB sent): kcount.kernel_quantities' and one more.
GRID_QUANTITIES = {
    **{q: QUANTITIES[q] for q in ("transmissions", "skbs_freed", "gso_segments", "completions")},
    "sendmsg_passes": "passes of tcp_sendmsg_locked()'s loop: tcp:tcp_sendmsg_locked on the sending thread (one "
                      "per skb a sendmsg started or extended, plus one after a pass that filled the skb's frags)",
}
#: The grids' rule: within 20 % or one event per MiB of the transfer.
GRID_RULE = "within 20 % (or one event per MiB)"


def grid_inputs(run: Mapping) -> dict:
    """The generator settings that reproduce one grid transfer, from what was set and what the kernel decided:
    the sender (MSG_ZEROCOPY or splice; software GSO when TSO is off), bytes per send call (a splice() call,
    whose sendmsg()s of 16 pipe buffers the generator makes itself), the MSS (the size goal follows:
    ``Config.size_goal``), the share of send calls that found the previous tail unsent (``tail_unsent``, from
    the [first] and [no_tail] passes), the measured retransmission rate as the loss, the congestion window
    as the skbs in flight, TX completed at once (veth), the page cache's folios (ext4 gives a freshly written
    file folios of the write size since 6.16), and no locked_vm accounting (the probe runs as root:
    CAP_IPC_LOCK)."""
    splice = run["sender"] == "splice"
    gso = run["software_gso"]
    workload = ("splice_gso" if gso else "splice_send") if splice else ("tcp_gso" if gso else "tcp_send")
    cfg = workloads.Config(mss=run["mss"])
    cwnd = run.get("tcp_info", {}).get("tx", {}).get("snd_cwnd", 10)
    tail = (run.get("tail_unsent") or {}).get("share")
    pages = max(1, run["chunk"] // T.PAGE_SIZE)
    large = splice and kernels.follows(run.get("kernel") or kernels.NEWEST, "ext4_large_folios")
    return {"workload": workload, "bytes_sent": min(run["bytes"], 16 * MiB), "mss": run["mss"],
            "send_size": run["chunk"], "size_goal": cfg.size_goal,
            "tail_unsent": min(1.0, max(0.0, tail)) if tail is not None else None,
            "loss_rate": run.get("retransmit_rate", 0.0),
            "inflight": max(1, round(cwnd / (cfg.size_goal // cfg.mss))), "txc_lag": 0,
            "folio_pages": min(pages, 512) if large else 1, "locked_vm_accounting": False}


def grid_model(inputs: Mapping) -> dict:
    """The model's count per MiB of each :data:`GRID_QUANTITIES` for the settings ``inputs``."""
    cfg = {k: v for k, v in inputs.items() if k not in ("workload", "size_goal") and v is not None}
    tr, st = workloads.generate_with_stats(inputs["workload"], **cfg)
    c, mib = T.counts(tr), cfg["bytes_sent"] / MiB
    return {"transmissions": st["transmissions"] / mib, "skbs_freed": c["free"] / mib,
            "gso_segments": st["gso_segments"] / mib, "sendmsg_passes": st["passes"] / mib,
            "completions": c["zc_complete"] / mib}


def grid_kernel(run: Mapping) -> dict[str, dict]:
    """The kernel's count per MiB of each :data:`GRID_QUANTITIES` of a transfer (kcount.kernel_quantities and the
    passes), each ``{per_mib, low, high, exact}``."""
    out = kcount.kernel_quantities(run)
    v = run["per_mib"].get("tcp:tcp_sendmsg_locked")
    out["sendmsg_passes"] = {"per_mib": v, "low": v, "high": v, "exact": True}
    return out


def grid_quantities(run: Mapping) -> tuple[str, ...]:
    """The quantities a grid transfer compares: software GSO's segments only where TSO is off, completions only
    for MSG_ZEROCOPY (elsewhere both sides are 0 by construction)."""
    zerocopy, gso = run["sender"] == "zerocopy", run["software_gso"]
    return tuple(q for q in GRID_QUANTITIES if (q != "gso_segments" or gso) and (q != "completions" or zerocopy))


def grid_rows(result, key: str = "grid", chapter: str = "model",
              reasons: Callable[[Mapping, str], str] | None = None) -> pd.DataFrame:
    """The model fed each transfer of a probe result's ``key`` list (kcount's or kcount_splice's ``grid``) against
    the kernel's counts, one :func:`row` per transfer and quantity (measured as the transfer's ``source`` says,
    else as the result's), within :data:`GRID_RULE`; ``reasons(run,
    quantity)`` names the kernel mechanism the model leaves out for that transfer (default
    :func:`grid_reason`)."""
    reasons = reasons or grid_reason
    rows = []
    for run in result.data.get(key, []):
        if run.get("source") == "unavailable":  # left out live and not in the recording either
            continue
        run = {**run, "kernel": run.get("kernel") or result.kernel}
        mib = run["bytes"] / MiB
        model = grid_model(grid_inputs(run))
        kern = grid_kernel(run)
        for q in grid_quantities(run):
            k = kern[q]
            rows.append(row(chapter, run["name"], q, k["per_mib"], model[q], mib=mib, low=k["low"], high=k["high"],
                            reason=reasons(run, q), measured=run.get("source") or result.source, exact=k["exact"],
                            how_counted=GRID_QUANTITIES[q], slack_events=mib))
    return pd.DataFrame(rows, columns=COLUMNS)


#: The kernel mechanism the tail rule leaves out, with its source: where the kernel holds a tail (Nagle with a
#: sub-MSS segment unacknowledged, or the window edge) it sends what it can first and keeps only the rest.
TAIL_SPLIT = ("the kernel holds a tail by cutting its skb: tcp_write_xmit() -> tcp_mss_split_point() returns the "
              "last whole MSS when Nagle (Minshall's check: a sub-MSS segment still unacknowledged) or the window "
              "would hold the last segment, and tso_fragment() keeps the rest as a new unsent skb "
              "(net/ipv4/tcp_output.c, v6.18). The next sendmsg appends to that rest (so it counts in tail_unsent), "
              "but the head went out: one skb transmitted (and its clone freed) that the model, which keeps the "
              "whole tail unsent, does not make")


#: The same cut seen by software GSO: the heads cut off a held tail need no segmenting.
GSO_SPLIT = ("the heads tcp_mss_split_point() and tso_fragment() cut off a held tail are whole-MSS skbs, and "
             "tcp_set_skb_tso_segs() gives an skb no longer than the MSS no GSO size, so software GSO leaves them "
             "alone (net/ipv4/tcp_output.c, v6.18); the model keeps the whole tail, which grows past an MSS and is "
             "segmented")


def grid_reason(run: Mapping, quantity: str) -> str:
    """The kernel mechanism the model leaves out for ``quantity`` of a grid transfer, with its source ("" if
    none): a transfer whose send calls found an unsent tail had some tails cut (:data:`TAIL_SPLIT`; with
    software GSO, fewer skbs to segment: :data:`GSO_SPLIT`)."""
    share = (run.get("tail_unsent") or {}).get("share") or 0.0
    if quantity in ("transmissions", "skbs_freed") and share > 0:
        return TAIL_SPLIT
    if quantity == "gso_segments" and run.get("software_gso") and share > 0:
        return GSO_SPLIT
    return ""

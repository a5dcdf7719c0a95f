"""Chapter 01's charts and panel view (book/01_refcount_removal.ipynb).

Each function takes a DataFrame from :mod:`fraglife.chapters.refcount_removal`
(``Results`` or ``panel_data``) and the labels it needs from that module (``POLICY_ORDER``,
``EVENT_ORDER``) and returns an altair chart or a list to show.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import altair as alt
import pandas as pd

from ..params import Param, ParamSpec
from . import widgets
from .compare import chart_comparison  # noqa: F401  (the chapter's notebook shows it)
from .plots import policy_color

#: The panel's folio sizes (pages) and line rates; the other controls span the parameters' own ranges.
PANEL_FOLIO_PAGES = (1, 4, 16, 64, 512)
PANEL_LINE_GBIT = (25, 100, 200, 400, 800)
PANEL_COLUMNS = ["policy", "atomics_per_mib", "bounces_per_mib", "ns_per_mib", "core_share", "pages_peak",
                 "uaf_pages"]
#: A reader's value for the one unit cost that moves most between machines (a line transfer).
LINE_TRANSFER = Param("line_transfer_ns", float, 40.0, "one refcount line transfer between CPUs, ns", lo=1.0,
                      hi=300.0)


def chart_kinds(df: pd.DataFrame):
    """Stacked bars: today's atomics per MiB by refcount kind, one bar per workload."""
    return alt.Chart(df, title="Today's atomics on the refcounts around frag memory").mark_bar().encode(
        y=alt.Y("workload:N", title=None),
        x=alt.X("per_mib:Q", title="atomics per MiB of payload"),
        color=alt.Color("kind:N", title="refcount"),
        tooltip=["workload", "kind", alt.Tooltip("per_mib:Q", format=".1f")],
    ).properties(width=460, height=170)


def chart_by_event(df: pd.DataFrame, events: Sequence[str]):
    """Stacked bars: frag-memory ref atomics per MiB by event type, one bar per workload (``events``: the
    model's events in order)."""
    return alt.Chart(df, title="Where today's ref atomics come from").mark_bar().encode(
        y=alt.Y("workload:N", title=None),
        x=alt.X("per_mib:Q", title="ref atomics per MiB of payload (page, page_pool, binding)"),
        color=alt.Color("event:N", title="event", sort=list(events)),
        order=alt.Order("event:N"),
        tooltip=["workload", "event", alt.Tooltip("per_mib:Q", format=".1f")],
    ).properties(width=460, height=170)


def chart_policies(df: pd.DataFrame, workload: str, policies: Sequence[str]):
    """Grouped bars: atomics and cache-line transfers per MiB for each policy (``policies``: all, in order)."""
    long = df.melt(id_vars=["policy"], value_vars=["atomics_per_mib", "bounces_per_mib"],
                   var_name="metric", value_name="per MiB")
    long["metric"] = long["metric"].map({"atomics_per_mib": "atomics", "bounces_per_mib": "line transfers"})
    return alt.Chart(long, title=f"{workload}: cost per MiB by policy").mark_bar().encode(
        x=alt.X("policy:N", sort=list(policies), title=None, axis=alt.Axis(labelAngle=-30)),
        y=alt.Y("per MiB:Q", title="count per MiB of payload"),
        color=policy_color(policies),
        column=alt.Column("metric:N", title=None),
        tooltip=["policy", "metric", alt.Tooltip("per MiB:Q", format=".1f")],
    ).properties(width=220, height=200)


def chart_time(df: pd.DataFrame, gbit: int, policies: Sequence[str]):
    """Bars: the share of one core each policy takes at the line rate, one panel per workload."""
    d = df.assign(percent=100 * df["core_share"])
    return alt.Chart(d, title=f"Share of one core at {gbit} Gbit/s, this machine's unit costs").mark_bar().encode(
        x=alt.X("policy:N", sort=list(policies), title=None, axis=alt.Axis(labelAngle=-40)),
        y=alt.Y("percent:Q", title="% of one core"),
        color=policy_color(policies),
        column=alt.Column("workload:N", title=None),
        tooltip=["workload", "policy", alt.Tooltip("ns_per_mib:Q", format=".0f"),
                 alt.Tooltip("percent:Q", format=".2f")],
    ).properties(width=110, height=190)


def chart_override(df: pd.DataFrame, policies: Sequence[str]):
    """Lines: ref atomics per MiB as the round trip shrinks below the TX completion (the expand_head override)."""
    base = alt.Chart(df, title="tcp_send: ACK before TX completion re-refs every frag").encode(
        x=alt.X("rtt_us:Q", title="round trip (us)"),
        color=policy_color(policies),
    )
    lines = base.mark_line(point=True).encode(
        y=alt.Y("ref_atomics_per_mib:Q", title="ref atomics per MiB"),
        tooltip=["policy", "rtt_us", "inflight", "txc_lag", alt.Tooltip("ref_atomics_per_mib:Q", format=".0f"),
                 alt.Tooltip("expand_head_per_mib:Q", format=".1f")],
    )
    return lines.properties(width=420, height=200)


def chart_loss_folio(df: pd.DataFrame, policies: Sequence[str], metric: str = "atomics_per_mib",
                     title: str = "atomics per MiB"):
    """Lines over loss rate, one panel per folio size, one colour per policy."""
    return alt.Chart(df).mark_line(point=True).encode(
        x=alt.X("loss_rate:Q", title="segment loss rate", axis=alt.Axis(format="%")),
        y=alt.Y(f"{metric}:Q", title=title),
        color=policy_color(policies),
        column=alt.Column("folio_kib:O", title="folio of the memory sent (KiB)"),
        tooltip=["policy", "loss_rate", "folio_kib", alt.Tooltip(f"{metric}:Q", format=".1f")],
    ).properties(width=170, height=200)


def chart_spanning(df: pd.DataFrame):
    """Heatmap: share of pages freed while a frag points at them, one page ref per physical-range frag."""
    d = df[df["policy"] == "page_ref"]
    base = alt.Chart(d, title="Future frags (phys + len), one page ref each: pages freed under a live frag").encode(
        x=alt.X("frag_kib:O", title="physical-range frag (KiB), the thread's future"),
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


def controls(spec: ParamSpec, params: Mapping[str, Any], line_transfer_ns: float) -> dict:
    """The panel's controls, started at the run's values, ranges from the chapter's spec."""
    c = widgets.controls(spec, params, workload={}, loss_rate={"step": 0.005, "readout_format": ".3f"},
                         folio_pages={"options": PANEL_FOLIO_PAGES}, rtt_us={"lo": 2.0, "hi": 100.0, "step": 1.0},
                         line_gbit={"options": PANEL_LINE_GBIT})
    c["line_transfer_ns"] = widgets.control(LINE_TRANSFER, line_transfer_ns, step=1.0)
    return c


def panel(df: pd.DataFrame, workload: str, policies: Sequence[str]) -> list:
    """What the control panel shows for one setting: the policy chart and its table."""
    table = df[PANEL_COLUMNS].assign(core_share=lambda x: (100 * x.core_share).round(2)).rename(
        columns={"core_share": "% of a core"})
    return [chart_policies(df, workload, policies), table.round(1)]


def make_panel(ch, P, R) -> widgets.Panel:
    """Chapter 01's control panel: its controls (ranges from the spec ``P`` was validated by), the chapter
    module's ``panel_data`` and :func:`panel`.

    ``ch`` is the chapter module (passed in: a view never imports it); ``fraglife bench`` times this panel's
    re-render."""
    return widgets.panel(controls(widgets.spec_of(P), P, R.units["line_transfer_ns"]),
                         lambda **c: panel(ch.panel_data(P, **c), c["workload"], ch.POLICY_ORDER),
                         title="Atomics, time and memory per MiB by policy")

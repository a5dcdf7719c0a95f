"""Chapter 04's charts and panel view (book/04_batching.ipynb).

Each function takes a DataFrame from :mod:`fraglife.chapters.batching` (``Results`` or ``panel_data``) and
returns an altair chart or a list to show.
"""

from __future__ import annotations

from typing import Any, Mapping

import altair as alt
import pandas as pd

from ..params import ParamSpec
from . import plots, widgets

NAMES = {"per_skb": "per skb (today)", "batched": "one batched lookup", "populate": "fault up front"}
COLORS = alt.Scale(domain=list(NAMES.values()), range=["#0072B2", "#009E73", "#D55E00"])
PANEL_IOV_COUNTS = (1, 4, 16, 64, 256, 1024)
PANEL_IOV_SIZES = (256, 1024, 4096, 16384, 65536, 262144, 1 << 20, 4 << 20)
PANEL_FRACTIONS = (0.0, 0.5, 0.9, 0.99, 1.0)
PANEL_ACCEPT = (0.1, 0.25, 0.5, 1.0)
#: Each swept parameter's axis title, with its unit.
AXES = {"iov_size": "iov size (B, log scale)", "resident_fraction": "pages mapped (% of the iterator)",
        "accept_fraction": "message taken per call (%)", "iov_count": "iovecs per sendmsg()"}


def _named(df: pd.DataFrame) -> pd.DataFrame:
    return df.assign(design=df["strategy"].map(NAMES))


def chart_costs(df: pd.DataFrame, title: str = "ns per MiB by cause"):
    """Stacked bars: ns per MiB by cause, one bar per strategy (causes that cost time)."""
    # counted atomics inside GUP's fitted price are rows at 0 ns: in the tables, not in the bars
    return plots.cost_bars(_named(df[df.ns_per_mib > 0]), title, "design", NAMES.values(), ".2f", 120)


def chart_sweep(df: pd.DataFrame, key: str, title: str, log: bool = False, fmt: str | None = None):
    """Lines: ns per MiB of each strategy over one parameter; strategies that cost the same at every point
    share a line, named together ("per skb (today) = fault up front": nothing left to fault)."""
    d, color = plots.merge_alike(_named(df), "design", key, ["ns_per_mib"], NAMES.values(), COLORS.range)
    axis = alt.Axis(format=fmt) if fmt else alt.Axis()
    return alt.Chart(d, title=title).mark_line(point=True).encode(
        x=alt.X(f"{key}:Q", title=AXES.get(key, key.replace("_", " ")),
                scale=alt.Scale(type="log" if log else "linear"), axis=axis),
        y=alt.Y("ns_per_mib:Q", title="CPU, ns per MiB sent (log scale)", scale=alt.Scale(type="log")),
        color=color,
        tooltip=["design", key, alt.Tooltip("ns_per_mib:Q", format=".0f"), alt.Tooltip("calls_per_mib:Q", format=".1f"),
                 alt.Tooltip("slow_pages_per_mib:Q", format=".1f"),
                 alt.Tooltip("allocated_kib_per_mib:Q", format=".0f")],
    ).properties(width=300, height=200)


def chart_workloads(df: pd.DataFrame):
    """Dots: ns per MiB of each workload under each strategy (log scale: the workloads differ a hundredfold)."""
    d = _named(df)
    return alt.Chart(d, title="ns per MiB by workload and strategy").mark_point(filled=True, size=110).encode(
        y=alt.Y("workload:N", title=None),
        x=alt.X("ns_per_mib:Q", title="ns per MiB (log scale)", scale=alt.Scale(type="log")),
        color=alt.Color("design:N", title=None, scale=COLORS),
        shape=alt.Shape("design:N", title=None, scale=alt.Scale(domain=list(NAMES.values()))),
        tooltip=["workload", "what", "design", alt.Tooltip("ns_per_mib:Q", format=".0f"),
                 alt.Tooltip("calls_per_mib:Q", format=".1f"), alt.Tooltip("allocated_kib_per_mib:Q", format=".0f")],
    ).properties(width=420, height=170)


def controls(spec: ParamSpec, params: Mapping[str, Any]) -> dict:
    """The panel's controls, started at the run's values, ranges from the chapter's spec."""
    return widgets.controls(spec, params, iov_count={"options": PANEL_IOV_COUNTS},
                            iov_size={"options": PANEL_IOV_SIZES}, iov_layout={},
                            resident_fraction={"options": PANEL_FRACTIONS}, thp_share={"options": PANEL_FRACTIONS},
                            accept_fraction={"options": PANEL_ACCEPT})


def panel(df: pd.DataFrame) -> list:
    """What the control panel shows for one setting: the cost bars and the totals by strategy."""
    tot = _named(df).groupby("design", as_index=False)["ns_per_mib"].sum().round(0)
    return [chart_costs(df, "ns per MiB by cause, this setting"), tot]


def make_panel(ch, P, R) -> widgets.Panel:
    """Chapter 04's control panel from the chapter module ``ch`` (passed in: a view never imports it)."""
    return widgets.panel(controls(widgets.spec_of(P), P), lambda **c: panel(ch.panel_data(P, **c)),
                         title="ns per MiB by cause and strategy")

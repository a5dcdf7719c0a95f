"""Chapter 01's charts and panel view (book/01_refcount_removal.ipynb).

Each function takes a DataFrame from :mod:`fraglife.chapters.refcount_removal`
(``Results`` or ``panel_data``) and returns an altair chart or a list to show.
"""

from __future__ import annotations

from typing import Any, Mapping

import altair as alt
import pandas as pd

from ..model import trace as T
from ..params import ParamSpec
from . import widgets
from .plots import POLICY_ORDER, policy_color

#: The panel's frag sizes (bytes); the other controls span the parameters' own ranges.
PANEL_FRAG_SIZES = (1024, 4096, 16384, 65536, 262144)
PANEL_COLUMNS = ["policy", "ref_atomics_per_mib", "bounces_per_mib", "pages_peak", "uaf_pages"]


def chart_by_event(df: pd.DataFrame):
    """Stacked bars: page ref atomics per MiB by event type, one bar per workload."""
    return alt.Chart(df, title="Where today's page ref atomics come from").mark_bar().encode(
        y=alt.Y("workload:N", title=None),
        x=alt.X("per_mib:Q", title="page ref atomics per MiB of payload"),
        color=alt.Color("event:N", title="event", sort=list(T.OP_NAMES)),
        order=alt.Order("event:N"),
        tooltip=["workload", "event", alt.Tooltip("per_mib:Q", format=".1f")],
    ).properties(width=460, height=160)


def chart_policies(df: pd.DataFrame, workload: str):
    """Grouped bars: ref atomics and cache-line bounces per MiB for each policy."""
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


def chart_loss_frag(df: pd.DataFrame, metric: str = "ref_atomics_per_mib",
                    title: str = "page/owner ref atomics per MiB"):
    """Lines over loss rate, one panel per frag size, one colour per policy."""
    return alt.Chart(df).mark_line(point=True).encode(
        x=alt.X("loss_rate:Q", title="segment loss rate", axis=alt.Axis(format="%")),
        y=alt.Y(f"{metric}:Q", title=title),
        color=policy_color(),
        column=alt.Column("frag_size:O", title="frag size (bytes)"),
        tooltip=["policy", "loss_rate", "frag_size", alt.Tooltip(f"{metric}:Q", format=".1f")],
    ).properties(width=170, height=200)


def chart_spanning(df: pd.DataFrame):
    """Heatmap: share of pages freed while a frag points at them, today's single page ref."""
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


def controls(spec: ParamSpec, params: Mapping[str, Any]) -> dict:
    """The panel's controls, started at the run's values, ranges from the chapter's spec."""
    return widgets.controls(spec, params, workload={},
                            loss_rate={"step": 0.005, "readout_format": ".3f"},
                            frag_size={"options": PANEL_FRAG_SIZES}, cpus={"hi": 8})


def panel(df: pd.DataFrame, workload: str) -> list:
    """What the control panel shows for one setting: the policy chart and its table."""
    return [chart_policies(df, workload), df[PANEL_COLUMNS].round(1)]

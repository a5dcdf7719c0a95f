"""Chapter 07's charts and panel view (book/07_kmalloc_sends.ipynb).

Each function takes a DataFrame from :mod:`fraglife.chapters.kmalloc_sends` (``Results`` or
``panel_data``) and returns an altair chart or a list to show.
"""

from __future__ import annotations

from typing import Any, Mapping

import altair as alt
import pandas as pd

from . import plots, widgets
from .plots import PALETTE

DESIGN_ORDER = ["TCP copy", "copy to page_frag", "copy to whole pages", "destructor", "kmalloc page refs"]
DESIGN_COLORS = [PALETTE[2], PALETTE[3], PALETTE[1], PALETTE[0], PALETTE[4]]
CAUSES = ["copy", "data buffer", "page allocations", "owner object", "refcount atomics"]
PANEL_BYTES = (16, 64, 256, 1024, 2048, 4096, 8192, 16384, 65536)
PANEL_RATES = (1.0, 10.0, 25.0, 100.0, 400.0)
PANEL_LATENCIES = (1.0, 5.0, 20.0, 50.0, 200.0, 1000.0, 5000.0)


def design_color(field: str = "design") -> alt.Color:
    return plots.category_color(field, "design", DESIGN_ORDER, DESIGN_COLORS)


def _log2(title: str) -> alt.X:
    return plots.log2_x("bytes", title, axis=alt.Axis(values=[64, 256, 1024, 4096, 16384, 65536]))


def chart_costs(df: pd.DataFrame, crossover: float, rate: float, latency_us: float):
    """Lines: CPU ns per message against message size, one per design; a rule at the crossover."""
    lines = alt.Chart(df).mark_line(point=True).encode(
        x=_log2("message size (bytes, log)"),
        y=alt.Y("total:Q", title="ns per message (log)", scale=alt.Scale(type="log")),
        color=design_color(),
        tooltip=["design", "bytes", alt.Tooltip("total:Q", format=".1f"), alt.Tooltip("copy:Q", format=".1f"),
                 alt.Tooltip("refcount atomics:Q", format=".1f")],
    )
    layers = [lines]
    if crossover < float("inf"):
        layers.append(alt.Chart(pd.DataFrame({"bytes": [crossover]})).mark_rule(strokeDash=[4, 3]).encode(
            x="bytes:Q"))
    return alt.layer(*layers).properties(
        width=440, height=230, title=f"CPU per message at {rate:g} Gbit/s, {latency_us:g} us in flight")


def chart_breakdown(df: pd.DataFrame, sizes=(64, 2048, 8192)):
    """Stacked bars: ns per message by cause, per design, at a few sizes."""
    d = df[df.bytes.isin(sizes)].melt(id_vars=["design", "bytes"], value_vars=CAUSES, var_name="cause",
                                      value_name="ns")
    d["size"] = d["bytes"].map(lambda b: f"{b // 1024} KiB" if b >= 1024 else f"{b} B")
    return alt.Chart(d).mark_bar().encode(
        y=alt.Y("design:N", sort=DESIGN_ORDER, title=None),
        x=alt.X("ns:Q", title="ns per message"),
        color=alt.Color("cause:N", sort=CAUSES, title=None, legend=alt.Legend(orient="bottom")),
        row=alt.Row("size:N", title=None, sort=[f"{b // 1024} KiB" if b >= 1024 else f"{b} B" for b in sizes],
                    header=alt.Header(labelAngle=0, labelAlign="left")),
        tooltip=["design", "size", "cause", alt.Tooltip("ns:Q", format=".1f")],
    ).properties(width=400, height=75, title="Where a message's time goes")


def chart_crossover(df: pd.DataFrame):
    """Line: the message size from which the destructor is cheaper, against the time in flight."""
    return alt.Chart(df, title="Crossover size against time in flight").mark_line(point=True).encode(
        x=alt.X("latency_us:Q", title="time in flight (us, log)", scale=alt.Scale(type="log")),
        y=alt.Y("crossover_bytes:Q", title="destructor cheaper than TCP's copy from (bytes)"),
        tooltip=["latency_us", alt.Tooltip("crossover_bytes:Q", format=".0f")],
    ).properties(width=400, height=200)


def chart_memory(df: pd.DataFrame, rate: float, latency_us: float):
    """Lines: bytes held in flight against message size, per design (Little's law); designs that hold the same
    at every size share a line ("TCP copy = copy to page_frag": both fill page_frag pages)."""
    d, color = plots.merge_alike(df.assign(held_kib=df["held_bytes"] / 1024), "design", "bytes", ["held_kib"],
                                 DESIGN_ORDER, DESIGN_COLORS, "design")
    return alt.Chart(d).mark_line(point=True).encode(
        x=_log2("message size (bytes, log)"),
        y=alt.Y("held_kib:Q", title="KiB held in flight (log)", scale=alt.Scale(type="log")),
        color=color,
        tooltip=["design", "bytes", alt.Tooltip("held_kib:Q", format=".1f")],
    ).properties(width=440, height=210, title=f"Memory held at {rate:g} Gbit/s for {latency_us:g} us")


def chart_comparison(df: pd.DataFrame):
    """Points: the model's count against the kernel's, per quantity, both per MiB on log axes; the diagonal is
    agreement (a ratio quantity, frags per skb, is shown per skb)."""
    d = df[df.agrees.notna()].assign(agrees=lambda x: x.agrees.map({True: "agrees", False: "differs (reason given)"}))
    lo = float(min(d.kernel.min(), d.model.min())) * 0.8
    hi = float(max(d.kernel.max(), d.model.max())) * 1.25
    scale = alt.Scale(type="log", domain=[lo, hi])
    points = alt.Chart(d).mark_point(filled=True, size=60).encode(
        x=alt.X("kernel:Q", title="the kernel's count (per MiB; frags per skb, log)", scale=scale),
        y=alt.Y("model:Q", title="the model's count (per MiB; frags per skb, log)", scale=scale),
        color=alt.Color("quantity:N", title=None, legend=alt.Legend(orient="bottom", columns=3)),
        shape=alt.Shape("agrees:N", title=None),
        tooltip=["transfer", "quantity", alt.Tooltip("kernel:Q", format=".2f"), alt.Tooltip("model:Q", format=".2f")],
    )
    diag = alt.Chart(pd.DataFrame({"kernel": [lo, hi], "model": [lo, hi]})).mark_line(
        strokeDash=[4, 3], color="#888").encode(x="kernel:Q", y="model:Q")
    return alt.layer(diag, points).properties(width=380, height=260, title="The copy-path model against the kernel")


def chart_panel(df: pd.DataFrame):
    d = df.melt(id_vars=["design"], value_vars=CAUSES, var_name="cause", value_name="ns")
    return alt.Chart(d).mark_bar().encode(
        y=alt.Y("design:N", sort=DESIGN_ORDER, title=None),
        x=alt.X("ns:Q", title="ns per message (mean over the mix)"),
        color=alt.Color("cause:N", sort=CAUSES, title=None, legend=alt.Legend(orient="bottom")),
        tooltip=["design", "cause", alt.Tooltip("ns:Q", format=".1f")],
    ).properties(width=420, height=120)


def controls(spec, params: Mapping[str, Any]) -> dict:
    return widgets.controls(spec, params, mix={}, msg_bytes={"options": PANEL_BYTES},
                            rate_gbit={"options": PANEL_RATES}, latency_us={"options": PANEL_LATENCIES})


def panel(df: pd.DataFrame) -> list:
    table = df[["design", "total", "held_bytes"]].assign(held_kib=lambda x: x.held_bytes / 1024).drop(
        columns="held_bytes").rename(columns={"total": "ns per message"})
    return [chart_panel(df), table.round(1)]


def make_panel(ch, P, R) -> widgets.Panel:
    """Chapter 07's control panel; ``ch`` is the chapter module (a view never imports it)."""
    return widgets.panel(controls(widgets.spec_of(P), P), lambda **c: panel(ch.panel_data(P, **c)),
                         title="CPU per message by cause, and memory held")

"""Chapter 08's charts and panel view (book/08_unified_owner.ipynb).

Each function takes a DataFrame (or the record) from
:mod:`fraglife.chapters.unified_owner` (``Results`` or ``panel_data``) and
returns an altair chart or what the panel shows.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import altair as alt
import numpy as np
import pandas as pd
import html

from IPython.display import HTML

from ..params import Param
from . import plots, widgets
from .plots import PALETTE

DESIGN_ORDER = ["today", "unified owner"]
DESIGN_COLORS = [PALETTE[0], PALETTE[2]]
MEMORY_ORDER = ["user+pipe", "user", "pipe", "pool", "devmem", "kmalloc"]


def _design_color() -> alt.Color:
    return plots.category_color("design", "design", DESIGN_ORDER, DESIGN_COLORS)


def chart_book(df: pd.DataFrame, gbit: int):
    """Every workload of the book: the share of a core each design takes at the line rate; violations marked."""
    d = df.assign(percent=100 * df["core_share"],
                  mark=[f"  {v} pages freed early" if v else "" for v in df["uaf_pages"]])
    base = alt.Chart(d, title=f"Every workload of the book: share of one core at {gbit} Gbit/s").encode(
        y=alt.Y("workload:N", title=None, sort=list(dict.fromkeys(d.workload))),
        yOffset=alt.YOffset("design:N", sort=DESIGN_ORDER),
    )
    bars = base.mark_bar().encode(
        x=alt.X("percent:Q", title=f"% of one core at {gbit} Gbit/s (this machine's unit costs)"),
        color=_design_color(),
        tooltip=["workload", "design", alt.Tooltip("ns_per_mib:Q", format=".0f", title="ns/MiB"),
                 alt.Tooltip("percent:Q", format=".2f"), alt.Tooltip("atomics_per_mib:Q", format=".0f"),
                 "pages_peak", "violations"],
    )
    text = base.mark_text(align="left", color="#D55E00", fontWeight="bold", fontSize=12).encode(
        x="percent:Q", text="mark:N")
    return (bars + text).properties(width=760, height=320)


def chart_kinds(df: pd.DataFrame):
    """Stacked bars: atomics per MiB by refcount kind, each workload under both designs."""
    kinds = [c for c in df.columns if c not in ("workload", "design")]
    long = df.melt(id_vars=["workload", "design"], value_vars=kinds, var_name="refcount", value_name="per_mib")
    long = long[long.per_mib > 0]
    return alt.Chart(long, title="Atomics per MiB by refcount, today and with the owner").mark_bar().encode(
        y=alt.Y("workload:N", title=None, sort=list(dict.fromkeys(df.workload))),
        yOffset=alt.YOffset("design:N", sort=DESIGN_ORDER),
        x=alt.X("per_mib:Q", title="atomics per MiB (the top bar of each pair: today)"),
        color=alt.Color("refcount:N", title="refcount"),
        tooltip=["workload", "design", "refcount", alt.Tooltip("per_mib:Q", format=".1f")],
    ).properties(width=520, height=300)


def chart_verdicts(df: pd.DataFrame):
    """A grid: each design on each kind of memory, passed (with its states) or failed (in how many steps)."""
    refused = (df.memory == "kmalloc") & df.policy.isin(["page_ref", "page_ref_all"])
    d = df.assign(row=[p if f == "future" else f"{p} (today's frags)" for p, f in zip(df.policy, df.frags)],
                  result=np.where(refused, "cannot be sent", df.verdict),
                  label=[("cannot be sent (-EIO)" if r else f"{s:,} states") if v == "passes"
                         else f"{x.replace('_', ' ')}, {n} steps"
                         for v, s, x, n, r in zip(df.verdict, df.states, df.violation, df.steps, refused)])
    # today's rule on today's frags first, then every design in the table's (the model's) order
    order = sorted(dict.fromkeys(d.row), key=lambda r: not r.endswith("(today's frags)"))
    base = alt.Chart(d, title="Every design on every memory: the explorer's verdict").encode(
        x=alt.X("memory:N", sort=MEMORY_ORDER, title=None, axis=alt.Axis(labelAngle=0, orient="top")),
        y=alt.Y("row:N", sort=order, title=None),
    )
    cells = base.mark_rect(stroke="white").encode(
        color=alt.Color("result:N", title="verdict", scale=alt.Scale(domain=["passes", "fails", "cannot be sent"],
                                                                     range=["#B9E3C6", "#F4B6A6", "#E0E0E0"])),
        tooltip=["policy", "memory", "frags", "verdict", "violation", "steps", "states", "edges"],
    )
    text = base.mark_text(fontSize=10).encode(text="label:N")
    return (cells + text).properties(width=660, height=230)


def chart_contention(df: pd.DataFrame):
    """Lines: ns per MiB on devmem TX as more CPUs write the binding at once (log-log): measured on this machine up
    to its CPUs, a cited line transfer per update beyond (dashed), never an extrapolated curve."""
    cols = [c for c in df.columns if c.endswith("ns/MiB") and "binding" not in c]
    if df.empty or not cols:
        return alt.Chart(pd.DataFrame({"note": ["no devmem TX on this kernel"]})).mark_text().encode(text="note:N")
    long = df.melt(id_vars=["writers", "source"], value_vars=cols, var_name="design", value_name="ns_per_mib")
    long["design"] = long["design"].str.replace(" ns/MiB", "", regex=False)
    return alt.Chart(long, title="devmem TX: the binding written by k CPUs at once").mark_line(point=True).encode(
        x=alt.X("writers:Q", title="CPUs writing the binding (k, log scale)", scale=alt.Scale(type="log")),
        y=alt.Y("ns_per_mib:Q", title="ns per MiB sent (log scale)", scale=alt.Scale(type="log")),
        color=_design_color(),
        strokeDash=alt.StrokeDash("source:N", title="price per update", sort=["measured", "cited"]),
        detail="source:N",
        tooltip=["design", "writers", "source", alt.Tooltip("ns_per_mib:Q", format=".0f")],
    ).properties(width=420, height=220)


def chart_coalesce(df: pd.DataFrame):
    """Lines: ref atomics per 64 KiB skb against the distinct owners in it."""
    long = df.reset_index().melt(id_vars=["owners_per_skb"], var_name="series", value_name="ref_atomics")
    long["design"] = long.series.str.split(", ").str[0]
    long["offload"] = long.series.str.split(", ").str[1]
    return alt.Chart(long, title="Frags from several owners: ref atomics per 64 KiB skb").mark_line(
        point=True).encode(
        x=alt.X("owners_per_skb:Q", title="distinct owners per 64 KiB skb (log scale)",
                scale=alt.Scale(type="log", base=2)),
        y=alt.Y("ref_atomics:Q", title="frag-memory ref atomics per 64 KiB skb"),
        color=_design_color(),
        strokeDash=alt.StrokeDash("offload:N", title=None),
        tooltip=["design", "offload", "owners_per_skb", "ref_atomics"],
    ).properties(width=380, height=200)


# ---- the panel --------------------------------------------------------------------------------
def controls(spec, params: Mapping[str, Any], choices: Sequence[Param]) -> dict:
    """The panel's controls: the memory (the chapter's parameter), then the panel's own ``choices`` (the chapter
    module's ``PANEL_PARAMS``: the design, the frags, a rule to leave out), each at its default."""
    c = widgets.controls(spec, params, memory={})
    for p in choices:
        c[p.name] = widgets.control(p, p.default)
    return c


def panel(data: Mapping[str, Any]) -> list:
    """What the panel shows for one search: its verdict in a line, and the shortest counterexample step by step."""
    s, b = data["summary"], data["bounds"]
    where = (f"{b.ops} operations, {b.cpus} CPUs, {b.skbs} skbs, {b.frags} frags: "
             f"{s['states']:,} states, {s['edges']:,} steps")
    if s["verdict"] == "passes":
        return [HTML(f"<p><b>Passes.</b> No violation at {html.escape(where)}.</p>")]
    found = html.escape(s["violations"].replace("_", " "))
    return [HTML(f"<p><b>Fails:</b> {html.escape(s['violation'].replace('_', ' '))} in <b>{s['steps']} steps</b> "
                 f"(found at {html.escape(where)}; all found: {found}).</p>"), data["walk"]]


def make_panel(ch, P, R) -> widgets.Panel:
    """Chapter 08's control panel: a search of every interleaving at small bounds for a design, memory and
    rule the reader picks, with its shortest counterexample.

    ``ch`` is the chapter module (passed in: a view never imports it); ``fraglife bench`` times this panel's
    re-render."""
    return widgets.panel(controls(widgets.spec_of(P), P, ch.PANEL_PARAMS), lambda **c: panel(ch.panel_data(P, **c)),
                         title="Search every interleaving: pick a design, a memory, a rule to leave out")

"""Chapter 05's charts and panel view (book/05_splice_destructors.ipynb).

Each function takes a DataFrame from :mod:`fraglife.chapters.splice_destructors` (``Results`` or
``panel_data``) and returns an altair chart or a list to show.
"""

from __future__ import annotations

from typing import Any, Mapping

import altair as alt
import pandas as pd

from . import plots, widgets
from .plots import PALETTE
from .compare import chart_comparison  # noqa: F401  (the chapter's notebook shows it)

RULE_ORDER = ["today", "owner", "pipe_holds"]
RULE_COLORS = [PALETTE[3], PALETTE[0], PALETTE[4]]
CAUSES = ["pipe fill", "taken at attach", "taken on retransmit, GSO, unclone", "released when sendmsg() returns",
          "released by skbs and ACKs", "dataref and ubuf_info"]
PHASES = ["queued in the socket", "on the wire", "ACK and TX completion"]
PHASE_COLORS = [PALETTE[5], PALETTE[1], PALETTE[3]]
PANEL_PIPE_KIB = (4, 8, 16, 64, 256, 1024)
PANEL_SPLICE_KIB = (4, 16, 64, 256, 1024, 16384)
PANEL_LINE_GBIT = (10, 25, 100, 200, 400)
PANEL_COLUMNS = ["rule", "atomics_per_mib", "ns_per_mib", "gbit_per_s", "hold_us", "inflight_pages"]


def rule_color(field: str = "rule") -> alt.Color:
    return plots.category_color(field, "rule", RULE_ORDER, RULE_COLORS)


def distinct_bars(df: pd.DataFrame) -> pd.DataFrame:
    """One row per rule and distinct set of numbers: sources that take exactly the same (vmsplice through a 64 KiB
    and a 1 MiB pipe) share a bar, their names joined with " = "."""
    key = df[CAUSES].round(6).astype(str).agg("|".join, axis=1) + "|" + df["rule"]
    names = df.groupby(key, sort=False)["source"].agg(lambda s: " = ".join(dict.fromkeys(s)))
    return df.loc[~key.duplicated()].assign(source=key[~key.duplicated()].map(names).values)


def chart_rules(df: pd.DataFrame):
    """Stacked bars: atomics per MiB by what takes or drops them, one bar per rule (and source; sources that take
    the same share a bar)."""
    df = distinct_bars(df)
    long = df.melt(id_vars=["source", "rule"], value_vars=CAUSES, var_name="cause", value_name="per_mib")
    long["bar"] = long["source"] + ": " + long["rule"]
    long["cause_order"] = long["cause"].map(CAUSES.index)
    return alt.Chart(long, title="What each rule takes and releases, atomics per MiB").mark_bar().encode(
        y=alt.Y("bar:N", title=None, sort=list(dict.fromkeys(long["bar"]))),
        x=alt.X("per_mib:Q", title="atomics per MiB spliced"),
        color=alt.Color("cause:N", title=None, sort=CAUSES, legend=alt.Legend(orient="bottom", columns=2)),
        order=alt.Order("cause_order:Q"),
        tooltip=["source", "rule", "cause", alt.Tooltip("per_mib:Q", format=".0f")],
    ).properties(
        width=440, height=max(60, 22 * long["bar"].nunique()))


def chart_sendmsg_sizes(df: pd.DataFrame):
    """Lines: atomics per MiB against pages per sendmsg(), today and with the owner."""
    return plots.lines(df, "",  # the section's heading names it
                       ("sendmsg_pages", "pages per sendmsg() (log)"), ("atomics_per_mib", "atomics per MiB"),
                       rule_color(), {"atomics_per_mib": ".0f", "ns_per_mib": ".0f"}, (640, 170))


def merge_same(df: pd.DataFrame) -> pd.DataFrame:
    """One row of bars for rules whose phases are the same (today and the owner: moving the buffers to the owner
    changes no timing), labelled with both rules and both holders."""
    key = ["sendmsg", "phase", "start_us", "end_us"]
    rules = list(dict.fromkeys(df["rule"]))
    label = {r: f"{r}: {df[df.rule == r]['held by'].iloc[0]}" for r in rules}
    for i, a in enumerate(rules):
        for b in rules[i + 1:]:
            if label[b] != label[a] and df[df.rule == a][key].reset_index(drop=True).equals(
                    df[df.rule == b][key].reset_index(drop=True)):
                label[a] = label[b] = (f"{a} and {b}, the same timing: {df[df.rule == a]['held by'].iloc[0]} "
                                       f"or {df[df.rule == b]['held by'].iloc[0]}")
    out = df.assign(row=df["rule"].map(label))
    return out.drop_duplicates(["row"] + key)


def chart_timeline(df: pd.DataFrame):
    """Bars: each of the first sendmsg()s from its return to the network letting go, by phase; one row per rule
    (rules with the same timing share a row), labelled with who holds the pages meanwhile."""
    d = merge_same(df)
    rows = list(dict.fromkeys(d["row"]))
    return alt.Chart(d).mark_bar(height=5).encode(
        x=alt.X("start_us:Q", title="time since the first splice() (us)"),
        x2="end_us:Q",
        y=alt.Y("sendmsg:O", title="sendmsg()", axis=alt.Axis(labels=False, ticks=False)),
        color=alt.Color("phase:N", title=None, sort=PHASES, scale=alt.Scale(domain=PHASES, range=PHASE_COLORS),
                        legend=alt.Legend(orient="bottom")),
        row=alt.Row("row:N", title=None, sort=rows, header=alt.Header(labelAngle=0, labelAlign="left",
                                                                       labelAnchor="start", labelOrient="top")),
        tooltip=["rule", "held by", "sendmsg", "phase", alt.Tooltip("start_us:Q", format=".1f"),
                 alt.Tooltip("end_us:Q", format=".1f")],
    ).properties(width=640, height=66, title="Who holds each sendmsg()'s pages, and until when")


def chart_panel(df: pd.DataFrame):
    """Two bar charts side by side: atomics per MiB and throughput per rule."""
    base = alt.Chart(df).encode(y=alt.Y("rule:N", sort=RULE_ORDER, title=None), color=rule_color())
    atomics = base.mark_bar().encode(x=alt.X("atomics_per_mib:Q", title="atomics per MiB"),
                                     tooltip=["rule", alt.Tooltip("atomics_per_mib:Q", format=".0f")])
    rate = base.mark_bar().encode(x=alt.X("gbit_per_s:Q", title="Gbit/s through the pipe"),
                                  tooltip=["rule", alt.Tooltip("gbit_per_s:Q", format=".2f")])
    return alt.hconcat(atomics.properties(width=220, height=70), rate.properties(width=220, height=70))


def controls(spec, params: Mapping[str, Any]) -> dict:
    """The panel's controls, started at the run's values, ranges from the chapter's spec."""
    return widgets.controls(spec, params, pipe_kib={"options": PANEL_PIPE_KIB},
                            splice_kib={"options": PANEL_SPLICE_KIB},
                            completion_us={"lo": 0.0, "hi": 1000.0, "step": 5.0},
                            line_gbit={"options": PANEL_LINE_GBIT})


def panel(df: pd.DataFrame) -> list:
    return [chart_panel(df), df[PANEL_COLUMNS].round(2)]


def make_panel(ch, P, R) -> widgets.Panel:
    """Chapter 05's control panel; ``ch`` is the chapter module (a view never imports it)."""
    return widgets.panel(controls(widgets.spec_of(P), P), lambda **c: panel(ch.panel_data(P, **c)))

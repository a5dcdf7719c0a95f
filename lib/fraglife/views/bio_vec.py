"""Chapter 06's charts and panel view (book/06_bio_vec.ipynb).

Each function takes a DataFrame from :mod:`fraglife.chapters.bio_vec` (``Results`` or
``panel_data``) and returns an altair chart or a list to show.
"""

from __future__ import annotations

from typing import Any, Mapping

import altair as alt
import pandas as pd

from ..params import ParamSpec
from . import plots, widgets
from .plots import PALETTE

RULE_ORDER = ["splice", "zerocopy", "phys"]
PANEL_COLUMNS = ["rule", "frags", "frags_per_mib", "skbs_per_mib", "frags_per_skb", "gso_refs_per_mib",
                 "attach_ref_atomics_per_mib", "multi_folio_frags"]
PANEL_SENDS = (64, 256, 1024, 4096, 16384)


RULE_COLORS = [PALETTE[3], PALETTE[0], PALETTE[2]]


def rule_color(field: str = "rule") -> alt.Color:
    return plots.category_color(field, "frag rule", RULE_ORDER, RULE_COLORS)


def _merged(df: pd.DataFrame, key: str, measure: str) -> tuple:
    """Rules that give the same counts at every point share a line ("splice = zerocopy")."""
    return plots.merge_alike(df, "rule", key, [measure], RULE_ORDER, RULE_COLORS, "frag rule")


def chart_buffers(df: pd.DataFrame):
    """Bars: frags per MiB of each measured buffer, one bar per rule. Buffers whose bars are within 0.5 % of the
    axis of each other (a fresh 4 KiB buffer that this machine handed out as scattered as a fragmented one) share
    one row, named together."""
    d, _ = plots.merge_alike(df, "buffer", "rule", ["frags_per_mib"], list(dict.fromkeys(df.buffer)),
                             sep=" ≈ ", atol=0.005 * float(df.frags_per_mib.max()))
    return alt.Chart(d, title="Frags per MiB on this machine's buffers (16 MiB each)").mark_bar().encode(
        y=alt.Y("rule:N", sort=RULE_ORDER, title=None),
        x=alt.X("frags_per_mib:Q", title="frags per MiB"),
        color=rule_color(),
        row=alt.Row("buffer:N", title=None, header=alt.Header(labelAngle=0, labelAlign="left")),
        tooltip=["buffer", "rule", alt.Tooltip("frags_per_mib:Q", format=".1f"), "multi_folio_frags"],
    ).properties(width=380, height=48)


def chart_sends(df: pd.DataFrame):
    """Lines: frags per MiB against send size, one per rule (rules that frag alike share one)."""
    d, color = _merged(df, "send_kib", "frags_per_mib")
    return plots.lines(d, "The run's buffer: frags per MiB by send size", ("send_kib", "send size (KiB, log)"),
                       ("frags_per_mib", "frags per MiB"), color,
                       {"frags_per_mib": ".1f", "skbs_per_mib": ".2f"}, (380, 220))


def chart_gso(df: pd.DataFrame, max_frags: int):
    """Lines: skbs per MiB against the GSO limit, one per rule (rules alike share one), at the run's frag
    limit."""
    d, color = _merged(df, "gso_max_kib", "skbs_per_mib")
    return plots.lines(d, f"skbs per MiB as the GSO limit grows ({max_frags} frags per skb)",
                       ("gso_max_kib", "GSO limit (KiB, log)"), ("skbs_per_mib", "skbs per MiB"), color,
                       {"skbs_per_mib": ".2f", "frags_per_skb": ".1f"}, (380, 220))


def chart_layouts(df: pd.DataFrame):
    """Bars: skb_shared_info bytes per entry layout at 17 and 45 frags, cache-line grid behind."""
    d = df[df.frags.isin([17, 45])]
    return alt.Chart(d, title="skb_shared_info size by frag entry").mark_bar().encode(
        y=alt.Y("entry:N", title=None, sort=list(dict.fromkeys(df.entry))),
        x=alt.X("shinfo_bytes:Q", title="bytes (64-byte lines)", axis=alt.Axis(values=list(range(0, 833, 64)))),
        color=alt.Color("frags:O", title="frags"),
        yOffset="frags:O",
        tooltip=["entry", "frags", "shinfo_bytes", "cache_lines"],
    ).properties(width=380, height=170)


def controls(spec: ParamSpec, params: Mapping[str, Any]) -> dict:
    """The panel's controls, started at the run's values, ranges from the chapter's spec."""
    return widgets.controls(spec, params, send_kib={"options": PANEL_SENDS},
                            thp_share={"step": 0.125, "readout_format": ".3f"},
                            fragmentation={"step": 0.125, "readout_format": ".3f"},
                            max_frags={}, source={}, gso_max_kib={"options": (64, 128, 256, 512)})


def panel(df: pd.DataFrame) -> list:
    """What the panel shows: frags and skbs per MiB for each rule, and the table."""
    long = df.melt(id_vars=["rule"], value_vars=["frags_per_mib", "skbs_per_mib"], var_name="metric",
                   value_name="per MiB")
    chart = alt.Chart(long, title="The send under each rule").mark_bar().encode(
        x=alt.X("rule:N", sort=RULE_ORDER, title=None),
        y=alt.Y("per MiB:Q", title="count per MiB sent"),
        color=rule_color(),
        column=alt.Column("metric:N", title=None),
        tooltip=["rule", "metric", alt.Tooltip("per MiB:Q", format=".2f")],
    ).resolve_scale(y="independent").properties(width=180, height=180)
    return [chart, df[PANEL_COLUMNS].round(2).set_index("rule")]


def make_panel(ch, P, R=None) -> widgets.Panel:
    """Chapter 06's control panel from the chapter module ``ch`` (passed in: a view never imports it)."""
    return widgets.panel(controls(widgets.spec_of(P), P), lambda **c: panel(ch.panel_data(P, **c)),
                         title="Frags and skbs per MiB by rule")

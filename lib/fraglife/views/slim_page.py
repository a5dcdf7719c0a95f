"""Chapter 02's charts and panel view (book/02_slim_page.ipynb).

Each function takes a DataFrame from :mod:`fraglife.chapters.slim_page` (``Results``
or ``panel_data``) and returns an altair chart or a list to show.
"""

from __future__ import annotations

from typing import Any, Mapping

import altair as alt
import pandas as pd

from ..params import ParamSpec
from . import plots, widgets

LAYOUT_ORDER = ["struct_page", "memdesc32", "memdesc8", "desc_ref"]
STAGE_ORDER = ["today", "32 B", "8 B"]
MiB, GiB = 1 << 20, 1 << 30
#: the panel's choices for the continuous controls
PANEL_MACHINE_GIB = (16, 64, 256, 1024, 4096)
PANEL_WORKING_SETS = (16, 64, 256, 1024, 4096, 16384, 65536)


def layout_color(field: str = "layout") -> alt.Color:
    return plots.category_color(field, "layout", LAYOUT_ORDER)


def chart_stages(df: pd.DataFrame, title: str = "This machine: page metadata today and at each end state"):
    """Stacked bars: memmap and descriptor MiB per stage (in the frame's order: today, then 8 to 32 B)."""
    long = df.reset_index().melt(id_vars=["stage"], value_vars=["memmap", "descriptors"], var_name="part",
                                 value_name="bytes")
    long["MiB"] = long["bytes"] / MiB
    return alt.Chart(long, title=title).mark_bar().encode(
        y=alt.Y("stage:N", sort=list(df.index), title="memmap per page frame"),
        x=alt.X("MiB:Q", title="MiB of page metadata"),
        color=alt.Color("part:N", title=None, sort=["memmap", "descriptors"]),
        tooltip=["stage", "part", alt.Tooltip("MiB:Q", format=",.1f")],
    ).properties(width=420, height=120)


def chart_census(df: pd.DataFrame):
    """Bars: share of this machine's pages by category, coloured by the descriptor each would need."""
    d = df[df.pages > 0].reset_index()
    return alt.Chart(d, title="This machine's pages, and the descriptor each needs in the 8-byte world").mark_bar().encode(
        y=alt.Y("category:N", sort="-x", title=None),
        x=alt.X("share:Q", title="share of page frames", axis=alt.Axis(format="%")),
        color=alt.Color("descriptor:N", title="descriptor"),
        tooltip=["category", "pages", "descriptor", "descriptors", alt.Tooltip("share:Q", format=".2%")],
    ).properties(width=420, height=230)


def chart_break_even(df: pd.DataFrame):
    """Lines: metadata bytes per page against folio size, one per stage."""
    return plots.lines(df, "Metadata per page by folio size", ("folio_kib", "folio size (KiB, log)"),
                       ("bytes_per_page", "bytes per 4 KiB page"),
                       alt.Color("stage:N", sort=STAGE_ORDER, title="stage"), {"bytes_per_page": ".1f"}, (380, 220))


def chart_latency(df: pd.DataFrame, caches: list | None = None):
    """Lines: ns per load against working set (log-log), one per number of chains, cache sizes marked."""
    lines = alt.Chart(df, title="This machine: ns per load by working set (pointer chasing)").mark_line(
        point=True).encode(
        x=plots.log2_x("working_set_kib", "working set (KiB, log)"),
        y=alt.Y("ns:Q", title="ns per load (log)", scale=alt.Scale(type="log")),
        color=alt.Color("chains:O", title="chains at once"),
        tooltip=["working_set_kib", "chains", alt.Tooltip("ns:Q", format=".2f"), alt.Tooltip("q1:Q", format=".2f"),
                 alt.Tooltip("q3:Q", format=".2f")],
    )
    layers = [lines]
    if caches:
        c = pd.DataFrame([{"kib": x["bytes"] / 1024, "cache": f"L{x['level']}"} for x in caches])
        rules = alt.Chart(c).mark_rule(strokeDash=[4, 3], color="#888").encode(x="kib:Q")
        text = alt.Chart(c).mark_text(align="left", dx=3, dy=-6, color="#555").encode(
            x="kib:Q", y=alt.value(8), text="cache:N")
        layers += [rules, text]
    return alt.layer(*layers).properties(width=440, height=240)


def chart_working_sets(df: pd.DataFrame):
    """Lines: ns per MiB of the frag walk against working set, one per layout."""
    return plots.lines(df, "Walking frags to their metadata: ns per MiB",
                       ("working_set_mib", "working set of sent pages (MiB, log)"),
                       ("ns_per_mib", "ns per MiB (attach + release)"), layout_color(),
                       {"ns_per_mib": ",.0f", "miss_ns": ".1f"}, (420, 240))


def chart_folios(df: pd.DataFrame):
    """Grouped bars: metadata lines missed per MiB for per-page frags, by folio size and layout."""
    return alt.Chart(df, title="Lines missed per MiB, per-page frags").mark_bar().encode(
        x=alt.X("layout:N", sort=LAYOUT_ORDER, title=None, axis=alt.Axis(labelAngle=-30)),
        y=alt.Y("misses_per_mib:Q", title="missed lines per MiB"),
        color=layout_color(),
        column=alt.Column("folio_size:N", sort=["4k", "16k", "64k", "2m"], title="folio size"),
        tooltip=["folio_size", "layout", alt.Tooltip("misses_per_mib:Q", format=".1f")],
    ).properties(width=110, height=200)


def controls(spec: ParamSpec, params: Mapping[str, Any]) -> dict:
    """The panel's controls, started at the run's values, ranges from the chapter's spec."""
    return widgets.controls(spec, params, machine_gib={"options": PANEL_MACHINE_GIB}, mix={}, folio_size={},
                            working_set_mib={"options": PANEL_WORKING_SETS})


def panel(df: pd.DataFrame) -> list:
    """What the panel shows: metadata GiB per stage and the walk's ns per MiB per layout, and the memory table (the
    walk's numbers are on its axis)."""
    mem = df[df.part == "memory"]
    walk = df[df.part == "walk"]
    m = alt.Chart(mem, title="Metadata at each stage (GiB)").mark_bar().encode(
        y=alt.Y("name:N", sort=STAGE_ORDER, title=None),
        x=alt.X("gib:Q", title="GiB"),
        tooltip=["name", alt.Tooltip("gib:Q", format=".2f"), alt.Tooltip("saved_share_of_ram:Q", format=".2%")],
    ).properties(width=300, height=64)
    w = alt.Chart(walk, title="Frag walk (ns per MiB)").mark_bar().encode(
        y=alt.Y("name:N", sort=LAYOUT_ORDER, title=None),
        x=alt.X("ns_per_mib:Q", title="ns per MiB"),
        color=layout_color("name"),
        tooltip=["name", alt.Tooltip("ns_per_mib:Q", format=",.0f"), alt.Tooltip("core_share_100g:Q", format=".2%")],
    ).properties(width=300, height=72)
    mem_t = mem[["name", "gib", "share_of_ram", "saved_share_of_ram"]].rename(columns={"name": "stage"})
    return [alt.hconcat(m, w), mem_t.round(4).set_index("stage")]


def make_panel(ch, P, R=None) -> widgets.Panel:
    """Chapter 02's control panel from the chapter module ``ch`` (passed in: a view never imports it)."""
    return widgets.panel(controls(widgets.spec_of(P), P), lambda **c: panel(ch.panel_data(P, **c)),
                         title="Metadata by stage, frag walk by layout")

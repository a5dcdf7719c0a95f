"""Chapter 03's charts and panel view (book/03_pinning.ipynb).

Each function takes a DataFrame from :mod:`fraglife.chapters.pinning` (``Results`` or ``panel_data``) and
returns an altair chart or a list to show.
"""

from __future__ import annotations

from typing import Any, Mapping

import altair as alt
import pandas as pd

from ..params import Param, ParamSpec
from . import plots, widgets

POLICY_NAMES = {"ref": "GUP references (today)", "pin": "FOLL_PIN pins"}
POLICY_COLORS = alt.Scale(domain=list(POLICY_NAMES.values()), range=["#0072B2", "#D55E00"])
PANEL_SEND_SIZES = (4096, 16384, 65536, 262144, 1 << 20, 4 << 20, 16 << 20)
PANEL_FOLIO_PAGES = (1, 4, 16, 64, 512)
PANEL_FORK_RATES = (0.0, 0.1, 1.0, 10.0, 100.0, 1000.0)
PANEL_REFS = (0, 256, 1000, 1021, 1022, 2048, 4096)
LINE_TRANSFER = Param("line_transfer_ns", float, 40.0, "one refcount line transfer between CPUs, ns", lo=1.0,
                      hi=300.0)


def _named(df: pd.DataFrame) -> pd.DataFrame:
    return df.assign(design=df["policy"].map(POLICY_NAMES))


def chart_fp(df: pd.DataFrame, refs_here: int | None = None):
    """folio_maybe_dma_pinned() false-positive rate against the mean number of other references."""
    base = alt.Chart(df, title="Unpinned folios reported 'maybe pinned'").encode(
        x=alt.X("refs_mean:Q", title="other references per folio (mean)"))
    sim = base.mark_line(point=True).encode(
        y=alt.Y("fp_rate:Q", title="share of checks", axis=alt.Axis(format="%")),
        color=alt.Color("folio:N", title="folio"),
        tooltip=["folio", "refs_mean", alt.Tooltip("fp_rate:Q", format=".3f"), "max_refcount"])
    tail = alt.Chart(df[df["folio_pages"] == 1]).mark_line(strokeDash=[4, 3], color="#555").encode(
        x="refs_mean:Q", y="poisson_tail:Q")
    bias = alt.Chart(pd.DataFrame({"x": [1023]})).mark_rule(color="#999").encode(x="x:Q")
    layers = [sim, tail, bias]
    if refs_here is not None:
        layers.append(alt.Chart(pd.DataFrame({"x": [refs_here]})).mark_rule(color="#D55E00", strokeDash=[2, 2])
                      .encode(x="x:Q"))
    return alt.layer(*layers).properties(width=420, height=220)


def chart_costs(df: pd.DataFrame, title: str = "ns per MiB by cause"):
    """Stacked bars: ns per MiB by cause, one bar per design (causes that cost time)."""
    # counted atomics inside GUP's fitted price are rows at 0 ns: in the tables, not in the bars
    return plots.cost_bars(_named(df[df.ns_per_mib > 0]), title, "design", POLICY_NAMES.values(), ".1f", 110)


#: Each swept parameter's axis: (column shown, title with its unit).
AXES = {"folio_pages": ("folio_kib", "folio size (KiB, log scale)"),
        "send_size": ("send_kib", "send size (KiB, log scale)"),
        "fork_rate": ("fork_rate", "forks per 1000 sends (symlog scale)")}


def chart_sweep(df: pd.DataFrame, key: str, title: str, log: bool = True):
    """Line: what pins add over references, ns per MiB, over one parameter (both totals in the tooltip; the two
    totals lie too close to tell apart on one axis)."""
    w = df.pivot_table(index=key, columns="policy", values="ns_per_mib").reset_index()
    w = w.assign(extra=w["pin"] - w["ref"], extra_share=w["pin"] / w["ref"] - 1)
    if key == "folio_pages":
        w = w.assign(folio_kib=w["folio_pages"] * 4)
    if key == "send_size":
        w = w.assign(send_kib=w["send_size"] / 1024)
    key, axis_title = AXES.get(key, (key, key.replace("_", " ")))
    scale = alt.Scale(type="symlog" if log and w[key].min() <= 0 else ("log" if log else "linear"))
    return alt.Chart(w, title=title).mark_line(point=True, color=POLICY_COLORS.range[1]).encode(
        x=alt.X(f"{key}:Q", title=axis_title, scale=scale),
        y=alt.Y("extra:Q", title="pins less references, ns per MiB sent"),
        tooltip=[key, alt.Tooltip("ref:Q", format=".0f", title="references, ns per MiB"),
                 alt.Tooltip("pin:Q", format=".0f", title="pins, ns per MiB"),
                 alt.Tooltip("extra_share:Q", format=".1%", title="pins add")],
    ).properties(width=300, height=200)


def chart_zc_ratio(df: pd.DataFrame, crossovers: pd.DataFrame | None = None):
    """The sender's CPU per call, MSG_ZEROCOPY over copy, against the send size: measured (points) and the model
    (lines), one colour per buffer and state; points the fit did not use are hollow. Below 1 zerocopy is cheaper."""
    d = df.assign(kind=df["used by the fit"].map({True: "used by the fit", False: "held out"}))
    base = alt.Chart(d, title="MSG_ZEROCOPY over copy, sender's CPU per call (below 1: zerocopy is cheaper)")
    x = alt.X("send_kib:Q", title="send size (KiB)")
    color = alt.Color("series:N", title="buffer, state")
    model = base.mark_line().encode(x=x, y=alt.Y("model:Q", title="zerocopy / copy (ratio)"), color=color,
                                    detail="series:N")
    meas = base.mark_point(size=50).encode(
        x=x, y="measured:Q", color=color, shape=alt.Shape("kind:N", title="measured point"),
        tooltip=["series", "send_kib", alt.Tooltip("measured:Q", format=".3f"), alt.Tooltip("model:Q", format=".3f"),
                 "kind"])
    one = alt.Chart(pd.DataFrame({"y": [1.0]})).mark_rule(color="#999", strokeDash=[4, 3]).encode(y="y:Q")
    return alt.layer(model, meas, one).properties(width=440, height=240)


def pin_summary(df: pd.DataFrame) -> pd.DataFrame:
    """The pins probe's table in a few rows: operations that take the same pins per page (and the same as the
    source predicts) share a row. Every operation pins one per page or none, so bars would repeat two values:
    the table states it with its numbers."""
    d = df.assign(per_page=(df["pins acquired"] / df["pages"]).round(3),
                  predicted=(df["source predicts"] / df["pages"]).round(3))
    rows = d.groupby(["taken as", "per_page", "predicted"], sort=False).agg(
        operations=("operation", ", ".join), agrees=("agrees", "all"),
        pages=("pages", lambda p: f"{p.min()}" if p.min() == p.max() else f"{p.min()} to {p.max()}")).reset_index()
    return rows.rename(columns={"per_page": "pins per page, measured", "predicted": "pins per page, source (v6.18)",
                                "pages": "pages per run"})[
        ["taken as", "pins per page, measured", "pins per page, source (v6.18)", "agrees", "operations", "pages per run"]]


def controls(spec: ParamSpec, params: Mapping[str, Any], line_transfer_ns: float) -> dict:
    """The panel's controls, started at the run's values, ranges from the chapter's spec."""
    c = widgets.controls(spec, params, send_size={"options": PANEL_SEND_SIZES},
                         folio_pages={"options": PANEL_FOLIO_PAGES}, fork_rate={"options": PANEL_FORK_RATES},
                         refs_per_page={"options": PANEL_REFS})
    c["line_transfer_ns"] = widgets.control(LINE_TRANSFER, line_transfer_ns, step=1.0)
    return c


def panel(df: pd.DataFrame) -> list:
    """What the control panel shows for one setting: the cost bars and the totals by design."""
    tot = _named(df).groupby("design", as_index=False)["ns_per_mib"].sum().round(0)
    return [chart_costs(df, "ns per MiB by cause, this setting"), tot]


def make_panel(ch, P, R) -> widgets.Panel:
    """Chapter 03's control panel from the chapter module ``ch`` (passed in: a view never imports it)."""
    return widgets.panel(controls(widgets.spec_of(P), P, R.units["line_transfer_ns"]),
                         lambda **c: panel(ch.panel_data(P, **c)),
                         title="ns per MiB by cause: references against pins")

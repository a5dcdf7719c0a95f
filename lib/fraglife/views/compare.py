"""The model against the running kernel, drawn: rows of :mod:`fraglife.chapters.kit.compare` (any chapter's)."""

from __future__ import annotations

import altair as alt
import pandas as pd


def chart_comparison(df: pd.DataFrame):
    """Dots: the model's count over the kernel's, per quantity, a dot per transfer (named in its tooltip: a shape
    per transfer would repeat shapes past a handful, and transfers that agree exactly draw one dot); the band
    is the agreement range."""
    d = df[df["ratio"].notna()].assign(
        verdict=lambda x: x["agrees"].map({True: "agrees", False: "differs"}).fillna("n/a"))
    band = alt.Chart(pd.DataFrame({"lo": [0.8], "hi": [1.2]})).mark_rect(opacity=0.15).encode(
        y="lo:Q", y2="hi:Q")
    dots = alt.Chart(d).mark_point(filled=True, size=80, opacity=0.6).encode(
        x=alt.X("quantity:N", title=None, axis=alt.Axis(labelAngle=-25)),
        y=alt.Y("ratio:Q", title="model / kernel count (ratio)", scale=alt.Scale(domain=[0, 2], clamp=True)),
        color=alt.Color("verdict:N", scale=alt.Scale(domain=["agrees", "differs"], range=["#009E73", "#D55E00"])),
        tooltip=["transfer", "quantity", alt.Tooltip("model:Q", format=".2f"), alt.Tooltip("kernel:Q", format=".2f"),
                 alt.Tooltip("ratio:Q", format=".2f")],
    )
    return (band + dots).properties(width=380, height=200, title="The model against this kernel's tracepoints")

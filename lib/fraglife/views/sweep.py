"""The default chart of a sweep table (``fraglife sweep``, :func:`fraglife.sweep.chart`)."""

from __future__ import annotations

from typing import Iterable, Mapping

import altair as alt
import pandas as pd

MAX_CHART_ROWS = 5000  # altair's own limit: aggregate before charting


def is_numeric(series: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)


def chart(df: pd.DataFrame, axes: Iterable[str], metric: str, *, title: str | None = None,
          labels: Mapping[str, str] | None = None):
    """``metric`` against the first numeric axis, coloured by the second.

    ``labels`` gives a column's axis or legend title, with its unit (a column's
    name is no unit); a column without one is titled by its name.

    Points that failed are left out. Axes not on the chart are averaged over
    (the band shows their min..max). At most 5000 rows reach altair. Returns
    None when no point succeeded.
    """
    axes = list(axes)
    labels = dict(labels or {})
    name = lambda col: labels.get(col, col)  # noqa: E731
    ok = df[df["error"].isna() & df[metric].notna()] if "error" in df else df[df[metric].notna()]
    if ok.empty:
        return None
    varied = [a for a in axes if ok[a].nunique() > 1] or axes
    numeric = [a for a in varied if is_numeric(ok[a])]
    x = numeric[0] if numeric else (varied[0] if varied else None)
    rest = [a for a in varied if a != x]
    colour = numeric[1] if len(numeric) > 1 else (rest[0] if rest else None)
    data = ok.copy()
    if x is None:
        x = "point"
    by = [x] + ([colour] if colour else [])
    agg = data.groupby(by, sort=True)[metric].agg(["mean", "min", "max", "count"]).reset_index()
    if colour and len(agg) > MAX_CHART_ROWS:  # too many lines: average over the colour axis too
        colour, by = None, [x]
        agg = data.groupby(by, sort=True)[metric].agg(["mean", "min", "max", "count"]).reset_index()
    if len(agg) > MAX_CHART_ROWS:
        agg = agg.iloc[[round(i * (len(agg) - 1) / (MAX_CHART_ROWS - 1)) for i in range(MAX_CHART_ROWS)]]
    agg = agg.rename(columns={"mean": "value", "min": "value_min", "max": "value_max", "count": "points"})
    over = [a for a in varied if a not in by]
    label = name(metric) if not over else f"{name(metric)} (mean over {', '.join(over)})"

    x_numeric = is_numeric(agg[x])
    tooltip = [alt.Tooltip(f"{x}:{'Q' if x_numeric else 'N'}"),
               alt.Tooltip("value:Q", title=name(metric), format=".4g"), alt.Tooltip("points:Q")]
    if colour:
        c_numeric = is_numeric(agg[colour])
        ctype = ("O" if agg[colour].nunique() <= 12 else "Q") if c_numeric else "N"
        color = alt.Color(f"{colour}:{ctype}", title=name(colour), legend=alt.Legend(titleLimit=320),
                          scale=alt.Scale(scheme="viridis") if ctype != "N" else alt.Undefined)
        tooltip.insert(1, alt.Tooltip(f"{colour}:{ctype}"))
    base = alt.Chart(agg)
    if x_numeric:
        xs = agg[x].astype(float)
        log = bool((xs > 0).all() and xs.max() / xs.min() >= 100)
        xenc = alt.X(f"{x}:Q", title=name(x), scale=alt.Scale(type="log") if log else alt.Scale(zero=False))
        enc = {"x": xenc, "y": alt.Y("value:Q", title=label), "tooltip": tooltip}
        if colour:
            enc["color"] = color
        layers = [base.mark_line(point=True).encode(**enc)]
        if over:
            band = {"x": xenc, "y": alt.Y("value_min:Q", title=label), "y2": "value_max:Q"}
            if colour:  # fill, not color: same colours, and the legend keeps the lines' opaque symbols
                band["fill"] = alt.Fill(f"{colour}:{ctype}", legend=None,
                                        scale=alt.Scale(scheme="viridis") if ctype != "N" else alt.Undefined)
            layers.append(base.mark_area(opacity=0.15).encode(**band))  # after the lines: they own the legend
        out = alt.layer(*layers) if len(layers) > 1 else layers[0]
    else:
        enc = {"x": alt.X(f"{x}:N", title=name(x)), "y": alt.Y("value:Q", title=label), "tooltip": tooltip}
        if colour:
            enc["color"] = color
            enc["xOffset"] = alt.XOffset(f"{colour}:{ctype}")
        out = base.mark_bar().encode(**enc)
    chapter = str(df["chapter"].iloc[0]) if "chapter" in df and len(df) else ""
    return out.properties(title=title or f"{chapter}: {metric} over the sweep ({len(ok)} of {len(df)} points)")



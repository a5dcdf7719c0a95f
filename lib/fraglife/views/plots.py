"""Charts: one altair theme, rendered to static SVG so nothing loads from a CDN.

``setup()`` is called once per chapter; it also sets how tables show
(:func:`fraglife.views.tables.setup`: full cells, wrapped). In executed notebooks, HTML and slides
a chart is an ``image/svg+xml`` output produced by vl-convert, so it shows with
the network off; the output's metadata keeps the chart's Vega-Lite spec under
:data:`CHART_SPECS`, so the checks on charts (:mod:`fraglife.views.checks`) read
what an executed chapter drew. ``FRAGLIFE_RENDER=live`` switches JupyterLab to altair's
offline interactive renderer (its JavaScript also comes from vl-convert).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping, Sequence

import altair as alt

from . import tables

THEME = "fraglife"
RENDERER = "fraglife-svg"
#: Output metadata key: the Vega-Lite specs of the charts an output shows (a list; a panel shows several).
CHART_SPECS = "fraglife/charts"
FONT = "Liberation Sans, DejaVu Sans, Helvetica, Arial, sans-serif"
# Colour-blind-safe categorical palette (Okabe & Ito), fixed order so a policy
# keeps its colour across chapters.
PALETTE = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000"]


def _theme() -> alt.theme.ThemeConfig:
    return {
        "config": {
            "font": FONT,
            "background": "white",
            "view": {"continuousWidth": 420, "continuousHeight": 260, "stroke": "transparent"},
            # No label is cut with "…": a legend or axis entry names a kernel path, read whole.
            "axis": {"labelFontSize": 12, "titleFontSize": 13, "gridColor": "#e6e6e6", "domainColor": "#888",
                     "labelLimit": 0},
            "legend": {"labelFontSize": 12, "titleFontSize": 12, "labelLimit": 0},
            "header": {"labelFontSize": 12, "titleFontSize": 13},
            "title": {"fontSize": 15, "anchor": "start", "fontWeight": "bold"},
            "range": {"category": PALETTE},
            "line": {"strokeWidth": 2.5},
            "point": {"size": 60, "filled": True},
            "bar": {"cornerRadiusEnd": 2},
        }
    }


_registered = False


def _svg_renderer(spec: dict, **metadata) -> tuple[dict, dict]:
    """altair's SVG renderer (vl-convert), with the spec kept in the output's metadata."""
    from altair.vegalite.v6.display import svg_renderer

    bundle = svg_renderer(spec, **metadata)
    bundle, meta = bundle if isinstance(bundle, tuple) else (bundle, {})
    return bundle, {**meta, CHART_SPECS: [spec]}


def setup(render: str | None = None) -> str:
    """Register and enable the book's theme and a renderer, and full tables; returns the renderer name."""
    global _registered
    tables.setup()
    if not _registered:
        alt.theme.register(THEME, enable=True)(_theme)
        alt.renderers.register(RENDERER, _svg_renderer)
        _registered = True
    alt.theme.enable(THEME)
    render = render or os.environ.get("FRAGLIFE_RENDER", "static")
    if render == "live":
        alt.renderers.enable("jupyter", offline=True)
        return "jupyter"
    alt.renderers.enable(RENDERER)
    return "svg"


def to_svg(chart: alt.TopLevelMixin) -> str:
    """The chart as an SVG document, rendered locally by vl-convert."""
    setup()
    import vl_convert as vlc

    return vlc.vegalite_to_svg(chart.to_dict())


def save(chart: alt.TopLevelMixin, path: str | Path) -> Path:
    """Write a chart as .svg or .png (by suffix) without touching the network."""
    setup()
    import vl_convert as vlc

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    spec = chart.to_dict()
    if path.suffix == ".svg":
        path.write_text(vlc.vegalite_to_svg(spec))
    elif path.suffix == ".png":
        path.write_bytes(vlc.vegalite_to_png(spec, scale=2))
    else:
        raise ValueError(f"save: unsupported chart format {path.suffix!r}; use .svg or .png")
    return path


def category_color(field: str, title: str | None, order: Sequence[str], colors: Sequence[str] | None = None,
                   **kw) -> alt.Color:
    """A colour per value of ``field``, in ``order``, each value always the same colour (``colors``, default the
    palette's first ones), whichever values a chart shows."""
    order = list(order)
    colors = list(colors) if colors is not None else PALETTE[: len(order)]
    return alt.Color(f"{field}:N", title=title, sort=order, scale=alt.Scale(domain=order, range=colors), **kw)


def merge_alike(df, field: str, key: str | Sequence[str], measures: Sequence[str], order: Sequence[str],
                colors: Sequence[str] | None = None, title: str | None = None, sep: str = " = ",
                atol: float = 1e-12) -> tuple:
    """Series that are equal draw one line: the rows of ``df`` grouped by ``field`` (a series per value, over
    ``key``), and each group of values whose ``measures`` are equal at every ``key`` (to 1e-9) kept once, under
    the values' names joined with ``sep`` ("per skb (today) = fault up front"): one line would hide the other.
    Returns (the rows, the colour encoding of ``field`` titled ``title``: each line keeps its first member's
    colour of ``colors``, in ``order``). ``atol``: measured series within it of each other at every ``key`` look
    the same on the chart and are drawn once too (name them with ``sep=" ≈ "``)."""
    import numpy as np

    keys = [key] if isinstance(key, str) else list(key)
    order = list(order)
    colors = list(colors) if colors is not None else PALETTE[: len(order)]
    present = [v for v in order if v in set(df[field])] + [v for v in dict.fromkeys(df[field]) if v not in order]
    series = {v: df[df[field] == v].sort_values(keys)[keys + list(measures)].reset_index(drop=True)
              for v in present}

    def same(a, b) -> bool:
        return (a[keys].astype(str).equals(b[keys].astype(str))
                and np.allclose(a[list(measures)].to_numpy(float), b[list(measures)].to_numpy(float),
                                rtol=1e-9, atol=atol, equal_nan=True))

    groups: list[list[str]] = []
    for v in present:
        for g in groups:
            if same(series[g[0]], series[v]):
                g.append(v)
                break
        else:
            groups.append([v])
    label = {g[0]: sep.join(g) for g in groups}
    out = df[df[field].isin(label)].assign(**{field: lambda d: d[field].map(label)})
    rng = [colors[order.index(g[0])] if g[0] in order else PALETTE[-1] for g in groups]
    return out, category_color(field, title, [label[g[0]] for g in groups], rng)


def policy_color(policies: Sequence[str], field: str = "policy", title: str = "policy") -> alt.Color:
    """A colour encoding that gives each policy the same colour in every chart: ``policies`` is every policy in
    the model's order (the chapter module's ``POLICY_ORDER``), whichever of them the chart shows."""
    return category_color(field, title, policies)


def log2_x(field: str, title: str, **kw) -> alt.X:
    """A quantitative x axis on a base-2 log scale (sizes that double)."""
    return alt.X(f"{field}:Q", title=title, scale=alt.Scale(type="log", base=2), **kw)


def _field(channel) -> str:
    return channel.shorthand.partition(":")[0]


def lines(df, title: str, x: tuple[str, str], y: tuple[str, str], color, tips: Mapping[str, str],
          size: tuple[int, int]) -> alt.Chart:
    """Lines with points, one per ``color`` value over sizes that double: ``x`` and ``y`` are (field, axis title),
    x on a base-2 log scale; the tooltip shows the colour's and x's values, then each field of ``tips`` in its
    format (``{"ns_per_mib": ".0f"}``); ``size`` is (width, height)."""
    tooltip = [_field(color), x[0], *(alt.Tooltip(f"{k}:Q", format=v) for k, v in tips.items())]
    return alt.Chart(df, title=title).mark_line(point=True).encode(
        x=log2_x(*x), y=alt.Y(f"{y[0]}:Q", title=y[1]), color=color, tooltip=tooltip).properties(
        width=size[0], height=size[1])


def cost_bars(df, title: str, label: str, order: Sequence[str], count_format: str, height: int) -> alt.Chart:
    """Stacked bars of ns per MiB by cause, one bar per ``label`` value (a cost table: cause, count_per_mib,
    unit_ns, ns_per_mib, source)."""
    return alt.Chart(df, title=title).mark_bar().encode(
        y=alt.Y(f"{label}:N", title=None, sort=list(order)),
        x=alt.X("ns_per_mib:Q", title="ns per MiB sent"),
        color=alt.Color("cause:N", title="cause"),
        tooltip=[label, "cause", alt.Tooltip("count_per_mib:Q", format=count_format),
                 alt.Tooltip("unit_ns:Q", format=".1f"), alt.Tooltip("ns_per_mib:Q", format=".0f"), "source"],
    ).properties(width=420, height=height)

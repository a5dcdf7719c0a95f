"""Does a chart say something, in units? Checks on a chart's Vega-Lite spec.

Two questions a reader asks of every chart, answered from the spec alone (an
altair chart, or the spec an executed chapter keeps beside its SVG:
:data:`fraglife.views.plots.CHART_SPECS`):

* **units** (:func:`unit_findings`): every quantitative axis (x, y) and every
  quantitative colour legend has a title that carries a unit: a word of
  :data:`UNITS` (``ns``, ``KiB``, ``%``...), a counted thing in the plural
  (:data:`COUNTED`: ``pages``, ``atomics``, ``calls``...; a count says what it
  counts) or a phrase of :data:`PHRASES` (``per MiB``, ``share of``...; ``ratio``
  says the quantity has no unit). Labels
  formatted as percentages carry their unit. The titles are the ones the reader
  sees: the spec is compiled to Vega (vl-convert), so defaults and the merged
  titles of layers are what is checked. A column name left as a title
  (``ns_per_mib``) is not a unit.
* **variation** (:func:`variation_findings`): the data drawn differs where the
  chart invites a comparison. Reported: series that are the same for two or
  more groups of a colour, a facet or another grouping channel (within half a
  percent of the axis, of its decades on a log axis: they look the same, one
  hides the other), every value
  equal, bar charts of four bars or more where at most a third of the bars
  differ (``repeated``), and bars of zero length (blank rows). Parts of a stacked
  bar are not compared with each other: equal parts are seen as such.

:func:`check` runs both; each :class:`Finding` names the chart (its title), the
channel and what is wrong. Nothing here imports a model or a chapter.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, Iterable, Iterator, Mapping

#: Unit symbols, matched case-sensitively as whole words (``KiB``, not ``kib``).
UNITS = ("ns", "µs", "us", "ms", "s", "min", "nanoseconds", "microseconds", "milliseconds", "seconds", "%", "B", "KiB", "MiB", "GiB", "TiB", "kB", "MB", "GB", "bit", "bits",
         "Gbit/s", "Mbit/s", "GB/s", "MB/s", "MiB/s", "GiB/s", "Hz", "kHz", "MHz", "GHz")
#: Counted things, matched case-insensitively as whole words in the plural: a count says what it counts.
COUNTED = ("ACKs", "atomics", "bytes", "buffers", "calls", "completions", "copies", "cores", "CPUs", "cycles",
           "descriptors", "entries", "events", "faults", "folios", "forks", "frags", "interleavings", "iovecs",
           "lines", "loads", "lookups", "messages", "misses", "notifications", "objects", "operations", "owners",
           "packets", "pages", "pins", "points", "references", "refs", "retransmissions", "segments", "sends", "skbs",
           "slots", "states", "syscalls", "threads", "transfers", "walks")
#: Phrases that carry a unit, matched case-insensitively.
PHRASES = ("per MiB", "per send", "share of", "fraction of", "of a core", "of one core", "ratio")  # a ratio: no unit
#: Series closer than this share of their axis look the same.
SAME = 0.005

_WORD_EDGE = r"A-Za-z0-9_µ"
_UNIT_RE = re.compile("|".join(rf"(?<![{_WORD_EDGE}'/]){re.escape(u)}(?![{_WORD_EDGE}/])"
                               for u in sorted(UNITS, key=len, reverse=True)))
_COUNTED_RE = re.compile("|".join(rf"(?<![{_WORD_EDGE}]){re.escape(w)}(?![{_WORD_EDGE}])" for w in COUNTED), re.I)
_PHRASE_RE = re.compile("|".join(rf"\b{re.escape(p)}\b" for p in PHRASES), re.I)

QUANTITATIVE_SCALES = {"linear", "log", "pow", "sqrt", "symlog", "sequential"}
COLOR_CHANNELS = ("fill", "stroke")
POSITION = ("x", "y", "x2", "y2", "theta", "radius")
GROUPING = ("color", "fill", "stroke", "strokeDash", "shape", "detail", "opacity", "row", "column", "facet")
SILENT_MARKS = {"rule", "text", "image"}  # reference lines and labels: one value is what they show
STACKED_MARKS = {"bar", "area", "arc"}  # colours stack (or sit side by side): equal parts do not hide each other
FACETS = ("row", "column", "facet")


@dataclass(frozen=True)
class Finding:
    """One thing a chart does not say: ``kind`` is one of ``no title``, ``no unit`` (units) or ``identical``,
    ``all equal``, ``repeated``, ``blank``, ``no data`` (variation)."""

    chart: str  # the chart's title (or the first sub-chart's)
    kind: str
    channel: str  # x, y, color, or the grouping channel
    message: str

    @property
    def units(self) -> bool:
        return self.kind in ("no title", "no unit")

    def __str__(self) -> str:
        return f"{self.chart}: {self.channel}: {self.message}"


def has_unit(title: str | None, percent: bool = False) -> bool:
    """Does an axis or legend title (with labels formatted as percentages when ``percent``) carry a unit?"""
    if percent:
        return True
    if not title:
        return False
    return bool(_UNIT_RE.search(title) or _COUNTED_RE.search(title) or _PHRASE_RE.search(title))


def to_spec(chart: Any) -> dict:
    """A Vega-Lite spec from an altair chart or a spec."""
    if isinstance(chart, Mapping):
        return dict(chart)
    return chart.to_dict()


def _text(title: Any) -> str:
    if isinstance(title, Mapping):
        title = title.get("text", "")
    if isinstance(title, (list, tuple)):
        title = " ".join(str(t) for t in title)
    return str(title or "").strip()


def chart_title(spec: Mapping) -> str:
    """The title a chart shows, else its first sub-chart's, else the marks it draws."""
    found = _text(spec.get("title"))
    if found:
        return found
    for key in ("layer", "hconcat", "vconcat", "concat"):
        for child in spec.get(key) or ():
            found = chart_title(child)
            if found and not found.startswith("("):
                return found
    if isinstance(spec.get("spec"), Mapping):
        return chart_title(spec["spec"])
    enc = spec.get("encoding") or {}
    axes = [_text(enc[c].get("title", enc[c].get("field"))) for c in ("y", "x")
            if isinstance(enc.get(c), Mapping) and (enc[c].get("title") or enc[c].get("field"))]
    if axes:
        return f"(untitled: {' over '.join(axes)})"
    mark = spec.get("mark")
    return f"(untitled {mark.get('type') if isinstance(mark, Mapping) else mark or 'chart'})"


# --------------------------------------------------------------------------- units
def _groups(vega: Mapping, scales: dict[str, str]) -> Iterator[tuple[Mapping, dict[str, str]]]:
    scales = {**scales, **{s["name"]: s.get("type", "linear") for s in vega.get("scales", []) if "name" in s}}
    yield vega, scales
    for mark in vega.get("marks", []) or []:
        if mark.get("type") == "group":
            yield from _groups(mark, scales)


def _format_is_percent(item: Mapping) -> bool:
    fmt = item.get("format")
    return isinstance(fmt, str) and "%" in fmt


def unit_findings(spec: Mapping, title: str | None = None) -> list[Finding]:
    """Quantitative axes and colour legends whose title carries no unit (read from the compiled Vega)."""
    import vl_convert as vlc

    title = title or chart_title(spec)
    vega = vlc.vegalite_to_vega(dict(spec))
    out, seen = [], set()
    for group, scales in _groups(vega, {}):
        for axis in group.get("axes", []) or []:
            if axis.get("grid") and axis.get("labels") is False:
                continue  # the grid lines' own axis
            if scales.get(axis.get("scale")) not in QUANTITATIVE_SCALES:
                continue
            channel = "x" if axis.get("orient") in ("bottom", "top") else "y"
            out += _judge(title, channel, axis, seen)
        for legend in group.get("legends", []) or []:
            scale = next((legend[c] for c in COLOR_CHANNELS if c in legend), None)
            if scales.get(scale) in QUANTITATIVE_SCALES:
                out += _judge(title, "color", legend, seen)
    return out


def _judge(chart: str, channel: str, item: Mapping, seen: set) -> list[Finding]:
    text = _text(item.get("title"))
    key = (channel, text)
    if key in seen:
        return []
    seen.add(key)
    if not text:
        return [Finding(chart, "no title", channel, "quantitative, no title: say what is measured, in which unit")]
    if not has_unit(text, _format_is_percent(item)):
        return [Finding(chart, "no unit", channel, f"'{text}' carries no unit (checks.UNITS, COUNTED, PHRASES)")]
    return []


# --------------------------------------------------------------------------- variation
@dataclass
class _View:
    mark: str
    encoding: dict
    rows: list[dict] | None  # None: data the check cannot read (a URL, a transform)
    facets: dict[str, str]  # facet channel -> field, from a facet operator


def _mark(spec: Mapping) -> str:
    m = spec.get("mark")
    return (m.get("type") if isinstance(m, Mapping) else m) or ""


def _rows(data: Mapping | None, datasets: Mapping) -> list[dict] | None:
    if not data:
        return None
    if "values" in data:
        return list(data["values"])
    if "name" in data and data["name"] in datasets:
        return list(datasets[data["name"]])
    return None


def _views(spec: Mapping, datasets: Mapping, data=None, encoding=None, facets=None,
           transformed=False) -> Iterator[_View]:
    data = spec.get("data") or data
    encoding = {**(encoding or {}), **(spec.get("encoding") or {})}
    facets = dict(facets or {})
    transformed = transformed or bool(spec.get("transform"))
    if "facet" in spec and "spec" in spec:
        f = spec["facet"]
        if "field" in f:
            facets["facet"] = f["field"]
        for ch in ("row", "column"):
            if isinstance(f.get(ch), Mapping) and "field" in f[ch]:
                facets[ch] = f[ch]["field"]
        yield from _views(spec["spec"], datasets, data, encoding, facets, transformed)
        return
    children = [c for key in ("layer", "hconcat", "vconcat", "concat") for c in spec.get(key) or ()]
    if children:
        shared = encoding if spec.get("layer") else {}
        for child in children:
            yield from _views(child, datasets, data, shared, facets, transformed)
        return
    if "mark" in spec:
        rows = None if transformed else _rows(data, datasets)
        yield _View(_mark(spec), encoding, rows, facets)


def _field(enc: Any) -> str | None:
    return enc.get("field") if isinstance(enc, Mapping) and isinstance(enc.get("field"), str) else None


def _quantitative(enc: Any) -> bool:
    return isinstance(enc, Mapping) and enc.get("type") == "quantitative" and (_field(enc) is not None)


def _number(v: Any) -> float | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(f) else f


def _roles(view: _View) -> tuple[list[str], list[str], dict[str, str]]:
    """(measure fields, key fields, grouping channel -> field) of a view."""
    enc = view.encoding
    quant = [c for c in POSITION if _quantitative(enc.get(c))
             or (c in ("x2", "y2") and _field(enc.get(c)) and _quantitative(enc.get(c[0])))]
    other = [c for c in ("x", "y") if c in enc and _field(enc[c]) and c not in quant]
    if other:
        measures, keys = quant, other
    elif "x" in quant and "y" in quant:
        measures, keys = [c for c in quant if c not in ("x", "x2")], ["x"]
    elif not quant and _quantitative(enc.get("color")):
        measures, keys = ["color"], [c for c in ("x", "y") if _field(enc.get(c))]
    else:
        measures, keys = quant, []
    groups = {c: _field(enc[c]) for c in GROUPING if c in enc and _field(enc[c]) and c not in measures}
    groups.update(view.facets)
    return [_field(enc[c]) for c in measures], [_field(enc[c]) for c in keys], groups


def _series(rows: Iterable[dict], keys: list[str], measures: list[str]) -> dict[tuple, tuple]:
    out: dict[tuple, list] = {}
    for r in rows:
        vals = [_number(r.get(m)) for m in measures]
        if any(v is None for v in vals):
            continue
        acc = out.setdefault(tuple(str(r.get(k)) for k in keys), [0.0] * len(vals))
        for i, v in enumerate(vals):
            acc[i] += v
    return {k: tuple(v) for k, v in out.items()}


def _same(a: dict, b: dict, tol: float) -> bool:
    return a.keys() == b.keys() and all(abs(x - y) <= tol for k in a for x, y in zip(a[k], b[k]))


def _alike(series: Mapping[str, dict], tol: float) -> list[list[str]]:
    """Groups of two or more names whose series are the same (within ``tol``), in first-seen order."""
    clusters: list[list[str]] = []
    for name, ser in series.items():
        for c in clusters:
            if _same(series[c[0]], ser, tol):
                c.append(name)
                break
        else:
            clusters.append([name])
    return [c for c in clusters if len(c) > 1]


def _show(values: Iterable[Any], n: int = 4) -> str:
    values = [str(v) for v in values]
    return ", ".join(values[:n]) + (f" and {len(values) - n} more" if len(values) > n else "")


def _log_measures(view: _View, measures: list[str]) -> list[str]:
    """The measure fields drawn on a log scale."""
    out = []
    for c in POSITION:
        enc = view.encoding.get(c)
        scale = enc.get("scale") if isinstance(enc, Mapping) else None
        if _field(enc) in measures and isinstance(scale, Mapping) and scale.get("type") == "log":
            out.append(_field(enc))
    return out


def variation_findings(spec: Mapping, title: str | None = None) -> list[Finding]:
    """Series identical across a grouping channel, every value equal, blank bars (see the module docstring)."""
    title = title or chart_title(spec)
    datasets = spec.get("datasets") or {}
    out: list[Finding] = []
    for view in _views(spec, datasets):
        if view.mark in SILENT_MARKS or view.rows is None:
            continue
        measures, keys, groups = _roles(view)
        if not measures:
            continue
        if not view.rows:
            out.append(Finding(title, "no data", view.mark, "nothing to draw"))
            continue
        values = [v for r in view.rows for m in measures if (v := _number(r.get(m))) is not None]
        if not values:
            out.append(Finding(title, "no data", measures[0], f"no number in '{measures[0]}'"))
            continue
        span = max(values) - min(values)
        if len(view.rows) > 1 and span == 0:
            out.append(Finding(title, "all equal", measures[0],
                               f"all {len(view.rows)} values of '{measures[0]}' are {values[0]:g}: the chart shows no "
                               "difference"))
            continue
        # On a log axis "half a percent of the axis" is of its decades: compare the logarithms there.
        logged = _log_measures(view, measures)
        cmp_rows = [{**r, **{m: math.log10(v) for m in logged if (v := _number(r.get(m))) is not None and v > 0}}
                    for r in view.rows] if logged else view.rows
        cmp_values = [v for r in cmp_rows for m in measures if (v := _number(r.get(m))) is not None]
        tol = SAME * (max(cmp_values) - min(cmp_values))
        for channel, field in groups.items():
            if field in keys:
                continue  # one bar or point per value: nothing to compare within a group
            if view.mark in STACKED_MARKS and channel not in FACETS:
                continue  # equal parts of a stack are seen as such; whole bars are compared below
            parts: dict[str, list[dict]] = {}
            for r in cmp_rows:
                parts.setdefault(str(r.get(field)), []).append(r)
            rest = keys + [f for c, f in groups.items() if c != channel]
            series = {name: _series(rs, rest, measures) for name, rs in parts.items()}
            for same in _alike(series, tol):
                exact = all(_same(series[same[0]], series[n], 0.0) for n in same[1:])
                how = "identical" if exact else f"within {SAME:.1%} of the axis (they look the same)"
                which = f"all {len(same)}" if len(same) == len(parts) else f"{len(same)} of the {len(parts)}"
                out.append(Finding(title, "identical", channel,
                                   f"{which} series by '{field}' ({_show(same)}) are {how}"))
        if view.mark == "bar" and keys and not any(c in view.encoding for c in ("x2", "y2")):
            bars = {k[0]: v for k, v in _series(view.rows, keys[:1], measures).items()}
            blank = [k for k, v in bars.items() if all(x == 0 for x in v)]
            if blank and len(blank) < len(bars):
                out.append(Finding(title, "blank", keys[0],
                                   f"{len(blank)} of {len(bars)} bars have length 0 (blank rows): {_show(blank)}"))
            # Bars made of the same parts (a stack by colour compared whole).
            parts = {k: _series([r for r in view.rows if str(r.get(keys[0])) == k], keys[1:] + list(groups.values()),
                                measures) for k in bars}
            alike = _alike(parts, tol)
            distinct = len(bars) - sum(len(a) - 1 for a in alike)
            if len(bars) >= 4 and 3 * distinct <= len(bars):
                out.append(Finding(title, "repeated", keys[0],
                                   f"the {len(bars)} bars show {distinct} different values: "
                                   + "; ".join(" = ".join(a[:3]) + (" = ..." if len(a) > 3 else "") for a in alike)))
    return out


def check(chart: Any) -> list[Finding]:
    """Every finding on a chart (an altair chart or a Vega-Lite spec): units, then variation."""
    spec = to_spec(chart)
    title = chart_title(spec)
    return unit_findings(spec, title) + variation_findings(spec, title)

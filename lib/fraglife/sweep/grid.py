"""Sweep grids: parameter axes from text or lists, checked by the chapter's spec; the points.

Every point is validated with the chapter's own :class:`~fraglife.params.ParamSpec`
before anything runs, so a bad value fails the whole sweep up front.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

from ..chapters import CHAPTERS, Chapter, get as get_chapter
from ..params import Param, ParamError

MODES = ("library", "notebook")


def _expand_range(param: Param, text: str) -> list[Any]:
    """``START..STOP:STEP`` (arithmetic) or ``START..STOP*FACTOR`` (geometric), both ends included."""
    lo_text, _, rest = text.partition("..")
    if "*" in rest:
        hi_text, _, how = rest.partition("*")
        geometric = True
    elif ":" in rest:
        hi_text, _, how = rest.partition(":")
        geometric = False
    else:
        raise ParamError(f"grid {param.name}={text!r}: a range needs a step (START..STOP:STEP) "
                         f"or a factor (START..STOP*FACTOR)")
    if param.kind not in (int, float):
        raise ParamError(f"grid {param.name}={text!r}: ranges are for numeric parameters; {param.name} is "
                         f"{param.allowed()}")
    lo, hi = param.parse(lo_text), param.parse(hi_text)
    try:
        step = float(how)
    except ValueError:
        raise ParamError(f"grid {param.name}={text!r}: step {how!r} is not a number") from None
    if hi < lo:
        raise ParamError(f"grid {param.name}={text!r}: the range ends before it starts")
    values: list[float] = []
    if geometric:
        if step <= 1 or lo <= 0:
            raise ParamError(f"grid {param.name}={text!r}: a geometric range needs START > 0 and FACTOR > 1")
        v = float(lo)
        while v <= hi * (1 + 1e-9):
            values.append(v)
            v *= step
    else:
        if step <= 0:
            raise ParamError(f"grid {param.name}={text!r}: the step must be > 0")
        n = int(math.floor((hi - lo) / step + 1e-9)) + 1
        values = [lo + i * step for i in range(n)]
    if len(values) > 10_000:
        raise ParamError(f"grid {param.name}={text!r}: {len(values)} values; a range gives at most 10000")
    out = []
    for v in values:
        v = round(v, 12)
        if param.kind is int:
            if abs(v - round(v)) > 1e-9:
                raise ParamError(f"grid {param.name}={text!r}: {v:g} is not an integer ({param.allowed()})")
            v = int(round(v))
        out.append(param.check(v))
    return out


def _axis_values(param: Param, values: Any) -> list[Any]:
    if isinstance(values, str):
        items = [v.strip() for v in values.split(",")]
        if not values.strip() or any(not v for v in items):
            raise ParamError(f"grid {param.name}={values!r}: empty value; expected {param.allowed()}")
        out: list[Any] = []
        for item in items:
            if ".." in item and param.kind in (int, float):
                out.extend(_expand_range(param, item))
            else:
                out.append(param.parse(item))
    else:
        if not isinstance(values, Iterable):
            values = [values]
        out = [param.parse(v) if isinstance(v, str) and param.kind is not str else param.check(v)
               for v in values]
        if not out:
            raise ParamError(f"grid {param.name}: no values; expected {param.allowed()}")
    seen: set = set()
    dupes = [v for v in out if v in seen or seen.add(v)]
    if dupes:
        raise ParamError(f"grid {param.name}: value {dupes[0]!r} given twice")
    return out


def parse_grid(chapter: Chapter | str, grid: Mapping[str, Any] | Iterable[str] | None) -> dict[str, list[Any]]:
    """The grid's axes as ``{name: [checked values]}``, in the order given.

    ``grid`` is a mapping ``{name: values}`` (values a list, or text as on the
    command line) or a list of ``"NAME=V1,V2,…"`` strings. A value may also be
    a range: ``START..STOP:STEP`` or ``START..STOP*FACTOR``. Unknown names and
    values the chapter does not allow raise :class:`ParamError`.
    """
    ch = get_chapter(chapter) if isinstance(chapter, str) else chapter
    pairs: list[tuple[str, Any]] = []
    if grid is None:
        pass
    elif isinstance(grid, Mapping):
        pairs = list(grid.items())
    else:
        for item in grid:
            name, eq, values = str(item).partition("=")
            if not eq or not name.strip():
                raise ParamError(f"grid {item!r}: expected NAME=V1,V2,... (e.g. loss_rate=0,0.01,0.05)")
            pairs.append((name.strip(), values))
    axes: dict[str, list[Any]] = {}
    for name, values in pairs:
        if name in axes:
            raise ParamError(f"grid: parameter {name!r} given twice; list all its values in one --grid")
        axes[name] = _axis_values(ch.spec[name], values)
    return axes


def point_key(chapter_id: str, mode: str, params: Mapping[str, Any], claims: bool | str = True) -> str:
    """A stable name for one point: chapter, mode, every parameter value (and whether claims are left out, or
    all of them checked)."""
    what = {"chapter": chapter_id, "mode": mode, "params": dict(params)}
    if not claims or claims == "all":
        what["claims"] = claims
    text = json.dumps(what, sort_keys=True)
    return hashlib.sha1(text.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Point:
    index: int  # position in the cartesian product
    key: str
    params: dict[str, Any]  # every parameter of the chapter, validated


def plan(chapter: Chapter | str, grid=None, mode: str = "library",
         claims: bool | str = True) -> tuple[Chapter, dict[str, list[Any]], list[Point]]:
    """Check everything a sweep needs before it runs; returns (chapter, axes, points).

    Every point of the product is validated with the chapter's spec. Library
    mode needs a chapter with a headline; notebook mode needs its notebook. A
    chapter with a ``measurements`` parameter reads the recorded probes at
    every point unless the grid sets ``measurements=live``.
    """
    ch = get_chapter(chapter) if isinstance(chapter, str) else chapter
    if mode not in MODES:
        raise ParamError(f"sweep mode {mode!r} is not allowed: expected one of {', '.join(MODES)}")
    if claims not in (True, False, "all"):
        raise ParamError(f"sweep claims {claims!r} is not allowed: expected True (the per-point claims), False "
                         f"(none) or 'all'")
    axes = parse_grid(ch, grid)
    if mode == "library" and ch.headline is None:
        with_headline = ", ".join(c.id for c in _chapters_with_headline()) or "(none yet)"
        raise ParamError(f"chapter {ch.id} has no headline result to sweep in library mode "
                         f"(chapters with one: {with_headline}); use --mode notebook to execute its notebook")
    if mode == "notebook":
        from ..runner import check_notebook

        try:
            check_notebook(ch)
        except (FileNotFoundError, ValueError) as e:
            raise ParamError(f"cannot sweep {ch.id} in notebook mode: {e}") from None
    names = list(axes)
    # One calibration for every point: live probes on several workers at once would measure each other.
    fixed = {"measurements": "recorded"} if "measurements" in ch.spec and "measurements" not in axes else {}
    points = []
    for i, combo in enumerate(itertools.product(*(axes[n] for n in names))):
        params = dict(ch.spec.validate({**fixed, **dict(zip(names, combo))}, partial=True))
        points.append(Point(i, point_key(ch.id, mode, params, claims), params))
    return ch, axes, points


def _chapters_with_headline() -> list[Chapter]:
    return [c for c in CHAPTERS if c.headline]


def default_name(chapter: Chapter, axes: Iterable[str], mode: str = "library") -> str:
    """``01-loss_rate-frag_size`` (``-notebook`` appended in notebook mode)."""
    parts = [chapter.number, *axes] + (["notebook"] if mode == "notebook" else [])
    return "-".join(parts) if len(parts) > 1 else f"{chapter.number}-defaults"


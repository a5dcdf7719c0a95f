"""Every chart of the executed chapters, checked: units on quantitative axes, data that varies.

An executed chapter (build/executed/NN_name.ipynb) keeps each chart's
Vega-Lite spec in its output's metadata beside the SVG
(:data:`fraglife.views.plots.CHART_SPECS`; a control panel keeps the specs of
the charts its static rendering shows). :func:`chapter_charts` reads them,
:func:`check_chapters` runs :func:`fraglife.views.checks.check` on each, and
``fraglife charts`` prints what it found (``--check`` exits 1 on a finding).
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from ..views import checks
from ..views.plots import CHART_SPECS
from .notebooks import Page, PublishError, executed_pages


@dataclass(frozen=True)
class Chart:
    """One chart an executed chapter shows."""

    chapter: str  # "03_pinning"
    cell: int  # the cell's index in the chapter's notebook (book/NN_name.ipynb: papermill's injected cell not counted)
    spec: dict = field(repr=False)
    source: str = ""  # the call in the cell's first line of code: the view that drew it

    @property
    def title(self) -> str:
        return checks.chart_title(self.spec)


@dataclass
class ChapterCharts:
    """A chapter's charts and what the checks found on them."""

    chapter: str
    charts: list[Chart]
    findings: list[tuple[Chart, checks.Finding]]
    note: str | None = None  # why nothing was checked (no executed notebook, no spec kept)


def chapter_charts(page: Page) -> list[Chart]:
    """The charts of an executed chapter, in notebook order (a panel's charts in its order)."""
    nb = nbformat.read(page.executed, as_version=4)
    cells = [c for c in nb.cells if "injected-parameters" not in (c.get("metadata", {}).get("tags") or [])]
    return [Chart(page.id, i, spec, _first_line(cell)) for i, cell in enumerate(cells)
            if cell.get("cell_type") == "code" for out in cell.get("outputs", []) or []
            for spec in (out.get("metadata") or {}).get(CHART_SPECS, [])]


def _first_line(cell) -> str:
    src = cell.get("source", "")
    src = "".join(src) if isinstance(src, list) else src
    line = next((line.strip() for line in src.splitlines() if line.strip() and not line.startswith("#")), "")
    call = re.match(r"(?:\w+\s*=\s*)?([\w.]+)\(", line)
    return f"{call.group(1)}(...)" if call else line[:60]


def _has_svg(page: Page) -> bool:
    nb = nbformat.read(page.executed, as_version=4)
    return any("image/svg+xml" in (o.get("data") or {}) or "<svg" in str((o.get("data") or {}).get("text/html", ""))
               for c in nb.cells for o in c.get("outputs", []) or [])


def check_page(page: Page) -> ChapterCharts:
    if not page.executed.exists():
        return ChapterCharts(page.id, [], [], f"no executed notebook at {page.executed}")
    charts = chapter_charts(page)
    if not charts and _has_svg(page):
        return ChapterCharts(page.id, [], [], "its charts carry no spec (executed before the charts kept theirs: "
                                              f"run it again, `fraglife run {page.id.split('_', 1)[0]}`)")
    return ChapterCharts(page.id, charts, [(c, f) for c in charts for f in checks.check(c.spec)])


def check_chapters(names: list[str] | None = None, executed_dir: Path | None = None) -> list[ChapterCharts]:
    """Every written chapter's charts checked, from its executed notebook (build/executed/ by default)."""
    pages, _ = executed_pages(names, executed_dir, run=False)
    return [check_page(p) for p in pages]


def report(results: list[ChapterCharts]) -> str:
    lines = []
    for r in results:
        if r.note:
            lines.append(f"{r.chapter}: not checked: {r.note}")
            continue
        bad = {id(c) for c, _ in r.findings}
        lines.append(f"{r.chapter}: {len(r.charts)} charts, " +
                     (f"{len(bad)} with findings" if bad else "every quantitative axis has a unit, every chart varies"))
        for chart, f in r.findings:
            lines.append(f"  cell {chart.cell} ({chart.source}): {f} [{f.kind}]")
    return "\n".join(lines)


# --------------------------------------------------------------------------- command line
def register(sub) -> None:
    p = sub.add_parser("charts", help="check every chart of the executed chapters: units, data that varies",
                       description="Every chart of the executed chapters (build/executed/): each quantitative axis "
                                   "and colour legend needs a title with a unit; series identical across groups, "
                                   "all-equal values, repeated and blank bars are reported.")
    p.add_argument("chapters", nargs="*", help="chapter ids or numbers (default: every written chapter)")
    p.add_argument("--executed", type=Path, default=None, help="executed notebooks (default build/executed)")
    p.add_argument("--check", action="store_true", help="exit 1 when a chart has a finding")
    p.set_defaults(func=_cli)


def _cli(args) -> int:
    try:
        results = check_chapters(args.chapters or None, args.executed)
    except PublishError as e:
        print(f"fraglife charts: {e}", file=sys.stderr)
        return 1
    print(report(results))
    found = sum(len(r.findings) for r in results)
    unchecked = [r.chapter for r in results if r.note]
    print(f"fraglife charts: {sum(len(r.charts) for r in results)} charts, {found} findings"
          + (f"; not checked: {', '.join(unchecked)}" if unchecked else ""))
    return 1 if args.check and (found or unchecked) else 0


__all__ = ["Chart", "ChapterCharts", "chapter_charts", "check_page", "check_chapters", "report", "register"]

"""What every export does to an executed chapter: choose the pages, prepare, mark slides, link.

Slides and book start from the notebooks the runner executed
(build/executed/NN_name.ipynb); nothing here executes a cell except
:func:`execute`, which calls the runner.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import nbformat

from .. import build
from ..chapters import Chapter, select
from ..paths import BUILD
from ..views import widgets

SKIP_TAGS = {"parameters", "injected-parameters", "remove-cell"}
HIDE_INPUT_TAGS = {"remove-input", "hide-input"}
SHOW_INPUT_TAG = "show-input"


class PublishError(RuntimeError):
    """The decks or the book could not be built; the message says what to do."""


@dataclass(frozen=True)
class Page:
    """One executed chapter to publish."""

    id: str  # "00_overview"
    title: str
    summary: str
    executed: Path

    @classmethod
    def of(cls, chapter: Chapter, executed_dir: Path) -> "Page":
        return cls(chapter.id, chapter.title, chapter.summary, Path(executed_dir) / f"{chapter.id}.ipynb")


_HEADING = re.compile(r"^\s{0,3}(#{1,6})\s")


def cell_tags(cell) -> set[str]:
    return set(cell.get("metadata", {}).get("tags", []) or [])


def cell_source(cell) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def heading_level(cell) -> int | None:
    """Level of the heading a markdown cell opens with, or None."""
    if cell.get("cell_type") != "markdown":
        return None
    for line in cell_source(cell).splitlines():
        if line.strip():
            m = _HEADING.match(line)
            return len(m.group(1)) if m else None
    return None


def has_slide_marks(nb) -> bool:
    return any("slide_type" in (c.get("metadata", {}).get("slideshow") or {}) for c in nb.cells)


def _visible_outputs(cell) -> list:
    return [o for o in cell.get("outputs", []) if not (o.get("output_type") == "stream" and o.get("name") == "stderr")]


def default_slide_type(cell) -> str:
    """The slide type a cell gets in a chapter that marks none."""
    level = heading_level(cell)
    if level is not None and level <= 2:
        return "slide"
    if level == 3:
        return "subslide"
    return "-"


def prepare(nb, title: str | None = None):
    """What every export does first: static widgets, a title, drop removed cells and outputs."""
    widgets.strip_live(nb)
    if title:
        nb.metadata["title"] = title
    cells = []
    for cell in nb.cells:
        tags = cell_tags(cell)
        if "remove-cell" in tags:
            continue
        if "remove-output" in tags and cell.get("cell_type") == "code":
            cell["outputs"] = []
        cells.append(cell)
    nb.cells = cells
    return nb


def _chapter_link(ids: Iterable[str], suffix: str):
    pattern = re.compile(r"(?P<q>[(\"'=])(?P<id>" + "|".join(re.escape(i) for i in ids) + r")\.ipynb(?=[#)\"'\s])")
    return lambda text: pattern.sub(lambda m: f"{m['q']}{m['id']}{suffix}", text)


def rewrite_links(nb, ids: Iterable[str], suffix: str, *, markdown_cells: bool = True) -> None:
    """Point links to chapter notebooks at their exported form (markdown cells, HTML and markdown outputs).
    ``markdown_cells`` = False leaves the cells to an exporter that resolves them itself (Jupyter Book)."""
    ids = list(ids)
    if not ids:
        return
    sub = _chapter_link(ids, suffix)
    for cell in nb.cells:
        if markdown_cells and cell.get("cell_type") == "markdown":
            cell["source"] = sub(cell_source(cell))
        for out in cell.get("outputs", []) or []:
            data = out.get("data") or {}
            for mime in ("text/html", "text/markdown"):
                if mime in data:
                    h = data[mime]
                    data[mime] = sub("".join(h) if isinstance(h, list) else h)


# A deck slide is 1280 x 760 (data/nbconvert_offline.py); rough heights in pixels of what
# a cell shows, to start a sub-slide before a slide overflows.
SLIDE_ROOM = 640
_LINE, _CHARS_PER_LINE, _CHART, _TABLE_ROW = 34, 100, 450, 21


def estimate_height(cell) -> int:
    """About how tall a cell is on a slide (hidden code counts for nothing)."""
    if cell.get("cell_type") == "markdown":
        h = 0
        for line in cell_source(cell).splitlines():
            if _HEADING.match(line):
                h += 70
            elif line.strip():
                h += _LINE * (1 + len(line) // _CHARS_PER_LINE)
            else:
                h += 12
        return h
    h = 0 if cell.get("metadata", {}).get("transient", {}).get("remove_source") else \
        26 * (1 + cell_source(cell).count("\n")) + 20
    for out in cell.get("outputs", []):
        data = out.get("data") or {}
        html_text = data.get("text/html", "")
        html_text = "".join(html_text) if isinstance(html_text, list) else html_text
        if "<svg" in html_text or any(m.startswith("image/") for m in data):
            h += _CHART + (40 if "fraglife-panel-note" in html_text else 0)
        elif "<tr" in html_text:
            h += 40 + _TABLE_ROW * min(html_text.count("<tr"), 30)
        elif "text/markdown" in data:
            md = data["text/markdown"]
            h += estimate_height({"cell_type": "markdown", "source": "".join(md) if isinstance(md, list) else md})
        elif html_text:
            h += _LINE * (1 + len(re.sub(r"<[^>]+>", "", html_text)) // _CHARS_PER_LINE)
        else:
            text = out.get("text") or data.get("text/plain") or ""
            text = "".join(text) if isinstance(text, list) else text
            h += 24 * (1 + text.count("\n"))
    return h


_LIST_ITEM = re.compile(r"^(?:[-*+]|\d+[.)])\s")
_FENCE = re.compile(r"^\s{0,3}(```|~~~)")


def markdown_blocks(text: str) -> list[str]:
    """A markdown text cut where a deck may continue it on a sub-slide: before a paragraph or a top-level list
    item, never inside fenced code, a table or an item's own lines. A block ending with ':' (a lead-in) stays with
    the block after it. The blocks, joined, are the text."""
    blocks, cur, fence, blank = [], [], None, False
    for line in text.splitlines(keepends=True):
        m = _FENCE.match(line)
        starts = fence is None and cur and not line[:1].isspace() and (blank or _LIST_ITEM.match(line))
        if starts and not "".join(cur).rstrip().endswith(":"):
            blocks.append("".join(cur))
            cur = []
        cur.append(line)
        if m:
            fence = None if fence == m.group(1) else (fence or m.group(1))
        blank = not line.strip()
    return blocks + (["".join(cur)] if cur else [])


def _markdown_output(cell):
    """A shown code cell's one output, when it is markdown (what a chapter's remark prints), else None."""
    outs = cell.get("outputs") or []
    if cell.get("cell_type") != "code" or len(outs) != 1:
        return None
    return outs[0] if "text/markdown" in (outs[0].get("data") or {}) else None


#: Past this estimate a markdown output is cut (:func:`continue_below`). Against Chromium's measure the estimates of
#: the chapters' remarks run from 15 % high to 2 % low, so one estimated at SLIDE_ROOM may well fit: it is kept
#: whole unless it is estimated this tall, and then cut into pieces of at most SLIDE_ROOM.
CUT_PAST = 700


def continue_below(cell, room: int = SLIDE_ROOM, cut_past: int = CUT_PAST) -> list:
    """A code cell whose markdown output (a remark whose length depends on the run: what disagreed, and why) is
    estimated taller than ``cut_past``, as several cells, each of :func:`markdown_blocks` filling at most ``room``
    of one (sub-)slide: the first keeps the cell's slide type, the others continue below it as sub-slides. Any
    other cell unchanged."""
    out = _markdown_output(cell)
    if out is None or estimate_height(cell) <= cut_past:
        return [cell]
    md = out["data"]["text/markdown"]
    code = estimate_height({**cell, "outputs": []})  # shown code (show-input) goes on the first piece only
    pieces, cur = [], ""
    for block in markdown_blocks("".join(md) if isinstance(md, list) else md):
        if cur and estimate_height({"cell_type": "markdown", "source": cur + block}) > room - (
                0 if pieces else code):
            pieces.append(cur)
            cur = ""
        cur += block
    pieces.append(cur)
    cells = []
    for i, text in enumerate(pieces):
        c = copy.deepcopy(cell)
        c.outputs[0]["data"]["text/markdown"] = text.strip("\n") + "\n"
        if i:
            c.metadata.setdefault("slideshow", nbformat.NotebookNode())["slide_type"] = "subslide"
            c.metadata.setdefault("transient", nbformat.NotebookNode())["remove_source"] = True
            if c.get("id"):
                c["id"] = f"{c['id'][:60]}-{i}"
        cells.append(c)
    return cells


def mark_slides(nb):
    """Slide types and hidden inputs for a deck (see the module docstring).

    A chapter without marks: a level-1/2 heading starts a slide, level 3 a
    sub-slide, and a cell that would push the current (sub-)slide past the
    screen starts a sub-slide (below, reached with the down key). In every
    deck, a markdown output too tall for a slide continues on sub-slides
    below (:func:`continue_below`).
    """
    marked = has_slide_marks(nb)
    cells = []
    for cell in nb.cells:
        tags = cell_tags(cell)
        meta = cell.setdefault("metadata", nbformat.NotebookNode())
        show = meta.setdefault("slideshow", nbformat.NotebookNode())
        if not marked:
            show["slide_type"] = default_slide_type(cell)
        show.setdefault("slide_type", "-")
        if tags & SKIP_TAGS:
            continue
        if cell.get("cell_type") == "code":
            cell["outputs"] = _visible_outputs(cell)
            if SHOW_INPUT_TAG not in tags or tags & HIDE_INPUT_TAGS:
                meta.setdefault("transient", nbformat.NotebookNode())["remove_source"] = True
                if not cell["outputs"] and show["slide_type"] in ("-", "fragment"):
                    continue  # nothing to show
        elif tags & HIDE_INPUT_TAGS:
            meta.setdefault("transient", nbformat.NotebookNode())["remove_source"] = True
        if show["slide_type"] == "skip":
            continue
        cells.extend(continue_below(cell))
    if not marked:
        used = 0
        for i, cell in enumerate(cells):
            kind = cell.metadata.slideshow.slide_type
            h = estimate_height(cell)
            if kind in ("slide", "subslide") or i == 0:
                used = h
            elif used and used + h > SLIDE_ROOM:
                cell.metadata.slideshow.slide_type = "subslide"
                used = h
            else:
                used += h
    nb.cells = cells
    return nb


def slide_counts(nb) -> tuple[int, int]:
    """What a (marked) notebook's deck holds: (slides a reader steps through, slides plus sub-slides; horizontal
    slides). The first shown cell starts a slide whatever its type (nbconvert's rule); after it, each cell of type
    ``slide`` starts a slide and each ``subslide`` a sub-slide; fragments appear within them."""
    types = [c.metadata.get("slideshow", {}).get("slide_type", "-") for c in nb.cells
             if c.metadata.get("slideshow", {}).get("slide_type") not in ("skip", "notes")]
    if not types:
        return 0, 0
    return 1 + sum(t in ("slide", "subslide") for t in types[1:]), 1 + sum(t == "slide" for t in types[1:])


def slide_count(nb) -> int:
    """Slides a reader steps through in a (marked) notebook's deck: slides plus sub-slides."""
    return slide_counts(nb)[0]


def written(names: list[str] | None = None) -> tuple[list[Chapter], list[Chapter]]:
    """Chapters to publish (their notebook exists) and those listed but not yet written."""
    chosen = select(names)
    have = [c for c in chosen if c.notebook.exists()]
    missing = [c for c in chosen if not c.notebook.exists()]
    if names and missing:
        raise PublishError(f"no notebook for {', '.join(c.id for c in missing)} (looked in book/)")
    return have, missing


def execute(chapters: list[Chapter], executed_dir: Path | None = None, timeout: int | None = None) -> Path:
    """Run the chapters with the project's runner; fails with the runner's report if one fails."""
    from ..runner import DEFAULT_TIMEOUT, format_table, run_chapters

    out = Path(executed_dir) if executed_dir else BUILD / "executed"
    results = run_chapters([c.id for c in chapters], out_dir=out, timeout=timeout or DEFAULT_TIMEOUT)
    print(format_table(results), flush=True)
    if not all(r.ok for r in results):
        raise PublishError("a chapter failed to execute; nothing was published")
    return out


def one_build(pages: Iterable[Page]) -> str | None:
    """The build every page's execution belongs to (None: executed outside a build); a PublishError naming
    the builds and their chapters when they differ: decks, talk and book show one set of numbers."""
    by_build: dict[str | None, list[str]] = {}
    for page in pages:
        if page.executed.exists():
            by_build.setdefault(build.stamped_file(page.executed), []).append(page.id.split("_", 1)[0])
    if len(by_build) > 1:
        parts = "; ".join(f"build {b or '(none: executed outside a build)'}: {', '.join(ids)}"
                          for b, ids in sorted(by_build.items(), key=lambda kv: kv[0] or ""))
        raise PublishError(f"the executed chapters come from different builds ({parts}); their numbers would "
                           f"disagree. Execute them in one build (`fraglife run`, or publish without --no-run), "
                           f"or publish only the chapters of one build")
    return next(iter(by_build), None)


def pages_for(chapters: list[Chapter], executed_dir: Path) -> list[Page]:
    return [Page.of(c, executed_dir) for c in chapters]


def executed_pages(names: list[str] | None, executed_dir: Path | None = None,
                   run: bool = True) -> tuple[list[Page], list[Chapter]]:
    """The written chapters' executed pages (executing them first unless ``run`` is false) and the planned
    ones, which are named on stderr and left out."""
    import sys

    chapters, planned = written(names)
    if planned:
        print("not yet written, left out: " + ", ".join(c.id for c in planned), file=sys.stderr)
    executed = Path(executed_dir) if executed_dir else BUILD / "executed"
    if run:
        execute(chapters, executed)
    return pages_for(chapters, executed), planned

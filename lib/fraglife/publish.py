"""Publish the executed book offline: a reveal.js deck per chapter and a static HTML book.

Both start from the notebooks papermill executed (``fraglife run`` ->
build/executed/NN_name.ipynb); nothing is executed twice and nothing is
fetched when a deck or a page is opened:

* ``fraglife slides`` -> build/slides/NN_name.slides.html, one per chapter,
  plus build/slides/index.html and build/slides/_vendor/ (reveal.js,
  require.js, jQuery, MathJax, font-awesome copied from node_modules/).
  The folder is self-contained: copy it anywhere and open a deck from disk.
* ``fraglife book`` -> build/html/ (Jupyter Book 1.x, ``execute_notebooks:
  off``) with a table of contents and links between chapters.

Every page written is audited (:func:`fraglife.offline.audit`): an asset that
would load over http(s), or a local asset or chapter link that does not
exist, fails the build.

How a chapter marks its slides
------------------------------
Cells may carry Jupyter's standard ``metadata.slideshow.slide_type``
(``slide``, ``subslide``, ``fragment``, ``skip``, ``notes``, ``-``) and
tags. A chapter with no ``slideshow`` metadata at all gets defaults
(:func:`mark_slides`): a markdown cell opening with a level-1 or 2 heading
starts a slide, level 3 a subslide, everything else continues the current
slide, unless it would overflow the screen: then it starts a sub-slide. In
every deck, marked or not:

* code input is hidden, unless the cell is tagged ``show-input``;
* cells tagged ``parameters``/``injected-parameters``/``remove-cell``, and
  code cells with nothing to show, are left out;
* ``remove-input``/``hide-input`` hide input, ``remove-output`` hides output
  (the same tags Jupyter Book honours in the HTML book);
* stderr output (warnings) is left out of slides;
* links to ``NN_name.ipynb`` point at ``NN_name.slides.html``;
* live widget views are replaced by their static rendering (fraglife.widgets).
"""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import nbformat

from . import widgets
from .chapters import CHAPTERS, Chapter, select
from .paths import BUILD, ROOT

CI = ROOT / "ci"
NBCONVERT_CONFIG = CI / "nbconvert_offline.py"
BOOK_CONFIG = CI / "book" / "_config.yml"
NODE_MODULES = ROOT / "node_modules"
VENDOR_DIR = "_vendor"  # beside the decks; the config file's URLs are relative to it

# What each deck or page may load, by npm package: files and folders copied
# from node_modules/<package>/ to <out>/_vendor/<package>/. Only what the
# templates use, so a deck folder stays small (~8 MB).
SLIDE_ASSETS: dict[str, tuple[str, ...]] = {
    "reveal.js": ("LICENSE", "dist/reveal.js", "dist/reveal.css", "dist/reset.css",
                  "dist/theme/white.css", "dist/theme/fonts/source-sans-pro", "plugin/notes/notes.js"),
    "requirejs": ("require.js",),
    "jquery": ("LICENSE.txt", "dist/jquery.min.js"),
    "mathjax": ("LICENSE", "MathJax.js", "config/TeX-AMS_CHTML-full.js", "config/Safe.js", "config/local",
                "extensions", "jax/input/TeX", "jax/element", "jax/output/CommonHTML",
                "fonts/HTML-CSS/TeX/woff", "fonts/HTML-CSS/TeX/otf"),
    "font-awesome": ("README.md", "css/font-awesome.min.css", "fonts"),
}
BOOK_ASSETS = {"mathjax": SLIDE_ASSETS["mathjax"]}

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


# --------------------------------------------------------------------------- vendor
def _package_version(package: str) -> str:
    meta = NODE_MODULES / package / "package.json"
    if not meta.exists():
        raise PublishError(f"node_modules/{package} is missing: run `make vendor` (npm ci) first")
    return json.loads(meta.read_text())["version"]


def template_reveal_major() -> int:
    """The reveal.js major version nbconvert's reveal template is written for."""
    from nbconvert.exporters.slides import SlidesExporter

    url = SlidesExporter().reveal_url_prefix  # the CDN default names the version
    m = re.search(r"reveal\.js@(\d+)", url)
    if not m:
        raise PublishError(f"cannot tell which reveal.js nbconvert's template expects (default {url!r})")
    return int(m.group(1))


def check_vendor() -> dict[str, str]:
    """Versions of the vendored packages; fails if one is missing or reveal's major differs."""
    versions = {p: _package_version(p) for p in SLIDE_ASSETS}
    want = template_reveal_major()
    have = int(versions["reveal.js"].split(".")[0])
    if have != want:
        raise PublishError(f"reveal.js {versions['reveal.js']} is vendored but nbconvert's template is written for "
                           f"reveal.js {want}.x; pin reveal.js@{want} in package.json")
    return versions


def copy_assets(dest: Path, assets: dict[str, tuple[str, ...]]) -> Path:
    """Copy the listed files from node_modules/ into dest/<package>/ (replacing what was there)."""
    dest = Path(dest)
    for package, parts in assets.items():
        _package_version(package)
        for part in parts:
            src = NODE_MODULES / package / part
            dst = dest / package / part
            if not src.exists():
                raise PublishError(f"node_modules/{package}/{part} is missing; is package.json's {package} the "
                                   "version this code expects? Run `make vendor`.")
            dst.parent.mkdir(parents=True, exist_ok=True)
            if src.is_dir():
                shutil.copytree(src, dst, dirs_exist_ok=True)
            else:
                shutil.copy2(src, dst)
    return dest


# --------------------------------------------------------------------------- notebooks
_HEADING = re.compile(r"^\s{0,3}(#{1,6})\s")


def _tags(cell) -> set[str]:
    return set(cell.get("metadata", {}).get("tags", []) or [])


def _source(cell) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def heading_level(cell) -> int | None:
    """Level of the heading a markdown cell opens with, or None."""
    if cell.get("cell_type") != "markdown":
        return None
    for line in _source(cell).splitlines():
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
        tags = _tags(cell)
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


def rewrite_links(nb, ids: Iterable[str], suffix: str) -> None:
    """Point links to chapter notebooks at their exported form (markdown and HTML outputs)."""
    ids = list(ids)
    if not ids:
        return
    sub = _chapter_link(ids, suffix)
    for cell in nb.cells:
        if cell.get("cell_type") == "markdown":
            cell["source"] = sub(_source(cell))
        for out in cell.get("outputs", []) or []:
            data = out.get("data") or {}
            if "text/html" in data:
                h = data["text/html"]
                data["text/html"] = sub("".join(h) if isinstance(h, list) else h)


# A deck slide is 1280 x 760 (ci/nbconvert_offline.py); rough heights in pixels of what
# a cell shows, to start a sub-slide before a slide overflows.
SLIDE_ROOM = 640
_LINE, _CHARS_PER_LINE, _CHART, _TABLE_ROW = 34, 100, 450, 21


def estimate_height(cell) -> int:
    """About how tall a cell is on a slide (hidden code counts for nothing)."""
    if cell.get("cell_type") == "markdown":
        h = 0
        for line in _source(cell).splitlines():
            if _HEADING.match(line):
                h += 70
            elif line.strip():
                h += _LINE * (1 + len(line) // _CHARS_PER_LINE)
            else:
                h += 12
        return h
    h = 0 if cell.get("metadata", {}).get("transient", {}).get("remove_source") else \
        26 * (1 + _source(cell).count("\n")) + 20
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


def mark_slides(nb):
    """Slide types and hidden inputs for a deck (see the module docstring).

    A chapter without marks: a level-1/2 heading starts a slide, level 3 a
    sub-slide, and a cell that would push the current (sub-)slide past the
    screen starts a sub-slide (below, reached with the down key).
    """
    marked = has_slide_marks(nb)
    cells = []
    for cell in nb.cells:
        tags = _tags(cell)
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
        cells.append(cell)
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


def slide_count(nb) -> int:
    """Horizontal slides a (marked) notebook will make."""
    types = [c.metadata.get("slideshow", {}).get("slide_type", "-") for c in nb.cells
             if c.metadata.get("slideshow", {}).get("slide_type") not in ("skip", "notes")]
    return max(1, sum(t == "slide" for t in types[1:]) + 1) if types else 0


# --------------------------------------------------------------------------- slides
def _exporter():
    from nbconvert.exporters import SlidesExporter
    from traitlets.config.loader import PyFileConfigLoader

    config = PyFileConfigLoader(NBCONVERT_CONFIG.name, path=str(NBCONVERT_CONFIG.parent)).load_config()
    exporter = SlidesExporter(config=config)
    # Not configurable traits in nbconvert 7; the template does not use them, but no CDN name survives.
    exporter.mermaid_js_url = f"{VENDOR_DIR}/no-mermaid.mjs"
    exporter.mermaid_layout_elk_js_url = ""
    return exporter


def deck_name(page_id: str) -> str:
    return f"{page_id}.slides.html"


def export_deck(page: Page, out_dir: Path, ids: Iterable[str], exporter=None) -> tuple[Path, int]:
    """One chapter's deck; returns its path and number of horizontal slides."""
    if not page.executed.exists():
        raise PublishError(f"{page.id}: no executed notebook at {page.executed}; run `fraglife run {page.id}` first")
    nb = nbformat.read(page.executed, as_version=4)
    prepare(nb, title=f"{page.title} · fraglife")
    mark_slides(nb)
    rewrite_links(nb, ids, ".slides.html")
    exporter = exporter or _exporter()
    body, _ = exporter.from_notebook_node(nb, resources={"metadata": {"name": page.id}})
    path = Path(out_dir) / deck_name(page.id)
    path.write_text(body, encoding="utf-8")
    return path, slide_count(nb)


def _slides_index(pages: list[Page], counts: dict[str, int]) -> str:
    rows = "\n".join(
        f'<li><a href="{deck_name(p.id)}">{html.escape(p.title)}</a> '
        + (f'<span class="n">{counts[p.id]} slides</span>' if p.id in counts else "")
        + f'<br><span class="s">{html.escape(p.summary)}</span></li>'
        for p in pages
    )
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>fraglife: slide decks</title>
<style>
body {{ font-family: "Liberation Sans", "DejaVu Sans", Helvetica, Arial, sans-serif; max-width: 48em; margin: 2em auto; color: #222; }}
h1 {{ color: #0b3c5d; }} a {{ color: #0072B2; font-weight: bold; }} li {{ margin: 0.8em 0; }}
.n {{ color: #888; font-size: 0.85em; }} .s {{ color: #444; }} kbd {{ border: 1px solid #aaa; border-radius: 3px; padding: 0 0.3em; }}
</style></head><body>
<h1>fraglife: slide decks</h1>
<p>One deck per chapter, built from the executed notebooks. Everything a deck needs is in this folder
(<code>{VENDOR_DIR}/</code>): it opens from disk with the network off.</p>
<ul>
{rows}
</ul>
<p>Keys: <kbd>→</kbd>/<kbd>space</kbd> next, <kbd>↓</kbd> into a sub-slide, <kbd>Esc</kbd> overview,
<kbd>S</kbd> speaker notes, <kbd>F</kbd> full screen. Append <code>?print-pdf</code> to a deck's address and print to PDF for a handout.</p>
</body></html>
"""


def build_slides(pages: list[Page], out_dir: Path | None = None, *, all_ids: Iterable[str] | None = None) -> list[Path]:
    """Decks for ``pages`` into ``out_dir`` (default build/slides), with their assets and an index."""
    from .offline import audit

    check_vendor()
    out = Path(out_dir) if out_dir else BUILD / "slides"
    out.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(out / VENDOR_DIR, ignore_errors=True)
    copy_assets(out / VENDOR_DIR, SLIDE_ASSETS)
    ids = list(all_ids) if all_ids is not None else [p.id for p in pages]
    exporter = _exporter()
    paths, counts = [], {}
    for page in pages:
        path, counts[page.id] = export_deck(page, out, ids, exporter)
        paths.append(path)
    # The index lists every deck in the folder, also those of chapters built earlier.
    listed = list(pages) + [Page.of(c, BUILD / "executed") for c in CHAPTERS
                            if c.id not in counts and (out / deck_name(c.id)).exists()]
    listed.sort(key=lambda p: p.id)
    index = out / "index.html"
    index.write_text(_slides_index(listed, counts), encoding="utf-8")
    problems = audit([*paths, index])
    if problems:
        raise PublishError("the decks would not work offline:\n  " + "\n  ".join(problems))
    return paths


# --------------------------------------------------------------------------- book
def _book_index(pages: list[Page], planned: list[Chapter]) -> str:
    lines = [
        "# fraglife",
        "",
        "An executable design book about one question from a 2025 netdev/linux-mm thread: when",
        "`struct page` loses its refcount, what must change in the networking stack, and what",
        "should own the lifetime of an sk_buff's fragments instead?",
        "",
        "Each chapter turns one proposed change into a model you can run, calibrated by",
        "measurements of the running kernel where the machine allows, and ends with claims that",
        "are checked every time the chapter executes. These pages show one such run: the",
        "outputs are those of the executed notebooks, charts are static images, and control",
        "panels show their default state (they are live in JupyterLab: `make lab`).",
        "",
        "## Chapters",
        "",
    ]
    for p in pages:
        lines.append(f"- [{p.title}]({p.id}.ipynb): {p.summary}")
    if planned:
        lines += ["", "Planned, not yet written: " + "; ".join(f"{c.number} ({c.title})" for c in planned) + "."]
    lines += [
        "",
        "## Running and presenting",
        "",
        "`make lab` opens the chapters in JupyterLab; `make book` rebuilds these pages and",
        "`make slides` one offline slide deck per chapter (build/slides/); the README says more.",
        "",
    ]
    return "\n".join(lines)


def _jb_command() -> list[str]:
    jb = Path(sys.executable).with_name("jb")
    if jb.exists():
        return [str(jb)]
    found = shutil.which("jb")
    if found:
        return [found]
    raise PublishError("jupyter-book (1.x) is not installed: `make setup` installs the [book] extra")


def build_book(
    pages: list[Page],
    out_dir: Path | None = None,
    *,
    planned: list[Chapter] = (),
    src_dir: Path | None = None,
) -> Path:
    """The HTML book for ``pages`` into ``out_dir`` (default build/html); returns its index.html."""
    from .offline import audit

    check_vendor()
    out = Path(out_dir) if out_dir else BUILD / "html"
    src = Path(src_dir) if src_dir else out.parent / "book-src"
    shutil.rmtree(src, ignore_errors=True)
    src.mkdir(parents=True)
    shutil.copy2(BOOK_CONFIG, src / "_config.yml")
    toc = ["format: jb-book", "root: index", "chapters:"] + [f"- file: {p.id}" for p in pages]
    (src / "_toc.yml").write_text("\n".join(toc) + "\n")
    (src / "index.md").write_text(_book_index(pages, list(planned)))
    copy_assets(src / "_offline" / "vendor", BOOK_ASSETS)
    shutil.copy2(BOOK_CONFIG.parent / "fraglife.css", src / "_offline" / "fraglife.css")
    for page in pages:
        if not page.executed.exists():
            raise PublishError(f"{page.id}: no executed notebook at {page.executed}; run `fraglife run {page.id}` first")
        nb = nbformat.read(page.executed, as_version=4)
        prepare(nb)
        nbformat.write(nb, src / f"{page.id}.ipynb")

    log = src / "build.log"
    cmd = _jb_command() + ["build", str(src), "--builder", "html", "-W", "-n", "--keep-going"]
    with open(log, "w") as fh:
        proc = subprocess.run(cmd, stdout=fh, stderr=subprocess.STDOUT, cwd=src)
    text = re.sub(r"\x1b\[[0-9;]*m", "", log.read_text(errors="replace"))
    log.write_text(text)
    if proc.returncode != 0:
        warnings = [ln for ln in text.splitlines() if "WARNING" in ln or "ERROR" in ln or "Error" in ln]
        detail = "\n  ".join((warnings or text.splitlines())[-15:])
        raise PublishError(f"jupyter-book failed (full log: {log}):\n  {detail}")
    built = src / "_build" / "html"
    shutil.rmtree(out, ignore_errors=True)
    shutil.copytree(built, out)
    pages_html = sorted(p for p in out.glob("*.html"))
    problems = audit(pages_html)
    if problems:
        raise PublishError("the HTML book would not work offline:\n  " + "\n  ".join(problems))
    return out / "index.html"


# --------------------------------------------------------------------------- chapters
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
    from .runner import DEFAULT_TIMEOUT, format_table, run_chapters

    out = Path(executed_dir) if executed_dir else BUILD / "executed"
    results = run_chapters([c.id for c in chapters], out_dir=out, timeout=timeout or DEFAULT_TIMEOUT)
    print(format_table(results), flush=True)
    if not all(r.ok for r in results):
        raise PublishError("a chapter failed to execute; nothing was published")
    return out


def pages_for(chapters: list[Chapter], executed_dir: Path) -> list[Page]:
    return [Page.of(c, executed_dir) for c in chapters]


# --------------------------------------------------------------------------- CLI
def register(sub) -> None:
    for name, helptext in (("slides", "build one offline reveal.js deck per chapter into build/slides/"),
                           ("book", "build the offline HTML book (Jupyter Book 1.x) into build/html/")):
        p = sub.add_parser(name, help=helptext)
        p.add_argument("chapters", nargs="*", help="chapter ids or numbers (default: every written chapter)")
        p.add_argument("--no-run", action="store_true",
                       help="reuse build/executed/ instead of executing the chapters first")
        p.add_argument("--executed", type=Path, default=None, help="executed notebooks (default build/executed)")
        p.add_argument("--out", type=Path, default=None, help=f"output folder (default build/{'slides' if name == 'slides' else 'html'})")
        p.set_defaults(func=_cli, target=name)


def _cli(args) -> int:
    start = time.perf_counter()
    try:
        chapters, planned = written(args.chapters or None)
        if planned:
            print("not yet written, left out: " + ", ".join(c.id for c in planned), file=sys.stderr)
        executed = Path(args.executed) if args.executed else BUILD / "executed"
        if not args.no_run:
            execute(chapters, executed)
        pages = pages_for(chapters, executed)
        if args.target == "slides":
            paths = build_slides(pages, args.out, all_ids=[c.id for c in CHAPTERS])
            for p in paths:
                print(f"deck: {p}")
            print(f"index: {paths[0].parent / 'index.html' if paths else args.out}")
        else:
            index = build_book(pages, args.out, planned=planned)
            print(f"book: {index}")
    except PublishError as e:
        print(f"fraglife {args.target}: {e}", file=sys.stderr)
        return 1
    print(f"fraglife {args.target}: done in {time.perf_counter() - start:.1f}s")
    return 0

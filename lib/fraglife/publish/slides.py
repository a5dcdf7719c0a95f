"""``fraglife slides``: one offline reveal.js deck per executed chapter, and an index."""

from __future__ import annotations

import html
import shutil
from html.parser import HTMLParser
from pathlib import Path
from typing import Iterable

import nbformat

from ..chapters import CHAPTERS
from ..paths import BUILD
from .audit import audit
from .notebooks import Page, PublishError, mark_slides, one_build, prepare, rewrite_links, slide_counts
from .vendor import SLIDE_ASSETS, VENDOR_DIR, check_vendor, copy_assets

DATA = Path(__file__).with_name("data")
NBCONVERT_CONFIG = DATA / "nbconvert_offline.py"


def make_exporter(**slides_config):
    """nbconvert's SlidesExporter with the offline configuration; keyword arguments override its traits."""
    from nbconvert.exporters import SlidesExporter
    from traitlets.config.loader import PyFileConfigLoader

    config = PyFileConfigLoader(NBCONVERT_CONFIG.name, path=str(NBCONVERT_CONFIG.parent)).load_config()
    for name, value in slides_config.items():
        setattr(config.SlidesExporter, name, value)
    exporter = SlidesExporter(config=config)
    # Not configurable traits in nbconvert 7; the template does not use them, but no CDN name survives.
    exporter.mermaid_js_url = f"{VENDOR_DIR}/no-mermaid.mjs"
    exporter.mermaid_layout_elk_js_url = ""
    return exporter


def deck_name(page_id: str) -> str:
    return f"{page_id}.slides.html"


def export_deck(page: Page, out_dir: Path, ids: Iterable[str], exporter=None) -> tuple[Path, tuple[int, int]]:
    """One chapter's deck; returns its path and :func:`slide_counts` (slides plus sub-slides, horizontal)."""
    if not page.executed.exists():
        raise PublishError(f"{page.id}: no executed notebook at {page.executed}; run `fraglife run {page.id}` first")
    nb = nbformat.read(page.executed, as_version=4)
    prepare(nb, title=f"{page.title} · fraglife")
    mark_slides(nb)
    rewrite_links(nb, ids, ".slides.html")
    exporter = exporter or make_exporter()
    body, _ = exporter.from_notebook_node(nb, resources={"metadata": {"name": page.id}})
    path = Path(out_dir) / deck_name(page.id)
    path.write_text(body, encoding="utf-8")
    return path, slide_counts(nb)


class _Sections(HTMLParser):
    """Counts a deck's slides as reveal.js sees them: each top-level <section> is a slide (a stack), each
    <section> inside one a slide of its stack (nbconvert always nests, so a slide without sub-slides is a stack
    of one)."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.depth, self.across, self.steps = 0, 0, 0

    def handle_starttag(self, tag, attrs):
        if tag == "section":
            self.across += self.depth == 0
            self.steps += self.depth == 1
            self.depth += 1

    def handle_endtag(self, tag):
        if tag == "section" and self.depth:
            self.depth -= 1


def deck_counts(deck: Path) -> tuple[int, int]:
    """A built deck's (slides a reader steps through, horizontal slides), read from its HTML."""
    parser = _Sections()
    parser.feed(Path(deck).read_text(encoding="utf-8"))
    return max(parser.steps, parser.across), parser.across


def _count(steps: int, across: int) -> str:
    """What the index says of a deck: every slide a reader steps through, and how many of them are sub-slides."""
    below = steps - across
    return f"{steps} slide{'s' * (steps != 1)}" + (f" ({below} of them sub-slides, ↓)" if below else "")


def _slides_index(pages: list[Page], counts: dict[str, tuple[int, int]]) -> str:
    rows = "\n".join(
        f'<li><a href="{deck_name(p.id)}">{html.escape(p.title)}</a> '
        + (f'<span class="n" data-slides="{counts[p.id][0]}">{_count(*counts[p.id])}</span>'
           if p.id in counts else "")
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
    check_vendor()
    one_build(pages)
    out = Path(out_dir) if out_dir else BUILD / "slides"
    out.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(out / VENDOR_DIR, ignore_errors=True)
    copy_assets(out / VENDOR_DIR, SLIDE_ASSETS)
    ids = list(all_ids) if all_ids is not None else [p.id for p in pages]
    exporter = make_exporter()
    paths, counts = [], {}
    for page in pages:
        path, counts[page.id] = export_deck(page, out, ids, exporter)
        paths.append(path)
    # The index lists every deck in the folder, also those of chapters built earlier, each with the slides
    # its HTML holds (the same count as the notebook's marks give: tests/test_publish.py).
    listed = list(pages) + [Page.of(c, BUILD / "executed") for c in CHAPTERS
                            if c.id not in counts and (out / deck_name(c.id)).exists()]
    listed.sort(key=lambda p: p.id)
    counts = {p.id: deck_counts(out / deck_name(p.id)) for p in listed}
    index = out / "index.html"
    index.write_text(_slides_index(listed, counts), encoding="utf-8")
    problems = audit([*paths, index])
    if problems:
        raise PublishError("the decks would not work offline:\n  " + "\n  ".join(problems))
    return paths

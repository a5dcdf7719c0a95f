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
* ``fraglife talk`` -> build/talk/: one conference deck from the slides the
  chapters tag ``talk``, with a timing plan, speaker notes and a PDF handout
  (:mod:`.talk`).

Every page written is audited (:func:`fraglife.publish.audit.audit`): an asset that
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

* a code cell's markdown output too tall for a slide (a remark whose length
  depends on the run) continues on sub-slides below, cut between its
  paragraphs and list items (:func:`continue_below`);
* code input is hidden, unless the cell is tagged ``show-input``;
* cells tagged ``parameters``/``injected-parameters``/``remove-cell``, and
  code cells with nothing to show, are left out;
* ``remove-input``/``hide-input`` hide input, ``remove-output`` hides output
  (the same tags Jupyter Book honours in the HTML book);
* stderr output (warnings) is left out of slides;
* links to ``NN_name.ipynb`` point at ``NN_name.slides.html``;
* live widget views are replaced by their static rendering (fraglife.views.widgets).

The package: :mod:`.notebooks` (which chapters, preparing and marking an
executed notebook), :mod:`.vendor` (JavaScript and fonts from node_modules/),
:mod:`.slides`, :mod:`.book`, :mod:`.talk`, :mod:`.audit` (the offline check every build
runs), :mod:`.fit` (every slide of a built deck measured in headless Chromium: what does
not fit 1280 x 760), :mod:`.charts` (every chart of the executed chapters checked: units,
variation), :mod:`.sphinx_offline` (the book's Sphinx extension) and
:mod:`.browser` (headless Chromium with the network off, through Playwright,
for the browser checks). What a build
reads besides the notebooks ships in ``data/`` as package data: the
nbconvert configuration and reveal template, the Jupyter Book configuration
and CSS.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from ..chapters import CHAPTERS
from .audit import audit, references
from .book import build_book
from .notebooks import (CUT_PAST, SLIDE_ROOM, Page, PublishError, continue_below, default_slide_type, estimate_height,
                        execute, executed_pages, heading_level, mark_slides, markdown_blocks, pages_for, prepare,
                        rewrite_links, slide_count, slide_counts, written)
from . import charts, fit, talk
from .slides import build_slides, deck_counts, deck_name, export_deck
from .talk import build_talk
from .vendor import BOOK_ASSETS, SLIDE_ASSETS, VENDOR_DIR, check_vendor, copy_assets, template_reveal_major

__all__ = ["audit", "references", "build_book", "CUT_PAST", "SLIDE_ROOM", "Page", "PublishError", "continue_below",
           "default_slide_type", "estimate_height", "markdown_blocks",
           "execute", "heading_level", "mark_slides", "pages_for", "prepare", "rewrite_links", "slide_count",
           "slide_counts", "deck_counts", "fit", "charts", "written", "build_slides", "deck_name", "export_deck", "BOOK_ASSETS",
           "SLIDE_ASSETS", "VENDOR_DIR", "check_vendor", "copy_assets", "template_reveal_major", "build_talk", "register"]


def register(sub) -> None:
    for name, helptext in (("slides", "build one offline reveal.js deck per chapter into build/slides/"),
                           ("book", "build the offline HTML book (Jupyter Book 1.x) into build/html/")):
        p = sub.add_parser(name, help=helptext)
        p.add_argument("chapters", nargs="*", help="chapter ids or numbers (default: every written chapter)")
        p.add_argument("--no-run", action="store_true",
                       help="reuse build/executed/ instead of executing the chapters first")
        p.add_argument("--executed", type=Path, default=None, help="executed notebooks (default build/executed)")
        p.add_argument("--out", type=Path, default=None, help=f"output folder (default build/{'slides' if name == 'slides' else 'html'})")
        if name == "slides":
            p.add_argument("--check-fit", action="store_true",
                           help=f"exit 1 when a slide does not fit {fit.WIDTH} x {fit.HEIGHT} (content too tall or "
                                "wide, or something inside scrolls); needs Chromium")
            p.add_argument("--no-fit", action="store_true",
                           help="do not open the decks in Chromium to measure their slides")
        p.set_defaults(func=_cli, target=name)
    talk.register(sub)
    charts.register(sub)


def _cli(args) -> int:
    start = time.perf_counter()
    try:
        pages, planned = executed_pages(args.chapters or None, args.executed, run=not args.no_run)
        if args.target == "slides":
            paths = build_slides(pages, args.out, all_ids=[c.id for c in CHAPTERS])
            for p in paths:
                print(f"deck: {p}")
            print(f"index: {paths[0].parent / 'index.html' if paths else args.out}")
            if not args.no_fit and not _fit(paths, args.check_fit):
                return 1
        else:
            index = build_book(pages, args.out, planned=planned)
            print(f"book: {index}")
    except PublishError as e:
        print(f"fraglife {args.target}: {e}", file=sys.stderr)
        return 1
    print(f"fraglife {args.target}: done in {time.perf_counter() - start:.1f}s")
    return 0


def _fit(decks: list[Path], strict: bool) -> bool:
    """Measure every slide of ``decks`` and print those that do not fit; False when ``strict`` and one does not
    (or the decks could not be measured)."""
    from .browser import missing

    reason = missing()
    if reason:
        print(f"fraglife slides: slides not measured: {reason}", file=sys.stderr)
        return not strict
    fits = fit.check_decks(decks)
    bad = sum(len(f.misfits) for f in fits)
    total = sum(len(f.slides) for f in fits)
    print(f"slide fit ({fit.WIDTH} x {fit.HEIGHT}): {bad} of {total} slides do not fit")
    print(fit.report(fits))
    broken = any(f.problems for f in fits)
    if strict and (bad or broken):
        print(f"fraglife slides: {bad} slides do not fit" + (" and a deck did not load cleanly" if broken else ""),
              file=sys.stderr)
        return False
    return True

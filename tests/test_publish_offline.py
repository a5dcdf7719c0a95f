"""The real decks and HTML book, opened in headless Chromium with the network blocked.

Run by ``make test-offline``, which first builds them (``fraglife book``,
``fraglife slides --no-run``) and installs Debian's Chromium if it is missing;
Playwright drives it (fraglife.publish.browser). Every page is opened from
disk with every request that is not ``file:`` aborted; a request, a failed
load, a page error or a console error fails the test. Code must fit: no code
block of the book or the decks scrolls sideways. Screenshots for review go to
build/screenshots/. Skipped in a plain ``make test`` (FRAGLIFE_CHECK_BUILD
unset), where tests/test_publish.py checks the same machinery on two small
demo chapters.
"""

from __future__ import annotations

import os

import pytest

from fraglife import publish
from fraglife.paths import BUILD, build_dir
from fraglife.publish import browser

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not os.environ.get("FRAGLIFE_CHECK_BUILD"),
                       reason="checks build/slides and build/html: run `make test-offline`"),
]

SLIDES = BUILD / "slides"
HTML = BUILD / "html"

# Code blocks (cell inputs, markdown code; not outputs, which wrap) wider than their box.
OVERFLOWING_CODE = """(scope) => [...document.querySelectorAll(scope + ' pre')]
    .filter(p => !p.closest('.cell_output, .jp-OutputArea-output, .output_area'))
    .filter(p => p.getClientRects().length && p.scrollWidth > p.clientWidth + 1)
    .map(p => `${p.scrollWidth}px in ${p.clientWidth}px: ${p.textContent.split('\\n').find(l => l.length) || ''}`)"""
# Table cells cut short by pandas (fraglife.views.tables shows them whole).
CUT_CELLS = """() => [...document.querySelectorAll('td, th')].map(c => c.textContent.trim())
    .filter(t => t.endsWith('...') || t.endsWith('\u2026'))"""


@pytest.fixture(scope="module")
def chapters():
    have, _ = publish.written()
    assert have, "no chapter notebook in book/"
    return have


@pytest.fixture(scope="module")
def chromium():
    reason = browser.missing()
    if reason:
        pytest.fail(f"{reason}: `make chromium`")
    with browser.offline_browser() as b:
        yield b


def test_every_written_chapter_has_a_deck_and_a_page(chapters):
    for ch in chapters:
        assert (SLIDES / publish.deck_name(ch.id)).exists(), ch.id
        assert (HTML / f"{ch.id}.html").exists(), ch.id
    assert (SLIDES / "index.html").exists() and (HTML / "index.html").exists()


def test_nothing_is_loaded_from_the_network(chapters):
    pages = [SLIDES / "index.html", *(SLIDES / publish.deck_name(ch.id) for ch in chapters), *sorted(HTML.glob("*.html"))]
    assert publish.audit(pages) == []


def test_every_deck_renders_offline(chapters, chromium):
    shots = build_dir("screenshots")
    for ch in chapters:
        tab = chromium.open(browser.file_url(SLIDES / publish.deck_name(ch.id)))
        try:
            tab.wait_for("document.querySelector('.reveal.ready') !== null")
            n = tab.evaluate("document.querySelectorAll('.reveal .slides > section').length")
            assert n >= 2, f"{ch.id}: {n} slides"
            tab.screenshot(shots / f"{ch.id}-slide-01.png")
            shown_chart, wide = False, []
            for k in range(n):
                tab.evaluate(f"location.hash = '#/{k}'")
                tab.wait_for(f"[...document.querySelectorAll('.reveal .slides > section')]"
                             f".indexOf(document.querySelector('.reveal .slides > section.present')) === {k}")
                wide += [f"slide {k + 1}: {w}" for w in tab.evaluate(OVERFLOWING_CODE, ".reveal section.present")]
                charts = tab.evaluate("[...document.querySelectorAll('section.present img, section.present svg')]"
                                      ".filter(e => e.getBoundingClientRect().width > 50).length")
                if charts and not shown_chart:
                    tab.screenshot(shots / f"{ch.id}-slide-{k + 1:02d}-chart.png")
                    shown_chart = True
            tab.screenshot(shots / f"{ch.id}-slide-{n:02d}-last.png")
            assert wide == [], f"{ch.id}: code wider than its slide"
            assert tab.evaluate(CUT_CELLS) == [], f"{ch.id}: table cells cut short"
            assert tab.problems() == [], ch.id
        finally:
            tab.close()


def test_book_pages_render_offline_and_their_code_fits(chapters, chromium):
    shots = build_dir("screenshots")
    for name in ["index", *(ch.id for ch in chapters)]:
        tab = chromium.open(browser.file_url(HTML / f"{name}.html"))
        try:
            tab.screenshot(shots / f"book-{name}.png")
            assert tab.evaluate(OVERFLOWING_CODE, ".bd-article") == [], f"{name}: code scrolls sideways"
            assert tab.evaluate(CUT_CELLS) == [], f"{name}: table cells cut short"
            assert tab.problems() == [], name
        finally:
            tab.close()

"""The real decks and HTML book, opened with the network blocked.

Run by ``make test-offline``, which first builds them (``fraglife book``,
``fraglife slides --no-run``) and installs Debian's Chromium if it is missing.
Screenshots for review go to build/screenshots/. Skipped in a plain ``make
test`` (FRAGLIFE_CHECK_BUILD unset), where tests/test_publish.py checks the
same machinery on two small demo chapters.
"""

from __future__ import annotations

import os

import pytest

from fraglife import publish

from fraglife.paths import BUILD, build_dir

import chromium as headless

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not os.environ.get("FRAGLIFE_CHECK_BUILD"),
                       reason="checks build/slides and build/html: run `make test-offline`"),
]

SLIDES = BUILD / "slides"
HTML = BUILD / "html"


@pytest.fixture(scope="module")
def chapters():
    have, _ = publish.written()
    assert have, "no chapter notebook in book/"
    return have


@pytest.fixture(scope="module")
def chromium():
    if not headless.find_chromium():
        pytest.fail("Chromium is not installed: `make chromium` (apt-get install chromium)")
    with headless.Chromium() as browser:
        yield browser


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
        visit = chromium.visit(headless.file_url(SLIDES / publish.deck_name(ch.id)))
        visit.wait_for("document.querySelector('.reveal.ready') !== null")
        n = visit.evaluate("document.querySelectorAll('.reveal .slides > section').length")
        assert n >= 2, f"{ch.id}: {n} slides"
        visit.screenshot(shots / f"{ch.id}-slide-01.png")
        shown_chart = False
        for k in range(1, n):
            visit.goto(f"#/{k}", settle=0.4)
            charts = visit.evaluate(
                "[...document.querySelectorAll('section.present img, section.present svg')]"
                ".filter(e => e.getBoundingClientRect().width > 50).length")
            if charts and not shown_chart:
                visit.screenshot(shots / f"{ch.id}-slide-{k + 1:02d}-chart.png")
                shown_chart = True
        visit.screenshot(shots / f"{ch.id}-slide-{n:02d}-last.png")
        assert visit.problems() == [], ch.id
        visit.close()


def test_book_pages_render_offline(chapters, chromium):
    shots = build_dir("screenshots")
    for name in ["index", *(ch.id for ch in chapters)]:
        visit = chromium.visit(headless.file_url(HTML / f"{name}.html"))
        visit.screenshot(shots / f"book-{name}.png")
        assert visit.problems() == [], name
        visit.close()

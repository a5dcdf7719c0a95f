"""The real decks, HTML book and talk, opened in headless Chromium with the network blocked.

Run by ``make test-offline``, which first builds them (``fraglife book``,
``fraglife slides --no-run``, ``fraglife talk --no-run``) and installs Debian's Chromium if it is missing;
Playwright drives it (fraglife.publish.browser). Every page is opened from
disk with every request that is not ``file:`` aborted; a request, a failed
load, a page error or a console error fails the test. Code must fit: no code
block of the book or the decks scrolls sideways, and every slide of the talk fits
1280 x 760 (its content height and width measured, nothing inside scrolling). Every slide
and sub-slide of every chapter deck is measured the same way (fraglife.publish.fit): the
ones that do not fit are listed in build/checks/slide-fit-decks.txt and fail the test
(listed only with `make test-offline STRICT_FIT=0`). The deck index counts
what a reader steps through, as reveal.js does. Screenshots for review go to
build/screenshots/. Skipped in a plain ``make test`` (FRAGLIFE_CHECK_BUILD
unset), where tests/test_publish.py checks the same machinery on two small
demo chapters.
"""

from __future__ import annotations

import os
import re

import pytest
from fit_checks import report_fit

from fraglife import publish
from fraglife.paths import BUILD, build_dir
from fraglife.publish import browser, fit, talk

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not os.environ.get("FRAGLIFE_CHECK_BUILD"),
                       reason="checks build/slides and build/html: run `make test-offline`"),
]

SLIDES = BUILD / "slides"
HTML = BUILD / "html"
TALK = BUILD / "talk"

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


def test_every_slide_of_every_deck_fits(chapters, chromium):
    """Every slide and sub-slide of the chapter decks and the talk at 1280 x 760: listed, and failing (for the
    chapter decks listed only with FRAGLIFE_STRICT_FIT=0; the talk refuses a slide that does not fit when it is
    built)."""
    decks = [SLIDES / publish.deck_name(ch.id) for ch in chapters]
    fits = [fit.measure_deck(chromium, d) for d in decks]
    assert all(f.slides for f in fits), [f.deck.name for f in fits if not f.slides]
    [the_talk] = [fit.measure_deck(chromium, TALK / talk.DECK)]
    assert the_talk.misfits == [] and the_talk.problems == [], fit.report([the_talk])
    report_fit(fits, "slide-fit-decks.txt")


def test_the_index_counts_every_slide_a_reader_steps_through(chapters, chromium):
    """The counts build/slides/index.html shows are the slides plus sub-slides reveal.js steps through."""
    index = (SLIDES / "index.html").read_text(encoding="utf-8")
    shown = dict(re.findall(r'href="(\d\d_\w+)\.slides\.html">.*?data-slides="(\d+)"', index))
    for ch in chapters:
        tab = chromium.open(browser.file_url(SLIDES / publish.deck_name(ch.id)), viewport=fit.PROJECTOR)
        try:
            tab.wait_for("window.Reveal && Reveal.isReady()")
            total = tab.evaluate("Reveal.getTotalSlides()")
        finally:
            tab.close()
        assert int(shown[ch.id]) == total == publish.deck_counts(SLIDES / publish.deck_name(ch.id))[0], ch.id
        assert f">{total} slides" in index


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


def test_the_talk_is_one_folder_with_its_handout_and_plan():
    for name in (talk.DECK, talk.HANDOUT, talk.PLAN, "_vendor/reveal.js/dist/reveal.js", "_vendor/mathjax/MathJax.js"):
        assert (TALK / name).exists(), name
    assert publish.audit([TALK / talk.DECK]) == []
    deck = (TALK / talk.DECK).read_text(encoding="utf-8")
    slides = len(re.findall(r'<section [^>]*data-timing="\d+"', deck)) // 2  # nbconvert nests each slide in a stack
    pages = len(re.findall(rb"/Type\s*/Page\b(?!s)", (TALK / talk.HANDOUT).read_bytes()))
    assert slides >= 4 and pages == slides, f"{slides} slides, {pages} handout pages"
    plan = (TALK / talk.PLAN).read_text()
    assert re.match(r"talk: \d+ main slides for \d+:\d\d, \d+ backup slides", plan), plan


def test_every_talk_slide_fits_and_renders_offline(chromium):
    shots = build_dir("screenshots")
    tab = chromium.open(browser.file_url(TALK / talk.DECK), viewport=(talk.WIDTH, talk.HEIGHT))
    try:
        sizes = talk.measure(tab)
        assert talk.too_big(sizes) == []
        wide = []
        for s in sizes:
            tab.evaluate(f"(() => {{ const at = Reveal.getIndices(Reveal.getSlides()[{s['index']}]); "
                         f"Reveal.slide(at.h, at.v, Number.MAX_VALUE); }})()")
            tab.wait_for(f"Reveal.getCurrentSlide() === Reveal.getSlides()[{s['index']}]")
            wide += [f"slide {s['index'] + 1}: {w}" for w in tab.evaluate(OVERFLOWING_CODE, ".reveal section.present")]
            tab.screenshot(shots / f"talk-{s['index'] + 1:02d}.png")
        assert wide == [], "code wider than its slide"
        assert tab.evaluate(CUT_CELLS) == [], "table cells cut short"
        assert tab.problems() == []
    finally:
        tab.close()


def test_the_speaker_view_shows_the_plan_and_paces_it(chromium):
    tab = chromium.open(browser.file_url(TALK / talk.DECK) + "#/1", viewport=(talk.WIDTH, talk.HEIGHT))
    try:
        tab.wait_for("window.Reveal && Reveal.isReady()")
        with tab.page.context.expect_page() as opened:
            tab.page.keyboard.press("s")
        view = opened.value
        errors = []
        view.on("pageerror", lambda e: errors.append(str(e)))
        view.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        view.wait_for_function("() => { const n = document.querySelector('.speaker-controls-notes');"
                               " return n && n.innerText.includes('Plan:'); }", timeout=30000)
        assert "Plan: slide 2 of" in view.inner_text(".speaker-controls-notes")  # the thread slide's line
        view.wait_for_selector(".speaker-controls-time .pacing", state="visible", timeout=30000)  # totalTime set
        view.set_viewport_size({"width": 1280, "height": 800})
        view.screenshot(path=str(build_dir("screenshots") / "talk-speaker-view.png"))
        assert errors == [] and tab.problems() == []
    finally:
        tab.close()

"""The HTML book's first screen, measured in headless Chromium: every chapter shows its answer there.

Run by ``make test-offline`` after it builds the book (``fraglife book``). Each chapter page of
build/html is opened from disk, network off (fraglife.publish.browser), at 1280 x 800, scrolled to
the top: the chapter's answer row (:class:`fraglife.answers.Row`, the element of class
``fraglife-answer`` its answers cell renders: the answer sentence, the headline number and its
range) lies wholly within that first screen, and shows the number exactly as the answers table of
the build formats it. The overview and the book's first page open on the answers. No page, and
nothing inside a page (a table in a scroll box included), is wider than the screen. Screenshots of
each first screen go to build/screenshots/first-screen-*.png. Skipped in a plain ``make test``.
"""

from __future__ import annotations

import os

import pytest

from fraglife import answers, publish, thread
from fraglife.paths import BUILD, build_dir
from fraglife.publish import browser

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not os.environ.get("FRAGLIFE_CHECK_BUILD"),
                       reason="checks build/html: run `make test-offline`"),
]

HTML = BUILD / "html"
SCREEN = (1280, 800)  # the first screen a reader sees, CSS pixels

# Where an element is on the first screen (the page scrolled to the top), and its text.
PLACE = """(sel) => {
  window.scrollTo(0, 0);
  return [...document.querySelectorAll(sel)].filter(e => e.getClientRects().length).map(e => {
    const r = e.getBoundingClientRect();
    return {top: r.top, bottom: r.bottom, left: r.left, right: r.right, text: e.innerText};
  });
}"""
# The page's width, and every element whose content is wider than the screen (inside a scroll box or not).
WIDE = """() => {
  const w = window.innerWidth, out = [];
  for (const e of document.querySelectorAll('body *')) {
    if (!e.getClientRects().length || e.scrollWidth <= w + 1) continue;
    if (out.some(o => o.el.contains(e))) continue;
    out.push({el: e, what: e.tagName.toLowerCase() + (e.className && typeof e.className === 'string' ?
              '.' + e.className.split(/\\s+/).slice(0, 2).join('.') : ''), width: e.scrollWidth});
  }
  return {page: document.documentElement.scrollWidth, view: w,
          wide: out.map(o => `${o.what}: ${o.width} px`)};
}"""


@pytest.fixture(scope="module")
def pages():
    have, _ = publish.written()
    assert have, "no chapter notebook in book/"
    return [ch.id for ch in have]


@pytest.fixture(scope="module")
def chromium():
    reason = browser.missing()
    if reason:
        pytest.fail(f"{reason}: `make chromium`")
    with browser.offline_browser(viewport=SCREEN) as b:
        yield b


@pytest.fixture(scope="module")
def table():
    """The answers of the build the book was made from (its footer names it)."""
    return answers.load(answers.build_for(None))


def _first_screen(chromium, name: str, selector: str) -> tuple[list[dict], dict]:
    tab = chromium.open(browser.file_url(HTML / f"{name}.html"), viewport=SCREEN)
    try:
        tab.wait_for("document.readyState === 'complete'")
        placed = tab.evaluate(PLACE, selector)
        tab.screenshot(build_dir("screenshots") / f"first-screen-{name}.png")
        width = tab.evaluate(WIDE)
        assert tab.problems() == [], name
        return placed, width
    finally:
        tab.close()


def _on_screen(box: dict) -> bool:
    w, h = SCREEN
    return box["top"] >= 0 and box["bottom"] <= h and box["left"] >= 0 and box["right"] <= w


BULLET_OF = {b.chapter: b.label for b in thread.BULLETS}


@pytest.mark.parametrize("chapter", sorted(BULLET_OF))
def test_a_chapters_first_screen_shows_its_answer(chapter, pages, chromium, table):
    if chapter not in pages:
        pytest.skip(f"{chapter} is not written")
    placed, width = _first_screen(chromium, chapter, f".{answers.ROW_CLASS}")
    assert len(placed) == 1, f"{chapter}: {len(placed)} answer rows (.{answers.ROW_CLASS}); expected one"
    [row] = placed
    assert _on_screen(row), (f"{chapter}: the answer row is at {row['top']:.0f}..{row['bottom']:.0f} px, "
                             f"not within the first {SCREEN[0]} x {SCREEN[1]} screen")
    [a] = [a for a in table.answers if a.bullet == BULLET_OF[chapter]] or [None]
    assert a is not None, f"{chapter}: no answer of this build in build/answers/"
    words = " ".join(row["text"].split())
    assert " ".join(a.answer.replace("`", "").split()) in words and a.number.text in words, row["text"]
    assert width["page"] <= width["view"] and width["wide"] == [], f"{chapter}: wider than the screen: {width}"


@pytest.mark.parametrize("name", ["index", "00_overview"])
def test_the_book_opens_on_the_answers(name, pages, chromium, table):
    """The book's first page and the overview show the answers table at the top: its heading and the first
    item's number on the first screen."""
    if name != "index" and name not in pages:
        pytest.skip(f"{name} is not written")
    headings, width = _first_screen(chromium, name, "h2")
    [first] = [h for h in headings if h["text"].strip().startswith("The answers")][:1] or [None]
    assert first is not None and _on_screen(first), f"{name}: no 'The answers' heading on the first screen"
    assert table.answers, "no answers recorded in this build"
    a = table.answers[0]
    items, _ = _first_screen(chromium, name, "li, tr")
    shown = [i for i in items if a.number.text in i["text"]]
    assert shown and shown[0]["top"] < SCREEN[1], f"{name}: ({a.bullet})'s number {a.number.text!r} is not on " \
                                                   f"the first screen"
    assert width["page"] <= width["view"] and width["wide"] == [], f"{name}: wider than the screen: {width}"

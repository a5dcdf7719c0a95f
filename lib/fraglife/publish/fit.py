"""Do a deck's slides fit? Every slide and sub-slide measured in headless Chromium, offline.

A slide of the chapter decks and the talk is :data:`WIDTH` x :data:`HEIGHT`
layout pixels (data/nbconvert_offline.py); reveal.js scales it to the screen (a
1280 x 720 projector shows it at about 0.9), so what fits in those pixels fits
every screen. :func:`measure` steps through an open deck, every slide and
sub-slide with all its fragments shown, and reads:

* the content's height and width (the slide's ``scrollHeight`` and
  ``scrollWidth``: what it would need to show everything);
* every element inside that scrolls (``overflow: auto/scroll`` with more
  content than box: a scroll box hides what does not fit instead of showing it);
* every table wider than the slide.

The deck templates show outputs at their natural size (no scroll boxes around
tables), so what does not fit is measured, not hidden. A slide fits when its
content is within the slide (1 px of rounding allowed) and nothing inside
scrolls. :func:`check_decks` opens built decks and returns the slides that do
not fit; ``fraglife slides`` prints them (``--check-fit`` fails on them) and
``fraglife talk`` refuses a talk with one.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

WIDTH, HEIGHT = 1280, 760  # a deck's slide, layout pixels (data/nbconvert_offline.py)
PROJECTOR = (1280, 720)  # the screen the decks are measured on (reveal scales the slide to it)
SLACK = 1  # px of rounding

# Every (sub-)slide, shown in turn with its fragments: its content's size and what scrolls inside it
# (layout pixels, before reveal scales the deck).
MEASURE = """async (limit) => {
  const frame = () => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)));
  await Promise.all([...document.images].map(i => i.complete ? 0 : new Promise(r => { i.onload = i.onerror = r; })));
  if (window.MathJax && MathJax.Hub) await new Promise(r => MathJax.Hub.Queue(r));
  const words = e => e.textContent.replace(/\\u00b6/g, '').split(/\\s+/).filter(Boolean);
  const heading = s => { const h = s.querySelector('h1, h2, h3, h4'); return h ? words(h).join(' ') : ''; };
  const what = e => {
    const t = e.matches('table') ? e : e.querySelector('table');
    if (t) {
      const head = [...t.querySelectorAll('th')].map(c => words(c).join(' ')).filter(Boolean).slice(0, 3);
      return 'table' + (head.length ? ' (' + head.join(', ') + ', ...)' : '') + ` of ${t.querySelectorAll('tr').length} rows`;
    }
    if (e.matches('pre') || e.querySelector('pre')) return 'text "' + words(e).slice(0, 6).join(' ') + '"';
    if (e.querySelector('svg, img')) return 'chart';
    return (e.tagName.toLowerCase() + ' "' + words(e).slice(0, 6).join(' ') + '"');
  };
  const out = [];
  let last = {h: -1, title: ''};
  for (const [i, slide] of Reveal.getSlides().entries()) {
    const at = Reveal.getIndices(slide);
    Reveal.slide(at.h, at.v, Number.MAX_VALUE);
    await frame();
    const s = Reveal.getCurrentSlide();
    const boxes = [], seen = [];
    for (const e of s.querySelectorAll('*')) {
      if (!e.getClientRects().length || seen.some(o => o.contains(e))) continue;
      const cs = getComputedStyle(e);
      const x = /auto|scroll/.test(cs.overflowX) && e.scrollWidth > e.clientWidth + 1;
      const y = /auto|scroll/.test(cs.overflowY) && e.scrollHeight > e.clientHeight + 1;
      if (x || y) {
        seen.push(e);
        boxes.push({kind: 'scrolls', what: what(e), width: e.scrollWidth, height: e.scrollHeight,
                    box_width: e.clientWidth, box_height: e.clientHeight});
      }
    }
    for (const t of s.querySelectorAll('table')) {
      if (t.getClientRects().length && t.offsetWidth > limit.width + 1)
        boxes.push({kind: 'wide', what: what(t), width: t.offsetWidth, height: t.offsetHeight,
                    box_width: limit.width, box_height: limit.height});
    }
    let title = heading(s);
    if (!title && at.h === last.h && last.title) title = last.title + ' (continued)';
    if (!title) title = words(s).slice(0, 8).join(' ');
    if (heading(s) || at.h !== last.h) last = {h: at.h, title: title.replace(/ \\(continued\\)$/, '')};
    out.push({index: i, h: at.h, v: at.v || 0, height: s.scrollHeight, width: s.scrollWidth, title, boxes});
  }
  Reveal.slide(0, 0);
  return out;
}"""


@dataclass(frozen=True)
class SlideSize:
    """One (sub-)slide as measured: where it is, how big its content is, what scrolls inside it."""

    deck: str  # the deck's file name ("03_pinning.slides.html")
    index: int  # position in reading order, from 0 (what a reader steps through)
    h: int  # reveal's horizontal index, from 0
    v: int  # reveal's vertical index (sub-slide), from 0
    title: str
    width: int
    height: int
    boxes: tuple[dict, ...] = ()  # {kind: scrolls | wide, what, width, height, box_width, box_height}

    @classmethod
    def of(cls, deck: str, m: dict) -> "SlideSize":
        return cls(deck, m["index"], m.get("h", m["index"]), m.get("v", 0), m.get("title") or "",
                   m["width"], m["height"], tuple(m.get("boxes") or ()))

    @property
    def where(self) -> str:
        """Reveal's own numbering, as the slide number shows it: ``4`` or ``4.2`` for a sub-slide."""
        return f"{self.h + 1}" + (f".{self.v + 1}" if self.v else "")

    @property
    def over(self) -> tuple[int, int]:
        """Pixels beyond the slide: (width, height), 0 where it fits."""
        return max(0, self.width - WIDTH), max(0, self.height - HEIGHT)

    @property
    def fits(self) -> bool:
        return self.width <= WIDTH + SLACK and self.height <= HEIGHT + SLACK and not self.boxes

    def describe(self) -> str:
        """One line: where, what, by how much."""
        dx, dy = self.over
        parts = []
        if dy > SLACK:
            parts.append(f"{dy} px too tall ({self.height / HEIGHT:.1f} screens)")
        if dx > SLACK:
            parts.append(f"{dx} px too wide")
        parts += [_box(b) for b in self.boxes]
        return (f"slide {self.where} ({self.title or 'untitled'}): {self.width} x {self.height} px; "
                + "; ".join(parts))


def _box(b: dict) -> str:
    if b["kind"] == "wide":
        return f"{b['what']} is {b['width']} px wide"
    return f"{b['what']} scrolls: {b['width']} x {b['height']} px in a {b['box_width']} x {b['box_height']} box"


def measure(tab) -> list[dict]:
    """Each (sub-)slide's content size and scroll boxes in an open deck (``tab``: fraglife.publish.browser.Tab;
    the deck must expose ``window.Reveal``, as the fraglife templates do)."""
    tab.wait_for("window.Reveal && Reveal.isReady && Reveal.isReady()")
    return tab.evaluate(MEASURE, {"width": WIDTH, "height": HEIGHT})


def sizes_of(deck: str, measured: Iterable[dict]) -> list[SlideSize]:
    return [SlideSize.of(deck, m) for m in measured]


def misfits(sizes: Iterable[SlideSize]) -> list[SlideSize]:
    return [s for s in sizes if not s.fits]


def too_big(measured: list[dict]) -> list[str]:
    """The talk's refusal, one line per slide that does not fit (``measured``: :func:`measure`'s rows)."""
    return [f"slide {s.index + 1} ({s.title or 'untitled'}) is {s.width} x {s.height} px; "
            f"a slide has {WIDTH} x {HEIGHT}: shorten or split it" + "".join(f"; {_box(b)}" for b in s.boxes)
            for s in misfits(sizes_of("", measured))]


@dataclass
class DeckFit:
    """One deck's measurement: every slide, and what the browser saw go wrong."""

    deck: Path
    slides: list[SlideSize]
    problems: list[str]  # requests off the disk, page errors; or why it could not be measured

    @property
    def misfits(self) -> list[SlideSize]:
        return misfits(self.slides)


def measure_deck(chromium, deck: Path) -> DeckFit:
    """Open ``deck`` from disk (network off) at the projector's size and measure every slide."""
    from playwright.sync_api import Error as PlaywrightError

    from .browser import file_url

    deck = Path(deck)
    tab = chromium.open(file_url(deck), viewport=PROJECTOR)
    try:
        try:
            slides = sizes_of(deck.name, measure(tab))
            problems = []
        except PlaywrightError as e:
            slides, problems = [], [f"the deck did not come up in Chromium: {str(e).splitlines()[0]}"]
        return DeckFit(deck, slides, problems + tab.problems())
    finally:
        tab.close()


def check_decks(decks: Iterable[Path]) -> list[DeckFit]:
    """Every deck measured in one headless Chromium (fraglife.publish.browser.offline_browser)."""
    from .browser import offline_browser

    with offline_browser(viewport=PROJECTOR) as chromium:
        return [measure_deck(chromium, d) for d in decks]


def report(fits: Iterable[DeckFit]) -> str:
    """The slides that do not fit, by deck, as ``fraglife slides`` prints them."""
    lines = []
    for f in fits:
        bad = f.misfits
        head = f"{f.deck.name}: {len(f.slides)} slides, "
        if f.problems and not f.slides:
            lines.append(head + "not measured: " + "; ".join(f.problems))
            continue
        lines.append(head + (f"{len(bad)} do not fit {WIDTH} x {HEIGHT}" if bad else "every slide fits"))
        lines += [f"  {s.describe()}" for s in bad]
        lines += [f"  browser: {p}" for p in f.problems]
    return "\n".join(lines)

"""``fraglife talk``: one conference deck from the executed chapters, offline (build/talk/).

The numbers on the slides are the numbers the book checked: the deck is cut
from the same executed notebooks as the chapter decks and the HTML book, and
its claims table reads the verdicts of the chapters' last run
(build/claims/NN.json).

The main part, timed, in this order:

1. a title slide, naming the build the numbers come from;
   then the answers (:mod:`fraglife.answers`): one row per item of the thread, as the
   chapters of that build recorded them, on as many slides as fit 1280 x 760;
2. the thread in one slide: who asked what, cited (lore links from
   :data:`fraglife.thread.MESSAGES`), and the chapter that answers each change;
3. each written chapter's slides marked for the talk, in book order. A cell
   tagged ``talk`` brings the slide it sits on into the talk: the (sub-)slide
   as the chapter's own deck cuts it, from the cell that starts it to the next
   slide or sub-slide, shown as one slide. Chapter 08 (the unified owner)
   comes last, so its summary table and chart close the argument;
4. the claims that carry the argument, with their verdicts: a chapter module's
   ``TALK_CLAIMS`` (claim names), or all its claims if it declares none;
5. a closing slide.

After the end, a "Backup" slide and every chapter's slides tagged
``talk-backup`` (untimed). A chapter with no cell tagged ``talk`` or
``talk-backup`` is left out of the slides, with a note; one not yet written
is left out too.

Speaker notes are the chapter's ``notes`` cells on those slides, plus each
slide's line of the timing plan. The plan spreads the target time (default 25
minutes) over the main slides by weight (:data:`WEIGHTS`); the deck carries it
as ``data-timing`` per slide and ``totalTime``, which reveal.js's speaker view
(key S) turns into a pacing timer; the build prints it and writes plan.txt.

The folder is what a presenter copies: talk.html, _vendor/ (reveal.js,
MathJax... from node_modules/), talk.pdf (the handout: Chromium's
print-to-PDF through Playwright, offline, one page per slide) and plan.txt.
The build audits the deck like the others (nothing loads from the network)
and opens it in headless Chromium: every slide must fit 1280 x 760 (each
slide's content height and width are measured, and nothing inside may scroll:
:mod:`.fit`, the same measurement as every chapter deck's) and the page must load with
no request off the disk and no error.
"""

from __future__ import annotations

import copy
import datetime
import html
import math
import re
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

import nbformat

from .. import answers as answers_lib
from .. import build as build_lib
from .. import claims as claims_lib
from .. import thread
from ..chapters import CHAPTERS, Chapter
from ..paths import BUILD
from . import fit
from .audit import audit
from .notebooks import Page, PublishError, cell_source, cell_tags, executed_pages, mark_slides, one_build, prepare
from .slides import make_exporter
from .vendor import SLIDE_ASSETS, VENDOR_DIR, check_vendor, copy_assets

TALK_TAG = "talk"
BACKUP_TAG = "talk-backup"
MINUTES = 25
DECK, HANDOUT, PLAN = "talk.html", "talk.pdf", "plan.txt"
WIDTH, HEIGHT = fit.WIDTH, fit.HEIGHT  # the deck's slide size (data/nbconvert_offline.py)
# Share of the target time, by kind of main slide.
WEIGHTS = {"title": 0.5, "answers": 1.5, "thread": 1.5, "chapter": 1.0, "claims": 1.0, "end": 0.5}
# Claims per slide: a row is about 25 px a line of ~85 characters; a slide has room for ~500 px of rows.
_CLAIM_ROOM, _CLAIM_LINE, _CLAIM_CHARS = 500, 25, 85
# Answers per slide: a row is as tall as its longest cell at about 23 px a line; room for ~540 px of rows.
_ANSWER_ROOM, _ANSWER_LINE = 540, 23
_ANSWER_CHARS = {"answer": 55, "number": 34, "how": 18}


@dataclass
class Slide:
    """One slide of the talk: its cells, and where it sits in the plan."""

    title: str
    cells: list
    kind: str  # title | thread | chapter | claims | end | backup
    chapter: str | None = None  # the chapter it comes from: "01 · Refcount removal: ..."
    seconds: int = 0  # 0: untimed (backup)
    start: int = 0

    @property
    def main(self) -> bool:
        return self.kind != "backup"


@dataclass
class Talk:
    """What ``build_talk`` made."""

    deck: Path
    plan: str
    slides: list[Slide]
    notes: list[str] = field(default_factory=list)  # chapters left out, claims without a verdict
    pdf: Path | None = None
    problems: list[str] = field(default_factory=list)  # what the browser check found


# --------------------------------------------------------------------------- cutting chapters
def units(nb) -> list[list]:
    """A marked deck's cells cut into (sub-)slides: each starts at a cell of type slide or subslide."""
    out: list[list] = []
    for cell in nb.cells:
        kind = cell.get("metadata", {}).get("slideshow", {}).get("slide_type", "-")
        if kind in ("slide", "subslide") or not out:
            out.append([])
        out[-1].append(cell)
    return out


_MD_LINK = re.compile(r"\[([^\]]+)\]\((?:\d\d_\w+\.ipynb(?:#[^)\s]*)?|#[^)\s]*)\)")
_HTML_LINK = re.compile(r"<a\s[^>]*href=[\"'](?:\d\d_\w+\.ipynb[^\"']*|#[^\"']*)[\"'][^>]*>(.*?)</a>", re.S)


def unlink_chapters(nb) -> None:
    """Links to chapter notebooks and to anchors become plain text: the talk is one page on its own."""
    for cell in nb.cells:
        if cell.get("cell_type") == "markdown":
            cell["source"] = _MD_LINK.sub(r"\1", cell_source(cell))
        for out in cell.get("outputs", []) or []:
            data = out.get("data") or {}
            if "text/html" in data:
                h = data["text/html"]
                data["text/html"] = _HTML_LINK.sub(r"\1", "".join(h) if isinstance(h, list) else h)


def _plain(text: str) -> str:
    text = re.sub(r"\[([^\]]+)\]\([^)]*\)", r"\1", text)
    return re.sub(r"[`*_]", "", text).strip()


def slide_title(cells: list, fallback: str) -> str:
    """The slide's first heading, else the first words of its first text, else ``fallback``."""
    texts = [cell_source(c) for c in cells if c.get("cell_type") == "markdown"
             and c.get("metadata", {}).get("slideshow", {}).get("slide_type") != "notes"]
    for text in texts:
        for line in text.splitlines():
            m = re.match(r"^\s{0,3}#{1,6}\s+(.*)", line)
            if m:
                return _plain(m.group(1))
    for text in texts:
        words = _plain(" ".join(text.split())).split()
        if words:
            return " ".join(words[:8]) + (" ..." if len(words) > 8 else "")
    return fallback


def chapter_slides(page: Page) -> tuple[list[Slide], list[Slide]]:
    """The chapter's slides tagged ``talk`` (main) and ``talk-backup`` (backup), as the chapter deck cuts them."""
    if not page.executed.exists():
        raise PublishError(f"{page.id}: no executed notebook at {page.executed}; run `fraglife run {page.id}` first")
    nb = nbformat.read(page.executed, as_version=4)
    prepare(nb)
    mark_slides(nb)
    unlink_chapters(nb)
    number = page.id.split("_", 1)[0]
    main, backup = [], []
    for cells in units(nb):
        tags = set().union(*(cell_tags(c) for c in cells))
        kind = "chapter" if TALK_TAG in tags else "backup" if BACKUP_TAG in tags else None
        if kind is None:
            continue
        title = slide_title(cells, page.title)
        if not title.startswith(number):
            title = f"{number} · {title}"
        slide = Slide(title, copy.deepcopy(cells), kind, f"{number} · {page.title}")
        (main if kind == "chapter" else backup).append(slide)
    return main, backup


# --------------------------------------------------------------------------- slides the talk adds
def _md(text: str, talk: str, notes: str | None = None) -> list:
    cell = nbformat.v4.new_markdown_cell(text)
    cell.metadata["slideshow"] = {"slide_type": "slide", "data": {"talk": talk}}
    cells = [cell]
    if notes:
        note = nbformat.v4.new_markdown_cell(notes)
        note.metadata["slideshow"] = {"slide_type": "notes"}
        cells.append(note)
    return cells


def title_slide(chapters: list[str], claim_rows: list[dict], build_id: str | None = None) -> Slide:
    held = sum(r["ok"] is True for r in claim_rows)
    checked = f"{len(claim_rows)} claims checked, {held} as expected" if claim_rows else "claims not run"
    built = f"build {build_id}" if build_id else f"built {datetime.date.today().isoformat()}"
    text = ("# When `struct page` loses its refcount, who owns an sk_buff's fragments?\n\n"
            "An executable design book on the netdev/linux-mm thread of 30 May 2025: each proposed change "
            "as a model you can run, measured on the running kernel where it allows, ending in claims "
            "checked on every run.\n\n"
            f"fraglife · {built} · from the executed chapters "
            f"{', '.join(c.split('_', 1)[0] for c in chapters)} · {checked}")
    return Slide("Title", _md(text, "title"), "title")


def _answer_cells(a: "answers_lib.Answer | answers_lib.Missing") -> dict:
    if isinstance(a, answers_lib.Missing):
        return {"bullet": f"({a.bullet})", "answer": f"Not answered in this build: {a.what}.",
                "number": "", "verdict": "", "how": ""}
    r = a.row()
    return {"bullet": r["bullet"], "answer": a.answer, "number": a.number.text, "what": a.number.what,
            "verdict": r["verdict"], "how": a.evidence.short}


def _answers_table(rows: list[dict]) -> str:
    def number(r: dict) -> str:
        what = r.get("what", "")
        return (f'<span class="n">{html.escape(r["number"])}</span>' + ("<br>" if r["number"] and what else "")
                + f'<span class="what">{html.escape(what)}</span>')

    body = [f'<tr><td class="narrow bullet">{html.escape(r["bullet"])}</td><td>{html.escape(r["answer"])}</td>'
            f'<td class="number">{number(r)}</td><td class="how">{html.escape(r["verdict"])}'
            f'{"<br>" if r["verdict"] and r["how"] else ""}{html.escape(r["how"])}</td></tr>' for r in rows]
    return ('<table class="talk-answers"><thead><tr><th class="narrow"></th><th>answer</th><th>number</th>'
            "<th>verdict, evidence</th></tr></thead><tbody>\n" + "\n".join(body) + "\n</tbody></table>")


def answers_slides(pages: list[Page], build_id: str | None) -> list[Slide]:
    """The answers of the pages' build, one row per item of the thread, on as many slides as they need; none
    when no page treats an item of the thread."""
    ids = {p.id for p in pages}
    if not ids & {b.chapter for b in thread.BULLETS}:
        return []
    table = answers_lib.load(build_id)
    by_label = {a.bullet: a for a in table.answers} | {m.bullet: m for m in table.missing}
    rows = [_answer_cells(by_label[label]) for label in answers_lib.LABELS if label in by_label]
    chunks, used = [[]], 0
    for r in rows:
        text = {"answer": r["answer"], "number": r["number"] + " " * 34 + r.get("what", ""),
                "how": r["verdict"] + r["how"]}
        h = _ANSWER_LINE * max(math.ceil(len(text[k]) / n) for k, n in _ANSWER_CHARS.items()) + 12
        if chunks[-1] and used + h > _ANSWER_ROOM:
            chunks.append([])
            used = 0
        chunks[-1].append(r)
        used += h
    out = []
    for i, chunk in enumerate(chunks):
        part = f" ({i + 1}/{len(chunks)})" if len(chunks) > 1 else ""
        text = f"## The answers{part}\n\n{_answers_table(chunk)}"
        notes = ("Each row is one item of the thread as its chapter answered it in this build; numbers are "
                 "values with the range they moved over on this build's measurements. "
                 + answers_lib.about_build(build_id))
        out.append(Slide(f"The answers{part}", _md(text, "answers", notes), "answers"))
    return out


def _topic(chapter_id: str) -> str:
    """A chapter's short name: its registry title up to the colon, else its id's name."""
    for ch in CHAPTERS:
        if ch.id == chapter_id:
            topic = ch.title.split(":", 1)[0]
            return topic[:1].lower() + topic[1:]
    return chapter_id.split("_", 1)[1].replace("_", " ")


def thread_slide(in_talk: Iterable[str]) -> Slide:
    in_talk = set(in_talk)
    first, *replies = thread.MESSAGES
    lines = ["## The thread", "",
             f"* **{first.author}** to {first.to}, {first.date}: \"{first.subject}\" "
             f"([lore.kernel.org/r/{first.message_id}]({first.url})). {first.said}"]
    for m in replies:
        lines.append(f"* **{m.author}**, the same day ([lore.kernel.org/r/{m.message_id}]({m.url})): {m.said}")
    lines += ["", "The changes, and the chapter that answers each (bold: in this talk):", ""]
    for b in thread.BULLETS:
        item = f"({b.label}) {_topic(b.chapter)}: chapter {b.chapter.split('_', 1)[0]}"
        lines.append(f"* **{item}**" if b.chapter in in_talk else f"* {item}")
    notes = ("The letters are the book's labels; the mail uses unnumbered bullets. "
             "The wording of both summaries is the book's paraphrase.")
    return Slide("The thread", _md("\n".join(lines), "thread", notes), "thread")


def claim_rows(chapters: list[Chapter]) -> tuple[list[dict], list[str]]:
    """The claims the talk shows, chapter by chapter, with the verdicts of the last run; and notes."""
    rows, notes = [], []
    for ch in chapters:
        declared = {c.name: c for c in ch.claims}
        module = ch.module()
        chosen = getattr(module, "TALK_CLAIMS", None) if module else None
        names = list(declared) if chosen is None else list(chosen)
        unknown = [n for n in names if n not in declared]
        if unknown:
            raise PublishError(f"{ch.id}: TALK_CLAIMS names {', '.join(unknown)}, which it does not declare")
        last = claims_lib.last_run(ch.id)
        for name in names:
            seen = last.get(name)
            if seen is None:
                notes.append(f"{ch.id}: claim {name} has no verdict in build/claims/{ch.number}.json "
                             f"(run the chapter: fraglife run {ch.number})")
            rows.append({"chapter": ch.number, "claim": name, "statement": (seen or {}).get("statement")
                         or declared[name].statement, "expected": declared[name].expected,
                         "observed": seen["observed"] if seen else "not run", "ok": seen.get("ok") if seen else None})
    return rows, notes


def _claims_table(rows: list[dict]) -> str:
    body = []
    for r in rows:
        mark, cls = ("✓", "ok") if r["ok"] is True else ("drift", "drift") if r["ok"] is False else ("", "")
        body.append(f'<tr><td class="narrow chapter">{r["chapter"]}</td><td>{html.escape(r["statement"])}</td>'
                    f'<td class="narrow">{r["expected"]}</td>'
                    f'<td class="narrow {cls}">{r["observed"]} {mark}</td></tr>')
    return ('<table class="talk-claims"><thead><tr><th class="narrow">ch.</th><th>claim</th>'
            '<th class="narrow">expected</th><th class="narrow">observed</th>'
            "</tr></thead><tbody>\n" + "\n".join(body) + "\n</tbody></table>")


def claims_slides(rows: list[dict]) -> list[Slide]:
    """The claims, as many slides as they need."""
    chunks, used = [[]], 0
    for r in rows:
        h = _CLAIM_LINE * math.ceil(len(r["statement"]) / _CLAIM_CHARS) + 10
        if chunks[-1] and used + h > _CLAIM_ROOM:
            chunks.append([])
            used = 0
        chunks[-1].append(r)
        used += h
    chunks = [c for c in chunks if c]
    out = []
    for i, chunk in enumerate(chunks):
        part = f" ({i + 1}/{len(chunks)})" if len(chunks) > 1 else ""
        text = (f"## What the book checked{part}\n\n"
                "Each claim is stated with the verdict it expects and checked every time its chapter runs; "
                "these are the verdicts of this build's run.\n\n" + _claims_table(chunk))
        out.append(Slide(f"What the book checked{part}", _md(text, "claims"), "claims"))
    return out


def end_slide() -> Slide:
    text = ("## Run it, change it, check it\n\n"
            "* `make lab`: the chapters in JupyterLab; change a parameter, re-run, the claims are checked again\n"
            "* `make test`: every chapter executed headless, every claim checked\n"
            "* `make talk`: this deck, its handout and its timing plan, from the same executed notebooks\n\n"
            "Backup slides follow.")
    return Slide("Run it, change it, check it", _md(text, "end"), "end")


def backup_slide(backup: list[Slide]) -> Slide:
    items = "\n".join(f"* {s.title}" for s in backup)
    return Slide("Backup", _md(f"## Backup\n\n{items}", "backup"), "backup")


# --------------------------------------------------------------------------- the plan
def clock(seconds: int) -> str:
    return f"{seconds // 60}:{seconds % 60:02d}"


def schedule(slides: list[Slide], minutes: float) -> None:
    """Spread ``minutes`` over the main slides by weight, in 5-second steps (largest remainder)."""
    main = [s for s in slides if s.main]
    steps = int(round(minutes * 60 / 5))
    weights = [WEIGHTS[s.kind] for s in main]
    quota = [steps * w / sum(weights) for w in weights]
    given = [max(1, int(q)) for q in quota]
    for i in sorted(range(len(main)), key=lambda i: quota[i] - int(quota[i]), reverse=True):
        if sum(given) >= steps:
            break
        given[i] += 1
    while sum(given) > steps and max(given) > 1:  # more slides than 5-second steps allow
        given[given.index(max(given))] -= 1
    start = 0
    for s, g in zip(main, given):
        s.seconds, s.start = 5 * g, start
        start += 5 * g


def plan_text(slides: list[Slide], minutes: float) -> str:
    main = [s for s in slides if s.main]
    backup = [s for s in slides if not s.main]
    lines = [f"talk: {len(main)} main slides for {clock(int(round(minutes * 60)))}, "
             f"{len(backup)} backup slides after the end", "    #   from   time  slide"]
    for i, s in enumerate(main, 1):
        lines.append(f"  {i:3d}  {clock(s.start):>5}  {clock(s.seconds):>5}  {s.title}")
    for i, s in enumerate(backup, len(main) + 1):
        lines.append(f"  {i:3d}      -      -  (backup) {s.title}")
    return "\n".join(lines)


# --------------------------------------------------------------------------- the deck
def talk_notebook(slides: list[Slide], minutes: float, kernelspec: dict | None = None,
                  build_id: str | None = None):
    """One notebook whose slides are ``slides``, each first cell carrying its timing, each main slide its plan line;
    ``build_id``: the build its numbers come from (the deck's footer)."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["title"] = "fraglife · talk"
    if build_id:
        build_lib.stamp(nb, build_id)
    nb.metadata["talk"] = {"total_seconds": int(round(minutes * 60))}
    nb.metadata["language_info"] = {"name": "python"}
    if kernelspec:
        nb.metadata["kernelspec"] = kernelspec
    main = [s for s in slides if s.main]
    total = clock(int(round(minutes * 60)))
    for s in slides:
        cells = s.cells
        show = cells[0].metadata.setdefault("slideshow", nbformat.NotebookNode())
        show["slide_type"] = "slide"
        data = dict(show.get("data") or {})
        data.setdefault("talk", s.kind)
        data["timing"] = s.seconds
        show["data"] = data
        for c in cells[1:]:
            kind = c.metadata.get("slideshow", {}).get("slide_type", "-")
            if kind in ("slide", "subslide"):
                c.metadata.slideshow.slide_type = "-"
        if s.main:
            n = main.index(s) + 1
            where = f" From chapter {s.chapter}." if s.chapter else ""
            line = (f"**Plan:** slide {n} of {len(main)}, {clock(s.seconds)} here "
                    f"({clock(s.start)} to {clock(s.start + s.seconds)} of {total}).{where}")
            note = nbformat.v4.new_markdown_cell(line)
            note.metadata["slideshow"] = {"slide_type": "notes"}
            cells = [*cells, note]
        nb.cells.extend(cells)
    return nb


def assemble(pages: list[Page]) -> tuple[list[Slide], list[str]]:
    """Every slide of the talk, in order, and the notes for the build output."""
    notes: list[str] = []
    main: list[Slide] = []
    backup: list[Slide] = []
    in_talk: list[str] = []
    for page in pages:
        m, b = chapter_slides(page)
        if not m and not b:
            notes.append(f"{page.id}: no cell tagged '{TALK_TAG}' or '{BACKUP_TAG}', left out of the talk's slides")
            continue
        if not m:
            notes.append(f"{page.id}: only backup slides (no cell tagged '{TALK_TAG}')")
        main += m
        backup += b
        in_talk.append(page.id)
    ids = {p.id for p in pages}
    rows, claim_notes = claim_rows([c for c in CHAPTERS if c.id in ids])
    notes += claim_notes
    build_id = one_build(pages)
    slides = [title_slide([p.id for p in pages], rows, build_id), *answers_slides(pages, build_id),
              thread_slide(in_talk), *main, *claims_slides(rows), end_slide()]
    if backup:
        slides += [backup_slide(backup), *backup]
    return slides, notes


def export_talk(slides: list[Slide], minutes: float, path: Path, kernelspec: dict | None = None,
                build_id: str | None = None) -> Path:
    nb = talk_notebook(slides, minutes, kernelspec, build_id)
    # A talk slide must fit (the build measures it): no scrolling.
    # Its template extends the chapter decks' one by path: data/templates is a search root too.
    exporter = make_exporter(template_name="fraglife_talk", reveal_scroll=False,
                         extra_template_paths=[str(Path(__file__).with_name("data") / "templates")])
    body, _ = exporter.from_notebook_node(nb, resources={"metadata": {"name": "talk"}})
    path.write_text(body, encoding="utf-8")
    return path


# --------------------------------------------------------------------------- in the browser
# Every slide measured as every deck's is (fraglife.publish.fit): content height and width, scroll boxes.
measure, too_big = fit.measure, fit.too_big


def check_and_print(deck: Path, pdf: Path | None) -> list[str]:
    """Open the deck offline: slides that do not fit, requests off the disk, errors; print the handout."""
    from .browser import offline_browser, file_url

    from playwright.sync_api import Error as PlaywrightError

    problems: list[str] = []
    with offline_browser(viewport=(WIDTH, HEIGHT)) as chromium:
        tab = chromium.open(file_url(deck))
        try:
            problems += too_big(measure(tab))
        except PlaywrightError as e:
            problems.append(f"the deck did not come up in Chromium: {str(e).splitlines()[0]}")
        finally:
            problems += tab.problems()
            tab.close()
        if pdf is not None:
            tab = chromium.open(file_url(deck) + "?print-pdf")
            try:
                tab.wait_for("document.documentElement.dataset.pdfReady === '1'", timeout=120)
                tab.evaluate("() => new Promise(r => (window.MathJax && MathJax.Hub) ? MathJax.Hub.Queue(r) : r())")
                tab.page.pdf(path=str(pdf), print_background=True, prefer_css_page_size=True)
            except PlaywrightError as e:
                problems.append(f"handout: not printed: {str(e).splitlines()[0]}")
            finally:
                problems += [f"handout: {p}" for p in tab.problems()]
                tab.close()
    return problems


def build_talk(pages: list[Page], out_dir: Path | None = None, *, minutes: float = MINUTES,
               pdf: bool = True) -> Talk:
    """The talk for ``pages`` into ``out_dir`` (default build/talk): deck, _vendor/, plan and handout."""
    if not isinstance(minutes, (int, float)) or not 1 <= minutes <= 240:
        raise PublishError(f"parameter 'minutes' = {minutes!r} is not allowed: expected a number in [1, 240]")
    if not pages:
        raise PublishError("no written chapter to make a talk from")
    check_vendor()
    out = Path(out_dir) if out_dir else BUILD / "talk"
    out.mkdir(parents=True, exist_ok=True)
    for name in (DECK, HANDOUT, PLAN):
        (out / name).unlink(missing_ok=True)
    shutil.rmtree(out / VENDOR_DIR, ignore_errors=True)
    copy_assets(out / VENDOR_DIR, SLIDE_ASSETS)

    build_id = one_build(pages)
    slides, notes = assemble(pages)
    schedule(slides, minutes)
    plan = plan_text(slides, minutes)
    kernelspec = nbformat.read(pages[0].executed, as_version=4).metadata.get("kernelspec")
    deck = export_talk(slides, minutes, out / DECK, kernelspec, build_id)
    (out / PLAN).write_text(plan + "\n")
    problems = audit([deck])
    if problems:
        raise PublishError("the talk would not work offline:\n  " + "\n  ".join(problems))
    talk = Talk(deck, plan, slides, notes)
    if pdf:
        from .browser import missing

        reason = missing()
        if reason:
            raise PublishError(f"{reason}; it prints the handout and checks the slides (or: --no-pdf)")
        talk.problems = check_and_print(deck, out / HANDOUT)
        talk.pdf = out / HANDOUT if (out / HANDOUT).exists() else None
    return talk


# --------------------------------------------------------------------------- command line
def register(sub) -> None:
    p = sub.add_parser("talk", help="build one conference deck from the executed chapters into build/talk/",
                       description="One reveal.js deck from the executed chapters (cells tagged 'talk', "
                                   "'talk-backup'), its timing plan and a PDF handout, offline.")
    p.add_argument("chapters", nargs="*", help="chapter ids or numbers (default: every written chapter)")
    p.add_argument("--no-run", action="store_true", help="reuse build/executed/ instead of executing the chapters")
    p.add_argument("--executed", type=Path, default=None, help="executed notebooks (default build/executed)")
    p.add_argument("--out", type=Path, default=None, help="output folder (default build/talk)")
    p.add_argument("--minutes", type=float, default=MINUTES, help=f"target length (default {MINUTES})")
    p.add_argument("--no-pdf", action="store_true", help="skip the handout and the browser check")
    p.set_defaults(func=_cli)


def _cli(args) -> int:
    start = time.perf_counter()
    try:
        pages, _planned = executed_pages(args.chapters or None, args.executed, run=not args.no_run)
        talk = build_talk(pages, args.out, minutes=args.minutes, pdf=not args.no_pdf)
    except PublishError as e:
        print(f"fraglife talk: {e}", file=sys.stderr)
        return 1
    for note in talk.notes:
        print(f"note: {note}", file=sys.stderr)
    print(f"deck: {talk.deck}")
    print(talk.plan)
    if talk.pdf:
        print(f"handout: {talk.pdf}")
    print(f"folder to copy: {talk.deck.parent} (open {DECK} from disk; S opens the speaker view with notes and timer)")
    if talk.problems:
        print("fraglife talk: the deck does not pass its browser check:\n  " + "\n  ".join(talk.problems),
              file=sys.stderr)
        return 1
    print(f"fraglife talk: done in {time.perf_counter() - start:.1f}s")
    return 0

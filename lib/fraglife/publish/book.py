"""``fraglife book``: the offline HTML book (Jupyter Book 1.x) from the executed chapters.

It opens on the answers (:mod:`fraglife.answers`) of the build its pages come from, and every page's footer
names that build; pages of different builds are refused (:func:`.notebooks.one_build`).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat

from .. import answers, thread
from ..chapters import Chapter
from ..paths import BUILD
from .audit import audit
from .notebooks import Page, PublishError, one_build, prepare, rewrite_links
from .vendor import BOOK_ASSETS, check_vendor, copy_assets

DATA = Path(__file__).with_name("data")
BOOK_CONFIG = DATA / "book" / "_config.yml"
BOOK_CSS = DATA / "book" / "fraglife.css"

NOTES_TITLE = "For the speaker"


def speaker_notes_as_asides(nb) -> None:
    """A deck's speaker notes read as a folded aside in the book, not as the chapter's own text."""
    for cell in nb.cells:
        if cell.get("cell_type") == "markdown" and \
                cell.metadata.get("slideshow", {}).get("slide_type") == "notes":
            text = re.sub(r"^\s*Speaker notes:\s*", "", cell.source)
            text = text[:1].upper() + text[1:]
            cell.source = f":::{{admonition}} {NOTES_TITLE}\n:class: dropdown fraglife-notes\n{text}\n:::"


def _answers_section(pages: list[Page], build_id: str | None) -> list[str]:
    """The book's first section: the answers of the build the pages come from (none if no page treats an
    item of the thread)."""
    ids = {p.id for p in pages}
    if not ids & {b.chapter for b in thread.BULLETS}:
        return []
    table = answers.load(build_id)
    lines = [
        "## The answers",
        "",
        "One entry per item of the thread, (a)-(g) and the proposal (1): the book's answer, its verdict, the",
        "number behind it with the range it moved over on this build's measurements, and how it was",
        "obtained. Each chapter opens with its row and shows how it got there.",
        "",
        answers.markdown(table, lambda chapter: f"{chapter}.ipynb" if chapter in ids else None),
        "",
        answers.about_build(build_id),
        "",
    ]
    if table.missing:
        lines += ["Not answered in this build: " + "; ".join(m.line() for m in table.missing) + ".", ""]
    return lines


def _book_index(pages: list[Page], planned: list[Chapter], build_id: str | None = None) -> str:
    lines = [
        "# fraglife",
        "",
        "An executable design book about one question from a 2025 netdev/linux-mm thread: when",
        "`struct page` loses its refcount, what must change in the networking stack, and what",
        "should own the lifetime of an sk_buff's fragments instead?",
        "",
        *_answers_section(pages, build_id),
        "## About this book",
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


def _config(build_id: str | None) -> str:
    """The book's configuration, its footer naming the build the pages come from."""
    text = BOOK_CONFIG.read_text()
    if build_id:
        text = text.replace('extra_footer: "', f'extra_footer: "fraglife build {build_id}. ', 1)
    return text


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
    check_vendor()
    build_id = one_build(pages)
    out = Path(out_dir) if out_dir else BUILD / "html"
    src = Path(src_dir) if src_dir else out.parent / "book-src"
    shutil.rmtree(src, ignore_errors=True)
    src.mkdir(parents=True)
    (src / "_config.yml").write_text(_config(build_id))
    toc = ["format: jb-book", "root: index", "chapters:"] + [f"- file: {p.id}" for p in pages]
    (src / "_toc.yml").write_text("\n".join(toc) + "\n")
    (src / "index.md").write_text(_book_index(pages, list(planned), build_id))
    copy_assets(src / "_offline" / "vendor", BOOK_ASSETS)
    shutil.copy2(BOOK_CSS, src / "_offline" / "fraglife.css")
    for page in pages:
        if not page.executed.exists():
            raise PublishError(f"{page.id}: no executed notebook at {page.executed}; run `fraglife run {page.id}` first")
        nb = nbformat.read(page.executed, as_version=4)
        prepare(nb)
        speaker_notes_as_asides(nb)
        # Jupyter Book resolves links in markdown cells, not in outputs (a conclusion's Markdown)
        rewrite_links(nb, [p.id for p in pages], ".html", markdown_cells=False)
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

"""Decks, talk and book come from one build: they carry its id, open on its answers, refuse to mix builds."""

import re

import nbformat
import pytest

from fraglife import answers, build, paths, publish, thread
from fraglife.answers import Answer, Number
from fraglife.publish import book as book_mod
from fraglife.publish import browser

KERNELSPEC = {"name": "fraglife", "display_name": "Python (fraglife)", "language": "python"}


@pytest.fixture
def tmp_build(tmp_path, monkeypatch):
    monkeypatch.setattr(paths, "BUILD", tmp_path / "build")
    monkeypatch.delenv(build.ENV, raising=False)
    return tmp_path / "build"


def _executed(folder, chapter_id, build_id, talk=True):
    """A chapter's executed notebook as the runner leaves it: a slide tagged for the talk, stamped."""
    nb = nbformat.v4.new_notebook(metadata={"kernelspec": KERNELSPEC, "language_info": {"name": "python"}})
    cell = nbformat.v4.new_markdown_cell(f"# {chapter_id[:2]} · A chapter\n\nIts story in a sentence.")
    if talk:
        cell.metadata["tags"] = ["talk"]
    nb.cells = [cell]
    if build_id:
        build.stamp(nb, build_id)
    path = folder / f"{chapter_id}.ipynb"
    nbformat.write(nb, path)
    return publish.Page(chapter_id, f"Chapter {chapter_id[:2]}", "a summary", path)


def _record_all(monkeypatch, build_id):
    monkeypatch.setenv(build.ENV, build_id)
    for i, b in enumerate(thread.BULLETS):
        v = 1234.5678 * 10 ** (i % 4)
        n = Number(v, 0.8 * v, 1.4 * v, "ns/MiB", "what the change adds per MiB sent, on this build's costs")
        answers.record(b.chapter, Answer(
            b.label, "Under today's rules the stack pays for every frag with a page reference, and the owner "
                     f"pays once per skb instead, {n.text} in all, wherever the frag's memory comes from.",
            "agree, at a cost", n, answers.cross_checked("the kcount probe's tracepoint counts over veth"),
            provisional=bool(i % 2)))
    monkeypatch.delenv(build.ENV)
    return answers.load(build_id)


def test_executions_of_different_builds_are_not_published_together(tmp_path, tmp_build):
    pages = [_executed(tmp_path, "01_refcount_removal", "B1"), _executed(tmp_path, "02_slim_page", "B2"),
             _executed(tmp_path, "03_pinning", "B1")]
    message = r"different builds \(build B1: 01, 03; build B2: 02\)"
    with pytest.raises(publish.PublishError, match=message):
        publish.build_slides(pages, tmp_path / "slides")
    with pytest.raises(publish.PublishError, match=message):
        publish.build_talk(pages, tmp_path / "talk", pdf=False)
    with pytest.raises(publish.PublishError, match=message):
        publish.build_book(pages, tmp_path / "html")
    unstamped = _executed(tmp_path, "04_batching", None)
    with pytest.raises(publish.PublishError, match=r"build \(none: executed outside a build\): 04"):
        publish.notebooks.one_build([pages[0], unstamped])
    assert publish.notebooks.one_build(pages[::2]) == "B1" and publish.notebooks.one_build([unstamped]) is None


def test_decks_name_their_build(tmp_path, tmp_build):
    pages = [_executed(tmp_path, "01_refcount_removal", "B1")]
    [deck] = publish.build_slides(pages, tmp_path / "slides")
    assert '<div class="fraglife-build">fraglife build B1</div>' in deck.read_text()


def test_the_talk_opens_with_the_answers_of_its_build(tmp_path, tmp_build, monkeypatch):
    table = _record_all(monkeypatch, "B1")
    pages = [_executed(tmp_path, b.chapter, "B1") for b in thread.BULLETS]
    t = publish.build_talk(pages, tmp_path / "talk", pdf=False)
    kinds = [s.kind for s in t.slides]
    assert kinds[0] == "title" and kinds[1] == "answers" and kinds.index("thread") > 1
    assert "build B1" in t.slides[0].cells[0].source
    answer_html = "".join(s.cells[0].source for s in t.slides if s.kind == "answers")
    for a in table.answers:
        assert a.number.text in answer_html and a.label in answer_html
    deck = t.deck.read_text()
    assert "fraglife build B1" in deck and 'data-talk="answers"' in deck
    assert sum(s.seconds for s in t.slides if s.main) == 25 * 60


def test_a_talk_without_answers_says_which_chapters_have_not_run(tmp_path, tmp_build):
    pages = [_executed(tmp_path, "01_refcount_removal", "B9")]
    t = publish.build_talk(pages, tmp_path / "talk", pdf=False)
    [slide] = [s for s in t.slides if s.kind == "answers"]
    text = slide.cells[0].source
    assert "chapter 01 has not recorded its answer" in text and text.count("<tr>") == 1 + len(thread.BULLETS)


def test_the_book_opens_on_the_answers(tmp_path, tmp_build, monkeypatch):
    table = _record_all(monkeypatch, "B1")
    pages = [_executed(tmp_path, b.chapter, "B1") for b in thread.BULLETS[:3]]
    index = book_mod._book_index(pages, [], "B1")
    sections = re.findall(r"^## (.*)$", index, re.M)
    assert sections[0] == "The answers"
    for a in table.answers:
        assert a.number.text in index
    assert "[chapter 01](01_refcount_removal.ipynb)" in index and "[chapter 04]" not in index  # links only to pages in the book
    assert 'extra_footer: "fraglife build B1. ' in book_mod._config("B1")


@pytest.mark.browser
def test_the_answers_slides_fit_and_the_book_builds(tmp_path, tmp_build, monkeypatch):
    if browser.missing():
        pytest.skip(browser.missing())
    _record_all(monkeypatch, "B1")
    pages = [_executed(tmp_path, b.chapter, "B1") for b in thread.BULLETS]
    t = publish.build_talk(pages, tmp_path / "talk", minutes=10)
    assert t.problems == [], t.problems
    index = publish.build_book(pages, tmp_path / "html")
    html = index.read_text()
    assert "The answers" in html and "fraglife build B1" in html

"""The reply for the list: made from the answers table, 72 columns, every item answered with its number."""

import re

import pytest

from fraglife import answers, build, cli, paths, reply, thread
from fraglife.answers import Answer, Number, format_number

NUMBER = re.compile(r"-?\d+(?:,\d{3})*(?:\.\d+)?")


@pytest.fixture
def tmp_build(tmp_path, monkeypatch, recorded):
    monkeypatch.setattr(paths, "BUILD", tmp_path / "build")
    monkeypatch.setenv("FRAGLIFE_BUILD", str(tmp_path / "build"))
    monkeypatch.delenv(build.ENV, raising=False)
    build._units_of.cache_clear()
    yield tmp_path / "build"
    build._units_of.cache_clear()


def _record_all(skip=()):
    """An answer per item, with long sentences and wide numbers, as a build would record them."""
    b = build.start("recorded", command="fraglife run")
    evidence = [answers.measured("vmsplice probe: a page rewritten after vmsplice", "recorded"),
                answers.cross_checked("the kcount probe's tracepoint counts over veth", "live"),
                answers.priced("atomics, gup and cow", "recorded"), answers.from_source("net/core/skbuff.c, v6.18")]
    for i, bl in enumerate(thread.BULLETS):
        if bl.label in skip:
            continue
        v = 1234.5678 * 10 ** (i % 4) + i
        n = Number(v, v * 0.8, v * 1.35, "ns/MiB", f"the cost the change adds per MiB sent, item {bl.label}")
        text = (f"Under today's rules the stack takes {format_number(688.5 + i, unit='atomics/MiB')} and "
                f"{n.text} of CPU, of which the owner takes back {format_number(41.5 + i, unit='%')} "
                f"while keeping every frag alive until its last user drops it.")
        answers.record(bl.chapter, Answer(bl.label, text, answers.VERDICTS[i % 4], n, evidence[i % 4],
                                          provisional=i % 2 == 1))
    return b


def test_the_reply_answers_every_item_in_72_columns(tmp_build):
    b = _record_all()
    path, table = reply.write()
    text = path.read_text()
    assert path == tmp_build / "reply" / "reply.txt" and table.complete and table.build == b.id
    lines = text.splitlines()
    assert lines[:3] == ["Subject: Re: Device mem changes vs pinning/zerocopy changes",
                         "In-Reply-To: <770012.1748618092@warthog.procyon.org.uk>",
                         "References: <770012.1748618092@warthog.procyon.org.uk>"]
    assert lines[3] == "" and text.isascii()
    too_wide = [line for line in lines if len(line) > reply.WIDTH]
    assert not too_wide
    for bl, a in zip(thread.BULLETS, table.answers):
        head = reply.attribution(bl)
        assert head in lines and len(head) <= reply.WIDTH
        assert head.startswith(f"({bl.label}) David") and bl.change not in text  # a paraphrase, never the bullet
        block = text.split(head + "\n", 1)[1].split("\n\n", 1)[0]
        flat = " ".join(block.split())
        assert a.number.text in block  # never broken across lines
        assert " ".join(a.answer.split()) in flat and " ".join(a.evidence.text.split()) in flat
        assert f"Verdict: {a.verdict}" in flat and f"chapter {a.chapter[:2]}" in flat
        assert a.reproduce.kernel.split()[0] in flat and a.reproduce.machine in flat
    assert "(1) David and Stanislav: " in text


def test_every_number_in_the_reply_is_in_the_answers_table(tmp_build):
    b = _record_all()
    path, table = reply.write()
    text = path.read_text()
    frame = table.frame()
    source = " ".join([" ".join(map(str, r)) for r in frame.itertuples()] +
                      [" ".join(str(v) for v in a.reproduce.__dict__.values()) for a in table.answers] +
                      [answers.about_build(b.id)] + [m.message_id for m in thread.MESSAGES] +
                      [bl.brief for bl in thread.BULLETS] + [f"{bl.chapter} {bl.label}" for bl in thread.BULLETS])
    allowed = set(NUMBER.findall(source))
    body = " ".join(text.split())
    stray = sorted(set(NUMBER.findall(body)) - allowed)
    assert not stray, f"numbers typed into the reply rather than taken from the table: {stray}"
    for a in table.answers:  # and each headline number as format_number gives it
        assert a.number.text in text


def test_an_unanswered_item_is_named_and_the_command_fails(tmp_build, capsys):
    _record_all(skip=("d",))
    assert cli.main(["reply"]) == 1
    text = (tmp_build / "reply" / "reply.txt").read_text()
    assert "(d) David: " in text and "Not answered yet: chapter 04 has not recorded its answer" in text
    assert "chapter 04 has not recorded" in capsys.readouterr().err


def test_answers_of_another_build_are_not_sent(tmp_build):
    _record_all()
    newer = build.start("recorded")  # a build that has not run the chapters yet
    _, table = reply.write()
    assert table.build == newer.id and not table.answers and len(table.missing) == len(thread.BULLETS)
    _, table = reply.write("any")
    assert len(table.answers) == len(thread.BULLETS)

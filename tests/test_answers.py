"""The answers table: numbers formatted once, answers validated, recorded per chapter with their build, read back."""

import json
import math
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fraglife import answers, build, cli, paths, thread
from fraglife.answers import Answer, Number, format_number


# --------------------------------------------------------------------------- numbers
@pytest.mark.parametrize("args, text", [
    ((15874.983, 14676.7, 16550.5, "ns/MiB"), "16,000 ns/MiB (15,000 to 17,000)"),
    ((15874.983, 15500, 16200, "ns/MiB"), "15,900 ns/MiB (15,500 to 16,200)"),
    ((104.5, 27.855, 109.7, "ns"), "100 ns (28 to 110)"),
    ((4.7348, 4.7193, 4.7996, "ns"), "4.73 ns (4.72 to 4.80)"),
    ((688.5, None, None, "atomics/MiB"), "689 atomics/MiB"),
    ((3072, 3072, 3072, ""), "3,070"),
    ((4.0, None, None, "refs"), "4 refs"),
    ((0.0117, None, None, "%"), "0.0117 %"),
    ((-35.1, -40, -30, "%"), "-35 % (-40 to -30)"),
    ((0, 0, 0, "violations"), "0 violations"),
    ((99.96, None, None, ""), "100"),
    ((28.49, 28.49, 28.4901, "ns"), "28.5 ns"),  # a range below the shown precision is not shown
])
def test_format_number(args, text):
    assert format_number(*args) == text


@pytest.mark.parametrize("args, message", [
    ((float("nan"),), "value = nan is not allowed: expected a finite number"),
    ((5, 6, 7), r"range \[6, 7\] is not allowed: it must contain the value 5"),
    ((5, 4, float("inf")), "high = inf is not allowed"),
    ((True,), "value = True is not allowed"),
    (("five",), "value = 'five' is not allowed"),
])
def test_format_number_refuses(args, message):
    with pytest.raises(ValueError, match=message):
        format_number(*args)


def _parse(s: str) -> float:
    return float(s.replace(",", ""))


@given(value=st.floats(-1e9, 1e9), spread=st.floats(0, 2), skew=st.floats(0, 1))
def test_two_or_three_significant_figures_that_keep_their_order(value, spread, skew):
    lo, hi = value - abs(value) * spread * skew, value + abs(value) * spread * (1 - skew)
    text = format_number(value, lo, hi, "u")
    m = re.fullmatch(r"(-?[\d,.]+) u(?: \((-?[\d,.]+) to (-?[\d,.]+)\))?", text)
    assert m, text
    shown = [_parse(g) for g in m.groups() if g is not None]
    digits = len(m.group(1).lstrip("-").replace(",", "").replace(".", "").lstrip("0").rstrip("0") or "0")
    assert digits <= 3
    sf = answers.significant_figures(value, lo, hi)
    if value:
        assert abs(shown[0] - value) <= 0.5 * 10 ** (math.floor(math.log10(abs(value))) - sf + 2) + 1e-9
    if len(shown) == 3:
        assert shown[1] <= shown[0] <= shown[2] and shown[1] < shown[2]


def test_a_number_says_what_it_measures_and_checks_its_range():
    n = Number(15874.983, 14676.7, 16550.5, "ns/MiB", "refcounting today")
    assert n.text == "16,000 ns/MiB (15,000 to 17,000)"
    assert Number(3.0).low == Number(3.0).high == 3.0
    with pytest.raises(ValueError, match="must contain the value"):
        Number(1.0, 2.0, 3.0, "x")


def test_a_number_from_unit_costs_spans_their_ranges(recorded):
    from fraglife import probes
    from fraglife.model import costs

    units = costs.UnitCosts.from_atomics(probes.run("atomics"))
    n = Number.span(units, lambda u: 531 * u["line_transfer_ns"], "ns/MiB")
    lo, hi = units.range_of("line_transfer_ns")
    assert (n.value, n.low, n.high) == pytest.approx((531 * units["line_transfer_ns"], 531 * lo, 531 * hi))


# --------------------------------------------------------------------------- answers
def _answer(label="a", **kw) -> Answer:
    b = answers.bullet_of(label)
    fields = dict(answer=f"The answer to ({label}) is {format_number(12.5, 10, 15, 'ns')} per page.",
                  verdict="agree", number=Number(12.5, 10.0, 15.0, "ns", "a cost"),
                  evidence=answers.priced("atomics", "live"))
    fields.update(kw)
    return Answer(b.label, **fields)


def test_an_answer_takes_its_question_and_chapter_from_the_thread():
    a = _answer("c")
    assert a.question == thread.BULLETS[2].question and a.chapter == "03_pinning" and a.label == "(c)"
    row = a.row()
    assert row["number"] == "a cost: 13 ns (10 to 15)" and row["chapter"] == "03"
    assert Answer.from_json(json.loads(json.dumps(a.to_json()))) == a


@pytest.mark.parametrize("kw, message", [
    (dict(verdict="maybe"), "verdict = 'maybe' is not allowed: expected one of agree"),
    (dict(answer="Two sentences. Here is the second."), "expected one sentence"),
    (dict(answer="no full stop"), "expected one sentence"),
    (dict(answer="Line one\nline two."), "expected one sentence"),
    (dict(answer=""), "expected one sentence"),
    (dict(chapter="01_refcount_removal"), r"chapter = '01_refcount_removal' is not allowed for \(c\)"),
    (dict(number=12.5), "number must be a Number"),
])
def test_a_bad_answer_is_refused(kw, message):
    with pytest.raises(ValueError, match=message):
        _answer("c", **kw)


def test_a_bad_bullet_or_evidence_is_refused():
    with pytest.raises(ValueError, match=r"bullet = 'h' is not allowed: expected one of a, b, c, d, e, f, g, 1"):
        _answer("h")
    with pytest.raises(ValueError, match="evidence kind = 'vibes' is not allowed"):
        answers.Evidence("vibes", "x")
    with pytest.raises(ValueError, match="must say what"):
        answers.measured(" ")
    with pytest.raises(ValueError, match="evidence source = 'yesterday' is not allowed"):
        answers.priced("atomics", "yesterday")


def test_evidence_reads_as_the_kinds_say():
    assert answers.measured("vmsplice probe").text == "measured on the running kernel (vmsplice probe)"
    x = answers.cross_checked("kcount tracepoints").text
    assert x.startswith("modelled, cross-checked by live kernel counts (kcount tracepoints)")
    assert "no page_ref tracepoints, no hardware PMU, no kprobes" in x
    assert answers.priced("atomics").text == "priced by probe atomics"
    assert answers.from_source("mm/gup.c at v6.18").text == "read from source only (mm/gup.c at v6.18)"
    assert "recordings in data/probes/" in answers.priced("atomics", "recorded").text


# --------------------------------------------------------------------------- record and load
@pytest.fixture
def tmp_build(tmp_path, monkeypatch):
    monkeypatch.setattr(paths, "BUILD", tmp_path / "build")
    monkeypatch.delenv(build.ENV, raising=False)
    return tmp_path / "build"


def test_record_writes_the_row_with_its_build_and_how_to_reproduce_it(tmp_build, monkeypatch):
    from fraglife import chapters

    monkeypatch.setenv(build.ENV, "B1")
    ch = chapters.get("01")
    P = ch.spec.validate({**ch.spec.defaults(), "loss_rate": 0.05})
    frame = answers.record("01_refcount_removal", _answer("a"), P)
    assert list(frame["bullet"]) == ["(a)"]
    data = json.loads((tmp_build / "answers" / "01.json").read_text())
    assert data["build"] == "B1" and data["chapter"] == "01_refcount_removal"
    a = Answer.from_json(data["answer"])
    assert a.build == "B1" and a.reproduce.command == "fraglife run 01 -p loss_rate 0.05"
    assert a.reproduce.kernel.startswith(build.kernel_info()["release"]) and a.reproduce.commit
    with pytest.raises(ValueError, match=r"01_refcount_removal: the answer is to \(c\)"):
        answers.record("01_refcount_removal", _answer("c"))


def test_load_keeps_one_builds_answers_and_names_the_rest(tmp_build, monkeypatch):
    monkeypatch.setenv(build.ENV, "B1")
    for label in "abc":
        answers.record(answers.bullet_of(label).chapter, _answer(label))
    monkeypatch.setenv(build.ENV, "B2")
    answers.record("04_batching", _answer("d"))
    (tmp_build / "answers" / "05.json").write_text("{not json")
    t = answers.load("B1")
    assert [a.bullet for a in t.answers] == ["a", "b", "c"] and t.build == "B1" and not t.complete
    why = {m.bullet: m.what for m in t.missing}
    assert why["d"] == "chapter 04 answered in build B2, not in this one (fraglife run: every chapter in one build)"
    assert why["e"].startswith("chapter 05 recorded an unreadable answer")
    assert why["g"] == "chapter 07 has not recorded its answer (fraglife run)"
    anyb = answers.load()
    assert [a.bullet for a in anyb.answers] == ["a", "b", "c", "d"] and anyb.build is None
    frame = t.frame()
    assert list(frame["bullet"]) == [f"({b.label})" for b in thread.BULLETS]
    assert frame.iloc[0]["number"] == "a cost: 13 ns (10 to 15)"
    assert frame.iloc[3]["answer"].startswith("not answered: chapter 04 answered in build B2")


def test_every_consumer_shows_the_same_characters(tmp_build, monkeypatch):
    monkeypatch.setenv(build.ENV, "B1")
    for b in thread.BULLETS:
        answers.record(b.chapter, _answer(b.label, number=Number(1234.5 * (1 + len(b.label)), 1000, 4000, "ns/MiB")))
    t = answers.load("B1")
    shown = [a.number.text for a in t.answers]
    md, txt, js = answers.markdown(t), answers.text(t), t.to_json()
    for s in shown:
        assert s in md and s in txt and any(s in r["number"] for r in js["rows"])


def test_the_cli_prints_the_table_and_the_missing_chapters(tmp_build, monkeypatch, capsys):
    monkeypatch.setenv(build.ENV, "B1")
    answers.record("02_slim_page", _answer("b"))
    assert cli.main(["answers", "--build", "B1"]) == 0
    out = capsys.readouterr().out
    assert "answers of build B1" in out and "13 ns (10 to 15)" in out and "chapter 08 has not recorded" in out
    assert cli.main(["answers", "--json", "--build", "any"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [a["bullet"] for a in data["answers"]] == ["b"] and len(data["missing"]) == 7


def test_a_chapter_records_its_own_answer(tmp_build, monkeypatch):
    from types import SimpleNamespace

    from fraglife.chapters import answering

    monkeypatch.setenv(build.ENV, "B1")
    R = SimpleNamespace(P={}, headline={})
    own = SimpleNamespace(answer=lambda R: _answer("g"))
    answering.record("07_kmalloc_sends", own, R)
    assert answers.load("B1").answers[0].provisional is False
    # no answer(results): a sentence, no row, no failure
    note = answering.record("07_kmalloc_sends", SimpleNamespace(), R)
    assert isinstance(note, str) and "no answer recorded" in note
    # every bullet's chapter answers itself
    from fraglife import chapters

    assert all(hasattr(chapters.get(b.chapter[:2]).module(), "answer") for b in thread.BULLETS)


def test_a_builds_answers_survive_a_later_run_elsewhere(tmp_build, monkeypatch):
    monkeypatch.setenv(build.ENV, "B1")
    answers.record("01_refcount_removal", _answer("a"))
    monkeypatch.setenv(build.ENV, "B2")  # e.g. a test running chapter 01 into a temporary folder
    answers.record("01_refcount_removal", _answer("a", verdict="open"))
    assert answers.load("B1").answers[0].verdict == "agree" and answers.load("B1").answers[0].build == "B1"
    assert answers.load("B2").answers[0].verdict == "open" and answers.load().answers[0].build == "B2"
    assert (tmp_build / "answers" / "by-build" / "B1" / "01.json").exists()


def test_a_chapters_answer_row_is_one_element_with_the_number_as_the_table_formats_it(tmp_build):
    from html.parser import HTMLParser
    from types import SimpleNamespace

    from fraglife.chapters import answering

    a = _answer("g", answer="Copy below 2 <KiB> & send above it.")
    row = answering.record("07_kmalloc_sends", SimpleNamespace(answer=lambda R: a), SimpleNamespace(P={}))
    assert isinstance(row, answers.Row) and list(row.frame["bullet"]) == ["(g)"]
    html = row._repr_html_()
    opened = []
    parser = HTMLParser()
    parser.handle_starttag = lambda tag, attrs: opened.append(dict(attrs))
    parser.feed(html)
    assert opened[0]["class"] == answers.ROW_CLASS and opened[0]["id"] == f"{answers.ROW_CLASS}-g"
    assert a.number.text in html and "2 &lt;KiB&gt; &amp; send" in html and "<KiB>" not in html
    assert a.number.text in repr(row) and a.answer in repr(row)

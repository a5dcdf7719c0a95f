"""The answers: one row per item of the thread, (a)-(g) and the proposal (1), as data.

What a busy reader reads first. Each chapter answers the item it treats with one :class:`Answer`:
the question, the answer in one sentence, a verdict, a headline :class:`Number` with its range and
unit, the :class:`Evidence` behind it, and how to reproduce it. The chapter builds it from numbers
its ``Results`` computed and records it the way it records its claims::

    from fraglife import answers
    answers.record("01_refcount_removal", ch.answer(R), P)   # -> build/answers/01.json

with the build it ran in (:mod:`fraglife.build`). Every consumer reads those files (:func:`load`)
and prints numbers with :func:`format_number` only, so chapter 00, the HTML book's first page, the
talk's answers slide, ``fraglife answers`` and the reply for the list (:mod:`fraglife.reply`) agree
character for character. Times are ranges over what the probes measured
(:meth:`fraglife.model.costs.UnitCosts.span`), two or three significant figures.

Layering: at the level of :mod:`fraglife.claims`; chapter modules import it, it imports no chapter.
"""

from __future__ import annotations

import json
import math
import re
from decimal import ROUND_HALF_UP, Decimal
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Callable, Iterable, Mapping

from . import build, paths, thread

#: The book's verdict on an item of the thread: is the proposed change right, and what does it take?
VERDICTS = ("agree", "agree, at a cost", "disagree", "open")

#: Kinds of evidence, strongest first, and how each reads.
EVIDENCE_KINDS = {
    "measured": "measured on the running kernel",
    "cross_checked": "modelled, cross-checked by live kernel counts",
    "priced": "priced by probe",
    "source": "read from source only",
}
#: Why a model of refcounts is cross-checked by other counts: what this machine cannot count.
UNCOUNTABLE = ("the refcount atomics themselves cannot be counted here: no page_ref tracepoints, "
               "no hardware PMU, no kprobes")
#: Bullets in the thread's order.
LABELS = tuple(b.label for b in thread.BULLETS)
SUBDIR = "answers"
BY_BUILD = "by-build"  #: build/answers/by-build/<id>/NN.json: each build's own answers
#: How the build's shared units read in a sentence.
UNIT_NAMES = {"local_atomic_ns": "local atomic", "line_transfer_ns": "line transfer"}


# ---------------------------------------------------------------- numbers
def _sig(x: float, sf: int, whole: bool = False) -> str:
    """``x`` to ``sf`` significant figures, halves rounded away from zero, thousands grouped: "15,900";
    ``whole``: an exact whole number (a count) shows no decimals ("4", not "4.00")."""
    if x == 0:
        return "0"
    d = Decimal(repr(float(x)))
    e = d.adjusted()
    q = d.quantize(Decimal(1).scaleb(max(e - sf + 1, 0) if whole else e - sf + 1), rounding=ROUND_HALF_UP)
    if q.adjusted() > e:  # 99.96 -> 100.0: one digit more before the point
        q = d.quantize(Decimal(1).scaleb(max(e - sf + 2, 0) if whole else e - sf + 2), rounding=ROUND_HALF_UP)
    return f"{q:,.{max(0, -q.as_tuple().exponent)}f}"


def significant_figures(value: float, low: float, high: float) -> int:
    """3 when the range is within 10 % of the value (or there is none), else 2: no digit the range
    makes meaningless."""
    if high == low:
        return 3
    scale = abs(value) or max(abs(low), abs(high))
    return 3 if (high - low) <= 0.1 * scale else 2


def format_number(value: float, low: float | None = None, high: float | None = None, unit: str = "") -> str:
    """A number with its range, as every page, slide and mail shows it: "16,000 ns/MiB (15,000 to 17,000)";
    "689 atomics/MiB" when it has no range. Two or three significant figures each
    (:func:`significant_figures`; an exact whole number shows no decimals), thousands grouped with commas,
    the unit after the value."""
    v = _finite("value", value)
    lo = v if low is None else _finite("low", low)
    hi = v if high is None else _finite("high", high)
    tol = 1e-9 * max(1.0, abs(v), abs(lo), abs(hi))
    if not lo - tol <= v <= hi + tol:
        raise ValueError(f"range [{lo:g}, {hi:g}] is not allowed: it must contain the value {v:g}")
    sf = significant_figures(v, lo, hi)
    text = _sig(v, sf, whole=lo == hi and float(v).is_integer()) + (f" {unit}" if unit else "")
    ends = (_sig(lo, sf), _sig(hi, sf))
    if hi - lo > tol and ends[0] != ends[1]:
        text += f" ({ends[0]} to {ends[1]})"
    return text


def _finite(name: str, x: Any) -> float:
    try:
        v = float(x)
    except (TypeError, ValueError):
        v = math.nan
    if isinstance(x, bool) or not math.isfinite(v):
        raise ValueError(f"{name} = {x!r} is not allowed: expected a finite number")
    return v


@dataclass(frozen=True)
class Number:
    """A headline number: value, range (low, high; the value twice when exact), unit, and what it measures."""

    value: float
    low: float | None = None
    high: float | None = None
    unit: str = ""
    what: str = ""

    def __post_init__(self):
        v = _finite("value", self.value)
        object.__setattr__(self, "value", v)
        object.__setattr__(self, "low", v if self.low is None else _finite("low", self.low))
        object.__setattr__(self, "high", v if self.high is None else _finite("high", self.high))
        format_number(self.value, self.low, self.high, self.unit)  # checks the range holds the value

    @classmethod
    def span(cls, units: Any, price: Callable[[Any], float], unit: str, what: str = "") -> "Number":
        """A time from unit costs: ``price(units)`` at their values, and its least and most over the ranges
        the units were measured over (:meth:`fraglife.model.costs.UnitCosts.span`)."""
        return cls(*units.span(price), unit=unit, what=what)

    @property
    def text(self) -> str:
        return format_number(self.value, self.low, self.high, self.unit)


# ---------------------------------------------------------------- evidence
@dataclass(frozen=True)
class Evidence:
    """Where a number comes from: ``kind`` (a key of :data:`EVIDENCE_KINDS`), ``what`` (the probe, the
    kernel counts, or the source read), ``source`` ("live", "recorded" or "" for no probe)."""

    kind: str
    what: str
    source: str = ""

    def __post_init__(self):
        if self.kind not in EVIDENCE_KINDS:
            raise ValueError(f"evidence kind = {self.kind!r} is not allowed: expected one of {', '.join(EVIDENCE_KINDS)}")
        if not self.what.strip():
            raise ValueError(f"evidence {self.kind!r} must say what: the probe, the counts or the source")
        if self.source not in ("", "live", "recorded", "mixed"):
            raise ValueError(f"evidence source = {self.source!r} is not allowed: expected live, recorded, mixed or ''")

    @property
    def short(self) -> str:
        """A few words for a slide: "measured", "modelled, checked by kernel counts", "priced by probe X",
        "read from source"."""
        return {"measured": "measured", "cross_checked": "modelled, checked by kernel counts",
                "priced": f"priced by probe {self.what}", "source": "read from source"}[self.kind]

    @property
    def text(self) -> str:
        head = EVIDENCE_KINDS[self.kind]
        if self.kind == "priced":
            text = f"{head} {self.what}"
        elif self.kind == "cross_checked":
            text = f"{head} ({self.what}); {UNCOUNTABLE}"
        else:
            text = f"{head} ({self.what})"
        if self.source == "recorded":
            text += "; from the probes' recordings in data/probes/, not this machine now"
        elif self.source == "mixed":
            text += "; partly from the probes' recordings in data/probes/"
        return text


def measured(probe: str, source: str = "") -> Evidence:
    """Measured on the running kernel by ``probe`` ("vmsplice probe: a vmsplice'd page rewritten")."""
    return Evidence("measured", probe, source)


def cross_checked(counts: str, source: str = "") -> Evidence:
    """Modelled, and the model checked against the kernel's own counts (``counts``: which, by which probe)."""
    return Evidence("cross_checked", counts, source)


def priced(probe: str, source: str = "") -> Evidence:
    """Counts from the model, priced in time by ``probe``'s unit costs."""
    return Evidence("priced", probe, source)


def from_source(citation: str) -> Evidence:
    """Read from the kernel's source only (``citation``: file and function at a version)."""
    return Evidence("source", citation)


# ---------------------------------------------------------------- answers
@dataclass(frozen=True)
class Reproduce:
    """How to get the number again: the command, the commit, the kernel build and the machine it ran on."""

    command: str
    commit: str
    kernel: str
    machine: str


@dataclass(frozen=True)
class Answer:
    """One row of the answers table: the book's answer to one item of the thread.

    ``bullet`` is the item's label ("a".."g", "1"); ``question`` and ``chapter`` default to the thread's
    (:data:`fraglife.thread.BULLETS`). ``answer`` is one sentence. ``provisional`` marks a row a chapter
    has not written itself yet. :func:`record` fills ``build`` and ``reproduce``.
    """

    bullet: str
    answer: str
    verdict: str
    number: Number
    evidence: Evidence
    question: str = ""
    chapter: str = ""
    provisional: bool = False
    build: str | None = None
    reproduce: Reproduce | None = None

    def __post_init__(self):
        b = bullet_of(self.bullet)
        if not self.question:
            object.__setattr__(self, "question", b.question)
        if not self.chapter:
            object.__setattr__(self, "chapter", b.chapter)
        if self.chapter != b.chapter:
            raise ValueError(f"chapter = {self.chapter!r} is not allowed for ({b.label}): the thread maps it to "
                             f"{b.chapter}")
        if self.verdict not in VERDICTS:
            raise ValueError(f"verdict = {self.verdict!r} is not allowed: expected one of {', '.join(VERDICTS)}")
        check_sentence(self.answer)
        if not isinstance(self.number, Number) or not isinstance(self.evidence, Evidence):
            raise ValueError("answer: number must be a Number and evidence an Evidence")

    @property
    def label(self) -> str:
        return f"({self.bullet})"

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, d: Mapping) -> "Answer":
        d = dict(d)
        d["number"] = Number(**d["number"])
        d["evidence"] = Evidence(**d["evidence"])
        d["reproduce"] = Reproduce(**d["reproduce"]) if d.get("reproduce") else None
        return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})

    def row(self) -> dict:
        """The answer as the table shows it: every number as :func:`format_number` formats it."""
        return {"bullet": self.label, "question": self.question, "answer": self.answer,
                "verdict": self.verdict + (" (provisional)" if self.provisional else ""),
                "number": f"{self.number.what}: {self.number.text}" if self.number.what else self.number.text,
                "evidence": self.evidence.text, "chapter": self.chapter.split("_", 1)[0]}


def bullet_of(label: str) -> thread.Bullet:
    for b in thread.BULLETS:
        if b.label == str(label).strip("()"):
            return b
    raise ValueError(f"bullet = {label!r} is not allowed: expected one of {', '.join(LABELS)}")


def check_sentence(text: str) -> None:
    """One sentence: non-empty, one line, ending in a full stop, no second sentence after it."""
    t = (text or "").strip()
    if not t or "\n" in t or not t.endswith((".", "!", "?")) or re.search(r"[.!?]\s+[A-Z]", t[:-1]):
        raise ValueError(f"answer = {text!r} is not allowed: expected one sentence on one line, ending in a "
                         f"full stop")


# ---------------------------------------------------------------- recording and reading
def _number_of(chapter: str) -> str:
    return chapter.split("_", 1)[0]


def reproduce_for(chapter: str, params: Mapping | None = None) -> Reproduce:
    """How to run the chapter again as it ran now: non-default parameters named, the build's commit, kernel
    build and machine (this checkout's and machine's outside a build)."""
    cmd = f"fraglife run {_number_of(chapter)}"
    spec = getattr(params, "spec", None)
    if spec is not None:
        defaults = spec.defaults()
        cmd += "".join(f" -p {k} {v}" for k, v in params.items() if k in defaults and defaults[k] != v)
    b = build.current()
    if b is None:
        b = build.Build("", "", build.commit_info(), build.kernel_info(), build.machine_info())
    return Reproduce(cmd, b.commit_line, b.kernel_build, b.machine_line)


def record(chapter: str, answer: Answer, params: Mapping | None = None):
    """The notebook's answers cell: write the chapter's row to build/answers/NN.json with the build it ran in;
    returns the row as a one-line table. ``params``: the chapter's validated parameters (named in the
    command that reproduces it)."""
    if answer.chapter != chapter:
        raise ValueError(f"{chapter}: the answer is to ({answer.bullet}), which chapter {answer.chapter} treats")
    a = replace(answer, build=build.current_id(), reproduce=reproduce_for(chapter, params))
    data = {"chapter": chapter, "build": a.build, "answer": a.to_json()}
    # the latest answer of the chapter, and (in a build) the build's own, which a later run elsewhere
    # (a test into a temporary folder, one chapter run again) does not overwrite
    folders = [paths.build_dir(SUBDIR)] + ([paths.build_dir(SUBDIR, BY_BUILD, a.build)] if a.build else [])
    for folder in folders:
        paths.write_json(folder / f"{_number_of(chapter)}.json", data, indent=2)
    return table([a], [])


@dataclass(frozen=True)
class Missing:
    """A bullet without an answer in the build asked for, and why."""

    bullet: str
    chapter: str
    reason: str

    @property
    def what(self) -> str:
        """"chapter 03 has not recorded its answer (fraglife run 03)"."""
        return f"chapter {self.chapter} {self.reason}"

    def line(self) -> str:
        return f"({self.bullet}) {self.what}"


@dataclass(frozen=True)
class Table:
    """The answers of one build (or the latest of each, outside a build), in the thread's order."""

    build: str | None
    answers: tuple[Answer, ...]
    missing: tuple[Missing, ...] = field(default_factory=tuple)

    @property
    def complete(self) -> bool:
        return not self.missing

    def frame(self):
        return table(self.answers, self.missing)

    def to_json(self) -> dict:
        return {"build": self.build, "answers": [a.to_json() for a in self.answers],
                "rows": [a.row() for a in self.answers], "missing": [asdict(m) for m in self.missing]}


ANY = object()  #: load(build=ANY): the latest answer of every chapter, whatever build wrote it


def load(build_id: Any = ANY) -> Table:
    """The answers in build/answers/ (a build's own in build/answers/by-build/ID/), in the thread's order; those
    of other builds than ``build_id`` (None: recorded outside any build) and the chapters that recorded none are
    :attr:`Table.missing`."""
    folder = paths.BUILD / SUBDIR
    found, missing = [], []
    for b in thread.BULLETS:
        number = _number_of(b.chapter)
        path = folder / f"{number}.json"
        own = folder / BY_BUILD / str(build_id) / f"{number}.json"
        if build_id not in (ANY, None) and own.exists():
            path = own
        try:
            data = json.loads(path.read_text())
            a = Answer.from_json(data["answer"])
        except FileNotFoundError:
            missing.append(Missing(b.label, number, "has not recorded its answer (fraglife run)"))
            continue
        except (OSError, ValueError, KeyError, TypeError) as e:
            missing.append(Missing(b.label, number, f"recorded an unreadable answer in {path}: {e}"))
            continue
        if a.bullet != b.label:
            missing.append(Missing(b.label, number, f"recorded an answer to ({a.bullet}) in {path}, not to "
                                                    f"({b.label})"))
        elif build_id is not ANY and a.build != build_id:
            missing.append(Missing(b.label, number, f"answered in build {a.build or '(none)'}, not in this one "
                                                    f"(fraglife run: every chapter in one build)"))
        else:
            found.append(a)
    builds = {a.build for a in found}
    shown = build_id if build_id is not ANY else (builds.pop() if len(builds) == 1 else None)
    return Table(shown, tuple(found), tuple(missing))


def table(answers: Iterable[Answer], missing: Iterable[Missing] = ()):
    """The answers as the notebook shows them; a missing bullet is a row saying so."""
    import pandas as pd

    rows = {a.bullet: a.row() for a in answers}
    for m in missing:
        rows[m.bullet] = {"bullet": f"({m.bullet})", "question": bullet_of(m.bullet).question,
                          "answer": f"not answered: {m.what}", "verdict": "", "number": "",
                          "evidence": "", "chapter": m.chapter}
    order = [label for label in LABELS if label in rows]
    return pd.DataFrame([rows[k] for k in order],
                        columns=["bullet", "question", "answer", "verdict", "number", "evidence", "chapter"])


def markdown(t: Table, link: Callable[[str], str | None] = lambda chapter: None) -> str:
    """The answers as Markdown (the HTML book's first page): an item per bullet, its question, answer,
    verdict, number (as :func:`format_number` gives it), evidence and chapter; ``link(chapter id)`` gives the
    target of a chapter's name, or None for plain text."""
    def esc(s: str) -> str:
        return str(s).replace("<", "&lt;").replace(">", "&gt;").replace("*", "\\*").replace("\n", " ")

    chapters = {b.chapter.split("_", 1)[0]: b.chapter for b in thread.BULLETS}
    items = []
    for _, r in t.frame().iterrows():
        target = link(chapters.get(r["chapter"], ""))
        chapter = f"[chapter {r['chapter']}]({target})" if target else f"chapter {r['chapter']}"
        if r["verdict"]:
            items.append(f"- **{r['bullet']}** *{esc(r['question'])}:* {esc(r['answer'])} "
                         f"Verdict: **{esc(r['verdict'])}**. Number: **{esc(r['number'])}**. "
                         f"Evidence: {esc(r['evidence'])}. Read {chapter}.")
        else:
            items.append(f"- **{r['bullet']}** *{esc(r['question'])}:* {esc(r['answer'])}. See {chapter}.")
    return "\n".join(items)


#: The class (and, with the bullet, the id) of a chapter's answer row wherever it is rendered: the executed
#: notebook, the HTML book, the decks (tests/test_publish_offline.py finds it on each page's first screen).
ROW_CLASS = "fraglife-answer"
_ROW_STYLE = "border-left:4px solid #0072B2;padding:0.2em 0 0.2em 0.8em;margin:0.3em 0;line-height:1.4"


@dataclass(frozen=True)
class Row:
    """A chapter's answer as its notebook shows it, first thing after its parameters: the question, the
    answer sentence, the headline number with its range (as :func:`format_number` gives it), the verdict and
    the evidence, in one compact block (HTML with inline styles, so it reads the same in JupyterLab, the book
    and the decks; plain text elsewhere)."""

    answer: Answer

    @property
    def frame(self):
        return table([self.answer])

    def _repr_html_(self) -> str:
        import html

        a = self.answer

        def e(text: str) -> str:  # Markdown's `code` as <code>, the rest escaped
            return re.sub(r"`([^`]+)`", r"<code>\1</code>", html.escape(text))

        what = f" <span style=\"color:#555\">{e(a.number.what)}</span>" if a.number.what else ""
        verdict = a.verdict + (" (provisional)" if a.provisional else "")
        return (f'<div class="{ROW_CLASS}" id="{ROW_CLASS}-{e(a.bullet)}" data-bullet="{e(a.bullet)}" '
                f'style="{_ROW_STYLE}">'
                f'<div style="color:#555"><b>{e(a.label)}</b> {e(a.question)}</div>'
                f'<div class="{ROW_CLASS}-text"><b>{e(a.answer)}</b></div>'
                f'<div><span class="{ROW_CLASS}-number" style="font-weight:bold;white-space:nowrap">'
                f'{e(a.number.text)}</span>{what}</div>'
                f'<div style="color:#555">Verdict: <b>{e(verdict)}</b>. Evidence: {e(a.evidence.short)}.</div>'
                "</div>")

    def __repr__(self) -> str:
        r = self.answer.row()
        return "\n".join(f"{k}: {r[k]}" for k in ("bullet", "question", "answer", "number", "verdict", "evidence"))


def about_build(build_id: str | None) -> str:
    """One line on the build the answers come from: id, commit, kernel build, machine, and the unit costs
    every chapter of it priced with (value and range, as :func:`format_number` gives)."""
    if not build_id:
        return "Not from one build: each chapter's latest answer, whichever run recorded it."
    b = build.load(build_id)
    if b is None:
        return f"Build {build_id} (its record is not in build/builds/)."
    units = "; ".join(f"{UNIT_NAMES.get(n, n)} {format_number(u['value'], u['low'], u['high'], u['unit'])}"
                      for n, u in b.units.items())
    return (f"Build {b.id}: fraglife {b.commit_line}, kernel {b.kernel_build}, {b.machine_line}"
            + (f"; unit costs for every chapter ({b.units_source}): {units}" if units else "") + ".")


def text(t: Table, width: int = 100) -> str:
    """The answers as plain text (``fraglife answers``)."""
    import textwrap

    def wrap(head: str, body: str) -> list[str]:
        return textwrap.wrap(f"{head}{body}", width, subsequent_indent="      ", break_on_hyphens=False)

    lines = [f"answers of build {t.build}" if t.build else "answers (not all of one build)"
             if t.answers else "no answers recorded"]
    for a in t.answers:
        r = a.row()
        lines += ["", *wrap(f"{r['bullet']:<4}  ", f"{a.question}")]
        for key in ("answer", "verdict", "number", "evidence"):
            lines += wrap(f"      {key}: ", r[key])
        lines += wrap("      chapter: ", f"{a.chapter}; build {a.build or '(none)'}; {a.reproduce.command}"
                      if a.reproduce else a.chapter)
    if t.missing:
        lines += ["", "missing:"] + [f"  {m.line()}" for m in t.missing]
    return "\n".join(lines)


# ---------------------------------------------------------------- command line
def register(sub) -> None:
    p = sub.add_parser("answers", help="the answers table: one row per item of the thread, from build/answers/",
                       description="The book's answer to each item of the thread, (a)-(g) and the proposal (1), "
                                   "as the chapters recorded them (build/answers/NN.json), and which chapters "
                                   "have not recorded theirs.")
    p.add_argument("--json", action="store_true", help="print the table as JSON")
    p.add_argument("--build", default=None, help="only answers of this build id (default: build/build.json's; "
                                                 "'any': the latest of each chapter)")
    p.set_defaults(func=_cli)


def build_for(choice: str | None) -> Any:
    """The build a consumer reads answers of: ``choice``, else build/build.json's, else any."""
    if choice == "any":
        return ANY
    if choice:
        return choice
    b = build.load()
    return b.id if b is not None else ANY


def _cli(args) -> int:
    t = load(build_for(args.build))
    if args.json:
        print(json.dumps(t.to_json(), indent=2))
    else:
        print(text(t))
    return 0

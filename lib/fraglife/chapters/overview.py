"""Chapter 00 (book/00_overview.ipynb): the answers, the thread as a map, the book's parameters, its claims.

What is long stays off the first screens and the slides: the answers come in
parts that each fit a slide (:data:`ANSWER_PARTS`), the parameters as one row
per chapter (:attr:`Results.parameter_summary`; every parameter in the
appendix at the end), a sweep's table as its grid and metric
(:func:`sweep_table`).

The overview is about the book itself, so it is the one chapter module that
reads the registry (:mod:`fraglife.chapters`). It runs after every other
chapter of a build (:mod:`fraglife.runner`) and opens on the answers they
recorded (:mod:`fraglife.answers`). It has no headline (nothing to sweep), no
conclusion and no view module: its one chart is a sweep's
(:mod:`fraglife.views.sweep`).
"""

from __future__ import annotations

from functools import cached_property
from typing import Mapping

from .. import answers, build, thread
from ..claims import Claim
from ..params import Params


class Results:
    """The overview's tables, computed once."""

    def __init__(self, params: Mapping | None = None):
        self.P = Params.of(params or {})

    @cached_property
    def answers(self) -> answers.Table:
        """The answers the chapters of this build recorded (build/answers/); outside a build, those of the book's
        last build (build/build.json), else the last each chapter recorded."""
        return answers.load(build.current_id() or answers.build_for(None))

    @cached_property
    def answers_table(self):
        """One row per item of the thread: question, answer, verdict, number with its range, evidence, chapter."""
        return self.answers.frame()

    @cached_property
    def thread(self):
        """Each change the thread proposes and the chapter that treats it."""
        return thread.table()

    @cached_property
    def parameters(self):
        """Every chapter's parameters: default, what is allowed, meaning."""
        from . import parameter_table

        return parameter_table()

    @cached_property
    def parameter_summary(self):
        """One row per chapter: how many parameters it takes and their names (every one in :attr:`parameters`)."""
        import pandas as pd

        t = self.parameters
        rows = [{"chapter": c, "parameters": len(g), "names": ", ".join(g["parameter"])}
                for c, g in t.groupby("chapter", sort=True)]
        return pd.DataFrame(rows, columns=["chapter", "parameters", "names"])

    @cached_property
    def recordings(self) -> dict:
        """The kernel build (and machine) every recording in data/probes/ was measured on
        (:func:`fraglife.probes.recordings_kernel`)."""
        from .. import probes

        return probes.recordings_kernel()

    @cached_property
    def written(self) -> list:
        """The chapters whose notebook exists."""
        from . import CHAPTERS

        return [ch for ch in CHAPTERS if ch.notebook.exists()]


# Items of the answers per part: each part is one slide of the deck (a slide is 1280 x 760; an item takes four
# to six lines, and the first part shares its slide with the heading and its paragraph).
ANSWER_PARTS = (1, 2, 2, 2, 1)


def answers_markdown(R: Results, part: int | None = None) -> str:
    """Markdown: every item's answer (links to the chapters), then :func:`answers_note`; with ``part`` (0, 1, ...)
    only that part's items (:data:`ANSWER_PARTS`; the last part takes any rest, and the note)."""
    written = {ch.id for ch in R.written}
    items = answers.markdown(R.answers, lambda c: f"{c}.ipynb" if c in written else None).split("\n")
    if part is not None:
        if not 0 <= part < len(ANSWER_PARTS):
            raise ValueError(f"part {part}: the answers have parts 0 to {len(ANSWER_PARTS) - 1}")
        start = sum(ANSWER_PARTS[:part])
        last = part == len(ANSWER_PARTS) - 1
        items = items[start:] if last else items[start:start + ANSWER_PARTS[part]]
        if not last:
            return "\n".join(items)
    return "\n\n".join(filter(None, ("\n".join(items), answers_note(R))))


def answers_note(R: Results) -> str:
    """Markdown under the answers table: the build the numbers come from, and the chapters without an answer."""
    t = R.answers
    text = answers.about_build(t.build)
    if not t.answers:
        text += " No chapter has recorded its answer yet: run the book (`fraglife run`), then this chapter."
    elif t.missing:
        text += (" Not answered " + ("in this build" if build.current_id() else "yet") + ": chapter"
                 + ("s " if len(t.missing) > 1 else " ") + ", ".join(m.chapter for m in t.missing) + ".")
    return text


# The sweep run inline: chapter 01's owner against today's refs over loss and folio size.
SWEEP_METRIC = "owner_saving"
SWEEP_LABELS = {SWEEP_METRIC: "share of today's refcount atomics per MiB the owner saves"}


def recordings_markdown(R: Results) -> str:
    """One paragraph: the build the book's recordings were measured on, and when."""
    rk = R.recordings
    n = sum(len(v) for v in rk["probes"].values())
    builds = " and ".join(f"`{k}`" for k in rk["kernel"]) or "no kernel"
    return (f"**The recordings.** All {n} probe recordings this book ships (`data/probes/`, what a machine without "
            f"root or without the probes' files gets) were measured on Linux {builds}, "
            f"{', '.join(rk['machine'])} ({', '.join(rk['cpu_model'])}), between {rk['first']} and {rk['last']}.")


def sweep_table(table, grid, metric: str = SWEEP_METRIC):
    """A sweep's table as a reader needs it: each point's grid values, the metric and its error (the whole table,
    every parameter and result of every point, is in the sweep's folder)."""
    cols = ["point", *grid, metric, "error"]
    return table[[c for c in cols if c in table]]


def _every_change_has_a_chapter(R: Results):
    mapped = [b.chapter for b in thread.BULLETS]
    return len(mapped) == 8 and len(set(mapped)) == 8, {"changes": len(mapped), "chapters": len(set(mapped))}


def _chapters_take_their_defaults(R: Results):
    ok = all(ch.spec.validate(ch.spec.defaults()) is not None for ch in R.written)
    return ok, {"written": len(R.written)}


def _recordings_are_one_build(R: Results):
    rk = R.recordings
    return len(rk["kernel"]) == 1, {"builds": rk["kernel"], "probes": sum(len(v) for v in rk["probes"].values())}


# The talk's claims table shows none of these: they are about the book, not the argument.
TALK_CLAIMS = ()

CLAIMS = (
    Claim("every_change_has_a_chapter",
          "Each of the seven changes and the owner proposal is treated by exactly one chapter.",
          "holds", _every_change_has_a_chapter),
    Claim("chapters_take_their_defaults",
          "Every written chapter's declared defaults pass its own parameter checks.",
          "holds", _chapters_take_their_defaults),
    Claim("recordings_are_one_build",
          "Every recording the book ships was measured on one kernel build.",
          "holds", _recordings_are_one_build),
)

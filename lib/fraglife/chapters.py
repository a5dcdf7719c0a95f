"""The book's chapters: id, title, notebook and parameter spec, in one place.

The runner, the CLI, sweeps and tests all read this table; a chapter is added
here and in ``book/`` and nowhere else.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .params import Param, ParamError, ParamSpec
from .paths import BOOK

KiB = 1024
MiB = 1024 * KiB


@dataclass(frozen=True)
class Chapter:
    id: str  # "01_refcount_removal"
    title: str
    summary: str
    spec: ParamSpec
    headline: str | None = None  # "module:function" giving the chapter's result as a tidy record

    @property
    def number(self) -> str:
        return self.id.split("_", 1)[0]

    @property
    def notebook(self) -> Path:
        return BOOK / f"{self.id}.ipynb"


def _spec(chapter_id: str, *params: Param) -> ParamSpec:
    return ParamSpec(chapter_id, params)


# Parameters shared by chapters that replay workloads; one definition each.
WORKLOAD_PARAMS = (
    Param("workload", str, "tcp_send", "workload generator (see fraglife.model.workloads)",
          choices=("tcp_send", "tcp_gso", "rx_gro", "multipage_send")),
    Param("bytes_sent", int, 16 * MiB, "payload bytes the workload moves", lo=64 * KiB, hi=1024 * MiB),
    Param("mss", int, 1448, "TCP maximum segment size in bytes", lo=536, hi=9000),
    Param("frag_size", int, 4 * KiB, "bytes one skb frag describes", lo=512, hi=2 * MiB),
    Param("loss_rate", float, 0.01, "probability that a segment is lost on the wire", lo=0.0, hi=0.2),
    Param("cpus", int, 2, "CPUs the workload's events are spread over", lo=1, hi=64),
    Param("seed", int, 1, "random seed; same seed, same trace", lo=0, hi=2**31 - 1),
)

CHAPTERS: tuple[Chapter, ...] = (
    Chapter(
        "00_overview",
        "Overview: the thread as a map",
        "Each bullet of the thread, the chapter that treats it, how to read, tweak, run and present the book.",
        _spec("00_overview"),
    ),
    Chapter(
        "01_refcount_removal",
        "Refcount removal: who takes page refs today",
        "Page refs per workload and event type; per-page vs owner policies; the multi-page-frag use-after-free.",
        _spec(
            "01_refcount_removal",
            *WORKLOAD_PARAMS,
            Param("folio_pages", int, 1, "pages per folio of the sent buffers (1 = order-0 pages)",
                  lo=1, hi=512, power_of_two=True),
        ),
        headline="fraglife.model.refcount:headline",
    ),
)


def headline_function(chapter: Chapter):
    """The callable behind ``chapter.headline`` (chapter parameters in, one tidy dict out)."""
    if chapter.headline is None:
        raise ParamError(f"chapter {chapter.id} has no headline result to compute")
    import importlib

    module, _, func = chapter.headline.partition(":")
    return getattr(importlib.import_module(module), func)


def parameter_table():
    """Every chapter's parameters: name, default, what is allowed, meaning."""
    import pandas as pd

    rows = [
        {"chapter": ch.id, "parameter": p.name, "default": repr(p.default), "allowed": p.allowed(), "meaning": p.help}
        for ch in CHAPTERS
        for p in ch.spec
    ]
    return pd.DataFrame(rows, columns=["chapter", "parameter", "default", "allowed", "meaning"])


def get(name: str) -> Chapter:
    """A chapter by id ("01_refcount_removal"), number ("01", "1") or notebook file name."""
    key = Path(name).stem
    for ch in CHAPTERS:
        if key in (ch.id, ch.number) or (key.isdigit() and int(key) == int(ch.number)):
            return ch
    known = ", ".join(ch.id for ch in CHAPTERS)
    raise ParamError(f"unknown chapter {name!r}; known: {known}")


def select(names: list[str] | None) -> list[Chapter]:
    return [get(n) for n in names] if names else list(CHAPTERS)

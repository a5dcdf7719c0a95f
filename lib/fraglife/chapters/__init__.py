"""The book's chapters: the registry, and the contract every chapter module follows.

The registry
------------
:data:`CHAPTERS` lists each chapter once: id, title, summary and parameter
spec. The runner, the CLI, sweeps, the publisher and the tests all read it; a
chapter is added here, in ``book/`` and in its two modules, nowhere else.

One chapter, three files, one name
----------------------------------
``book/NN_name.ipynb`` is narrated by

* ``fraglife/chapters/name.py``: its analyses (DataFrames and records), its
  headline, its claims and its conclusion. Imports the model, probes,
  ``params``, ``claims`` and the chapters' shared modules below; never views,
  sweep, publish, runner or the CLI, not another chapter module, and not this
  registry (which finds the module by name: :meth:`Chapter.module`).
* ``fraglife/views/name.py``: its charts and panel views. They take
  DataFrames and labels from the chapter module, and the spec through the
  validated parameters (``P.spec``); a view never imports a chapter's analysis
  module, the model or this registry.

What chapters share is in one package that is not a chapter, ``chapters/kit/``:
``kit`` itself (parameter groups, probes live or recorded from ``measurements``,
unit costs, sentences, one-axis grids) and ``kit/compare.py`` (the model against
the running kernel, one row format for every chapter). Every other module here
is a chapter; what two chapters need is in the kit or in the model.

The chapter's first code cell after ``parameters`` imports both under short
names, so every chart's code is one name away::

    from fraglife import chapters, claims
    from fraglife.chapters import refcount_removal as ch
    from fraglife.views import plots, widgets, refcount_removal as view

    P = chapters.validate("01_refcount_removal", globals())
    R = ch.Results(P)

Then each cell is a line or two: ``view.chart_policies(R.policies, P.workload, ch.POLICY_ORDER)``.

The chapter-module contract
---------------------------
A module ``chapters/name.py`` provides:

``Results(params)``
    Takes the chapter's validated parameters (a :class:`~fraglife.params.Params`
    or a plain mapping with every parameter) and exposes each analysis as a
    :func:`functools.cached_property` returning a DataFrame or a record. The
    notebook, the claims, the conclusion and sweeps share one instance, so
    each analysis runs once however many read it.
``headline(**params) -> dict``
    The chapter's result as one tidy record of plain numbers (what a sweep
    tabulates per point): ``Results(params).headline``, a cached property, so
    a library-mode sweep point computes the headline and the claims from one
    ``Results``. Optional: a chapter without one cannot be swept in library
    mode.
``CLAIMS``
    A tuple of :class:`fraglife.claims.Claim` ``(name, statement, expected,
    check)``; ``check(results) -> (bool, evidence_dict)`` reads a ``Results``
    and says whether the statement held, with the numbers that show it.
    ``expected`` is ``"holds"`` or ``"fails"`` (a litmus test's ``Result:
    Never``). A claim is stated for every allowed parameter value, not only
    the defaults: ``tests/test_claims.py`` evaluates every chapter's claims
    over its parameter space (hypothesis, library mode), and sweeps report
    the per-point ones as columns: a claim whose check needs more than the
    point's own results (other workloads or settings, a grid of its own, the
    probes' transfers) is declared ``per_point=False`` and left to the
    chapter run. The notebook's claims cell is one line,
    ``claims.check("NN_name", ch.CLAIMS, R)`` (writes ``build/claims/NN.json``,
    fails the run on drift).
``answer(results) -> fraglife.answers.Answer``
    The chapter's row of the answers table: its item of the thread answered in one sentence, a
    verdict, a headline number with its range (``answers.Number.span(R.units, price, unit)``
    prices at the ends of the build's measured units) and its evidence, all from ``results``. The
    notebook's answers cell, before its claims cell, is one line,
    ``answering.record("NN_name", ch, R)`` (writes ``build/answers/NN.json`` with the build).
``conclusion(results) -> str``
    The chapter's closing prose as Markdown, quoting the checked numbers of
    ``results`` (the notebook shows ``Markdown(ch.conclusion(R))``).
    Optional for chapters that conclude nothing (the overview).
``panel_data(params, **controls) -> DataFrame``
    What the chapter's control panel shows for one setting of its controls;
    the panel's rendering is ``views/name.py``'s business: its
    ``make_panel(ch, P, R)`` builds the panel from this module, the parameters
    and the results (the notebook's panel cell is that one call), and
    ``fraglife bench`` times the panel's re-render through it.
``SMALL`` (optional)
    ``{parameter: upper bound}`` for size-like parameters, so the library-mode
    claims test explores the whole space with small, fast inputs.
``TALK_CLAIMS`` (optional)
    Names of the claims that carry the argument in the conference talk
    (``fraglife talk``, which shows them with the verdicts of the last run);
    all of ``CLAIMS`` when absent, none when empty.

The notebook marks the talk's slides with cell tags: a cell tagged ``talk``
brings the (sub-)slide it sits on into the talk's main part, ``talk-backup``
after its end (:mod:`fraglife.publish.talk`).

Chapter 00 (the overview) has ``chapters/overview.py`` for its claims and
tables, and no view module: its one chart is a sweep's (``views/sweep.py``).
"""

from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, Callable, Mapping

from ..params import Param, ParamError, Params, ParamSpec
from ..paths import BOOK
from .kit import KERNEL_PARAM, MEASUREMENTS_PARAM, REPLAY_PARAMS, SENDER_PARAMS, WORKLOAD_PARAMS, pick

KiB = 1024
MiB = 1024 * KiB


@dataclass(frozen=True)
class Chapter:
    id: str  # "01_refcount_removal"
    title: str
    summary: str
    spec: ParamSpec

    @property
    def number(self) -> str:
        return self.id.split("_", 1)[0]

    @property
    def name(self) -> str:
        """The chapter's module name: "refcount_removal"."""
        return self.id.split("_", 1)[1]

    @property
    def notebook(self) -> Path:
        return BOOK / f"{self.id}.ipynb"

    @property
    def module_name(self) -> str:
        return f"{__name__}.{self.name}"

    @property
    def view_name(self) -> str:
        """Where the chapter's charts live (imported by notebooks and tests, never from here)."""
        return f"{__package__.rpartition('.')[0]}.views.{self.name}"

    def module(self) -> ModuleType | None:
        """The chapter's analysis module (imported on first use), or None if it has none."""
        if importlib.util.find_spec(self.module_name) is None:
            return None
        return importlib.import_module(self.module_name)

    @property
    def headline(self) -> Callable[..., dict] | None:
        """The chapter's ``headline(**params) -> dict``, or None."""
        module = self.module()
        return getattr(module, "headline", None) if module else None

    @property
    def claims(self) -> tuple:
        """The chapter's ``CLAIMS`` (empty if it declares none)."""
        module = self.module()
        return tuple(getattr(module, "CLAIMS", ())) if module else ()


def _chapter(chapter_id: str, title: str, summary: str, *params: Param) -> Chapter:
    """A registry entry: the chapter and its parameter spec, in the order its parameters cell lists them."""
    return Chapter(chapter_id, title, summary, ParamSpec(chapter_id, params))


CHAPTERS: tuple[Chapter, ...] = (
    _chapter(
        "00_overview",
        "Overview: the thread as a map",
        "Each bullet of the thread, the chapter that treats it, how to read, tweak, run and present the book.",
    ),
    _chapter(
        "01_refcount_removal",
        "Refcount removal: who takes page refs today",
        "Refs on frag memory per workload, event and refcount kind, in count and time; the model against this "
        "kernel's tracepoints; per-page vs owner policies; the multi-folio-frag use-after-free.",
        *WORKLOAD_PARAMS,
        *REPLAY_PARAMS,
        KERNEL_PARAM,
        MEASUREMENTS_PARAM,
    ),
    _chapter(
        "02_slim_page",
        "Slim struct page: memdescs, separate descriptors and the price of indirection",
        "The memmap today vs the memdesc plan on this machine's census and on a chosen machine; the extra "
        "dependent load to reach a frag's metadata, priced at this machine's load latency.",
        Param("machine_gib", int, 256, "RAM of the machine the memmap is computed for (GiB)", lo=16, hi=4096),
        Param("mix", str, "this_machine", "page-type mix: this machine's census, its pages in use, or all "
              "anon, page cache or page_pool", choices=("this_machine", "in_use", "anon", "page_cache",
                                                         "page_pool")),
        Param("folio_size", str, "measured", "folio size of anon and file memory and of the sent buffer: "
              "as measured here, or one size", choices=("measured", "4k", "16k", "64k", "2m")),
        Param("working_set_mib", int, 1024, "memory whose pages are being sent (MiB); sets the metadata "
              "working set", lo=16, hi=65536),
        Param("frag_rule", str, "splice", "one frag per page (MSG_SPLICE_PAGES) or per folio run "
              "(MSG_ZEROCOPY)", choices=("splice", "zerocopy")),
        Param("frag_kind", str, "folio", "what frags point at: folio pages, page_pool pages, devmem net_iovs",
              choices=("folio", "page_pool", "net_iov")),
        Param("seed", int, 1, "random seed of page and descriptor placement; same seed, same walk",
              lo=0, hi=2**31 - 1),
        MEASUREMENTS_PARAM,
        KERNEL_PARAM,
    ),
    _chapter(
        "03_pinning",
        "Pinning: MSG_ZEROCOPY must pin, not ref",
        "What a FOLL_PIN pin is and when folio_maybe_dma_pinned() is wrong; which syscalls pin on this kernel; "
        "fork and copy-on-write with references and with pins; what switching MSG_ZEROCOPY to pins costs per send.",
        Param("send_size", int, 64 * KiB, "bytes one sendmsg() hands over", lo=4 * KiB, hi=16 * MiB),
        Param("folio_pages", int, 1, "pages per folio of the buffers sent (1: order 0; 512: a PMD-mapped THP)",
              lo=1, hi=512, power_of_two=True),
        Param("fork_rate", float, 1.0, "forks of the sending process per 1000 sends", lo=0.0, hi=1000.0),
        Param("refs_per_page", int, 0, "FOLL_GET references other holders keep on each page (vmsplice, "
              "direct I/O, today's MSG_ZEROCOPY elsewhere)", lo=0, hi=4096),
        Param("inflight", int, 8, "sends in flight before the first completes", lo=1, hi=64),
        *SENDER_PARAMS,
        MEASUREMENTS_PARAM,
        KERNEL_PARAM,
    ),
    _chapter(
        "04_batching",
        "Batching: one lookup for the whole iterator?",
        "Page-table walks, gup-fast and the slow path, faults: per-skb lookups today against one batched lookup "
        "of the iterator and faulting everything up front, in time per MiB on this machine's costs.",
        Param("iov_count", int, 16, "iovecs per sendmsg()", lo=1, hi=1024),
        Param("iov_size", int, 64 * KiB, "bytes per iovec (iov_count x iov_size at most 1 GiB)", lo=64,
              hi=16 * MiB),
        Param("iov_layout", str, "scattered", "contiguous: iovecs back to back; scattered: each on pages of "
              "its own", choices=("scattered", "contiguous")),
        Param("resident_fraction", float, 1.0, "share of the iterator's pages mapped when it is sent (the "
              "rest never written: a read maps the zero page)", lo=0.0, hi=1.0),
        Param("thp_share", float, 0.0, "share of 2 MiB regions backed by PMD-mapped THPs", lo=0.0, hi=1.0),
        Param("accept_fraction", float, 1.0, "share of the message the socket takes per sendmsg() (the "
              "application sends the rest again)", lo=0.05, hi=1.0),
        *pick(SENDER_PARAMS, seed="random seed; same seed, same pages mapped"),
        MEASUREMENTS_PARAM,
        KERNEL_PARAM,
    ),
    _chapter(
        "05_splice_destructors",
        "Splice and vmsplice: pipe buffers come with destructors",
        "What splice, vmsplice and sendfile take and release per page today and when the pipe buffers' own "
        "destructors release them after the network; the pipe ring over time; the vmsplice hazard live; the "
        "model against this kernel's splice path.",
        Param("source", str, "splice", "what fills the pipe: splice from a file, vmsplice from user memory, "
              "sendfile (the task's own 16-slot pipe)", choices=("splice", "vmsplice", "sendfile")),
        Param("pipe_kib", int, 64, "the pipe's size in KiB (F_SETPIPE_SZ; 64 is PIPE_DEF_BUFFERS pages, 1024 "
              "pipe-max-size)", lo=4, hi=1024, power_of_two=True),
        Param("splice_kib", int, 256, "bytes one splice() call moves, KiB (the send size)", lo=4, hi=16384,
              power_of_two=True),
        Param("completion_us", float, 50.0, "how long the network holds data after its last byte left: the "
              "ACK and the TX completion, us", lo=0.0, hi=10_000.0),
        Param("line_gbit", int, 100, "line rate in Gbit/s", lo=1, hi=1600),
        *pick(WORKLOAD_PARAMS, "bytes_sent", "mss", "loss_rate", "cpus", "seed"),
        KERNEL_PARAM,
        MEASUREMENTS_PARAM,
    ),
    _chapter(
        "06_bio_vec",
        "bio_vec as physical address + length: frags, skbs and refs on real memory",
        "Today's frag rules vs phys+len coalescing on measured buffer layouts (anonymous, THP, page cache, "
        "fragmented); skbs, GSO segments and refs; entry layouts, address arithmetic, and the lifetime hazard.",
        Param("send_kib", int, 1024, "bytes one send moves (KiB)", lo=64, hi=16384, power_of_two=True),
        Param("source", str, "anon", "where the buffer's pages come from: anonymous memory or a file's page "
              "cache", choices=("anon", "page_cache")),
        Param("thp_share", float, 0.0, "share of an anonymous buffer backed by THP (anon only)", lo=0.0, hi=1.0),
        Param("fragmentation", float, 0.0, "share of an anonymous buffer's 4 KiB pages allocated after the "
              "process fragmented free memory (anon only)", lo=0.0, hi=1.0),
        Param("max_frags", int, 17, "frags per skb (net.core.max_skb_frags; CONFIG_MAX_SKB_FRAGS is "
              "17..45)", lo=4, hi=45),
        Param("gso_max_kib", int, 64, "the device's GSO limit in KiB: 64 is GSO_LEGACY_MAX_SIZE, BIG TCP "
              "goes to 512 (GSO_MAX_SIZE, 8 x 65535 bytes)", lo=64, hi=512, power_of_two=True),
        *pick(WORKLOAD_PARAMS, "mss"),
        MEASUREMENTS_PARAM,
        KERNEL_PARAM,
    ),
    _chapter(
        "07_kmalloc_sends",
        "kmalloc'd data in MSG_SPLICE_PAGES sends: copy, or a destructor",
        "Why slab memory cannot be spliced today and what in-tree senders do instead; TCP's copy path checked "
        "against the running kernel's counts; copying (by TCP, into a page_frag, into whole pages) or sending the "
        "kmalloc'd memory with a destructor on its owner: CPU per message, memory held in flight, the crossover "
        "size over latency, and where the real senders fall.",
        Param("mix", str, "fixed", "message sizes: msg_bytes only, the in-tree senders' pieces, or every power "
              "of two from 64 B to 64 KiB (equal weights)", choices=("fixed", "headers", "log_uniform")),
        Param("msg_bytes", int, 2048, "bytes per message when mix is fixed", lo=16, hi=1 << 20),
        Param("rate_gbit", float, 10.0, "the service's send rate, Gbit/s", lo=1.0, hi=400.0),
        Param("latency_us", float, 50.0, "how long the network holds a message: send to ACK and TX completion, "
              "us", lo=1.0, hi=100_000.0),
        Param("bytes_sent", int, 4 * MiB, "payload bytes each replay moves", lo=256 * KiB, hi=256 * MiB),
        *pick(WORKLOAD_PARAMS, "mss", "loss_rate", "cpus", "seed"),
        KERNEL_PARAM,
        MEASUREMENTS_PARAM,
    ),
    _chapter(
        "08_unified_owner",
        "The unified owner: one lifetime object for every kind of fragment memory, checked exhaustively",
        "The owner defined operation by operation; every interleaving of a few skb operations explored "
        "(numba, with a Python twin) under today's rules, the owner and the other designs; every workload of "
        "the book under today's rules and the owner, in count and time; where the design costs.",
        Param("memory", str, "user+pipe", "the explorer's two buffers: user memory and a pipe, or two of one "
              "kind", choices=("user+pipe", "user", "pipe", "pool", "devmem", "kmalloc")),
        Param("ops", int, 4, "explorer: operations started besides frees and the holders' release",
              lo=1, hi=5),
        Param("explore_cpus", int, 2, "explorer: CPUs, i.e. operations in flight at once", lo=1, hi=3),
        Param("skbs", int, 3, "explorer: skbs alive at once", lo=1, hi=4),
        Param("frags", int, 2, "explorer: frags per skb", lo=1, hi=3),
        *pick(WORKLOAD_PARAMS, drop=("workload",)),
        *REPLAY_PARAMS,
        MEASUREMENTS_PARAM,
        KERNEL_PARAM,
    ),
)


def get(name: str | Chapter) -> Chapter:
    """A chapter by id ("01_refcount_removal"), number ("01", "1") or notebook file name."""
    if isinstance(name, Chapter):
        return name
    key = Path(name).stem
    for ch in CHAPTERS:
        if key in (ch.id, ch.number) or (key.isdigit() and int(key) == int(ch.number)):
            return ch
    known = ", ".join(ch.id for ch in CHAPTERS)
    raise ParamError(f"unknown chapter {name!r}; known: {known}")


def select(names: list[str] | None) -> list[Chapter]:
    return [get(n) for n in names] if names else list(CHAPTERS)


def validate(chapter: str, values: Mapping[str, Any]) -> Params:
    """Validate a chapter's parameters cell (pass ``globals()``); one ParamError line if a value is bad."""
    return get(chapter).spec.validate(values)


def parameter_table():
    """Every chapter's parameters: name, default, what is allowed, meaning."""
    import pandas as pd

    rows = [
        {"chapter": ch.id, "parameter": p.name, "default": repr(p.default), "allowed": p.allowed(), "meaning": p.help}
        for ch in CHAPTERS
        for p in ch.spec
    ]
    return pd.DataFrame(rows, columns=["chapter", "parameter", "default", "allowed", "meaning"])


def catalogue(names: list[str] | None = None) -> list[dict]:
    """Every claim of the chosen chapters: name, statement, expected, and the verdict last observed.

    The last observed verdict comes from ``build/claims/NN.json`` (written by the
    chapter's last run); "not run" when there is none or it lacks the claim.
    """
    from .. import claims

    rows = []
    for ch in select(names):
        last = claims.last_run(ch.id)
        for c in ch.claims:
            seen = last.get(c.name)
            rows.append({"chapter": ch.id, "claim": c.name, "statement": c.statement, "expected": c.expected,
                         "observed": seen["observed"] if seen else "not run",
                         "ok": seen.get("ok") if seen else None})
    return rows

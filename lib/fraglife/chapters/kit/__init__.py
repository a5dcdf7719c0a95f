"""The chapters' shared parts: parameter groups, probes, unit costs, sentences and one-axis grids.

Every chapter module takes its plumbing from here, so each piece exists once:

* **parameter groups** the registry (:mod:`fraglife.chapters`) builds the specs from:
  :data:`WORKLOAD_PARAMS` (a workload generator's settings), :data:`REPLAY_PARAMS` (what a replay
  of the book's engine takes besides), :data:`SENDER_PARAMS` (a sender moving bytes at a line
  rate), :data:`MEASUREMENTS_PARAM`; :func:`pick` takes part of a group;
* **probes**, live or recorded as the chapter's ``measurements`` parameter says:
  :func:`probe_mode`, :func:`probe`, :func:`probe_set`; as ``Results`` properties
  :func:`probe_result`, or :class:`Probed` and :func:`probed` for a fixed set of probes.
  "recorded" reads the recordings in ``data/probes/`` and nothing else; "live" is the probes'
  own default (measured where the machine allows, else the recording;
  ``FRAGLIFE_PROBES=recorded`` makes it the recording);
* **unit costs** for a ``measurements`` value: :func:`unit_costs` (the ``atomics`` probe, plus
  the extras a chapter asks for: GUP and pins, fork and copy-on-write, faulting ahead, releases
  on another CPU, a 64 KiB memcpy, cited allocation costs), :func:`with_release_units`, and
  :func:`measured` (one word for a headline: were they measured now or recorded);
* **sentences**: :func:`pct` (a share in percent), :func:`plural`, :func:`words` (a list in
  words);
* **tables**: :func:`unit_rows` (the unit costs a chapter shows);
* **one-axis grids**: :func:`grid` and :func:`rows_over` (a table per value, stacked), and
  those that include the run's own value: :func:`with_run` and the ``Results`` property
  :func:`run_grid`.

The kit is not a chapter module (the registry lists none of it), and it imports none: chapter
modules import the kit, the model and the probes, never each other.
"""

from __future__ import annotations

import dataclasses
from functools import cached_property
from typing import Any, Callable, Iterable, Mapping

import pandas as pd

from ... import build, cited, probes
from ...model import costs, trace as T
from ...model.workloads import WORKLOADS
from ...params import Param, ParamError, Params

KiB = 1 << 10
MiB = 1 << 20

# ---------------------------------------------------------------- parameter groups
#: A workload generator's settings (chapters 01, 05, 07, 08; the last three take part of them).
WORKLOAD_PARAMS = (
    Param("workload", str, "tcp_send", "workload generator (see fraglife.model.workloads)",
          choices=tuple(WORKLOADS)),
    Param("bytes_sent", int, 16 * MiB, "payload bytes the workload moves", lo=64 * KiB, hi=1024 * MiB),
    Param("mss", int, 1448, "TCP maximum segment size in bytes", lo=536, hi=9000),
    Param("send_size", int, 64 * KiB, "bytes one sendmsg() hands over", lo=4 * KiB, hi=16 * MiB),
    Param("loss_rate", float, 0.01, "share of segments lost on the wire", lo=0.0, hi=0.2),
    Param("loss_burst", float, 1.0, "mean length of a run of lost segments (1: isolated losses)", lo=1.0, hi=64.0),
    Param("cpus", int, 2, "CPUs the workload's events are spread over", lo=1, hi=64),
    Param("seed", int, 1, "random seed; same seed, same trace", lo=0, hi=2**31 - 1),
)
#: What a replay of the book's engine takes besides the workload's own settings (chapters 01 and 08).
REPLAY_PARAMS = (
    Param("folio_pages", int, 1, "pages per folio of the memory sent, and of page_pool pages (1: order 0)",
          lo=1, hi=512, power_of_two=True),
    Param("frag_size", int, 16 * KiB, "physrange_send only (the thread's future): bytes per frag",
          lo=512, hi=2 * MiB),
    Param("rx_buf", int, 2048, "bytes per receive buffer in a page_pool page", lo=512, hi=64 * KiB),
    Param("rtt_us", float, 25.0, "round trip time in microseconds", lo=1.0, hi=100_000.0),
    Param("txc_us", float, 16.0, "delay from an skb's last byte on the wire to its TX completion, us",
          lo=0.0, hi=10_000.0),
    Param("line_gbit", int, 100, "line rate in Gbit/s (wire time of an skb, and the core share)",
          lo=1, hi=1600),
)
#: A sender moving bytes at a line rate (chapters 03 and 04).
SENDER_PARAMS = (
    Param("bytes_sent", int, 64 * MiB, "payload bytes the sender moves", lo=1 * MiB, hi=1024 * MiB),
    Param("line_gbit", int, 100, "line rate in Gbit/s (the share of a core)", lo=1, hi=1600),
    Param("seed", int, 1, "random seed; same seed, same run", lo=0, hi=2**31 - 1),
)
#: Which kernel's rules the model follows: the one the measurements come from (the running kernel when
#: measured live, the recording's when recorded), or 6.12 LTS (model/kernels.py lists what differs).
KERNEL_PARAM = Param("kernel", str, "running", "whose rules the model follows: running (the kernel the "
                     "measurements come from: this machine's, or the recording's) or 6.12 (the LTS)",
                     choices=("running", "6.12"))
#: Whether a chapter measures this machine now (falling back to the recording) or reads the recording.
MEASUREMENTS_PARAM = Param("measurements", str, "live", "live: measure this machine where it allows (else the "
                           "recording); recorded: the recordings in data/probes/", choices=("live", "recorded"))


def pick(group: Iterable[Param], *names: str, drop: Iterable[str] = (), **helps: str) -> tuple[Param, ...]:
    """The parameters of ``group`` named in ``names`` (all if none), less those in ``drop``, in the group's
    order; ``helps`` gives one of them another help text (``seed="..."``)."""
    group = tuple(group)
    known = {p.name for p in group}
    for n in (*names, *drop, *helps):
        if n not in known:
            raise ValueError(f"pick: {n!r} is not in the group: expected one of {', '.join(sorted(known))}")
    out = []
    for p in group:
        if (names and p.name not in names) or p.name in drop:
            continue
        out.append(dataclasses.replace(p, help=helps[p.name]) if p.name in helps else p)
    return tuple(out)


# ---------------------------------------------------------------- probes
def probe_mode(measurements: str) -> str | None:
    """The probes' mode for a chapter's ``measurements`` value: "recorded" reads the recording only;
    "live" is None, the probes' own default (``FRAGLIFE_PROBES``, else "auto": live where the machine
    allows, else the recording). Any other value: one ParamError line."""
    MEASUREMENTS_PARAM.check(measurements)
    return None if measurements == "live" else "recorded"


def probe(name: str, measurements: str, *, quick: bool = True) -> probes.ProbeResult:
    """Probe ``name`` as the chapter's ``measurements`` parameter says (cached per process; inside a build, a
    live result is measured once for all its chapters: :func:`fraglife.build.probe`)."""
    return build.probe(name, mode=probe_mode(measurements), quick=quick)


def probe_set(measurements: str, names: Mapping[str, bool]) -> dict[str, probes.ProbeResult]:
    """Several probes at once: ``names`` maps each to whether its quick run will do."""
    return {n: probe(n, measurements, quick=quick) for n, quick in names.items()}


def probe_result(name: str, *, quick: bool = True) -> cached_property:
    """A ``Results`` property: probe ``name`` as the run's ``measurements`` parameter says."""
    def get(self):
        return probe(name, self.P.measurements, quick=quick)

    get.__doc__ = f"The {name} probe, live or recorded as the run's measurements parameter says."
    return cached_property(get)


class Probed:
    """A chapter's ``Results`` over a fixed set of probes: the class's ``PROBES`` (name -> whether the quick run
    will do), read as the ``measurements`` parameter says, or the results passed as ``probe_data``."""

    PROBES: Mapping[str, bool] = {}

    def __init__(self, params: Mapping, probe_data: Mapping | None = None):
        self.P = Params.of(params)
        self.probes = dict(probe_data) if probe_data is not None else probe_set(self.P.measurements, self.PROBES)

    @cached_property
    def sources(self) -> pd.DataFrame:
        """Each probe: live or recorded, and its one-line note."""
        return probes.notes(self.probes)

    @cached_property
    def measured(self) -> str:
        """"live", "recorded" or "mixed": where this run's probe results come from (a headline's ``probes``)."""
        return probes.combined_source(self.probes)


def probed(name: str) -> cached_property:
    """A :class:`Probed` property: probe ``name``'s result."""
    def get(self):
        return self.probes[name]

    get.__doc__ = f"The {name} probe's result."
    return cached_property(get)


# ---------------------------------------------------------------- unit costs
#: What :func:`unit_costs` adds to the ``atomics`` probe's units, on request, in this order.
UNIT_EXTRAS = {
    "gup": "GUP, pins and unpins, the slow path and zero-page faults (gup probe), and GUP's measured price on the "
           "MSG_ZEROCOPY path (costs.gup_price: the zcsend probe's recorded fit)",
    "cow": "copies at fork and write-protect faults (cow probe; with gup)",
    "faults": "faulting a page in up front, MADV_POPULATE_WRITE (faults probe)",
    "release": "unpins run on the completion's CPU (derived; with gup)",
    "memcpy": "a 64 KiB memcpy (memcpy probe)",
    "alloc": "a page allocation, a slab object alone and with many held (cited)",
}


def unit_costs(measurements: str, *extras: str) -> costs.UnitCosts:
    """This machine's unit costs: the ``atomics`` probe's, plus ``extras`` (keys of :data:`UNIT_EXTRAS`),
    every probe live or recorded as ``measurements`` says. Inside a build the ``atomics`` units are the
    build's, measured once for all its chapters, each with its range (:func:`fraglife.build.unit_costs`)."""
    bad = [e for e in extras if e not in UNIT_EXTRAS]
    if bad:
        raise ParamError(f"unit cost extras {bad} are not allowed: expected some of {', '.join(UNIT_EXTRAS)}")
    if {"cow", "release"} & set(extras) and "gup" not in extras:
        raise ParamError("unit cost extras 'cow' and 'release' build on 'gup': ask for it too")
    # In a build, the atomics probe was measured once for every chapter (fraglife.build); else now.
    units = build.unit_costs(measurements) or costs.UnitCosts.from_atomics(probe("atomics", measurements))
    if "gup" in extras:
        gup = probe("gup", measurements)
        cow = probe("cow", measurements) if "cow" in extras else None
        units = units.with_units(*costs.gup_units(gup, cow, units))
        # GUP's price, one place for every chapter: the zcsend fit (its recording: a quick live run is too noisy
        # to fit), which replaces the per-page prices derived from io_uring's registration
        units = units.with_units(*costs.gup_price(probe("zcsend", "recorded", quick=False), gup, units))
    if "faults" in extras:
        units = units.with_units(*_populate_units(probe("faults", measurements)))
    if "release" in extras:
        units = with_release_units(units)
    if "memcpy" in extras:
        units = units.with_units(*_copy_units(probe("memcpy", measurements)))
    if "alloc" in extras:
        units = units.with_units(*costs.CITED_ALLOC)
    return units


def _populate_units(faults) -> list[costs.Unit]:
    op = (faults.data.get("ops") or {}).get("populate_write_4k", {}) if faults.source != "unavailable" else {}
    if "ns_per_page" not in op:
        return []
    src = op.get("source", faults.source)
    return [costs.Unit("populate_page_ns", float(op["ns_per_page"]["median"]), "ns/page", costs.measured_label(src),
                       f"faults probe: madvise(MADV_POPULATE_WRITE) over 64 MiB, per page ({src} "
                       f"{faults.recorded_at})")]


def _copy_units(m) -> list[costs.Unit]:
    size = m.data.get("sizes", {}).get("65536")
    if not size:
        return []
    return [costs.Unit("copy_64k_ns", float(size["ns_per_copy"]["median"]), "ns per 64 KiB",
                       costs.measured_label(m.source),
                       f"memcpy probe: glibc memcpy of 64 KiB between cache-resident buffers, median of "
                       f"{size['ns_per_copy'].get('n', '?')}; {m.recorded_at or m.source}")]


def with_release_units(units: costs.UnitCosts) -> costs.UnitCosts:
    """Releases run on the completion's CPU, not the sender's: their atomics cost a line transfer each."""
    loc, tr = units.unit("local_atomic_ns"), units.unit("line_transfer_ns")
    un = units.unit("unpin_page_ns")
    src = " + ".join(sorted({un.source, tr.source}))
    return units.with_units(
        costs.Unit("unpin_small_ns", max(0.0, un.value - loc.value + tr.value), "ns/run", src,
                   f"derived: unpin_page_ns ({un.value:.1f}) with its one atomic on another CPU: less a local atomic "
                   f"({loc.value:.1f}), plus a line transfer ({tr.value:.1f})"),
        costs.Unit("unpin_large_ns", max(0.0, un.value - loc.value + 2 * tr.value), "ns/run", src,
                   f"derived: unpin_page_ns ({un.value:.1f}) with the two atomics of a large folio's unpin "
                   f"(atomic_sub of _pincount, folio_put_refs) on another CPU"))


def measured(units: costs.UnitCosts, name: str = "line_transfer_ns") -> str:
    """"live" if unit ``name`` was measured now, else "recorded" (a headline's ``probes``)."""
    return "live" if "live" in units.source(name) else "recorded"


def unit_rows(units: costs.UnitCosts, names: Iterable[str]) -> pd.DataFrame:
    """The named units this run has, as a table: name, value, unit, source, detail."""
    return pd.DataFrame([dict(units.unit(n).__dict__) for n in names if n in units])[
        ["name", "value", "unit", "source", "detail"]]


# ---------------------------------------------------------------- sentences
def pct(share: float) -> str:
    """A share (0.0123) in percent with two decimals: "1.23 %"."""
    return f"{100 * share:.2f} %"


def plural(n: int, word: str, many: str | None = None) -> str:
    """"1 page", "2 pages" (``many`` when the plural is not ``word`` + "s")."""
    return f"{n} {word if n == 1 else (many or word + 's')}"


def words(items: Iterable[Any], last: str = "and") -> str:
    """Items in words: "a", "a and b", "a, b and c"."""
    items = [str(i) for i in items]
    if len(items) < 2:
        return "".join(items)
    return f"{', '.join(items[:-1])} {last} {items[-1]}"


# ---------------------------------------------------------------- one-axis grids
def with_run(values: Iterable, run: Any) -> list:
    """A grid's values and the run's own, sorted, each once."""
    return sorted(set(values) | {run})


def grid(key: str, values: Iterable, frame_at: Callable[[Any], pd.DataFrame | None]) -> pd.DataFrame:
    """One table over ``key``: ``frame_at(value)`` for each value (None skips it), ``key`` as the first
    column (tidy)."""
    frames = []
    for v in values:
        t = frame_at(v)
        if t is None:
            continue
        t.insert(0, key, v)
        frames.append(t)
    return pd.concat(frames, ignore_index=True)


def rows_over(key: str, values: Iterable, frame_at: Callable[[Any], pd.DataFrame], index: str,
              columns: Iterable[str]) -> pd.DataFrame:
    """One table over ``key``: for each value, a row per row of ``frame_at(value)`` (its index as ``index``,
    then ``columns``), tidy."""
    columns = tuple(columns)
    rows = []
    for v in values:
        for i, r in frame_at(v).iterrows():
            rows.append({key: v, index: i, **{c: r[c] for c in columns}})
    return pd.DataFrame(rows)


def run_grid(key: str, values: Iterable, doc: str | None = None) -> cached_property:
    """A ``Results`` property: ``self.sweep(key, values)`` over the grid's values and the run's own value of
    parameter ``key`` (the class defines ``sweep(key, values)``)."""
    values = tuple(values)

    def get(self):
        return self.sweep(key, with_run(values, self.P[key]))

    get.__doc__ = doc or f"The run's sweep over {key} ({', '.join(map(str, values))} and the run's value)."
    return cached_property(get)


# ---------------------------------------------------------------- which kernel
def kernel_release(kernel: str, measurements: str, probe_result: probes.ProbeResult | None = None) -> str:
    """The release whose rules the model follows for the ``kernel`` parameter: "6.12" is the LTS; "running" is
    the kernel the measurements come from: ``probe_result``'s when given (live: this machine's; a recording
    names the kernel it was made on), else this machine's when measured live, else the recordings'."""
    import os
    import platform

    from ...model import kernels

    KERNEL_PARAM.check(kernel)
    if kernel != "running":
        return kernels.series(kernel)
    if probe_result is not None and probe_result.kernel:
        return probe_result.kernel
    if probe_mode(measurements) is None and os.environ.get(probes.ENV, "auto") != "recorded":
        return platform.release()
    return probes.load_recording("atomics").kernel or platform.release()


def kernel_label(release: str) -> str:
    """"6.18.44-fc-v1252" -> "6.18 (6.18.44-fc-v1252)"; "6.12" -> "6.12 LTS"."""
    from ...model import kernels

    series = kernels.series(release)
    if release == kernels.LTS:
        return f"{series} LTS"
    return f"{series} ({release})" if release != series else series


# ---------------------------------------------------------------- closing points
def points(*items: str) -> str:
    """A chapter's closing points as a Markdown list, one item per point (empty items left out)."""
    return "\n".join(f"- {p}" for p in items if p)


# ---------------------------------------------------------------- a chapter's versioned rules
def kernel_rules(release: str, chapter: str, lts: str | None = None) -> pd.DataFrame:
    """The versioned rules that move chapter ``chapter``'s numbers ("02"), as the kernel ``release`` has each
    and as 6.12 LTS has it, with both citations (:data:`fraglife.model.kernels.VERSIONED_RULES`)."""
    from ...model import kernels

    lts = lts or kernels.LTS
    rows = []
    for r in kernels.VERSIONED_RULES:
        if chapter not in r.chapters:
            continue
        def how(rel):
            return r.after if kernels.follows(rel, r.name) else r.before
        rows.append({"rule": r.name, "changed in": r.changed_in, kernel_label(release): how(release),
                     kernel_label(lts): how(lts), "source": f"before: {r.cite_before}; after: {r.cite_after}"})
    return pd.DataFrame(rows).set_index("rule") if rows else pd.DataFrame(columns=["rule"]).set_index("rule")


# ---------------------------------------------------------------- what a real NIC adds (cited)
def dma_per_frag(trace: Any, nbytes: int, book_ns_per_mib: float, book_what: str,
                 mapped_once: str = "") -> pd.DataFrame:
    """What mapping each frag of ``trace`` for DMA would cost on a real NIC (cited: veth maps nothing),
    beside the frag lifetime work the chapter prices at ``book_ns_per_mib`` (:func:`fraglife.cited.per_frag`).
    Frags are the trace's attaches; a frag's bytes are its attach's and what later grew into it."""
    att = trace[trace["op"] == T.ATTACH]
    grown = trace[trace["op"] == T.GROW]["len"].sum()
    frags_per_mib = len(att) / (nbytes / (1 << 20))
    return cited.per_frag(float((att["len"].sum() + grown) / len(att)), frags_per_mib, book_ns_per_mib,
                          book_what, mapped_once)

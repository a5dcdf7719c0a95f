"""Counts into time: unit costs with their sources, ns per MiB by cause, and a core's share.

A ledger counts operations; this module prices them. Three steps, each plain arithmetic:

1. :class:`UnitCosts` holds named unit costs (:class:`Unit`: value, unit, source) and
   curves in the number of CPUs (:class:`Curve`). :meth:`UnitCosts.from_atomics` builds them
   from the ``atomics`` probe's data (live or recorded; the probe module is never imported
   here: pass its result or its plain dict); a reader overrides any of them with
   :meth:`UnitCosts.override`, and :meth:`UnitCosts.with_transfer` swaps in a cited line
   transfer for a topology class this machine lacks (:data:`CITED_TRANSFERS`). Later
   chapters add their own units (GUP per page, faults, memcpy per byte, allocations) with
   :meth:`UnitCosts.with_units` or :meth:`UnitCosts.merged`. A measured unit keeps what it
   ranged over while its probe ran (``ranges``: the line transfer over the probe's rounds, the
   local atomic over its samples); :meth:`UnitCosts.span` prices anything at the values and
   at every end of those ranges, so a time is shown as a value with its range.
2. :func:`price` turns (cause, count per MiB, unit) into rows
   ``{cause, count_per_mib, unit, unit_ns, ns_per_mib, source, detail}``;
   :func:`price_ledger` builds those counts from a replay ledger.
3. :func:`core_share`: the share of one core that many ns per MiB take at a line rate.

GUP has one measured price (:func:`gup_price`: the ``zcsend`` probe's UDP fit per send call, page,
frag and faulted page, with what the ``gup`` probe adds for calls and the slow path), and
:func:`price_gup` prices what any model's ``gup_work()`` counted (chapters 03, 04 and 06 alike);
atomics are counted beside it and never priced on top of it. :func:`zc_ratio`,
:func:`zc_heldout`, :func:`zc_crossovers` and :func:`zc_break_even` give the zerocopy/copy ratio,
its check at held-out points, the crossover measured and modelled, and why it is not the
documentation's "around 10 KB". :func:`shared_line_cost` is the cost of a line N CPUs write:
measured over the writers the ``atomics`` probe had, cited beyond them, never extrapolated.

How a ledger is priced (:func:`price_ledger`): an atomic whose line was last written by
another CPU (the ledger's ``bounces``) costs one line transfer, ``line_transfer_ns``: half a
compare-and-swap ping-pong round trip, which includes the atomic that pulled the line, so
nothing is added for the atomic itself. Every other atomic costs ``local_atomic_ns``, except
a compare-and-swap loop (the ledger's ``cmpxchg_atomics``: a read, then ``lock cmpxchg``
until it succeeds), which costs ``cmpxchg_loop_ns`` when the probe measured it. A
ledger cannot know how many CPUs write one line at the same moment; the caller says so
(``shared=FIELD, writers=k``): the atomics counted in ``FIELD`` then go to one line written
by k CPUs at once and each costs ``local_atomic_ns`` plus what sharing one line adds over a
line per CPU at k threads, read from the probe's contention curves (interpolated in k).

Measured units are labelled "measured here (live)" or "measured here (recorded)", cited
ones "cited", a reader's "reader override"; ``detail`` says which measurement or source.

A chapter (which may import both the probes and the model) uses it like this::

    from fraglife import probes
    from fraglife.model import costs, engine

    units = costs.UnitCosts.from_atomics(probes.run("atomics", quick=True))  # live, else recorded
    units = units.override(line_transfer_ns=110)            # a reader's value, if any
    units = units.with_transfer("other_socket", "EPYC")     # or a cited class this machine lacks
    rows = costs.price_ledger(engine.replay(trace, "page_ref"), units, nbytes)
    ns = costs.total(rows)                                  # ns per MiB
    share = costs.core_share(ns, 100)                       # of one core at 100 Gbit/s
    rows = costs.price_ledgers({p: engine.replay(trace, p) for p in policies}, units, nbytes)
    ns, lo, hi = units.span(lambda u: costs.total(costs.price_ledger(ledger, u, nbytes)))
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Iterable, Mapping

import numpy as np

MIB = 1 << 20
#: line rates (Gbit/s) a chapter shows by default
LINE_RATES_GBIT = (100, 200, 400)
CITED = "cited"
OVERRIDE = "reader override"
PACINGS = ("tight", "paced")
#: pacing -> (curve of one shared line, curve of a line per thread)
_PACING_CURVES = {"tight": ("contended", "private"), "paced": ("paced_contended", "paced_private")}


def measured_label(source: str) -> str:
    """The label of a number measured on this machine: "measured here (live|recorded)"."""
    return f"measured here ({source})"


# -- cited figures ---------------------------------------------------------------------------

NVIENNOT = ("nviennot/core-to-core-latency, README.md at commit 0dddf509cd3f "
            "(CAS ping-pong between two pinned threads, median of half the round trip)")
#: the method paper for what an atomic costs by the state and place of its line
SCHWEIZER_2015 = ("H. Schweizer, M. Besta, T. Hoefler, \"Evaluating the Cost of Atomic Operations on Modern "
                  "Architectures\", PACT 2015, DOI 10.1109/PACT.2015.24: CAS, FAA and SWP cost about the same; "
                  "the coherence state and location of the line dominate")

#: Line transfers published for machines and topology classes this one may not have. Same
#: definition as the probe's pairs (half a CAS ping-pong round trip), so they compare.
CITED_TRANSFERS: tuple[dict, ...] = tuple(
    {"machine": m, "class": c, "ns": ns, "source": f"{NVIENNOT}, {table}"}
    for m, c, ns, table in (
        ("AMD EPYC 7R13 (Zen 3, AWS c6a.metal)", "smt_sibling", 9.8, "table 'Hyper-threads'"),
        ("AMD EPYC 7R13 (Zen 3, AWS c6a.metal)", "same_llc", 23.0,
         "table 'Single socket results' (23ns within a group of 8 cores)"),
        ("AMD EPYC 7R13 (Zen 3, AWS c6a.metal)", "other_llc", 107.0,
         "table 'Single socket results' (107ns across groups)"),
        ("AMD EPYC 7R13 (Zen 3, AWS c6a.metal)", "other_socket", 197.0, "table 'Dual sockets results'"),
        ("AMD Ryzen 9 5950X (Zen 3)", "smt_sibling", 7.8, "table 'Hyper-threads'"),
        ("AMD Ryzen 9 5950X (Zen 3)", "same_llc", 17.0, "table 'Single socket results' (17ns intra-group)"),
        ("AMD Ryzen 9 5950X (Zen 3)", "other_llc", 85.0, "table 'Single socket results' (85ns inter-group)"),
        ("Intel Xeon Platinum 8375C (Ice Lake, AWS c6i.metal)", "smt_sibling", 8.1, "table 'Hyper-threads'"),
        ("Intel Xeon Platinum 8375C (Ice Lake, AWS c6i.metal)", "same_llc", 51.0,
         "table 'Single socket results' (one LLC per socket)"),
        ("Intel Xeon Platinum 8375C (Ice Lake, AWS c6i.metal)", "other_socket", 108.0,
         "table 'Dual sockets results'"),
    ))


#: The machines of CITED_TRANSFERS by how far apart N writers must be: up to ``cores`` cores,
#: the farthest pair of them is of ``class`` (the same README: "6 groups of 8" cores per EPYC 7R13
#: socket, c6a.metal two sockets of 48; Ryzen 9 5950X "two groups of 8 cores", 16 in all; Xeon
#: 8375C one LLC per socket of 32 cores, c6i.metal two sockets).
CITED_LAYOUTS = {
    "AMD EPYC 7R13 (Zen 3, AWS c6a.metal)": ((8, "same_llc"), (48, "other_llc"), (96, "other_socket")),
    "AMD Ryzen 9 5950X (Zen 3)": ((8, "same_llc"), (16, "other_llc")),
    "Intel Xeon Platinum 8375C (Ice Lake, AWS c6i.metal)": ((32, "same_llc"), (64, "other_socket")),
}
#: The cited machine used by default past this machine's CPUs: an AMD EPYC, as this machine is.
CITED_MACHINE = "EPYC 7R13"


def shared_line_cost(units: "UnitCosts", writers: float, pacing: str = "tight",
                     machine: str = CITED_MACHINE) -> Unit:
    """The cost of one update of a line that ``writers`` CPUs write, measured or cited, never extrapolated.

    Up to the writers the ``atomics`` probe measured (this machine has 2 CPUs): its contention curves
    (:meth:`UnitCosts.shared_line`), labelled measured. More writers: a cited figure, labelled cited: each
    update then finds the line in another CPU's cache and moves it once, so it costs one line transfer
    of the farthest class ``writers`` CPUs of ``machine`` span (:data:`CITED_LAYOUTS`,
    :data:`CITED_TRANSFERS`: nviennot/core-to-core-latency; that the line's place and state set an
    atomic's cost: Schweizer et al., PACT 2015). Measured here, two writers on a paced loop cost about
    one of this machine's line transfers, which is what the cited figure stands for. How long each
    writer waits behind the others is not measured and not modelled."""
    k = _number("writers", writers, zero_ok=False)
    names = _PACING_CURVES.get(pacing)
    if names is None:
        raise ValueError(f"pacing = {pacing!r} is not allowed: expected one of {', '.join(PACINGS)}")
    if all(n in units.curves for n in names):
        hi = min(units.curve(n).threads[-1] for n in names)
        if k <= hi:
            return units.shared_line(k, pacing)
    else:
        hi = 0.0
    layouts = [(m, lay) for m, lay in CITED_LAYOUTS.items() if machine.lower() in m.lower()]
    if not layouts:
        raise ValueError(f"machine = {machine!r} is not allowed: cited machines are {', '.join(CITED_LAYOUTS)}")
    name, layout = layouts[0]
    cls = next((c for cores, c in layout if k <= cores), None)
    if cls is None:
        raise ValueError(f"writers = {k:g} is not allowed on {name}: it has {layout[-1][0]} cores")
    row = next(r for r in CITED_TRANSFERS if r["machine"] == name and r["class"] == cls)
    return Unit(f"shared_line_ns@{k:g}", row["ns"], "ns/op", CITED,
                f"{k:g} writers, more than the {hi:g} measured here: one line transfer per update, {cls} on "
                f"{name}: {row['source']}; {SCHWEIZER_2015}")


# -- unit costs -----------------------------------------------------------------------------

def _number(name: str, value: Any, *, zero_ok: bool = True) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        v = math.nan
    if isinstance(value, bool) or not math.isfinite(v) or v < 0 or (v == 0 and not zero_ok):
        raise ValueError(f"{name} = {value!r} is not allowed: expected a finite number "
                         f"{'>= 0' if zero_ok else '> 0'}")
    return v


@dataclass(frozen=True)
class Unit:
    """One unit cost: ``value`` in ``unit`` (e.g. ns/op), with where it comes from."""

    name: str
    value: float
    unit: str
    source: str
    detail: str = ""


@dataclass(frozen=True)
class Curve:
    """ns per operation per thread against the number of threads k (measured at ``threads``).

    Between measured k the value is interpolated linearly; past the largest k there is no value
    (no number past what was measured). ``beyond`` says what kind of line the curve is
    ("serialised": one shared line; "flat": a line per thread), for the reader.
    """

    name: str
    threads: tuple[float, ...]
    ns_per_op: tuple[float, ...]
    source: str
    detail: str = ""
    beyond: str = "flat"

    def __post_init__(self):
        if not self.threads or len(self.threads) != len(self.ns_per_op):
            raise ValueError(f"curve {self.name}: needs as many ns values as thread counts, at least one")
        if list(self.threads) != sorted(set(self.threads)) or self.threads[0] < 1:
            raise ValueError(f"curve {self.name}: thread counts {list(self.threads)} must increase from >= 1")
        for k, v in zip(self.threads, self.ns_per_op):
            _number(f"curve {self.name} at {k} threads", v)

    def at(self, k: float) -> tuple[float, str]:
        """(ns per op per thread at k threads, how it was obtained), only over the thread counts measured: a curve
        is never extended past its last point (:func:`shared_line_cost` gives cited figures there)."""
        k = _number("writers", k, zero_ok=False)
        lo, hi = self.threads[0], self.threads[-1]
        if k < lo:
            raise ValueError(f"writers = {k:g} is not allowed: curve {self.name} starts at {lo:g} threads")
        if k > hi:
            raise ValueError(f"writers = {k:g} is not allowed: curve {self.name} was measured for {lo:g}..{hi:g} "
                             f"threads; beyond them use a cited figure (shared_line_cost)")
        exact = k in self.threads
        v = float(np.interp(k, self.threads, self.ns_per_op))
        return v, f"at {k:g} threads" if exact else f"interpolated at {k:g} threads"


@dataclass(frozen=True)
class UnitCosts:
    """Named unit costs and curves, each with its source. Immutable: changes return a copy."""

    units: Mapping[str, Unit]
    curves: Mapping[str, Curve] = field(default_factory=dict)
    #: measured line transfers by topology class: rows {class, machine, ns, pairs, label, source}
    transfers: tuple[dict, ...] = ()
    origin: str = ""
    #: name -> (low, high): what a measured unit ranged over (its probe's rounds or samples); a unit
    #: without an entry is one number. A range that no longer brackets its unit's value is stale and dropped.
    ranges: Mapping[str, tuple[float, float]] = field(default_factory=dict)

    def __post_init__(self):
        object.__setattr__(self, "units", MappingProxyType(dict(self.units)))
        object.__setattr__(self, "curves", MappingProxyType(dict(self.curves)))
        kept = {n: (float(lo), float(hi)) for n, (lo, hi) in dict(self.ranges).items()
                if n in self.units and lo <= self.units[n].value <= hi}
        object.__setattr__(self, "ranges", MappingProxyType(kept))

    # -- reading
    def __getitem__(self, name: str) -> float:
        return self.unit(name).value

    def __contains__(self, name: str) -> bool:
        return name in self.units

    def unit(self, name: str) -> Unit:
        try:
            return self.units[name]
        except KeyError:
            raise ValueError(f"unit cost {name!r} is not known: expected one of {', '.join(self.units)}") from None

    def source(self, name: str) -> str:
        return self.unit(name).source

    def curve(self, name: str) -> Curve:
        try:
            return self.curves[name]
        except KeyError:
            raise ValueError(f"curve {name!r} is not known: expected one of {', '.join(self.curves) or 'none'}") from None

    def rows(self) -> list[dict]:
        """The unit costs as rows {name, value, unit, source, detail}."""
        return [dataclasses.asdict(u) for u in self.units.values()]

    def curve_rows(self) -> list[dict]:
        """The curves as rows {curve, threads, ns_per_op, source}."""
        return [{"curve": c.name, "threads": k, "ns_per_op": v, "source": c.source}
                for c in self.curves.values() for k, v in zip(c.threads, c.ns_per_op)]

    # -- building
    @classmethod
    def from_atomics(cls, result: Any, source: str | None = None, recorded_at: str | None = None, *,
                     transfer_class: str | None = None, overrides: Mapping[str, Any] | None = None) -> "UnitCosts":
        """Unit costs from the ``atomics`` probe.

        ``result`` is what ``fraglife.probes.run("atomics")`` returns, its ``to_json()``, or
        the plain data dict (then give ``source``, "live" or "recorded", and ``recorded_at``).
        ``transfer_class`` prices bounces at one measured topology class (default: the probe's
        ``line_transfer_ns``, pairs of distinct cores). ``overrides`` as in :meth:`override`.
        """
        data, src, when, note = _unpack(result, source, recorded_at)
        overrides = dict(overrides or {})
        if src == "unavailable" or "local_atomic_ns" not in data:
            need = [n for n in ("local_atomic_ns", "line_transfer_ns") if n not in overrides]
            if need:
                raise ValueError(f"atomics = {src} ({note or 'no data'}): no unit costs to build; "
                                 f"pass overrides for {', '.join(need)}")
            return cls({}, origin=f"atomics unavailable: {note}").override(**overrides)
        label = measured_label(src)
        when_s = f"{'measured' if src == 'live' else 'recorded'} {when}" if when else src
        loc = data.get("local_atomic") or {}
        units = {"local_atomic_ns": Unit(
            "local_atomic_ns", float(data["local_atomic_ns"]), "ns/op", label,
            f"atomics probe: lock xadd on a line this CPU owns, dependent chain, median of "
            f"{(loc.get('ns') or {}).get('n', '?')} samples on CPU {loc.get('cpu', '?')}; {when_s}")}
        if data.get("cmpxchg_loop_ns") is not None:
            cas = data.get("cmpxchg_loop") or {}
            units["cmpxchg_loop_ns"] = Unit(
                "cmpxchg_loop_ns", float(data["cmpxchg_loop_ns"]), "ns/op", label,
                f"atomics probe: a read and lock cmpxchg until it succeeds (mm_account_pinned_pages(), "
                f"refcount_inc_not_zero()) on a line this CPU owns, dependent chain, median of "
                f"{(cas.get('ns') or {}).get('n', '?')} samples; {when_s}")
        by_class = (data.get("line_transfer") or {}).get("by_class") or {}
        machine = "this machine"
        transfers = []
        for c, v in by_class.items():
            transfers.append({"class": c, "machine": machine, "ns": float(v["ns"]), "pairs": v.get("pairs"),
                              "label": label, "source": f"atomics probe, median; {when_s}"})
            t = v.get("over_time") or {}
            if t.get("n", 0) > 1 and t["max"] > t["min"]:  # rounds over the run disagree: show the range
                for end in ("min", "max"):
                    transfers.append({"class": c, "machine": f"{machine}, {'fastest' if end == 'min' else 'slowest'} "
                                      f"of {t['n']} rounds", "ns": float(t[end]), "pairs": v.get("pairs"),
                                      "label": label, "source": f"atomics probe, rounds over the run; {when_s}"})
        transfers = tuple(transfers)
        if transfer_class is None:
            if data.get("line_transfer_ns") is not None:
                units["line_transfer_ns"] = Unit(
                    "line_transfer_ns", float(data["line_transfer_ns"]), "ns/op", label,
                    f"atomics probe: half a CAS ping-pong round trip, median over "
                    f"{len(data.get('pairs') or [])} CPU pair(s) of distinct cores "
                    f"({', '.join(by_class) or 'class unknown'}); {when_s}")
        elif transfer_class in by_class:
            units["line_transfer_ns"] = Unit(
                "line_transfer_ns", float(by_class[transfer_class]["ns"]), "ns/op", label,
                f"atomics probe: half a CAS ping-pong round trip between {transfer_class} CPUs; {when_s}")
        else:
            raise ValueError(f"transfer_class = {transfer_class!r} is not allowed: measured here: "
                             f"{', '.join(by_class) or 'none'}; for other classes use with_transfer(CLASS, MACHINE) "
                             f"with a cited figure")
        curves = {}
        for name, pts, beyond in (("contended", data.get("contended"), "serialised"),
                                  ("private", data.get("private"), "flat"),
                                  ("cmpxchg_contended", data.get("cmpxchg_contended"), "serialised"),
                                  ("paced_contended", (data.get("paced") or {}).get("contended"), "serialised"),
                                  ("paced_private", (data.get("paced") or {}).get("private"), "flat")):
            if pts:
                what = {"contended": "one shared line, tight loop", "private": "a line per thread, tight loop",
                        "cmpxchg_contended": "one shared line, compare-and-swap loops",
                        "paced_contended": "one shared line, paced", "paced_private": "a line per thread, paced"}[name]
                curves[name] = Curve(name, tuple(float(p["threads"]) for p in pts),
                                     tuple(float(p["ns_per_op"]["median"]) for p in pts), label,
                                     f"atomics probe: {what}, CPU time per increment; {when_s}", beyond)
        out = cls(units, curves, transfers, origin=f"atomics probe ({src}{', ' + when if when else ''})",
                  ranges=_atomics_ranges(data, units, transfer_class))
        return out.override(**overrides) if overrides else out

    def with_units(self, *units: Unit) -> "UnitCosts":
        """A copy with these units added or replaced (how later chapters add theirs)."""
        new = dict(self.units)
        for u in units:
            if not isinstance(u, Unit):
                raise ValueError(f"with_units takes Unit objects, not {type(u).__name__}")
            _number(u.name, u.value)
            new[u.name] = u
        return dataclasses.replace(self, units=new, ranges=self._ranges_without(u.name for u in units))

    def merged(self, other: "UnitCosts") -> "UnitCosts":
        """A copy with ``other``'s units, curves and transfer rows added (``other`` wins on a name)."""
        return UnitCosts({**self.units, **other.units}, {**self.curves, **other.curves},
                         self.transfers + other.transfers, "; ".join(filter(None, (self.origin, other.origin))),
                         {**self._ranges_without(other.units), **other.ranges})

    def override(self, **values: Any) -> "UnitCosts":
        """A copy with the reader's values: a number for a unit (``local_atomic_ns=6``), a
        mapping {threads: ns} for a curve (``contended={1: 5, 2: 40, 4: 90}``), or a Unit/Curve."""
        units, curves = dict(self.units), dict(self.curves)
        for name, v in values.items():
            if isinstance(v, Unit):
                units[name] = dataclasses.replace(v, name=name, value=_number(name, v.value))
            elif isinstance(v, Curve):
                curves[name] = dataclasses.replace(v, name=name)
            elif isinstance(v, Mapping):
                if name not in curves and name not in _CURVE_NAMES:
                    raise ValueError(f"{name} = {v!r} is not allowed: curves are "
                                     f"{', '.join(sorted(set(curves) | _CURVE_NAMES))}")
                ks = sorted(v)
                old = curves.get(name)
                beyond = old.beyond if old else ("serialised" if "contended" in name else "flat")
                curves[name] = Curve(name, tuple(float(_number(f"{name} threads", k, zero_ok=False)) for k in ks),
                                     tuple(_number(f"{name} at {k} threads", v[k]) for k in ks), OVERRIDE, "", beyond)
            else:
                if name in curves or name in _CURVE_NAMES:
                    raise ValueError(f"{name} = {v!r} is not allowed: a curve takes a mapping {{threads: ns}}")
                unit = units[name].unit if name in units else ("ns/op" if name.endswith("_ns") else "")
                if name not in units and not name.endswith("_ns"):
                    raise ValueError(f"{name} = {v!r} is not allowed: known unit costs are "
                                     f"{', '.join(units) or 'none'} (a new one must end in _ns)")
                units[name] = Unit(name, _number(name, v), unit, OVERRIDE, "set by the reader")
        return dataclasses.replace(self, units=units, curves=curves, ranges=self._ranges_without(values))

    def with_transfer(self, topology_class: str, machine: str | None = None) -> "UnitCosts":
        """A copy pricing bounces at one topology class: measured here if this machine has it
        (and no ``machine`` is named), else a cited figure (``machine``: part of its name)."""
        if machine is None:
            for row in self.transfers:
                if row["class"] == topology_class and row["machine"] == "this machine":
                    u = Unit("line_transfer_ns", row["ns"], "ns/op", row["label"],
                             f"{row['source']}: {topology_class} pairs")
                    return dataclasses.replace(self, units={**self.units, "line_transfer_ns": u},
                                               ranges=self._ranges_without(["line_transfer_ns"]))
        rows = [r for r in CITED_TRANSFERS if r["class"] == topology_class
                and (machine is None or machine.lower() in r["machine"].lower())]
        if not rows:
            have = sorted({(r["class"], r["machine"]) for r in CITED_TRANSFERS})
            raise ValueError(f"topology_class = {topology_class!r}, machine = {machine!r} is not allowed: "
                             f"measured here: {', '.join(r['class'] for r in self.transfers) or 'none'}; cited: "
                             + "; ".join(f"{c} on {m}" for c, m in have))
        r = rows[0]
        u = Unit("line_transfer_ns", r["ns"], "ns/op", CITED, f"{r['machine']}, {topology_class}: {r['source']}")
        return dataclasses.replace(self, units={**self.units, "line_transfer_ns": u},
                                   ranges=self._ranges_without(["line_transfer_ns"]))

    # -- ranges: what a measured unit moved over while its probe ran
    def _ranges_without(self, names: Iterable[str]) -> dict:
        names = set(names)
        return {n: r for n, r in self.ranges.items() if n not in names}

    def range_of(self, name: str) -> tuple[float, float]:
        """(low, high) of unit ``name``: what it ranged over when measured, else its value twice."""
        value = self.unit(name).value
        return self.ranges.get(name, (value, value))

    def with_range(self, name: str, low: Any, high: Any) -> "UnitCosts":
        """A copy in which unit ``name`` ranges over [low, high] (which must bracket its value)."""
        value = self.unit(name).value
        lo, hi = _number(f"{name} low", low), _number(f"{name} high", high)
        if not lo <= value <= hi:
            raise ValueError(f"range of {name} = [{lo:g}, {hi:g}] is not allowed: it must contain the value {value:g}")
        return dataclasses.replace(self, ranges={**self.ranges, name: (lo, hi)})

    def range_rows(self) -> list[dict]:
        """Every unit as a row {name, value, low, high, unit, source} (low = high = value for one number)."""
        return [{"name": u.name, "value": u.value, "low": self.range_of(u.name)[0],
                 "high": self.range_of(u.name)[1], "unit": u.unit, "source": u.source} for u in self.units.values()]

    def at(self, end: str) -> "UnitCosts":
        """A copy with every unit that has a range at its ``end`` ("low" or "high"); ranges are kept."""
        if end not in ("low", "high"):
            raise ValueError(f"end = {end!r} is not allowed: expected 'low' or 'high'")
        i = 0 if end == "low" else 1
        return self._at({n: i for n in self.ranges})

    def _at(self, ends: Mapping[str, int]) -> "UnitCosts":
        units = {n: dataclasses.replace(u, value=self.ranges[n][ends[n]]) if n in ends else u
                 for n, u in self.units.items()}
        return dataclasses.replace(self, units=units)

    def corners(self) -> list["UnitCosts"]:
        """This set with every ranged unit at its low or its high end, in every combination (2^k sets for k
        ranged units, at most 2^MAX_RANGED)."""
        names = [n for n, (lo, hi) in self.ranges.items() if hi > lo]
        if len(names) > MAX_RANGED:
            raise ValueError(f"{len(names)} ranged units ({', '.join(names)}) are too many to price at every "
                             f"corner: at most {MAX_RANGED}")
        return [self._at({n: (k >> j) & 1 for j, n in enumerate(names)}) for k in range(1 << len(names))]

    def span(self, price: Any) -> tuple[float, float, float]:
        """(value, low, high) of ``price(units) -> float``: at the units' values, and the least and most it
        takes with each ranged unit at either end of its range. Exact for what a ledger costs (a sum of
        counts times units) and for ratios and differences of such sums (each is monotone in every unit,
        so its extremes lie at corners)."""
        value = float(price(self))
        at = [float(price(c)) for c in self.corners()] or [value]
        return value, min(at + [value]), max(at + [value])

    def transfer_table(self) -> list[dict]:
        """Line transfers by topology class: measured here, then cited; rows
        {class, machine, ns, label, source}."""
        out = [{"class": r["class"], "machine": r["machine"], "ns": r["ns"], "label": r["label"],
                "source": r["source"]} for r in self.transfers]
        out += [{"class": r["class"], "machine": r["machine"], "ns": r["ns"], "label": CITED,
                 "source": r["source"]} for r in CITED_TRANSFERS]
        return out

    def shared_line(self, writers: float, pacing: str = "tight", extrapolate: bool = False,
                    machine: str = CITED_MACHINE) -> Unit:
        """What one atomic costs on a line that ``writers`` CPUs update at the same time.

        Over the writers the probe measured: ``local_atomic_ns`` + (ns per op on one shared line - ns
        per op on a line per thread) at that many threads: what sharing adds over per-CPU lines,
        measured with the same loop. ``pacing``: "tight" (back-to-back increments; a CPU may keep
        the line for a run of them) or "paced" (some private work after each increment). More
        writers than measured: only with ``extrapolate`` (kept for callers: nothing is extrapolated),
        and then the cited figure of :func:`shared_line_cost` for ``machine``, labelled cited.
        """
        if pacing not in _PACING_CURVES:
            raise ValueError(f"pacing = {pacing!r} is not allowed: expected one of {', '.join(PACINGS)}")
        shared_name, private_name = _PACING_CURVES[pacing]
        shared_c, private_c = self.curve(shared_name), self.curve(private_name)
        k = _number("writers", writers, zero_ok=False)
        hi = min(shared_c.threads[-1], private_c.threads[-1])
        if k > hi:
            if not extrapolate:
                raise ValueError(f"writers = {k:g} is not allowed: curve {shared_name} was measured for "
                                 f"{shared_c.threads[0]:g}..{hi:g} threads; pass extrapolate=True for a cited figure "
                                 f"beyond them")
            return shared_line_cost(self, k, pacing, machine)
        s, how = shared_c.at(k)
        p, _ = private_c.at(k)
        local = self.unit("local_atomic_ns")
        value = local.value + max(0.0, s - p)
        sources = {shared_c.source, private_c.source, local.source}
        source = sources.pop() if len(sources) == 1 else " + ".join(sorted(sources))
        return Unit(f"shared_line_ns@{writers:g}", value, "ns/op", source,
                    f"local atomic {local.value:.2f} + (one shared line {s:.2f} - a line per thread {p:.2f}) "
                    f"ns per op, {pacing} loop, {how}")


_CURVE_NAMES = frozenset({"contended", "private", "paced_contended", "paced_private", "cmpxchg_contended"})
#: Ranged units :meth:`UnitCosts.corners` prices at every combination of ends (2^MAX_RANGED sets at most).
MAX_RANGED = 8


def _atomics_ranges(data: Mapping, units: Mapping[str, Unit], transfer_class: str | None) -> dict:
    """What the atomics probe's two units ranged over: the local atomic over its samples (first to third
    quartile: a sample taken while the thread was switched out is not an atomic's cost), the line transfer
    over its rounds spread through the run (least to most of the rounds' medians: the transfer moves as the
    host moves virtual CPUs between cores)."""
    out = {}
    loc = (data.get("local_atomic") or {}).get("ns") or {}
    if "local_atomic_ns" in units and loc.get("n", 0) > 1 and {"q1", "q3"} <= set(loc):
        out["local_atomic_ns"] = (min(loc["q1"], units["local_atomic_ns"].value),
                                  max(loc["q3"], units["local_atomic_ns"].value))
    lt = data.get("line_transfer") or {}
    t = lt.get("over_time") if transfer_class is None else ((lt.get("by_class") or {}).get(transfer_class) or {}).get(
        "over_time")
    if "line_transfer_ns" in units and t and t.get("n", 0) > 1 and {"min", "max"} <= set(t):
        v = units["line_transfer_ns"].value
        out["line_transfer_ns"] = (min(t["min"], v), max(t["max"], v))
    return out


def _unpack(result: Any, source: str | None, recorded_at: str | None) -> tuple[dict, str, str | None, str | None]:
    """(data, source, recorded_at, reason) from a probe result, its JSON, or plain data."""
    meta = ("probe", "source", "recorded_at", "reason", "partial", "provenance")
    if hasattr(result, "data") and hasattr(result, "source"):
        return (dict(result.data), source or result.source, recorded_at or getattr(result, "recorded_at", None),
                getattr(result, "reason", None))
    if isinstance(result, Mapping):
        if "probe" in result and "source" in result:
            data = {k: v for k, v in result.items() if k not in meta}
            return data, source or result["source"], recorded_at or result.get("recorded_at"), result.get("reason")
        if source is None:
            raise ValueError("source = None is not allowed with plain probe data: expected 'live' or 'recorded'")
        return dict(result), source, recorded_at, None
    raise ValueError(f"result = {type(result).__name__} is not allowed: expected the atomics probe's result, "
                     f"its to_json() or its data dict")


# -- pricing ---------------------------------------------------------------------------------

def price(items: Iterable[tuple[str, float, str | Unit]], units: UnitCosts) -> list[dict]:
    """Rows {cause, count_per_mib, unit, unit_ns, ns_per_mib, source, detail} for
    (cause, count per MiB, unit name or Unit) items."""
    rows = []
    for cause, count, unit in items:
        u = unit if isinstance(unit, Unit) else units.unit(unit)
        n = _number(f"count of {cause} per MiB", count)
        rows.append({"cause": cause, "count_per_mib": n, "unit": u.name, "unit_ns": u.value,
                     "ns_per_mib": n * u.value, "source": u.source, "detail": u.detail})
    return rows


def total(rows: Iterable[dict]) -> float:
    """ns per MiB of all rows."""
    return float(sum(r["ns_per_mib"] for r in rows))


def ledger_counts(ledger: Any) -> dict[str, float]:
    """The ledger's numeric fields by name, whatever fields it has (a Ledger, a mapping such as
    ``Ledger.as_dict()``, a pandas row, any dataclass)."""
    if isinstance(ledger, Mapping):
        d = dict(ledger)
    elif hasattr(ledger, "as_dict"):
        d = ledger.as_dict()
    elif dataclasses.is_dataclass(ledger):
        d = {f.name: getattr(ledger, f.name) for f in dataclasses.fields(ledger)}
    elif hasattr(ledger, "to_dict"):
        d = ledger.to_dict()
    else:
        raise ValueError(f"ledger = {type(ledger).__name__} is not allowed: expected a Ledger or a mapping of counts")
    return {k: float(v) for k, v in d.items()
            if isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, (bool, np.bool_))}


def atomic_fields(ledger: Any) -> list[str]:
    """Fields of the ledger that count atomics of one kind (``*_atomics``), e.g. to name ``shared``."""
    return [k for k in ledger_counts(ledger) if k.endswith("_atomics")]


def price_ledger(ledger: Any, units: UnitCosts, nbytes: float, *, shared: str | None = None,
                 writers: float = 1, pacing: str = "tight", extrapolate: bool = False) -> list[dict]:
    """ns per MiB by cause for one replay ledger of ``nbytes`` payload bytes.

    Reads ``atomics`` and ``bounces`` by name (other fields are ignored, so new ones do no
    harm). Causes: ``local_atomic`` (atomics on a line this CPU last wrote),
    ``line_transfer`` (bounces), and ``cmpxchg_loop`` (the ledger's ``cmpxchg_atomics`` on a
    line this CPU last wrote, less ``cmpxchg_bounces``, at ``cmpxchg_loop_ns``) when both the
    ledger and the units have them. With ``shared=FIELD`` the atomics counted in that field
    (e.g. "ref_atomics": the refs on devmem's one binding) are taken out and priced as
    ``shared_line``, on one line that ``writers`` CPUs update at once
    (:meth:`UnitCosts.shared_line`). Their share of the bounces is ``FIELD``'s own bounce
    count if the ledger has one (``ref_atomics`` -> ``ref_bounces``), else proportional to
    their share of the atomics (said in the row's detail).
    """
    nbytes = _number("nbytes", nbytes, zero_ok=False)
    c = ledger_counts(ledger)
    for name in ("atomics", "bounces"):
        if name not in c:
            raise ValueError(f"ledger has no {name!r} count: fields are {', '.join(c) or 'none'}")
    atomics, bounces = _number("atomics", c["atomics"]), _number("bounces", c["bounces"])
    if bounces > atomics:
        raise ValueError(f"bounces = {bounces:g} is not allowed: more than atomics = {atomics:g}")
    scale = MIB / nbytes
    items: list[tuple[str, float, Any]] = []
    n_shared = b_shared = 0.0
    if shared is not None:
        if shared not in c:
            raise ValueError(f"shared = {shared!r} is not allowed: expected a count field of the ledger, "
                             f"e.g. {', '.join(atomic_fields(c)) or 'none'}")
        n_shared = _number(shared, c[shared])
        if n_shared > atomics:
            raise ValueError(f"shared = {shared!r} counts {n_shared:g} atomics, more than atomics = {atomics:g}")
        own = shared[:-len("_atomics")] + "_bounces" if shared.endswith("_atomics") else shared + "_bounces"
        unit = units.shared_line(writers, pacing, extrapolate)
        if own in c:
            b_shared = min(c[own], bounces, n_shared)
            split = f"its bounces from the ledger's {own}"
        else:
            b_shared = bounces * n_shared / atomics if atomics else 0.0
            split = f"its bounces taken as proportional to its atomics (the ledger has no {own})"
        unit = dataclasses.replace(unit, detail=f"{shared} on one line, {writers:g} writer(s): {unit.detail}; {split}")
    n_cas = b_cas = 0.0
    if "cmpxchg_atomics" in c and "cmpxchg_loop_ns" in units and shared not in ("cmpxchg_atomics", "atomics"):
        n_cas = _number("cmpxchg_atomics", c["cmpxchg_atomics"])
        b_cas = min(c.get("cmpxchg_bounces", 0.0), n_cas, bounces - b_shared)
        n_cas = min(n_cas, atomics - n_shared - (bounces - b_shared) + b_cas)
    items.append(("local_atomic", (atomics - n_shared - n_cas - (bounces - b_shared - b_cas)) * scale,
                  "local_atomic_ns"))
    items.append(("line_transfer", (bounces - b_shared) * scale, "line_transfer_ns"))
    if n_cas:
        items.append(("cmpxchg_loop", (n_cas - b_cas) * scale, "cmpxchg_loop_ns"))
    if shared is not None:
        items.append(("shared_line", n_shared * scale, unit))
    return price(items, units)


def price_ledgers(ledgers: Mapping[str, Any], units: UnitCosts, nbytes: float, *, key: str = "policy",
                  **kwargs: Any) -> list[dict]:
    """:func:`price_ledger` for several ledgers (e.g. one per policy): the rows of each, with
    ``key`` naming the ledger they price. ``kwargs`` go to :func:`price_ledger`."""
    return [{key: name, **row} for name, led in ledgers.items()
            for row in price_ledger(led, units, nbytes, **kwargs)]


def core_share(ns_per_mib: Any, gbit_per_s: Any) -> Any:
    """The share of one core (1.0 = a whole core) spent at ``ns_per_mib`` when data flows at
    ``gbit_per_s`` (10^9 bit/s): ns per MiB x MiB per second / 10^9 ns."""
    ns = np.asarray(ns_per_mib, dtype=float)
    rate = np.asarray(gbit_per_s, dtype=float)
    if not np.all(np.isfinite(ns)) or np.any(ns < 0):
        raise ValueError(f"ns_per_mib = {ns_per_mib!r} is not allowed: expected finite numbers >= 0")
    if not np.all(np.isfinite(rate)) or np.any(rate <= 0):
        raise ValueError(f"gbit_per_s = {gbit_per_s!r} is not allowed: expected finite numbers > 0")
    share = ns * (rate * 1e9 / 8 / MIB) / 1e9
    return float(share) if share.ndim == 0 else share


def core_shares(ns_per_mib: float, rates: Iterable[float] = LINE_RATES_GBIT) -> list[dict]:
    """Rows {gbit_per_s, ns_per_mib, core_share} for each line rate."""
    return [{"gbit_per_s": float(r), "ns_per_mib": float(ns_per_mib), "core_share": core_share(ns_per_mib, r)}
            for r in rates]


# -- GUP, pins, faults and fork (chapters 03 and 04) -------------------------------------------

#: Published GUP costs, for machines and paths this one does not measure (per 4 KiB page).
LI_ZHE = ("commit a03db236aebf \"gup: optimize longterm pin_user_pages() for large folio\" (Li Zhe, 2025), "
          "gup_test -LT -m 8192 -n 512 on v6.15: 8 GiB of small folios pinned in 130.5 ms, unpinned in 31.7 ms")
LI_ZHE_HUGE = ("same commit, gup_test -HL, 8 GiB of 2 MiB hugetlb folios: pinned in 4.9 ms after the patch "
               "(14.4 ms before)")
CITED_GUP: tuple[Unit, ...] = (
    Unit("pin_page_ns", 130.5e6 / (8 << 18), "ns/page", CITED, LI_ZHE),
    Unit("unpin_page_ns", 31.7e6 / (8 << 18), "ns/page", CITED, LI_ZHE),
    Unit("pin_pmd_ns", 4.9e6 / (8 << 9), "ns/2 MiB", CITED, LI_ZHE_HUGE),
)


def _spread_median(d: Mapping, *path: str) -> float | None:
    for p in path:
        if not isinstance(d, Mapping) or p not in d:
            return None
        d = d[p]
    if isinstance(d, Mapping):
        d = d.get("median")
    return None if d is None else float(d)


def _part_label(data: Mapping, part: str, src: str) -> str:
    """A part of a live result filled from the recording is labelled as recorded."""
    p = data.get(part)
    if isinstance(p, Mapping) and p.get("source") == "recorded":
        return measured_label("recorded")
    return measured_label(src)


def gup_units(gup: Any, cow: Any = None, base: UnitCosts | None = None) -> list[Unit]:
    """Unit costs of GUP, pins, faults and fork copies from the ``gup`` and ``cow`` probes.

    ``gup``/``cow``: the probes' results (live or recorded; as for
    :meth:`UnitCosts.from_atomics`). ``base`` supplies ``local_atomic_ns`` for the
    derived units (a FOLL_GET is a pin less one atomic, ``try_grab_folio_fast()``,
    mm/gup.c v6.12). Returns the units to add with :meth:`UnitCosts.with_units`;
    every measured value is labelled with where it comes from, every derived one
    says how.
    """
    out: list[Unit] = []
    data, src, when, _ = _unpack(gup, None, None)
    if src != "unavailable" and "fit" in data:
        w = f"{'measured' if src == 'live' else 'recorded'} {when}" if when else src
        lab = measured_label(src)
        reg, unreg = data["fit"]["register"], data["fit"]["unregister"]
        how = "least squares over IORING_REGISTER_BUFFERS of iovecs of " + ", ".join(data.get("register", {})) + \
              " pages (gup probe)"
        out += [Unit("register_call_ns", max(0.0, reg["per_call_ns"]), "ns/call", lab,
                     f"{how}: per pin_user_pages_fast() call, io_uring's per-buffer work included; {w}"),
                Unit("pin_page_ns", max(0.0, reg["per_page_ns"]), "ns/page", lab,
                     f"{how}: per 4 KiB page pinned in gup-fast, io_uring's per-page work included; {w}"),
                Unit("unpin_page_ns", max(0.0, unreg["per_page_ns"]), "ns/page", lab,
                     f"least squares over IORING_UNREGISTER_BUFFERS: per page unpinned; {w}")]
        thp = (data.get("thp_share") or {}).get("1")
        if isinstance(thp, Mapping) and thp.get("thp_backed", 0) >= 0.99:
            l2 = _part_label(data, "thp_share", src)
            out += [Unit("pin_pmd_ns", _spread_median(thp, "register_ns_per_page") * 512, "ns/2 MiB", l2,
                         f"IORING_REGISTER_BUFFERS of THP-backed memory x 512 pages: one try_grab_folio_fast() per "
                         f"PMD (gup probe); {w}"),
                    Unit("unpin_pmd_ns", _spread_median(thp, "unregister_ns_per_page") * 512, "ns/2 MiB", l2,
                         f"IORING_UNREGISTER_BUFFERS of THP-backed memory x 512 pages (gup probe); {w}")]
        vc = data.get("vmsplice_calls")
        if isinstance(vc, Mapping) and _spread_median(vc, "per_call_ns") is not None:
            out.append(Unit("gup_call_ns", max(0.0, _spread_median(vc, "per_call_ns")), "ns/call",
                            _part_label(data, "vmsplice_calls", src),
                            f"gup probe: vmsplice of 256 pages as 256 one-page iovecs less as one iovec, over the 240 "
                            f"extra get_user_pages_fast() calls iter_to_pipe() makes: one gup-fast call beyond its "
                            f"pages; {w}"))
        for part, name, what in (("slow_path", "slow_page_ns", "a page through the GUP slow path (mmap_read_lock, "
                                  "follow_page_mask() per page), one refault per 256 pages included"),
                                 ("cold", "cold_pin_page_ns", "pinning a page never touched: slow path and a write "
                                  "fault that allocates and zeroes it"),
                                 ("read_fault_zero", "zero_fault_ns", "first read of an untouched page: a fault that "
                                  "maps the zero page (user fault, exception entry included)"),
                                 ("vmsplice_get", "vmsplice_get_page_ns", "vmsplice of resident pages: one FOLL_GET "
                                  "reference and one pipe buffer per page")):
            v = _spread_median(data.get(part) or {}, "register_ns_per_page") or \
                _spread_median(data.get(part) or {}, "ns_per_page")
            if v is not None:
                out.append(Unit(name, max(0.0, v), "ns/page", _part_label(data, part, src), f"gup probe: {what}; {w}"))
    else:
        out += list(CITED_GUP)
    names = {u.name: u for u in out}
    local = base.unit("local_atomic_ns") if base is not None and "local_atomic_ns" in base else None
    if local is not None:
        if "pin_page_ns" in names:
            p = names["pin_page_ns"]
            out.append(Unit("gup_page_ns", max(0.0, p.value - local.value), p.unit, p.source,
                            f"derived: pin_page_ns ({p.value:.1f}) less one local atomic ({local.value:.1f}); "
                            f"FOLL_GET takes one atomic where FOLL_PIN takes two (try_grab_folio_fast(), "
                            f"mm/gup.c v6.12)"))
        if "pin_pmd_ns" in names:
            p = names["pin_pmd_ns"]
            out.append(Unit("thp_subpage_ns", max(0.0, (p.value - 2 * local.value) / 512), "ns/page", p.source,
                            f"derived: pin_pmd_ns ({p.value:.0f}) less the two atomics of one PMD leaf, over its 512 "
                            f"pages: what each page a PMD leaf covers costs (its entry in the pages array, "
                            f"io_uring's per-page work included)"))
    if cow is not None:
        out += _cow_units(cow)
    return out


def _cow_units(cow: Any) -> list[Unit]:
    data, src, when, _ = _unpack(cow, None, None)
    f = data.get("fork") if src != "unavailable" else None
    if not isinstance(f, Mapping) or "4k" not in f:
        return []
    w = f"{'measured' if src == 'live' else 'recorded'} {when}" if when else src
    lab = measured_label(src)
    plain = _spread_median(f, "no_fork_write_ns_per_page") or 0.0
    out = []
    for name, key, what in (("copy_at_fork_ns", "4k_copy_at_fork_ns_per_page",
                             "fork time with the buffer pinned less without, per page copied for the child"),
                            ("copy_at_fork_thp_ns", "thp_copy_at_fork_ns_per_page",
                             "the same for a THP buffer, which fork splits before copying")):
        if f.get(key) is not None:
            out.append(Unit(name, max(0.0, float(f[key])), "ns/page", lab, f"cow probe: {what}; {w}"))
    for name, case, scale, what in (
            ("wp_fault_ns", "4k", 1, "the parent's first write per page after fork, the child gone (a write-protect "
                                     "fault that reuses the page), less a write without fork"),
            ("wp_copy_ns", "4k_child_alive", 1, "the same while the child still maps the pages (each write copies)"),
            ("wp_fault_pmd_ns", "thp", 512, "the parent's first write after fork to a THP buffer, per 2 MiB (one "
                                            "fault reuses the PMD), less a write without fork")):
        v = _spread_median(f, case, "write_after_fork_ns_per_page")
        if v is not None:
            out.append(Unit(name, max(0.0, (v - plain) * scale), "ns/page" if scale == 1 else "ns/2 MiB", lab,
                            f"cow probe: {what}; {w}"))
    return out


# -- GUP's price on the MSG_ZEROCOPY path (chapters 03, 04 and 06) ---------------------------------

#: The zcsend probe's fit this price is read from: UDP (one skb and one GUP call per send call, freed in the send
#: on the sender's CPU). The TCP fit carries the TCP send path's per-skb work and fails its held-out check.
ZC_PATH = "udp"
#: The documentation's break-even, cited as a figure (it names no machine, MTU or method).
MSG_ZEROCOPY_DOC = ("Documentation/networking/msg_zerocopy.rst (unchanged v6.12 -> v6.18): \"MSG_ZEROCOPY is "
                    "generally only effective at writes over around 10 KB\"")
MSG_ZEROCOPY_DOC_BYTES = 10_000
HELDOUT_TOLERANCE = 0.20
#: What a GUP lookup did, in the terms the price is given in (each model's ``gup_work()`` returns these).
GUP_WORK = ("sends", "gup_calls", "pages", "frags", "slow_calls", "slow_pages", "faulted_pages", "flag_atomics",
            "ref_atomics", "pin_atomics")
GUP_UNITS = ("zc_call_ns", "gup_call_ns", "zc_page_ns", "zc_frag_ns", "gup_page_ns", "thp_subpage_ns",
             "zc_fault_page_ns",
             "zc_pmd_fault_ns", "gup_fault_page_ns", "gup_slow_page_ns", "gup_slow_call_ns", "copy_call_ns",
             "copy_page_ns", "copy_fault_page_ns", "copy_pmd_fault_ns")


def _zc_fit(zcsend: Any) -> tuple[dict, dict, str, str]:
    """(the probe's data, its UDP fit, label, provenance) of a zcsend result; ValueError if it has no fit."""
    data, src, when, note = _unpack(zcsend, None, None)
    fit = (data.get("fit") or {}).get(ZC_PATH) if src != "unavailable" else None
    if not isinstance(fit, Mapping) or "coefficients" not in fit:
        raise ValueError(f"zcsend = {src} ({note or 'no fit'}): GUP's price needs the zcsend probe's {ZC_PATH} fit")
    kernel = data.get("kernel") or (data.get("provenance") or {}).get("kernel", "?")
    prov = (f"zcsend probe, {ZC_PATH} fit ({'measured' if src == 'live' else 'recorded'} {when or '?'}, kernel "
            f"{kernel}): least squares, relative, over sizes {', '.join(str(x) for x in fit.get('fit_sizes', []))} "
            f"of the {' and '.join(fit.get('fit_buffers', []))} buffers; worst fit residual "
            f"{fit.get('max_fit_residual', float('nan')):.0%}, worst held-out ratio error "
            f"{fit.get('max_heldout_error', float('nan')):.0%}")
    return data, fit, measured_label(src), prov


def gup_price(zcsend: Any, gup: Any = None, base: "UnitCosts | None" = None) -> list[Unit]:
    """GUP's price on the MSG_ZEROCOPY path, measured: the ``zcsend`` probe's fit of the sender's CPU per send call
    (live or recorded; the probe module is never imported here), with what the ``gup`` probe adds, as units.

    The fit's terms, each a unit: ``zc_call_ns`` what a zerocopy send call costs beyond a copy's (its GUP call, the
    ubuf_info, the notification; the probe runs as root, so no locked_vm accounting); ``zc_page_ns`` each page
    looked up; ``zc_frag_ns`` each frag filled and released (on order-0 pages every page is a frag, so
    ``gup_page_ns`` = page + frag); ``zc_fault_page_ns`` / ``zc_pmd_fault_ns`` each page or 2 MiB region the lookup
    faults in (zero page or huge zero page, slow path) beyond its page and frag; the copy's own terms
    (``copy_*``). Atomics the lookups take (references, PG_referenced, give-backs, puts) are inside these
    times: never price counted atomics on top of them. From ``gup``: ``gup_call_ns`` (a gup-fast call beyond its
    pages, vmsplice) and ``gup_slow_page_ns`` (a page through the slow path beyond gup-fast: slow path less
    gup-fast per page, the same 256-page registration). ``gup_slow_call_ns``: the slow path's own per-call cost,
    from the fit's absent points: what zerocopy's per-call intercept on untouched order-0 buffers adds over its
    resident one beyond the copy's (both fault the pages in); within the noise here, so not resolved. ``base``
    (the atomics units) adds ``pin_page_ns``: the fitted page plus the one atomic a pin takes more
    (``try_grab_folio_fast()``)."""
    data, fit, lab, prov = _zc_fit(zcsend)
    z, c = fit["coefficients"]["zerocopy"], fit["coefficients"]["copy"]
    g = fit["gup"]
    out = [
        Unit("zc_call_ns", max(0.0, g["per_call_ns"]), "ns/call", lab,
             f"a MSG_ZEROCOPY send call beyond a copy's (one skb, one GUP call, its ubuf_info and notification; run as "
             f"root: no locked_vm accounting; the notification read is apart); {prov}"),
        Unit("zc_page_ns", max(0.0, z["pages"]), "ns/page", lab,
             f"each page a send looks up beyond its frag: a page under a PMD leaf costs only this; {prov}"),
        Unit("zc_frag_ns", max(0.0, z.get("frags", 0.0)), "ns/frag", lab,
             f"each frag filled and released (on order-0 pages one per page: the gup-fast reference, PG_referenced, "
             f"the frag, its put); {prov}"),
        Unit("gup_page_ns", max(0.0, z["pages"] + z.get("frags", 0.0)), "ns/page", lab,
             f"an order-0 page in gup-fast with its frag: reference, PG_referenced, frag, put (zc_page_ns + "
             f"zc_frag_ns); {prov}"),
        Unit("thp_subpage_ns", max(0.0, z["pages"]), "ns/page", lab,
             f"a page under a PMD leaf: the fit's per-page term (one grab per leaf per call, in the frag's cost); "
             f"{prov}"),
        Unit("zc_fault_page_ns", max(0.0, z.get("pte_faults", 0.0)), "ns/page", lab,
             f"each order-0 page the send faults in (a read fault maps the zero page; the rest of the call slow) beyond "
             f"its page and frag; {prov}"),
        Unit("zc_pmd_fault_ns", max(0.0, z.get("pmd_faults", 0.0)), "ns/2 MiB", lab,
             f"each 2 MiB region the send faults in (the huge zero page, slow path); {prov}"),
        Unit("gup_fault_page_ns", max(0.0, g["per_page_absent_ns"]), "ns/page", lab,
             f"an order-0 page faulted in by the send, all told (page + frag + fault); {prov}"),
        Unit("copy_call_ns", max(0.0, c["call"]), "ns/call", lab, f"a copying send call's intercept; {prov}"),
        Unit("copy_page_ns", max(0.0, c["bytes"] * PAGE), "ns/page", lab,
             f"copying 4 KiB in a send (cache-hot source, the page-frag work around it); {prov}"),
        Unit("copy_fault_page_ns", max(0.0, c.get("pte_faults", 0.0)), "ns/page", lab,
             f"each order-0 page a copying send faults in, beyond its copy; {prov}"),
        Unit("copy_pmd_fault_ns", max(0.0, c.get("pmd_faults", 0.0)), "ns/2 MiB", lab,
             f"each 2 MiB region a copying send faults in; {prov}"),
    ]
    slow = _slow_call(data)
    if slow is not None:
        v, detail = slow
        out.append(Unit("gup_slow_call_ns", max(0.0, v), "ns/call", lab, f"{detail}; {prov}"))
    out += _gup_probe_terms(gup)
    if base is not None and "local_atomic_ns" in base:
        loc = base.unit("local_atomic_ns")
        page = next(u for u in out if u.name == "gup_page_ns")
        out.append(Unit("pin_page_ns", page.value + loc.value, "ns/page", " + ".join(sorted({page.source, loc.source})),
                        f"derived: the fitted order-0 page ({page.value:.1f}) plus the one atomic a FOLL_PIN takes more "
                        f"(+{GUP_PIN_BIAS - 1} or _pincount + 1, try_grab_folio_fast(), mm/gup.c v6.18; "
                        f"{loc.value:.1f}); its release is an unpin where a reference's is a put, one atomic each"))
    return out


GUP_PIN_BIAS = 1024
PAGE = 4096


def _slow_call(data: Mapping) -> tuple[float, str] | None:
    """The slow path's own per-call cost from the fit's absent order-0 points: the intercept of (absent - present)
    against pages, zerocopy less copy (both modes fault the pages in; only zerocopy's lookup goes slow)."""
    pts = ((data.get("paths") or {}).get(ZC_PATH) or {}).get("points") or []
    by = {(p["size"], p["buffer"], p["state"]): p for p in pts}
    icpt = {}
    for mode in ("zerocopy", "copy"):
        xs, ys = [], []
        for size in sorted({p["size"] for p in pts}):
            a, b = by.get((size, "4k", "absent")), by.get((size, "4k", "present"))
            if a and b:
                xs.append(-(-size // PAGE))
                ys.append(a[mode]["ns"]["median"] - b[mode]["ns"]["median"])
        if len(xs) < 3:
            return None
        icpt[mode] = float(np.polyfit(xs, ys, 1)[1])
    v = icpt["zerocopy"] - icpt["copy"]
    return v, (f"the slow path's per-call cost: intercept of absent - present against pages on order-0 buffers, "
               f"zerocopy {icpt['zerocopy']:.0f} ns less copy {icpt['copy']:.0f} ns = {v:.0f} ns (mmap_read_lock "
               f"once per call, the VMA lookup); within the noise here: not resolved, priced at {max(0.0, v):.0f}")


def _gup_probe_terms(gup: Any) -> list[Unit]:
    if gup is None:
        return []
    data, src, when, _ = _unpack(gup, None, None)
    if src == "unavailable":
        return []
    w = f"{'measured' if src == 'live' else 'recorded'} {when}" if when else src
    out = []
    vc = data.get("vmsplice_calls")
    call = _spread_median(vc, "per_call_ns") if isinstance(vc, Mapping) else None
    if call is not None:
        out.append(Unit("gup_call_ns", max(0.0, call), "ns/call", _part_label(data, "vmsplice_calls", src),
                        f"gup probe: a get_user_pages_fast() call beyond its pages (vmsplice of 256 one-page iovecs "
                        f"less one iovec, over the 240 extra calls); {w}"))
    slow = _spread_median(data.get("slow_path") or {}, "register_ns_per_page")
    fast = _spread_median((data.get("register") or {}).get(str((data.get("slow_path") or {}).get("iov_pages", 256)))
                          or {}, "register_ns_per_page")
    if slow is not None and fast is not None:
        out.append(Unit("gup_slow_page_ns", max(0.0, slow - fast), "ns/page", _part_label(data, "slow_path", src),
                        f"gup probe: a page through the slow path (mmap_read_lock, follow_page_mask()) less one in "
                        f"gup-fast, the same registration of 256-page iovecs ({slow:.1f} - {fast:.1f}; one refault "
                        f"per 256 pages included); {w}"))
    return out


def price_gup(work: Mapping, units: "UnitCosts", nbytes: float | None = None) -> list[dict]:
    """Price rows (:func:`price`) of what a lookup did (``work``: :data:`GUP_WORK`, as every model's ``gup_work()``
    gives it), per MiB of ``nbytes`` if given, else as counted. Time comes from the fit (:func:`gup_price`); the
    atomics counted are rows of their own at 0 ns, shown, not added."""
    w = {k: _number(k, work.get(k, 0)) for k in GUP_WORK}
    scale = MIB / _number("nbytes", nbytes, zero_ok=False) if nbytes is not None else 1.0
    extra_calls = max(0.0, w["gup_calls"] - w["sends"])
    call_unit = "gup_call_ns" if "gup_call_ns" in units else "zc_call_ns"
    slow_only = max(0.0, w["slow_pages"] - w["faulted_pages"])
    # slow_pages: the slow path's walks, one per PTE page and one per PMD leaf per call (gup_work() counts them)
    items = [("zerocopy send call (its first GUP call, ubuf_info, notification)", w["sends"], "zc_call_ns"),
             ("GUP call beyond a send's first", extra_calls, call_unit),
             ("page looked up", w["pages"], "zc_page_ns"),
             ("frag filled and released", w["frags"], "zc_frag_ns"),
             ("page faulted in by the lookup", w["faulted_pages"], "zc_fault_page_ns")]
    if slow_only:
        items.append(("slow-path walk (a page, or a PMD leaf), not faulted", slow_only, "gup_slow_page_ns"))
    if w["slow_calls"] and "gup_slow_call_ns" in units:
        items.append(("GUP call through the slow path", w["slow_calls"], "gup_slow_call_ns"))
    inside = Unit("in_the_fit", 0.0, "ns/op", units.source("zc_page_ns"),
                  "counted, not priced: the fitted page and frag costs include these atomics")
    for name, what in (("flag_atomics", "PG_referenced bitops (counted)"), ("ref_atomics", "reference atomics (counted)"),
                       ("pin_atomics", "pin atomics (counted)")):
        if w[name]:
            items.append((what, w[name], inside))
    return price([(cause, n * scale, unit) for cause, n, unit in items], units)


# -- zerocopy against copy: the model's ratio and crossover, the measured ones ----------------------

ZC_BUFFERS = ("4k", "thp", "mix")
ZC_STATES = ("present", "absent")


def zc_features(size: int, buffer: str, state: str, skbs: float = 1.0) -> dict:
    """What one send call of ``size`` bytes consists of, as the zcsend probe's fit counts it (its ``features()``):
    pages, frags (an order-0 page is a frag of its own, a THP one per skb it spans; ``mix``: the first half of the
    pages in a THP), and the pages or 2 MiB regions an untouched (``absent``) buffer faults in."""
    if buffer not in ZC_BUFFERS or state not in ZC_STATES:
        raise ValueError(f"buffer = {buffer!r}, state = {state!r} is not allowed: expected one of "
                         f"{', '.join(ZC_BUFFERS)} and one of {', '.join(ZC_STATES)}")
    pages = -(-int(size) // PAGE)
    if buffer == "4k":
        frags = float(pages)
    elif buffer == "thp":
        frags = max(1.0, skbs)
    else:
        half = pages // 2
        frags = (max(1.0, skbs * half / pages) if half else 0.0) + (pages - half)
    absent = state == "absent"
    return {"call": 1.0, "bytes": float(size), "pages": float(pages), "frags": frags, "skbs": float(skbs),
            "pte_faults": float(pages) if absent and buffer == "4k" else 0.0,
            "pmd_faults": float(-(-int(size) // (2 << 20))) if absent and buffer == "thp" else 0.0}


def zc_send_ns(units: "UnitCosts", mode: str, feats: Mapping) -> float:
    """ns per send call of ``mode`` ("copy" or "zerocopy") for a call with these features, on :func:`gup_price`'s
    units (the fit's own sum of terms)."""
    copy_call = units["copy_call_ns"]
    if mode == "copy":
        return (copy_call + units["copy_page_ns"] * feats["bytes"] / PAGE + units["copy_fault_page_ns"] *
                feats["pte_faults"] + units["copy_pmd_fault_ns"] * feats["pmd_faults"])
    if mode != "zerocopy":
        raise ValueError(f"mode = {mode!r} is not allowed: expected 'copy' or 'zerocopy'")
    return (copy_call + units["zc_call_ns"] + units["zc_page_ns"] * feats["pages"] + units["zc_frag_ns"] *
            feats["frags"] + units["zc_fault_page_ns"] * feats["pte_faults"] + units["zc_pmd_fault_ns"] *
            feats["pmd_faults"])


def zc_ratio(units: "UnitCosts", size: int, buffer: str = "4k", state: str = "present") -> float:
    """The model's zerocopy/copy ratio of the sender's CPU per call at ``size`` bytes from ``buffer`` in ``state``."""
    f = zc_features(size, buffer, state)
    return zc_send_ns(units, "zerocopy", f) / zc_send_ns(units, "copy", f)


def zc_crossover(units: "UnitCosts", buffer: str = "4k", state: str = "present", lo: int = PAGE,
                 hi: int = 1 << 20) -> float | None:
    """The model's crossover: the send size above which zerocopy costs the sender less than a copy, scanned in
    pages from ``lo`` to ``hi`` and interpolated (None: never below ``hi``; ``lo``: at every size)."""
    xs = list(range(int(lo), int(hi) + 1, PAGE))
    ds = [zc_send_ns(units, "zerocopy", zc_features(x, buffer, state)) -
          zc_send_ns(units, "copy", zc_features(x, buffer, state)) for x in xs]
    return _first_below(xs, ds)


def _first_below(xs, ds) -> float | None:
    """The x at which d(x) turns negative for good (interpolated), xs[0] if it always is, None if never."""
    if not ds or ds[-1] >= 0:
        return None
    i = len(ds) - 1
    while i > 0 and ds[i - 1] < 0:
        i -= 1
    if i == 0:
        return float(xs[0])
    x0, x1, d0, d1 = xs[i - 1], xs[i], ds[i - 1], ds[i]
    return float(x0 + (x1 - x0) * d0 / (d0 - d1))


def zc_heldout(zcsend: Any, units: "UnitCosts", tolerance: float = HELDOUT_TOLERANCE) -> list[dict]:
    """At every point the fit did not use (other sizes, and the half-THP ``mix`` buffer): the measured
    zerocopy/copy ratio, the model's (:func:`zc_send_ns` with the point's recorded features), the model's error
    relative to the measured ratio and whether it is within ``tolerance``."""
    data, fit, _, _ = _zc_fit(zcsend)
    fit_sizes, fit_bufs = set(fit.get("fit_sizes", [])), set(fit.get("fit_buffers", []))
    rows = []
    for p in (data.get("paths") or {}).get(ZC_PATH, {}).get("points", []):
        if p["size"] in fit_sizes and p["buffer"] in fit_bufs:
            continue
        model = (zc_send_ns(units, "zerocopy", p["zerocopy"]["features"]) /
                 zc_send_ns(units, "copy", p["copy"]["features"]))
        meas = p["zerocopy"]["ns"]["median"] / p["copy"]["ns"]["median"]
        err = (model - meas) / meas
        rows.append({"size": p["size"], "buffer": p["buffer"], "state": p["state"], "measured_ratio": meas,
                     "model_ratio": model, "error": err, "within": abs(err) <= tolerance})
    return rows


def zc_crossovers(zcsend: Any, units: "UnitCosts") -> list[dict]:
    """Per buffer and state the zcsend probe measured: the crossover send size measured (zerocopy - copy
    interpolated between the sizes where it changes sign) and modelled (:func:`zc_crossover` over the same
    sizes); None where zerocopy never cost less in that range."""
    data, _, _, _ = _zc_fit(zcsend)
    pts = (data.get("paths") or {}).get(ZC_PATH, {}).get("points", [])
    rows = []
    for buf, state in sorted({(p["buffer"], p["state"]) for p in pts}):
        row = sorted((p for p in pts if (p["buffer"], p["state"]) == (buf, state)), key=lambda p: p["size"])
        sizes = [p["size"] for p in row]
        diff = [p["zerocopy"]["ns"]["median"] - p["copy"]["ns"]["median"] for p in row]
        rows.append({"buffer": buf, "state": state, "measured_bytes": _first_below(sizes, diff),
                     "model_bytes": zc_crossover(units, buf, state, sizes[0], sizes[-1]),
                     "sizes": (sizes[0], sizes[-1])})
    return rows


def zc_break_even(zcsend: Any, units: "UnitCosts", memcpy: Any = None,
                  reads_per_call: Iterable[float] = (1.0, 1 / 8, 1 / 64)) -> list[dict]:
    """Why this machine's crossover is not the documentation's "over around 10 KB", as data: rows {fact, value,
    unit, label, source}. The doc's figure (cited); the fixed cost per call and the saving per page on a cache-hot
    copy (measured) and the break-even they give; the measured and modelled crossovers of resident order-0 pages;
    cold data: untouched pages (both modes fault them in, the copy dearer per page) and, with ``memcpy`` given, a
    copy from DRAM; batching the completion reads (one read per 1, 8, 64 calls); and that veth is not a NIC."""
    data, fit, lab, prov = _zc_fit(zcsend)
    call, page, copy = units.unit("zc_call_ns"), units.unit("gup_page_ns"), units.unit("copy_page_ns")
    saving = copy.value - page.value
    out = [{"fact": "documented break-even", "value": float(MSG_ZEROCOPY_DOC_BYTES), "unit": "bytes", "label": CITED,
            "source": MSG_ZEROCOPY_DOC},
           {"fact": "fixed cost of a zerocopy send call over a copy's", "value": call.value, "unit": "ns/call",
            "label": call.source, "source": call.detail},
           {"fact": "saving per 4 KiB page on a cache-hot copy (copy less GUP)", "value": saving, "unit": "ns/page",
            "label": copy.source, "source": f"copy_page_ns {copy.value:.1f} - gup_page_ns {page.value:.1f}; {prov}"},
           {"fact": "break-even, fixed cost over saving", "value": call.value / saving * PAGE if saving > 0 else None,
            "unit": "bytes", "label": "derived", "source": "zc_call_ns / (copy_page_ns - gup_page_ns) x 4096"}]
    cross = {(r["buffer"], r["state"]): r for r in zc_crossovers(zcsend, units)}
    for (buf, state), what in ((("4k", "present"), "order-0 pages, written before (cache-hot)"),
                               (("4k", "absent"), "order-0 pages never touched: both modes fault them in"),
                               (("thp", "present"), "a THP, written before")):
        r = cross.get((buf, state))
        if r:
            out.append({"fact": f"crossover measured, {what}", "value": r["measured_bytes"], "unit": "bytes",
                        "label": lab, "source": f"zcsend points {r['sizes'][0]}..{r['sizes'][1]} B, interpolated"})
            out.append({"fact": f"crossover modelled, {what}", "value": r["model_bytes"], "unit": "bytes",
                        "label": "model", "source": prov})
    if memcpy is not None:
        md, msrc, mwhen, _ = _unpack(memcpy, None, None)
        gbps = (((md.get("sizes") or {}).get(str(64 << 20)) or {}).get("gb_per_s") or {}).get("median")
        if gbps:
            dram = PAGE / gbps  # ns per 4 KiB at GB/s
            out.append({"fact": "crossover modelled with the copy from DRAM (cold source data)",
                        "value": call.value / (dram - page.value) * PAGE if dram > page.value else None,
                        "unit": "bytes", "label": "derived",
                        "source": f"memcpy probe, 64 MiB copy at {gbps:.1f} GB/s = {dram:.0f} ns per 4 KiB "
                                  f"({msrc} {mwhen or ''}) in place of copy_page_ns"})
    reads = [p["zerocopy"].get("completion_read_ns", {}).get("median") for p in
             (data.get("paths") or {}).get(ZC_PATH, {}).get("points", [])]
    reads = [r for r in reads if r is not None]
    if reads:
        read = float(np.median(reads))
        out.append({"fact": "reading the completion notifications, per read", "value": read, "unit": "ns/read",
                    "label": lab, "source": f"zcsend: median over every point's completion_read_ns; {prov}"})
        for k in reads_per_call:
            out.append({"fact": f"break-even with one completion read per {1 / k:g} call(s)",
                        "value": (call.value + read * k) / saving * PAGE if saving > 0 else None, "unit": "bytes",
                        "label": "derived", "source": "(zc_call_ns + read / calls per read) / saving x 4096"})
    out.append({"fact": "veth is not a NIC", "value": None, "unit": "", "label": "not measured here",
                "source": "drivers/net/veth.c veth_xmit() hands the skb to the peer with no DMA mapping: a NIC maps "
                          "every frag (skb_frag_dma_map(), include/linux/skbuff.h), through an IOMMU where one is on, "
                          "for zerocopy and copied data alike; that cost is in neither mode here"})
    tcp = (data.get("fit") or {}).get("tcp") or {}
    if tcp.get("max_heldout_error") is not None:
        out.append({"fact": "the TCP fit's worst held-out ratio error", "value": tcp["max_heldout_error"],
                    "unit": "share", "label": lab,
                    "source": "zcsend tcp fit: the TCP send path's per-skb work, ACKs and frees of received skbs on "
                              "the sender's CPU make it noisy; GUP's price is read from UDP"})
    return out


# -- allocations (chapter 07) --------------------------------------------------------------------

# SLUB alloc+free per object with N objects of one cache outstanding (each allocated by its own call, then
# all freed): Brouer, "[PATCH V2 0/6] slub: bulk alloc and free for slub allocator", 17 Jun 2015,
# <20150617142613.11791.76008.stgit@devil>, the "fallback" column, i7-4790K at 4 GHz.
SLAB_CURVE = ((1, 14.448), (2, 12.768), (3, 12.232), (4, 12.025), (8, 11.558), (16, 11.458), (30, 11.499),
              (32, 19.917), (34, 19.655), (48, 17.049), (64, 20.009), (128, 23.749), (158, 24.299), (250, 25.681))
SLAB_SOURCE = ("Brouer, slub bulk alloc/free series, 17 Jun 2015, <20150617142613.11791.76008.stgit@devil>: "
               "alloc+free per object with N outstanding ('fallback' column), i7-4790K 4 GHz; held at N = 250 beyond")
PAGE_ALLOC_NS = 57.773
PAGE_ALLOC_SOURCE = ("Brouer, page_bench04_bulk, 19 Mar 2021, <20210319181031.44dd3113@carbon>: order-0 "
                     "alloc+put 57.8 ns; used for the order-3 page_frag refill and large kmalloc too (orders up to "
                     "3 come from the same per-CPU lists since commit 44042b4498728f4376e84bae1ac8016d146d850b)")
#: Published allocation costs (no probe measures them here): a page, a slab object alone and with many held.
CITED_ALLOC: tuple[Unit, ...] = (
    Unit("page_alloc_ns", PAGE_ALLOC_NS, "ns/op", CITED, PAGE_ALLOC_SOURCE),
    Unit("slab_alloc_free_ns", SLAB_CURVE[0][1], "ns/op", CITED, SLAB_SOURCE + " (N = 1)"),
    Unit("slab_alloc_free_held_ns", SLAB_CURVE[-1][1], "ns/op", CITED, SLAB_SOURCE + " (N = 250)"),
)


def slab_ns(outstanding: float) -> float:
    """SLUB alloc+free per object with ``outstanding`` objects of the cache held (SLAB_CURVE, flat past it)."""
    n, ns = zip(*SLAB_CURVE)
    return float(np.interp(max(1.0, outstanding), n, ns))

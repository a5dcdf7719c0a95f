"""Probe results, recordings and the live-or-recorded decision.

A probe module provides ``NAME``, ``TITLE``, ``REQUIRED`` (top-level keys its
data must have), ``measure(quick=False) -> dict`` and ``summarize(data) ->
list[str]``; optionally ``frame(data)`` for a table. ``measure`` raises
:class:`ProbeUnavailable` with a reason when the machine does not allow the
live measurement. It may also leave parts out and name them in the data's
``"_missing"`` mapping (dotted path -> reason; in a list of records, a part
is the record of that ``name``); those parts are then filled from the
recording and listed in :attr:`ProbeResult.partial`.
"""

from __future__ import annotations

import contextlib
import copy
import fcntl
import importlib
import json
import os
import tempfile
import threading
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import system
from ..params import ParamError
from ..paths import DATA, write_json
from . import _cleanup, _perf
from ._base import ProbeUnavailable, kernel_release, measured, spread  # noqa: F401  (the probes' helpers)

MODES = ("auto", "live", "recorded")
ENV = "FRAGLIFE_PROBES"
META_KEYS = ("probe", "source", "recorded_at", "reason", "partial", "provenance")

#: name -> module; order is the order of ``fraglife probe``.
REGISTRY = {
    "pins": "fraglife.probes.pins",
    "btf": "fraglife.probes.btf",
    "zerocopy": "fraglife.probes.zerocopy",
    "vmsplice": "fraglife.probes.vmsplice",
    "faults": "fraglife.probes.faults",
    "pagemap": "fraglife.probes.pagemap",
    "kpageflags": "fraglife.probes.kpageflags",
    "memcpy": "fraglife.probes.memcpy",
    "kcount": "fraglife.probes.kcount",
    "kcount_splice": "fraglife.probes.kcount_splice",
    "kcount_rx": "fraglife.probes.kcount_rx",
    "kcount_copy": "fraglife.probes.kcount_copy",
    "kcount_filemap": "fraglife.probes.kcount_filemap",
    "atomics": "fraglife.probes.atomics",
    "memlat": "fraglife.probes.memlat",
    "gup": "fraglife.probes.gup",
    "cow": "fraglife.probes.cow",
    "gup_paths": "fraglife.probes.gup_paths",
    "cow_mthp": "fraglife.probes.cow_mthp",
    "zcsend": "fraglife.probes.zcsend",
}
NAMES = tuple(REGISTRY)

#: Where recordings live; tests point this elsewhere.
RECORDINGS = DATA / "probes"


@dataclass
class ProbeResult:
    """One probe's result and where it came from.

    ``source`` is "live" (measured now), "recorded" (read from
    ``data/probes/NAME.json``) or "unavailable" (neither worked; ``data`` is
    empty and ``reason`` says why). ``provenance`` is the
    :func:`fraglife.system.summary` of the machine that measured the data.
    """

    name: str
    source: str
    data: dict
    provenance: dict
    reason: str | None = None
    partial: dict = field(default_factory=dict)
    path: str | None = None

    @property
    def live(self) -> bool:
        return self.source == "live"

    @property
    def kernel(self) -> str | None:
        return self.data.get("kernel") or self.provenance.get("kernel")

    @property
    def recorded_at(self) -> str | None:
        """When the data was measured (now for a live result)."""
        return self.provenance.get("date")

    @property
    def machine(self) -> str:
        p = self.provenance
        if not p:
            return "unknown machine"
        return f"{p.get('cpu_model') or p.get('machine')}, {p.get('cpus')} CPUs"

    def __getitem__(self, key: str) -> Any:
        return self.data[key]

    def get(self, key: str, default: Any = None) -> Any:
        return self.data.get(key, default)

    def note(self) -> str:
        """One line for a chapter: live or recorded, where, when, and why not live."""
        if self.source == "unavailable":
            return f"{self.name}: unavailable: {self.reason}"
        where = f"kernel {self.kernel} on {self.machine}, {self.recorded_at}"
        if self.source == "live":
            line = f"{self.name}: measured live now ({where})"
        else:
            line = f"{self.name}: RECORDED result ({where}); not live here: {self.reason}"
        if self.partial:
            by_reason: dict[str, list[str]] = {}
            for k, v in self.partial.items():  # one reason once, however many parts it left out
                by_reason.setdefault(v, []).append(k)
            parts = "; ".join(f"{', '.join(ks)} recorded ({v})" for v, ks in by_reason.items())
            line += f"; parts from the recording: {parts}"
        return line

    def summary(self) -> list[str]:
        """A few human-readable lines of results."""
        if self.source == "unavailable":
            return []
        return list(module(self.name).summarize(self.data))

    def frame(self):
        """The main table of the result as a pandas DataFrame (if the probe defines one)."""
        mod = module(self.name)
        if not hasattr(mod, "frame"):
            raise AttributeError(f"probe {self.name!r} has no table")
        return mod.frame(self.data)

    def to_json(self) -> dict:
        out = {
            "probe": self.name,
            "source": self.source,
            "recorded_at": self.recorded_at,
            "reason": self.reason,
            "partial": dict(self.partial),
            "provenance": self.provenance,
        }
        out.update(self.data)
        return out

    @classmethod
    def from_json(cls, raw: dict) -> "ProbeResult":
        """The result :meth:`to_json` wrote."""
        data = {k: v for k, v in raw.items() if k not in META_KEYS}
        return cls(raw["probe"], raw["source"], data, raw.get("provenance") or {}, raw.get("reason"),
                   dict(raw.get("partial") or {}))

    def __repr__(self) -> str:
        return f"<ProbeResult {self.note()}>"


def module(name: str):
    if name not in REGISTRY:
        raise ParamError(f"unknown probe {name!r}: expected one of {', '.join(NAMES)}")
    return importlib.import_module(REGISTRY[name])


def recording_path(name: str) -> Path:
    return Path(RECORDINGS) / f"{name}.json"


def resolve_mode(mode: str | None) -> str:
    """The mode :func:`run` uses for ``mode``: itself, else ``FRAGLIFE_PROBES``, else "auto"."""
    return _mode(mode)


def _mode(mode: str | None) -> str:
    chosen = mode or os.environ.get(ENV, "auto") or "auto"
    if chosen not in MODES:
        where = "mode" if mode else f"environment variable {ENV}"
        raise ParamError(f"{where} = {chosen!r} is not allowed: expected one of {', '.join(MODES)}")
    return chosen


def load_recording(name: str, reason: str | None = None) -> ProbeResult:
    """The recorded result for ``name``, or an "unavailable" result saying what is wrong."""
    mod = module(name)
    path = recording_path(name)
    try:
        raw = json.loads(path.read_text())
    except FileNotFoundError:
        return ProbeResult(name, "unavailable", {}, {}, _join(reason, f"no recording at {path}"))
    except (OSError, ValueError) as e:
        return ProbeResult(name, "unavailable", {}, {}, _join(reason, f"recording {path} unreadable: {e}"))
    if not isinstance(raw, dict):
        return ProbeResult(name, "unavailable", {}, {}, _join(reason, f"recording {path} is not a JSON object"))
    data = {k: v for k, v in raw.items() if k not in META_KEYS}
    missing = [k for k in mod.REQUIRED if k not in data]
    if raw.get("probe") != name or missing:
        return ProbeResult(name, "unavailable", {}, {},
                           _join(reason, f"recording {path} is not a {name} result (missing {missing})"))
    return ProbeResult(name, "recorded", data, raw.get("provenance") or {}, reason,
                       dict(raw.get("partial") or {}), str(path))


def recordings_kernel() -> dict:
    """The kernel build every shipped recording was measured on: ``{"kernel", "machine", "cpu_model", "first",
    "last", "probes"}``; ``kernel`` lists every build found (one, when the recordings agree)."""
    builds, dates, machines, models = {}, [], set(), set()
    for name in NAMES:
        r = load_recording(name)
        if r.source != "recorded":
            continue
        builds.setdefault(r.kernel, []).append(name)
        dates.append(r.recorded_at or "")
        machines.add(r.provenance.get("machine", "?"))
        models.add(r.provenance.get("cpu_model", "?"))
    return {"kernel": sorted(builds), "probes": builds, "machine": sorted(machines), "cpu_model": sorted(models),
            "first": min(dates) if dates else None, "last": max(dates) if dates else None}


def _join(a: str | None, b: str) -> str:
    return f"{a}; {b}" if a else b


def _describe(e: BaseException) -> str:
    if isinstance(e, ProbeUnavailable):
        return str(e)
    if isinstance(e, PermissionError):
        return f"permission denied: {e}"
    if isinstance(e, OSError):
        return f"{type(e).__name__}: {e}"
    tb = traceback.extract_tb(e.__traceback__)
    where = f" at {Path(tb[-1].filename).name}:{tb[-1].lineno}" if tb else ""
    return f"probe failed{where}: {type(e).__name__}: {e}"


def _named(items: list, name: str):
    """The record called ``name`` in a list of records (a probe's transfers), or None."""
    return next((x for x in items if isinstance(x, dict) and x.get("name") == name), None)


def _dig(d: dict, path: str):
    """The part at a dotted path; a part of a list is the record of that ``name``; a key may hold dots itself
    (cow_mthp's cases, ``64k.none.child``), when the mapping has the rest of the path as one key."""
    parts = path.split(".")
    for i, part in enumerate(parts):
        if isinstance(d, dict) and ".".join(parts[i:]) in d:
            return d[".".join(parts[i:])]
        if isinstance(d, list):
            d = _named(d, part)
            continue
        if not isinstance(d, dict) or part not in d:
            return None
        d = d[part]
    return d


def _put(d: dict, path: str, value) -> None:
    parts = path.split(".")
    for i, part in enumerate(parts[:-1]):
        if isinstance(d, dict) and ".".join(parts[i:]) in d:  # a key with dots in it, in its place
            d[".".join(parts[i:])] = value
            return
        d = (_named(d, part) if isinstance(d, list) else d.setdefault(part, {}))
    if isinstance(d, list):  # the record of that name, in its place (else at the end)
        i = next((i for i, x in enumerate(d) if isinstance(x, dict) and x.get("name") == parts[-1]), None)
        value = {"name": parts[-1], **value}
        if i is None:
            d.append(value)
        else:
            d[i] = value
        return
    d[parts[-1]] = value


#: One live measurement at a time on this machine: the probes read machine-wide counters
#: (/proc/vmstat, tracepoints) that another probe's pins or packets would move, e.g. when
#: chapters run in parallel.
LOCK = Path(tempfile.gettempdir()) / "fraglife-probes.lock"
_held = threading.local()


@contextlib.contextmanager
def machine_lock():
    """Hold the machine-wide probe lock (re-entrant within a thread); goes on unlocked if the
    lock file cannot be opened."""
    if getattr(_held, "depth", 0):
        _held.depth += 1
        try:
            yield
        finally:
            _held.depth -= 1
        return
    try:
        fd = os.open(LOCK, os.O_RDONLY | os.O_CREAT, 0o644)
    except OSError:
        fd = None
    try:
        if fd is not None:
            fcntl.flock(fd, fcntl.LOCK_EX)
        _held.depth = 1
        yield
    finally:
        _held.depth = 0
        if fd is not None:
            os.close(fd)


def measure_live(name: str, quick: bool = False) -> ProbeResult:
    """Measure now; raises ProbeUnavailable (with the reason) if that cannot be done."""
    mod = module(name)
    provenance = system.summary()
    try:
        with machine_lock(), _perf.registrations_held():  # tracepoints stay registered between transfers
            _cleanup.sweep()  # what a killed probe left (namespaces, knobs, files) goes before anything is measured
            data = mod.measure(quick=quick)
    except ProbeUnavailable:
        raise
    except Exception as e:  # a probe never crashes its caller
        raise ProbeUnavailable(_describe(e)) from e
    missing = data.pop("_missing", {}) or {}
    partial = {}
    if missing:
        rec = load_recording(name)
        for path, why in missing.items():
            part = _dig(rec.data, path) if rec.source == "recorded" else None
            if isinstance(part, dict) and part:
                part = copy.deepcopy(part)
                part["source"] = "recorded"
                part["recorded_at"] = rec.recorded_at
                part.setdefault("kernel", rec.kernel)  # a model compares it on the rules of the kernel that counted it
                part["reason"] = why
                _put(data, path, part)
            else:
                _put(data, path, {"source": "unavailable", "reason": why})
            partial[path] = why
    return ProbeResult(name, "live", data, provenance, None, partial)


_cache: dict[tuple, ProbeResult] = {}


def run(name: str, mode: str | None = None, quick: bool = False, fresh: bool = False) -> ProbeResult:
    """The result of probe ``name``: live if the machine allows, else the recording.

    ``mode`` (default: environment variable ``FRAGLIFE_PROBES``, else "auto"):
    "auto" measures live and falls back to the recording; "live" never
    reads a recording (a failure gives source "unavailable" with the
    reason); "recorded" only reads the recording. Never raises for a
    machine problem; an unknown name or mode raises ParamError. Results are
    cached per process unless ``fresh``.
    """
    module(name)
    chosen = _mode(mode)
    key = (name, chosen, quick)
    if not fresh and key in _cache:
        return _cache[key]
    if chosen == "recorded":
        why = f"recorded results requested ({ENV}=recorded)" if not mode else "recorded results requested"
        result = load_recording(name, why)
    else:
        try:
            result = measure_live(name, quick=quick)
        except ProbeUnavailable as e:
            if chosen == "live":
                result = ProbeResult(name, "unavailable", {}, {}, str(e))
            else:
                result = load_recording(name, str(e))
    _cache[key] = result
    return result


def run_all(names=None, mode: str | None = None, quick: bool = False, fresh: bool = False) -> dict[str, ProbeResult]:
    return {n: run(n, mode=mode, quick=quick, fresh=fresh) for n in (names or NAMES)}


def combined_source(results) -> str:
    """One word for several results (a dict or list): "live", "recorded" or "unavailable" if all are
    that, else "mixed"."""
    kinds = {r.source for r in (results.values() if hasattr(results, "values") else results)}
    return kinds.pop() if len(kinds) == 1 else "mixed"


def notes(results):
    """A table of several results (a dict name -> result): probe, source and its one-line note."""
    import pandas as pd

    return pd.DataFrame([{"probe": n, "source": r.source, "note": r.note()} for n, r in results.items()])


def record(result: ProbeResult) -> Path:
    """Write a live result to ``data/probes/NAME.json``; refuses anything else."""
    if result.source != "live":
        raise ProbeUnavailable(f"{result.name}: not recorded: the result is {result.source} ({result.reason})")
    if result.partial:
        raise ProbeUnavailable(f"{result.name}: not recorded: parts came from the old recording: "
                               + ", ".join(result.partial))
    path = recording_path(result.name)
    write_json(path, result.to_json())
    return path

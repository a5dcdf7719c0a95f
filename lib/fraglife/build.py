"""One build, one set of numbers: the build id, its record, and the unit costs every chapter of it prices with.

A build is one execution of the book (``fraglife run``, and ``book``, ``slides`` or ``talk`` when
they execute the chapters). It is made once, before the first chapter starts (:func:`start`):

* an id, ``<UTC time>-<short commit>-<kernel release>`` (``20250530T120000Z-a88d492-6.18.44``),
  passed to every chapter's kernel in the environment variable :data:`ENV`;
* a record, ``build/builds/<id>.json`` (and ``build/build.json``, the build of ``build/executed/``):
  the commit, the kernel build, the machine, and the unit costs used: the ``atomics`` probe measured
  once for the whole build (its full run: rounds spread over about twenty seconds), each unit as a
  value with the range it moved over while the probe ran (:meth:`fraglife.model.costs.UnitCosts.span`).

Inside a build, ``kit.unit_costs`` reads the build's units (:func:`unit_costs`) instead of measuring
again, so every chapter of one build prices with the same costs; outside one (a reader in JupyterLab,
a test in library mode) nothing changes. The runner stamps each executed notebook with its build id
(:func:`stamp`); the publishers refuse to mix executions of different builds.

build.json::

    {"id": "...", "created": "2025-05-30T12:00:00+00:00",
     "commit": {"sha": "...", "short": "a88d492", "dirty": false},
     "kernel": {"release": "6.18.44-...", "version": "#1 SMP PREEMPT_DYNAMIC ..."},
     "machine": {"cpu_model": "AMD EPYC", "cpus": 2, "arch": "x86_64", "mem_total_kib": 24684100},
     "command": "fraglife run", "measurements": "live",
     "units": {"local_atomic_ns": {"value": 4.73, "low": 4.72, "high": 4.80, "unit": "ns/op",
                                   "source": "measured here (live)", "detail": "..."},
               "line_transfer_ns": {...}},
     "atomics": {... the atomics probe's result, as fraglife.probes.ProbeResult.to_json() ...}}
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import subprocess
import sys
import warnings
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, timezone
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterator

from . import paths, probes, system
from .model import costs

ENV = "FRAGLIFE_BUILD_ID"
RECORD = "build.json"
ARCHIVE = "builds"
#: Where an executed notebook carries its build: ``metadata[NOTEBOOK_KEY]["build"]``.
NOTEBOOK_KEY = "fraglife"
MEASUREMENTS = ("live", "recorded")
#: The units a build measures once and every chapter of it shares.
SHARED_UNITS = ("local_atomic_ns", "line_transfer_ns")


@dataclass(frozen=True)
class Build:
    """One build's record (build.json)."""

    id: str
    created: str
    commit: dict
    kernel: dict
    machine: dict
    command: str = ""
    measurements: str = "live"
    units: dict = field(default_factory=dict)
    atomics: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> "Build":
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in data.items() if k in known})

    @property
    def kernel_build(self) -> str:
        """The kernel as ``uname -r`` and ``uname -v`` say: release, then build number and date."""
        return " ".join(filter(None, (self.kernel.get("release"), self.kernel.get("version"))))

    @property
    def machine_line(self) -> str:
        m = self.machine
        return f"{m.get('cpu_model') or m.get('arch') or 'unknown CPU'}, {m.get('cpus', '?')} CPUs"

    @property
    def units_source(self) -> str:
        """Where the shared units come from: "measured live" or "recorded on <kernel>, <date>"."""
        a = self.atomics or {}
        if a.get("source") == "live":
            return "atomics probe, measured live"
        prov = a.get("provenance") or {}
        return f"atomics probe, recorded on {a.get('kernel') or prov.get('kernel')}, {prov.get('date')}"

    @property
    def commit_line(self) -> str:
        c = self.commit
        return f"{c.get('short') or 'unknown'}{' with local changes' if c.get('dirty') else ''}"


# ---------------------------------------------------------------- what a build is made of
def commit_info(root: Path = paths.ROOT) -> dict:
    """The checkout's commit: full and short hash, and whether tracked files differ from it."""
    def git(*args: str) -> str | None:
        try:
            out = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, timeout=20)
        except (OSError, subprocess.SubprocessError):
            return None
        return out.stdout.strip() if out.returncode == 0 else None

    sha = git("rev-parse", "HEAD")
    status = git("status", "--porcelain", "--untracked-files=no")
    return {"sha": sha, "short": sha[:7] if sha else None, "dirty": bool(status) if status is not None else None}


def kernel_info() -> dict:
    u = os.uname()
    return {"release": u.release, "version": u.version}


def machine_info() -> dict:
    return {"cpu_model": system.cpu_model(), "cpus": os.cpu_count(), "arch": platform.machine(),
            "mem_total_kib": system.summary().get("mem_total_kib")}


def new_id(now: datetime | None = None, commit: dict | None = None, kernel: dict | None = None) -> str:
    """``<UTC time>-<short commit>-<kernel release>``: sorts by time, says what ran where."""
    now = now or datetime.now(timezone.utc)
    commit = commit if commit is not None else commit_info()
    kernel = kernel if kernel is not None else kernel_info()
    release = "".join(c if c.isalnum() or c in ".-_+" else "_" for c in kernel.get("release") or "unknown")
    return f"{now.astimezone(timezone.utc):%Y%m%dT%H%M%SZ}-{commit.get('short') or 'nocommit'}-{release}"


def measure_units(measurements: str = "live") -> tuple[dict, dict]:
    """(units, the atomics probe's result as JSON): the shared units measured once, each with its range.

    "live": the probe's full run on this machine (else its recording, as the probes fall back);
    "recorded": the recording in data/probes/."""
    if measurements not in MEASUREMENTS:
        raise ValueError(f"measurements = {measurements!r} is not allowed: expected one of {', '.join(MEASUREMENTS)}")
    result = probes.run("atomics", mode=None if measurements == "live" else "recorded", quick=False, fresh=True)
    if result.source == "unavailable":
        return {}, result.to_json()
    units = costs.UnitCosts.from_atomics(result)
    return _unit_json(units), result.to_json()


def _unit_json(units: costs.UnitCosts) -> dict:
    out = {}
    for name in SHARED_UNITS:
        if name in units:
            u = units.unit(name)
            lo, hi = units.range_of(name)
            out[name] = {"value": u.value, "low": lo, "high": hi, "unit": u.unit, "source": u.source,
                         "detail": u.detail}
    return out


# ---------------------------------------------------------------- records
def archive_path(build_id: str) -> Path:
    return paths.BUILD / ARCHIVE / f"{build_id}.json"


def record_path() -> Path:
    return paths.BUILD / RECORD


def start(measurements: str = "live", *, command: str | None = None, book: bool = True) -> Build:
    """Make a build: its id, its unit costs measured once, its record written; sets :data:`ENV` in this
    process (whose children, the chapters' kernels, inherit it). ``book``: it executes into
    build/executed/, so build/build.json names it too."""
    commit, kernel = commit_info(), kernel_info()
    created = datetime.now(timezone.utc).replace(microsecond=0)
    units, atomics = measure_units(measurements)
    stamp = created
    while archive_path(new_id(stamp, commit, kernel)).exists():  # two builds in one second: the next free one
        stamp += timedelta(seconds=1)
    b = Build(new_id(stamp, commit, kernel), created.isoformat(), commit, kernel, machine_info(),
              command if command is not None else " ".join(["fraglife", *sys.argv[1:2]]),
              measurements, units, atomics)
    paths.write_json(archive_path(b.id), b.to_json())
    if book:
        paths.write_json(record_path(), b.to_json())
    os.environ[ENV] = b.id
    return b


def current_id() -> str | None:
    """The id of the build this process runs in (:data:`ENV`), or None outside a build."""
    return os.environ.get(ENV) or None


def load(build_id: str | None = None) -> Build | None:
    """Build ``build_id``'s record, or build/build.json's (the build of build/executed/) if None; None if
    there is none."""
    path = archive_path(build_id) if build_id else record_path()
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        if build_id:  # build.json may name it while the archive was cleaned
            latest = load()
            return latest if latest is not None and latest.id == build_id else None
        return None
    return Build.from_json(data) if isinstance(data, dict) and data.get("id") else None


def current() -> Build | None:
    """The record of the build this process runs in, or None outside a build."""
    bid = current_id()
    return load(bid) if bid else None


@contextlib.contextmanager
def scope(measurements: str = "live", *, command: str | None = None, book: bool = True) -> Iterator[Build]:
    """The build to run in: the one this process is in already (``fraglife book`` executing through the
    runner), else a new one (:func:`start`); :data:`ENV` is put back afterwards."""
    had = os.environ.get(ENV)
    b = load(had) if had else None
    try:
        yield b if b is not None else start(measurements, command=command, book=book)
    finally:
        if had is None:
            os.environ.pop(ENV, None)
        else:
            os.environ[ENV] = had


# ---------------------------------------------------------------- what chapters read
@lru_cache(maxsize=8)
def _units_of(build_id: str) -> costs.UnitCosts | None:
    b = load(build_id)
    if b is None or not b.units or not b.atomics:
        return None
    return costs.UnitCosts.from_atomics(b.atomics)


def unit_costs(measurements: str | None = None) -> costs.UnitCosts | None:
    """The build's unit costs (the atomics probe's, measured once for the build), or None outside a build.

    None too when the chapter asks for the recording (``measurements="recorded"``) while the build measured
    live: the chapter's parameter wins, and it prices as it would outside a build."""
    bid = current_id()
    if not bid:
        return None
    units = _units_of(bid)
    if units is None:
        warnings.warn(f"build {bid}: no unit costs recorded in {archive_path(bid)}; measuring them here", stacklevel=2)
        return None
    if measurements == "recorded" and load(bid).atomics.get("source") == "live":
        return None
    return units


# ---------------------------------------------------------------- probes shared by a build's chapters
def probes_dir(build_id: str) -> Path:
    """Where build ``build_id`` keeps the live probe results its chapters share."""
    return paths.BUILD / ARCHIVE / f"{build_id}.probes"


_shared: dict[tuple, probes.ProbeResult] = {}


def probe(name: str, mode: str | None = None, *, quick: bool = True) -> probes.ProbeResult:
    """Probe ``name`` as :func:`fraglife.probes.run` does; inside a build, a live result is measured once for
    all the build's chapters (as its unit costs are): the first chapter to ask measures it, holding the
    probes' machine lock, and leaves it in :func:`probes_dir`, where the others (waiting on that lock when
    they run beside it) read it. Outside a build, or when the recording is asked for, nothing changes."""
    bid = current_id()
    if not bid or probes.resolve_mode(mode) == "recorded":
        return probes.run(name, mode=mode, quick=quick)
    key = (bid, name, probes.resolve_mode(mode), quick)
    if key in _shared:
        return _shared[key]
    path = probes_dir(bid) / f"{name}{'.quick' if quick else ''}.json"
    with probes.machine_lock():
        try:
            result = probes.ProbeResult.from_json(json.loads(path.read_text()))
        except (OSError, ValueError, KeyError):
            result = probes.run(name, mode=mode, quick=quick)
            if result.source == "live":
                paths.write_json(path, result.to_json())
    _shared[key] = result
    return result


# ---------------------------------------------------------------- executed notebooks
def stamp(nb: Any, build_id: str | None) -> None:
    """Mark an executed notebook (an nbformat node or its JSON dict) with the build it ran in."""
    meta = nb["metadata"] if isinstance(nb, dict) else nb.metadata
    meta.setdefault(NOTEBOOK_KEY, {})["build"] = {"id": build_id}


def stamped(nb: Any) -> str | None:
    """The build id an executed notebook carries, or None."""
    meta = nb["metadata"] if isinstance(nb, dict) else nb.metadata
    return ((meta.get(NOTEBOOK_KEY) or {}).get("build") or {}).get("id")


def stamped_file(path: Path) -> str | None:
    try:
        return stamped(json.loads(Path(path).read_text()))
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None

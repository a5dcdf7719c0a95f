"""``fraglife warm``: compile the library's kernels into numba's cache ahead of their first use, one job per
process.

A kernel compiles in the first process that calls it, and numba compiles in one thread: from a fresh clone, the
explorer, the engine and the generators take several minutes of one core before the first chapter or test that
uses each of them can start. Compiled here, in parallel processes, they load from the cache in seconds wherever
they are used next (``make test`` runs this first). Each job is a list of ``module:function`` names that take no
argument, run in order in one process, so that what they share compiles once; the jobs run longest first.
"""

from __future__ import annotations

import time
from concurrent.futures import ProcessPoolExecutor

from . import system
from .jit import CACHE
from .paths import named

#: the jobs, longest first (from an empty cache here: about 195 s, 146 s and 28 s; the generators' job replays what
#: they make and so compiles the engine's replay too, leaving the engine's job its handlers one by one, as
#: engine.step calls them: the second process ends before the first)
JOBS: tuple[tuple[str, ...], ...] = (
    ("fraglife.model.explorer:warm", "fraglife.sweep.explore:warm"),
    ("fraglife.model.workloads:warm",),
    ("fraglife.model.engine:warm",),
)


def run_job(job: tuple[str, ...]) -> float:
    """Run one job's functions in order; returns its seconds."""
    t0 = time.perf_counter()
    for target in job:
        named(target)()
    return time.perf_counter() - t0


def warm(jobs: int | None = None) -> list[tuple[tuple[str, ...], float]]:
    """Every job of :data:`JOBS`, ``jobs`` processes at a time (default: up to 2, one per core); returns each job
    with its seconds, or nothing when numba cannot cache here (:data:`fraglife.jit.CACHE`): what a process
    compiled would then be lost with it."""
    if not CACHE:
        return []
    with ProcessPoolExecutor(max_workers=system.processes(jobs, len(JOBS))) as pool:
        return list(zip(JOBS, pool.map(run_job, JOBS)))


def register(sub) -> None:
    p = sub.add_parser("warm", help="compile the library's kernels into numba's cache, in parallel processes",
                       description="Compile the explorer, the engine and the workload generators (or load them from "
                                   "numba's cache) in parallel processes, so that the chapters and tests that use "
                                   "them next load them in seconds. `make test` runs this first.")
    p.add_argument("-j", "--jobs", type=int, default=None, help="processes at once (default: up to 2)")
    p.set_defaults(func=_cli)


def _cli(args) -> int:
    done = warm(args.jobs)
    if not done:
        print("numba cannot cache here (the package's __pycache__ is not writable; see fraglife.jit): nothing to warm")
    for job, seconds in done:
        print(f"{seconds:6.1f} s  {', '.join(job)}")
    return 0

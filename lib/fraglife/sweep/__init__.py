"""``fraglife sweep``: a chapter's result over a grid of parameters, on dask.distributed.

A sweep is the cartesian product of a few parameter axes of one chapter. Every
point is checked by the chapter's own :class:`~fraglife.params.ParamSpec`
before anything runs, so a bad value fails the whole sweep up front with the
same :class:`~fraglife.params.ParamError` as ``fraglife run -p``. The points
then run on a dask.distributed cluster: an in-process ``LocalCluster`` of
worker processes by default (one thread each: the numba engine is CPU-bound),
or an existing scheduler given by address.

Two modes:

* ``library`` (default): each point builds the chapter's ``Results`` for the
  point's parameters and returns its headline record plus its claims'
  verdicts as columns (``claim.NAME``, ``claims_ok``, ``claims_total``,
  numeric ``evidence.NAME.KEY``), all from one computation; ``claims=False``
  (``--no-claims``) calls only ``headline(**params)``. A point checks the
  claims declared per point; those that need other workloads or settings, a
  grid of their own, the probes' transfers or the explorer are the chapter
  run's, and the summary and ``sweep.json`` (``claims_left_out``) name them;
  ``--all-claims`` checks every claim at every point.
* ``notebook``: each point executes the chapter notebook with papermill
  through :func:`fraglife.runner.run_chapters`; the executed copy is kept under
  the sweep's ``notebooks/`` and the chapter's checked claims become columns.

Output, under ``build/sweeps/NAME/``::

    sweep.json          what was swept: chapter, mode, grid, metric, counts, cluster
    points/KEY.json     one record per finished point, written as it completes
    results.parquet     the tidy table: one row per point (also results.csv)
    results.csv
    chart.svg           the default chart (static, rendered by vl-convert)
    notebooks/KEY.ipynb executed notebooks (notebook mode)

A point's KEY is a hash of the chapter, the mode and all of the point's
parameters; ``--resume`` reuses every finished point whose record is there
and runs only the rest (points that failed are run again).

The package: :mod:`.grid` (axes and points, checked), :mod:`.cluster` (the
dask cluster), :mod:`.run` (points, table, manifest, resume, bench); the chart
is drawn by :mod:`fraglife.views.sweep`.
"""

from __future__ import annotations

from pathlib import Path

from ..params import ParamError
from .cluster import LOCAL_CLUSTER_OPTIONS, Cluster, connect, default_workers, warm, worker_addresses
from .grid import MODES, Point, default_name, parse_grid, plan, point_key
from .run import (DEFAULT_TIMEOUT, NOT_RUN, PROBE_SOURCES, PROVENANCE_COLUMNS, VOLATILE_COLUMNS, Sweep, bench,
                  bench_section, chart, execute, load, pick_metric, result_columns, run_point, run_sweep, table)

__all__ = ["LOCAL_CLUSTER_OPTIONS", "Cluster", "connect", "default_workers", "warm", "worker_addresses", "MODES",
           "Point", "default_name", "parse_grid", "plan", "point_key", "DEFAULT_TIMEOUT", "NOT_RUN", "PROBE_SOURCES",
           "PROVENANCE_COLUMNS", "VOLATILE_COLUMNS", "Sweep", "bench", "bench_section", "chart", "execute", "load",
           "pick_metric", "result_columns", "run_point", "run_sweep", "table", "register"]


# -- the command -----------------------------------------------------------------------------

def register(sub) -> None:
    p = sub.add_parser("sweep", help="a chapter's result over a parameter grid, on dask.distributed",
                       description="Run a chapter over the cartesian product of parameter values on a dask "
                                   "cluster; write one tidy table (Parquet + CSV) and a chart.")
    p.add_argument("chapter", help="chapter id or number, e.g. 01 or 01_refcount_removal")
    p.add_argument("--grid", action="append", default=[], metavar="NAME=V1,V2,...",
                   help="one axis of the grid (repeat for more axes); a value may be a range "
                        "START..STOP:STEP or START..STOP*FACTOR")
    p.add_argument("--mode", choices=MODES, default="library",
                   help="library: the chapter's headline and claims from its Results (fast, default); "
                        "notebook: execute the notebook per point with papermill")
    p.add_argument("--scheduler", metavar="ADDRESS", default=None,
                   help="an existing dask scheduler (tcp://host:8786); default: a LocalCluster here")
    p.add_argument("--workers", type=int, default=None,
                   help="LocalCluster worker processes (default: one per core); with --scheduler, wait for this many")
    p.add_argument("--out", type=Path, default=None, help="output directory (default build/sweeps/NAME)")
    p.add_argument("--resume", action="store_true", help="reuse finished points already in the output directory")
    p.add_argument("--metric", default=None, help="result column for the chart's y axis (default: the first)")
    p.add_argument("--timeout", type=int, default=DEFAULT_TIMEOUT, help="per-cell timeout in notebook mode (s)")
    p.add_argument("--no-claims", action="store_true",
                   help="library mode: the headline only, without the chapter's claims' verdicts")
    p.add_argument("--all-claims", action="store_true",
                   help="library mode: check every claim at every point, also those that need other workloads, "
                        "grids or probes (the chapter run's; by default left out and named)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=_cli)


def _cli(args) -> int:
    if args.workers is not None and args.workers < 1:
        raise ParamError(f"--workers {args.workers} is not allowed: expected an integer >= 1")
    if args.all_claims and args.no_claims:
        raise ParamError("--all-claims and --no-claims are not allowed together: choose one")
    claims = "all" if args.all_claims else not args.no_claims
    result = run_sweep(args.chapter, args.grid, mode=args.mode, out=args.out, scheduler=args.scheduler,
                       workers=args.workers, resume=args.resume, metric=args.metric, timeout=args.timeout,
                       progress=not args.no_progress, claims=claims)
    print(result.summary())
    if not result.complete:
        return 130
    return 1 if result.failed else 0


"""Running a sweep: each point on a worker, the tidy table, the manifest, resume, bench."""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

from .. import __version__, claims as claims_mod
from ..chapters import Chapter, get as get_chapter
from ..params import ParamError
from ..paths import build_dir, write_json
from .cluster import connect, default_workers, warm, worker_addresses
from .grid import Point, default_name, plan, point_key

#: Columns that differ between two runs of the same sweep (timing and placement).
VOLATILE_COLUMNS = ("duration_s", "worker")
#: Provenance columns every row carries, after the parameters and results.
PROVENANCE_COLUMNS = ("error", "chapter", "mode", "fraglife_version", "probes", "key", "duration_s", "worker")
#: Values a headline may report under the key "probes" (taken out of the results).
PROBE_SOURCES = ("live", "recorded", "mixed", "unavailable", "none")
#: The error of a point an interrupted sweep did not reach.
NOT_RUN = "not run (the sweep was interrupted)"
DEFAULT_TIMEOUT = 900  # per cell, notebook mode


# -- one point, on a worker ----------------------------------------------------------------

def _plain(value: Any) -> Any:
    if hasattr(value, "item") and callable(value.item) and getattr(value, "shape", None) == ():
        return value.item()  # numpy scalar
    if isinstance(value, (bool, int, float, str)) or value is None:
        return value
    return json.dumps(value, default=str)


def _flatten(record: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in record.items():
        name = f"{prefix}{k}"
        if isinstance(v, Mapping):
            out.update(_flatten(v, name + "."))
        else:
            out[name] = _plain(v)
    return out


def _worker_name() -> str:
    try:
        from distributed import get_worker

        return get_worker().address
    except (ImportError, ValueError):
        return f"pid {os.getpid()}"


_FIRST_CALL = threading.Lock()
_WARM: set = set()


def _call_first_alone(name: Any, fn: Callable, params: dict) -> Any:
    """Call ``fn(**params)``; the first call under ``name`` in this process runs alone.

    Two threads making the first call of a numba function at once both
    compile it (tens of seconds instead of a cache load) and can fail inside
    numba's inliner. Threaded workers (``processes=False``, or a ``dask
    worker`` with several threads) hit that; one lock around the first call
    of each headline avoids it, and later calls run concurrently.
    """
    if name not in _WARM:
        with _FIRST_CALL:
            if name not in _WARM:
                out = fn(**params)
                _WARM.add(name)
                return out
    return fn(**params)


def _headline_and_claims(module, every: bool = False, **params) -> dict:
    """One computation of the chapter's Results: its headline, then its per-point claims' verdicts as columns
    (the rest belong to the chapter run, :func:`fraglife.claims.per_point`; ``every``: all of them)."""
    R = module.Results(params)
    kept = module.CLAIMS if every else claims_mod.per_point(module.CLAIMS)[0]
    return {**R.headline, **claims_mod.columns(claims_mod.evaluate(kept, R))}


def claims_left_out(chapter: Chapter, mode: str = "library", claims: bool | str = True) -> tuple[str, ...]:
    """The chapter's claims a library-mode sweep point does not check (the chapter run does); none with
    ``claims="all"``."""
    if mode != "library" or claims == "all":
        return ()
    return claims_mod.per_point(chapter.claims)[1]


def _library_point(chapter_id: str, params: dict, func: Callable | None, claims: bool | str = True) -> dict:
    if func is not None:
        name, fn = (getattr(func, "__module__", None), getattr(func, "__qualname__", repr(func))), func
    else:
        module = get_chapter(chapter_id).module()
        if claims and getattr(module, "CLAIMS", ()):
            every = claims == "all"
            name, fn = (module.__name__, "claims"), lambda **p: _headline_and_claims(module, every, **p)
        else:
            name, fn = (module.__name__, "headline"), module.headline
    record = _call_first_alone(name, fn, params)
    if not isinstance(record, Mapping):
        raise TypeError(f"the headline of {chapter_id} returned {type(record).__name__}, not a dict")
    return dict(record)


_NOTEBOOK_LOCK = threading.Lock()


def _notebook_point(chapter_id: str, params: dict, timeout: int) -> tuple[dict, str | None, str | None]:
    """Execute the chapter once; returns (claims record, error, executed notebook text)."""
    from .. import runner

    ch = get_chapter(chapter_id)
    # FRAGLIFE_BUILD is process-wide and the kernel inherits it: one notebook at a time per process.
    with _NOTEBOOK_LOCK, tempfile.TemporaryDirectory(prefix="fraglife-sweep-") as tmp:
        saved = os.environ.get("FRAGLIFE_BUILD")
        os.environ["FRAGLIFE_BUILD"] = str(Path(tmp) / "build")
        try:
            (result,) = runner.run_chapters([ch.id], parameters={ch.id: params}, out_dir=Path(tmp) / "executed",
                                            timeout=timeout, jobs=1)
        finally:
            if saved is None:
                os.environ.pop("FRAGLIFE_BUILD", None)
            else:
                os.environ["FRAGLIFE_BUILD"] = saved
        nb_path = Path(result.output)
        notebook = nb_path.read_text() if nb_path.exists() else None
        record: dict[str, Any] = {}
        claims_file = Path(tmp) / "build" / "claims" / f"{ch.number}.json"
        if claims_file.exists():
            record.update(claims_mod.columns(json.loads(claims_file.read_text()).get("claims", [])))
        error = None if result.ok else result.describe().splitlines()[0]
        return record, error, notebook


def run_point(chapter_id: str, mode: str, key: str, params: dict, func: Callable | None = None,
              timeout: int = DEFAULT_TIMEOUT, claims: bool | str = True) -> dict:
    """Run one point (this is what a dask worker executes); never raises for the point's own failure."""
    start = time.perf_counter()
    notebook = None
    try:
        if mode == "library":
            result, error = _library_point(chapter_id, params, func, claims), None
        else:
            result, error, notebook = _notebook_point(chapter_id, params, timeout)
    except Exception as e:  # a failed point is recorded, never lost
        result, error = {}, f"{type(e).__name__}: {e}".strip()
    duration = time.perf_counter() - start
    result = _flatten(result)
    probes = result.pop("probes", None)
    return {
        "key": key,
        "params": params,
        "result": result,
        "error": error,
        "probes": probes if probes in PROBE_SOURCES else "n/a",
        "duration_s": duration,
        "worker": _worker_name(),
        "notebook": notebook,
    }


# -- running a sweep -----------------------------------------------------------------------

def execute(client, chapter: Chapter, mode: str, points: list[Point], *, func: Callable | None = None,
            timeout: int = DEFAULT_TIMEOUT, on_done: Callable[[Point, dict], None] | None = None,
            progress: bool = True, workers: list[str] | None = None,
            claims: bool | str = True) -> dict[str, dict]:
    """Run ``points`` on ``client``; returns {key: record}. ``on_done`` sees each record as it completes."""
    from distributed import as_completed

    by_future = {}
    where = {"workers": workers, "allow_other_workers": False} if workers else {}
    for p in points:
        fut = client.submit(run_point, chapter.id, mode, p.key, p.params, func, timeout, claims, pure=False, **where)
        by_future[fut] = p
    records: dict[str, dict] = {}
    bar = None
    if progress and points:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(points), desc=f"sweep {chapter.number}", unit="pt", file=sys.stderr, mininterval=0.5)
    failed = 0
    try:
        for fut in as_completed(list(by_future)):
            p = by_future[fut]
            try:
                rec = fut.result()
            except Exception as e:  # worker died, task lost: the point is still recorded
                rec = {"key": p.key, "params": p.params, "result": {}, "error": f"{type(e).__name__}: {e}".strip(),
                       "probes": "n/a", "duration_s": float("nan"), "worker": None, "notebook": None}
            fut.release()
            records[p.key] = rec
            failed += rec["error"] is not None
            if on_done is not None:
                on_done(p, rec)
            if bar is not None:
                bar.update(1)
                if failed:
                    bar.set_postfix(failed=failed, refresh=False)
    except BaseException:
        client.cancel(list(by_future))
        raise
    finally:
        if bar is not None:
            bar.close()
    return records


def _load_points(points_dir: Path) -> dict[str, dict]:
    out = {}
    for f in sorted(points_dir.glob("*.json")):
        try:
            rec = json.loads(f.read_text())
        except (OSError, ValueError):
            continue  # a torn write from an interrupted run: that point runs again
        if isinstance(rec, dict) and rec.get("key") == f.stem:
            out[f.stem] = rec
    return out


def table(chapter: Chapter, mode: str, axes: Mapping[str, list], points: list[Point], records: Mapping[str, dict]):
    """One tidy row per point in grid order: parameters, results, then provenance."""
    import pandas as pd

    param_cols = list(axes) + [p.name for p in chapter.spec if p.name not in axes]
    result_cols: list[str] = []
    for p in points:
        rec = records.get(p.key)
        for k in (rec or {}).get("result", {}):
            if k not in result_cols:
                result_cols.append(k)
    reserved = set(param_cols) | set(PROVENANCE_COLUMNS) | {"point", "notebook"}
    rename = {k: (f"result.{k}" if k in reserved else k) for k in result_cols}
    rows = []
    for p in points:
        rec = records.get(p.key) or {"result": {}, "error": NOT_RUN, "probes": "n/a", "duration_s": float("nan"),
                                     "worker": None}
        row = {"point": p.index}
        row.update({c: p.params[c] for c in param_cols})
        res = rec.get("result", {})
        row.update({rename[k]: res.get(k) for k in result_cols})
        if mode == "notebook":
            row["notebook"] = rec.get("notebook_path")
        row.update({"error": rec.get("error"), "chapter": chapter.id, "mode": mode, "fraglife_version": __version__,
                    "probes": rec.get("probes", "n/a"), "key": p.key, "duration_s": rec.get("duration_s"),
                    "worker": rec.get("worker")})
        rows.append(row)
    columns = ["point", *param_cols, *rename.values(), *(["notebook"] if mode == "notebook" else []),
               *PROVENANCE_COLUMNS]
    df = pd.DataFrame(rows, columns=columns)
    df["error"] = df["error"].astype(object).where(df["error"].notna(), None)
    return df


def result_columns(df, axes: Iterable[str] = ()) -> list[str]:
    """The numeric result columns of a sweep table, in order."""
    from ..views.sweep import is_numeric

    skip = {"point", "notebook", *PROVENANCE_COLUMNS, *axes}
    spec_cols = set()
    chapter_ids = set(df["chapter"]) if "chapter" in df and len(df) else set()
    for cid in chapter_ids:
        spec_cols |= {p.name for p in get_chapter(cid).spec}
    out = []
    for c in df.columns:
        if c in skip or c in spec_cols:
            continue
        if is_numeric(df[c]):
            out.append(c)
    return out


def pick_metric(df, axes: Iterable[str] = (), metric: str | None = None) -> str:
    cols = result_columns(df, axes)
    if metric is None:
        if not cols:
            raise ParamError("the sweep produced no numeric result column to chart")
        return cols[0]
    if metric not in cols:
        raise ParamError(f"--metric {metric!r} is not a numeric result column of this sweep; "
                         f"choose from: {', '.join(cols) or '(none)'}")
    return metric


def chart(df, axes: Iterable[str], metric: str | None = None, *, title: str | None = None,
          labels: Mapping[str, str] | None = None):
    """The default chart of a sweep table (:func:`fraglife.views.sweep.chart`), ``metric`` checked first.

    ``metric`` defaults to the first numeric result column. A parameter's axis
    is titled by its meaning (:func:`axis_labels`); ``labels`` adds or
    overrides titles (the metric's, with its unit). Returns None when no point
    succeeded.
    """
    from ..views.sweep import chart as draw

    axes = list(axes)
    return draw(df, axes, pick_metric(df, axes, metric), title=title, labels={**axis_labels(df), **(labels or {})})


# A parameter's unit from its name's suffix, for a meaning that does not name it ("txc_us").
NAME_UNITS = {"_us": "µs", "_ns": "ns", "_kib": "KiB", "_mib": "MiB", "_gib": "GiB", "_gbit": "Gbit/s"}


def axis_labels(df) -> dict[str, str]:
    """Each swept parameter's title: its meaning up to the first comma or bracket ("share of segments lost on the
    wire", "pages per folio of the memory sent"), which names what it counts or its unit (the whole meaning when
    only its rest does, unless its name ends in a unit: "completion_us": "... the TX completion (µs)")."""
    from ..views.checks import has_unit

    out = {}
    for cid in (set(df["chapter"]) if "chapter" in df and len(df) else set()):
        for p in get_chapter(cid).spec:
            label = re.split(r",| \(|;", p.help, maxsplit=1)[0].strip() or p.name
            unit = next((u for end, u in NAME_UNITS.items() if p.name.endswith(end)), None)
            if not has_unit(label):
                # the unit its name ends in, else the whole meaning ("physrange_send only (...): bytes per frag")
                label = f"{label} ({unit})" if unit else p.help
            out[p.name] = label
    return out


@dataclass
class Sweep:
    """A finished (or interrupted) sweep: its table, chart and where they are."""

    chapter: str
    mode: str
    axes: dict[str, list]
    table: Any  # pandas DataFrame
    metric: str | None
    chart: Any  # altair chart or None
    out: Path
    ran: int
    skipped: int
    failed: int  # points that ran and raised
    seconds: float
    cluster: str
    complete: bool = True
    chart_error: str | None = None
    not_run: int = 0
    claims_left_out: tuple[str, ...] = ()

    @property
    def files(self) -> dict[str, Path]:
        names = {"table": "results.parquet", "csv": "results.csv", "chart": "chart.svg", "manifest": "sweep.json"}
        return {k: self.out / v for k, v in names.items() if (self.out / v).exists()}

    def summary(self) -> str:
        n = len(self.table)
        state = "" if self.complete else " (INTERRUPTED: re-run with --resume to finish)"
        left = f", {self.not_run} not run" if self.not_run else ""
        lines = [f"{self.chapter} {self.mode} sweep: {n} points, {n - self.failed - self.not_run} ok, "
                 f"{self.failed} failed{left}, {self.skipped} reused (--resume), {self.ran} run in "
                 f"{self.seconds:.1f} s on {self.cluster}{state}"]
        for k, p in self.files.items():
            lines.append(f"  {k:<8} {p}")
        if self.metric:
            lines.append(f"  metric   {self.metric}")
        if self.claims_left_out:
            lines.append(f"  claims left to the chapter run (not per point): {', '.join(self.claims_left_out)}")
        if self.chart_error:
            lines.append(f"  no chart: {self.chart_error}")
        if self.failed:
            bad = self.table[self.table["error"].notna() & (self.table["error"] != NOT_RUN)]
            for _, row in bad.head(5).iterrows():
                vals = ", ".join(f"{a}={row[a]!r}" for a in self.axes)
                lines.append(f"  failed point {row['point']} ({vals}): {row['error']}")
            if len(bad) > 5:
                lines.append(f"  ... and {len(bad) - 5} more (see the error column)")
        return "\n".join(lines)


def run_sweep(chapter: Chapter | str, grid=None, *, mode: str = "library", out: str | Path | None = None,
              scheduler: str | None = None, workers: int | None = None, processes: bool = True,
              client=None, resume: bool = False, metric: str | None = None, func: Callable | None = None,
              timeout: int = DEFAULT_TIMEOUT, progress: bool = True, claims: bool | str = True) -> Sweep:
    """Run a sweep and write its table, chart and manifest; see :mod:`fraglife.sweep`.

    ``grid`` as for :func:`parse_grid`. The cluster: ``client`` (an existing
    dask Client, left open), else ``scheduler`` (an address), else a new
    LocalCluster (``workers`` processes, or threads with ``processes=False``).
    ``func`` replaces the chapter's headline in library mode (it receives the
    same keyword arguments; tests use it). In library mode each point also
    evaluates the chapter's per-point claims on the same results (columns
    ``claim.NAME``, ``claims_ok``...; the others are named in the manifest's
    ``claims_left_out``), every claim with ``claims="all"``, none with
    ``claims=False``. Everything is validated before the cluster starts.
    """
    ch, axes, points = plan(chapter, grid, mode, claims)
    if func is not None and mode != "library":
        raise ParamError("a headline function override only applies to library mode")
    out_dir = Path(out) if out is not None else build_dir("sweeps") / default_name(ch, axes, mode)
    points_dir = out_dir / "points"
    wanted = {p.key for p in points}
    records = {k: r for k, r in _load_points(points_dir).items() if k in wanted and r.get("error") is None} \
        if resume else {}
    todo = [p for p in points if p.key not in records]

    start = time.perf_counter()
    cluster = None
    if todo:  # connect before writing anything: a wrong --scheduler leaves no trace
        if scheduler is None and client is None:
            workers = workers or default_workers(len(todo))
        cluster = connect(scheduler, workers=workers, processes=processes, client=client)
    try:
        return _run(ch, axes, points, mode, out_dir, records, todo, cluster, start, resume=resume, metric=metric,
                    func=func, timeout=timeout, progress=progress, claims=claims)
    finally:
        if cluster is not None:
            cluster.close()


def _run(ch, axes, points, mode, out_dir, records, todo, cluster, start, *, resume, metric, func, timeout,
         progress, claims) -> Sweep:
    points_dir, nb_dir = out_dir / "points", out_dir / "notebooks"
    out_dir.mkdir(parents=True, exist_ok=True)
    if not resume:  # a fresh run of this sweep: forget the old point records
        shutil.rmtree(points_dir, ignore_errors=True)
        shutil.rmtree(nb_dir, ignore_errors=True)
    points_dir.mkdir(exist_ok=True)
    if mode == "notebook":
        nb_dir.mkdir(exist_ok=True)
    manifest = {"chapter": ch.id, "mode": mode, "grid": axes, "points": len(points), "fraglife_version": __version__,
                "metric": metric, "status": "running", "resumed": len(records),
                "claims": claims and func is None and mode == "library" or mode == "notebook"}
    if claims and func is None and mode == "library":
        manifest["claims_left_out"] = list(claims_left_out(ch, mode, claims))
    write_json(out_dir / "sweep.json", manifest, default=str)

    def on_done(p: Point, rec: dict) -> None:
        nb = rec.pop("notebook", None)
        if nb is not None:
            path = nb_dir / f"{p.key}.ipynb"
            path.write_text(nb)
            rec["notebook_path"] = str(path.relative_to(out_dir))
        rec["point"] = p.index
        write_json(points_dir / f"{p.key}.json", rec, default=str)

    complete, desc = True, "no cluster (every point reused)"
    new: dict[str, dict] = {}
    if cluster is not None:
        desc = cluster.description
        try:
            new = execute(cluster.client, ch, mode, todo, func=func, timeout=timeout, on_done=on_done,
                          progress=progress, claims=claims)
        except KeyboardInterrupt:
            complete = False
            new = {k: r for k, r in _load_points(points_dir).items() if k in {p.key for p in todo}}
        finally:
            cluster.close()
    seconds = time.perf_counter() - start
    records.update(new)

    df = table(ch, mode, axes, points, records)
    df.to_parquet(out_dir / "results.parquet", index=False)
    df.to_csv(out_dir / "results.csv", index=False)
    not_run = int((df["error"] == NOT_RUN).sum())
    failed = int(df["error"].notna().sum()) - not_run
    chosen, fig, chart_error = None, None, None
    try:
        chosen = pick_metric(df, axes, metric)
        fig = chart(df, axes, chosen)
        if fig is None:
            chart_error = "no point succeeded"
    except ParamError as e:
        chart_error = str(e)
    chart_path = out_dir / "chart.svg"
    if fig is not None:
        from ..views.plots import save

        save(fig, chart_path)
    elif chart_path.exists():
        chart_path.unlink()
    manifest.update({"status": "finished" if complete else "interrupted", "metric": chosen, "ran": len(new),
                     "failed": failed, "not_run": not_run, "seconds": seconds, "cluster": desc, "chart_error": chart_error})
    write_json(out_dir / "sweep.json", manifest, default=str)
    result = Sweep(ch.id, mode, axes, df, chosen, fig, out_dir, ran=len(new), skipped=len(points) - len(todo),
                   failed=failed, seconds=seconds, cluster=desc, complete=complete, chart_error=chart_error,
                   not_run=not_run, claims_left_out=tuple(manifest.get("claims_left_out", ())))
    if metric is not None and chart_error and chosen is None:
        raise ParamError(f"{chart_error} (the table is written: {out_dir / 'results.parquet'})")
    return result


def load(out: str | Path):
    """A finished sweep's table (pandas) and its manifest, from its output directory."""
    import pandas as pd

    out = Path(out)
    return pd.read_parquet(out / "results.parquet"), json.loads((out / "sweep.json").read_text())


# -- fraglife bench ------------------------------------------------------------------------

BENCH_CHAPTER = "01_refcount_removal"
#: A fixed grid of chapter 01, heavy enough per point (~0.1 s) that dask's per-task cost is small.
BENCH_GRID = {"loss_rate": [0.0, 0.01, 0.02, 0.05], "folio_pages": [1, 16, 512], "seed": [1, 2],
              "bytes_sent": [64 << 20]}


def bench(grid: Mapping[str, Any] | None = None, *, client=None, repeats: int = 1) -> dict:
    """Sweep throughput (points/s) with 1 worker and with 2, and with 2 when each point carries its per-point
    claims (``claims.ratio``: seconds with claims over seconds without), measured in one run on one cluster.

    A LocalCluster of two single-threaded worker processes is started (or
    ``client`` used; it needs two workers); both are warmed (numba's cache
    loaded) before timing; the 1-worker run pins every point to one of them.
    """
    ch, _, points = plan(BENCH_CHAPTER, grid or BENCH_GRID, claims=False)
    with connect(workers=2, client=client) as cluster:
        c = cluster.client
        c.wait_for_workers(2, timeout=120)
        addrs = worker_addresses(c)[:2]
        warm(c, ch.id, points[0].params, workers=addrs)
        report: dict[str, Any] = {"chapter": ch.id, "points": len(points),
                                  "grid": {k: list(v) for k, v in (grid or BENCH_GRID).items()},
                                  "cpus": os.cpu_count()}
        for n in (1, 2):
            best = math.inf
            for _ in range(max(1, repeats)):
                t0 = time.perf_counter()
                recs = execute(c, ch, "library", points, progress=False, workers=addrs[:n], claims=False)
                best = min(best, time.perf_counter() - t0)
                errors = [r["error"] for r in recs.values() if r["error"]]
                if errors:
                    raise RuntimeError(f"bench sweep point failed: {errors[0]}")
            report[f"workers_{n}"] = {"points_per_s": len(points) / best, "seconds": best}
        # the same points carrying their per-point claims, on the same two workers, in the same run
        with_claims = [Point(p.index, point_key(ch.id, "library", p.params, True), p.params) for p in points]
        best = math.inf
        for _ in range(max(1, repeats)):
            t0 = time.perf_counter()
            recs = execute(c, ch, "library", with_claims, progress=False, workers=addrs, claims=True)
            best = min(best, time.perf_counter() - t0)
            errors = [r["error"] for r in recs.values() if r["error"]]
            if errors:
                raise RuntimeError(f"bench sweep point failed: {errors[0]}")
        kept, left = claims_mod.per_point(ch.claims)
        report["claims"] = {"points_per_s": len(points) / best, "seconds": best,
                            "ratio": best / report["workers_2"]["seconds"],
                            "per_point": [k.name for k in kept], "left_out": list(left)}
    report["speedup"] = report["workers_2"]["points_per_s"] / report["workers_1"]["points_per_s"]
    return report


def bench_section(args) -> dict:
    """``fraglife bench`` section: sweep points/s for 1 vs 2 workers on a fixed grid of chapter 01."""
    return bench()


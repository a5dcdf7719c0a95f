"""``fraglife sweep``: a chapter's result over a grid of parameters, on dask.distributed.

A sweep is the cartesian product of a few parameter axes of one chapter. Every
point is checked by the chapter's own :class:`~fraglife.params.ParamSpec`
before anything runs, so a bad value fails the whole sweep up front with the
same :class:`~fraglife.params.ParamError` as ``fraglife run -p``. The points
then run on a dask.distributed cluster: an in-process ``LocalCluster`` of
worker processes by default (one thread each: the numba engine is CPU-bound),
or an existing scheduler given by address.

Two modes:

* ``library`` (default): each point calls the chapter's headline function
  (``Chapter.headline``) with the point's parameters; one tidy record back.
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
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import logging
import math
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

from . import __version__
from .chapters import Chapter, get as get_chapter, headline_function
from .params import Param, ParamError
from .paths import build_dir

MODES = ("library", "notebook")
#: Columns that differ between two runs of the same sweep (timing and placement).
VOLATILE_COLUMNS = ("duration_s", "worker")
#: Provenance columns every row carries, after the parameters and results.
PROVENANCE_COLUMNS = ("error", "chapter", "mode", "fraglife_version", "probes", "key", "duration_s", "worker")
#: Values a headline may report under the key "probes" (taken out of the results).
PROBE_SOURCES = ("live", "recorded", "mixed", "unavailable", "none")
MAX_CHART_ROWS = 5000
#: The error of a point an interrupted sweep did not reach.
NOT_RUN = "not run (the sweep was interrupted)"
DEFAULT_TIMEOUT = 900  # per cell, notebook mode


# -- the grid ------------------------------------------------------------------------------

def _expand_range(param: Param, text: str) -> list[Any]:
    """``START..STOP:STEP`` (arithmetic) or ``START..STOP*FACTOR`` (geometric), both ends included."""
    lo_text, _, rest = text.partition("..")
    if "*" in rest:
        hi_text, _, how = rest.partition("*")
        geometric = True
    elif ":" in rest:
        hi_text, _, how = rest.partition(":")
        geometric = False
    else:
        raise ParamError(f"grid {param.name}={text!r}: a range needs a step (START..STOP:STEP) "
                         f"or a factor (START..STOP*FACTOR)")
    if param.kind not in (int, float):
        raise ParamError(f"grid {param.name}={text!r}: ranges are for numeric parameters; {param.name} is "
                         f"{param.allowed()}")
    lo, hi = param.parse(lo_text), param.parse(hi_text)
    try:
        step = float(how)
    except ValueError:
        raise ParamError(f"grid {param.name}={text!r}: step {how!r} is not a number") from None
    if hi < lo:
        raise ParamError(f"grid {param.name}={text!r}: the range ends before it starts")
    values: list[float] = []
    if geometric:
        if step <= 1 or lo <= 0:
            raise ParamError(f"grid {param.name}={text!r}: a geometric range needs START > 0 and FACTOR > 1")
        v = float(lo)
        while v <= hi * (1 + 1e-9):
            values.append(v)
            v *= step
    else:
        if step <= 0:
            raise ParamError(f"grid {param.name}={text!r}: the step must be > 0")
        n = int(math.floor((hi - lo) / step + 1e-9)) + 1
        values = [lo + i * step for i in range(n)]
    if len(values) > 10_000:
        raise ParamError(f"grid {param.name}={text!r}: {len(values)} values; a range gives at most 10000")
    out = []
    for v in values:
        v = round(v, 12)
        if param.kind is int:
            if abs(v - round(v)) > 1e-9:
                raise ParamError(f"grid {param.name}={text!r}: {v:g} is not an integer ({param.allowed()})")
            v = int(round(v))
        out.append(param.check(v))
    return out


def _axis_values(param: Param, values: Any) -> list[Any]:
    if isinstance(values, str):
        items = [v.strip() for v in values.split(",")]
        if not values.strip() or any(not v for v in items):
            raise ParamError(f"grid {param.name}={values!r}: empty value; expected {param.allowed()}")
        out: list[Any] = []
        for item in items:
            if ".." in item and param.kind in (int, float):
                out.extend(_expand_range(param, item))
            else:
                out.append(param.parse(item))
    else:
        if not isinstance(values, Iterable):
            values = [values]
        out = [param.parse(v) if isinstance(v, str) and param.kind is not str else param.check(v)
               for v in values]
        if not out:
            raise ParamError(f"grid {param.name}: no values; expected {param.allowed()}")
    seen: set = set()
    dupes = [v for v in out if v in seen or seen.add(v)]
    if dupes:
        raise ParamError(f"grid {param.name}: value {dupes[0]!r} given twice")
    return out


def parse_grid(chapter: Chapter | str, grid: Mapping[str, Any] | Iterable[str] | None) -> dict[str, list[Any]]:
    """The grid's axes as ``{name: [checked values]}``, in the order given.

    ``grid`` is a mapping ``{name: values}`` (values a list, or text as on the
    command line) or a list of ``"NAME=V1,V2,…"`` strings. A value may also be
    a range: ``START..STOP:STEP`` or ``START..STOP*FACTOR``. Unknown names and
    values the chapter does not allow raise :class:`ParamError`.
    """
    ch = get_chapter(chapter) if isinstance(chapter, str) else chapter
    pairs: list[tuple[str, Any]] = []
    if grid is None:
        pass
    elif isinstance(grid, Mapping):
        pairs = list(grid.items())
    else:
        for item in grid:
            name, eq, values = str(item).partition("=")
            if not eq or not name.strip():
                raise ParamError(f"grid {item!r}: expected NAME=V1,V2,... (e.g. loss_rate=0,0.01,0.05)")
            pairs.append((name.strip(), values))
    axes: dict[str, list[Any]] = {}
    for name, values in pairs:
        if name in axes:
            raise ParamError(f"grid: parameter {name!r} given twice; list all its values in one --grid")
        axes[name] = _axis_values(ch.spec[name], values)
    return axes


def point_key(chapter_id: str, mode: str, params: Mapping[str, Any]) -> str:
    """A stable name for one point: chapter, mode and every parameter value."""
    text = json.dumps({"chapter": chapter_id, "mode": mode, "params": dict(params)}, sort_keys=True)
    return hashlib.sha1(text.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Point:
    index: int  # position in the cartesian product
    key: str
    params: dict[str, Any]  # every parameter of the chapter, validated


def plan(chapter: Chapter | str, grid=None, mode: str = "library") -> tuple[Chapter, dict[str, list[Any]], list[Point]]:
    """Check everything a sweep needs before it runs; returns (chapter, axes, points).

    Every point of the product is validated with the chapter's spec. Library
    mode needs a chapter with a headline; notebook mode needs its notebook.
    """
    ch = get_chapter(chapter) if isinstance(chapter, str) else chapter
    if mode not in MODES:
        raise ParamError(f"sweep mode {mode!r} is not allowed: expected one of {', '.join(MODES)}")
    axes = parse_grid(ch, grid)
    if mode == "library" and ch.headline is None:
        with_headline = ", ".join(c.id for c in _chapters_with_headline()) or "(none yet)"
        raise ParamError(f"chapter {ch.id} has no headline result to sweep in library mode "
                         f"(chapters with one: {with_headline}); use --mode notebook to execute its notebook")
    if mode == "notebook":
        from .runner import check_notebook

        try:
            check_notebook(ch)
        except (FileNotFoundError, ValueError) as e:
            raise ParamError(f"cannot sweep {ch.id} in notebook mode: {e}") from None
    names = list(axes)
    points = []
    for i, combo in enumerate(itertools.product(*(axes[n] for n in names))):
        params = dict(ch.spec.validate(dict(zip(names, combo)), partial=True))
        points.append(Point(i, point_key(ch.id, mode, params), params))
    return ch, axes, points


def _chapters_with_headline() -> list[Chapter]:
    from .chapters import CHAPTERS

    return [c for c in CHAPTERS if c.headline]


def default_name(chapter: Chapter, axes: Iterable[str], mode: str = "library") -> str:
    """``01-loss_rate-frag_size`` (``-notebook`` appended in notebook mode)."""
    parts = [chapter.number, *axes] + (["notebook"] if mode == "notebook" else [])
    return "-".join(parts) if len(parts) > 1 else f"{chapter.number}-defaults"


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


def _call_first_alone(fn: Callable, params: dict) -> Any:
    """Call ``fn``; its first call in this process runs alone.

    Two threads making the first call of a numba function at once both
    compile it (tens of seconds instead of a cache load) and can fail inside
    numba's inliner. Threaded workers (``processes=False``, or a ``dask
    worker`` with several threads) hit that; one lock around the first call
    of each headline avoids it, and later calls run concurrently.
    """
    name = (getattr(fn, "__module__", None), getattr(fn, "__qualname__", repr(fn)))
    if name not in _WARM:
        with _FIRST_CALL:
            if name not in _WARM:
                out = fn(**params)
                _WARM.add(name)
                return out
    return fn(**params)


def _library_point(chapter_id: str, params: dict, func: Callable | None) -> dict:
    fn = func if func is not None else headline_function(get_chapter(chapter_id))
    record = _call_first_alone(fn, params)
    if not isinstance(record, Mapping):
        raise TypeError(f"the headline of {chapter_id} returned {type(record).__name__}, not a dict")
    return dict(record)


_NOTEBOOK_LOCK = threading.Lock()


def _notebook_point(chapter_id: str, params: dict, timeout: int) -> tuple[dict, str | None, str | None]:
    """Execute the chapter once; returns (claims record, error, executed notebook text)."""
    from . import runner

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
            claims = json.loads(claims_file.read_text()).get("claims", [])
            record["claims_ok"] = sum(bool(c.get("ok")) for c in claims)
            record["claims_total"] = len(claims)
            for c in claims:
                record[f"claim.{c['name']}"] = c.get("observed") == "holds"
                for k, v in (c.get("evidence") or {}).items():
                    if isinstance(v, (int, float)) and not isinstance(v, bool):
                        record[f"evidence.{c['name']}.{k}"] = v
        error = None if result.ok else result.describe().splitlines()[0]
        return record, error, notebook


def run_point(chapter_id: str, mode: str, key: str, params: dict, func: Callable | None = None,
              timeout: int = DEFAULT_TIMEOUT) -> dict:
    """Run one point (this is what a dask worker executes); never raises for the point's own failure."""
    start = time.perf_counter()
    notebook = None
    try:
        if mode == "library":
            result, error = _library_point(chapter_id, params, func), None
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


# -- the cluster ---------------------------------------------------------------------------

def default_workers(points: int | None = None) -> int:
    """One single-threaded worker process per core (the points are CPU-bound), no more than points."""
    n = os.cpu_count() or 1
    return max(1, min(n, points)) if points else n


@dataclass
class Cluster:
    """A dask client plus what to close and a description for the manifest."""

    client: Any
    description: str
    owned: list = field(default_factory=list)

    def close(self) -> None:
        for thing in reversed(self.owned):
            try:
                thing.close()
            except Exception:  # closing is best-effort
                pass
        self.owned.clear()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


#: A quiet LocalCluster on this host: no dashboard, and the scheduler's HTTP endpoint (health,
#: metrics; distributed always starts one) on a free local port rather than 8787.
LOCAL_CLUSTER_OPTIONS = {"dashboard_address": "127.0.0.1:0",
                         "scheduler_kwargs": {"dashboard": False}, "silence_logs": logging.ERROR}


def connect(scheduler: str | None = None, *, workers: int | None = None, processes: bool = True,
            client=None) -> Cluster:
    """A dask client: the one given, a scheduler at ``scheduler``, or a new LocalCluster.

    The LocalCluster runs ``workers`` worker processes of one thread each
    (default: one per core) with no dashboard; ``processes=False`` runs one
    in-process worker with ``workers`` threads instead (for notebooks).
    """
    from distributed import Client, LocalCluster

    if client is not None:
        return Cluster(client, f"client {client.scheduler.address}")
    if scheduler:
        try:
            c = Client(scheduler, timeout="15s")
        except (OSError, TimeoutError, ValueError) as e:
            raise ParamError(f"--scheduler {scheduler!r}: cannot connect: {e}") from None
        if workers:
            try:
                c.wait_for_workers(workers, timeout=120)
            except TimeoutError:
                c.close()
                raise ParamError(f"--scheduler {scheduler!r}: fewer than --workers {workers} workers "
                                 f"joined within 120 s") from None
        return Cluster(c, f"scheduler {scheduler} ({len(worker_addresses(c))} workers)", [c])
    n = workers or default_workers()
    if processes:
        with _children_ignore_sigint():
            cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True, host="127.0.0.1",
                                   **LOCAL_CLUSTER_OPTIONS)
        what = f"LocalCluster: {n} worker process{'es' if n > 1 else ''} x 1 thread"
    else:
        cluster = LocalCluster(n_workers=1, threads_per_worker=n, processes=False, **LOCAL_CLUSTER_OPTIONS)
        what = f"LocalCluster (processes=False): 1 in-process worker x {n} thread{'s' if n > 1 else ''}"
    c = Client(cluster)
    return Cluster(c, what, [cluster, c])


@contextlib.contextmanager
def _children_ignore_sigint():
    """Worker processes started in here ignore SIGINT: Ctrl-C interrupts the sweep (which then
    closes its cluster) instead of killing every worker with a traceback of its own."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, old)


def worker_addresses(client) -> list[str]:
    """Every worker's address, sorted (newer distributed lists only a few unless asked for all)."""
    import inspect

    kw = {"n_workers": -1} if "n_workers" in inspect.signature(client.scheduler_info).parameters else {}
    return sorted(client.scheduler_info(**kw)["workers"])


def warm(client, chapter_id: str, params: Mapping[str, Any] | None = None, func: Callable | None = None,
         workers: list[str] | None = None) -> None:
    """Import the headline on every worker and, given ``params``, run it once (numba's cache loads then)."""
    def _warm(chapter_id=chapter_id, params=dict(params) if params else None, func=func):
        fn = func if func is not None else headline_function(get_chapter(chapter_id))
        if params is not None:
            fn(**params)
        return True

    client.run(_warm, workers=workers)


# -- running a sweep -----------------------------------------------------------------------

def execute(client, chapter: Chapter, mode: str, points: list[Point], *, func: Callable | None = None,
            timeout: int = DEFAULT_TIMEOUT, on_done: Callable[[Point, dict], None] | None = None,
            progress: bool = True, workers: list[str] | None = None) -> dict[str, dict]:
    """Run ``points`` on ``client``; returns {key: record}. ``on_done`` sees each record as it completes."""
    from distributed import as_completed

    by_future = {}
    where = {"workers": workers, "allow_other_workers": False} if workers else {}
    for p in points:
        fut = client.submit(run_point, chapter.id, mode, p.key, p.params, func, timeout, pure=False, **where)
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


def _write_json(path: Path, data: Any) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=1, default=str) + "\n")
    os.replace(tmp, path)


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
    import pandas as pd

    skip = {"point", "notebook", *PROVENANCE_COLUMNS, *axes}
    spec_cols = set()
    chapter_ids = set(df["chapter"]) if "chapter" in df and len(df) else set()
    for cid in chapter_ids:
        spec_cols |= {p.name for p in get_chapter(cid).spec}
    out = []
    for c in df.columns:
        if c in skip or c in spec_cols:
            continue
        s = df[c]
        if pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s):
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


def _is_numeric(series) -> bool:
    import pandas as pd

    return pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)


def chart(df, axes: Iterable[str], metric: str | None = None, *, title: str | None = None):
    """The default chart of a sweep: ``metric`` against the first numeric axis, coloured by the second.

    Points that failed are left out. Axes not on the chart are averaged over
    (the band shows their min..max). At most 5000 rows reach altair. Returns
    None when no point succeeded.
    """
    import altair as alt

    axes = list(axes)
    metric = pick_metric(df, axes, metric)
    ok = df[df["error"].isna() & df[metric].notna()] if "error" in df else df[df[metric].notna()]
    if ok.empty:
        return None
    varied = [a for a in axes if ok[a].nunique() > 1] or axes
    numeric = [a for a in varied if _is_numeric(ok[a])]
    x = numeric[0] if numeric else (varied[0] if varied else None)
    rest = [a for a in varied if a != x]
    colour = numeric[1] if len(numeric) > 1 else (rest[0] if rest else None)
    data = ok.copy()
    if x is None:
        x = "point"
    by = [x] + ([colour] if colour else [])
    agg = data.groupby(by, sort=True)[metric].agg(["mean", "min", "max", "count"]).reset_index()
    if colour and len(agg) > MAX_CHART_ROWS:  # too many lines: average over the colour axis too
        colour, by = None, [x]
        agg = data.groupby(by, sort=True)[metric].agg(["mean", "min", "max", "count"]).reset_index()
    if len(agg) > MAX_CHART_ROWS:
        agg = agg.iloc[[round(i * (len(agg) - 1) / (MAX_CHART_ROWS - 1)) for i in range(MAX_CHART_ROWS)]]
    agg = agg.rename(columns={"mean": "value", "min": "value_min", "max": "value_max", "count": "points"})
    over = [a for a in varied if a not in by]
    label = metric if not over else f"{metric} (mean over {', '.join(over)})"

    x_numeric = _is_numeric(agg[x])
    tooltip = [alt.Tooltip(f"{x}:{'Q' if x_numeric else 'N'}"),
               alt.Tooltip("value:Q", title=metric, format=".4g"), alt.Tooltip("points:Q")]
    if colour:
        c_numeric = _is_numeric(agg[colour])
        ctype = ("O" if agg[colour].nunique() <= 12 else "Q") if c_numeric else "N"
        color = alt.Color(f"{colour}:{ctype}", title=colour,
                          scale=alt.Scale(scheme="viridis") if ctype != "N" else alt.Undefined)
        tooltip.insert(1, alt.Tooltip(f"{colour}:{ctype}"))
    base = alt.Chart(agg)
    if x_numeric:
        xs = agg[x].astype(float)
        log = bool((xs > 0).all() and xs.max() / xs.min() >= 100)
        xenc = alt.X(f"{x}:Q", title=x, scale=alt.Scale(type="log") if log else alt.Scale(zero=False))
        enc = {"x": xenc, "y": alt.Y("value:Q", title=label), "tooltip": tooltip}
        if colour:
            enc["color"] = color
        layers = [base.mark_line(point=True).encode(**enc)]
        if over:
            band = {"x": xenc, "y": alt.Y("value_min:Q", title=label), "y2": "value_max:Q"}
            if colour:  # fill, not color: same colours, and the legend keeps the lines' opaque symbols
                band["fill"] = alt.Fill(f"{colour}:{ctype}", legend=None,
                                        scale=alt.Scale(scheme="viridis") if ctype != "N" else alt.Undefined)
            layers.append(base.mark_area(opacity=0.15).encode(**band))  # after the lines: they own the legend
        out = alt.layer(*layers) if len(layers) > 1 else layers[0]
    else:
        enc = {"x": alt.X(f"{x}:N", title=x), "y": alt.Y("value:Q", title=label), "tooltip": tooltip}
        if colour:
            enc["color"] = color
            enc["xOffset"] = alt.XOffset(f"{colour}:{ctype}")
        out = base.mark_bar().encode(**enc)
    chapter = str(df["chapter"].iloc[0]) if "chapter" in df and len(df) else ""
    return out.properties(title=title or f"{chapter}: {metric} over the sweep ({len(ok)} of {len(df)} points)")


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
              timeout: int = DEFAULT_TIMEOUT, progress: bool = True) -> Sweep:
    """Run a sweep and write its table, chart and manifest; see the module docstring.

    ``grid`` as for :func:`parse_grid`. The cluster: ``client`` (an existing
    dask Client, left open), else ``scheduler`` (an address), else a new
    LocalCluster (``workers`` processes, or threads with ``processes=False``).
    ``func`` replaces the chapter's headline in library mode (it receives the
    same keyword arguments; tests use it). Everything is validated before
    the cluster starts.
    """
    ch, axes, points = plan(chapter, grid, mode)
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
                    func=func, timeout=timeout, progress=progress)
    finally:
        if cluster is not None:
            cluster.close()


def _run(ch, axes, points, mode, out_dir, records, todo, cluster, start, *, resume, metric, func, timeout,
         progress) -> Sweep:
    points_dir, nb_dir = out_dir / "points", out_dir / "notebooks"
    out_dir.mkdir(parents=True, exist_ok=True)
    if not resume:  # a fresh run of this sweep: forget the old point records
        shutil.rmtree(points_dir, ignore_errors=True)
        shutil.rmtree(nb_dir, ignore_errors=True)
    points_dir.mkdir(exist_ok=True)
    if mode == "notebook":
        nb_dir.mkdir(exist_ok=True)
    manifest = {"chapter": ch.id, "mode": mode, "grid": axes, "points": len(points), "fraglife_version": __version__,
                "metric": metric, "status": "running", "resumed": len(records)}
    _write_json(out_dir / "sweep.json", manifest)

    def on_done(p: Point, rec: dict) -> None:
        nb = rec.pop("notebook", None)
        if nb is not None:
            path = nb_dir / f"{p.key}.ipynb"
            path.write_text(nb)
            rec["notebook_path"] = str(path.relative_to(out_dir))
        rec["point"] = p.index
        _write_json(points_dir / f"{p.key}.json", rec)

    complete, desc = True, "no cluster (every point reused)"
    new: dict[str, dict] = {}
    if cluster is not None:
        desc = cluster.description
        try:
            new = execute(cluster.client, ch, mode, todo, func=func, timeout=timeout, on_done=on_done,
                          progress=progress)
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
        from .plots import save

        save(fig, chart_path)
    elif chart_path.exists():
        chart_path.unlink()
    manifest.update({"status": "finished" if complete else "interrupted", "metric": chosen, "ran": len(new),
                     "failed": failed, "not_run": not_run, "seconds": seconds, "cluster": desc, "chart_error": chart_error})
    _write_json(out_dir / "sweep.json", manifest)
    result = Sweep(ch.id, mode, axes, df, chosen, fig, out_dir, ran=len(new), skipped=len(points) - len(todo),
                   failed=failed, seconds=seconds, cluster=desc, complete=complete, chart_error=chart_error,
                   not_run=not_run)
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
BENCH_GRID = {"loss_rate": [0.0, 0.01, 0.02, 0.05], "frag_size": [4096, 65536, 2097152], "seed": [1, 2],
              "bytes_sent": [64 << 20]}


def bench(grid: Mapping[str, Any] | None = None, *, client=None, repeats: int = 1) -> dict:
    """Sweep throughput (points/s) with 1 worker and with 2, measured in one run on one cluster.

    A LocalCluster of two single-threaded worker processes is started (or
    ``client`` used; it needs two workers); both are warmed (numba's cache
    loaded) before timing; the 1-worker run pins every point to one of them.
    """
    ch, _, points = plan(BENCH_CHAPTER, grid or BENCH_GRID)
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
                recs = execute(c, ch, "library", points, progress=False, workers=addrs[:n])
                best = min(best, time.perf_counter() - t0)
                errors = [r["error"] for r in recs.values() if r["error"]]
                if errors:
                    raise RuntimeError(f"bench sweep point failed: {errors[0]}")
            report[f"workers_{n}"] = {"points_per_s": len(points) / best, "seconds": best}
    report["speedup"] = report["workers_2"]["points_per_s"] / report["workers_1"]["points_per_s"]
    return report


def bench_section(args) -> dict:
    """``fraglife bench`` section: sweep points/s for 1 vs 2 workers on a fixed grid of chapter 01."""
    return bench()


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
                   help="library: call the chapter's headline function (fast, default); "
                        "notebook: execute the notebook per point with papermill")
    p.add_argument("--scheduler", metavar="ADDRESS", default=None,
                   help="an existing dask scheduler (tcp://host:8786); default: a LocalCluster here")
    p.add_argument("--workers", type=int, default=None,
                   help="LocalCluster worker processes (default: one per core); with --scheduler, wait for this many")
    p.add_argument("--out", type=Path, default=None, help="output directory (default build/sweeps/NAME)")
    p.add_argument("--resume", action="store_true", help="reuse finished points already in the output directory")
    p.add_argument("--metric", default=None, help="result column for the chart's y axis (default: the first)")
    p.add_argument("--timeout", type=int, default=DEFAULT_TIMEOUT, help="per-cell timeout in notebook mode (s)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=_cli)


def _cli(args) -> int:
    if args.workers is not None and args.workers < 1:
        raise ParamError(f"--workers {args.workers} is not allowed: expected an integer >= 1")
    result = run_sweep(args.chapter, args.grid, mode=args.mode, out=args.out, scheduler=args.scheduler,
                       workers=args.workers, resume=args.resume, metric=args.metric, timeout=args.timeout,
                       progress=not args.no_progress)
    print(result.summary())
    if not result.complete:
        return 130
    return 1 if result.failed else 0

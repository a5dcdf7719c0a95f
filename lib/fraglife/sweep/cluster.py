"""The dask cluster a sweep runs on: a quiet LocalCluster, an existing scheduler, or a given client."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from ..chapters import get as get_chapter
from ..params import ParamError


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
        with children_ignore_sigint():
            cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True, host="127.0.0.1",
                                   **LOCAL_CLUSTER_OPTIONS)
        what = f"LocalCluster: {n} worker process{'es' if n > 1 else ''} x 1 thread"
    else:
        cluster = LocalCluster(n_workers=1, threads_per_worker=n, processes=False, **LOCAL_CLUSTER_OPTIONS)
        what = f"LocalCluster (processes=False): 1 in-process worker x {n} thread{'s' if n > 1 else ''}"
    c = Client(cluster)
    return Cluster(c, what, [cluster, c])


@contextlib.contextmanager
def children_ignore_sigint():
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
    """Every worker's address, sorted, asked of the scheduler now (the client's cached ``scheduler_info`` can lag
    behind, even list no worker, while it refreshes)."""
    return sorted(client.nthreads())


def warm(client, chapter_id: str, params: Mapping[str, Any] | None = None, func: Callable | None = None,
         workers: list[str] | None = None) -> None:
    """Import the headline on every worker and, given ``params``, run it once (numba's cache loads then)."""
    def _warm(chapter_id=chapter_id, params=dict(params) if params else None, func=func):
        fn = func if func is not None else get_chapter(chapter_id).headline
        if params is not None:
            fn(**params)
        return True

    client.run(_warm, workers=workers)



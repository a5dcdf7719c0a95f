"""Chapter 08's search on a dask cluster: the visited set split by state hash across workers.

The single-process search (:func:`fraglife.model.explorer.explore`) keeps
every state it has seen in one table; its reach ends where one machine's
memory does. Here the same breadth-first search runs level by level on a
dask cluster (its own LocalCluster of single-threaded workers,
:func:`local_cluster`, or any scheduler by address, as the sweeps'
:func:`.cluster.connect` reaches one). Each state belongs to one *partition*, chosen by the
high bits of its 64-bit fingerprint; a partition lives on one worker and
keeps, as the single-process search does, each state's fingerprint, its
parent as (partition, index) in 4 bytes and its index among its parent's
successors in 2, and the full rows of the current level and the next only.
A level is expanded in rounds of at most ``chunk`` states per partition:
each partition expands its share of the frontier
(:func:`~fraglife.model.explorer.expand_split`, compiled without the GIL:
the successors it owns straight into its own visited set, each other
distinct successor once, grouped by owner, except those it sent in an
earlier round and still finds in its *sent cache*, a slot for every
``SENT_SHARE`` of its visited set's), and each owner adds the ones it
has not seen (:func:`~fraglife.model.explorer.visit`); the successor
batches travel worker to worker, one per pair of distinct partitions per
round, a byte per field when the fields fit, without the bytes that are
zero in every row of the batch (:func:`~fraglife.model.explorer.pack`:
most of a row's, on chapter 08's bounds). The next rounds are submitted
while one is exchanged (``ROUNDS_AHEAD``), and a level's first round with
the last of the level before, to start on each worker once its partition
has added that level's last batch: no level waits for the client. The
client receives only counts,
and rebuilds a counterexample by gathering its labels along the parent
references and replaying them from the start.

A level finishes before the next starts, so the first level where a kind of
violation appears is the one the single-process search finds it at: the
verdicts and the lengths and kinds of the shortest counterexamples are the
same (tests/test_explore_dask.py), though on a tie another counterexample of
the same length may be the one told. ``max_states`` is split evenly across
the partitions, so a search cut short stops near, not at, the same count.

``fraglife explore`` is the command.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import os
import resource
import threading
import time
import uuid
from dataclasses import dataclass, field

import numpy as np

from .. import paths
from ..model import explorer as E
from ..model import explorer_twin as X
from ..params import ParamError

CHUNK = 1 << 17  # frontier states a partition expands per round: a round's fixed cost is then small beside it
#: rows in a chunk of a partition's levels (Partition), as in the single search's queue: a small partition's few
#: states do not take a round's worth
ROW_CHUNK = E.QUEUE_CHUNK
#: rounds submitted before the oldest is waited for: a worker expands the next round while the last one's batches
#: travel and are added (a round's batches are what a worker holds beyond its partition, so few)
ROUNDS_AHEAD = 2
#: a partition's sent cache (:func:`~fraglife.model.explorer.expand_split`) has a slot per this many of its table's
SENT_SHARE = 4
PART_SHIFT = 25  # a parent reference is partition << PART_SHIFT | index (max_states is at most 1 << 25)
MAX_PARTITIONS = 127  # so that a parent reference fits a uint32
NO_PARENT = 0xFFFFFFFF  # the start's parent reference


class PartitionLost(RuntimeError):
    """A partition's worker went away (restarted near its memory limit, or left the cluster)."""


class PartitionFull(MemoryError):
    """A partition would hold more bytes than its limit."""


# ---- one partition, on its worker ---------------------------------------------------------------------------
class Partition:
    """One worker's share of the visited set: the fingerprints of its states, each state's parent reference and
    label (its index among its parent's successors), and the rows of the states not expanded yet: the current
    level's frontier, states [lo, hi) in ``front``, and the next level's, states hi.. in ``next``. Both are lists of
    chunks of ROW_CHUNK rows at most: a level's rows are never moved, and a chunk expanded goes on to hold a later
    level's (``spare``), so a partition faults in no more row memory than two levels hold, where rows that doubled
    when full were each copied and faulted in again (at chapter 08's largest bounds on 2 worker processes, a
    worker's page faults went from 0.55 M to 0.39 M, its system time from 8.5 s to 4 s). A round reads its frontier
    rows in their chunks."""

    def __init__(self, P: np.ndarray, part: int, nparts: int, limit: int, byte_limit: int | None, chunk: int = CHUNK):
        width = self.width = int(P[E.P_WIDTH])
        self.P, self.part, self.nparts, self.limit, self.byte_limit = P, part, nparts, limit, byte_limit
        self.chunk = min(chunk, ROW_CHUNK)
        self.chunk_bytes = self.chunk * width * 2
        self.table = np.zeros(1 << 12, np.uint64)
        self.front = E.row_chunks(width, self.chunk, 0)
        self.next = E.row_chunks(width, self.chunk, 1)
        self.spare = E.row_chunks(width, self.chunk, 0)
        self.parent = np.zeros(1 << 10, np.uint32)
        self.label = np.zeros(1 << 10, np.uint16)
        self.n = self.lo = self.hi = self.base = 0  # base: the first state of next's last chunk
        self.refused = self.peak = 0
        self.scratch = E.expand_scratch(width)
        self.sent = E.sent_cache(None, 1 << 10)
        # a worker of several threads runs several of a partition's tasks at once (the rounds overlap): an expansion
        # adds to the visited set as an add does, so they take turns
        self.lock = threading.Lock()

    def nbytes(self) -> int:
        rows = E.chunks_held(self.front, self.next, self.spare) * self.chunk_bytes
        return self.table.nbytes + rows + self.parent.nbytes + self.label.nbytes + self.sent.nbytes

    def add(self, rows, cols, sz, hashes, src, idx) -> None:
        """Add a batch: its rows packed (:func:`~fraglife.model.explorer.pack`), their fingerprints, parent
        references and labels."""
        self._kept(*E.visit(self.table, self.next, self.spare, self.parent, self.label, self.n, self.base, rows, cols,
                            sz, hashes, src, idx, self.limit))

    def _kept(self, table, parent, label, n, base, refused) -> None:
        """The visited set as :func:`~fraglife.model.explorer.visit` or an expansion left it."""
        self.table, self.parent, self.label, self.n, self.base = table, parent, label, n, base
        self.refused += int(refused)
        held = self.nbytes()
        self.peak = max(self.peak, held)
        if self.byte_limit is not None and held > self.byte_limit:
            raise PartitionFull(f"partition {self.part} holds {self.n:,} states in {held:,} bytes, "
                                f"past its limit of {self.byte_limit:,} bytes")

    def begin_level(self) -> int:
        """The states added during the last level become the frontier (their chunks, nothing copied); the expanded
        level's chunks are spare, those past the new frontier's count given back (what the largest level took)."""
        self.lo, self.hi = self.hi, self.n
        self.front, self.next = self.next, E.recycle_chunks(self.front, self.next, self.spare, self.chunk, self.width)
        self.base = self.n
        return self.hi - self.lo

    def expand(self, start: int, size: int) -> tuple[list, dict]:
        """Successors of frontier states lo+start .. lo+start+size, split by owning partition (each batch its rows,
        fingerprints, parent references and labels; this partition's own are added here, its batch is empty), and
        the round's counts: edges, terminals, fallbacks, the first leak and the first violation of each kind."""
        a = self.lo + start
        b = min(self.hi, a + size)
        if a >= b:
            empty = (*E.pack(np.zeros((0, self.width), np.int16)), np.zeros(0, np.uint64), np.zeros(0, np.uint32),
                     np.zeros(0, np.uint16))
            return [empty] * self.nparts, {"edges": 0, "terminals": 0, "fallbacks": 0, "found": {}}
        if self.nparts > 1 and len(self.sent) < len(self.table) // SENT_SHARE:
            self.sent = E.sent_cache(self.sent, len(self.table) // SENT_SHARE)
        flat, off, ncol, cols, sz, hashes, ref, idx, cuts, found_at, leak, terminals, edges, fb, self.scratch, kept = \
            E.expand_split(self.P, self.front, a - self.lo, b - a, self.nparts, self.part << PART_SHIFT | a,
                           self.scratch, self.sent, self.part,
                           (self.table, self.next, self.spare, self.parent, self.label, self.n, self.base, self.limit))
        self._kept(*kept)
        found = {}
        if leak >= 0:
            found[X.LEAK] = (self.part, a + int(leak), None)
        for kind in range(X.LEAK):
            if found_at[kind, 0] >= 0:
                found[kind] = (self.part, a + int(found_at[kind, 0]), tuple(int(x) for x in found_at[kind, 1:]))
        buckets = [(*b, hashes[cuts[q]:cuts[q + 1]], ref[cuts[q]:cuts[q + 1]], idx[cuts[q]:cuts[q + 1]])
                   for q, b in enumerate(E.batches(flat, off, ncol, cols, sz, cuts))]
        stats = {"edges": int(edges), "terminals": int(terminals), "fallbacks": int(fb), "found": found}
        return buckets, stats

    def step(self, idx: int) -> tuple:
        """(label, parent reference) of state ``idx``: the label is its index among its parent's successors."""
        ref = int(self.parent[idx])
        return int(self.label[idx]), (-1 if ref == NO_PARENT else ref)


# tasks, run on the worker that holds the partition (pinned by address); partitions by (search id, partition)
_PARTS: dict = {}


@contextlib.contextmanager
def _part(sid: str, part: int):
    """The partition, held by this task alone (:attr:`Partition.lock`)."""
    try:
        p = _PARTS[(sid, part)]
    except KeyError:
        raise PartitionLost(f"partition {part} of the search is gone: its worker restarted or left") from None
    with p.lock:
        yield p


def _t_init(sid, part, nparts, P, limit, byte_limit, chunk, start):
    p = _PARTS[(sid, part)] = Partition(P, part, nparts, limit, byte_limit, chunk)
    if start is not None:
        _add_start(p, start)
    return p.n


def _add_start(p: Partition, start) -> None:
    row = np.array([start], np.int16)
    p.add(*E.pack(row), E.state_hashes(row), np.full(1, NO_PARENT, np.uint32), np.zeros(1, np.uint16))


def _t_begin(sid, part, _after=None):
    """The next level's frontier; ``_after`` (the partition's last add of the level, done) keeps it after them."""
    with _part(sid, part) as p:
        return p.begin_level()


def _t_expand(sid, part, start, size, _after=None):
    """A round's expansion; ``_after`` (the partition's begin of the level, done) keeps a level's first round,
    submitted before its frontier was known, after its begin."""
    with _part(sid, part) as p:
        return p.expand(start, size)


def _t_bucket(res, q):
    return res[0][q]


def _t_add(sid, part, _after, own=None, *buckets):
    """Add the batches sent to a partition, and return its size and the counts of its own expansion of the round
    (``own``, the expansion's whole result, on this worker: no task picks them out, and none picks out its own
    batch, which is empty: its own successors went into its visited set as it found them); ``_after`` (the
    partition's previous add, done) keeps the rounds' adds in order."""
    with _part(sid, part) as p:
        for b in buckets:  # in partition order, as if concatenated
            if len(b[0]):
                p.add(*b)
        return p.n, p.nbytes(), (own[1] if own is not None else None)


def _t_step(sid, part, idx):
    with _part(sid, part) as p:
        return p.step(idx)


def _t_drop(sid, part):
    p = _PARTS.pop((sid, part), None)
    return (p.n, p.peak, p.refused) if p is not None else (0, 0, 0)  # the most bytes it held


# ---- the search, from the client ------------------------------------------------------------------------------
@dataclass
class Spread:
    """A distributed search: the single-process :class:`~fraglife.model.explorer_twin.Result`, and how it spread."""

    result: X.Result
    partitions: list = field(default_factory=list)  # per partition: worker, states, the most bytes it held
    cluster: str = ""
    levels: int = 0
    rounds: int = 0
    seconds: float = 0.0

    @property
    def states_per_s(self) -> float:
        return self.result.states / self.seconds if self.seconds else math.nan


WAIT_S = 2  # seconds between checks that a search's workers are all still there


class _Search:
    """One search's client side: the partitions' workers, the submitted tasks, the counts."""

    def __init__(self, client, addrs: list[str], nparts: int):
        self.client, self.addrs, self.nparts = client, addrs, nparts
        self.sid = uuid.uuid4().hex[:12]
        self.seq = itertools.count()
        self.last_add: list = [None] * nparts  # each partition's latest add: the next waits for it

    def at(self, part: int) -> str:
        return self.addrs[part % len(self.addrs)]

    def submit(self, fn, part: int, *args):
        return self.client.submit(fn, *args, workers=[self.at(part)], allow_other_workers=False, pure=False,
                                  key=f"explore-{fn.__name__[3:]}-{self.sid}-{part}-{next(self.seq)}")

    def wait(self, futures: list) -> list:
        """The futures' results; raises PartitionLost when a partition's worker leaves meanwhile, also between a
        task's end and the fetch of its result (its key is then recomputed, on no worker: a plain gather after a
        wait would block for ever)."""
        from distributed import as_completed

        from .cluster import worker_addresses

        while True:
            try:  # the results fetched within the timeout, or the workers checked
                done = dict(as_completed(futures, with_results=True, timeout=WAIT_S))
                return [done[f] for f in futures]
            except TimeoutError:
                pass
            gone = set(self.addrs) - set(worker_addresses(self.client))
            if gone:
                raise PartitionLost(f"worker {sorted(gone)[0]} left during the search (restarted near its "
                                    f"memory limit?): its partition is lost")

    def each(self, fn, *args) -> list:
        return self.wait([self.submit(fn, p, self.sid, p, *args) for p in range(self.nparts)])


def explore(bounds: X.Bounds, scenario: X.Scenario, *, client=None, scheduler: str | None = None,
            workers: int | None = 2, processes: bool = True, partitions: int | None = None, chunk: int = CHUNK,
            symmetry: bool = True, byte_limit: int | None = None) -> Spread:
    """Search every state the bounds allow under the scenario, as :func:`fraglife.model.explorer.explore`, with the
    visited set split over ``partitions`` (default: one per worker) on a dask cluster: ``client``, or a scheduler
    at ``scheduler``, or a LocalCluster of ``workers`` (``processes=False``: threads in this process; see
    :func:`_search_client`). ``byte_limit``: a partition that would hold more bytes stops the search with
    :class:`PartitionFull`."""
    from .cluster import worker_addresses

    if chunk < 1:
        raise ParamError(f"chunk = {chunk!r} is not allowed: expected an integer >= 1")
    if partitions is not None and not 1 <= partitions <= MAX_PARTITIONS:
        raise ParamError(f"partitions = {partitions!r} is not allowed: expected an integer in [1, {MAX_PARTITIONS}]")
    with _search_client(client, scheduler, workers, processes) as cl:
        cl.client.wait_for_workers(1, timeout=120)
        addrs = worker_addresses(cl.client)
        search = _Search(cl.client, addrs, partitions or len(addrs))
        t0 = time.perf_counter()
        try:
            spread = _run(search, bounds, scenario, chunk, symmetry, byte_limit)
        finally:
            ends = _finish(search)
        spread.seconds = time.perf_counter() - t0
        spread.cluster = cl.description
        spread.partitions = [{"worker": search.at(p), "states": n, "bytes": nb} for p, (n, nb, _r) in enumerate(ends)]
        if any(r for _n, _nb, r in ends):
            spread.result.complete = False
        return spread


def _search_client(client, scheduler: str | None, workers: int | None, processes: bool):
    """The cluster a search runs on: ``client``, or the scheduler at ``scheduler``, else its own
    :func:`local_cluster` of ``workers`` single-threaded workers, processes or (``processes=False``) threads of this
    one: one partition each, where the sweeps' in-process cluster is one worker of many threads."""
    from .cluster import Cluster, connect, default_workers

    if client is not None or scheduler is not None:
        return connect(scheduler, workers=workers, client=client)
    n = workers or default_workers()
    lc, c = local_cluster(n, processes=processes)
    what = (f"LocalCluster: {n} worker process{'es' if n > 1 else ''} x 1 thread" if processes else
            f"LocalCluster (processes=False): {n} in-process worker{'s' if n > 1 else ''} x 1 thread")
    return Cluster(c, what, [lc, c])


def _finish(search: _Search) -> list:
    try:
        return search.each(_t_drop)
    except Exception:  # a lost worker: nothing left to free there
        return [(0, 0, 0)] * search.nparts


def warm(P: np.ndarray | None = None, start: tuple | None = None) -> None:
    """Compile (or load from numba's cache) what the workers run, here first: a worker compiling for minutes
    misses its heartbeats and the scheduler drops it; from the cache each loads in seconds. Without arguments
    (``fraglife warm``), for a small scenario: what compiles depends on the arguments' types alone."""
    if P is None:
        P, start = _problem(X.Bounds(ops=2), X.Scenario(kinds=(X.USER, X.PIPE)), True)
    p = Partition(P, 0, 1, 2, None, 1)
    _add_start(p, start)
    p.begin_level()
    p.expand(0, 1)


def _problem(bounds: X.Bounds, scenario: X.Scenario, symmetry: bool) -> tuple[np.ndarray, tuple]:
    """The kernel's parameters for a search and its start state, encoded."""
    ex = X.Explorer(bounds, scenario, symmetry=symmetry)
    return E.params(bounds, scenario, symmetry), ex.encode(ex.start())


def _run(search: _Search, bounds: X.Bounds, scenario: X.Scenario, chunk: int, symmetry: bool,
         byte_limit: int | None) -> Spread:
    P, start = _problem(bounds, scenario, symmetry)
    warm(P, start)
    home = E.owner(E.state_hashes(np.array([start], np.int16))[0], search.nparts)
    limit = max(1, math.ceil(bounds.max_states / search.nparts))
    search.wait([search.submit(_t_init, p, search.sid, p, search.nparts, P, limit, byte_limit, chunk,
                               start if p == home else None) for p in range(search.nparts)])
    depth = rounds = 0
    counts = {"edges": 0, "terminals": 0, "fallbacks": 0}
    found: dict = {}  # violation -> (level, partition, index, label)
    complete = True
    level = 0
    sizes = search.each(_t_begin)
    pending: list = []  # (level, round submitted), in order
    ahead = False  # this level's first round is out already
    while sum(sizes):
        depth = level
        if bounds.depth and level >= bounds.depth:
            complete = False
            break
        nr = math.ceil(max(sizes) / chunk)
        rounds += nr
        for r in range(1 if ahead else 0, nr):
            pending.append((level, _round(search, r * chunk, chunk)))
            while len(pending) > ROUNDS_AHEAD:
                _tally(search, *pending.pop(0), counts, found)
        # the next level begins on each partition once its last add of this one is done, and its first round
        # follows at once, on the workers: no wait for the client between two levels
        begins = [search.submit(_t_begin, p, search.sid, p, search.last_add[p]) for p in range(search.nparts)]
        ahead = not (bounds.depth and level + 1 >= bounds.depth)
        if ahead:
            pending.append((level + 1, _round(search, 0, chunk, after=begins)))
        while pending and pending[0][0] == level:
            _tally(search, *pending.pop(0), counts, found)
        sizes = search.wait(begins)
        level += 1
    while pending:  # the first round of a level that turned out empty
        _tally(search, *pending.pop(0), counts, found)
    states = sum(n for n, _b, _s in search.each(_t_add, None))  # no batches: the counts
    traces = {X.VIOLATIONS[k]: _trace(search, P, start, part, idx, lab)
              for k, (_l, part, idx, lab) in sorted(found.items())}
    res = X.Result(states, counts["edges"], counts["terminals"], depth, complete, traces,
                   fallbacks=counts["fallbacks"])
    return Spread(res, levels=level, rounds=rounds)


def _round(search: _Search, start: int, size: int, after: list | None = None) -> list:
    """One round of a level, submitted: every partition expands up to ``size`` frontier states from ``start`` (once
    its future in ``after`` is done, if given); each owner adds the successors it is sent, and returns its
    expansion's counts. Two tasks a partition and one a pair of distinct partitions (a batch picked out on the worker
    that made it): on two partitions six tasks a round, where a task for each partition's counts and for its own
    (empty) batch made ten. With the nannies' slower memory reads (:data:`SEARCH_CONFIG`), the client's process
    (scheduler, nannies), which shares this machine's two cores with the workers, spent about a fifth less CPU time
    on a search at --ops 6. Returns the futures of the adds."""
    n = search.nparts
    exp = [search.submit(_t_expand, p, search.sid, p, start, size, after[p] if after else None) for p in range(n)]
    adds = [search.submit(_t_add, q, search.sid, q, search.last_add[q], exp[q],
                          *[search.submit(_t_bucket, p, exp[p], q) for p in range(n) if p != q]) for q in range(n)]
    search.last_add = adds
    return adds


def _tally(search: _Search, level: int, adds: list, counts: dict, found: dict) -> None:
    """Wait for a submitted round's adds; add the counts of its expansions, and note the first violation of each
    kind (rounds in order, partitions in order)."""
    for _n, _b, s in search.wait(adds):
        for k in counts:
            counts[k] += s[k]
        for kind, where in sorted(s["found"].items()):
            found.setdefault(kind, (level, *where))


def _trace(search: _Search, P: np.ndarray, start: tuple, part: int, idx: int, last) -> list:
    """The steps from the start to state ``idx`` of ``part`` (then the violating step ``last``, if any), as
    explorer_twin.Result.found holds them, (label, state before the step): the labels are gathered from the
    partitions along the parent references, and the path replayed from the start."""
    qs = []
    ref = part << PART_SHIFT | idx
    while ref >= 0:
        p, i = ref >> PART_SHIFT, ref & ((1 << PART_SHIFT) - 1)
        q, ref = search.wait([search.submit(_t_step, p, search.sid, p, i)])[0]
        if ref >= 0:
            qs.append(q)
    steps, reached = E.replay(P, start, qs[::-1])
    if last is not None:
        steps.append((last, reached))
    return steps


# ---- fraglife bench ------------------------------------------------------------------------------------------
#: the bench's search (chapter 08's scenario: user memory and a pipe, frags spanning folios, the owner), at the
#: full size (27.7 M states, chapter 08's largest recorded search: the exchange does not dominate) and at the size of
#: a run of this section alone (0.83 M states); the memory demonstration always runs at the small size
BENCH_BOUNDS = {"full": X.Bounds(ops=7, cpus=2, skbs=3, frags=2, max_states=1 << 25),
                "quick": X.Bounds(ops=5, cpus=2, skbs=3, frags=2)}
#: the memory demonstration's workers: each with the same limit, which one alone cannot search under
MEMORY_WORKERS = 4
MEMORY_CHUNK = 1 << 12  # smaller rounds: a round's successors are not what fills a worker
#: the nanny restarts a worker past this share of its limit; pausing and spilling are off, so a worker
#: that cannot hold its partition is stopped instead of waiting, its memory read every 100 ms (dask's default)
MEMORY_CONFIG = {"distributed.worker.memory.target": False, "distributed.worker.memory.spill": False,
                 "distributed.worker.memory.pause": False, "distributed.worker.memory.terminate": 0.95,
                 "distributed.worker.memory.monitor-interval": "100ms"}


#: dask's own work in a search's LocalCluster, less: each worker sampled its threads' stacks every 10 ms (the
#: profile) and the GIL's load every 1 ms, each event loop timed its own lag every 20 ms (now 500 ms), and the
#: scheduler weighed moving tasks between workers (stealing; the search pins each task to its partition's worker),
#: and each nanny read its worker's memory every 100 ms (now every second, where no memory limit is near: under one,
#: :data:`MEMORY_CONFIG` puts it back). On 2 cores each took a little time from the search's compiled loops (together
#: a few per cent, about what one run differs from the next).
SEARCH_CONFIG = {"distributed.worker.profile.enabled": False,
                 "distributed.admin.system-monitor.gil.enabled": False,
                 "distributed.admin.tick.interval": "500ms",
                 "distributed.scheduler.work-stealing": False,
                 "distributed.worker.memory.monitor-interval": "1s"}


#: glibc malloc in a search's worker processes. A round allocates and frees buffers of tens of MB; dask's own setting
#: (MALLOC_TRIM_THRESHOLD_=65536) hands freed heap back to the kernel at once, and the next round faults it in again.
#: Here the heap is trimmed past 1 GiB only and grows 256 MiB at a time; no buffer is mmap'd on its own (each such
#: buffer is unmapped when freed, and faulted in afresh the next round); and one arena serves every thread (tasks run
#: on a worker's thread pool, whose arenas are mmap'd heaps of their own). Not under a memory limit, where heap kept
#: counts against it. At chapter 08's largest bounds on 2 worker processes, the last two settings took the search
#: from 65.0 s to 58.5 s, a worker's page faults from 3.4 M to 0.8 M and its system time from 14 s to 9 s. The heap
#: is also asked for transparent huge pages (glibc.malloc.hugetlb=1: madvise, where THP is "madvise" as here): a
#: search's tables are probed at random, each probe a TLB miss on 4 KiB pages. At those bounds the single-process
#: search took 41.7 and 42.7 s with it, 47.6 and 45.7 s without (its page faults 19 K, not 565 K); on 2 workers as
#: threads 32.9 and 32.1 s, not 36.0 and 34.5 s.
SEARCH_MALLOC = {"MALLOC_TRIM_THRESHOLD_": str(1 << 30), "MALLOC_TOP_PAD_": str(1 << 28), "MALLOC_MMAP_MAX_": "0",
                 "MALLOC_ARENA_MAX": "1", "GLIBC_TUNABLES": "glibc.malloc.hugetlb=1"}


def _tunables(value: str | None) -> dict:
    """glibc's GLIBC_TUNABLES (a colon-separated list of name=value) as a dict, in order."""
    return dict(t.split("=", 1) if "=" in t else (t, "") for t in (value or "").split(":") if t)


def search_env(environ, memory_limit: int | str = "auto") -> dict:
    """The variables of :data:`SEARCH_MALLOC` as a search process gets them (None: unset), where ``environ`` holds the
    user's. glibc's tunables are a list: ours join the user's GLIBC_TUNABLES, and a tunable the user set keeps the
    user's value (replacing the variable would drop them). Under a memory limit, where heap kept counts against it,
    none of ours: dask's own malloc setting, and the user's other tunables."""
    user = _tunables(environ.get("GLIBC_TUNABLES"))
    ours = _tunables(SEARCH_MALLOC["GLIBC_TUNABLES"])
    if memory_limit == "auto":
        out = dict(SEARCH_MALLOC)
        tunables = {**ours, **user}
    else:
        out = dict.fromkeys(SEARCH_MALLOC)
        tunables = {k: v for k, v in user.items() if k not in ours}
    out["GLIBC_TUNABLES"] = ":".join(f"{k}={v}" for k, v in tunables.items()) or None
    return out


def _put(env, values: dict) -> None:
    """Set ``values`` in the environment ``env`` (a mapping), unsetting those that are None."""
    for k, v in values.items():
        if v is None:
            env.pop(k, None)
        else:
            env[k] = v


@contextlib.contextmanager
def search_malloc(memory_limit: int | str = "auto"):
    """Worker processes a LocalCluster starts in this block get :func:`search_env`. Through this process's
    environment, which a nanny copies to its worker and reads before its config (distributed/nanny.py); put back as
    it was when the block ends."""
    saved = {k: os.environ.get(k) for k in SEARCH_MALLOC}
    _put(os.environ, search_env(os.environ, memory_limit))
    try:
        yield
    finally:
        _put(os.environ, saved)


@contextlib.contextmanager
def search_cluster(memory_limit: int | str = "auto"):
    """A search's own LocalCluster, started in this block, runs with :data:`SEARCH_CONFIG` and
    :func:`search_malloc`, and under a memory limit with :data:`MEMORY_CONFIG` too."""
    import dask

    with dask.config.set({**SEARCH_CONFIG, **(MEMORY_CONFIG if memory_limit != "auto" else {})}), \
            search_malloc(memory_limit):
        yield


def local_cluster(workers: int, *, memory_limit: int | str = "auto", processes: bool = True):
    """A client on a new LocalCluster of ``workers`` single-threaded processes, each with ``memory_limit``
    (``processes=False``: ``workers`` single-threaded workers in this process)."""
    from distributed import Client, LocalCluster

    from .cluster import LOCAL_CLUSTER_OPTIONS, children_ignore_sigint

    with search_cluster(memory_limit), children_ignore_sigint() if processes else contextlib.nullcontext():
        where = {"host": "127.0.0.1"} if processes else {}  # threads talk in-process
        lc = LocalCluster(n_workers=workers, threads_per_worker=1, processes=processes, memory_limit=memory_limit,
                          **where, **LOCAL_CLUSTER_OPTIONS)
        client = Client(lc)
        client.wait_for_workers(workers, timeout=120)
    return lc, client


def _worker_rss(client) -> int:
    import psutil

    return max(client.run(lambda: psutil.Process().memory_info().rss).values())


def cpu_seconds() -> tuple[float, float]:
    """This process's CPU seconds so far, its threads' together: (user, system)."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime, r.ru_stime


def _cpu_since(before: tuple, after: tuple) -> dict:
    user, system = after[0] - before[0], after[1] - before[1]
    return {"user": user, "system": system, "seconds": user + system}


def _run_cpu(client, processes: bool) -> dict:
    """:func:`cpu_seconds` of every process a LocalCluster's search runs in: this one, ``client`` (the client, the
    scheduler and the nannies; with ``processes=False`` the workers too), and each worker process (``worker 1``..,
    in the order of their addresses)."""
    out = {"client": cpu_seconds()}
    if processes:
        ran = client.run(cpu_seconds)
        out.update((f"worker {i}", ran[a]) for i, a in enumerate(sorted(ran), 1))
    return out


def _cpu_row(before: dict, after: dict, wall: float, workers: int) -> dict:
    """The CPU a run took, from :func:`_run_cpu` before and after it: every process's together (``cpu_seconds``)
    and each one's, and ``busy``, that CPU time over the run's wall time on its ``workers`` cores (1: they computed
    all along). A run's states per second over the single process's is then workers x busy over the single's busy,
    over ``cpu_over_single_process`` (bench_section): what its cores waited, and what work it added."""
    each = {k: _cpu_since(before[k], after[k]) for k in before if k in after}
    total = sum(v["seconds"] for v in each.values())
    return {"cpu_seconds": total, "busy": total / (wall * workers) if wall > 0 else None,
            "cpu": {"user": sum(v["user"] for v in each.values()), "system": sum(v["system"] for v in each.values()),
                    "by_process": each}}


def _spread_run(bounds, sc, workers: int, memory_limit="auto", chunk: int = CHUNK, processes: bool = True) -> dict:
    """One distributed search on a fresh LocalCluster (``processes=False``: its workers are threads of one process,
    and the batches pass by reference), warmed on small bounds first, with the CPU time it took (:func:`_cpu_row`,
    over the explore() call)."""
    lc, client = local_cluster(workers, memory_limit=memory_limit, processes=processes)
    try:
        explore(X.Bounds(ops=2), sc, client=client)
        base = _worker_rss(client)  # with threads: this process
        try:
            before, t0 = _run_cpu(client, processes), time.perf_counter()
            spread = explore(bounds, sc, client=client, chunk=chunk)
            wall, after = time.perf_counter() - t0, _run_cpu(client, processes)
        except (PartitionLost, PartitionFull) as e:
            return {"workers": workers, "completed": False, "why": str(e), "worker_rss_before": base}
        return {"workers": workers, "processes": processes, "completed": spread.result.complete,
                "states": spread.result.states,
                "verdict": spread.result.verdict, "seconds": spread.seconds, "states_per_s": spread.states_per_s,
                "levels": spread.levels, "rounds": spread.rounds, "worker_rss_before": base,
                "partition_bytes": [p["bytes"] for p in spread.partitions], **_cpu_row(before, after, wall, workers)}
    finally:
        client.close()
        lc.close()


def _single_run(bounds, sc) -> dict:
    """The single-process search the bench compares with, warmed on small bounds first, with its CPU time."""
    E.explore(X.Bounds(ops=1), sc)
    before, t0 = cpu_seconds(), time.perf_counter()
    one = E.explore(bounds, sc)
    wall, after = time.perf_counter() - t0, cpu_seconds()
    return {"states": one.states, "verdict": one.verdict, "seconds": one.seconds,
            "states_per_s": one.states / one.seconds,
            "bytes_per_state": E.bytes_per_state(bounds, sc, one.states, one.queue_peak),
            **_cpu_row({"process": before}, {"process": after}, wall, 1)}


def in_search_process(fn, *args, **kwargs):
    """``fn(*args, **kwargs)`` in a new Python process started with :func:`search_env`, as a search's worker
    processes are (glibc reads it once, at the start): the searches the bench compares all allocate alike, and a
    search on worker threads allocates as it does on worker processes. The call and its result travel pickled
    through the child's stdin and a pipe of its own; it leaves no process behind (a multiprocessing pool would
    leave its resource tracker). Its exceptions are raised here."""
    import pickle
    import subprocess
    import sys

    read, write = os.pipe()
    try:
        env = dict(os.environ)
        _put(env, search_env(env))
        proc = subprocess.Popen([sys.executable, "-c", _IN_SEARCH_PROCESS, str(write)], stdin=subprocess.PIPE,
                                env=env, pass_fds=(write,))
        os.close(write)
        write = -1
        proc.stdin.write(pickle.dumps((fn, args, kwargs)))
        proc.stdin.close()
        with os.fdopen(read, "rb") as f:
            read = -1
            reply = f.read()
        code = proc.wait()
    finally:
        for fd in (read, write):
            if fd >= 0:
                os.close(fd)
    if not reply:
        raise RuntimeError(f"the search process ended with code {code} and no result")
    ok, value = pickle.loads(reply)
    if not ok:
        raise value
    return value


_IN_SEARCH_PROCESS = """
import os, pickle, sys
fn, args, kwargs = pickle.load(sys.stdin.buffer)
try:
    out = (True, fn(*args, **kwargs))
except BaseException as e:
    out = (False, e)
with os.fdopen(int(sys.argv[1]), "wb") as f:
    f.write(pickle.dumps(out))
"""


def bench_section(args=None) -> dict:
    """``fraglife bench`` section: the distributed search's states/s on 1 and 2 workers against the single-process
    search (ratios from the same run), bytes per stored state, and a search whose visited set one worker under a
    memory limit cannot hold, completed by several workers under the same limit. The single process and the
    searches on 2 workers run ``--repeats`` times, taking turns, and the fastest of each counts (this machine's speed
    drifts by tenths within minutes), beside the ratio turn by turn (:func:`by_turn`); 1 worker runs once; each turn
    ends with two single-process searches at once, what two cores give searches that exchange nothing. Each run
    also reports the CPU time its processes took (:func:`_cpu_row`): over the single process's
    (``cpu_over_single_process``, fastest and turn by turn), the work the partitioning adds; ``busy``, how much of
    its cores' time it computed."""
    from ..model.policies import POLICIES

    size = "full" if getattr(args, "full", False) else "quick"
    repeats = max(1, getattr(args, "repeats", 1))
    bounds = BENCH_BOUNDS[size]
    sc = X.Scenario(kinds=(X.USER, X.PIPE), policy=POLICIES["owner_skb"])
    runs = {"workers_1": (1, True), "workers_2": (2, True), "threads_2": (2, False)}
    each: dict = {"single_process": [], **{name: [] for name in runs}, "two_at_once": []}
    for r in range(repeats):
        each["single_process"].append(in_search_process(_single_run, bounds, sc))
        for name, (w, processes) in runs.items():
            if w > 1 or r == 0:
                each[name].append(_spread_run(bounds, sc, w) if processes else
                                  in_search_process(_spread_run, bounds, sc, w, "auto", CHUNK, False))
        each["two_at_once"].append(_two_at_once(bounds, sc))
    single = _fastest(each["single_process"])
    out: dict = {"scenario": "user memory and a pipe, frags spanning folios, owner_skb", "bounds": bounds.__dict__,
                 "speed": f"wall clock, the fastest of {repeats} run{'s' if repeats > 1 else ''} each, taking turns "
                          "(workers_1: one); workers_N: N worker processes (batches serialised between them), "
                          "threads_2: 2 workers as threads of one process (batches by reference); every search in a "
                          "process started with search_env(), every cluster with SEARCH_CONFIG",
                 "malloc": search_env(os.environ), "dask_config": SEARCH_CONFIG, "single_process": single}
    for name in (*runs, "two_at_once"):
        row = out[name] = _fastest(each[name])
        if row.get("states_per_s"):
            row["over_single_process"] = row["states_per_s"] / single["states_per_s"]
            row["same_as_single_process"] = all(r.get("states") == single["states"] and
                                                r.get("verdict") == single["verdict"] for r in each[name])
            row["over_single_process_by_turn"] = by_turn(each["single_process"], each[name])
            if name in runs:  # two_at_once's CPU time is two searches'
                row["cpu_over_single_process"] = row["cpu_seconds"] / single["cpu_seconds"]
                row["cpu_over_single_process_by_turn"] = by_turn(each["single_process"], each[name], "cpu_seconds")
    out["memory_limit"] = memory_demo(BENCH_BOUNDS["quick"], sc)
    return out


def by_turn(single: list[dict], rows: list[dict], key: str = "states_per_s") -> dict:
    """Each turn's run's ``key`` (states per second; or its CPU seconds) over that of the single process just before
    it (turns where both completed), and their median: a run and the single process it follows met the same speed
    of the machine, which the fastest of each need not have."""
    ratios = [r[key] / s[key] for s, r in zip(single, rows) if s.get(key) and r.get(key)]
    return {"ratios": ratios, "median": float(np.median(ratios)) if ratios else None}


def _two_at_once(bounds, sc) -> dict:
    """Two single-process searches at once, each in its own process: what this machine's cores give two searches
    that exchange nothing, against which 2 workers' exchange can be weighed: a run as the bench's others are, its
    ``seconds`` until both are done, its states per second both searches' (``search_seconds``: each one's)."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(2) as pool:
        runs = list(pool.map(lambda _: in_search_process(_single_run, bounds, sc), range(2)))
    same = len({(r["states"], r["verdict"]) for r in runs}) == 1
    wall = max(r["seconds"] for r in runs)
    cpu = sum(r["cpu_seconds"] for r in runs)
    return {"seconds": wall, "search_seconds": [r["seconds"] for r in runs],
            "states": runs[0]["states"] if same else None, "verdict": runs[0]["verdict"] if same else None,
            "states_per_s": sum(r["states"] for r in runs) / wall, "cpu_seconds": cpu, "busy": cpu / (2 * wall)}


def _fastest(rows: list[dict]) -> dict:
    """The run of ``rows`` that took least (one that did not complete, if any did not), with every run's seconds."""
    failed = [r for r in rows if not r.get("seconds")]
    best = dict(failed[0] if failed else min(rows, key=lambda r: r["seconds"]))
    best["seconds_each"] = [r.get("seconds") for r in rows]
    return best


def memory_demo(bounds, sc, workers: int = MEMORY_WORKERS) -> dict:
    """The same search under one memory limit per worker, sized so that what one partition holds for the whole
    search (measured first, on one worker without a limit) does not fit in one worker but a ``workers``-th of it
    does: one worker (stopped by its nanny), then ``workers``."""
    lc, client = local_cluster(1)
    try:
        explore(X.Bounds(ops=2), sc, client=client)
        base = _worker_rss(client)
        whole = explore(bounds, sc, client=client, chunk=MEMORY_CHUNK).partitions[0]["bytes"]
    finally:
        client.close()
        lc.close()
    # the nanny stops a worker at 95 % of its limit: 0.7 of the whole partition above a worker's own memory fits
    # under that (a quarter of it, its rounds and the exchange, do), the whole partition does not
    limit = int((base + 0.7 * whole) / MEMORY_CONFIG["distributed.worker.memory.terminate"])
    return {"memory_limit": limit, "worker_rss_before": base, "partition_bytes_one_worker": int(whole),
            "one_worker": _spread_run(bounds, sc, 1, limit, MEMORY_CHUNK),
            f"{workers}_workers": _spread_run(bounds, sc, workers, limit, MEMORY_CHUNK)}


# ---- the command ----------------------------------------------------------------------------------------------
def register(sub) -> None:
    p = sub.add_parser("explore", help="chapter 08's exhaustive search, its visited set spread over dask workers",
                       description="Search every interleaving the bounds allow under one scenario, level by level, "
                                   "with the visited set partitioned by state hash across dask workers; print the "
                                   "verdict, the shortest counterexample and how the states spread.")
    p.add_argument("--workers", type=int, default=2, help="LocalCluster worker processes (default 2); with "
                                                           "--scheduler, wait for this many")
    p.add_argument("--scheduler", metavar="ADDRESS", default=None,
                   help="an existing dask scheduler (tcp://host:8786); default: a LocalCluster here")
    p.add_argument("--threads", action="store_true", help="one in-process LocalCluster (workers as threads)")
    p.add_argument("--partitions", type=int, default=None, help="visited-set partitions (default: one per worker)")
    p.add_argument("--chunk", type=int, default=CHUNK, help=f"frontier states a partition expands per round "
                                                             f"(default {CHUNK})")
    for name, default in X.Bounds().__dict__.items():
        p.add_argument(f"--{name.replace('_', '-')}", type=int, default=default, help=f"bound (default {default})")
    p.add_argument("--kinds", default="user,pipe", help=f"one or two buffer kinds, comma-separated: "
                                                         f"{', '.join(X.SCENARIO_KINDS)} (default user,pipe)")
    p.add_argument("--policy", default="owner_skb", help="the lifetime design (default owner_skb)")
    p.add_argument("--without", action="append", default=[], metavar="RULE",
                   help=f"leave one owner rule out (repeatable): {', '.join(X.RULES)}")
    p.add_argument("--no-span", action="store_true", help="frags never span two folios")
    p.add_argument("--slots", type=int, default=0, help="owner array slots (0: as many as needed)")
    p.add_argument("--fallback", default="refuse", help=f"owner array fallback: {', '.join(X.FALLBACKS)}")
    p.add_argument("--devmem-tx", default="frag", help=f"devmem TX's rule: {', '.join(X.DEVMEM_TX)}")
    p.add_argument("--compare", action="store_true", help="also run the single-process search and compare")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.add_argument("--single", action="store_true", help="only the single-process search (no cluster)")
    p.add_argument("--record", action="store_true", help="with --single: keep the search's summary, bounds, "
                   f"machine and commit in {LARGEST.relative_to(paths.ROOT)} under its policy (chapter 08 cites it)")
    p.set_defaults(func=_cli)


def scenario_of(args) -> tuple[X.Bounds, X.Scenario]:
    """The bounds and scenario the command's arguments name; a bad value is one ParamError line."""
    from ..model.policies import POLICIES

    kinds = [k.strip() for k in args.kinds.split(",") if k.strip()]
    for k in kinds:
        if k not in X.SCENARIO_KINDS:
            raise ParamError(f"--kinds {k!r} is not allowed: expected one or two of {', '.join(X.SCENARIO_KINDS)}")
    if args.policy not in POLICIES:
        raise ParamError(f"--policy {args.policy!r} is not allowed: expected one of {', '.join(sorted(POLICIES))}")
    rules = X.ALL_RULES
    for r in args.without:
        if r not in X.RULES:
            raise ParamError(f"--without {r!r} is not allowed: expected one of {', '.join(X.RULES)}")
        rules &= ~X.RULES[r]
    try:
        bounds = X.Bounds(**{name: getattr(args, name) for name in X.Bounds().__dict__})
        sc = X.Scenario(kinds=tuple(X.KIND_CODE[k] for k in kinds), span=not args.no_span,
                        policy=POLICIES[args.policy], rules=rules, slots=args.slots, fallback=args.fallback,
                        devmem_tx=args.devmem_tx)
    except ValueError as e:
        raise ParamError(str(e)) from None
    return bounds, sc


def summary(spread: Spread, single: X.Result | None = None) -> dict:
    res = spread.result
    short = res.shortest()
    out = {"states": res.states, "edges": res.edges, "complete": res.complete, "verdict": res.verdict,
           "shortest": {"violation": short[0], "steps": len(short[1])} if short else None,
           "violations": {k: len(v) for k, v in res.found.items()}, "levels": spread.levels, "rounds": spread.rounds,
           "seconds": spread.seconds, "states_per_s": spread.states_per_s, "cluster": spread.cluster,
           "partitions": spread.partitions}
    if single is not None:
        same = (single.states == res.states and single.verdict == res.verdict
                and {k: len(v) for k, v in single.found.items()} == out["violations"])
        out["single_process"] = {"states": single.states, "verdict": single.verdict, "seconds": single.seconds,
                                 "violations": {k: len(v) for k, v in single.found.items()}, "same": same}
    return out


LARGEST = paths.LARGEST_SEARCHES  # chapter 08 states them


def single_record(bounds: X.Bounds, sc: X.Scenario, args) -> dict:
    """One single-process search at ``bounds``, told as chapter 08 cites it: what was searched, what was found,
    what it took (wall and CPU seconds, bytes per stored state) and on what (machine, kernel, commit, date)."""
    import dataclasses
    import datetime

    from .. import build

    E.explore(dataclasses.replace(bounds, ops=1), sc)  # compile first: the times are the search's own
    t0 = time.process_time()
    res = E.explore(bounds, sc)
    cpu = time.process_time() - t0
    mem = E.bytes_per_state(bounds, sc, res.states, res.queue_peak)
    short = res.shortest()
    commit, machine = build.commit_info(), build.machine_info()
    bound_names = tuple(vars(bounds))
    return {"command": "fraglife explore --single " + " ".join(
                f"--{k.replace('_', '-')} {getattr(bounds, k)}" for k in bound_names)
            + f" --kinds {args.kinds} --policy {args.policy}" + (" --no-span" if args.no_span else ""),
            "bounds": {k: int(getattr(bounds, k)) for k in bound_names},
            "kinds": args.kinds, "policy": args.policy, "span": not args.no_span,
            "states": int(res.states), "edges": int(res.edges), "complete": bool(res.complete),
            "verdict": res.verdict,
            "shortest": {"violation": short[0], "steps": len(short[1])} if short else None,
            "seconds": round(res.seconds, 2), "cpu_seconds": round(cpu, 2),
            "bytes_per_state": round(mem["total"], 1), "queue_bytes": int(mem["queue_bytes"]),
            "collision_bound": mem["collision_bound"],
            "machine": {"cpu": machine["cpu_model"], "cores": machine["cpus"]},
            "kernel": build.kernel_info()["release"],
            "commit": (commit["short"] or "unknown") + (" with local changes" if commit["dirty"] else ""),
            "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d")}


def keep_record(rec: dict, path=None) -> None:
    """Store ``rec`` under its policy in :data:`LARGEST` (the other policies' records stay)."""
    import json

    path = LARGEST if path is None else path
    kept = json.loads(path.read_text()) if path.exists() else {}
    kept[rec["policy"]] = rec
    paths.write_json(path, kept, sort_keys=True)


def _cli(args) -> int:
    import json

    if args.record and not args.single:
        raise ParamError("--record is not allowed without --single: only the single-process search is recorded")
    if args.single:
        bounds, sc = scenario_of(args)
        rec = single_record(bounds, sc, args)
        if args.record:
            keep_record(rec)
        print(json.dumps(rec, indent=2) if args.json else
              f"{rec['verdict']}: {rec['states']:,} states, {rec['edges']:,} steps, "
              f"{'complete' if rec['complete'] else 'cut short by a bound'}, {rec['seconds']} s "
              f"({rec['cpu_seconds']} s CPU), {rec['bytes_per_state']} bytes a state"
              + (f"; kept in {LARGEST.relative_to(paths.ROOT)}" if args.record else ""))
        return 0

    for name in ("workers", "chunk"):
        if getattr(args, name) < 1:
            raise ParamError(f"--{name} {getattr(args, name)} is not allowed: expected an integer >= 1")
    if args.partitions is not None and not 1 <= args.partitions <= MAX_PARTITIONS:
        raise ParamError(f"--partitions {args.partitions} is not allowed: expected an integer in "
                         f"[1, {MAX_PARTITIONS}]")
    bounds, sc = scenario_of(args)
    kw = dict(scheduler=args.scheduler, workers=args.workers, processes=not args.threads, partitions=args.partitions,
              chunk=args.chunk)
    # threads of this process: in a process of their own that allocates as a search's worker processes do
    spread = (in_search_process(explore, bounds, sc, **kw) if args.threads and not args.scheduler
              else explore(bounds, sc, **kw))
    single = E.explore(bounds, sc) if args.compare else None
    out = summary(spread, single)
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        short = out["shortest"]
        print(f"{out['verdict']}: {out['states']:,} states, {out['edges']:,} steps, "
              f"{'complete' if out['complete'] else 'cut short by a bound'}; "
              + (f"shortest counterexample: {short['violation']} in {short['steps']} steps" if short
                 else "no counterexample"))
        print(f"{spread.cluster}; {len(spread.partitions)} partitions, {out['levels']} levels in {out['rounds']} "
              f"rounds, {spread.seconds:.2f} s ({spread.states_per_s:,.0f} states/s)")
        for i, p in enumerate(spread.partitions):
            print(f"  partition {i} on {p['worker']}: {p['states']:,} states, {p['bytes'] / 2**20:.1f} MiB")
        if single is not None:
            sp = out["single_process"]
            print(f"single process: {sp['states']:,} states, {sp['verdict']}, {single.seconds:.2f} s: "
                  + ("same as the single process" if sp["same"] else "DIFFERS from the single process"))
    if single is not None and not out["single_process"]["same"]:
        return 1
    return 0

"""Chapter 08's search spread over dask workers: the frontier expansion against the twin, and the distributed
search against the single process (verdicts, shortest counterexamples' lengths and kinds, each replayed in the
twin)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fraglife import cli
from fraglife.model import explorer as E
from fraglife.model import explorer_twin as X
from fraglife.model.policies import POLICIES
from fraglife.sweep import explore as D

distributed = pytest.importorskip("distributed")


@pytest.fixture(scope="module")
def client():
    """Two in-process workers of one thread each: partitions on two workers, batches exchanged between them."""
    lc = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None,
                                  scheduler_kwargs={"dashboard": False})
    c = distributed.Client(lc)
    yield c
    c.close()
    lc.close()


def in_chunks(rows, chunk: int) -> tuple:
    """expand_split's frontier arguments for ``rows``, held in chunks of ``chunk`` rows as a partition holds a level."""
    rows = np.array(rows, np.int16)
    return E.frontier_chunks(rows, chunk), 0, len(rows)


@st.composite
def frontiers(draw):
    """A scenario and a few states of a random walk through it (the twin's)."""
    bounds = X.Bounds(ops=draw(st.integers(2, 6)), cpus=draw(st.integers(1, 3)), skbs=draw(st.integers(1, 4)),
                      frags=draw(st.integers(1, 3)), copies=draw(st.integers(0, 1)), outside=draw(st.integers(0, 2)))
    kinds = tuple(draw(st.lists(st.integers(0, len(X.SCENARIO_KINDS) - 1), min_size=1, max_size=2)))
    sc = X.Scenario(kinds=kinds, span=draw(st.booleans()), policy=POLICIES[draw(st.sampled_from(sorted(POLICIES)))],
                    rules=draw(st.sampled_from([X.ALL_RULES, *(X.ALL_RULES & ~r for r in X.RULES.values())])),
                    slots=draw(st.sampled_from([0, 0, 1, 2])), fallback=draw(st.sampled_from(X.FALLBACKS)),
                    devmem_tx=draw(st.sampled_from(X.DEVMEM_TX)))
    ex = X.Explorer(bounds, sc)
    v = ex.encode(ex.start())
    states = [v]
    for _ in range(draw(st.integers(0, 30))):
        succ = [s for _lab, s, bad in ex.successors(v) if not bad]
        if not succ:
            break
        v = ex.encode(succ[draw(st.integers(0, len(succ) - 1))])
        states.append(v)
    return bounds, sc, draw(st.lists(st.sampled_from(states), min_size=1, max_size=6))


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(case=frontiers(), nparts=st.integers(1, 4), cache=st.sampled_from([1, 4, 1 << 10]), chunk=st.integers(1, 5))
def test_expand_split_sends_each_distinct_successor_once_grouped_by_owner(case, nparts, cache, chunk):
    """expand_split() on a frontier, against the twin stepped state by state: every step counted; the first
    violation of each kind (frontier row, step label); terminals and the first leaking one; the owner array's
    fallbacks; and each distinct successor once, in the twin's order within its owner's batch, with its parent
    reference and its index among its parent's successors; a second call on the scratch the first grew gives the
    same (with a sent cache of its own); a third, on the first one's sent cache, sends again only those whose slot
    a later one took. The frontier is read from chunks of ``chunk`` rows, as a partition holds a level."""
    bounds, sc, frontier = case
    ex = X.Explorer(bounds, sc)
    width = len(frontier[0])
    scratch = (np.zeros((1, width), np.int16), np.zeros(4, np.uint64), np.zeros(1, np.uint64), np.zeros(1, np.int64),
               np.zeros(1, np.uint16))  # one row: growing it is part of every call
    P = E.params(bounds, sc)
    cached = E.sent_cache(None, cache)
    out = E.expand_split(P, *in_chunks(frontier, chunk), nparts, 1000, scratch, cached, -1, E.no_visited_set(width))
    again = E.expand_split(P, *in_chunks(frontier, chunk), nparts, 1000, out[-2], E.sent_cache(None, cache), -1,
                           E.no_visited_set(width))  # on the scratch grown
    for a, b in zip(out[:14], again[:14]):
        assert np.array_equal(a, b)
    assert out[-1][4:] == (0, 0)  # nothing kept, nothing refused
    flat, off, ncol, cols, sz, hashes, ref, idx, cuts, found, leak, terminals, edges, fb = out[:14]
    kept, seen, first, want_leak, want_terminals, want_edges = [], set(), {}, -1, 0, 0
    for i, v in enumerate(frontier):
        steps = ex.successors(v)
        want_edges += len(steps)
        if not steps:
            want_terminals += 1
            if want_leak < 0 and ex.leaks(v):
                want_leak = i
        for q, (lab, s, bad) in enumerate(steps):
            for kind in sorted(bad):
                first.setdefault(kind, (i, *lab))
            if not bad and ex.encode(s) not in seen:
                seen.add(ex.encode(s))
                kept.append((ex.encode(s), 1000 + i, q))
    owner = [int(h) >> 32 for h in E.state_hashes(np.array([k[0] for k in kept], np.int16).reshape(len(kept), width))]
    want = sorted(((o % nparts, j) for j, o in enumerate(owner)))
    sent = E.batches(flat, off, ncol, cols, sz, cuts)
    rows = np.concatenate([E.unpack(*b, width) for b in sent])
    assert [tuple(int(x) for x in r) for r in rows] == [kept[j][0] for _o, j in want]
    assert [(int(r), int(x)) for r, x in zip(ref, idx)] == [kept[j][1:] for _o, j in want]
    assert list(hashes) == list(E.state_hashes(np.asarray(rows, np.int16)))
    assert list(np.diff(cuts)) == [sum(1 for o, _j in want if o == q) for q in range(nparts)]
    assert {k: tuple(int(x) for x in found[k]) for k in range(4) if found[k, 0] >= 0} == first
    assert (leak, terminals, edges, fb) == (want_leak, want_terminals, want_edges, ex.fallbacks)
    assert (sz == 1) == all(-128 <= x <= 127 for k in kept for x in k[0])  # a byte a field where they fit
    for b, q in zip(sent, range(nparts)):  # each batch as pack() packs its rows
        want_b = E.pack(rows[cuts[q]:cuts[q + 1]].astype(np.int8 if sz == 1 else np.int16))
        assert np.array_equal(b[0], want_b[0]) and list(b[1]) == list(want_b[1]) and b[2] == want_b[2]
    met = [int(h) for h in hashes[np.argsort([j for _o, j in want])]]  # in the order they were met

    def sends(held):  # what a call sends, on a cache of ``held`` (slot -> the last fingerprint sent there)
        return [h for h in met if held.get(h % cache) != h and not held.update({h % cache: h})]

    held = {}
    assert sends(held) == met
    assert sorted(int(h) for h in cached if h) == sorted(held.values())
    third = E.expand_split(P, *in_chunks(frontier, chunk), nparts, 1000, out[-2], cached, -1, E.no_visited_set(width))
    resent = set(sends(held))
    assert [int(h) for h in third[5]] == [int(h) for h in hashes if int(h) in resent]


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(case=frontiers(), nparts=st.integers(1, 3), data=st.data())
def test_an_expansion_keeps_its_own_partitions_successors_as_visit_would(case, nparts, data):
    """expand_split() as partition ``me`` with its visited set: the successors ``me`` owns are in no batch, and the
    visited set holds what visit() makes of the batch it would have been sent (as the first add of the level, on
    a set that already holds some of them), refusing successors past its limit where visit() does."""
    bounds, sc, frontier = case
    P = E.params(bounds, sc)
    width = len(frontier[0])
    me = data.draw(st.integers(0, nparts - 1))
    chunk = data.draw(st.integers(1, 4))  # rows a chunk: many chunks filled and read, on either side
    rows = np.array(frontier, np.int16)
    whole = E.expand_split(P, *in_chunks(rows, chunk), nparts, 1000, E.expand_scratch(width), E.sent_cache(None, 1),
                           -1, E.no_visited_set(width))
    hashes, ref, idx, cuts = whole[5:9]
    sent = np.concatenate([E.unpack(*b, width) for b in E.batches(*whole[:5], cuts)])
    mine = slice(cuts[me], cuts[me + 1])
    held = data.draw(st.integers(0, int(cuts[me + 1] - cuts[me])))  # already in the set: the first few of them
    limit = data.draw(st.integers(1, 40))

    def visited():
        chunks, spare = E.row_chunks(width, chunk, 1), E.row_chunks(width, chunk, 0)
        table, parent, label, n, base, _r = E.visit(np.zeros(8, np.uint64), chunks, spare, np.zeros(1, np.uint32),
                                                    np.zeros(1, np.uint16), 0, 0, *E.pack(sent[mine][:held]),
                                                    hashes[mine][:held], ref[mine][:held], idx[mine][:held], 1 << 20)
        return table, chunks, spare, parent, label, n, base

    table, chunks, spare, parent, label, n, base = visited()
    want = E.visit(table, chunks, spare, parent, label, n, base, *E.pack(sent[mine]), hashes[mine], ref[mine],
                   idx[mine], limit + held)
    want_rows = E.chunked_rows(chunks, want[3])
    vis = visited()
    got = E.expand_split(P, *in_chunks(rows, chunk), nparts, 1000, E.expand_scratch(width), E.sent_cache(None, 1), me,
                         (*vis, limit + held))
    got_cuts = got[8]
    assert got_cuts[me + 1] == got_cuts[me]  # no batch for itself
    for q, b in enumerate(E.batches(*got[:5], got_cuts)):
        if q != me:
            assert np.array_equal(E.unpack(*b, width), sent[cuts[q]:cuts[q + 1]])
    t, pa, la, n, base, refused = got[-1]
    assert n == want[3] and (refused > 0) == (want[5] > 0)  # a state refused twice here counts twice
    assert base == (len(vis[1]) - 1) * chunk and base <= n <= base + chunk  # the last chunk holds states base..
    assert np.array_equal(E.chunked_rows(vis[1], n), want_rows) and np.array_equal(pa[:n], want[1][:n])
    assert np.array_equal(la[:n], want[2][:n])
    assert sorted(int(x) for x in t if x) == sorted(int(x) for x in want[0] if x)


@pytest.mark.parametrize("chunk", [1, 2, 8])
def test_visit_adds_each_new_state_once_and_refuses_past_its_limit(chunk):
    """visit() keeps the rows of the states it adds in order, a chunk of ``chunk`` rows after another, the spare
    ones first."""
    rows = np.array([[1, 2], [3, 4], [1, 2], [5, 6], [3, 4], [7, 8]], np.int16)
    h = E.state_hashes(rows)
    chunks, spare = E.row_chunks(2, chunk, 1), E.row_chunks(2, chunk, 1)
    spared = spare[0]
    parent, label = np.zeros(1, np.uint32), np.zeros(1, np.uint16)
    src, idx = np.arange(6, dtype=np.uint32), np.arange(10, 16, dtype=np.uint16)
    table, parent, label, n, base, refused = E.visit(np.zeros(4, np.uint64), chunks, spare, parent, label, 0, 0,
                                                     *E.pack(rows), h, src, idx, 3)
    assert n == 3 and refused == 1
    assert len(chunks) == -(-n // chunk) and base == (len(chunks) - 1) * chunk
    assert (len(spare) == 0) == (chunk < n) and (chunk >= n or chunks[1] is spared or
                                                 np.shares_memory(chunks[1], spared))
    assert [tuple(r) for r in E.chunked_rows(chunks, n)] == [(1, 2), (3, 4), (5, 6)] and list(parent[:n]) == [0, 1, 3]
    assert list(label[:n]) == [10, 11, 13]
    assert sorted(int(x) for x in table if x) == sorted(int(x) for x in h[[0, 1, 3]]) and 4 * n <= 3 * len(table)


def test_a_partition_keeps_a_level_in_chunks_and_reuses_those_of_the_level_expanded():
    """The frontier of a level is its states' rows in order, whatever chunk a round starts in; a level begun puts
    the expanded level's chunks aside for the next, keeping no more of them than the new frontier has."""
    bounds, sc = X.Bounds(ops=3, cpus=2, skbs=2, frags=2), X.Scenario(kinds=(X.USER, X.PIPE))
    P, start = D._problem(bounds, sc, True)
    p = D.Partition(P, 0, 1, 1 << 20, None, 2)
    D._add_start(p, start)
    assert p.begin_level() == 1
    p.expand(0, 2)  # the start's successors, kept here: more than a chunk
    size = p.begin_level()
    assert size > 4 and len(p.front) == -(-size // 2) and len(p.spare) == 0
    level = E.chunked_rows(p.front, size)
    # a round that starts inside a chunk and spans several, read where it is: what the same rows give in one chunk
    args = (p.nparts, 0, E.expand_scratch(p.width), E.sent_cache(None, 1), -1, E.no_visited_set(p.width))
    in_place = E.expand_split(P, p.front, 1, size - 2, *args)
    args = (p.nparts, 0, E.expand_scratch(p.width), E.sent_cache(None, 1), -1, E.no_visited_set(p.width))
    one = E.expand_split(P, *in_chunks(level[1:size - 1], size), *args)
    assert all(np.array_equal(a, b) for a, b in zip(in_place[:14], one[:14])) and in_place[12] > 0
    fronts = list(p.front)
    p.expand(0, size)
    p.begin_level()
    assert len(p.spare) + 1 <= len(fronts) and len(p.spare) <= len(p.front)
    assert all(any(np.shares_memory(c, f) for f in fronts) for c in [*p.spare, p.next[0]])


@settings(max_examples=200, deadline=None)
@given(rows=st.integers(0, 20).flatmap(lambda w: st.lists(st.lists(st.integers(-2 ** 15, 2 ** 15 - 1), min_size=w,
                                                                   max_size=w), min_size=0, max_size=6)),
       small=st.booleans(), zeros=st.sets(st.integers(0, 19)))
def test_a_packed_batch_unpacks_to_its_rows_and_leaves_out_only_zero_bytes(rows, small, zeros):
    """pack() then unpack() gives the batch back, int8 (every field signed) or int16; the bytes left out are 0 in
    every row, and a byte column that is not 0 in some row is kept."""
    w = len(rows[0]) if rows else 3
    arr = np.array(rows, np.int64).reshape(len(rows), w)
    arr[:, [z for z in zeros if z < w]] = 0  # columns zero in every row, as a level's states have
    arr = (arr % 256 - 128).astype(np.int8) if small else arr.astype(np.int16)
    packed, cols, sz = E.pack(arr)
    assert sz == arr.itemsize and packed.shape == (len(arr), len(cols))
    assert np.array_equal(E.unpack(packed, cols, sz, w), arr.astype(np.int16))
    as_bytes = arr.view(np.uint8).reshape(len(arr), w * sz)
    assert list(cols) == [c for c in range(w * sz) if as_bytes[:, c].any()]


def _replays(ex: X.Explorer, kind: str, steps: list) -> None:
    """The trace, step by step in the twin from the start state, ends in violation ``kind``."""
    v = ex.encode(ex.start())
    for i, (lab, before) in enumerate(steps):
        assert before == v, i
        last = i == len(steps) - 1
        nxt = None if last else steps[i + 1][1]
        hits = [(s, b) for lab_, s, b in ex.successors(v) if lab_ == lab and (last or (not b and ex.encode(s) == nxt))]
        assert hits, (i, lab)
        s, b = hits[0]
        if last and kind != "leak":
            assert X.VIOLATIONS.index(kind) in b
            return
        v = ex.encode(s)
    assert kind == "leak" and not ex.successors(v) and ex.leaks(v)


#: scenarios with and without counterexamples: today's rule on a multi-folio frag, the owner, a rule left out, the
#: binding's rule on pipe pages, the owner array with its copy fallback, devmem TX under the prototype
CASES = {
    "page_ref": (X.Bounds(ops=3, cpus=2, skbs=2, frags=2), (X.USER, X.PIPE), "page_ref", {}),
    "owner_skb": (X.Bounds(ops=3, cpus=2, skbs=3, frags=2), (X.USER, X.PIPE), "owner_skb", {}),
    "no_clone_rule": (X.Bounds(ops=3, cpus=2, skbs=2, frags=2), (X.PIPE, X.PIPE), "owner_skb",
                      {"rules": X.ALL_RULES & ~X.R_CLONE}),
    "binding": (X.Bounds(ops=2, cpus=2, skbs=2, frags=2), (X.PIPE,), "owner_binding", {}),
    "owner_array": (X.Bounds(ops=3, cpus=2, skbs=2, frags=2), (X.USER, X.PIPE), "owner_skb",
                    {"slots": 1, "fallback": "copy"}),
    "devmem": (X.Bounds(ops=3, cpus=2, skbs=2, frags=1), (X.DEVMEM, X.DEVMEM), "page_ref",
               {"devmem_tx": "socket+orphan"}),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_distributed_search_gives_the_single_process_answers(client, case):
    bounds, kinds, policy, extra = CASES[case]
    sc = X.Scenario(kinds=kinds, policy=POLICIES[policy], **extra)
    one = E.explore(bounds, sc)
    spread = D.explore(bounds, sc, client=client, partitions=3, chunk=700)
    res = spread.result
    for name in ("states", "edges", "terminals", "max_depth", "complete", "fallbacks", "verdict"):
        assert getattr(res, name) == getattr(one, name), name
    assert {k: len(v) for k, v in res.found.items()} == {k: len(v) for k, v in one.found.items()}
    assert (res.shortest() or ("", []))[0] == (one.shortest() or ("", []))[0]
    ex = X.Explorer(bounds, sc)
    for kind, steps in res.found.items():
        _replays(ex, kind, steps)
    assert sum(p["states"] for p in spread.partitions) == one.states
    assert len({p["worker"] for p in spread.partitions}) == 2 and all(p["states"] for p in spread.partitions)


def test_caps_make_the_distributed_search_incomplete(client):
    sc = X.Scenario(kinds=(X.USER, X.PIPE), policy=POLICIES["owner_skb"])
    deep = D.explore(X.Bounds(ops=3, depth=4), sc, client=client).result
    single = E.explore(X.Bounds(ops=3, depth=4), sc)
    assert not deep.complete and deep.max_depth == 4 == single.max_depth and deep.states == single.states
    capped = D.explore(X.Bounds(ops=3, max_states=500), sc, client=client).result
    assert not capped.complete and capped.states <= 500


def test_a_visited_set_too_big_for_one_partition_fits_in_several(client):
    """Under a byte limit per partition of 0.6 of what one partition holds for the whole search, one partition
    cannot hold it and stops with PartitionFull; four partitions with the same limit each finish it."""
    b, sc = X.Bounds(ops=4, cpus=2, skbs=3, frags=2), X.Scenario(kinds=(X.USER, X.PIPE), policy=POLICIES["owner_skb"])
    one = E.explore(b, sc)
    whole = D.explore(b, sc, client=client, partitions=1).partitions[0]["bytes"]
    limit = int(0.6 * whole)
    with pytest.raises(D.PartitionFull):
        D.explore(b, sc, client=client, partitions=1, byte_limit=limit)
    spread = D.explore(b, sc, client=client, partitions=4, byte_limit=limit)
    assert spread.result.states == one.states and spread.result.complete
    assert max(p["bytes"] for p in spread.partitions) <= limit


def test_a_result_lost_with_its_worker_stops_the_search():
    """A partition's task ended, then its worker left before the result was fetched: the key is recomputed on no
    worker (tasks are pinned to their partition's), and the search says the partition is lost instead of waiting."""
    lc = distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None,
                                  scheduler_kwargs={"dashboard": False})
    c = distributed.Client(lc)
    try:
        [addr] = sorted(c.nthreads())
        search = D._Search(c, [addr], 1)  # noqa: SLF001  (the client side of one search, as explore() makes it)
        fut = search.submit(np.arange, 0, 4)
        distributed.wait([fut])
        [got] = search.wait([fut])
        assert got.tolist() == [0, 1, 2, 3]
        lc.scale(2)
        c.wait_for_workers(2, timeout=60)
        [worker] = [w for w in lc.workers.values() if w.address == addr]
        c.sync(worker.close)  # abruptly: its data goes with it (retiring it would move the result first)
        with pytest.raises(D.PartitionLost, match=addr):
            search.wait([fut])
    finally:
        c.close()
        lc.close()


#: a search's LocalCluster started in a process of its own (a process cluster leaves its resource tracker behind)
_WORKER_ENVIRON = """
import json, os
from fraglife.sweep import explore as D

def environ():
    return {k: os.environ.get(k) for k in D.SEARCH_MALLOC}

def config():
    import dask
    return {k: dask.config.get(k) for k in D.SEARCH_CONFIG}

out = {}
for limit in ("auto", 1 << 30):
    lc, c = D.local_cluster(1, memory_limit=limit)
    out[str(limit)] = list(c.run(environ).values())
    out["config " + str(limit)] = list(c.run(config).values())
    out["extensions " + str(limit)] = sorted(c.run_on_scheduler(lambda dask_scheduler: list(dask_scheduler.extensions)))
    c.close()
    lc.close()
out["after"] = os.environ.get("MALLOC_TOP_PAD_")
print(json.dumps(out))
"""


def test_search_workers_keep_their_heap_unless_under_a_memory_limit():
    """A search's worker processes start with SEARCH_MALLOC; under a memory limit they keep dask's own setting, and
    the starting process's environment is as it was. Either way they run with SEARCH_CONFIG (no stack samples, no
    GIL samples), their memory read as often as dask reads it under a limit only, and their scheduler does not
    steal."""
    import json
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-c", _WORKER_ENVIRON], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["auto"] == [D.SEARCH_MALLOC]
    assert out[str(1 << 30)] == [{k: "65536" if k == "MALLOC_TRIM_THRESHOLD_" else None for k in D.SEARCH_MALLOC}]
    assert out["after"] is None
    limited = {**D.SEARCH_CONFIG, **{k: v for k, v in D.MEMORY_CONFIG.items() if k in D.SEARCH_CONFIG}}
    assert limited["distributed.worker.memory.monitor-interval"] == "100ms"  # a limit near: read as often as dask does
    assert out["config auto"] == [D.SEARCH_CONFIG]
    assert out["config " + str(1 << 30)] == [limited]
    for limit in ("auto", str(1 << 30)):
        assert "stealing" not in out["extensions " + limit]


def test_a_search_keeps_the_users_glibc_tunables(monkeypatch):
    """glibc's tunables are one variable: a search adds its own to the user's, a tunable the user set keeps the user's
    value, and under a memory limit only the user's remain (dask's own malloc setting)."""
    import os

    tun = D._tunables
    assert D.search_env({}) == D.SEARCH_MALLOC
    assert D.search_env({}, 1 << 30) == dict.fromkeys(D.SEARCH_MALLOC)
    user = {"GLIBC_TUNABLES": "glibc.cpu.hwcaps=-AVX2_Usable:glibc.malloc.hugetlb=0"}
    assert tun(D.search_env(user)["GLIBC_TUNABLES"]) == {"glibc.cpu.hwcaps": "-AVX2_Usable",
                                                         "glibc.malloc.hugetlb": "0"}
    user = {"GLIBC_TUNABLES": "glibc.cpu.hwcaps=-AVX2_Usable"}
    assert tun(D.search_env(user)["GLIBC_TUNABLES"]) == {"glibc.cpu.hwcaps": "-AVX2_Usable",
                                                         **tun(D.SEARCH_MALLOC["GLIBC_TUNABLES"])}
    assert D.search_env(user, 1 << 30)["GLIBC_TUNABLES"] == "glibc.cpu.hwcaps=-AVX2_Usable"
    # a search's own setting, met again in a process it started, is left as it is
    assert D.search_env(D.SEARCH_MALLOC) == D.SEARCH_MALLOC
    # the process a threaded search runs in, and worker processes: the user's tunable reaches them
    monkeypatch.setenv("GLIBC_TUNABLES", "glibc.cpu.hwcaps=-AVX2_Usable")
    assert tun(D.in_search_process(os.getenv, "GLIBC_TUNABLES")) == tun(D.search_env(os.environ)["GLIBC_TUNABLES"])
    with D.search_malloc():
        assert tun(os.environ["GLIBC_TUNABLES"])["glibc.cpu.hwcaps"] == "-AVX2_Usable"
    with D.search_malloc(1 << 30):
        assert os.environ["GLIBC_TUNABLES"] == "glibc.cpu.hwcaps=-AVX2_Usable"
        assert "MALLOC_ARENA_MAX" not in os.environ
    assert os.environ["GLIBC_TUNABLES"] == "glibc.cpu.hwcaps=-AVX2_Usable"


def test_a_search_on_threads_runs_in_a_process_that_allocates_as_worker_processes_do():
    """The bench's single-process and threaded searches, and ``fraglife explore --threads``, run where
    SEARCH_MALLOC held when the process started; this process's environment is left as it was, the child's
    exception is raised here, and no process is left behind."""
    import os

    import psutil

    children = {c.pid for c in psutil.Process().children(recursive=True)}
    before = {k: os.environ.get(k) for k in D.SEARCH_MALLOC}
    assert [D.in_search_process(os.getenv, k) for k in D.SEARCH_MALLOC] == list(D.SEARCH_MALLOC.values())
    assert {k: os.environ.get(k) for k in D.SEARCH_MALLOC} == before
    with pytest.raises(ValueError, match="not allowed"):  # the child's exception, raised here
        D.in_search_process(D.explore, X.Bounds(ops=1), X.Scenario(kinds=(X.USER,)), chunk=0)
    assert {c.pid for c in psutil.Process().children(recursive=True)} <= children  # none left behind


def test_the_bench_pairs_each_run_with_the_single_process_just_before_it():
    """by_turn: turn i's run's states per second over turn i's single process's; a turn where either did not
    complete is left out, and none leaves no median."""
    single = [{"states_per_s": 2.0}, {"states_per_s": 1.5}, {"states_per_s": 2.0}, {"completed": False}]
    rows = [{"states_per_s": 3.0}, {"completed": False}, {"states_per_s": 2.8}, {"states_per_s": 4.0}]
    out = D.by_turn(single, rows)
    assert out["ratios"] == [1.5, 1.4]
    assert out["median"] == pytest.approx(1.45)
    assert D.by_turn(single[1:2], rows[1:2]) == {"ratios": [], "median": None}
    assert D.by_turn(single[:1], [{"states_per_s": 6.0}])["ratios"] == [3.0]  # two searches, each 1.5x as fast


def test_the_compiled_steps_a_worker_runs_release_the_gil():
    """expand_split, visit and the fingerprints run without the GIL: a worker's threads (its heartbeats, the exchange)
    go on while a partition computes, and threads of one process search side by side."""
    for fn in (E.expand_split, E.visit, E._hashes, E._search):
        assert fn.targetoptions.get("nogil"), fn.py_func.__name__


def test_cli_runs_on_a_local_cluster(capsys):
    code = cli.main(["explore", "--threads", "--workers", "2", "--ops", "2", "--kinds", "user,pipe",
                     "--policy", "page_ref", "--compare"])
    out = capsys.readouterr().out
    assert code == 0 and "fails" in out and "same as the single process" in out


def test_a_worker_running_several_tasks_at_once_gives_the_single_process_search():
    """Workers of several threads (``fraglife explore --threads``, or any cluster's): a partition's expansions and
    adds of overlapping rounds would run at once on its worker and write its visited set together. They take
    turns, and the search finds what the single process does."""
    sc = X.Scenario(kinds=(X.USER, X.PIPE), policy=POLICIES["owner_skb"])
    b = X.Bounds(ops=3, cpus=2, skbs=3, frags=2)
    one = E.explore(b, sc)
    lc = distributed.LocalCluster(n_workers=1, threads_per_worker=4, processes=False, dashboard_address=None,
                                  scheduler_kwargs={"dashboard": False})
    c = distributed.Client(lc)
    try:
        for partitions in (1, 2):
            spread = D.explore(b, sc, client=c, partitions=partitions, chunk=32)
            assert (spread.result.states, spread.result.verdict) == (one.states, one.verdict), partitions
    finally:
        c.close()
        lc.close()


def test_a_search_on_threads_spreads_over_single_threaded_workers():
    """``processes=False`` (``fraglife explore --threads``): one single-threaded worker per partition in this process,
    not the sweeps' one worker of several threads, which would hold every partition."""
    sc = X.Scenario(kinds=(X.USER, X.PIPE), policy=POLICIES["owner_skb"])
    b = X.Bounds(ops=3, cpus=2, skbs=3, frags=2)
    spread = D.explore(b, sc, workers=2, processes=False)
    assert "2 in-process workers x 1 thread" in spread.cluster
    assert len({p["worker"] for p in spread.partitions}) == 2
    assert spread.result.states == E.explore(b, sc).states


def test_the_bench_counts_the_cpu_time_of_every_process_of_a_run():
    """_cpu_row: each process's CPU time over a run, their sum, and ``busy``, that sum over the run's wall time on its
    cores; by_turn takes the CPU seconds' ratio as it takes the speed's."""
    before = {"client": (1.0, 0.5), "worker 1": (2.0, 0.0), "worker 2": (3.0, 1.0)}
    after = {"client": (1.5, 0.5), "worker 1": (5.0, 1.0), "worker 2": (6.5, 1.5)}
    row = D._cpu_row(before, after, wall=4.0, workers=2)
    assert row["cpu"]["by_process"]["worker 1"] == {"user": 3.0, "system": 1.0, "seconds": 4.0}
    assert (row["cpu"]["user"], row["cpu"]["system"], row["cpu_seconds"]) == (7.0, 1.5, 8.5)
    assert row["busy"] == pytest.approx(8.5 / 8.0)
    assert D._cpu_row({"process": (0, 0)}, {"process": (1, 0)}, wall=0.0, workers=1)["busy"] is None
    assert D.by_turn([{"cpu_seconds": 2.0}], [{"cpu_seconds": 3.0}], "cpu_seconds")["ratios"] == [1.5]


def test_cpu_seconds_are_the_process_time_of_every_thread():
    """cpu_seconds(): what this process's threads computed, as the kernel counts it (time.process_time)."""
    import threading
    import time

    def spin(s: float) -> None:
        t0 = time.thread_time()
        while time.thread_time() - t0 < s:
            np.sort(np.random.default_rng(0).random(10_000))

    u0, s0, p0 = *D.cpu_seconds(), time.process_time()
    t = threading.Thread(target=spin, args=(0.2,))
    t.start()
    spin(0.2)
    t.join()
    u1, s1, p1 = *D.cpu_seconds(), time.process_time()
    assert (u1 - u0) + (s1 - s0) >= 0.4
    assert (u1 - u0) + (s1 - s0) == pytest.approx(p1 - p0, abs=0.05)


def test_a_bench_run_on_worker_processes_counts_the_client_and_each_worker():
    """_spread_run on 2 worker processes (in a process of its own, as the bench's threads run: a process cluster
    leaves its resource tracker behind): the answers, and CPU time for the client's process and for each worker,
    every one of which computed."""
    sc = X.Scenario(kinds=(X.USER, X.PIPE), policy=POLICIES["owner_skb"])
    b = X.Bounds(ops=3, cpus=2, skbs=3, frags=2)
    row = D.in_search_process(D._spread_run, b, sc, 2)
    one = E.explore(b, sc)
    assert (row["states"], row["verdict"]) == (one.states, one.verdict)
    each = row["cpu"]["by_process"]
    assert sorted(each) == ["client", "worker 1", "worker 2"]
    assert all(v["seconds"] > 0 for v in each.values())
    assert row["cpu_seconds"] == pytest.approx(sum(v["seconds"] for v in each.values()))

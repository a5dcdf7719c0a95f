"""The exhaustive explorer against its twin, its symmetry reduction, its verdicts and its walks."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from fraglife.model import explorer as E
from fraglife.model import explorer_story as W
from fraglife.model import explorer_twin as X
from fraglife.model.policies import POLICIES

SMALL = X.Bounds(ops=2, cpus=2, skbs=2, frags=2)


def _same(bounds, scenario, symmetry=True):
    fast = E.explore(bounds, scenario, symmetry=symmetry, keep_states=True)
    slow = E.explore(bounds, scenario, impl="twin", symmetry=symmetry, keep_states=True)
    for field in ("states", "edges", "terminals", "max_depth", "complete", "fallbacks"):
        assert getattr(fast, field) == getattr(slow, field), field
    assert fast.found == slow.found  # the same shortest traces, label by label and state by state
    assert [tuple(int(x) for x in row) for row in fast.array] == slow.vectors  # the same states, in order
    return fast


@st.composite
def scenarios(draw):
    kinds = tuple(draw(st.lists(st.integers(0, len(X.SCENARIO_KINDS) - 1), min_size=1, max_size=2)))
    return X.Scenario(kinds=kinds, span=draw(st.booleans()), policy=POLICIES[draw(st.sampled_from(sorted(POLICIES)))],
                      rules=draw(st.sampled_from([X.ALL_RULES, *(X.ALL_RULES & ~r for r in X.RULES.values())])),
                      slots=draw(st.sampled_from([0, 0, 1, 2])), fallback=draw(st.sampled_from(X.FALLBACKS)),
                      devmem_tx=draw(st.sampled_from(X.DEVMEM_TX)))


@st.composite
def searches(draw):
    bounds = X.Bounds(ops=draw(st.integers(1, 2)), cpus=draw(st.integers(1, 3)), skbs=draw(st.integers(1, 3)),
                      frags=draw(st.integers(1, 2)), copies=draw(st.integers(0, 1)), outside=draw(st.integers(0, 2)))
    return bounds, draw(scenarios()), draw(st.booleans())


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(case=searches())
def test_explorer_and_twin_visit_the_same_states(case):
    bounds, scenario, symmetry = case
    _same(bounds, scenario, symmetry)


# ---- one operation at a time: each compiled handler against the twin's method of the same name ----------------
#: what an operation needs done first (a walk leans towards these after the operation itself)
NEEDS = {X.DROP: (X.EXPAND, X.CLONE), X.EXPAND: (X.CLONE,), X.COALESCE: (X.ATTACH_NEW,), X.COPYFB: (X.ATTACH_NEW,),
         X.SHIFT: (X.ATTACH_NEW, X.ATTACH), X.TRIM: (X.ATTACH, X.ATTACH_NEW), X.FRAG_LIST: (X.ATTACH_NEW,),
         X.SPLICE: (X.ATTACH_NEW,), X.ZC_RECEIVE: (X.ATTACH_NEW,), X.PIPE_RELEASE: (X.SPLICE, X.ATTACH_NEW),
         X.MUNMAP: (X.ZC_RECEIVE, X.ATTACH_NEW), X.UNBIND_W: (X.PUT, X.HOLDER, X.FREE),
         X.ORPHAN: (X.CLONE, X.ATTACH_NEW)}


@st.composite
def walks(draw, op):
    """A scenario and the states of a random walk through it (in the twin), leaning towards steps of ``op``, then
    of what it needs done first, then of any start (each 3 times in 4 when there is one)."""
    bounds = X.Bounds(ops=draw(st.integers(3, 8)), cpus=draw(st.integers(1, 3)), skbs=draw(st.integers(2, 4)),
                      frags=draw(st.integers(1, 3)), copies=draw(st.sampled_from([1, 0])),
                      outside=draw(st.sampled_from([1, 2, 0])))
    _b, scenario, symmetry = draw(searches())
    ex = X.Explorer(bounds, scenario, symmetry=symmetry)
    v = ex.encode(ex.start())
    states = [v]
    for _ in range(draw(st.integers(8, 40))):
        succ = [(lab, s) for lab, s, bad in ex.successors(v) if not bad]
        if not succ:
            break
        for lean in ([x for x in succ if x[0][0] == op], [x for x in succ if x[0][0] in NEEDS.get(op, ())],
                     [x for x in succ if x[0][0] in X.BUDGETED], succ):
            if lean and (lean is succ or draw(st.integers(0, 3)) > 0):
                pool = lean
                break
        v = ex.encode(pool[draw(st.integers(0, len(pool) - 1))][1])
        states.append(v)
    return bounds, scenario, symmetry, states


def _same_steps(ex, bounds, scenario, symmetry, v, op) -> int:
    """The compiled handler and the twin's method take the same steps from v: labels, canonical successors and
    violations, and the owner array's fallbacks. Returns how many."""
    before = ex.fallbacks
    twin = ex.steps(v, op)
    fast, fallbacks = E.steps(bounds, scenario, v, op, symmetry=symmetry, fallbacks=True)
    assert fast == twin, (X.OP_NAMES[op], v)
    assert fallbacks == ex.fallbacks - before, (X.OP_NAMES[op], v)
    return len(twin)


@pytest.mark.parametrize("op", range(len(X.OP_NAMES)), ids=X.OP_NAMES)
@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_each_operation_steps_as_its_twin(op, data):
    bounds, scenario, symmetry, states = data.draw(walks(op))
    ex = X.Explorer(bounds, scenario, symmetry=symmetry)
    taken = 0
    for v in states:
        if op in ex.possible(ex.decode(v)):
            taken += _same_steps(ex, bounds, scenario, symmetry, v, op)
    event(f"{X.OP_NAMES[op]} took steps" if taken else f"{X.OP_NAMES[op]} took none")


#: scenarios that together give every operation steps somewhere: (policy, kinds, extra scenario fields, bounds)
EVERY_OP = {
    "page_ref": ("page_ref", (X.USER, X.PIPE), {}),
    "owner_skb": ("owner_skb", (X.USER, X.PIPE), {}),
    "owner_clone": ("owner_clone", (X.USER, X.PIPE), {}),
    "owner_binding": ("owner_binding", (X.USER, X.PIPE), {}),
    "owner_array": ("owner_skb", (X.USER, X.PIPE), {"slots": 1, "fallback": "copy"}),
    "devmem_prototype": ("page_ref", (X.DEVMEM, X.POOL), {"devmem_tx": "socket+orphan"}),
}
#: the operations a scenario cannot take: the binding has no copy fallback; only the prototype orphans; only devmem
#: unbinds through the workqueue; user memory and pipe pages under today's ubuf_info: the receive paths take the pipe
IDLE = {"page_ref": {X.ORPHAN, X.UNBIND_W}, "owner_skb": {X.ORPHAN, X.UNBIND_W}, "owner_clone": {X.ORPHAN, X.UNBIND_W},
        "owner_binding": {X.COPYFB, X.ORPHAN, X.UNBIND_W}, "owner_array": {X.ORPHAN, X.UNBIND_W},
        "devmem_prototype": {X.COPYFB}}


@pytest.mark.parametrize("case", sorted(EVERY_OP))
def test_every_operation_steps_somewhere_and_as_its_twin(case):
    """On every 5th state of a whole search, each operation (where possible) by the handler and by the twin;
    each one takes steps somewhere, so none is compared only where it has nothing to do."""
    policy, kinds, extra = EVERY_OP[case]
    b, sc = X.Bounds(ops=3, cpus=2, skbs=2, frags=2), X.Scenario(kinds=kinds, policy=POLICIES[policy], **extra)
    ex = X.Explorer(b, sc)
    taken = [0] * len(X.OP_NAMES)
    for v in E.explore(b, sc, impl="twin", keep_states=True).vectors[::5]:
        for op in ex.possible(ex.decode(v)):
            taken[op] += _same_steps(ex, b, sc, True, v, op)
    assert [op for op, n in enumerate(taken) if not n] == sorted(IDLE[case]), dict(zip(X.OP_NAMES, taken))


def test_the_queue_reuses_its_chunks_and_finds_what_keeping_every_row_finds():
    """Across many of the queue's chunks (explorer.QUEUE_CHUNK rows): keeping every row, the states come in the
    twin's order; dropping the expanded ones (their chunks take later rows), the search finds the same, and its
    queue held fewer rows at once than it found states."""
    b = X.Bounds(ops=3, cpus=2, skbs=3, frags=2)
    sc = X.Scenario(kinds=(X.USER, X.PIPE), policy=POLICIES["page_ref"])
    kept = _same(b, sc)
    assert kept.states > 4 * E.QUEUE_CHUNK
    dropped = E.explore(b, sc)
    for field in ("states", "edges", "terminals", "max_depth", "complete", "fallbacks"):
        assert getattr(dropped, field) == getattr(kept, field), field
    assert dropped.found == kept.found
    assert dropped.queue_peak == kept.queue_peak < kept.states


@pytest.mark.parametrize("case", sorted(EVERY_OP))
def test_state_counts_agree_at_three_operations(case):
    """At bounds where every operation kind appears: same counts, verdicts, traces, states in order."""
    policy, kinds, extra = EVERY_OP[case]
    res = _same(X.Bounds(ops=3, cpus=2, skbs=2, frags=2), X.Scenario(kinds=kinds, policy=POLICIES[policy], **extra))
    assert res.complete and res.states > 1000


def test_symmetry_merges_states_and_keeps_the_labelled_count():
    """Twin buffers relabelled to one form: fewer states, the same verdict, and the same labelled states."""
    b, sc = SMALL, X.Scenario(kinds=(X.PIPE, X.PIPE), policy=POLICIES["owner_skb"])
    with_sym = E.explore(b, sc, orbits=True)
    without = E.explore(b, sc, symmetry=False, orbits=True)
    assert with_sym.states < without.states and with_sym.verdict == without.verdict
    assert with_sym.labelled == pytest.approx(without.labelled)
    twin = E.explore(b, sc, impl="twin", orbits=True)
    assert twin.labelled == pytest.approx(with_sym.labelled)
    assert with_sym.labelled > 8 * with_sym.states  # skb ids, slots and CPUs never enter a state


def test_one_page_ref_for_a_multi_folio_frag_fails_in_four_steps():
    b = X.Bounds(ops=1, cpus=1, skbs=1, frags=1)
    for kind in (X.USER, X.PIPE):
        res = E.explore(b, X.Scenario(kinds=(kind,), policy=POLICIES["page_ref"]))
        name, steps = res.shortest()
        assert name == "use_after_free" and len(steps) == 4
        rows = W.walk(b, X.Scenario(kinds=(kind,), policy=POLICIES["page_ref"]), [lab for lab, _ in steps])
        assert [r["step"] for r in rows] == [1, 2, 3, 4]
        assert "two folios" in rows[0]["operation"] and rows[-1]["verdict"].startswith("use-after-free: A1")
        assert not any(r["verdict"] for r in rows[:-1])
    # today's frags stay in a folio: nothing to break
    assert E.explore(b, X.Scenario(kinds=(X.PIPE,), span=False, policy=POLICIES["page_ref"])).verdict == "passes"


def test_the_owner_passes_and_each_rule_is_needed():
    b = X.Bounds(ops=3, cpus=1, skbs=2, frags=2)
    sc = dict(kinds=(X.USER, X.PIPE), policy=POLICIES["owner_skb"])
    assert E.explore(b, X.Scenario(**sc)).verdict == "passes"
    for name, bit in X.RULES.items():
        res = E.explore(b, X.Scenario(**sc, rules=X.ALL_RULES & ~bit))
        assert res.verdict == "fails", name
    leak = E.explore(b, X.Scenario(**sc, rules=X.ALL_RULES & ~X.R_COPY))
    assert set(leak.found) == {"leak"}
    rows = W.walk(b, X.Scenario(**sc, rules=X.ALL_RULES & ~X.R_COPY), [lab for lab, _ in leak.shortest()[1]])
    assert rows[-1]["verdict"].startswith("leak")


def test_owner_walk_runs_to_a_clean_end():
    b = X.Bounds(ops=1, cpus=1, skbs=1, frags=1)
    sc = X.Scenario(kinds=(X.USER,), policy=POLICIES["owner_skb"])
    rows = W.walk(b, sc, [(X.ATTACH_NEW, 0, X.SPAN_SHAPE, 0), (X.HOLDER, 0, 0, 0), "put"], finish=True)
    assert not any(r["verdict"] for r in rows)
    assert rows[-1]["pages freed"] == "A0 A1" and rows[-1]["refcounts after"] == "-"
    assert any("raises the completion" in r["operation"] for r in rows)
    with pytest.raises(ValueError, match="is not possible here"):
        W.walk(b, sc, [(X.HOLDER, 0, 0, 0), (X.ATTACH_NEW, 0, 0, 0)])


def test_two_cpus_interleave_what_one_cannot():
    """More CPUs, more states: puts of one operation interleave with another's steps."""
    sc = X.Scenario(kinds=(X.USER, X.PIPE), policy=POLICIES["owner_skb"])
    one, two = (E.explore(X.Bounds(ops=2, cpus=c, skbs=2, frags=2), sc).states for c in (1, 2))
    assert two > one


def test_depth_and_state_caps_make_a_search_incomplete():
    sc = X.Scenario(kinds=(X.PIPE,), policy=POLICIES["owner_skb"])
    assert E.explore(X.Bounds(ops=2), sc).complete
    shallow = E.explore(X.Bounds(ops=2, depth=2), sc)
    assert not shallow.complete and shallow.max_depth == 2
    assert shallow.states == E.explore(X.Bounds(ops=2, depth=2), sc, impl="twin").states
    capped = E.explore(X.Bounds(ops=2, max_states=50), sc)
    assert not capped.complete and capped.states == 50


@pytest.mark.parametrize("kwargs, message", [
    ({"ops": 0}, "bound ops = 0 is not allowed: expected an integer in [1, 12]"),
    ({"cpus": 4}, "bound cpus = 4 is not allowed: expected an integer in [1, 3]"),
    ({"skbs": 5}, "bound skbs = 5 is not allowed: expected an integer in [1, 4]"),
    ({"frags": 1.5}, "bound frags = 1.5 is not allowed: expected an integer in [1, 3]"),
    ({"copies": 2}, "bound copies = 2 is not allowed: expected an integer in [0, 1]"),
    ({"outside": 3}, "bound outside = 3 is not allowed: expected an integer in [0, 2]"),
])
def test_bad_bounds_give_one_line(kwargs, message):
    with pytest.raises(ValueError) as e:
        X.Bounds(**kwargs)
    assert str(e.value) == message


def test_bad_scenarios_and_impls_are_refused():
    with pytest.raises(ValueError, match="kinds = \\(\\) is not allowed"):
        X.Scenario(kinds=())
    with pytest.raises(ValueError, match="kinds = \\(0, 1, 2\\) is not allowed"):
        X.Scenario(kinds=(0, 1, 2))
    with pytest.raises(ValueError, match="rules = 1024 is not allowed: expected a mask in \\[0, 1023\\]"):
        X.Scenario(rules=1024)
    with pytest.raises(ValueError, match="slots = 9 is not allowed: expected an integer in \\[0, 8\\]"):
        X.Scenario(slots=9)
    with pytest.raises(ValueError, match="fallback = 'drop' is not allowed: expected one of refuse, copy"):
        X.Scenario(fallback="drop")
    with pytest.raises(ValueError, match="devmem_tx = 'sk' is not allowed: expected one of frag, socket, "
                                         "socket\\+orphan"):
        X.Scenario(devmem_tx="sk")
    with pytest.raises(ValueError, match="impl = 'c' is not allowed"):
        E.explore(SMALL, X.Scenario(), impl="c")


# ---- the fingerprint: XXH64 ------------------------------------------------------------------------------------
def _xxh64(data: bytes, seed: int = 0) -> int:
    """XXH64 as its specification states it (github.com/Cyan4973/xxHash, doc/xxhash_spec.md), one step a line."""
    P1, P2, P3, P4, P5 = (0x9E3779B185EBCA87, 0xC2B2AE3D27D4EB4F, 0x165667B19E3779F9, 0x85EBCA77C2B2AE63,
                          0x27D4EB2F165667C5)
    mask = (1 << 64) - 1

    def rotl(x, r):
        return ((x << r) | (x >> (64 - r))) & mask

    def rnd(acc, lane):
        return rotl((acc + lane * P2) & mask, 31) * P1 & mask

    def u64(i):
        return int.from_bytes(data[i:i + 8], "little")

    n, i = len(data), 0
    if n >= 32:
        acc = [(seed + P1 + P2) & mask, (seed + P2) & mask, seed, (seed - P1) & mask]
        while i + 32 <= n:
            acc = [rnd(acc[j], u64(i + 8 * j)) for j in range(4)]
            i += 32
        h = (rotl(acc[0], 1) + rotl(acc[1], 7) + rotl(acc[2], 12) + rotl(acc[3], 18)) & mask
        for a in acc:
            h = ((h ^ rnd(0, a)) * P1 + P4) & mask
    else:
        h = (seed + P5) & mask
    h = (h + n) & mask
    while i + 8 <= n:
        h = (rotl(h ^ rnd(0, u64(i)), 27) * P1 + P4) & mask
        i += 8
    if i + 4 <= n:
        h = (rotl(h ^ (int.from_bytes(data[i:i + 4], "little") * P1 & mask), 23) * P2 + P3) & mask
        i += 4
    while i < n:
        h = rotl(h ^ (data[i] * P5 & mask), 11) * P1 & mask
        i += 1
    h ^= h >> 33
    h = h * P2 & mask
    h ^= h >> 29
    h = h * P3 & mask
    return h ^ (h >> 32)


def test_the_spec_transcription_gives_xxh64s_published_values():
    # the empty input's hash, as xxHash's own tests and its specification give it
    assert _xxh64(b"") == 0xEF46DB3751D8E999


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 140).flatmap(lambda w: st.lists(st.lists(st.integers(-2 ** 15, 2 ** 15 - 1), min_size=w,
                                                               max_size=w), min_size=1, max_size=4)))
def test_a_states_fingerprint_is_xxh64_of_its_int16_fields(rows):
    """The compiled fingerprint (every width: the four-lane stripes and each tail) is XXH64 of the row's bytes,
    0 taken to 1 (the tables' empty slot)."""
    import numpy as np

    arr = np.array(rows, dtype=np.int16).reshape(len(rows), len(rows[0]))
    got = [int(h) for h in E.state_hashes(arr)]
    assert got == [_xxh64(r.astype("<i2").tobytes()) or 1 for r in arr]

"""The cost model: unit costs with sources, ledger pricing by cause, core share.

Every number here is computed by hand from the synthetic unit costs below.
"""

from __future__ import annotations

import ast
import dataclasses
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from fraglife.model import costs

WHEN = "2026-01-01T00:00:00+00:00"


def _curve(points: dict) -> list[dict]:
    return [{"threads": k, "ns_per_op": {"median": v}} for k, v in points.items()]


#: the atomics probe's data shape, with round numbers
DATA = {
    "kernel": "6.18.0",
    "local_atomic_ns": 5.0,
    "local_atomic": {"ns": {"median": 5.0, "n": 15}, "cpu": 0},
    "line_transfer_ns": 40.0,
    "line_transfer": {"by_class": {"same_llc": {"ns": 40.0, "pairs": 1, "over_time": {
        "median": 40.0, "q1": 30.0, "q3": 100.0, "min": 25.0, "max": 120.0, "n": 4}}}},
    "pairs": [{"cpus": [0, 1], "class": "same_llc", "half_round_trip_ns": {"median": 40.0}}],
    "contended": _curve({1: 5.0, 2: 15.0, 4: 55.0}),
    "private": _curve({1: 5.0, 2: 5.0, 4: 6.0}),
    "paced": {"gap_steps": 16, "gap_ns": 11.0, "contended": _curve({1: 16.0, 2: 40.0}),
              "private": _curve({1: 16.0, 2: 16.0})},
    "topology": {},
}


@pytest.fixture
def units() -> costs.UnitCosts:
    return costs.UnitCosts.from_atomics(DATA, "recorded", WHEN)


def _by_cause(rows) -> dict:
    return {r["cause"]: r for r in rows}


# -- unit costs ------------------------------------------------------------------------------

def test_units_from_the_probe_data_carry_their_source(units):
    assert units["local_atomic_ns"] == 5.0 and units["line_transfer_ns"] == 40.0
    for name in ("local_atomic_ns", "line_transfer_ns"):
        assert units.source(name) == "measured here (recorded)"
        assert WHEN in units.unit(name).detail
    assert set(units.curves) == {"contended", "private", "paced_contended", "paced_private"}
    assert {r["name"] for r in units.rows()} == {"local_atomic_ns", "line_transfer_ns"}
    assert len(units.curve_rows()) == 3 + 3 + 2 + 2


def test_units_from_a_probe_result_or_its_json():
    class Result:  # what fraglife.probes.run returns, as far as the model needs
        data, source, recorded_at, reason = DATA, "live", WHEN, None

    assert costs.UnitCosts.from_atomics(Result()).source("local_atomic_ns") == "measured here (live)"
    j = {"probe": "atomics", "source": "recorded", "recorded_at": WHEN, "reason": "asked", "partial": {},
         "provenance": {}, **DATA}
    assert costs.UnitCosts.from_atomics(j).source("line_transfer_ns") == "measured here (recorded)"
    with pytest.raises(ValueError, match="source = None"):
        costs.UnitCosts.from_atomics(DATA)
    with pytest.raises(ValueError, match="result = int"):
        costs.UnitCosts.from_atomics(3)


def test_overrides_replace_values_and_say_so(units):
    u = units.override(local_atomic_ns=6, gup_pin_ns=62.0)
    assert u["local_atomic_ns"] == 6.0 and u.source("local_atomic_ns") == costs.OVERRIDE
    assert u["gup_pin_ns"] == 62.0 and u.unit("gup_pin_ns").unit == "ns/op"
    assert units["local_atomic_ns"] == 5.0  # the original is untouched
    u = units.override(contended={1: 5, 2: 25})
    assert u.curve("contended").source == costs.OVERRIDE and u.curve("contended").beyond == "serialised"
    s = u.shared_line(2)
    assert s.value == 5 + (25 - 5)
    assert costs.OVERRIDE in s.source and "measured here (recorded)" in s.source
    via_from = costs.UnitCosts.from_atomics(DATA, "recorded", WHEN, overrides={"line_transfer_ns": 100})
    assert via_from["line_transfer_ns"] == 100 and via_from.source("line_transfer_ns") == costs.OVERRIDE
    for bad, match in (({"local_atomic_ns": -1}, "local_atomic_ns = -1"),
                       ({"local_atomic_ns": float("nan")}, "local_atomic_ns = nan"),
                       ({"local_atomic_ns": True}, "local_atomic_ns = True"),
                       ({"local_atomic_ns": "fast"}, "local_atomic_ns = 'fast'"),
                       ({"speed": 3}, "speed = 3 is not allowed: known unit costs"),
                       ({"contended": 3}, "contended = 3 is not allowed: a curve takes a mapping"),
                       ({"contended": {2: 5, 0: 1}}, "contended threads = 0"),
                       ({"wobble": {1: 2}}, "wobble = .* is not allowed: curves are")):
        with pytest.raises(ValueError, match=match):
            units.override(**bad)


def test_later_chapters_add_units(units):
    pin = costs.Unit("gup_pin_ns", 62.0, "ns/page", costs.CITED, "commit a03db236aeba, gup_test")
    u = units.with_units(pin)
    rows = costs.price([("gup_pin", 256, "gup_pin_ns"), ("local_atomic", 10, "local_atomic_ns")], u)
    assert rows[0] == {"cause": "gup_pin", "count_per_mib": 256.0, "unit": "gup_pin_ns", "unit_ns": 62.0,
                       "ns_per_mib": 256 * 62.0, "source": costs.CITED, "detail": "commit a03db236aeba, gup_test"}
    assert costs.total(rows) == 256 * 62 + 10 * 5
    other = costs.UnitCosts({"memcpy_ns_per_byte": costs.Unit("memcpy_ns_per_byte", 0.05, "ns/B", "measured here (live)")})
    merged = units.merged(other)
    assert merged["memcpy_ns_per_byte"] == 0.05 and merged["local_atomic_ns"] == 5.0
    with pytest.raises(ValueError, match="unit cost 'nope' is not known"):
        costs.price([("x", 1, "nope")], units)
    with pytest.raises(ValueError, match="count of x per MiB = -1"):
        costs.price([("x", -1, "local_atomic_ns")], units)


# -- line transfers: measured and cited -----------------------------------------------------------

def test_transfer_table_labels_measured_and_cited(units):
    table = units.transfer_table()
    measured = [r for r in table if r["label"].startswith("measured here")]
    cited = [r for r in table if r["label"] == costs.CITED]
    # the median, then the fastest and slowest rounds over the run (a hypervisor moving the CPUs)
    assert [(r["class"], r["ns"]) for r in measured] == [("same_llc", 40.0), ("same_llc", 25.0), ("same_llc", 120.0)]
    assert measured[0]["machine"] == "this machine" and "slowest of 4 rounds" in measured[2]["machine"]
    assert len(cited) == len(costs.CITED_TRANSFERS)
    assert {r["class"] for r in cited} == {"smt_sibling", "same_llc", "other_llc", "other_socket"}
    assert all("nviennot/core-to-core-latency" in r["source"] for r in cited)
    assert "10.1109/PACT.2015.24" in costs.SCHWEIZER_2015
    # the figures kernel-facts.md quotes
    got = {(r["machine"].split(" (")[0], r["class"]): r["ns"] for r in cited}
    assert got[("AMD EPYC 7R13", "same_llc")] == 23 and got[("AMD EPYC 7R13", "other_socket")] == 197
    assert got[("AMD Ryzen 9 5950X", "other_llc")] == 85
    assert got[("Intel Xeon Platinum 8375C", "same_llc")] == 51
    assert got[("Intel Xeon Platinum 8375C", "other_socket")] == 108


def test_with_transfer_uses_measured_then_cited(units):
    assert units.with_transfer("same_llc")["line_transfer_ns"] == 40.0
    assert units.with_transfer("same_llc").source("line_transfer_ns") == "measured here (recorded)"
    u = units.with_transfer("other_socket", "EPYC 7R13")
    assert u["line_transfer_ns"] == 197.0 and u.source("line_transfer_ns") == costs.CITED
    assert "nviennot" in u.unit("line_transfer_ns").detail
    assert units.with_transfer("same_llc", "5950X")["line_transfer_ns"] == 17.0
    with pytest.raises(ValueError, match="machine = 'Xeon' is not allowed: measured here: same_llc"):
        units.with_transfer("other_llc", "Xeon")
    with pytest.raises(ValueError, match="transfer_class = 'other_socket' is not allowed.*with_transfer"):
        costs.UnitCosts.from_atomics(DATA, "recorded", transfer_class="other_socket")
    assert costs.UnitCosts.from_atomics(DATA, "live", transfer_class="same_llc")["line_transfer_ns"] == 40.0


# -- the contention curve -----------------------------------------------------------------------

def test_shared_line_interpolates_in_writers(units):
    assert units.shared_line(1).value == 5.0                        # 5 + (5 - 5)
    assert units.shared_line(2).value == 15.0                       # 5 + (15 - 5)
    assert units.shared_line(3).value == 5 + (35.0 - 5.5)           # midway between 2 and 4 threads
    assert "interpolated at 3 threads" in units.shared_line(3).detail
    assert units.shared_line(2, pacing="paced").value == 5 + (40 - 16)
    with pytest.raises(ValueError, match="writers = 8 is not allowed: curve contended was measured for 1..4"):
        units.shared_line(8)
    # past the measured writers: a cited figure, never the curve extended (it used to be 5 + (55 * 8 / 4 - 6))
    big = units.shared_line(8, extrapolate=True)
    assert big.value == 23.0 and big.source == costs.CITED and "same_llc" in big.detail
    with pytest.raises(ValueError, match="was measured for 1..4 threads"):
        units.curve("contended").at(8)
    for bad, match in ((0.5, "writers = 0.5 is not allowed: curve contended starts at 1"),
                       (0, "writers = 0 is not allowed"), (float("inf"), "writers = inf")):
        with pytest.raises(ValueError, match=match):
            units.shared_line(bad)
    with pytest.raises(ValueError, match="pacing = 'slow' is not allowed"):
        units.shared_line(2, pacing="slow")
    with pytest.raises(ValueError, match="must increase"):
        costs.Curve("c", (2, 1), (1, 2), "x")


def test_a_shared_line_is_measured_or_cited_never_extrapolated(units):
    """Rule 9: over the writers measured, the contention curves; past them, one cited line transfer of the class the
    writers span on a cited machine (nviennot/core-to-core-latency), labelled cited."""
    assert costs.shared_line_cost(units, 2) == units.shared_line(2)
    assert costs.shared_line_cost(units, 2, "paced").source == "measured here (recorded)"
    # the paced curves stop at 2 writers: 3 is cited there, while the tight ones go to 4
    assert costs.shared_line_cost(units, 3, "paced").source == costs.CITED
    assert costs.shared_line_cost(units, 3).source == "measured here (recorded)"
    epyc = {k: costs.shared_line_cost(units, k) for k in (8, 16, 48, 64)}
    assert {k: u.value for k, u in epyc.items()} == {8: 23.0, 16: 107.0, 48: 107.0, 64: 197.0}
    assert all(u.source == costs.CITED and "nviennot" in u.detail and "Schweizer" in u.detail for u in epyc.values())
    assert costs.shared_line_cost(units, 64, machine="Xeon").value == 108.0
    assert costs.shared_line_cost(units, 16, machine="5950X").value == 85.0
    with pytest.raises(ValueError, match="it has 16 cores"):
        costs.shared_line_cost(units, 17, machine="5950X")
    with pytest.raises(ValueError, match="machine = 'M1'"):
        costs.shared_line_cost(units, 8, machine="M1")
    # every cited layout names a class the cited transfers have for that machine
    for m, layout in costs.CITED_LAYOUTS.items():
        for _, cls in layout:
            assert any(r["machine"] == m and r["class"] == cls for r in costs.CITED_TRANSFERS), (m, cls)


# -- pricing a ledger -----------------------------------------------------------------------------

def test_price_ledger_by_hand(units):
    led = {"atomics": 1000, "bounces": 200, "events": 5}
    rows = _by_cause(costs.price_ledger(led, units, 2 * costs.MIB))
    assert rows["local_atomic"]["count_per_mib"] == 400 and rows["local_atomic"]["ns_per_mib"] == 2000
    assert rows["line_transfer"]["count_per_mib"] == 100 and rows["line_transfer"]["ns_per_mib"] == 4000
    assert rows["line_transfer"]["source"] == "measured here (recorded)"
    assert costs.total(rows.values()) == 6000


def test_price_ledger_with_a_shared_line(units):
    led = {"atomics": 1000, "bounces": 200, "ref_atomics": 600, "uarg_atomics": 400}
    rows = _by_cause(costs.price_ledger(led, units, 2 * costs.MIB, shared="ref_atomics", writers=2))
    # ref_atomics' bounces: 200 * 600 / 1000 = 120; per MiB: 300 shared, 60 of the bounces
    assert rows["shared_line"]["count_per_mib"] == 300 and rows["shared_line"]["unit_ns"] == 15
    assert rows["line_transfer"]["count_per_mib"] == 40 and rows["local_atomic"]["count_per_mib"] == 160
    assert costs.total(rows.values()) == 160 * 5 + 40 * 40 + 300 * 15
    assert "proportional" in rows["shared_line"]["detail"] and "2 writer(s)" in rows["shared_line"]["detail"]
    # the ledger knows the shared line's own bounces: exact split
    rows = _by_cause(costs.price_ledger({**led, "ref_bounces": 150}, units, 2 * costs.MIB,
                                        shared="ref_atomics", writers=2))
    assert (rows["local_atomic"]["count_per_mib"], rows["line_transfer"]["count_per_mib"]) == (175, 25)
    assert "ref_bounces" in rows["shared_line"]["detail"]


def test_price_ledger_reads_fields_by_name_and_ignores_new_ones(units):
    from fraglife.model import POLICIES, engine, engine_twin, workloads

    nbytes = 1 << 20
    trace = workloads.generate("tcp_send", bytes_sent=nbytes)
    led = engine.replay(trace, "page_ref")
    rows = costs.price_ledger(led, units, nbytes)
    assert costs.total(rows) == pytest.approx(5 * (led.atomics - led.bounces) + 40 * led.bounces)
    assert costs.price_ledger(engine_twin.replay(trace, POLICIES["page_ref"]), units, nbytes) == rows  # the twin too
    d = led.as_dict()
    assert costs.total(costs.price_ledger({**d, "pp_ref_atomics": 7, "ubuf_atomics": 3}, units, nbytes)) == \
        costs.total(rows)

    @dataclasses.dataclass(frozen=True)
    class Newer:  # a ledger with fields this module has never heard of
        atomics: int
        bounces: int
        pp_ref_atomics: int
        label: str = "x"

    rows = costs.price_ledger(Newer(10, 4, 6), units, costs.MIB, shared="pp_ref_atomics")
    assert costs.atomic_fields(Newer(10, 4, 6)) == ["pp_ref_atomics"]
    assert sum(r["count_per_mib"] for r in rows) == 10
    assert "ref_atomics" in costs.atomic_fields(led)


def test_cmpxchg_loops_are_priced_as_measured(units):
    """A compare-and-swap loop (mm_account_pinned_pages() on user->locked_vm, refcount_inc_not_zero()) is not a
    lock xadd: the ledger's cmpxchg_atomics that did not bounce cost cmpxchg_loop_ns; their bounces are line
    transfers like any other; every atomic is priced once."""
    data = {**DATA, "cmpxchg_loop_ns": 6.0, "cmpxchg_loop": {"ns": {"median": 6.0, "n": 5}},
            "cmpxchg_contended": _curve({1: 6.0, 2: 30.0})}
    u = costs.UnitCosts.from_atomics(data, "recorded", WHEN)
    assert u["cmpxchg_loop_ns"] == 6.0 and u.source("cmpxchg_loop_ns") == "measured here (recorded)"
    assert u.curve("cmpxchg_contended").at(2)[0] == 30.0
    led = {"atomics": 1000, "bounces": 200, "cmpxchg_atomics": 100, "cmpxchg_bounces": 20}
    rows = _by_cause(costs.price_ledger(led, u, costs.MIB))
    assert (rows["local_atomic"]["count_per_mib"], rows["line_transfer"]["count_per_mib"],
            rows["cmpxchg_loop"]["count_per_mib"]) == (720, 200, 80)
    assert costs.total(rows.values()) == 720 * 5 + 200 * 40 + 80 * 6
    assert "cmpxchg_loop" not in _by_cause(costs.price_ledger(led, units, costs.MIB))  # not measured: local
    from fraglife.model import engine, workloads

    tr = workloads.generate("tcp_send", bytes_sent=1 << 20, loss_rate=0.0)
    real = engine.replay(tr, "page_ref")
    rows = costs.price_ledger(real, u, 1 << 20)
    assert _by_cause(rows)["cmpxchg_loop"]["count_per_mib"] == real.cmpxchg_atomics - real.cmpxchg_bounces > 0
    assert sum(r["count_per_mib"] for r in rows) == real.atomics


def test_price_ledgers_keys_each_ledger(units):
    rows = costs.price_ledgers({"today": {"atomics": 10, "bounces": 2}, "owner": {"atomics": 2, "bounces": 0}},
                               units, costs.MIB)
    assert [(r["policy"], r["cause"]) for r in rows] == [("today", "local_atomic"), ("today", "line_transfer"),
                                                          ("owner", "local_atomic"), ("owner", "line_transfer")]
    assert costs.total(r for r in rows if r["policy"] == "today") == 8 * 5 + 2 * 40
    assert costs.total(r for r in rows if r["policy"] == "owner") == 2 * 5


def test_price_ledger_rejects_bad_input(units):
    led = {"atomics": 10, "bounces": 2, "ref_atomics": 4}
    for kwargs, match in (({"nbytes": 0}, "nbytes = 0 is not allowed"),
                          ({"nbytes": -5}, "nbytes = -5"),
                          ({"nbytes": 1, "shared": "nope"}, "shared = 'nope' is not allowed.*ref_atomics"),
                          ({"nbytes": 1, "shared": "ref_atomics", "writers": 99}, "writers = 99"),
                          ({"nbytes": 1, "shared": "ref_atomics", "pacing": "x"}, "pacing = 'x'")):
        with pytest.raises(ValueError, match=match):
            costs.price_ledger(led, units, **kwargs)
    with pytest.raises(ValueError, match="bounces = 20 is not allowed: more than atomics = 10"):
        costs.price_ledger({"atomics": 10, "bounces": 20}, units, 1)
    with pytest.raises(ValueError, match="ledger has no 'bounces' count"):
        costs.price_ledger({"atomics": 10}, units, 1)
    with pytest.raises(ValueError, match="counts 40 atomics, more than atomics = 10"):
        costs.price_ledger({**led, "ref_atomics": 40}, units, 1, shared="ref_atomics")
    with pytest.raises(ValueError, match="ledger = str"):
        costs.price_ledger("ledger", units, 1)


@given(atomics=st.integers(0, 10**6), bounce_frac=st.floats(0, 1), shared_frac=st.floats(0, 1),
       writers=st.floats(1, 4), nbytes=st.integers(1, 1 << 30))
def test_pricing_conserves_atomics_and_adds_up(atomics, bounce_frac, shared_frac, writers, nbytes):
    u = costs.UnitCosts.from_atomics(DATA, "recorded")
    bounces, shared = int(atomics * bounce_frac), int(atomics * shared_frac)
    led = {"atomics": atomics, "bounces": bounces, "ref_atomics": shared}
    rows = costs.price_ledger(led, u, nbytes, shared="ref_atomics", writers=writers)
    per_mib = costs.MIB / nbytes
    assert sum(r["count_per_mib"] for r in rows) == pytest.approx(atomics * per_mib)
    assert all(r["count_per_mib"] >= -1e-9 * atomics * per_mib for r in rows)
    r = _by_cause(rows)
    expect = (r["local_atomic"]["count_per_mib"] * 5 + r["line_transfer"]["count_per_mib"] * 40
              + shared * per_mib * u.shared_line(writers).value)
    assert costs.total(rows) == pytest.approx(expect)
    plain = costs.total(costs.price_ledger(led, u, nbytes))
    assert plain == pytest.approx((5 * (atomics - bounces) + 40 * bounces) * per_mib)


# -- share of a core -----------------------------------------------------------------------------

def test_core_share_by_hand():
    # 100 Gbit/s = 12.5e9 B/s = 11920.93 MiB/s; 6000 ns per MiB -> 71.5 ms of CPU per second
    assert costs.core_share(6000, 100) == pytest.approx(6000 * 12.5e9 / costs.MIB / 1e9)
    assert costs.core_share(0, 400) == 0.0
    # one core exactly: as many ns per MiB as a MiB takes on the wire
    wire_ns = costs.MIB * 8 / 100  # ns per MiB at 100 Gbit/s
    assert costs.core_share(wire_ns, 100) == pytest.approx(1.0)
    shares = costs.core_share(np.array([1000.0, 2000.0]), 200)
    assert isinstance(shares, np.ndarray) and shares[1] == pytest.approx(2 * shares[0])
    rows = costs.core_shares(1000)
    assert [r["gbit_per_s"] for r in rows] == [100, 200, 400]
    assert rows[2]["core_share"] == pytest.approx(4 * rows[0]["core_share"])
    for ns, rate, match in ((-1, 100, "ns_per_mib = -1"), (math.nan, 100, "ns_per_mib = nan"),
                            (1, 0, "gbit_per_s = 0"), (1, -100, "gbit_per_s = -100"),
                            (1, math.inf, "gbit_per_s = inf")):
        with pytest.raises(ValueError, match=match):
            costs.core_share(ns, rate)


# -- layering ------------------------------------------------------------------------------------

def test_costs_imports_only_numpy_and_the_standard_library():
    import sys

    tree = ast.parse(Path(costs.__file__).read_text())
    roots = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, "costs.py imports nothing of the package"
            roots.add(node.module.split(".")[0])
    assert roots - {"numpy"} <= sys.stdlib_module_names | {"__future__"}

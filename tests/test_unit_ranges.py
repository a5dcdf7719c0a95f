"""Unit costs keep what they ranged over while measured; anything priced on them has a value and a range."""

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fraglife import probes
from fraglife.model import costs


@pytest.fixture
def units(recorded):
    return costs.UnitCosts.from_atomics(probes.run("atomics"))


def test_the_atomics_units_carry_the_probes_spread(units):
    data = probes.run("atomics").data
    t = data["line_transfer"]["over_time"]
    q = data["local_atomic"]["ns"]
    assert units.range_of("line_transfer_ns") == (t["min"], t["max"])
    assert units.range_of("local_atomic_ns") == (q["q1"], q["q3"])
    for name in ("line_transfer_ns", "local_atomic_ns"):
        lo, hi = units.range_of(name)
        assert lo <= units[name] <= hi
    # the values are the medians, as before: ranges add, they change no number
    assert units["line_transfer_ns"] == data["line_transfer_ns"]
    assert [r for r in units.rows() if set(r) != {"name", "value", "unit", "source", "detail"}] == []


def test_a_units_value_without_a_range_is_one_number(units):
    assert units.range_of("local_atomic_ns") != (units["local_atomic_ns"],) * 2
    u = units.override(line_transfer_ns=50)
    assert u.range_of("line_transfer_ns") == (50.0, 50.0)  # the reader's value has no range
    assert u.range_of("local_atomic_ns") == units.range_of("local_atomic_ns")
    u = units.with_units(costs.Unit("local_atomic_ns", 3.0, "ns/op", costs.CITED))
    assert u.range_of("local_atomic_ns") == (3.0, 3.0)
    assert units.with_transfer("other_socket", "EPYC").range_of("line_transfer_ns")[0] == 197.0
    assert units.merged(costs.UnitCosts({"x_ns": costs.Unit("x_ns", 1.0, "ns", "cited")})).ranges == units.ranges


def test_ends_and_corners(units):
    lo, hi = units.at("low"), units.at("high")
    for n in ("local_atomic_ns", "line_transfer_ns"):
        assert lo[n] == units.range_of(n)[0] and hi[n] == units.range_of(n)[1]
    corners = units.corners()
    assert len(corners) == 4
    assert {(c["local_atomic_ns"], c["line_transfer_ns"]) for c in corners} == set(itertools.product(
        units.range_of("local_atomic_ns"), units.range_of("line_transfer_ns")))
    with pytest.raises(ValueError, match="end = 'middle' is not allowed"):
        units.at("middle")


@pytest.mark.parametrize("low, high", [(30, 40), (-1, 40), (float("nan"), 40), (28, "x")])
def test_a_range_must_hold_its_value(units, low, high):
    with pytest.raises(ValueError, match="not allowed"):
        units.with_range("line_transfer_ns", low, high)


@given(atomics=st.floats(0, 1e4), share=st.floats(0, 1), lt=st.tuples(st.floats(1, 200), st.floats(1, 200)),
       la=st.tuples(st.floats(0.5, 20), st.floats(0.5, 20)))
def test_span_bounds_a_ledger_over_every_value_in_the_ranges(atomics, share, lt, la):
    """A ledger's time is a sum of counts times units: its extremes over the box of unit values lie at corners."""
    lt_lo, lt_hi = sorted(lt)
    la_lo, la_hi = sorted(la)
    u = costs.UnitCosts({"local_atomic_ns": costs.Unit("local_atomic_ns", (la_lo + la_hi) / 2, "ns/op", "x"),
                         "line_transfer_ns": costs.Unit("line_transfer_ns", (lt_lo + lt_hi) / 2, "ns/op", "x")},
                        ranges={"local_atomic_ns": (la_lo, la_hi), "line_transfer_ns": (lt_lo, lt_hi)})
    bounces = atomics * share
    ledger = {"atomics": atomics, "bounces": bounces}

    def price(units):
        return costs.total(costs.price_ledger(ledger, units, costs.MIB))

    value, lo, hi = u.span(price)
    assert lo <= value <= hi
    assert lo == pytest.approx((atomics - bounces) * la_lo + bounces * lt_lo, rel=1e-9, abs=1e-9)
    assert hi == pytest.approx((atomics - bounces) * la_hi + bounces * lt_hi, rel=1e-9, abs=1e-9)
    for f in (0.0, 0.3, 1.0):  # any point inside the box prices within the span
        inside = u.override(local_atomic_ns=la_lo + f * (la_hi - la_lo), line_transfer_ns=lt_hi - f * (lt_hi - lt_lo))
        assert lo - 1e-6 <= price(inside) <= hi + 1e-6


def test_span_of_a_ratio_takes_its_extremes_at_the_corners(units):
    def ratio(u):  # a saving: not monotone in the units together, monotone in each
        return (100 * u["local_atomic_ns"] + 10 * u["line_transfer_ns"]) / (20 * u["local_atomic_ns"] + 50 * u["line_transfer_ns"])

    value, lo, hi = units.span(ratio)
    grid = [ratio(units.override(local_atomic_ns=a, line_transfer_ns=t))
            for a in [units.range_of("local_atomic_ns")[0] + f * (units.range_of("local_atomic_ns")[1]
                                                                  - units.range_of("local_atomic_ns")[0]) for f in (0, .5, 1)]
            for t in [units.range_of("line_transfer_ns")[0] + f * (units.range_of("line_transfer_ns")[1]
                                                                   - units.range_of("line_transfer_ns")[0]) for f in (0, .5, 1)]]
    assert lo == pytest.approx(min(grid)) and hi == pytest.approx(max(grid)) and lo <= value <= hi

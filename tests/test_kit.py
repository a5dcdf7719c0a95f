"""The chapters' shared parts (fraglife.chapters.kit): parameter groups, probes, unit costs, sentences, grids."""

from __future__ import annotations

from functools import cached_property

import pandas as pd
import pytest

from fraglife import chapters
from fraglife.chapters import kit
from fraglife.model import costs
from fraglife.params import Param, ParamError, Params
from fraglife.probes import _core, load_recording


@pytest.fixture
def no_live(monkeypatch):
    """Probes start empty, FRAGLIFE_PROBES unset, and any live measurement fails the test."""
    def refuse(name, quick=False):
        raise AssertionError(f"probe {name} measured live")

    monkeypatch.setattr(_core, "_cache", {})
    monkeypatch.delenv(_core.ENV, raising=False)
    monkeypatch.setattr(_core, "measure_live", refuse)
    yield
    _core._cache.clear()


# ---------------------------------------------------------------- parameter groups
def test_pick_takes_part_of_a_group_in_its_order():
    assert [p.name for p in kit.pick(kit.WORKLOAD_PARAMS, "seed", "mss")] == ["mss", "seed"]
    assert [p.name for p in kit.pick(kit.WORKLOAD_PARAMS, drop=("workload",))] == [
        p.name for p in kit.WORKLOAD_PARAMS[1:]]
    same = kit.pick(kit.SENDER_PARAMS)
    assert same == kit.SENDER_PARAMS and same[0] is kit.SENDER_PARAMS[0]
    seed = kit.pick(kit.SENDER_PARAMS, "seed", seed="same seed, same pages")[0]
    assert seed.help == "same seed, same pages" and (seed.lo, seed.hi, seed.default) == (0, 2**31 - 1, 1)
    with pytest.raises(ValueError, match="'rate'"):
        kit.pick(kit.SENDER_PARAMS, "rate")
    with pytest.raises(ValueError, match="'x'"):
        kit.pick(kit.SENDER_PARAMS, x="help")


def test_the_registry_builds_its_specs_from_the_groups():
    for number in ("03", "04"):
        spec = chapters.get(number).spec
        for p in kit.SENDER_PARAMS:
            assert spec[p.name].default == p.default and (spec[p.name].lo, spec[p.name].hi) == (p.lo, p.hi)
    assert chapters.get("04").spec["seed"].help == "random seed; same seed, same pages mapped"
    for ch in chapters.CHAPTERS:
        if "measurements" in ch.spec:
            assert ch.spec["measurements"] is kit.MEASUREMENTS_PARAM
    with_probes = {ch.number for ch in chapters.CHAPTERS if "measurements" in ch.spec}
    assert with_probes == {"01", "02", "03", "04", "05", "06", "07", "08"}
    assert chapters.WORKLOAD_PARAMS is kit.WORKLOAD_PARAMS  # the registry still names them


# ---------------------------------------------------------------- probes
def test_probe_mode():
    assert kit.probe_mode("recorded") == "recorded"
    assert kit.probe_mode("live") is None  # the probes' default: FRAGLIFE_PROBES, else auto
    with pytest.raises(ParamError) as e:
        kit.probe_mode("cached")
    assert str(e.value) == ("parameter 'measurements' = 'cached' is not allowed: expected one of 'live', "
                            "'recorded'")


def test_recorded_reads_the_recording_only(no_live):
    r = kit.probe("atomics", "recorded")
    assert r.source == "recorded" and r.data == load_recording("atomics").data
    both = kit.probe_set("recorded", {"btf": False, "memlat": True})
    assert list(both) == ["btf", "memlat"] and {x.source for x in both.values()} == {"recorded"}


def test_live_follows_the_probes_default(no_live, monkeypatch):
    monkeypatch.setenv(_core.ENV, "recorded")
    assert kit.probe("gup", "live").source == "recorded"


@pytest.mark.parametrize("number, reads", [
    ("01", ("units", "kernel")), ("02", ("probes",)), ("03", ("units", "pins_probe", "cow_probe", "zerocopy_probe")),
    ("04", ("units", "faults_probe")), ("05", ("units", "kernel", "vmsplice_probe")), ("06", ("probes",)),
    ("07", ("units", "memcpy")), ("08", ("units",)),
])
def test_a_recorded_chapter_measures_nothing(number, reads, no_live):
    ch = chapters.get(number)
    R = ch.module().Results(ch.spec.validate(dict(ch.spec.defaults(), measurements="recorded")))
    for name in reads:
        assert getattr(R, name) is not None
    assert {r.source for r in _core._cache.values()} == {"recorded"}


class _Results(kit.Probed):
    PROBES = {"btf": False, "atomics": True}
    btf = kit.probed("btf")


def test_probed_results_read_their_probe_set(no_live):
    R = _Results({"measurements": "recorded"})
    assert set(R.probes) == {"btf", "atomics"} and R.btf is R.probes["btf"] and R.measured == "recorded"
    assert list(R.sources.probe) == ["btf", "atomics"] and set(R.sources.source) == {"recorded"}
    fake = type("R", (), {"source": "live"})()
    mixed = _Results({}, probe_data={"btf": fake, "atomics": load_recording("atomics")})
    assert mixed.btf is fake and mixed.measured == "mixed"
    assert isinstance(mixed.P, Params)


# ---------------------------------------------------------------- unit costs
def test_unit_costs_are_the_atomics_probe_and_the_extras_asked_for(no_live):
    rec = {n: load_recording(n) for n in ("atomics", "gup", "cow", "faults", "memcpy", "zcsend")}
    base = costs.UnitCosts.from_atomics(rec["atomics"])
    assert kit.unit_costs("recorded") == base
    pins = kit.unit_costs("recorded", "gup", "cow", "release")
    gup = base.with_units(*costs.gup_units(rec["gup"], rec["cow"], base))
    assert pins == kit.with_release_units(gup.with_units(*costs.gup_price(rec["zcsend"], rec["gup"], gup)))
    assert {"gup_page_ns", "copy_at_fork_ns", "unpin_small_ns"} <= set(pins.units)
    lookups = kit.unit_costs("recorded", "gup", "faults")
    populate = rec["faults"].data["ops"]["populate_write_4k"]["ns_per_page"]["median"]
    assert lookups["populate_page_ns"] == populate and list(lookups.units)[-1] == "populate_page_ns"
    assert "copy_at_fork_ns" not in lookups
    copy = kit.unit_costs("recorded", "memcpy")
    assert copy["copy_64k_ns"] == rec["memcpy"].data["sizes"]["65536"]["ns_per_copy"]["median"]
    assert copy.unit("copy_64k_ns").source == "measured here (recorded)"
    alloc = kit.unit_costs("recorded", "alloc")
    assert [alloc.unit(u.name) for u in costs.CITED_ALLOC] == list(costs.CITED_ALLOC)
    assert alloc["slab_alloc_free_ns"] == costs.slab_ns(1) and alloc["slab_alloc_free_held_ns"] == costs.slab_ns(1e6)
    with pytest.raises(ParamError, match="'pins'"):
        kit.unit_costs("recorded", "pins")
    with pytest.raises(ParamError, match="gup"):
        kit.unit_costs("recorded", "cow")
    with pytest.raises(ParamError, match="'measurements'"):
        kit.unit_costs("maybe")


def test_release_units_pay_a_line_transfer_per_atomic():
    u = costs.UnitCosts({n: costs.Unit(n, v, "ns", "cited") for n, v in (
        ("local_atomic_ns", 5.0), ("line_transfer_ns", 40.0), ("unpin_page_ns", 20.0))})
    r = kit.with_release_units(u)
    assert r["unpin_small_ns"] == 20 - 5 + 40 and r["unpin_large_ns"] == 20 - 5 + 80
    cheap = kit.with_release_units(u.override(unpin_page_ns=1.0, line_transfer_ns=1.0))
    assert cheap["unpin_small_ns"] == 0.0  # never below zero


def test_measured_and_unit_rows():
    u = costs.UnitCosts({"a": costs.Unit("a", 1.0, "ns", "measured here (live)"),
                         "b": costs.Unit("b", 2.0, "ns", "measured here (recorded)")})
    assert kit.measured(u, "a") == "live" and kit.measured(u, "b") == "recorded"
    t = kit.unit_rows(u, ("b", "missing", "a"))
    assert list(t.name) == ["b", "a"] and list(t.columns) == ["name", "value", "unit", "source", "detail"]


# ---------------------------------------------------------------- sentences
def test_sentences():
    assert kit.pct(0.01234) == "1.23 %" and kit.pct(1) == "100.00 %"
    assert kit.plural(1, "page") == "1 page" and kit.plural(16, "page") == "16 pages"
    assert kit.plural(2, "copy", "copies") == "2 copies"
    assert kit.words([]) == "" and kit.words(["a"]) == "a" and kit.words(["a", "b"]) == "a and b"
    assert kit.words([64, 128, 256], "or") == "64, 128 or 256"


# ---------------------------------------------------------------- one-axis grids
def test_a_grid_includes_the_run_once():
    assert kit.with_run((1, 16, 512), 16) == [1, 16, 512]
    assert kit.with_run((1.0, 0.5), 0.9) == [0.5, 0.9, 1.0]
    t = kit.grid("k", [3, 1, 2], lambda v: None if v == 2 else pd.DataFrame({"x": [v * 10, v * 20]}))
    assert list(t.columns) == ["k", "x"] and list(t.k) == [3, 3, 1, 1] and list(t.index) == [0, 1, 2, 3]


class _Sweeps:
    def __init__(self, **params):
        self.P = Params.of(params)
        self.calls = []

    def sweep(self, key, values):
        self.calls.append((key, list(values)))
        return pd.DataFrame({key: values})

    size_sweep = kit.run_grid("size", (4, 64, 16))


def test_run_grid_is_a_cached_property_over_the_run_value():
    assert isinstance(_Sweeps.__dict__["size_sweep"], cached_property)
    s = _Sweeps(size=8)
    assert list(s.size_sweep["size"]) == [4, 8, 16, 64]
    s.size_sweep
    assert s.calls == [("size", [4, 8, 16, 64])]
    assert list(_Sweeps(size=16).size_sweep["size"]) == [4, 16, 64]
    assert "size" in _Sweeps.size_sweep.__doc__


def test_params_carry_their_spec():
    spec = chapters.get("04").spec
    P = chapters.validate("04", spec.defaults())
    assert P.spec is spec and Params.of({"a": 1}).spec is None
    assert isinstance(spec["seed"], Param)


# ---------------------------------------------------------------- closing points
def test_points_are_a_markdown_list_without_empty_items():
    assert kit.points("Today **688** atomics.", "", "An owner **930**.") == "- Today **688** atomics.\n- An owner **930**."
    assert kit.points() == ""

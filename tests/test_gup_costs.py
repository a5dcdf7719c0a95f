"""GUP, pin, fault and fork unit costs from the gup and cow probes (model/costs.py gup_units)."""

import pytest

from fraglife import probes
from fraglife.model import costs


@pytest.fixture(scope="module")
def units():
    base = costs.UnitCosts.from_atomics(probes.run("atomics", mode="recorded"))
    gup, cow = probes.run("gup", mode="recorded"), probes.run("cow", mode="recorded")
    return base.with_units(*costs.gup_units(gup, cow, base))


def test_every_unit_has_a_source(units):
    for name in ("gup_call_ns", "register_call_ns", "pin_page_ns", "unpin_page_ns", "pin_pmd_ns", "thp_subpage_ns", "gup_page_ns",
                 "slow_page_ns", "zero_fault_ns", "copy_at_fork_ns", "copy_at_fork_thp_ns", "wp_fault_ns",
                 "wp_copy_ns", "wp_fault_pmd_ns"):
        u = units.unit(name)
        assert u.value >= 0 and u.source == "measured here (recorded)" and u.detail, name


def test_derived_units_follow_their_definition(units):
    assert units["gup_page_ns"] == pytest.approx(units["pin_page_ns"] - units["local_atomic_ns"])
    assert units["thp_subpage_ns"] == pytest.approx((units["pin_pmd_ns"] - 2 * units["local_atomic_ns"]) / 512)
    assert "derived" in units.unit("gup_page_ns").detail


def test_cited_figures_when_nothing_was_measured():
    cited = costs.gup_units({"probe": "gup", "source": "unavailable"})
    assert {u.name for u in cited} == {"pin_page_ns", "unpin_page_ns", "pin_pmd_ns"}
    assert all(u.source == costs.CITED for u in cited)
    # Li Zhe's gup_test: 8 GiB of 4 KiB pages pinned in 130.5 ms, unpinned in 31.7 ms
    by = {u.name: u.value for u in cited}
    assert by["pin_page_ns"] == pytest.approx(62.2, abs=0.1) and by["unpin_page_ns"] == pytest.approx(15.1, abs=0.1)

"""The share of a transfer's CPU the frag lifetime work costs: one definition (model/replays.py), the same
numbers in chapters 01 and 08, and the attribution of costs to the change that needs them."""

import os

import pytest

from fraglife import chapters
from fraglife.chapters import kit, refcount_removal as ch01, unified_owner as ch08
from fraglife.model import replays
from fraglife.model.replays import Replays

os.environ.setdefault("FRAGLIFE_PROBES", "recorded")
SMALL = dict(bytes_sent=512 << 10, measurements="recorded")
COLUMNS = ("atomics_per_mib", "binding_per_mib", "bounces_per_mib", "ns_per_mib", "core_share")


def _params(chapter):
    spec = chapters.get(chapter).spec
    return spec.validate({**spec.defaults(), **SMALL})


@pytest.fixture(scope="module")
def units():
    return kit.unit_costs("recorded", "memcpy")


@pytest.fixture(scope="module")
def runs():
    return Replays.of(_params("01"))


def test_chapters_01_and_08_price_the_same_workload_alike(units, runs):
    """Same workload, config and units: chapter 01's policy table and chapter 08's book table agree exactly."""
    p8 = _params("08")
    assert replays.config(p8) == runs.cfg
    for w in ("tcp_send", "tcp_gso", "splice_send", "devmem_send", "rx_gro"):
        t1 = ch01.policy_table(runs, w, units, 100).set_index("policy")
        for policy in (replays.TODAY, replays.OWNER):
            b8 = ch08.book_row(runs, w, policy, units, 100, int(p8.cpus))
            one = replays.lifetime_cost(runs, w, policy, units, 100)
            for c in COLUMNS:
                assert t1.loc[policy, c] == pytest.approx(one[c], rel=1e-12), (w, policy, c)
                assert b8[c] == pytest.approx(one[c], rel=1e-12), (w, policy, c)


def test_devmem_binding_is_priced_on_its_shared_line(units, runs):
    today = replays.lifetime_cost(runs, "devmem_send", replays.TODAY, units, 100)
    assert today["binding_per_mib"] == today["owner_atomics_per_mib"] > 0
    assert today["shared_line_ns"] > 0
    assert replays.lifetime_cost(runs, "tcp_send", replays.TODAY, units, 100)["shared_line_ns"] == 0


def test_range_brackets_the_value(units, runs):
    for w in ("tcp_send", "devmem_send"):
        r = replays.lifetime_cost(runs, w, replays.TODAY, units, 100)
        assert r["ns_low"] <= r["ns_per_mib"] <= r["ns_high"]
        assert r["core_share_low"] <= r["core_share"] <= r["core_share_high"]


def test_attribution_charges_each_step_for_what_it_adds(units, runs):
    for w in ("tcp_send", "splice_send", "devmem_send"):
        a = replays.attribution(runs, w, units, 100).set_index("step")
        assert tuple(a.index) == replays.STEPS
        assert a.loc["today", "added_ns_per_mib"] == 0
        total = a.loc["today", "ns_per_mib"] + a.added_ns_per_mib.sum()
        assert total == pytest.approx(a.loc["owner with pins", "ns_per_mib"], rel=1e-9)
        for s in replays.STEPS[1:]:
            assert a.loc[s, "added_ns_low"] <= a.loc[s, "added_ns_per_mib"] <= a.loc[s, "added_ns_high"]
    # the pinning change touches user memory only
    s = replays.attribution(runs, "splice_send", units, 100).set_index("step")
    assert s.loc["today with pins", "policy"] == replays.TODAY
    t = replays.attribution(runs, "tcp_send", units, 100).set_index("step")
    assert t.loc["today with pins", "policy"] == replays.PINNED_TODAY
    assert t.loc["today with pins", "pin_atomics_per_mib"] > 0 == t.loc["today", "pin_atomics_per_mib"]

"""GUP, pin, fault and fork unit costs from the gup and cow probes (model/costs.py gup_units), and GUP's one
measured price from the zcsend probe (gup_price, price_gup, the zerocopy/copy ratio and crossover)."""

import pytest

from fraglife import probes
from fraglife.model import costs


@pytest.fixture(scope="module")
def units():
    """The gup and cow probes' units alone (io_uring registration, vmsplice, faults, fork), before GUP's price."""
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


# -- GUP's one measured price: the zcsend fit (rule 8) ---------------------------------------------------------

@pytest.fixture(scope="module")
def zcsend():
    return probes.run("zcsend", mode="recorded")


@pytest.fixture(scope="module")
def priced(zcsend):
    base = costs.UnitCosts.from_atomics(probes.run("atomics", mode="recorded"))
    return base.with_units(*costs.gup_price(zcsend, probes.run("gup", mode="recorded"), base))


def test_the_price_is_the_zcsend_fit(zcsend, priced):
    fit = zcsend.data["fit"]["udp"]
    g, z = fit["gup"], fit["coefficients"]["zerocopy"]
    assert priced["zc_call_ns"] == pytest.approx(g["per_call_ns"])
    assert priced["gup_page_ns"] == pytest.approx(g["per_page_ns"])
    assert priced["zc_frag_ns"] == pytest.approx(g["per_frag_ns"])
    assert priced["zc_page_ns"] == pytest.approx(g["per_thp_page_ns"]) == priced["thp_subpage_ns"]
    assert priced["gup_fault_page_ns"] == pytest.approx(g["per_page_absent_ns"])
    assert priced["copy_page_ns"] == pytest.approx(fit["copy"]["per_page_ns"])
    assert 550 < priced["zc_call_ns"] < 650 and 35 < priced["gup_page_ns"] < 45  # about 607 and 40 ns
    for name in costs.GUP_UNITS:
        u = priced.unit(name)
        assert u.source == "measured here (recorded)", name
    for name in ("zc_call_ns", "gup_page_ns", "copy_page_ns"):
        assert "zcsend probe, udp fit" in priced.unit(name).detail and zcsend.kernel in priced.unit(name).detail
    # the pin is the fitted page and its one extra atomic; the slow path's own per-call cost is not resolved here
    assert priced["pin_page_ns"] == pytest.approx(priced["gup_page_ns"] + priced["local_atomic_ns"])
    assert priced["gup_slow_call_ns"] == 0 and "not resolved" in priced.unit("gup_slow_call_ns").detail


def test_counted_atomics_are_shown_not_priced(priced):
    work = {"sends": 2, "gup_calls": 3, "pages": 32, "frags": 20, "slow_calls": 1, "slow_pages": 6,
            "faulted_pages": 4, "flag_atomics": 32, "ref_atomics": 70, "pin_atomics": 0}
    rows = costs.price_gup(work, priced)
    by = {r["cause"]: r for r in rows}
    expect = (2 * priced["zc_call_ns"] + 1 * priced["gup_call_ns"] + 32 * priced["zc_page_ns"] +
              20 * priced["zc_frag_ns"] + 4 * priced["zc_fault_page_ns"] + 2 * priced["gup_slow_page_ns"] +
              1 * priced["gup_slow_call_ns"])
    assert costs.total(rows) == pytest.approx(expect)
    assert by["PG_referenced bitops (counted)"]["ns_per_mib"] == 0 and by["reference atomics (counted)"][
        "count_per_mib"] == 70
    per_mib = costs.price_gup(work, priced, nbytes=costs.MIB / 2)
    assert costs.total(per_mib) == pytest.approx(2 * expect)


def test_chapters_03_04_and_06_price_the_same_lookup_alike(priced):
    """One 64 KiB and one 1 MiB send, from order-0 pages and from a THP: the sender (03), the lookup model (04) and
    the packer (06) count the same work, so GUP's one price gives each the same ns."""
    import numpy as np

    from fraglife.model import bvec, pagetable, pins

    for size in (65536, 1 << 20):
        for fp in (1, 512):
            a = pins.gup_work(pins.sender(size, fp, 1, 1, 0, 0, "ref", 65160))
            b = pagetable.gup_work(pagetable.lookup(1, size, "contiguous", 1, 1.0, 1.0 if fp == 512 else 0.0, 1.0,
                                                    "per_skb", 65160))
            npg = -(-size // 4096)
            same = (np.arange(1, max(npg, fp)) % fp) != 0
            c = bvec.gup_work(bvec.zerocopy_pack(bvec.frag_lengths(same, same, "zerocopy"), bvec.folio_starts(same),
                                                 nbytes=size, max_frags=17, goal=65160, mss=1448))
            ns = [costs.total(costs.price_gup(w, priced, nbytes=size)) for w in (a, b, c)]
            assert ns[0] == pytest.approx(ns[1]) == pytest.approx(ns[2]), (size, fp, ns)
            assert a == b == c


def test_the_model_ratio_holds_at_the_held_out_points(zcsend, priced):
    """The model's zerocopy/copy ratio within 20 % of the measured one at every point the fit did not use (other
    sizes, the half-THP buffer), computed here as the probe computed it."""
    rows = costs.zc_heldout(zcsend, priced)
    assert len(rows) == len(zcsend.data["fit"]["udp"]["heldout"]) == 20
    assert all(r["within"] for r in rows)
    probe_rows = {(h["size"], h["buffer"], h["state"]): h for h in zcsend.data["fit"]["udp"]["heldout"]}
    for r in rows:
        assert r["model_ratio"] == pytest.approx(probe_rows[(r["size"], r["buffer"], r["state"])]["model_ratio"])
    assert costs.zc_ratio(priced, 61440, "4k") == pytest.approx(
        next(r for r in zcsend.data["fit"]["udp"]["residuals"] if (r["size"], r["buffer"], r["state"], r["mode"]) ==
             (61440, "4k", "present", "zerocopy"))["model_ns"] /
        next(r for r in zcsend.data["fit"]["udp"]["residuals"] if (r["size"], r["buffer"], r["state"], r["mode"]) ==
             (61440, "4k", "present", "copy"))["model_ns"])


def test_crossovers_measured_and_modelled(zcsend, priced):
    rec = zcsend.data["crossover"]["udp"]
    for r in costs.zc_crossovers(zcsend, priced):
        e = rec[f"{r['buffer']}/{r['state']}"]
        assert r["measured_bytes"] == pytest.approx(e["measured_bytes"])
        assert r["model_bytes"] == pytest.approx(e["fit_bytes"])
    # resident order-0 pages: about 23.6 KB modelled (607 ns over a 105 ns saving per page), 31 KB measured
    assert costs.zc_crossover(priced) == pytest.approx(
        priced["zc_call_ns"] / (priced["copy_page_ns"] - priced["gup_page_ns"]) * 4096)


def test_the_features_are_the_probes(zcsend):
    from fraglife.probes import zcsend as probe

    for p in zcsend.data["paths"]["udp"]["points"]:
        for mode in ("copy", "zerocopy"):
            k = p[mode]["skbs_per_call"] or 1.0
            assert costs.zc_features(p["size"], p["buffer"], p["state"], k) == probe.features(p["size"], p["buffer"],
                                                                                               p["state"], k)


def test_break_even_facts_reconcile_the_documented_10_kb(zcsend, priced):
    facts = {f["fact"]: f for f in costs.zc_break_even(zcsend, priced, probes.run("memcpy", mode="recorded"))}
    doc = facts["documented break-even"]
    assert doc["value"] == 10_000 and doc["label"] == costs.CITED and "msg_zerocopy.rst" in doc["source"]
    saving = facts["saving per 4 KiB page on a cache-hot copy (copy less GUP)"]["value"]
    assert 95 < saving < 115  # about 105 ns
    be = facts["break-even, fixed cost over saving"]["value"]
    assert be == pytest.approx(costs.zc_crossover(priced))
    cold = facts["crossover measured, order-0 pages never touched: both modes fault them in"]["value"]
    assert cold < doc["value"] < be  # cold data crosses over sooner than the doc's figure, cache-hot later
    assert facts["crossover modelled with the copy from DRAM (cold source data)"]["value"] < be
    reads = [f for name, f in facts.items() if name.startswith("break-even with one completion read")]
    assert [f["value"] for f in reads] == sorted((f["value"] for f in reads), reverse=True) and reads[-1]["value"] > be
    assert facts["veth is not a NIC"]["label"] == "not measured here"
    assert facts["the TCP fit's worst held-out ratio error"]["value"] > costs.HELDOUT_TOLERANCE


def test_the_kit_prices_gup_from_the_fit():
    from fraglife.chapters import kit

    u = kit.unit_costs("recorded", "gup")
    assert "zcsend" in u.unit("gup_page_ns").detail and u["gup_page_ns"] < u["unpin_page_ns"] + u["pin_page_ns"]
    assert set(costs.GUP_UNITS) <= set(u.units)
    assert "register_call_ns" in u and "zcsend" in u.unit("thp_subpage_ns").detail

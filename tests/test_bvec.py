"""Chapter 06's model: frag rules, the skb packer (numba) against its twin, address arithmetic."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fraglife.model import bvec as B, bvec_twin as twin
from fraglife.probes import pagemap

PAGE = B.PAGE


@st.composite
def buffers(draw):
    n = draw(st.integers(1, 80))
    contig = np.array(draw(st.lists(st.booleans(), min_size=n - 1, max_size=n - 1)), bool)
    same = contig & np.array(draw(st.lists(st.booleans(), min_size=n - 1, max_size=n - 1)), bool)
    return contig, same


@st.composite
def sends(draw):
    contig, same = draw(buffers())
    n = contig.size + 1
    nbytes = draw(st.integers(1, n * PAGE))
    first = draw(st.integers(0, n * PAGE - nbytes))
    return {"contig": contig, "same": same, "first_byte": first, "nbytes": nbytes,
            "max_frags": draw(st.integers(1, 20)), "goal": draw(st.integers(1, 6 * PAGE)),
            "mss": draw(st.integers(1, 9000)), "rule": draw(st.sampled_from(B.RULES))}


@given(case=sends())
def test_pack_agrees_with_twin(case):
    fl = B.frag_lengths(case["contig"], case["same"], case["rule"])
    st_ = B.folio_starts(case["same"])
    kw = {k: case[k] for k in ("first_byte", "nbytes", "max_frags", "goal", "mss")}
    fast = B.pack(fl, st_, **kw)
    assert fast == twin.pack(fl, st_, **kw)
    assert fast["bytes"] == case["nbytes"]
    assert fast["max_frags_in_skb"] <= case["max_frags"]
    assert fast["segments"] <= fast["segment_pieces"]
    assert fast["frags"] <= fast["frag_pages"]
    if case["rule"] != "phys":
        assert fast["multi_folio_frags"] == 0 and fast["extra_folio_pages"] == 0


@given(buf=buffers())
def test_coarser_rules_cut_less(buf):
    contig, same = buf
    n = contig.size + 1
    counts = [B.frag_lengths(contig, same, r) for r in B.RULES]
    for fl in counts:
        assert fl.sum() == n and np.all(fl >= 1)
    assert len(counts[2]) <= len(counts[1]) <= len(counts[0]) == n


@settings(max_examples=100)
@given(case=sends())
def test_coarser_rules_never_need_more_skbs(case):
    kw = {k: case[k] for k in ("first_byte", "nbytes", "max_frags", "goal", "mss")}
    st_ = B.folio_starts(case["same"])
    skbs = [B.pack(B.frag_lengths(case["contig"], case["same"], r), st_, **kw)["skbs"] for r in B.RULES]
    assert skbs[2] <= skbs[1] <= skbs[0]


def test_a_page_cut_by_an_skb_is_a_frag_in_each():
    """Two pages, a 6000-byte size goal: the second page is split between the two skbs."""
    contig = np.array([True])
    same = np.array([True])
    for rule in B.RULES:
        c = B.pack(B.frag_lengths(contig, same, rule), B.folio_starts(same), nbytes=2 * PAGE, max_frags=17,
                   goal=6000, mss=1500)
        assert c["skbs"] == 2 and c["segments"] == 4 + 2
        assert c["frags"] == (3 if rule == "splice" else 2)


def test_multi_folio_frags_count_pages_outside_the_first_folio():
    # pages 0-1 folio A, 2-4 folio B (physically after A), 5 apart
    contig = np.array([True, True, True, True, False])
    same = np.array([True, False, True, True, False])
    fl = B.frag_lengths(contig, same, "phys")
    assert fl.tolist() == [5, 1]
    c = B.pack(fl, B.folio_starts(same), nbytes=6 * PAGE, max_frags=17, goal=64 * PAGE, mss=1448)
    assert (c["multi_folio_frags"], c["extra_folio_pages"]) == (1, 3)
    assert B.frag_lengths(contig, same, "zerocopy").tolist() == [2, 3, 1]


def test_bad_inputs_are_refused():
    contig, same = np.array([True]), np.array([True])
    with pytest.raises(ValueError, match="rule = 'page'"):
        B.frag_lengths(contig, same, "page")
    with pytest.raises(ValueError, match="same_folio implies contig"):
        B.frag_lengths(np.array([False]), np.array([True]), "phys")
    fl, st_ = B.frag_lengths(contig, same, "phys"), B.folio_starts(same)
    with pytest.raises(ValueError, match="does not fit"):
        B.pack(fl, st_, nbytes=3 * PAGE, max_frags=17, goal=PAGE, mss=1448)
    with pytest.raises(ValueError, match="max_frags = 0"):
        B.pack(fl, st_, nbytes=PAGE, max_frags=0, goal=PAGE, mss=1448)
    with pytest.raises(ValueError, match="cover 1 pages"):
        B.pack(np.array([1]), st_, nbytes=PAGE, max_frags=1, goal=PAGE, mss=1448)


def test_size_goal():
    # 45 segments of 1448 below GSO_LEGACY_MAX_SIZE - (MAX_TCP_HEADER + 1) (kernel-facts rule 9)
    assert B.size_goal(1448, 65536) == 45 * 1448
    assert B.size_goal(9000, 65536) == 7 * 9000
    assert B.size_goal(1448, 512 * 1024) == (8 * 65535 - 321) // 1448 * 1448  # capped at GSO_MAX_SIZE
    assert B.size_goal(70000, 65536) == 70000


@settings(max_examples=50)
@given(n=st.integers(1, 500), seed=st.integers(0, 10_000))
def test_address_sums_agree_with_twins_and_each_other(n, seed):
    f = B.frags_for_access(n, seed)
    page = int(B.address_sum_page(f["page"], f["off"], f["len"]))
    phys = int(B.address_sum_phys(f["phys"], f["len"]))
    assert page == twin.address_sum_page(f["page"], f["off"], f["len"])
    assert phys == twin.address_sum_phys(f["phys"], f["len"])
    assert page == phys  # the same memory, reached either way


@given(buf=buffers(), seed=st.integers(0, 100))
def test_pagemap_layout_round_trip(buf, seed):
    """A layout read from PFNs and tails expands back to the same breaks (probe <-> model)."""
    contig, same = buf
    pfn = B.phys_from_layout(contig, seed)
    tail = np.concatenate(([False], same))
    lay = pagemap.folio_layout(pfn, tail)
    c2, s2 = pagemap.expand(pagemap.encode(lay))
    assert np.array_equal(c2, contig) and np.array_equal(s2, same)
    assert pagemap.decode(pagemap.encode(lay)) == lay
    assert sum(r for _, _, r in lay) == len(B.frag_lengths(contig, same, "zerocopy"))


# -- MSG_ZEROCOPY's own fill: calls, PMD leaves, give-backs, software GSO's refs (rules 1, 3, 5, 6) ------------

@st.composite
def zc_sends(draw):
    case = draw(sends())
    n = case["contig"].size + 1
    case["pmd"] = None if draw(st.booleans()) else np.array(draw(st.lists(st.booleans(), min_size=n, max_size=n)))
    return case


@settings(max_examples=150)
@given(case=zc_sends())
def test_zerocopy_pack_agrees_with_twin(case):
    fl = B.frag_lengths(case["contig"], case["same"], "zerocopy")
    st_ = B.folio_starts(case["same"])
    kw = {k: case[k] for k in ("first_byte", "nbytes", "max_frags", "goal", "mss")}
    fast = B.zerocopy_pack(fl, st_, pmd_mapped=case["pmd"], **kw)
    assert fast == twin.zerocopy_pack(fl, st_, pmd_mapped=case["pmd"], **kw)
    assert fast["bytes"] == case["nbytes"] and fast["max_frags_in_skb"] <= case["max_frags"]
    assert fast["gup_pte"] + fast["pmd_pages"] == fast["gup_pages"] >= fast["gup_calls"] >= fast["skbs"]
    assert fast["flag_atomics"] == fast["gup_pte"] + fast["gup_pmd"]
    assert fast["gso_uarg_refs"] == fast["segments"] and fast["gso_page_refs"] == fast["segment_pieces"]


def _thp(pages=512):
    same = np.ones(pages - 1, bool)
    return B.frag_lengths(same, same, "zerocopy"), B.folio_starts(same)


def test_a_thp_costs_a_few_tens_of_attach_atomics_per_mib():
    """Rule 3: 1 MiB from a PMD-mapped THP, 17 skbs: one grab and one give-back per call (34 atomics), where
    counting a GUP reference per page gave 289 (frag pages + one give-back per multi-page frag)."""
    fl, st_ = _thp()
    c = B.zerocopy_pack(fl, st_, nbytes=1 << 20, max_frags=17, goal=B.size_goal(1448, 65536), mss=1448)
    assert c["gup_calls"] == c["gup_pmd"] == c["give_backs"] == c["skbs"] == 17
    assert c["attach_ref_atomics"] == 34 and c["flag_atomics"] == 17
    assert c["frag_pages"] + c["multi_page_frags"] == 289
    # the same pages, PTE-mapped (a folio the buffer holds only part of): a grab and a PG_referenced per page
    p = B.zerocopy_pack(fl, st_, nbytes=1 << 20, max_frags=17, goal=B.size_goal(1448, 65536), mss=1448,
                        pmd_mapped=np.zeros(512, bool))
    assert p["gup_pte"] == p["gup_pages"] == 272 and p["flag_atomics"] == 272 and p["skbs"] == c["skbs"]


def test_software_gso_takes_a_uarg_ref_per_segment():
    """Rule 5: skb_segment() takes one ubuf_info reference per segment (skb_zerocopy_clone()) besides a page
    reference per frag slice."""
    fl, st_ = _thp(64)
    c = B.zerocopy_pack(fl, st_, nbytes=16 * PAGE, max_frags=17, goal=B.size_goal(1448, 65536), mss=1448)
    assert c["skbs"] == 2 and c["segments"] == 45 + 1 == c["gso_uarg_refs"]  # 45 x 1448 B, then 376 B
    assert c["gso_page_refs"] == c["segment_pieces"] >= c["segments"]


def test_a_call_that_fills_the_last_frag_closes_the_skb():
    """Rule 6: calls ask for at most MAX_SKB_FRAGS - nr_frags pages; a call that leaves 17 frags ends the skb, so a
    page that would have merged into the 17th frag starts the next skb (the generic packer merges it)."""
    same = np.zeros(31, bool)
    same[16:] = True  # 16 order-0 pages, then a 16-page folio
    fl, st_ = B.frag_lengths(same, same, "zerocopy"), B.folio_starts(same)
    zc = B.zerocopy_pack(fl, st_, nbytes=32 * PAGE, max_frags=17, goal=1 << 20, mss=1448)
    assert (zc["skbs"], zc["frags"], zc["gup_calls"], zc["max_frags_in_skb"]) == (2, 18, 2, 17)
    generic = B.pack(fl, st_, nbytes=32 * PAGE, max_frags=17, goal=1 << 20, mss=1448)
    assert (generic["skbs"], generic["frags"]) == (1, 17)
    # one call per skb of at most 17 pages, not per folio run: 16 order-0 pages, one call
    same = np.zeros(15, bool)
    c = B.zerocopy_pack(B.frag_lengths(same, same, "zerocopy"), B.folio_starts(same), nbytes=16 * PAGE,
                        max_frags=17, goal=1 << 20, mss=1448)
    assert (c["gup_calls"], c["frags"], c["give_backs"]) == (1, 16, 0)

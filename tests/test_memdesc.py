"""Chapter 02's model: the frag walk (numba) against its twin, the memory arithmetic, latency pricing."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fraglife.model import memdesc as M, memdesc_twin as twin

SPANS = dict(stride=[80, 48, 64], lo=[48, 8, 8], hi=[52, 48, 56], page_lo=[52, 8, 0], page_hi=[56, 48, 8])


@st.composite
def raw_frags(draw):
    """Small hand-drawn frag arrays: pages, heads and descriptor slots from tiny pools, so lines repeat."""
    n = draw(st.integers(1, 40))
    units = draw(st.integers(1, 8))
    pfn = draw(st.lists(st.integers(0, 64), min_size=n, max_size=n))
    head = [p - draw(st.integers(0, min(p, 3))) for p in pfn]
    unit = draw(st.lists(st.integers(0, units - 1), min_size=n, max_size=n))
    kind = draw(st.lists(st.integers(0, 2), min_size=n, max_size=n))
    cuts = sorted(set(draw(st.lists(st.integers(1, n - 1), max_size=6)) if n > 1 else []))
    slot = draw(st.permutations(list(range(units))))
    return {"skb_start": np.array([0, *cuts, n], np.int64), "pfn": np.array(pfn, np.int64),
            "head": np.array(head, np.int64), "unit": np.array(unit, np.int64), "kind": np.array(kind, np.int64),
            "slot": np.array(slot, np.int64)}


@st.composite
def populations(draw):
    return M.frag_population(sample_pages=draw(st.integers(1, 600)),
                             working_set_pages=draw(st.sampled_from([64, 4096, 1 << 20])),
                             folio_pages=draw(st.sampled_from([[1], [4], [1, 16], [2, 512]])),
                             kind=draw(st.sampled_from(M.KINDS)), rule=draw(st.sampled_from(["splice", "zerocopy"])),
                             max_frags=draw(st.integers(1, 45)), skb_pages=draw(st.sampled_from([1, 16, 128])),
                             seed=draw(st.integers(0, 1000)))


@pytest.mark.parametrize("layout", M.LAYOUTS)
@given(frags=raw_frags())
def test_walk_agrees_with_twin_on_raw_frags(layout, frags):
    assert M.walk(frags, layout, **SPANS) == twin.walk(frags, layout, **SPANS)


@pytest.mark.parametrize("layout", M.LAYOUTS)
@settings(max_examples=40)
@given(frags=populations())
def test_walk_agrees_with_twin_on_populations(layout, frags):
    fast = M.walk(frags, layout, **SPANS)
    assert fast == twin.walk(frags, layout, **SPANS)
    assert fast["misses"] + fast["hits"] == fast["loads"]
    assert fast["frags"] == len(frags["pfn"]) and fast["skbs"] == len(frags["skb_start"]) - 1
    assert fast["frags"] <= fast["depth_sum"] <= 2 * fast["frags"]


@settings(max_examples=40)
@given(frags=populations())
def test_populations_are_well_formed(frags):
    starts = frags["skb_start"]
    assert starts[0] == 0 and starts[-1] == len(frags["pfn"]) and np.all(np.diff(starts) >= 1)
    assert np.all(frags["head"] <= frags["pfn"])
    assert sorted(frags["slot"].tolist()) == list(range(frags["folios"]))
    assert frags["pages"] >= 1


def test_what_each_layout_loads_for_one_frag():
    """One frag each: a tail page today (two lines, depth 2), order-0 under memdesc8 (word + descriptor)."""
    tail = {"skb_start": np.array([0, 1]), "pfn": np.array([5]), "head": np.array([4]), "unit": np.array([0]),
            "kind": np.array([0]), "slot": np.array([0])}
    w = M.walk(tail, "struct_page", **SPANS)
    assert (w["misses"], w["depth_sum"]) == (2, 2)
    base = dict(tail, head=np.array([5]))
    assert M.walk(base, "struct_page", **SPANS)["misses"] == 1
    assert M.walk(base, "memdesc8", **SPANS)["depth_sum"] == 2
    assert M.walk(base, "desc_ref", **SPANS)["depth_sum"] == 1
    niov = dict(base, kind=np.array([2]))
    assert {M.walk(niov, lay, **SPANS)["misses"] for lay in M.LAYOUTS} == {1}


def test_eight_words_share_a_line():
    """Eight consecutive pages of one folio: today eight struct page lines; 8-byte words fill one line."""
    fr = {"skb_start": np.array([0, 8]), "pfn": np.arange(8, 16), "head": np.full(8, 8), "unit": np.zeros(8, np.int64),
          "kind": np.zeros(8, np.int64), "slot": np.array([0])}
    assert M.walk(fr, "struct_page", **SPANS)["misses"] == 8
    assert M.walk(fr, "memdesc8", **SPANS)["misses"] == 2  # one line of words, one descriptor line


def test_bad_walk_arguments_are_refused():
    fr = M.frag_population(sample_pages=16, working_set_pages=64, folio_pages=[1])
    with pytest.raises(ValueError, match="layout = 'page16' is not allowed"):
        M.walk(fr, "page16", **SPANS)
    with pytest.raises(ValueError, match="one value per kind"):
        M.walk(fr, "memdesc8", **dict(SPANS, stride=[80, 48]))
    with pytest.raises(ValueError, match="hi > lo"):
        M.walk(fr, "memdesc8", **dict(SPANS, hi=[48, 48, 56]))
    with pytest.raises(ValueError, match="kind = 'slab'"):
        M.frag_population(sample_pages=16, working_set_pages=64, folio_pages=[1], kind="slab")


def test_memory_arithmetic():
    assert M.sketch_bytes() == 80 and M.round16(80) == 80 and M.round16(132) == 144 and M.round16(1) == 16
    m = M.metadata(1000, {"folio": 10, "none": 5}, {"folio": 80}, 8)
    assert m == {"memmap": 8000.0, "descriptors": 800.0, "total": 8800.0, "by_type": {"folio": 800.0}}
    assert M.bytes_per_page(1, 8, 80) == 88 and M.bytes_per_page(512, 8, 144) == pytest.approx(8.28125)


def test_latency_is_monotone_and_held_at_the_ends():
    pts = [(16 << 10, 1.0), (1 << 20, 7.0), (4 << 20, 12.0), (8 << 20, 9.0), (64 << 20, 150.0)]
    assert M.latency_at(pts, 1) == 1.0 and M.latency_at(pts, 1 << 40) == 150.0
    assert M.latency_at(pts, 8 << 20) == 12.0  # the dip at 8 MiB is noise: never cheaper than 4 MiB
    xs = [M.latency_at(pts, 1 << k) for k in range(10, 32)]
    assert xs == sorted(xs)
    assert M.latency_at(pts, 2 << 20) == pytest.approx(9.5)  # halfway in log2 between 1 and 4 MiB
    with pytest.raises(ValueError, match="points"):
        M.latency_at([], 1)


def test_footprint():
    assert M.footprint("struct_page", "folio", 1000, 1, [80, 48, 64]) == 64000
    assert M.footprint("memdesc8", "folio", 1000, 10, [80, 48, 64]) == 8000 + 100 * 80
    assert M.footprint("desc_ref", "page_pool", 1000, 1, [80, 48, 64]) == 48000
    assert M.footprint("memdesc8", "net_iov", 1000, 1, [80, 48, 64]) == 64000


# -- rules of rules-send: GUP visits per PMD leaf per call (3), the end state's range and the folio (7) ----------

def test_msg_zerocopy_visits_a_thp_once_per_leaf_per_call():
    """Rule 3: gup-fast grabs a PMD-mapped THP at its head once per call (calls of at most 17 pages), not every page:
    2048 pages of THP in 16-page skbs are 128 visits, all at heads; PTE-mapped folios are visited page by page."""
    thp = M.frag_population(sample_pages=2048, working_set_pages=1 << 20, folio_pages=[512], rule="splice", seed=1)
    v = M.gup_visits(thp)
    assert thp["pages"] == len(thp["pfn"]) == 2048 and v["visits"] == len(thp["skb_start"]) - 1 == 128
    assert np.array_equal(v["pfn"], v["head"])
    assert M.walk(v, "struct_page", **SPANS)["frags"] == 128
    small = M.frag_population(sample_pages=2048, working_set_pages=1 << 20, folio_pages=[1, 16], rule="splice",
                              seed=1)
    w = M.gup_visits(small)
    assert w["visits"] == small["pages"] and np.array_equal(w["pfn"], small["pfn"])


def test_the_end_state_is_a_range():
    """Rule 7: 8 B per page (free pages out of line) up to the 32 B interim, 16 and 24 B between them if free-page
    linkage keeps one or two words; the middle is this book's reading, the ends are Wilcox's."""
    rows = M.end_state()
    assert [r["page_bytes"] for r in rows] == [8, 16, 24, 32]
    assert [r["cited"] for r in rows] == [True, False, False, True]
    assert all("this book's reading" in r["source"] for r in rows[1:3])
    assert "Memdescs/Path" in rows[-1]["source"] and rows[0]["source"].endswith("Memdescs")
    assert M.end_state_range(1 << 20) == (8.0 * (1 << 20), 32.0 * (1 << 20))
    assert rows[0]["share_of_ram"] == pytest.approx(0.00195, abs=1e-5)


def test_struct_folio_size_follows_the_release():
    """Rule 7: 256 B on 6.15+ and on 6.12.y with the backport (Debian's 6.12.118), 192 B on 6.12 as released."""
    assert M.folio_bytes("6.18.44-fc-v1252") == 256 and M.folio_bytes("6.12.118-1~deb12u1") == 256
    assert M.folio_bytes("6.12") == 192 and M.folio_bytes("6.14.3") == 192

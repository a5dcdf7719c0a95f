"""Chapter 04's model (fraglife.model.pagetable): the numba kernel against its twin, and the lookup rules."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fraglife.model import pagetable as T, pagetable_twin as twin


@settings(max_examples=80)
@given(iov_count=st.integers(1, 12), iov_size=st.one_of(st.integers(1, 20_000), st.sampled_from([4096, 65536,
                                                                                                  300_000])),
       layout=st.sampled_from(T.LAYOUTS), messages=st.integers(0, 3),
       resident=st.sampled_from([0.0, 0.3, 0.9, 1.0]), thp=st.sampled_from([0.0, 0.5, 1.0]),
       accept=st.sampled_from([0.05, 0.3, 1.0]), strategy=st.sampled_from(T.STRATEGIES),
       size_goal=st.sampled_from([4096, 65160]), max_frags=st.sampled_from([1, 4, 17]), seed=st.integers(0, 99),
       huge_zero=st.sampled_from([0.0, 0.5]), release=st.sampled_from(["6.12", "6.18"]), pin=st.booleans())
def test_lookup_agrees_with_its_twin(iov_count, iov_size, layout, messages, resident, thp, accept, strategy, size_goal,
                                     max_frags, seed, huge_zero, release, pin):
    huge_zero = min(huge_zero, 1 - thp)
    args = (iov_count, iov_size, layout, messages, resident, thp, accept, strategy, size_goal, max_frags, seed,
            huge_zero, release, pin)
    fast, slow = T.lookup(*args), twin.lookup(*args)
    assert fast == slow
    assert fast["bytes"] == messages * iov_count * iov_size
    # a page is looked up in gup-fast (a PTE page or under a PMD leaf) or in the slow path, never both
    assert fast["fast_pte"] + fast["pmd_pages"] + fast["slow_pages"] == fast["pages_looked_up"]
    assert fast["slow_calls"] <= fast["calls"] and fast["zero_faults"] <= fast["slow_pages"]
    assert fast["lock_atomics"] >= 2 * fast["slow_calls"]


def test_today_one_call_per_iovec_and_17_pages():
    # one resident iovec of 64 pages, a size goal larger than it: calls of 17, 17, 17 and 13 pages, all gup-fast
    c = T.lookup(1, 64 * 4096, "contiguous", 1, 1.0, 0.0, 1.0, "per_skb", size_goal=1 << 20)
    assert (c["calls"], c["fast_pte"], c["slow_pages"], c["skbs"], c["frags"]) == (4, 64, 0, 4, 64)
    b = T.lookup(1, 64 * 4096, "contiguous", 1, 1.0, 0.0, 1.0, "batched", size_goal=1 << 20)
    assert (b["calls"], b["fast_pte"], b["frags"]) == (1, 64, 64)


def test_gup_fast_hands_the_rest_of_a_call_to_the_slow_path():
    # nothing mapped: every call goes slow at its first page and faults every page in (zero page, no allocation)
    c = T.lookup(1, 64 * 4096, "contiguous", 1, 0.0, 0.0, 1.0, "per_skb", size_goal=1 << 20)
    assert (c["slow_calls"], c["slow_pages"], c["zero_faults"], c["fast_pte"]) == (4, 64, 64, 0)
    b = T.lookup(1, 64 * 4096, "contiguous", 1, 0.0, 0.0, 1.0, "batched", size_goal=1 << 20)
    assert (b["slow_calls"], b["slow_pages"], b["zero_faults"]) == (1, 64, 64)
    p = T.lookup(1, 64 * 4096, "contiguous", 1, 0.0, 0.0, 1.0, "populate", size_goal=1 << 20)
    assert (p["populate_pages"], p["slow_pages"], p["zero_faults"], p["fast_pte"]) == (64, 0, 0, 64)


def test_small_contiguous_iovecs_share_frags_and_thp_takes_one_leaf():
    # 8 iovecs of 512 B back to back in one page: 8 calls today, one frag (each continues the last)
    c = T.lookup(8, 512, "contiguous", 1, 1.0, 0.0, 1.0, "per_skb")
    assert (c["calls"], c["frags"], c["fast_pte"]) == (8, 1, 8)
    assert T.lookup(8, 512, "contiguous", 1, 1.0, 0.0, 1.0, "batched")["calls"] == 1
    # a THP: one leaf per call, one frag per skb
    t = T.lookup(1, 1 << 20, "contiguous", 1, 0.0, 1.0, 1.0, "per_skb")
    assert t["pmd_pages"] == t["pages_looked_up"] and t["pmd_leaves"] == t["calls"] == t["skbs"] == t["frags"]
    assert t["slow_pages"] == t["zero_faults"] == 0


def test_the_zero_page_never_takes_gup_fast():
    """Rule 2: a page faulted in by a lookup maps the zero page, a special PTE: every later lookup of it goes to the
    slow path again (without a fault), and each takes a reference on the zero page (FOLL_GET). Here the socket
    takes a quarter of a message per call, so a batched lookup looks pages up again: all of them slow. (Counting
    faulted-in pages as mapped made those relooks gup-fast.)"""
    b = T.lookup(4, 64 * 1024, "contiguous", 1, 0.0, 0.0, 0.25, "batched")
    assert b["pages_looked_up"] == 64 + 48 + 32 + 16
    assert b["slow_pages"] == b["pages_looked_up"] and b["fast_pte"] == 0
    assert b["zero_faults"] == 64 and b["zero_refs"] == b["slow_pages"]
    assert b["slow_calls"] == b["calls"] and b["lock_atomics"] == 2 * b["slow_calls"] + b["slow_pages"]
    # a page never touched faults once, in the first lookup that meets it; written pages stay in gup-fast
    s = T.lookup(4, 64 * 1024, "contiguous", 1, 0.0, 0.0, 0.25, "per_skb")
    assert s["zero_faults"] == 64 and s["slow_pages"] == s["pages_looked_up"]
    r = T.lookup(4, 64 * 1024, "contiguous", 1, 1.0, 0.0, 0.25, "batched")
    assert r["slow_pages"] == r["zero_refs"] == 0 and r["fast_pte"] == r["pages_looked_up"]


def test_a_pin_takes_nothing_on_the_zero_page():
    """Rule 2: FOLL_GET references the zero page in the slow path (one shared line); FOLL_PIN takes nothing on it.
    On written pages a pin is two atomics in gup-fast where a reference is one."""
    kw = dict(iov_count=4, iov_size=64 * 1024, layout="contiguous", resident_fraction=0.0, strategy="batched",
              accept_fraction=0.25)
    get, pin = T.lookup(**kw), T.lookup(foll_pin=True, **kw)
    assert get["zero_refs"] == get["slow_pages"] == pin["slow_pages"] and pin["zero_refs"] == 0
    assert pin["pin_atomics"] == 0 and get["ref_atomics"] - pin["ref_atomics"] == get["slow_pages"]
    kw.update(resident_fraction=1.0)
    get, pin = T.lookup(**kw), T.lookup(foll_pin=True, **kw)
    assert pin["pin_atomics"] == 2 * get["fast_pte"] == 2 * (get["ref_atomics"] - pin["ref_atomics"])


def test_gup_fast_sets_pg_referenced_and_the_slow_path_locks():
    """Rule 1: one PG_referenced bitop per PTE page or PMD leaf per call in gup-fast (and folio_mark_accessed() per
    page in the slow path); mmap_lock once per slow call, the PTE lock per slow page."""
    c = T.lookup(1, 64 * 4096, "contiguous", 1, 1.0, 0.0, 1.0, "per_skb", size_goal=1 << 20)
    assert c["flag_atomics"] == c["fast_pte"] == 64 and c["lock_atomics"] == 0
    t = T.lookup(1, 1 << 20, "contiguous", 1, 0.0, 1.0, 1.0, "per_skb")
    assert t["flag_atomics"] == t["pmd_leaves"] == t["calls"] and t["give_backs"] == t["calls"]
    z = T.lookup(1, 64 * 4096, "contiguous", 1, 0.0, 0.0, 1.0, "per_skb", size_goal=1 << 20)
    assert z["flag_atomics"] == z["slow_pages"] and z["lock_atomics"] == 2 * z["slow_calls"] + z["slow_pages"]


def test_the_huge_zero_pmd_is_special_only_on_6_18():
    """Rule 2, versioned (huge_zero_pmd_special): on 6.18 gup-fast refuses the huge zero PMD and the slow path grabs
    it twice per leaf per call (+1, then the rest of the leaf); 6.12 grabs it in gup-fast like any THP."""
    new = T.lookup(1, 1 << 20, "contiguous", 1, 0.0, 0.0, 1.0, "per_skb", huge_zero_share=1.0, release="6.18")
    old = T.lookup(1, 1 << 20, "contiguous", 1, 0.0, 0.0, 1.0, "per_skb", huge_zero_share=1.0, release="6.12")
    assert new["pmd_leaves"] == 0 and new["slow_calls"] == new["slow_pmd_leaves"] == new["calls"]
    assert new["zero_refs"] == 2 * new["calls"] and new["zero_faults"] == 0
    assert new["lock_atomics"] == 3 * new["calls"]  # mmap_lock and its unlock, the PMD lock
    assert old["pmd_leaves"] == old["calls"] == old["zero_refs"] and old["slow_pages"] == 0
    assert new["frags"] == old["frags"] == new["skbs"]  # one huge zero folio, one frag per skb
    # the slow path walks a PMD leaf once per call (follow_huge_pmd() covers the rest of it)
    assert new["slow_pmd_pages"] == new["slow_pages"] == new["pages_looked_up"]
    assert T.gup_work(new)["slow_pages"] == new["slow_pmd_leaves"]


def test_populating_a_huge_zero_pmd_follows_the_release():
    """MADV_POPULATE_WRITE over a huge zero PMD: 6.13+ allocates a THP (huge_zero_wp_thp), 6.12 splits it and
    allocates the pages written; afterwards 6.18 looks a THP up, 6.12 order-0 pages."""
    kw = dict(iov_count=1, iov_size=64 * 4096, layout="contiguous", resident_fraction=0.0, huge_zero_share=1.0,
              strategy="populate", size_goal=1 << 20)
    new, old = T.lookup(release="6.18", **kw), T.lookup(release="6.12", **kw)
    assert new["populate_pages"] == T.PMD_PAGES and new["pmd_leaves"] == new["calls"] and new["fast_pte"] == 0
    assert old["populate_pages"] == 64 and old["fast_pte"] == 64 and old["pmd_leaves"] == 0


def test_partial_sends_look_pages_up_again():
    b = T.lookup(4, 64 * 1024, "contiguous", 1, 1.0, 0.0, 0.25, "batched")
    s = T.lookup(4, 64 * 1024, "contiguous", 1, 1.0, 0.0, 0.25, "per_skb")
    assert b["sendmsgs"] == s["sendmsgs"] == 4
    assert b["pages_looked_up"] == 64 + 48 + 32 + 16 and b["local_puts"] > 0 and s["local_puts"] == 0


@pytest.mark.parametrize("bad", [dict(layout="diagonal"), dict(strategy="guess"), dict(iov_count=0),
                                 dict(iov_count=1024, iov_size=2 << 20), dict(accept_fraction=0.0),
                                 dict(resident_fraction=1.5), dict(size_goal=100)])
def test_lookup_rejects_bad_arguments(bad):
    kw = dict(iov_count=1, iov_size=4096)
    kw.update(bad)
    with pytest.raises(ValueError):
        T.lookup(**kw)


def test_bench_sections_report_rates_and_ratios():
    from fraglife.model import pins

    p = pins.bench_section()
    assert p["sender"]["sends_per_s"] > 0 and p["sender"]["numba_over_twin"] > 0
    assert p["history"]["steps_per_s"] > 0 and p["history"]["numba_over_twin"] > 0
    t = T.bench_section()
    assert t["pages_per_s"] > 0 and t["numba_over_twin"] > 0


@pytest.mark.parametrize("config", ["tso_64k", "tso_1m", "no_tso_64k"])
def test_the_model_counts_what_gup_paths_recorded(config):
    """The gup_paths recording (6.18): a written buffer never takes mmap_lock; an untouched one takes it once per
    GUP call (every call goes slow) and faults each page once; GUP calls per MiB as the model's per-skb lookups."""
    from fraglife import probes

    rec = probes.load_recording("gup_paths")
    cfg = rec.data["configs"][config]
    goal = 45 * cfg["mss"]  # tcp_xmit_size_goal() at the 64 KiB GSO limit
    messages = rec.data["bytes"] // cfg["send_size"]
    mib = rec.data["bytes"] / (1 << 20)
    for layout, resident in (("b", 1.0), ("c", 0.0)):
        run = rec.data["runs"][config][layout]
        m = T.lookup(1, cfg["send_size"], "contiguous", messages, resident, 0.0, 1.0, "per_skb", goal)
        assert m["calls"] == run["gup_calls"]
        # mmap_lock counts the thread's slow GUP calls; a 1 MiB send that waits for buffer space resumes with one
        # call more now and then (sendmsg_iterations > gup_calls): the model sits inside the repeats' bracket.
        lock = run["net"]["mmap_lock"]
        assert lock["min"] <= m["slow_calls"] <= lock["max"]
        if run["net"]["sendmsg_iterations"]["max"] <= m["calls"]:
            assert m["slow_calls"] / m["calls"] == run["per_gup_call"]["mmap_lock"]
        assert m["zero_faults"] / mib == run["per_mib"]["minflt"]


@pytest.mark.parametrize("strategy", ["per_skb", "batched"])
def test_lookup_pages_follows_the_page_states(strategy):
    """lookup_pages (a buffer of given page states, the gup_paths probe's sends): a written buffer never goes slow,
    a buffer only read goes slow once per GUP call without a fault, an untouched one faults each page once."""
    pages, size = 64, 65536
    written = T.lookup_pages([T.PRESENT] * pages, size, strategy=strategy)
    read = T.lookup_pages([T.ZERO] * pages, size, strategy=strategy)
    cold = T.lookup_pages([T.ABSENT] * pages, size, strategy=strategy)
    assert written["slow_calls"] == 0 and written["bytes"] == pages * 4096
    assert read["slow_calls"] == read["calls"] and read["zero_faults"] == 0
    assert cold["slow_calls"] == cold["calls"] and cold["zero_faults"] == pages
    assert written["calls"] == read["calls"] == cold["calls"]
    if strategy == "per_skb":  # one call per skb here: 64 KiB sends of two skbs each at the 45-MSS goal
        assert written["calls"] == written["skbs"] == 2 * pages * 4096 // size
    with pytest.raises(ValueError):
        T.lookup_pages([7], size)

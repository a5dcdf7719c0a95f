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
       size_goal=st.sampled_from([4096, 65160]), max_frags=st.sampled_from([1, 4, 17]), seed=st.integers(0, 99))
def test_lookup_agrees_with_its_twin(iov_count, iov_size, layout, messages, resident, thp, accept, strategy, size_goal,
                                     max_frags, seed):
    args = (iov_count, iov_size, layout, messages, resident, thp, accept, strategy, size_goal, max_frags, seed)
    fast, slow = T.lookup(*args), twin.lookup(*args)
    assert fast == slow
    assert fast["bytes"] == messages * iov_count * iov_size


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

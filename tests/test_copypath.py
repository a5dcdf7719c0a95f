"""The copy path of plain sends (model/copypath.py): tcp_sendmsg_locked()'s loop against its rules."""

from __future__ import annotations

import pytest
from hypothesis import given, settings, strategies as st

from fraglife.model import copypath as cp

MiB = 1 << 20


def test_a_pushed_small_message_is_one_skb_one_frag_two_atomics():
    m = cp.copy_sends(64, 4096, tail_unsent=0.0)
    assert m.per_message("skbs") == 1 and m.per_message("frags") == 1 and m.per_message("passes") == 1
    assert m.atomics / m.messages == pytest.approx(2.0, abs=0.01)


def test_kept_tails_share_one_frag_per_skb():
    m = cp.copy_sends(64, 4096, tail_unsent=1.0)
    # 64 B messages pack into skbs of the size goal; a frag ends only at a page_frag page's end
    assert m.per_message("frags") < 0.01 and m.atomics / m.messages < 0.05


def test_one_order3_refill_per_32k_copied():
    for size in (64, 1000, 4096, 65536):
        m = cp.copy_sends(size, max(4, 4 * MiB // size))
        assert m.per_mib("refills") == pytest.approx(MiB / cp.PFRAG_BYTES, rel=0.02)


def test_a_64k_send_is_cut_at_the_size_goal_and_at_pages():
    m = cp.copy_sends(65536, 64, tail_unsent=0.0)
    # [0, 32 KiB) and [32 KiB, 65160) in a G-sized skb, the 376 B rest in a second: three passes, two skbs
    assert m.per_message("passes") == 3 and m.per_message("skbs") == 2
    assert m.frags_per_gso_skb == 2 and m.frags_per_skb == 1.5


def test_frags_past_the_limit_start_a_new_skb():
    one = cp.copy_sends(65536, 64, tail_unsent=1.0, max_frags=1)
    many = cp.copy_sends(65536, 64, tail_unsent=1.0)
    assert one.frags == one.skbs and one.per_message("skbs") == 2 and many.per_message("skbs") < 1.02


@settings(max_examples=40, deadline=None)
@given(size=st.integers(16, 70000), share=st.floats(0.0, 1.0))
def test_tail_share_inverts_the_skb_count(size, share):
    n = max(64, 2 * MiB // size)
    m = cp.copy_sends(size, n, tail_unsent=share)
    assert 0.0 <= cp.tail_share(size, m.per_message("skbs")) <= 1.0
    assert m.frags >= m.skbs and m.passes >= m.messages and m.refills >= 1


@pytest.mark.parametrize("kw", [{"size": 0}, {"messages": 0}, {"tail_unsent": 1.5}, {"tail_unsent": True},
                                {"max_frags": 0}, {"mss": 2.5}])
def test_bad_inputs_are_refused(kw):
    args = {"size": 64, "messages": 4, **kw}
    with pytest.raises(ValueError, match="is not allowed"):
        cp.copy_sends(args.pop("size"), args.pop("messages"), **args)

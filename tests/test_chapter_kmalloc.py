"""Chapter 07 against the running kernel: the copy path's comparison, the senders by kernel, the answer."""

from __future__ import annotations

import pytest

from fraglife import answers, chapters
from fraglife.chapters import kmalloc_sends as ch
from fraglife.chapters.kit import compare
from fraglife.model import kernels

CH07 = chapters.get("07")
KiB = 1 << 10


def _results(**over):
    P = CH07.spec.validate({**CH07.spec.defaults(), "measurements": "recorded", "bytes_sent": 512 * KiB, **over})
    return ch.Results(P)


@pytest.fixture(scope="module")
def R():
    return _results()


def test_the_comparison_has_the_rows_kernel_check_lists(R):
    t = R.comparison
    assert list(t.columns[:len(compare.COLUMNS)]) == compare.COLUMNS
    assert set(t.quantity) >= {"page_frag_refills", "sendmsg_passes", "skbs_transmitted", "frags_per_gso_skb"}
    assert (t.chapter == "07_kmalloc_sends").all() and (t.measured == "recorded").all()
    agree, n = compare.tally(t)
    assert n >= 3 and agree >= 0.8 * n
    assert compare.unexplained(t).empty


def test_skbs_are_compared_only_where_the_setting_decides_the_tail(R):
    t = R.comparison
    skbs = t[t.quantity == "skbs_transmitted"]
    assert len(skbs) and skbs.transfer.str.contains("nodelay_on").all()


def test_rows_that_differ_carry_the_mechanism_that_moves_them(R):
    t = R.comparison
    off = t[(t.agrees == False)]  # noqa: E712
    for r in off.itertuples():
        assert r.reason == ch.REASONS[r.quantity]["below" if r.kernel < r.model else "above"]


def test_a_reason_only_where_its_mechanism_moves_the_count():
    # refills above the model's are no page reuse; passes below it are no wait
    assert ch._reason("page_frag_refills", 32.0, 40.0, 40.0, 40.0, 1.0) == ""
    assert ch._reason("page_frag_refills", 32.0, 3.0, 3.0, 3.0, 16.0) == ch.PAGE_REUSE
    assert ch._reason("sendmsg_passes", 100.0, 10.0, 10.0, 10.0, 16.0) == ""
    assert ch._reason("sendmsg_passes", 48.0, 64.0, 64.0, 64.0, 16.0) == ch.WAIT
    assert ch._reason("skbs_transmitted", 64.0, 63.0, 63.0, 63.0, 16.0) == ""  # agrees: no reason needed
    assert ch._reason("frags_per_gso_skb", 2.0, 3.0, 3.0, 3.0, 4.0, slack_events=0.0) == ch.SPLIT


def test_the_model_is_fed_settings_not_the_counts_it_is_compared_with(R):
    # with TCP_NODELAY the tail share comes from the setting; the skbs then compared are the model's own
    on = R.transfers[R.transfers.nodelay]
    assert (on.tail_unsent == 0).all()
    off = R.transfers[~R.transfers.nodelay]
    assert ((off.tail_unsent >= 0) & (off.tail_unsent <= 1)).all()


def test_only_rxrpc_differs_between_the_kernels(R):
    assert list(R.on_lts.sender) == ["rxrpc (AFS, over UDP)"]
    rx = [r for r in ch.SENDERS if r[3] == "rxrpc txbuf"][0]
    assert ch.path_atomics("rxrpc txbuf", rx[2], "6.18", R.P) - ch.path_atomics("rxrpc txbuf", rx[2], "6.12", R.P) \
        == pytest.approx(ch.page_frag_atomics(ch.RXRPC_WIRE_HEADER))
    assert set(R.rules_612.rule) == {r.name for r in kernels.VERSIONED_RULES if "07" in r.chapters}


def test_the_kernel_parameter_picks_whose_rules(R):
    lts = _results(kernel="6.12")
    assert lts.release == "6.12" and R.release != "6.12"
    rx = lambda res: float(res.senders.set_index("path").atomics["rxrpc txbuf"])  # noqa: E731
    assert rx(lts) < rx(R)
    assert lts.comparison.equals(R.comparison)  # the copy path reads the same in both


def test_copied_pieces_take_at_most_two_atomics_plus_refills(R):
    s = R.senders
    tcp = s[s.path == "copied by TCP"]
    assert ((tcp.atomics >= 2) & (tcp.atomics < 2.1)).all()
    assert s.set_index("path").atomics["page_frag, spliced"] == pytest.approx(3.0, abs=0.01)


def test_the_answer_row_is_the_chapters_own(R):
    a = ch.answer(R)
    assert a.bullet == "g" and not a.provisional and a.evidence.kind == "cross_checked"
    assert a.number.unit == "B" and a.number.low <= a.number.value <= a.number.high
    assert a.number.value == R.crossover or R.crossover == float("inf")
    h = R.headline
    assert f"{h['kernel_agree']} of {h['kernel_compared']}" in a.answer
    assert answers.format_number(a.number.value, a.number.low, a.number.high, "B") in a.answer

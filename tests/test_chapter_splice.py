"""Chapter 05 in library mode: the kernel it follows, its comparison with this kernel, its answer, and the
panel and prose taking their numbers from the same place."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fraglife import answers, chapters
from fraglife.chapters import splice_destructors as ch
from fraglife.chapters.kit import compare
from fraglife.model import kernels, pipe

from chapter_checks import assert_refused

CH05 = chapters.get("05")
MiB = 1 << 20


def _params(**over):
    return CH05.spec.validate({**CH05.spec.defaults(), "measurements": "recorded", **over})


@pytest.fixture(scope="module")
def R():
    return ch.Results(_params())


@pytest.mark.parametrize("name, value, allowed", [
    ("kernel", "6.6", "one of 'running', '6.12'"),
    ("kernel", "", "one of 'running', '6.12'"),
    ("source", "tee", "one of 'splice', 'vmsplice', 'sendfile'"),
    ("pipe_kib", 3, "a power-of-two integer in [4, 1024]"),
    ("bytes_sent", 1024, "an integer in [65536, 1073741824]"),
    ("mss", 100, "an integer in [536, 9000]"),
])
def test_bad_values_give_one_line(name, value, allowed):
    assert_refused(CH05.spec, name, value, allowed)


def test_the_fill_follows_the_kernels_page_cache(R, recorded):
    """ext4's large folios (6.16+) make the fill cheaper; 6.12 fills 3 refcount atomics per page."""
    lts = ch.Results(_params(kernel="6.12"))
    assert kernels.follows(R.release, "ext4_large_folios") and not kernels.follows(lts.release, "ext4_large_folios")
    assert lts.fill_pp() == 3.0 and 1.0 < R.fill_pp() < 3.0
    assert lts.rules.set_index("rule")["pipe fill"]["today"] == 3 * MiB // pipe.PAGE_SIZE
    # the fill is the same under both rules: only the atomics around it differ by kernel
    d = lts.headline["today_atomics_per_mib"] - R.headline["today_atomics_per_mib"]
    assert d == pytest.approx(lts.headline["owner_atomics_per_mib"] - R.headline["owner_atomics_per_mib"])
    assert d == pytest.approx((3.0 - R.fill_pp()) * MiB / pipe.PAGE_SIZE)
    k = R.kernels
    assert list(k.kernel) == ["6.18 (6.18.44-fc-v1252)", "6.12 LTS"] and len(lts.kernels) == 2
    assert k["owner saves, %"].iloc[0] > k["owner saves, %"].iloc[1] > 0
    assert {"ext4_large_folios", "pipe_two_spare_pages"} <= set(R.rules_that_differ.rule)
    # vmsplice: a GUP ref per page, whatever the kernel
    assert ch.Results(_params(source="vmsplice", kernel="6.12")).fill_pp() == 1.0


def test_the_comparison_covers_the_grid_and_the_page_cache(R):
    t = R.comparison
    assert list(t.columns[:len(compare.COLUMNS)]) == compare.COLUMNS and set(t.chapter) == {ch.CHAPTER}
    assert len(set(t[t.quantity == "transmissions"].transfer)) == 20
    assert set(t.quantity) >= {"transmissions", "skbs_freed", "sendmsg_passes", "gso_segments", "filemap_batches",
                               "bytes_per_slot", "bytes_per_16_slots", "largest_folio_pages"}
    agree, n = compare.tally(t)
    assert agree >= 0.95 * n and compare.unexplained(t).empty
    page_cache = t[t.quantity.isin(list(ch.FILEMAP_QUANTITIES))]
    assert (page_cache.agrees == True).all() and (page_cache.ratio == 1.0).all()  # noqa: E712
    ok, ev = ch._model_follows_kernel(R)
    assert ok and ev["compared"] == n and ev["unexplained"] == []
    # every row that does not agree names a kernel function and its source file
    for r in t[t.agrees == False].itertuples():  # noqa: E712
        assert "()" in r.reason and "net/ipv4/tcp_output.c" in r.reason
    s = R.comparison_summary
    assert s.compared.sum() == n and s.agree.sum() == agree and s.unexplained.sum() == 0
    assert R.comparison_table.reason.astype(bool).sum() == n - agree


def test_an_unexplained_row_fails_the_claim(R):
    t = R.comparison.copy()
    i = t.index[t.quantity == "filemap_batches"][0]
    t.loc[i, "model"], t.loc[i, "agrees"] = 2 * t.loc[i, "kernel"], False
    assert not compare.follows(t, "recorded")[0]


def test_the_panel_shows_the_texts_numbers(R):
    """The panel at the run's own values and the prose read the same numbers (Results.panel, Results.rules)."""
    P = R.P
    panel = ch.panel_data(P, pipe_kib=P.pipe_kib, splice_kib=P.splice_kib, completion_us=P.completion_us,
                          line_gbit=P.line_gbit)
    pd.testing.assert_frame_equal(panel, R.panel)
    h, p = R.headline, panel.set_index("rule")
    assert p.loc["today", "atomics_per_mib"] == h["today_atomics_per_mib"]
    assert p.loc["owner", "atomics_per_mib"] == h["owner_atomics_per_mib"]
    assert p.loc["pipe_holds", "gbit_per_s"] == h["pipe_holds_gbit"]
    text = ch.conclusion(R) + ch.rules_remark(R)
    for v in (p.loc["today", "atomics_per_mib"], p.loc["owner", "atomics_per_mib"]):
        assert f"**{v:.0f}**" in text
    assert f"**{p.loc['pipe_holds', 'gbit_per_s']:.2f} Gbit/s**" in text


def test_the_answer(R):
    a = ch.answer(R)
    h = R.headline
    assert a.bullet == "e" and a.chapter == ch.CHAPTER and not a.provisional and a.verdict in answers.VERDICTS
    assert answers.format_number(h["owner_atomics_per_mib"]) in a.answer
    assert answers.format_number(h["today_atomics_per_mib"]) in a.answer
    assert a.number.unit == "ns/MiB" and a.number.low <= a.number.value <= a.number.high
    assert a.number.value == pytest.approx(h["today_ns_per_mib"] - h["owner_ns_per_mib"])
    assert a.evidence.kind == "cross_checked" and a.evidence.source == "recorded"


def test_the_timeline_chart_merges_rules_with_the_same_timing(R):
    from fraglife.views import splice_destructors as view

    d = view.merge_same(R.timeline)
    assert d["row"].nunique() == 2 and len(d) < len(R.timeline)
    assert np.array_equal(R.pipe_runs["today"], R.pipe_runs["owner"])


def test_sources_that_take_the_same_share_a_bar(recorded):
    from fraglife.views import splice_destructors as view

    s = ch.Results(_params(bytes_sent=MiB)).sources
    bars = view.distinct_bars(s)
    assert len(bars) < len(s) and set(bars.rule) == {"today", "owner"}
    n = bars.groupby("rule").atomics_per_mib.nunique()
    assert n.to_dict() == bars.rule.value_counts().to_dict()  # the bars of a rule differ
    assert any(" = " in name for name in bars.source)


def test_a_quick_live_run_measures_the_defaults_and_records_the_rest_of_the_grid(monkeypatch):
    """kcount_splice's quick run: the default settings live, the rest of the grid from the recording in its place,
    marked so; the chapter's comparison still covers the whole grid, each row measured as its transfer was, and
    the live settings are set beside the recording's counts and the model."""
    import contextlib
    import copy

    from fraglife.probes import _core, kcount, kcount_splice as ks, load_recording

    rec = load_recording("kcount_splice")
    by_name = {r["name"]: r for r in rec.data["grid"]}
    measured = []

    def fake_transfer(name, kw):
        measured.append(name)
        return copy.deepcopy(by_name.get(name) or rec.data["runs"][0])

    monkeypatch.setattr(kcount, "check_root", lambda: None)
    monkeypatch.setattr(kcount, "available", lambda: ({}, "test"))
    monkeypatch.setattr(kcount, "tracepoint_table", lambda events: [])
    monkeypatch.setattr(kcount, "least_disturbed", fake_transfer)
    monkeypatch.setattr(_core, "machine_lock", contextlib.nullcontext)
    monkeypatch.setattr(_core._cleanup, "sweep", lambda: None)
    r = _core.measure_live("kcount_splice", quick=True)
    data = r.data
    assert measured == [n for n, _ in ks._runs(True)] + list(ks.LIVE_GRID)
    assert [g["name"] for g in data["grid"]] == [n for n, _ in ks.grid_settings(True)]
    assert data["grid_live"] == list(ks.LIVE_GRID)
    left = set(by_name) - set(ks.LIVE_GRID)
    assert {g["name"] for g in data["grid"] if g.get("source") == "recorded"} == left
    assert set(r.partial) == {f"grid.{n}" for n in left}
    assert all(g["recorded_at"] == rec.recorded_at and g["bytes"] == by_name[g["name"]]["bytes"]
               for g in data["grid"] if g.get("source") == "recorded")
    measured.clear()
    assert [g["name"] for g in ks.measure(quick=False)["grid"]] == measured[2:]  # a full run measures every one

    R = ch.Results(_params())
    R.__dict__["kernel"] = r
    t = R.comparison
    grid = t[t.quantity == "transmissions"]
    assert len(grid) == 20
    assert set(grid[grid.transfer.isin(ks.LIVE_GRID)].measured) == {"live"}
    assert set(grid[~grid.transfer.isin(ks.LIVE_GRID)].measured) == {"recorded"}
    live = R.live_grid
    assert set(live.transfer) == set(ks.LIVE_GRID)
    assert (live["live / recorded"] == 1.0).all()  # the fake live transfers are the recorded ones
    assert "measured `splice_256k_mtu1500_tso_on` and `splice_256k_mtu1500_tso_off` live" in ch.comparison_remark(R)
    assert ch.live_grid_remark(ch.Results(_params())) == ""  # a recorded run: the whole grid is the recording

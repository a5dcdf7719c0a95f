"""Chapter 08 in library mode: parameters, the owner's tables, the book table, panel, headline, sweep."""

from __future__ import annotations

import pytest

from fraglife import chapters, claims
from fraglife.chapters import unified_owner as ch
from fraglife.model import workloads

from chapter_checks import assert_cli_refuses, assert_refused, claims_listing

CH08 = chapters.get("08")
FAST = {"bytes_sent": 256 * 1024, "ops": 2, "skbs": 2, "measurements": "recorded"}


@pytest.fixture(scope="module")
def R():
    return ch.Results(CH08.spec.validate({**CH08.spec.defaults(), "bytes_sent": 1 << 20, "measurements": "recorded"}))


@pytest.mark.parametrize("name, value, allowed", [
    ("memory", "slab", "one of 'user+pipe', 'user', 'pipe', 'pool', 'devmem', 'kmalloc'"),
    ("ops", 0, "an integer in [1, 5]"),
    ("ops", 6, "an integer in [1, 5]"),
    ("explore_cpus", 4, "an integer in [1, 3]"),
    ("skbs", 2.5, "an integer in [1, 4]"),
    ("frags", 0, "an integer in [1, 3]"),
    ("loss_rate", 0.5, "a number in [0, 0.2]"),
    ("line_gbit", 0, "an integer in [1, 1600]"),
    ("kernel", "6.6", "one of 'running', '6.12'"),
    ("kernel", 6.12, "one of 'running', '6.12'"),
    ("measurements", "cached", "one of 'live', 'recorded'"),
])
def test_bad_values_give_one_line(name, value, allowed):
    assert_refused(CH08.spec, name, value, allowed)


def test_cli_refuses_a_bad_value_with_one_line(capsys):
    assert_cli_refuses(["run", "08", "-p", "ops", "9"], "fraglife run: parameter 'ops' = 9 is not allowed: "
                       "expected an integer in [1, 5]", capsys)


def test_registry_choices_are_the_modules():
    assert CH08.spec["memory"].choices == ch.MEMORIES


def test_claims_catalogue_lists_the_chapter(capsys):
    out = claims_listing(capsys, "08")
    assert out.startswith(f"08_unified_owner: {len(ch.CLAIMS)} claims")
    for c in ch.CLAIMS:
        assert c.name in out


def test_claims_hold_and_the_conclusion_quotes_them(R):
    records = claims.evaluate(ch.CLAIMS, R)
    assert all(r["ok"] for r in records), [r for r in records if not r["ok"]]
    text = ch.conclusion(R)
    o = R.search.loc["unified owner, future frags"]
    assert f"the owner passes in **{int(o.states):,}** states" in text
    t = R.search.loc["today's rule, future frags"]
    assert f"fails in **{int(t.steps)}** steps" in text
    b = R.book.set_index(["workload", "policy"])
    assert f"{b.loc[('devmem_send', 'page_ref'), 'binding_per_mib']:.0f} to" in text
    assert text.count("\n- ") == 2 and text.startswith("- **Safe.**")  # three points
    f = R.owner_array_fit
    assert f"{f['shinfo_bytes']} B to **{f['new_shinfo_bytes']} B**" in text


def test_the_book_table_covers_every_workload(R):
    b = R.book
    assert sorted(set(b.workload)) == sorted(workloads.ALL)
    assert set(b.design) == {"today", "unified owner"}
    future = [w for w, wl in workloads.ALL.items() if not wl.today]
    assert (b[(b.policy == "page_ref") & b.workload.isin(future)].violations > 0).all()
    assert (b[b.policy == "owner_skb"].violations == 0).all()
    devmem = b.set_index(["workload", "policy"]).loc["devmem_send"]
    assert devmem.loc["page_ref", "shared_line_ns"] > devmem.loc["owner_skb", "shared_line_ns"] > 0
    assert (R.book_summary.columns[:2] == ["workload", "design"]).all()


def test_walks_tell_the_counterexample_and_the_owner_end(R):
    w = R.walk
    assert len(w) == 4 and w.iloc[-1].verdict.startswith("use-after-free")
    o = R.owner_walk
    assert not o.verdict.any() and o.iloc[-1]["refcounts after"] == "-"


def test_memory_without_a_counterexample_says_so(recorded):
    R = ch.Results(CH08.spec.validate({**CH08.spec.defaults(), **FAST, "memory": "pool"}))
    assert R.counterexample is None
    assert "no violation on pool memory" in R.walk.iloc[0].operation
    assert not R.owner_walk.verdict.any()
    assert "nothing to break" in ch.search_remark(R)


def test_mixed_owner_trace_and_its_bounds():
    with pytest.raises(ValueError, match="n_owners = 3 is not allowed"):
        ch.mixed_owner_trace(3, gso=False)
    c = ch.coalesce_costs()
    assert list(c.index) == list(ch.OWNERS_PER_SKB)


def test_headline_is_plain_numbers_with_state_counts(recorded):
    h = ch.headline(**CH08.spec.validate({**CH08.spec.defaults(), **FAST}))
    assert h.pop("probes") == "recorded"
    assert all(isinstance(v, (int, float)) for v in h.values())
    assert h["owner_states"] > 0 and h["owner_passes"] == 1 and h["today_passes"] == 0 and h["today_steps"] == 4
    assert h["owner_labelled_states"] > h["owner_states"]


def test_panel_follows_its_controls(recorded):
    from fraglife.views import unified_owner as view

    P = CH08.spec.validate({**CH08.spec.defaults(), **FAST})
    panel = view.make_panel(ch, P, ch.Results(P))
    assert panel.renders == 1 and panel.error is None
    assert "use-after-free" in panel.static_html
    panel.set(policy="owner_skb")
    assert panel.error is None and "Passes" in str(panel.outputs)
    panel.set(rule_left_out="coalesce_refs_the_other_owner")
    assert panel.error is None and "Fails" in str(panel.outputs)
    assert "Interactive in JupyterLab" in panel.static_text


@pytest.mark.sweep
def test_a_sweep_of_the_explorer_bounds_runs_on_dask(tmp_path):
    pytest.importorskip("distributed")
    from fraglife import sweep

    result = sweep.run_sweep("08", ["ops=1,2", "explore_cpus=1,2", "bytes_sent=262144", "measurements=recorded"],
                             out=tmp_path, workers=2, progress=False)
    assert result.complete and not result.failed
    df = result.table
    assert len(df) == 4
    assert {"owner_states", "owner_passes", "today_passes", "today_steps", "claims_ok"} <= set(df.columns)
    assert (df.owner_passes == 1).all() and (df.today_passes == 0).all() and (df.today_steps == 4).all()
    assert (df.claims_ok == df.claims_total).all()
    assert df.sort_values(["ops", "explore_cpus"]).owner_states.is_monotonic_increasing


def test_the_model_against_the_kernel_names_every_gap(R):
    from fraglife.chapters.kit import compare

    c = R.comparison
    assert list(c.columns[:len(compare.COLUMNS)]) == compare.COLUMNS
    assert {"packets", "skbs_deferred", "deferred_share", "reader_cpu_frees", "skbs_freed", "completions"} <= set(c.quantity)
    agree, n = compare.tally(c)
    assert n >= 3 and compare.unexplained(c).empty
    share = c[c.quantity == "deferred_share"]
    assert (share.agrees == True).all() and (share.kernel > 0.99).all()  # noqa: E712
    gap = c[(c.transfer == "gro_on") & (c.quantity == "skbs_deferred")].iloc[0]
    assert gap.agrees == False and "frag_list" in gap.reason  # noqa: E712
    assert (c.measured == "recorded").all() and "from the recording" in ch.comparison_remark(R)


def test_the_model_is_fed_inputs_never_the_counts():
    run = {"bytes": 64 << 20, "tcp_info": {"rx": {"rcv_mss": 1448}}, "same_cpu": True, "skb_defer_max": 64,
           "kernel": "6.12", "skbs": {"packets": 1.0}}
    inputs = ch.rx_inputs(run)
    assert inputs == {"bytes_sent": 16 << 20, "mss": 1448, "rx_buf": ch.VETH_RX_BUF, "loss_rate": 0.0, "cpus": 1,
                      "skb_defer_max": 64, "kernel": "6.12"}
    m = ch.rx_model({**inputs, "bytes_sent": 1 << 20})
    assert m["deferred_share"] == 0.0 and m["skbs_deferred"] == 0  # one CPU: nothing to defer to


def test_where_the_owner_lives_and_what_it_costs(R):
    f = R.owner_array_fit
    assert (f["slots"], f["shinfo_bytes"], f["new_shinfo_bytes"], f["added_alloc_bytes"]) == (8, 320, 384, 64)
    m = R.owner_array_costs_matrix
    assert m.loc["attach", "today, 1 owner"] == 17 and m.loc["attach", "owner array, 1 owner"] == 1
    assert m.loc["coalesce", "owner array, 1 owner"] > m.loc["coalesce", "today, 1 owner"]
    ok, rows = R.owner_array_search
    assert ok and all(r["fallbacks"] > 0 for r in rows.values())
    assert R.invariant.iloc[0]["breaking states"] == 0 and (R.invariant.iloc[1:]["breaking states"] > 0).all()


def test_devmem_binding_and_tx(R):
    b = R.binding.set_index("memory")
    assert b.loc["devmem", "verdict"] == "passes" and b.loc["user", "verdict"] == "passes"
    assert (b.loc[["pipe", "pool", "kmalloc"], "violation"] == "use_after_free").all()
    d = R.devmem_tx.set_index("devmem TX")
    assert d.loc["socket+orphan", "orphan in the trace"] and d.loc["frag", "verdict"] == "passes"


def test_the_attribution_charges_the_owner_for_what_it_adds(R):
    a = R.attribution
    send = a[a.workload == "tcp_send"].set_index("step")
    assert list(send.index) == ["today", "today with pins", "owner with pins"]
    assert send.loc["today with pins", "added_atomics_per_mib"] > 0 > send.loc["owner with pins", "added_atomics_per_mib"]
    rx = a[a.workload == "rx_gro"].set_index("step")
    assert rx.loc["owner with pins", "added_ns_per_mib"] == 0
    assert "the owner then saves" in ch.attribution_remark(R)


def test_the_answer_row(R):
    from fraglife import answers

    a = ch.answer(R)
    assert a.bullet == "1" and a.chapter.startswith("08") and a.verdict == "agree, at a cost"
    assert a.number.unit == "ns/MiB" and a.number.low <= a.number.value <= a.number.high
    assert a.evidence.kind == "cross_checked" and a.evidence.source == "recorded"
    assert a.number.text in a.answer and f"{R.owner_array_fit['slots']} slots" in a.answer
    answers.check_sentence(a.answer)


def test_on_6_12_there_is_no_devmem_tx_and_the_claims_hold(recorded):
    P = CH08.spec.validate({**CH08.spec.defaults(), **FAST, "kernel": "6.12"})
    R = ch.Results(P)
    assert R.release == "6.12" and not R.has_devmem and "devmem_send" not in set(R.book.workload)
    assert (R.kernel_table.iloc[:, 0].loc["devmem_send, today: binding atomics per MiB"] == "no devmem TX")
    assert R.contention.empty and "no devmem TX" in ch.contention_remark(R) and "has no devmem TX" in ch.conclusion(R)
    bad = [r for r in claims.evaluate(ch.CLAIMS, R) if not r["ok"]]
    assert not bad, bad


def test_the_first_screen_shows_the_answer():
    import json
    from pathlib import Path

    nb = json.loads((Path(__file__).resolve().parents[1] / "book/08_unified_owner.ipynb").read_text())
    c = nb["cells"]
    assert c[0]["cell_type"] == "markdown" and "".join(c[0]["source"]).startswith("# 08")
    assert "parameters" in c[1]["metadata"]["tags"] and "hide-input" in c[1]["metadata"]["tags"]
    assert c[1]["metadata"]["jupyter"]["source_hidden"] and c[2]["metadata"]["jupyter"]["source_hidden"]
    assert c[3]["id"] == "answers-record" and "answering.record" in "".join(c[3]["source"])
    assert 'kernel = "running"' in "".join(c[1]["source"])

"""The model against the kernel (fraglife.chapters.kit.compare), on the recorded kcount and kcount_splice runs."""

from __future__ import annotations

import os
import platform
import re
import shutil
from types import SimpleNamespace

import pandas as pd
import pytest

from fraglife.chapters import refcount_removal as ch01, splice_destructors as ch05
from fraglife.chapters.kit import compare
from fraglife.model import workloads
from fraglife.params import ParamError
from fraglife.probes import kcount, kcount_splice, load_recording

MiB = 1 << 20


@pytest.fixture(scope="module")
def kc():
    return load_recording("kcount")


@pytest.fixture(scope="module")
def kcs():
    return load_recording("kcount_splice")


def _run(result, name: str) -> dict:
    return next(r for r in result.data["runs"] if r["name"] == name)


def test_chapter_01_feeds_the_model_each_transfer(kc):
    on, off, bn = (_run(kc, n) for n in ("tso_on", "tso_off", "bottleneck"))
    inputs = ch01.model_inputs(on)
    assert {k: inputs[k] for k in ("workload", "mss", "send_size", "loss_rate", "txc_lag")} == {
        "workload": "tcp_send", "mss": on["mss"], "send_size": on["chunk"], "loss_rate": 0.0, "txc_lag": 0}
    assert ch01.model_inputs(off)["workload"] == "tcp_gso"
    assert ch01.model_inputs(bn)["loss_rate"] == bn["drop_rate"] > 0 and ch01.model_inputs(bn)["loss_burst"] > 1


def test_one_transfer_one_row_per_quantity(kc):
    on = _run(kc, "tso_on")
    k = kcount.kernel_quantities(on)
    model = {"transmissions": k["transmissions"]["per_mib"] * 1.1, "retransmits": 0.0,
             "gso_segments": None, "completions": k["completions"]["high"] * 2}
    t = compare.comparison(model, on, chapter="01_refcount_removal", measured="recorded")
    assert list(t.columns) == compare.COLUMNS
    assert list(t["quantity"]) == list(kcount.QUANTITIES) == list(compare.QUANTITIES)
    assert set(t.chapter) == {"01_refcount_removal"} and set(t.transfer) == {"tso_on"}
    assert set(t.measured) == {"recorded"} and list(t.how_counted) == list(compare.QUANTITIES.values())
    row = t.set_index("quantity")
    assert row.loc["transmissions", "agrees"] and row.loc["transmissions", "ratio"] == pytest.approx(1.1, abs=1e-3)
    assert row.loc["retransmits", "agrees"] and row.loc["retransmits", "ratio"] == 1.0  # 0 against 0
    assert row.loc["gso_segments", "agrees"] is None and row.loc["skbs_freed", "agrees"] is None
    assert not row.loc["completions", "agrees"]
    assert row.loc["completions", "kernel_low"] < row.loc["completions", "kernel_high"]
    assert not row.loc["completions", "exact"] and row.loc["transmissions", "exact"]
    with pytest.raises(ParamError, match="'model'"):
        compare.comparison({"segments": 1.0}, on)
    with pytest.raises(ParamError, match="'tolerance'"):
        compare.comparison({}, on, tolerance=1.5)
    with pytest.raises(ParamError, match="'slack_events'"):
        compare.comparison({}, on, slack_events=11)


@pytest.mark.parametrize("model, kernel, low, high, mib, expected", [
    (120.0, 100.0, 100.0, 100.0, 16, True),     # 20 % above
    (121.0, 100.0, 100.0, 100.0, 16, False),
    (80.0, 100.0, 100.0, 100.0, 16, True),      # 20 % below
    (79.0, 100.0, 100.0, 100.0, 16, False),
    (150.0, 100.0, 90.0, 125.0, 16, True),      # the bracket widened by 20 %
    (0.25, 0.0, 0.0, 0.0, 4, True),             # one event of a 4 MiB transfer: 0.25 per MiB
    (0.3, 0.0, 0.0, 0.0, 4, False),
    (None, 1.0, 1.0, 1.0, 4, None),
    (1.0, None, 0.0, 0.0, 4, None),
])
def test_the_agreement_rule(model, kernel, low, high, mib, expected):
    assert compare.agrees(model, kernel, low, high, mib) is expected


def test_a_row_without_a_kernel_count_has_no_ratio():
    r = compare.row("07", "x", "q", 0.0, 3.0, mib=1.0)
    assert r["agrees"] is False and r["ratio"] is None and r["kernel_low"] == r["kernel_high"] == 0.0
    r = compare.row("07", "x", "q", 4.0, 2.0, mib=1.0, low=1.0, high=5.0, reason="why", measured="live")
    assert r["agrees"] and r["ratio"] == 0.5 and (r["reason"], r["measured"]) == ("why", "live")
    assert list(r) == compare.COLUMNS


def test_chapter_01_compares_its_zerocopy_transfers(kc):
    fed = ch01.AGAINST.transfers(kc)
    assert list(fed.columns[:2]) == ["transfer", "workload"] and set(fed.workload) <= {"tcp_send", "tcp_gso"}
    t = ch01.AGAINST.rows(kc)
    assert list(t.columns) == compare.COLUMNS
    assert list(dict.fromkeys(t.transfer)) == [r["name"] for r in kc.data["runs"] if r["sender"] == "zerocopy"]
    assert set(t.chapter) == {"01_refcount_removal"} and set(t.measured) == {"recorded"}
    reasons = t[t.reason != ""].set_index(["transfer", "quantity"]).reason.to_dict()
    assert reasons == {k: v for k, v in ch01.EXPECTED_GAPS.items() if k in reasons}
    assert all(k in ch01.EXPECTED_GAPS for k in reasons)
    ok, evidence = compare.follows(t, kc.source)
    agree, n = compare.tally(t)
    assert ok and evidence == {"compared": n, "agree": agree, "unexplained": [], "source": "recorded"}
    assert 0 < agree <= n == int(t.agrees.notna().sum())


def test_chapter_05_compares_its_splice_transfers(kcs):
    assert list(ch05.AGAINST.transfers(kcs).transfer) == [r["name"] for r in kcs.data["runs"]]
    t = ch05.AGAINST.rows(kcs)
    assert set(t.transfer) == {"splice_tso_on", "splice_tso_off"} and set(t.chapter) == {"05_splice_destructors"}
    assert compare.follows(t, kcs.source)[0]
    assert (t[t.quantity == "completions"].model == 0).all()


def test_a_disagreement_needs_its_reason(kc):
    t = ch01.AGAINST.rows(kc).copy()
    i = t.index[t.agrees.notna()][0]
    t.loc[i, "agrees"] = False
    t.loc[i, "reason"] = ""
    ok, evidence = compare.follows(t, "recorded")
    assert not ok and evidence["unexplained"] == [f"{t.loc[i, 'transfer']}/{t.loc[i, 'quantity']}"]
    text = compare.gaps_remark(t)
    assert text.startswith("Where they differ:") and "**not explained by the chapter**" in text
    t.loc[i, "reason"] = "`tso_fragment()` cuts it (net/ipv4/tcp_output.c, v6.12)."
    assert compare.follows(t, "recorded")[0] and "tso_fragment()" in compare.gaps_remark(t)
    assert not compare.follows(t[t.agrees.isna()], "recorded")[0]  # nothing compared proves nothing


def test_a_reason_shared_by_several_rows_is_told_once(kc):
    t = ch01.AGAINST.rows(kc).copy()
    i, j = t.index[t.agrees.notna()][:2]
    t.loc[[i, j], "agrees"] = False
    t.loc[[i, j], "reason"] = "One shared mechanism (a named path)."
    text = compare.gaps_remark(t)
    assert text.count("One shared mechanism") == 1
    line = next(x for x in text.splitlines() if "One shared mechanism" in x)
    assert t.loc[i, "quantity"].replace("_", " ") in line and t.loc[j, "quantity"].replace("_", " ") in line


def test_every_quantity_agreeing_says_so(kcs):
    t = ch05.AGAINST.rows(kcs)
    t = t.assign(agrees=t.agrees.map(lambda a: None if a is None else True))
    assert compare.gaps_remark(t) == f"Every quantity compared agrees {compare.RULE}."


def test_one_table_for_every_chapter(kc, kcs):
    rows = [compare.row("03_pinning", "O_DIRECT read", "pins_acquired", 256.0, 256.0, mib=1.0, measured="live")]
    t = compare.table([ch01.AGAINST.rows(kc), ch05.AGAINST.rows(kcs), rows])
    assert list(t.columns) == compare.COLUMNS
    assert list(dict.fromkeys(t.chapter)) == ["01_refcount_removal", "05_splice_destructors", "03_pinning"]
    assert compare.table([]).empty and list(compare.table([]).columns) == compare.COLUMNS
    assert isinstance(compare.table([pd.DataFrame(columns=compare.COLUMNS)]), pd.DataFrame)


# ---------------------------------------------------------------- the model's rules against the measured grids
def _grid_check(result, names):
    """The grid's rows: one transfer per setting, at least 95 % of the quantities within 20 % (or one event per
    MiB), each other one with the kernel mechanism the model leaves out (a function and its source file)."""
    t = compare.grid_rows(result)
    assert list(t.columns) == compare.COLUMNS and list(dict.fromkeys(t.transfer)) == names
    agree, n = compare.tally(t)
    assert n == len(t) and n >= 3 * len(names)
    assert agree >= 0.95 * n, t[t.agrees == False][["transfer", "quantity", "model", "kernel"]]  # noqa: E712
    assert compare.unexplained(t).empty
    for why in t[t.agrees == False].reason:  # noqa: E712
        assert re.search(r"\w+\(\).*\((net|mm|fs)/[\w/]+\.c, v6\.\d+\)", why), why
    return t


def test_the_splice_grid_follows_the_kernel(kcs):
    """splice_to_socket()'s sendmsg()s of 16 pipe buffers, the unsent tail with the share the kernel decided and
    software GSO, against splice calls of 4 KiB to 1 MiB at MTU 1500 and 9000, TSO on and off, the window open."""
    t = _grid_check(kcs, [name for name, _kw in kcount_splice.grid_settings(kcs.data["quick"])])
    assert set(t.quantity) == {"transmissions", "skbs_freed", "gso_segments", "sendmsg_passes"}


def test_the_zerocopy_grid_follows_the_kernel(kc):
    t = _grid_check(kc, [name for name, _kw in kcount.grid_settings(kc.data["quick"])])
    assert "completions" in set(t.quantity)


def test_the_grid_feeds_the_model_settings_and_the_tail_share_not_the_counts(kcs):
    """What the model is fed comes from what was set and what the kernel decided for the connection (the tail
    share), never from the counts it is compared with."""
    run = dict(kcs.data["grid"][0], kernel=kcs.kernel)
    fed = compare.grid_inputs(run)
    assert fed["tail_unsent"] == run["tail_unsent"]["share"] and fed["mss"] == run["mss"]
    assert fed["send_size"] == run["chunk"] and fed["workload"] == ("splice_gso" if run["software_gso"] else
                                                                    "splice_send")
    assert fed["locked_vm_accounting"] is False and fed["size_goal"] == workloads.Config(mss=run["mss"]).size_goal
    counts = {k: v * 3 for k, v in run["per_mib"].items() if k != "tcp:tcp_sendmsg_locked[first]"
              and k != "tcp:tcp_sendmsg_locked[no_tail]"}
    assert compare.grid_inputs(dict(run, per_mib={**run["per_mib"], **counts})) == fed


def test_a_grid_row_allows_one_event_per_mib():
    assert compare.row("m", "t", "q", 2.0, 3.0, mib=16, slack_events=16)["agrees"]  # 2 * 1.2 < 3 = 2 + 1
    assert not compare.row("m", "t", "q", 2.0, 3.0, mib=16)["agrees"]  # one event of 16 MiB: 2.0625


@pytest.mark.live
@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("ip") is None, reason="live transfers need root and iproute2")
def test_live_grid_settings_follow_the_kernel():
    """A few grid settings measured now, the model fed as for the recordings: every quantity within the rule or
    with its reason, at most one of them off."""
    kw = dict(nbytes=4 * MiB, rcvbuf=kcount.GRID_RCVBUF)
    settings = [("splice_64k_mtu9000_tso_on", dict(kw, sender="splice", chunk=64 << 10, mtu=9000, tso=True)),
                ("splice_4k_mtu1500_tso_on", dict(kw, sender="splice", chunk=4 << 10, mtu=1500, tso=True)),
                ("splice_256k_mtu1500_tso_off", dict(kw, sender="splice", chunk=256 << 10, mtu=1500, tso=False)),
                ("zc_16k_mtu9000_tso_on", dict(kw, chunk=16 << 10, mtu=9000, tso=True))]
    runs = [kcount.least_disturbed(name, s) for name, s in settings]
    result = SimpleNamespace(data={"grid": runs}, source="live", kernel=platform.release())
    t = compare.grid_rows(result)
    agree, n = compare.tally(t)
    assert n >= 12 and agree >= n - 1 and compare.unexplained(t).empty, t

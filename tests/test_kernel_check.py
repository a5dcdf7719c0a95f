"""`fraglife kernel-check`: every chapter's comparison rows in one table, from the recordings."""

from __future__ import annotations

import json

from fraglife import cli, kernel_check


def test_rows_from_every_comparing_chapter_recorded():
    rows = kernel_check.collect(recorded=True)
    assert list(rows.columns) == list(kernel_check.KEYS)
    assert {"01_refcount_removal", "05_splice_destructors"} <= set(rows["chapter"])
    assert set(rows["measured"]) == {"recorded"}
    assert set(rows["verdict"]) <= {"agrees", "explained", "DISAGREES", "-"}
    explained = rows[rows["verdict"] == "explained"]
    assert (explained["reason"].str.len() > 0).all()
    assert ((rows["kernel_low"] <= rows["kernel"]) & (rows["kernel"] <= rows["kernel_high"])).all()


def test_verdicts():
    assert kernel_check.verdict({"agrees": True, "reason": ""}) == "agrees"
    assert kernel_check.verdict({"agrees": False, "reason": "tso_fragment() cuts"}) == "explained"
    assert kernel_check.verdict({"agrees": False, "reason": ""}) == "DISAGREES"
    assert kernel_check.verdict({"agrees": None, "reason": ""}) == "-"


def test_cli_table_and_json(capsys):
    status = cli.main(["kernel-check", "--recorded", "01"])
    out = capsys.readouterr().out
    assert "kernel [low, high]" in out and "rows:" in out
    unexplained = (kernel_check.collect(["01"], recorded=True)["verdict"] == "DISAGREES").any()
    assert status == (1 if unexplained else 0)
    cli.main(["kernel-check", "--recorded", "--json", "01"])
    records = json.loads(capsys.readouterr().out)
    assert records and all(list(r) == list(kernel_check.KEYS) for r in records)
    assert {r["chapter"] for r in records} == {"01_refcount_removal"}

"""The largest searches checked: recorded by ``fraglife explore --single --record``, stated by chapter 08."""

from __future__ import annotations

import json

from fraglife import chapters, cli, paths
from fraglife.chapters import unified_owner as ch
from fraglife.model import explorer as E
from fraglife.model import explorer_twin as X
from fraglife.model.policies import POLICIES
from fraglife.sweep import explore as D


class _Args:
    kinds, no_span = "user,pipe", False

    def __init__(self, policy):
        self.policy = policy


def _record(policy, ops=2):
    bounds = X.Bounds(ops=ops)
    sc = X.Scenario(kinds=(X.USER, X.PIPE), policy=POLICIES[policy])
    return D.single_record(bounds, sc, _Args(policy)), E.explore(bounds, sc)


def test_a_record_tells_the_search_it_ran():
    rec, res = _record("page_ref")
    assert (rec["states"], rec["edges"], rec["verdict"], rec["complete"]) == (res.states, res.edges, res.verdict,
                                                                            res.complete)
    assert rec["shortest"] == {"violation": res.shortest()[0], "steps": len(res.shortest()[1])}
    assert rec["bounds"]["ops"] == 2 and rec["policy"] == "page_ref"
    assert "--ops 2" in rec["command"] and "--policy page_ref" in rec["command"]
    assert rec["cpu_seconds"] >= 0 and rec["bytes_per_state"] > 0 and rec["machine"]["cores"] >= 1


def test_keeping_a_record_replaces_its_policy_and_keeps_the_others(tmp_path):
    path = tmp_path / "largest.json"
    owner, _ = _record("owner_skb")
    today, _ = _record("page_ref")
    D.keep_record(owner, path)
    D.keep_record(today, path)
    D.keep_record({**owner, "states": 1}, path)
    kept = json.loads(path.read_text())
    assert set(kept) == {"owner_skb", "page_ref"} and kept["owner_skb"]["states"] == 1
    assert kept["page_ref"]["states"] == today["states"]


def test_record_needs_the_single_process_search(capsys):
    assert cli.main(["explore", "--record", "--ops", "2"]) != 0
    assert "--record is not allowed without --single" in capsys.readouterr().err


def _defaults():
    spec = chapters.get("08").spec
    return spec.validate({p.name: p.default for p in spec})


def test_chapter_08_states_the_recorded_bounds(tmp_path, monkeypatch):
    path = tmp_path / "largest.json"
    monkeypatch.setattr(paths, "LARGEST_SEARCHES", path)
    R = ch.Results(_defaults())
    assert "No search larger" in ch.largest_remark(R)
    assert ch._largest(R)[0] is False
    owner, _ = _record("owner_skb")
    today, _ = _record("page_ref")
    D.keep_record(owner, path)
    D.keep_record(today, path)
    text = ch.largest_remark(R)
    assert f"{owner['states']:,}" in text and f"{today['states']:,}" in text and owner["commit"] in text
    assert ch._largest(R)[0] is True


def test_the_recorded_search_is_larger_than_the_chapters_and_the_owner_passes_it():
    kept = json.loads(paths.LARGEST_SEARCHES.read_text())
    owner, today = kept["owner_skb"], kept["page_ref"]
    P = _defaults()
    assert owner["complete"] and owner["verdict"] == "passes" and today["verdict"] == "fails"
    b = owner["bounds"]
    assert all(b[k] >= P[q] for k, q in (("ops", "ops"), ("cpus", "explore_cpus"), ("skbs", "skbs"),
                                         ("frags", "frags")))
    assert b["ops"] > P["ops"] and owner["bounds"] == today["bounds"]
    assert owner["kinds"] == "user,pipe" and P["memory"] == "user+pipe"

"""Every chapter's claims hold over its whole parameter space, checked in library mode.

No notebook runs here: for each chapter, hypothesis draws parameter sets from
the chapter's own spec (ranges, choices, powers of two), capped by the
module's ``SMALL`` bounds so each example stays fast, builds ``Results`` and
evaluates ``CLAIMS`` with :func:`fraglife.claims.evaluate`. A claim that only
holds at the defaults fails here with the parameters that break it.
"""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, Phase, given, reject, settings
from hypothesis import strategies as st

from fraglife import answers, chapters, claims
from fraglife.claims import Claim, ClaimFailed
from fraglife.params import Param, ParamError

WITH_CLAIMS = [ch for ch in chapters.CHAPTERS if ch.claims]


def _values(p: Param, hi_cap=None) -> st.SearchStrategy:
    if p.choices is not None:
        return st.sampled_from(p.choices)
    if p.kind is bool:
        return st.booleans()
    hi = p.hi if hi_cap is None or p.hi is None else min(p.hi, hi_cap)
    if p.kind is float:
        return st.floats(min_value=p.lo, max_value=hi, allow_nan=False, allow_infinity=False)
    if p.power_of_two:
        return st.sampled_from([1 << k for k in range(64) if p.lo <= 1 << k <= hi])
    return st.integers(min_value=p.lo, max_value=hi)


def parameter_sets(ch: chapters.Chapter) -> st.SearchStrategy:
    small = getattr(ch.module(), "SMALL", {})
    return st.fixed_dictionaries({p.name: _values(p, small.get(p.name)) for p in ch.spec})


def test_every_chapter_declares_claims_as_data():
    for ch in WITH_CLAIMS:
        module = ch.module()
        assert isinstance(module.CLAIMS, tuple) and all(isinstance(c, Claim) for c in module.CLAIMS), ch.id
        assert hasattr(module, "Results"), ch.id
        # the talk shows a few of them, chosen by name
        assert set(getattr(module, "TALK_CLAIMS", ())) <= {c.name for c in module.CLAIMS}, ch.id
    assert [ch.id for ch in WITH_CLAIMS] == [ch.id for ch in chapters.CHAPTERS]


@pytest.mark.parametrize("chapter", WITH_CLAIMS, ids=lambda c: c.id)
def test_claims_hold_over_the_parameter_space(chapter):
    module = chapter.module()

    # no shrinking: every example builds a whole Results, so the first failing one is reported as drawn
    @settings(max_examples=getattr(module, "CLAIMS_EXAMPLES", 40), deadline=None, derandomize=True,
              phases=(Phase.explicit, Phase.reuse, Phase.generate), suppress_health_check=list(HealthCheck))
    @given(values=parameter_sets(chapter))
    def check(values):
        params = chapter.spec.validate(values)
        try:
            results = module.Results(params)
        except ParamError:  # a combination the chapter refuses with its one-line error (devmem TX on 6.12)
            reject()
        records = claims.evaluate(module.CLAIMS, results)
        drifted = [f"{r['name']}: expected {r['expected']}, observed {r['observed']} ({r['evidence']})"
                   for r in records if not r["ok"]]
        assert not drifted, f"{chapter.id} with {dict(params)}: " + "; ".join(drifted)

    check()


def test_conclusion_quotes_the_checked_numbers():
    from fraglife.chapters import refcount_removal as ch

    spec = chapters.get("01").spec
    R = ch.Results(spec.validate(dict(spec.defaults(), bytes_sent=256 * 1024)))
    text = ch.conclusion(R)
    t = R.policies.set_index("policy")
    today = t.loc["page_ref"]
    assert f"**{today.atomics_per_mib:.0f}** atomics per MiB" in text
    assert f"**{answers.format_number(today.ns_per_mib, today.ns_low, today.ns_high, 'ns/MiB')}**" in text
    assert f"**{R.worst_spanning.uaf_share:.0%}** of its pages" in text
    assert text.count("\n- ") == 2  # three points


def test_check_writes_the_record_and_fails_on_drift(tmp_path, monkeypatch):
    monkeypatch.setattr(claims, "BUILD", tmp_path)
    monkeypatch.setenv("FRAGLIFE_BUILD", str(tmp_path))
    import fraglife.paths

    monkeypatch.setattr(fraglife.paths, "BUILD", tmp_path)
    ok = Claim("two_is_even", "Two is even.", "holds", lambda r: (r % 2 == 0, {"r": r}))
    never = Claim("two_is_odd", "Two is odd.", "fails", lambda r: (r % 2 == 1, {}))
    table = claims.check("42_demo", (ok, never), 2)
    assert list(table["verdict"]) == ["ok", "ok"]
    record = json.loads((tmp_path / "claims" / "42.json").read_text())
    assert record["chapter"] == "42_demo"
    assert [(c["name"], c["observed"], c["ok"]) for c in record["claims"]] == [
        ("two_is_even", "holds", True), ("two_is_odd", "fails", True)]
    assert claims.last_run("42_demo")["two_is_even"]["evidence"] == {"r": 2}
    with pytest.raises(ClaimFailed, match='two_is_even \\(expected holds, observed fails; evidence {"r": 3}\\)'):
        claims.check("42_demo", (ok,), 3)
    assert claims.columns(claims.evaluate((ok, never), 4)) == {
        "claims_ok": 2, "claims_total": 2, "claim.two_is_even": True, "claim.two_is_odd": False,
        "evidence.two_is_even.r": 4}


def test_per_point_claims_leave_the_rest_to_the_chapter_run():
    cheap = Claim("cheap", "Cheap.", "holds", lambda r: (True, {}))
    grid = Claim("over_a_grid", "Over a grid.", "holds", lambda r: (True, {}), per_point=False)
    assert cheap.per_point and not grid.per_point
    assert claims.per_point((cheap, grid)) == ((cheap,), ("over_a_grid",))


def test_a_claim_is_declared_well():
    with pytest.raises(ValueError, match="expected 'always'"):
        Claim("x", "X.", "always", lambda r: (True, {}))
    with pytest.raises(ValueError, match="identifier"):
        Claim("not a name", "X.", "holds", lambda r: (True, {}))
    dup = Claim("x", "X.", "holds", lambda r: (True, {}))
    with pytest.raises(ValueError, match="declared twice"):
        claims.evaluate((dup, dup), None)


def test_catalogue_lists_claims_with_expected_and_last_observed(tmp_path, monkeypatch, capsys):
    from fraglife.cli import main

    monkeypatch.setattr(claims, "BUILD", tmp_path)  # no run yet: every claim "not run"
    assert main(["claims", "01"]) == 0
    out = capsys.readouterr().out
    names = [c.name for c in chapters.get("01").claims]
    assert out.startswith(f"01_refcount_removal: {len(names)} claims")
    for name in names:
        assert f"{name}" in out
    assert out.count("expected: holds") == len(names) and out.count("last observed: not run") == len(names)
    (tmp_path / "claims").mkdir()
    (tmp_path / "claims" / "01.json").write_text(json.dumps({"chapter": "01_refcount_removal", "claims": [
        {"name": names[0], "observed": "fails", "ok": False}]}))
    main(["claims", "01"])
    assert "last observed: fails (DRIFT)" in capsys.readouterr().out

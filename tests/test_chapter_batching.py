"""Chapter 04 (batching): bad parameters stop with one line, the panel re-renders, the conclusion quotes the run."""

import pytest

from fraglife import chapters, runner
from fraglife.params import ParamError

from chapter_checks import assert_refused

SPEC = chapters.get("04").spec


@pytest.mark.parametrize("name, value", [("iov_count", 0), ("iov_count", 2048), ("iov_size", 32),
                                         ("iov_layout", "diagonal"), ("resident_fraction", 1.5),
                                         ("accept_fraction", 0.0), ("thp_share", -0.1), ("bytes_sent", 1024),
                                         ("measurements", "maybe")])
def test_bad_values_give_one_line(name, value):
    assert_refused(SPEC, name, value)


def test_an_iterator_over_1_gib_is_one_line_too():
    from fraglife.chapters import batching as ch

    P = SPEC.validate(dict(SPEC.defaults(), iov_count=1024, iov_size=16 << 20))
    with pytest.raises(ParamError) as e:
        ch.Results(P)
    msg = str(e.value)
    assert "\n" not in msg and "'iov_count' x 'iov_size'" in msg and "1024 x 16777216" in msg and "expected" in msg


@pytest.fixture(scope="module")
def results():
    from fraglife.chapters import batching as ch

    return ch, ch.Results(SPEC.validate(dict(SPEC.defaults(), measurements="recorded", bytes_sent=8 << 20)))


def test_conclusion_quotes_the_checked_numbers(results):
    ch, R = results
    text = ch.conclusion(R)
    t = R.totals.set_index("strategy")
    assert f"**{t.loc['per_skb', 'ns_per_mib']:.0f} ns per MiB**" in text
    assert f"**{t.loc['batched', 'ns_per_mib']:.0f} ns**" in text
    assert ch.crossover_remark(R) in text


def test_crossover_is_where_the_lines_cross():
    import pandas as pd

    from fraglife.chapters import batching as ch

    df = pd.DataFrame([{"x": x, "strategy": s, "ns_per_mib": v} for x, a, b in ((1, 10, 10), (2, 12, 10), (3, 8, 10),
                                                                                 (4, 7, 10))
                       for s, v in (("batched", a), ("per_skb", b))])
    assert ch.crossover(df, "x") == 3
    assert ch.crossover(df.assign(ns_per_mib=10), "x") is None


def test_panel_follows_its_controls(results):
    ch, R = results
    from fraglife.views import batching as view, widgets

    panel = widgets.panel(view.controls(SPEC, R.P), lambda **c: view.panel(ch.panel_data(R.P, **c)))
    before = panel.renders
    panel.set(resident_fraction=0.5)
    assert panel.renders == before + 1 and panel.error is None
    assert "fault mapping the zero page" in set(panel.current[0].data["cause"])
    panel.set(accept_fraction=0.25, iov_layout="contiguous")
    assert "reference dropped unsent" in set(panel.current[0].data["cause"])


@pytest.mark.chapters
def test_bad_parameter_stops_chapter_04(tmp_path):
    [r] = runner.run_chapters(["04"], parameters={"04_batching": {"iov_layout": "diagonal"}}, out_dir=tmp_path)
    assert not r.ok and r.error == "ParamError"
    assert r.message == "parameter 'iov_layout' = 'diagonal' is not allowed: expected one of 'scattered', 'contiguous'"

"""Chapter 04 (batching): bad parameters stop with one line, the panel re-renders, the conclusion quotes the run."""

import pytest

from fraglife import chapters, runner
from fraglife.params import ParamError

from chapter_checks import assert_refused

SPEC = chapters.get("04").spec


@pytest.mark.parametrize("name, value", [("iov_count", 0), ("iov_count", 2048), ("iov_size", 32),
                                         ("iov_layout", "diagonal"), ("resident_fraction", 1.5),
                                         ("accept_fraction", 0.0), ("thp_share", -0.1), ("bytes_sent", 1024),
                                         ("measurements", "maybe"), ("kernel", "6.6"), ("kernel", "latest")])
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
    assert R.spans["per_skb"][0] == pytest.approx(t.loc["per_skb", "ns_per_mib"])
    assert ch.answers_text(R.spans["per_skb"], "ns/MiB") in text
    assert ch.answers_text(R.spans["batched"], "ns/MiB") in text
    assert len([line for line in text.splitlines() if line.startswith("- ")]) == 3


def test_answer_is_the_runs_numbers(results):
    ch, R = results
    a = ch.answer(R)
    t = R.totals.set_index("strategy").ns_per_mib
    assert a.bullet == "d" and a.chapter == "04_batching" and not a.provisional
    assert a.number.value == pytest.approx(t["per_skb"] - t["batched"])
    assert a.evidence.kind == "cross_checked" and a.evidence.source == "recorded"


def test_comparison_follows_the_gup_paths_recording(results):
    """The zero page is never gup-fast: one slow-path call per GUP call on layout a; one fault per untouched page;
    the one row that disagrees names the tail-skb rule."""
    from fraglife.chapters.kit import compare

    ch, R = results
    c = R.comparison
    assert list(c.columns) == compare.COLUMNS and (c.measured == "recorded").all()
    assert set(c.quantity) == set(ch.QUANTITIES) and len(c) >= 3 * 8 * 4
    assert compare.unexplained(c).empty
    a = c[c.transfer.str.endswith("/a") & (c.quantity == "slow_path_calls") & ~c.transfer.str.startswith("md5")]
    assert len(a) == 3 and (a.model == a.kernel).all()
    untouched = c[c.transfer.str.endswith("/c") & (c.quantity == "faults")]
    assert (untouched.model == 256).all() and (untouched.kernel == 256).all()
    off = c[c.agrees == False]  # noqa: E712
    assert set(off.transfer.str.split("/").str[0]) <= {"md5_64k"} and (off.reason == ch.TAIL_CALLS).all()


def test_the_6_12_table_shows_the_huge_zero_pmd(results):
    ch, R = results
    assert R.release.startswith("6.18")
    assert set(R.on_lts.workload) == {"huge_zero"}
    lts = ch.Results(SPEC.validate(dict(R.P, kernel="6.12")))
    assert lts.release == "6.12" and lts.on_lts.empty


def test_gup_is_priced_as_chapter_03_prices_it(results):
    """The same 64 KiB send from order-0 pages: chapter 04's lookup and chapter 03's sender get the same ns from
    GUP's one price (chapter 03 adds only what is not a lookup: locked_vm, forks, what pins take more)."""
    from fraglife.chapters import pinning
    from fraglife.model import costs, pagetable, pins

    ch, R = results
    look = pagetable.lookup(1, 65536, "contiguous", 1, 1.0, 0.0, 1.0, "per_skb", ch.SIZE_GOAL)
    send = pins.sender(65536, 1, 1, 1, 0, 0, "ref", pinning.SIZE_GOAL)
    ours = costs.total(ch.price(look, R.units))
    theirs = costs.total(costs.price_gup(pins.gup_work(send), R.units, 65536))
    assert ours == pytest.approx(theirs)


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
    assert "page faulted in by the lookup" in set(panel.current[0].data["cause"])
    panel.set(accept_fraction=0.25, iov_layout="contiguous")
    assert "reference dropped unsent (its put: no frag carries it)" in set(panel.current[0].data["cause"])


@pytest.mark.chapters
def test_bad_parameter_stops_chapter_04(tmp_path):
    [r] = runner.run_chapters(["04"], parameters={"04_batching": {"iov_layout": "diagonal"}}, out_dir=tmp_path)
    assert not r.ok and r.error == "ParamError"
    assert r.message == "parameter 'iov_layout' = 'diagonal' is not allowed: expected one of 'scattered', 'contiguous'"

"""Chapter 03 (pinning): bad parameters stop with one line, the panel re-renders, the conclusion quotes the run."""


import pytest

from fraglife import chapters, runner

from chapter_checks import assert_refused

SPEC = chapters.get("03").spec


@pytest.mark.parametrize("name, value", [("send_size", 1024), ("folio_pages", 3), ("fork_rate", -1.0),
                                         ("refs_per_page", 5000), ("inflight", 0), ("measurements", "maybe"),
                                         ("bytes_sent", "64M"), ("line_gbit", 0)])
def test_bad_values_give_one_line(name, value):
    assert_refused(SPEC, name, value)


@pytest.fixture(scope="module")
def results():
    from fraglife.chapters import pinning as ch

    P = SPEC.validate(dict(SPEC.defaults(), measurements="recorded", bytes_sent=8 << 20))
    return ch, ch.Results(P)


def test_conclusion_quotes_the_checked_numbers(results):
    ch, R = results
    text = ch.conclusion(R)
    t = R.totals.set_index("policy")
    assert f"**{t.loc['ref', 'ns_per_mib']:.0f} ns per MiB**" in text
    assert f"**{t.loc['pin', 'ns_per_mib']:.0f} ns**" in text
    assert "o_direct_read" in text and "msg_zerocopy_send" in text


def test_recorded_pin_table_says_it_is_recorded(results):
    ch, R = results
    assert ch.pin_table_note(R).startswith("**Recorded**") and R.pin_table.agrees.all()


def test_panel_follows_its_controls(results):
    ch, R = results
    from fraglife.views import pinning as view, widgets

    panel = widgets.panel(view.controls(SPEC, R.P, R.units["line_transfer_ns"]),
                          lambda **c: view.panel(ch.panel_data(R.P, **c)))
    before = panel.renders
    panel.set(fork_rate=100.0)
    assert panel.renders == before + 1 and panel.error is None
    assert "copy for the child at fork" in set(panel.current[0].data["cause"])
    panel.set(folio_pages=512)
    assert "pages under a PMD leaf" in set(panel.current[0].data["cause"])


@pytest.mark.chapters
def test_bad_parameter_stops_chapter_03(tmp_path):
    [r] = runner.run_chapters(["03"], parameters={"03_pinning": {"folio_pages": 3}}, out_dir=tmp_path)
    assert not r.ok and r.error == "ParamError"
    assert r.message == "parameter 'folio_pages' = 3 is not allowed: expected a power-of-two integer in [1, 512]"

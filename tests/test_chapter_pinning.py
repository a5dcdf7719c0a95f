"""Chapter 03 (pinning): bad parameters stop with one line, the panel re-renders, the conclusion quotes the run."""


import pytest

from fraglife import chapters, runner

from chapter_checks import assert_refused

SPEC = chapters.get("03").spec


@pytest.mark.parametrize("name, value", [("send_size", 1024), ("folio_pages", 3), ("fork_rate", -1.0),
                                         ("refs_per_page", 5000), ("inflight", 0), ("measurements", "maybe"),
                                         ("bytes_sent", "64M"), ("line_gbit", 0), ("kernel", "6.6"),
                                         ("kernel", 6.12)])
def test_bad_values_give_one_line(name, value):
    assert_refused(SPEC, name, value)


@pytest.fixture(scope="module")
def results():
    from fraglife.chapters import pinning as ch

    P = SPEC.validate(dict(SPEC.defaults(), measurements="recorded", bytes_sent=8 << 20))
    return ch, ch.Results(P)


def test_conclusion_quotes_the_checked_numbers(results):
    from fraglife.answers import format_number

    ch, R = results
    text = ch.conclusion(R)
    t = R.totals.set_index("policy")
    assert R.spans["ref"][0] == pytest.approx(t.loc["ref", "ns_per_mib"])
    assert format_number(*R.spans["ref"], unit="ns/MiB") in text
    assert format_number(*R.spans["pin"], unit="ns/MiB") in text
    assert format_number(*R.extra_span, unit="ns/MiB") in text
    assert len([line for line in text.splitlines() if line.startswith("- ")]) == 3


def test_answer_is_the_runs_numbers(results):
    ch, R = results
    a = ch.answer(R)
    assert a.bullet == "c" and a.chapter == "03_pinning" and not a.provisional
    assert a.number.value == pytest.approx(R.spans["pin"][0] - R.spans["ref"][0])
    assert a.number.low <= a.number.value <= a.number.high
    assert "O_DIRECT" in a.answer and "io_uring buffer registration" in a.answer
    assert a.evidence.kind == "cross_checked" and a.evidence.source == "recorded"


def test_comparison_is_the_kernel_check_format(results):
    from fraglife.chapters.kit import compare

    ch, R = results
    c = R.comparison
    assert list(c.columns[:len(compare.COLUMNS)]) == compare.COLUMNS
    assert set(c.quantity) >= {"fork_copies", "folios_reused", "write_allocs_order0", ch.HELDOUT}
    assert (c.measured == "recorded").all() and compare.unexplained(c).empty
    # the rule that decides 6.18 against 6.12: the parent's write after the child exited reuses 64 KiB folios
    row = c[(c.transfer == "64k.none.parent_child_exited") & (c.quantity == "folios_reused")].iloc[0]
    assert row.kernel == row.model == 16


def test_the_kernel_parameter_moves_only_the_versioned_rule():
    from fraglife.chapters import pinning as ch

    P = SPEC.validate(dict(SPEC.defaults(), measurements="recorded", bytes_sent=8 << 20, folio_pages=16,
                           fork_rate=100.0, kernel="6.12"))
    R = ch.Results(P)
    assert R.release == "6.12" and R.on_lts.empty
    assert R.probed_release.startswith("6.18")  # the comparison follows the kernel that counted
    new = ch.Results(SPEC.validate(dict(P, kernel="running")))
    assert new.release.startswith("6.18") and len(new.on_lts) >= 1
    assert "64 KiB folios, held by none, parent child exited writes" in set(new.on_lts.what)


def test_recorded_pin_table_says_it_is_recorded(results):
    ch, R = results
    assert ch.pin_table_note(R).startswith("**Recorded**") and R.pin_table.agrees.all()


def test_pin_summary_states_every_operation_once(results):
    """The pins probe's table in a row per pins-per-page value: every operation in one row, measured beside the
    source's prediction."""
    ch, R = results
    from fraglife.views import pinning as view

    s = view.pin_summary(R.pin_table)
    assert sorted(", ".join(s.operations).split(", ")) == sorted(R.pin_table.operation)
    assert list(s["taken as"]) == list(dict.fromkeys(R.pin_table["taken as"])) and s.agrees.all()
    assert (s["pins per page, measured"] == s["pins per page, source (v6.18)"]).all()


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
    causes = panel.current[0].data
    assert "write-protect fault, PMD reused" in set(causes["cause"])
    assert "atomics pins take beyond references (the bias or _pincount; a large folio's unpin)" in set(
        causes[causes.design == "FOLL_PIN pins"]["cause"])


@pytest.mark.chapters
def test_bad_parameter_stops_chapter_03(tmp_path):
    [r] = runner.run_chapters(["03"], parameters={"03_pinning": {"folio_pages": 3}}, out_dir=tmp_path)
    assert not r.ok and r.error == "ParamError"
    assert r.message == "parameter 'folio_pages' = 3 is not allowed: expected a power-of-two integer in [1, 512]"

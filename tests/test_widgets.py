"""fraglife.widgets.panel: live in JupyterLab, static everywhere else; driven headless here."""

from __future__ import annotations

import altair as alt
import ipywidgets as W
import nbformat
import pandas as pd
import pytest

from fraglife.views import plots, widgets


def _chart(n: int, kind: str):
    df = pd.DataFrame({"x": range(n), "y": [i * i for i in range(n)]})
    return alt.Chart(df).mark_line().encode(x="x:Q", y="y:Q").properties(title=f"{kind} n={n}")


@pytest.fixture
def panel():
    plots.setup("static")
    calls = []

    def render(n, kind):
        calls.append((n, kind))
        return _chart(n, kind)

    p = widgets.panel({"n": W.IntSlider(value=5, min=2, max=50), "kind": W.Dropdown(options=["a", "b"], value="a")},
                      render, title="Squares")
    p.calls = calls
    return p


def test_renders_once_at_the_defaults(panel):
    assert panel.calls == [(5, "a")]
    assert panel.defaults == {"n": 5, "kind": "a"} == panel.values
    assert len(panel.outputs) == 1
    assert "image/svg+xml" in panel.outputs[0]["data"]  # the book's static chart renderer


def test_setting_a_value_rerenders_the_output(panel):
    before = panel.outputs[0]["data"]["image/svg+xml"]
    panel.controls["n"].value = 9
    assert panel.calls[-1] == (9, "a")
    assert panel.current.to_dict()["title"] == "a n=9"
    after = panel.outputs[0]["data"]["image/svg+xml"]
    assert after != before and "a n=9" in after
    panel.set(kind="b")
    assert panel.calls[-1] == (9, "b") and panel.renders == 3
    assert "b n=9" in panel.outputs[0]["data"]["image/svg+xml"]


def test_static_rendering_keeps_the_default_state(panel):
    panel.set(n=20, kind="b")
    bundle, meta = panel._repr_mimebundle_()
    assert widgets.WIDGET_MIME in bundle  # JupyterLab shows the live box
    assert [s["mark"]["type"] for s in meta[plots.CHART_SPECS]] == ["line"]  # the static chart's spec, for checks
    html = bundle["text/html"]
    assert "<svg" in html and "a n=5" in html and "b n=20" not in html
    assert widgets.NOTE in html and "n=5, kind=a" in html
    assert bundle["text/plain"].startswith(widgets.NOTE)
    assert "http://" not in html.replace('xmlns="http://www.w3.org/2000/svg"', "").replace(
        'xmlns:xlink="http://www.w3.org/1999/xlink"', "")


def test_a_failing_rerender_is_shown_not_raised(panel):
    def render(n, kind):
        if n > 10:
            raise ValueError("n must be at most 10")
        return _chart(n, kind)

    p = widgets.panel({"n": W.IntSlider(value=5, max=50), "kind": W.Text(value="a")}, render)
    p.controls["n"].value = 11
    assert p.error == "ValueError: n must be at most 10"
    assert "n must be at most 10" in p.outputs[0]["data"]["text/plain"]
    p.controls["n"].value = 3
    assert p.error is None and "image/svg+xml" in p.outputs[0]["data"]


def test_a_failing_first_render_stops_the_chapter():
    with pytest.raises(ZeroDivisionError):
        widgets.panel({"x": W.IntSlider(value=0)}, lambda x: 1 / x)


def test_several_items_and_tables():
    p = widgets.panel({"n": W.IntSlider(value=3)},
                      lambda n: (pd.DataFrame({"n": [n], "sq": [n * n]}), _chart(n, "t")))
    assert len(p.outputs) == 2
    assert "<table" in p.static_html and "<svg" in p.static_html


def test_bad_arguments_say_what_is_wrong():
    with pytest.raises(TypeError, match="non-empty dict"):
        widgets.panel({}, lambda: None)
    with pytest.raises(TypeError, match="control 'n' must be an ipywidget"):
        widgets.panel({"n": 3}, lambda n: None)
    with pytest.raises(ValueError, match="not a valid keyword"):
        widgets.panel({"a-b": W.IntSlider()}, lambda **k: None)
    with pytest.raises(TypeError, match="render must be callable"):
        widgets.panel({"n": W.IntSlider()}, "chart")
    p = widgets.panel({"n": W.IntSlider()}, lambda n: None)
    with pytest.raises(KeyError, match="no control named m"):
        p.set(m=1)


def test_sliders_update_on_release_unless_asked():
    s = W.IntSlider(value=1)
    widgets.panel({"n": s}, lambda n: None)
    assert s.continuous_update is False
    s2 = W.IntSlider(value=1)
    widgets.panel({"n": s2}, lambda n: None, continuous=True)
    assert s2.continuous_update is True


def test_strip_live_leaves_the_static_rendering(panel):
    nb = nbformat.v4.new_notebook()
    nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": {}}}
    cell = nbformat.v4.new_code_cell("panel")
    bare = W.IntSlider()._repr_mimebundle_()
    cell.outputs = [nbformat.v4.new_output("display_data", data=panel._repr_mimebundle_()[0]),
                    nbformat.v4.new_output("display_data", data=bare),
                    nbformat.v4.new_output("stream", text="hello\n")]
    nb.cells = [cell]
    assert widgets.strip_live(nb) == 2
    assert "widgets" not in nb.metadata
    assert len(cell.outputs) == 2  # the bare slider had nothing static to show
    assert widgets.WIDGET_MIME not in cell.outputs[0]["data"]
    assert widgets.NOTE in cell.outputs[0]["data"]["text/html"]


def test_controls_take_their_ranges_from_the_chapter_spec():
    from fraglife import chapters
    from fraglife.model.workloads import WORKLOADS
    from fraglife.params import ParamError
    from fraglife.views import refcount_removal as view

    spec = chapters.get("01").spec
    P = spec.validate(dict(spec.defaults(), rtt_us=500.0, folio_pages=8))
    c = view.controls(spec, P, line_transfer_ns=1000.0)
    assert list(c) == ["workload", "loss_rate", "folio_pages", "rtt_us", "line_gbit", "line_transfer_ns"]
    assert list(c["workload"].options) == list(WORKLOADS) == list(spec["workload"].choices)
    assert (c["loss_rate"].min, c["loss_rate"].max) == (spec["loss_rate"].lo, spec["loss_rate"].hi)
    assert (c["rtt_us"].min, c["rtt_us"].max, c["rtt_us"].value) == (2.0, 100.0, 100.0)  # narrower, value clamped
    assert c["folio_pages"].value in (4, 16)  # the nearest option
    assert c["line_transfer_ns"].value == view.LINE_TRANSFER.hi
    whole = widgets.control(spec["cpus"], 2)
    assert (whole.min, whole.max) == (spec["cpus"].lo, spec["cpus"].hi)
    with pytest.raises(ParamError, match="'cpus' = 100 is not allowed"):
        widgets.control(spec["cpus"], 2, hi=100)
    with pytest.raises(ParamError, match="'frag_size' = 3 is not allowed"):
        widgets.control(spec["frag_size"], 4096, options=[3, 4096])


def test_each_policy_keeps_its_colour_in_every_chart():
    from fraglife.chapters import refcount_removal as ch
    from fraglife.model.policies import POLICIES

    assert ch.POLICY_ORDER == tuple(POLICIES)
    enc = plots.policy_color(ch.POLICY_ORDER).to_dict()
    assert enc["scale"]["domain"] == list(POLICIES) and enc["scale"]["range"] == plots.PALETTE[:len(POLICIES)]
    assert enc["sort"] == list(POLICIES)


def test_a_panel_takes_its_ranges_from_the_spec_its_parameters_passed():
    from fraglife import chapters
    from fraglife.params import ParamError

    spec = chapters.get("05").spec
    assert widgets.spec_of(spec.validate(spec.defaults())) is spec
    with pytest.raises(ParamError, match="validated parameters"):
        widgets.spec_of(spec.defaults())

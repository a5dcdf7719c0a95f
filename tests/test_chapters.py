"""Every chapter executes headless, keeps its claims, and stops clearly on a bad parameter."""

import json
import re
from html.parser import HTMLParser

import nbformat
import pytest

from fraglife import chapters, runner
from fraglife.paths import BUILD

pytestmark = pytest.mark.chapters


def _digest(path):
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="session")
def executed():
    before = {ch.id: _digest(ch.notebook) for ch in chapters.CHAPTERS}
    results = runner.run_chapters()
    print(runner.format_table(results))
    after = {ch.id: _digest(ch.notebook) for ch in chapters.CHAPTERS}
    assert before == after, "executing chapters must not modify the source notebooks"
    return {r.chapter: r for r in results}


@pytest.mark.parametrize("chapter", [c.id for c in chapters.CHAPTERS])
def test_chapter_runs_and_its_claims_hold(executed, chapter):
    r = executed[chapter]
    assert r.ok, r.describe()
    nb = nbformat.read(r.output, as_version=4)
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.output_type == "error"]
    assert not errors
    record = json.loads((BUILD / "claims" / f"{chapters.get(chapter).number}.json").read_text())
    assert record["claims"] and all(c["ok"] for c in record["claims"])


class _Cells(HTMLParser):
    """The text of every table cell in an HTML fragment."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.cells, self._open = [], None

    def handle_starttag(self, tag, attrs):
        if tag in ("td", "th"):
            self._open = []

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._open is not None:
            self.cells.append("".join(self._open).strip())
            self._open = None

    def handle_data(self, data):
        if self._open is not None:
            self._open.append(data)


def _outputs(r, mime: str):
    """(cell index, text) of every ``mime`` output of an executed chapter."""
    assert r.ok, r.describe()
    for i, cell in enumerate(nbformat.read(r.output, as_version=4).cells):
        for out in cell.get("outputs", []) if cell.cell_type == "code" else []:
            data = (out.get("data") or {}).get(mime)
            if data:
                yield i, "".join(data) if isinstance(data, list) else data


@pytest.mark.parametrize("chapter", [c.id for c in chapters.CHAPTERS])
def test_no_table_cell_is_cut_short(executed, chapter):
    """Tables show their full text (fraglife.views.tables): no cell ends in "..." or "…"."""
    cut = []
    for i, html in _outputs(executed[chapter], "text/html"):
        parser = _Cells()
        parser.feed(html)
        cut += [(i, text[-60:]) for text in parser.cells if text.endswith(("...", "…"))]
    assert not cut, f"{chapter}: table cells cut short (cell, text): {cut}"


@pytest.mark.parametrize("chapter", [c.id for c in chapters.CHAPTERS])
def test_no_chart_label_is_cut_short(executed, chapter):
    """Charts show their labels whole (the theme in fraglife.views.plots): no SVG text ends in "…"."""
    cut = [(i, t[-60:]) for i, svg in _outputs(executed[chapter], "image/svg+xml")
           for t in re.findall(r">([^<>]*)</text>", svg) if t.endswith("…")]
    assert not cut, f"{chapter}: chart labels cut short (cell, text): {cut}"


def test_bad_parameter_stops_the_chapter_with_one_clear_message(tmp_path):
    """Injected past the CLI (as papermill -p would), a bad value still stops at validation."""
    [r] = runner.run_chapters(["01"], parameters={"01_refcount_removal": {"loss_rate": 2.0}}, out_dir=tmp_path)
    assert not r.ok
    assert r.error == "ParamError"
    assert r.message == "parameter 'loss_rate' = 2.0 is not allowed: expected a number in [0, 0.2]"
    assert "chapters.validate" in r.source
    print(r.describe())


def test_chapter_01_claims_hold_at_the_edges_of_its_parameters(tmp_path):
    """Claims are stated for every allowed value, not only the defaults."""
    edge = {"mss": 9000, "frag_size": 512, "loss_rate": 0.2, "cpus": 1, "bytes_sent": 65536, "seed": 0,
            "workload": "physrange_send", "folio_pages": 512, "send_size": 4096, "loss_burst": 64.0,
            "rtt_us": 1.0, "txc_us": 0.0, "line_gbit": 1600, "rx_buf": 512, "measurements": "recorded"}
    [r] = runner.run_chapters(["01"], parameters={"01_refcount_removal": edge}, out_dir=tmp_path)
    assert r.ok, r.describe()


def test_chapter_01_refuses_devmem_tx_on_6_12_in_one_line():
    from fraglife.chapters import refcount_removal as ch
    from fraglife.params import ParamError

    spec = chapters.get("01").spec
    with pytest.raises(ParamError) as e:
        ch.Results(spec.validate(dict(spec.defaults(), workload="devmem_send", kernel="6.12",
                                      measurements="recorded")))
    assert str(e.value) == ("parameter 'kernel' = '6.12' is not allowed with workload 'devmem_send': 6.12 LTS has "
                            "no devmem TX (it came in 6.16)")


def test_chapter_01_on_6_12_leaves_out_devmem_and_follows_the_lts_defer_list():
    from fraglife.chapters import refcount_removal as ch

    spec = chapters.get("01").spec
    base = dict(spec.defaults(), bytes_sent=1 << 20, measurements="recorded")
    lts, now = (ch.Results(spec.validate(dict(base, kernel=k))) for k in ("6.12", "running"))
    assert lts.release == "6.12" and "devmem_send" not in lts.today and "devmem_send" in now.today
    k = lts.kernels_table.set_index(["workload", "design"])
    assert set(lts.kernel_rules["rule"]) >= {"skb_defer_lockless", "frag_ref_get_netmem"}
    # the lockless defer list pays two atomics per skb deferred where 6.12 takes one lock
    assert k.filter(like="defer list on 6.12").iloc[:, 0].loc[("rx_gro", "today")] < \
        k.filter(like="defer list on 6.18").iloc[:, 0].loc[("rx_gro", "today")]


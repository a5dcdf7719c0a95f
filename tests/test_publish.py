"""Offline slides and HTML book (fraglife.publish; the browser is fraglife.publish.browser).

Two small demo chapters, written here and executed with papermill on the
project's kernel, carry everything the real chapters may use: an altair chart,
a widgets.panel, math, a table, stderr, a link between chapters, one chapter
without slide marks and one with. They are published into a temporary folder
and checked statically; if Chromium is installed, the deck and the pages are
also opened with the network blocked (screenshots in build/screenshots/).
"""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fraglife import publish, runner
from fraglife.paths import build_dir
from fraglife.publish import browser
from fraglife.views import widgets

IDS = ["00_demo", "01_demo"]


# --------------------------------------------------------------------------- demo chapters
def _md(text, tags=(), **meta):
    c = nbformat.v4.new_markdown_cell(text)
    if tags:
        c.metadata["tags"] = list(tags)
    c.metadata.update(meta)
    return c


def _code(text, tags=(), **meta):
    c = nbformat.v4.new_code_cell(text)
    if tags:
        c.metadata["tags"] = list(tags)
    c.metadata.update(meta)
    return c


def _demo_notebooks(folder: Path) -> dict[str, Path]:
    kernelspec = {"display_name": "Python (fraglife)", "language": "python", "name": "fraglife"}
    setup = ("import altair as alt, ipywidgets as W, pandas as pd\n"
             "from fraglife.views import plots, widgets\nplots.setup();")
    chart = ("df = pd.DataFrame({'policy': ['page_ref', 'owner_skb', 'owner_frag'], 'refs': [n * 7, n, n * 2]})\n"
             "alt.Chart(df).mark_bar().encode(x='policy:N', y='refs:Q', color=plots.policy_color(df.policy))"
             ".properties(title='Demo refs per policy')")
    panel = ("def render(n, policy):\n"
             "    df = pd.DataFrame({'x': range(n), 'y': [i * (2 if policy == 'owner_skb' else 3) for i in range(n)]})\n"
             "    return alt.Chart(df).mark_line().encode(x='x:Q', y='y:Q').properties(title=f'Panel {policy} n={n}')\n"
             "widgets.panel({'n': W.IntSlider(value=n, min=2, max=40), "
             "'policy': W.Dropdown(options=['owner_skb', 'page_ref'], value='owner_skb')}, render, title='Explore')")
    nb0 = nbformat.v4.new_notebook(metadata={"kernelspec": kernelspec, "language_info": {"name": "python"}})
    nb0.cells = [
        _md("# 00 · Demo: a chapter without slide marks\n\nThe intro, with math $a^2 + b^2 = c^2$ "
            "and a link to [the next chapter](01_demo.ipynb)."),
        _code("n = 12", tags=["parameters"]),
        _code(setup),
        _md("## A chart\n\nBars in the book's colours.", tags=["talk"]),
        _code(chart),
        _md("## A panel"),
        _code(panel),
        _md("### Details\n\nA table, and a warning that stays out of the slides.", tags=["talk-backup"]),
        _code("import sys\nprint('a warning for the log', file=sys.stderr)\npd.DataFrame({'a': [1, 2], 'b': [3, 4]})"),
    ]
    nb1 = nbformat.v4.new_notebook(metadata={"kernelspec": kernelspec, "language_info": {"name": "python"}})
    nb1.cells = [
        _md("# 01 · Demo: a chapter with slide marks\n\nBack to [the first chapter](00_demo.ipynb).",
            tags=["talk"], slideshow={"slide_type": "slide"}),
        _md("Say this out loud, don't show it.", slideshow={"slide_type": "notes"}),
        _code("x = 41", tags=["parameters"], slideshow={"slide_type": "skip"}),
        _code("print('the answer is', x + 1)", tags=["show-input"], slideshow={"slide_type": "fragment"}),
        _md("## The end\n\n$$\\sum_{i=1}^{n} i = \\frac{n(n+1)}{2}$$", tags=["talk"], slideshow={"slide_type": "slide"}),
        _code("secret_setup = 1", slideshow={"slide_type": "skip"}),
    ]
    paths = {}
    for name, nb in zip(IDS, (nb0, nb1)):
        paths[name] = folder / f"{name}.ipynb"
        nbformat.write(nb, paths[name])
    return paths


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    import papermill as pm

    root = tmp_path_factory.mktemp("publish")
    src, executed = root / "book", root / "executed"
    src.mkdir()
    executed.mkdir()
    kernel = runner.ensure_kernel()
    pages = []
    for name, path in _demo_notebooks(src).items():
        pm.execute_notebook(str(path), str(executed / path.name), kernel_name=kernel, cwd=str(src),
                            execution_timeout=300, progress_bar=False,
                            kernel_manager_class=runner.kernel_manager_class())
        pages.append(publish.Page(name, f"Demo {name}", f"summary of {name}", executed / path.name))
    decks = publish.build_slides(pages, root / "slides", all_ids=IDS)
    index = publish.build_book(pages, root / "html")
    return {"root": root, "pages": pages, "decks": decks, "index": index, "executed": executed}


def _read(path) -> str:
    return Path(path).read_text(encoding="utf-8")


# --------------------------------------------------------------------------- unit
def test_headings_make_slides_when_a_chapter_marks_none():
    nb = nbformat.v4.new_notebook()
    nb.cells = [_md("# Title\ntext"), _code("p = 1", tags=["parameters"]), _code("import x"),
                _md("## Two"), _code("chart"), _md("plain"), _md("### Three")]
    nb.cells[4].outputs = [nbformat.v4.new_output("execute_result", data={"text/plain": "1"}, execution_count=1)]
    publish.mark_slides(nb)
    kinds = [(c.cell_type, c.metadata.slideshow.slide_type) for c in nb.cells]
    assert kinds == [("markdown", "slide"), ("markdown", "slide"), ("code", "-"), ("markdown", "-"),
                     ("markdown", "subslide")]
    assert nb.cells[2].metadata.transient == {"remove_source": True}
    # A reader steps through three: two slides, the second with a sub-slide below it.
    assert publish.slide_counts(nb) == (3, 2) and publish.slide_count(nb) == 3


def test_slide_counts_follow_nbconvert_rules():
    """The first shown cell starts a slide whatever its type; notes and fragments start nothing."""
    def nb_of(*kinds):
        nb = nbformat.v4.new_notebook()
        nb.cells = [_md(f"cell {i}", slideshow={"slide_type": k}) for i, k in enumerate(kinds)]
        return nb

    assert publish.slide_counts(nb_of("notes", "-", "fragment", "subslide", "notes", "slide", "subslide")) == (4, 2)
    assert publish.slide_counts(nb_of("subslide", "subslide")) == (2, 1)
    assert publish.slide_counts(nb_of("notes")) == (0, 0)


def test_a_section_too_tall_for_one_slide_continues_below():
    svg = {"image/svg+xml": "<svg></svg>"}
    nb = nbformat.v4.new_notebook()
    charts = [_code(f"chart{i}") for i in range(3)]
    for c in charts:
        c.outputs = [nbformat.v4.new_output("display_data", data=svg)]
    nb.cells = [_md("## Section\n\nOne line."), *charts, _md("Short remark.")]
    publish.mark_slides(nb)
    assert [c.metadata.slideshow.slide_type for c in nb.cells] == ["slide", "-", "subslide", "subslide", "-"]


def _remark(text: str, kind: str = "subslide"):
    """A code cell as a chapter's remark leaves it: hidden code, one markdown output."""
    c = _code("Markdown(ch.comparison_remark(R))", slideshow={"slide_type": kind})
    c.outputs = [nbformat.v4.new_output("display_data", data={"text/markdown": text, "text/plain": "<Markdown>"})]
    return c


#: What a chapter's comparison remark says when every row disagrees, each reason a paragraph of the kernel's rules.
_REASON = ("The kernel sends short skbs the model does not make: tcp_write_xmit() -> tcp_mss_split_point() returns "
           "the last whole MSS when Nagle or the window would hold the last segment, and tso_fragment() keeps the "
           "rest as a new unsent skb (net/ipv4/tcp_output.c, v6.18). ") * 3
_LONG_REMARK = ("Bytes per frag, the quantity that confirms where today's frags end: "
                + "send 21,503 B (model 21,845), " * 8 + "\n\nWhere they differ:\n\n" + "".join(
                    f"- `sender{i}`, frags per skb: model 16.74, kernel 9.18; `sender{i}`, skbs per mib: model 16.25, "
                    f"kernel 29.75. {_REASON}\n" for i in range(6)))


def test_markdown_blocks_cut_only_between_paragraphs_and_list_items():
    text = ("Lead paragraph\nits second line.\n\nWhere they differ:\n\n- one\n  continued\n\n  its own paragraph\n"
            "- two\n\n```\ncode\n\n- not an item\n```\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\nLast.")
    blocks = publish.markdown_blocks(text)
    assert "".join(blocks) == text
    assert blocks == ["Lead paragraph\nits second line.\n\n",
                      "Where they differ:\n\n- one\n  continued\n\n  its own paragraph\n",  # a lead-in stays
                      "- two\n\n", "```\ncode\n\n- not an item\n```\n\n", "| a | b |\n|---|---|\n| 1 | 2 |\n\n",
                      "Last."]
    assert publish.markdown_blocks("") == [] and publish.markdown_blocks("one line") == ["one line"]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from(["para", "para\nline", "- item", "- item\n  more", "1. item", "```\na\n\nb\n```",
                                 "| a |\n| - |", "Lead:", "", "  indented"]), max_size=12),
       st.sampled_from(["\n", "\n\n"]))
def test_markdown_blocks_join_to_the_text(parts, sep):
    text = sep.join(parts)
    assert "".join(publish.markdown_blocks(text)) == text


def test_a_remark_too_tall_for_its_slide_continues_below():
    """A remark whose length depends on the run (what disagreed, and why) goes on as sub-slides, each filling at
    most one slide, cut between its paragraphs and items; a short one, and a markdown cell, stay as they are."""
    nb = nbformat.v4.new_notebook()
    tall = _remark(_LONG_REMARK)
    nb.cells = [_md("## The model against the kernel", slideshow={"slide_type": "slide"}), _remark("Short.", "-"),
                tall, _md(_LONG_REMARK, slideshow={"slide_type": "subslide"})]
    assert publish.estimate_height(tall) > 2 * publish.SLIDE_ROOM
    publish.mark_slides(nb)
    pieces = nb.cells[2:-1]
    assert len(pieces) >= 3 and nb.cells[1].outputs[0].data["text/markdown"] == "Short."
    assert [c.metadata.slideshow.slide_type for c in nb.cells] == ["slide", "-"] + ["subslide"] * (len(pieces) + 1)
    texts = [c.outputs[0].data["text/markdown"] for c in pieces]
    assert all(publish.estimate_height(c) <= publish.SLIDE_ROOM for c in pieces)
    assert "".join(texts).split() == _LONG_REMARK.split()  # every word, once, in order
    assert "Where they differ:\n\n- `sender0`" in texts[0]  # the lead-in keeps its first item
    assert all(t.startswith("- `sender") for t in texts[1:])  # no piece starts inside an item
    assert len({c.id for c in nb.cells}) == len(nb.cells)
    assert nb.cells[-1].source == _LONG_REMARK  # authored text is the author's to fit
    # code shown with its output (show-input) stays on the first piece, which leaves it room
    shown = _remark(_LONG_REMARK)
    shown.source = "\n".join(f"line_{i} = {i}" for i in range(8))
    first, *rest = publish.continue_below(shown)
    assert "remove_source" not in first.metadata.get("transient", {}) and publish.estimate_height(first) <= \
        publish.SLIDE_ROOM
    assert rest and all(c.metadata.transient.remove_source for c in rest)
    # estimates run high: one a little past SLIDE_ROOM may fit, and stays whole
    near = _remark("\n\n".join(["A sentence of the remark, fifty characters long."] * 14))
    assert publish.SLIDE_ROOM < publish.estimate_height(near) <= publish.CUT_PAST
    assert publish.continue_below(near) == [near]


def test_marked_chapters_keep_their_marks_and_tags_rule():
    nb = nbformat.v4.new_notebook()
    nb.cells = [_md("# T", slideshow={"slide_type": "slide"}), _md("## not a slide here"),
                _code("a", tags=["show-input"]), _code("b", tags=["parameters"], slideshow={"slide_type": "slide"}),
                _code("c", slideshow={"slide_type": "skip"}), _md("x", tags=["hide-input"])]
    publish.mark_slides(nb)
    assert [c.metadata.slideshow.slide_type for c in nb.cells] == ["slide", "-", "-", "-"]
    assert "transient" not in nb.cells[2].metadata  # show-input keeps the code
    assert nb.cells[3].metadata.transient == {"remove_source": True}


def test_stderr_is_left_out_of_slides():
    nb = nbformat.v4.new_notebook()
    c = _code("warn")
    c.outputs = [nbformat.v4.new_output("stream", name="stderr", text="careful\n")]
    nb.cells = [_md("# T"), c]
    publish.mark_slides(nb)
    assert len(nb.cells) == 1


def test_chapter_links_follow_the_export():
    nb = nbformat.v4.new_notebook()
    nb.cells = [_md("See [one](01_demo.ipynb), [gone](07_x.ipynb) and (00_demo.ipynb).")]
    out = nbformat.v4.new_output("display_data", data={"text/html": '<a href="01_demo.ipynb">x</a>'})
    md = nbformat.v4.new_output("display_data", data={"text/markdown": "as [one](01_demo.ipynb) said"})
    nb.cells.append(_code("t"))
    nb.cells[1].outputs = [out, md]
    publish.rewrite_links(nb, IDS, ".slides.html")
    assert nb.cells[0].source == "See [one](01_demo.slides.html), [gone](07_x.ipynb) and (00_demo.slides.html)."
    assert nb.cells[1].outputs[0].data["text/html"] == '<a href="01_demo.slides.html">x</a>'
    assert nb.cells[1].outputs[1].data["text/markdown"] == "as [one](01_demo.slides.html) said"


def test_every_cdn_url_points_at_a_local_copy():
    exporter = publish.slides.make_exporter()
    urls = {
        "reveal": exporter.reveal_url_prefix, "require.js": exporter.require_js_url,
        "MathJax": exporter.mathjax_url, "widgets": exporter.jupyter_widgets_base_url,
        "widget renderer": exporter.widget_renderer_url, "font-awesome": exporter.font_awesome_url,
        "jQuery": exporter.jquery_url, "mermaid": exporter.mermaid_js_url,
    }
    for name, url in urls.items():
        assert not re.match(r"(https?:)?//", url), f"{name} still loads from {url}"
        assert url.startswith(publish.VENDOR_DIR), f"{name}: {url}"
    assert exporter.reveal_theme == "white"  # 'simple' imports Google fonts
    assert exporter.template_name == "fraglife_reveal"


def test_reveal_major_matches_the_template():
    versions = publish.check_vendor()
    assert int(versions["reveal.js"].split(".")[0]) == publish.template_reveal_major() == 4


def test_audit_finds_what_would_load_from_the_network(tmp_path):
    (tmp_path / "here.js").write_text("")
    (tmp_path / "s.css").write_text("@import url(https://fonts.googleapis.com/css?family=Lato);\n"
                                    "/* https://example.com in a comment is fine */ a { background: url(img.png) }")
    page = tmp_path / "p.html"
    page.write_text("""<html><head>
<script src="here.js"></script>
<script src="https://unpkg.com/reveal.js@4.0.2/dist/reveal.js"></script>
<link rel="stylesheet" href="//cdnjs.cloudflare.com/font-awesome.css">
<link rel="stylesheet" href="s.css">
<link rel="canonical" href="https://example.org/book/">
<style>@import url("https://fonts.googleapis.com/css?family=News+Cycle");</style>
<script>var u = 'https://cdnjs.cloudflare.com/ajax/libs/require.js/2.1.10/require.min.js'; // https://ok.example
</script>
<script type="module">import mermaid from "https://cdn.example/mermaid.mjs";</script>
</head><body>
<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink"><image href="https://x.example/i.png"/></svg>
<img srcset="a.png 1x, https://x.example/b.png 2x">
<a href="https://lore.kernel.org/r/x">a link the reader follows</a>
<a href="missing.html">dead</a> <a href="#nowhere">x</a> <a href="#here" id="here">ok</a>
<script src="gone.js"></script>
</body></html>""")
    problems = publish.audit([page])
    text = "\n".join(problems)
    for bad in ("unpkg.com/reveal.js", "//cdnjs.cloudflare.com/font-awesome.css", "News+Cycle",
                "require.min.js", "cdn.example/mermaid.mjs", "x.example/i.png", "x.example/b.png",
                "fonts.googleapis.com/css?family=Lato", "img.png does not exist", "a.png does not exist",
                "missing.html leads nowhere", "#nowhere", "gone.js does not exist"):
        assert bad in text, f"{bad} not reported in:\n{text}"
    for fine in ("lore.kernel.org", "w3.org", "example.org/book", "ok.example", "here.js", "#here", "example.com"):
        assert fine not in text, f"{fine} wrongly reported:\n{text}"


# --------------------------------------------------------------------------- integration
def test_executed_notebooks_carry_static_charts_and_the_panel(demo):
    nb = nbformat.read(demo["executed"] / "00_demo.ipynb", as_version=4)
    mimes = [set(o.get("data", {})) for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert {"image/svg+xml"} <= mimes[0]  # plots.setup(): vl-convert SVG, no JavaScript
    assert {widgets.WIDGET_MIME, "text/html"} <= mimes[1]  # live panel + its static rendering
    assert "widgets" in nb.metadata  # papermill keeps widget state; the exports drop it


def test_one_deck_per_chapter_and_an_index(demo):
    root = demo["root"] / "slides"
    assert [p.name for p in demo["decks"]] == ["00_demo.slides.html", "01_demo.slides.html"]
    index = _read(root / "index.html")
    assert 'href="00_demo.slides.html"' in index and 'href="01_demo.slides.html"' in index
    assert (root / "_vendor/reveal.js/dist/reveal.js").exists()
    assert (root / "_vendor/mathjax/MathJax.js").exists()


def test_the_index_counts_what_a_reader_steps_through(demo):
    """Each deck's count in the index: its slides plus sub-slides, as the deck's HTML and the notebook's marks
    give them (the browser test below checks reveal.js agrees)."""
    index = _read(demo["root"] / "slides/index.html")
    shown = dict(re.findall(r'href="(\d\d_\w+)\.slides\.html">.*?data-slides="(\d+)"', index))
    for page, deck in zip(demo["pages"], demo["decks"]):
        nb = nbformat.read(page.executed, as_version=4)
        publish.prepare(nb)
        publish.mark_slides(nb)
        assert int(shown[page.id]) == publish.deck_counts(deck)[0] == publish.slide_count(nb), page.id
    assert publish.deck_counts(demo["decks"][0]) == (4, 3)  # 00_demo: three headings, one sub-slide
    assert "4 slides (1 of them sub-slides" in index


def test_decks_pull_nothing_from_the_network(demo):
    pages = [*demo["decks"], demo["root"] / "slides/index.html"]
    assert publish.audit(pages) == []
    for deck in demo["decks"]:
        text = _read(deck)
        for ref in re.findall(r"""(?:src|href)\s*=\s*["']([^"']+)""", text):
            assert not re.match(r"(https?:)?//", ref) or "lore.kernel.org" in ref, f"{deck.name}: {ref}"
        assert "widget-state+json" not in text and "embed-amd" not in text


def test_deck_content(demo):
    d0, d1 = (_read(p) for p in demo["decks"])
    # Charts are SVG from vl-convert (nbconvert embeds them as data: images), in the book's palette.
    import base64

    svgs = [base64.b64decode(b).decode() for b in re.findall(r"data:image/svg\+xml;base64,([A-Za-z0-9+/=]+)", d0)]
    assert any("Demo refs per policy" in s and "#0072B2".lower() in s.lower() for s in svgs)
    # The panel is its static rendering plus the note.
    assert widgets.NOTE in d0 and "n=12, policy=owner_skb" in d0
    # Code is hidden (setup, parameters), stderr left out, links follow the export.
    assert "plots.setup" not in d0 and "n = 12" not in d0 and "a warning for the log" not in d0
    assert 'href="01_demo.slides.html"' in d0
    # Marked chapter: its show-input cell keeps its code, notes become speaker notes, skips go.
    assert "the answer is" in d1 and 'class="notes"' in d1
    assert "secret_setup" not in d1 and 'href="00_demo.slides.html"' in d1


def test_book_has_toc_pages_outputs_and_links(demo):
    html_dir = demo["root"] / "html"
    index = _read(demo["index"])
    assert 'href="00_demo.html"' in index and 'href="01_demo.html"' in index
    p0 = _read(html_dir / "00_demo.html")
    assert "<svg" in p0 and widgets.NOTE in p0 and "Demo refs per policy" in p0
    assert 'href="01_demo.html"' in p0  # the notebook link became a page link
    assert "THEBE" not in p0 and "thebe" not in p0.lower().replace("sphinx-thebe", "")
    assert "_static/vendor/mathjax/MathJax.js" in p0
    assert publish.audit(sorted(html_dir.glob("*.html"))) == []


# --------------------------------------------------------------------------- browser
@pytest.fixture(scope="module")
def chromium():
    reason = browser.missing()
    if reason:
        pytest.skip(f"{reason}; `make test-offline` installs it and runs the browser checks")
    with browser.offline_browser() as b:
        yield b


@pytest.mark.browser
def test_deck_renders_offline_in_chromium(demo, chromium):
    shots = build_dir("screenshots")
    tab = chromium.open(browser.file_url(demo["decks"][0]))
    try:
        tab.wait_for("document.querySelector('.reveal.ready') !== null")
        assert tab.evaluate("document.querySelectorAll('.reveal .slides > section').length") == 3
        tab.screenshot(shots / "demo-deck-1.png")
        tab.evaluate("location.hash = '#/1'")
        # The chart slide shows a drawn SVG.
        width = tab.wait_for("Math.max(...[...document.querySelectorAll('section.present svg, section.present img')]"
                             ".map(s => s.getBoundingClientRect().width), 0) > 100 && 1")
        assert width
        tab.screenshot(shots / "demo-deck-2.png")
        tab.evaluate("location.hash = '#/0'")
        tab.wait_for("document.querySelectorAll('.MathJax_CHTML, .mjx-chtml').length > 0")
        assert tab.evaluate("Reveal.getTotalSlides()") == publish.deck_counts(demo["decks"][0])[0]
        assert tab.problems() == []
    finally:
        tab.close()


# --------------------------------------------------------------------------- slide fit (fraglife.publish.fit)
def _fit_deck(tmp_path) -> Path:
    """A deck with a slide that fits, one too tall, one with a table too wide and one with a scroll box."""
    nb = nbformat.v4.new_notebook(metadata={"kernelspec": {"name": "fraglife", "display_name": "fraglife",
                                                           "language": "python"}})
    long = "".join(f"<tr><td>row {i}</td><td>{i}</td></tr>" for i in range(60))
    wide = "<tr>" + "".join(f'<td style="white-space:nowrap">column number {i} of a wide table</td>'
                            for i in range(12)) + "</tr>"
    boxed = f'<div style="height:200px;overflow:auto"><table>{long}</table></div>'
    cells = [_md("## Fits\n\nOne line."), _md("## Too tall"), _code("tall"), _md("## Too wide"), _code("wide"),
             _md("## Scrolls"), _code("boxed")]
    for cell, table in ((cells[2], f"<table>{long}</table>"), (cells[4], f"<table>{wide}</table>"),
                        (cells[6], boxed)):
        cell.outputs = [nbformat.v4.new_output("display_data", data={"text/html": table})]
    for c in cells:
        c.metadata["slideshow"] = {"slide_type": "slide" if c.cell_type == "markdown" else "-"}
    nb.cells = cells
    path = tmp_path / "00_fit.ipynb"
    nbformat.write(nb, path)
    page = publish.Page("00_fit", "Fit", "slides that fit and do not", path)
    return publish.build_slides([page], tmp_path / "slides", all_ids=["00_fit"])[0]


@pytest.mark.browser
def test_slides_that_do_not_fit_are_measured_and_named(tmp_path, chromium):
    from fraglife.publish import fit

    deck = _fit_deck(tmp_path)
    result = fit.measure_deck(chromium, deck)
    assert result.problems == []
    by_title = {s.title: s for s in result.slides}
    assert list(by_title) == ["Fits", "Too tall", "Too wide", "Scrolls"]
    assert by_title["Fits"].fits and by_title["Scrolls"].height <= fit.HEIGHT
    tall, wide, boxed = by_title["Too tall"], by_title["Too wide"], by_title["Scrolls"]
    assert tall.height > 1.5 * fit.HEIGHT and not tall.boxes  # the table shows whole: no scroll box around it
    assert wide.width > fit.WIDTH and [b["kind"] for b in wide.boxes] == ["wide"]
    assert [b["kind"] for b in boxed.boxes] == ["scrolls"] and boxed.boxes[0]["box_height"] == 200
    assert [s.where for s in result.misfits] == ["2", "3", "4"]
    assert "too tall" in tall.describe() and "scrolls" in boxed.describe()
    text = fit.report([result])
    assert text.startswith("00_fit.slides.html: 4 slides, 3 do not fit 1280 x 760") and "slide 3 (Too wide)" in text


@pytest.mark.browser
def test_a_remark_continued_below_fits_every_sub_slide(tmp_path, chromium):
    """The heights :func:`continue_below` cuts by are estimates; Chromium measures what they give."""
    from fraglife.publish import fit

    nb = nbformat.v4.new_notebook(metadata={"kernelspec": {"name": "fraglife", "display_name": "fraglife",
                                                           "language": "python"}})
    nb.cells = [_md("## The model against the kernel\n\nFour senders over veth.", slideshow={"slide_type": "slide"}),
                _remark(_LONG_REMARK), _md("## Which kernel", slideshow={"slide_type": "slide"})]
    path = tmp_path / "00_remark.ipynb"
    nbformat.write(nb, path)
    [deck] = publish.build_slides([publish.Page("00_remark", "Remark", "a long remark", path)], tmp_path / "slides",
                                  all_ids=["00_remark"])
    result = fit.measure_deck(chromium, deck)
    assert result.problems == [] and result.misfits == [], fit.report([result])
    titles = [s.title for s in result.slides]
    assert titles[0] == "The model against the kernel" and titles[-1] == "Which kernel"
    assert len(titles) >= 5 and set(titles[1:-1]) == {"The model against the kernel (continued)"}


def test_a_misfit_says_where_and_by_how_much():
    from fraglife.publish import fit

    s = fit.SlideSize.of("03_pinning.slides.html", {"index": 7, "h": 5, "v": 2, "title": "Costs", "width": 1280,
                                                    "height": 1679, "boxes": []})
    assert s.where == "6.3" and s.over == (0, 919) and not s.fits
    assert s.describe() == "slide 6.3 (Costs): 1280 x 1679 px; 919 px too tall (2.2 screens)"
    box = {"kind": "scrolls", "what": "table (a, b, ...) of 40 rows", "width": 900, "height": 1200, "box_width": 900,
           "box_height": 300}
    boxed = fit.SlideSize.of("d", {"index": 0, "width": 1280, "height": 700, "title": "", "boxes": [box]})
    assert not boxed.fits and boxed.describe() == ("slide 1 (untitled): 1280 x 700 px; table (a, b, ...) of 40 rows "
                                                   "scrolls: 900 x 1200 px in a 900 x 300 box")


@pytest.mark.browser
def test_book_renders_offline_in_chromium(demo, chromium):
    shots = build_dir("screenshots")
    for page, shot in ((demo["index"], "demo-book-index.png"), (demo["root"] / "html/00_demo.html", "demo-book-00.png")):
        tab = chromium.open(browser.file_url(page))
        tab.screenshot(shots / shot)
        assert tab.problems() == [], page
        tab.close()
    tab = chromium.open(browser.file_url(demo["root"] / "html/01_demo.html"))
    tab.wait_for("document.querySelectorAll('.MathJax_CHTML, .mjx-chtml').length > 0")
    assert tab.problems() == []
    tab.close()


@pytest.mark.browser
def test_a_page_that_reaches_for_the_network_is_caught(tmp_path, chromium):
    """The checks above mean something: a request off the disk, a script error and a console error all show."""
    page = tmp_path / "bad.html"
    page.write_text('<html><body><img src="https://example.org/x.png"><script>console.error("boom");'
                    'undefined_function();</script></body></html>')
    tab = chromium.open(browser.file_url(page))
    problems = "\n".join(tab.problems())
    tab.close()
    assert "requested from the network: https://example.org/x.png" in problems
    assert "undefined_function" in problems and "console error: boom" in problems


def test_a_link_to_a_missing_chapter_fails_both_builds(tmp_path):
    nb = nbformat.v4.new_notebook(metadata={"kernelspec": {"name": "fraglife", "display_name": "fraglife",
                                                           "language": "python"}})
    nb.cells = [_md("# 00 · Lonely\n\nSee [the missing chapter](07_missing.ipynb).")]
    path = tmp_path / "00_lonely.ipynb"
    nbformat.write(nb, path)
    page = publish.Page("00_lonely", "Lonely", "a page that links nowhere", path)
    with pytest.raises(publish.PublishError, match="07_missing"):
        publish.build_slides([page], tmp_path / "slides", all_ids=["00_lonely", "07_missing"])
    with pytest.raises(publish.PublishError, match="07_missing"):
        publish.build_book([page], tmp_path / "html")


def test_build_files_ship_with_the_package():
    """What slides and book read at build time is package data, found beside the code (not in a checkout)."""
    import fnmatch
    import tomllib

    from fraglife.paths import ROOT

    patterns = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    package = Path(publish.__file__).parent
    data = [p for p in (package / "data").rglob("*") if p.is_file() and "__pycache__" not in p.parts]
    assert data
    for f in data:
        assert any(fnmatch.fnmatch(f.relative_to(package).as_posix(), pat) for pat in patterns["fraglife.publish"]), f
    for f in (publish.slides.NBCONVERT_CONFIG, publish.book.BOOK_CONFIG, publish.book.BOOK_CSS):
        assert f.is_file() and package in f.parents
    assert "fraglife.publish.sphinx_offline" in publish.book.BOOK_CONFIG.read_text()


# --------------------------------------------------------------------------- the talk (fraglife talk)
def _pdf_pages(path) -> int:
    return len(re.findall(rb"/Type\s*/Page\b(?!s)", Path(path).read_bytes()))


@pytest.fixture(scope="module")
def talk(demo):
    return publish.build_talk(demo["pages"], demo["root"] / "talk", minutes=10, pdf=False)


def test_talk_takes_the_tagged_slides_in_book_order_and_backups_after_the_end(talk):
    kinds = [(s.kind, s.title) for s in talk.slides]
    assert kinds == [("title", "Title"), ("thread", "The thread"), ("chapter", "00 · A chart"),
                     ("chapter", "01 · Demo: a chapter with slide marks"), ("chapter", "01 · The end"),
                     ("end", "Run it, change it, check it"), ("backup", "Backup"), ("backup", "00 · Details")]
    text = _read(talk.deck)
    # The chart came with its heading; notes became speaker notes.
    import base64

    svgs = [base64.b64decode(b).decode() for b in re.findall(r"data:image/svg\+xml;base64,([A-Za-z0-9+/=]+)", text)]
    assert any("Demo refs per policy" in svg for svg in svgs) and "Say this out loud" in text
    assert 'class="notes"' in text and "Plan:</strong> slide 3 of 6" in text
    # One page on its own: chapter links are plain text, and nothing loads from the network.
    assert ".ipynb" not in text and publish.audit([talk.deck]) == []
    assert (talk.deck.parent / "_vendor/reveal.js/dist/reveal.js").exists()


def test_talk_timing_plan_fills_the_target_and_reaches_the_speaker_view(talk):
    main = [s for s in talk.slides if s.main]
    assert sum(s.seconds for s in main) == 600 and all(s.seconds >= 5 for s in main)
    assert [s.start for s in main] == [sum(t.seconds for t in main[:i]) for i in range(len(main))]
    assert all(s.seconds == 0 for s in talk.slides if not s.main)
    # Weighted: the thread gets three times the title's share.
    assert abs(main[1].seconds - 3 * main[0].seconds) <= 5
    text = _read(talk.deck)
    assert "totalTime: 600" in text
    assert sorted(int(t) for t in re.findall(r'<section [^>]*data-timing="(\d+)"', text))[-1] == max(s.seconds for s in main)
    plan = (talk.deck.parent / "plan.txt").read_text()
    assert plan.startswith("talk: 6 main slides for 10:00, 2 backup slides") and "00 · A chart" in plan


def test_a_chapter_without_talk_marks_is_left_out_with_a_note(tmp_path):
    nb = nbformat.v4.new_notebook(metadata={"kernelspec": {"name": "fraglife", "display_name": "fraglife",
                                                           "language": "python"}})
    nb.cells = [_md("# 00 · Quiet\n\nNo slide here is marked for the talk.")]
    nbformat.write(nb, tmp_path / "00_quiet.ipynb")
    page = publish.Page("00_quiet", "Quiet", "a chapter with no talk marks", tmp_path / "00_quiet.ipynb")
    t = publish.build_talk([page], tmp_path / "talk", pdf=False)
    assert [s.kind for s in t.slides] == ["title", "thread", "end"]
    assert any("00_quiet" in n and "left out" in n for n in t.notes)


def test_talk_refuses_a_bad_length(demo, tmp_path):
    for bad in (0, 0.5, 500, "25"):
        with pytest.raises(publish.PublishError, match=r"parameter 'minutes' = .* is not allowed: expected a number in \[1, 240\]"):
            publish.build_talk(demo["pages"], tmp_path, minutes=bad, pdf=False)


def test_talk_claims_come_from_the_last_run_and_split_over_slides(monkeypatch):
    from fraglife import chapters
    from fraglife.publish import talk as talk_mod

    overview, refs = chapters.get("00"), chapters.get("01")
    runs = {refs.id: {c.name: {"statement": c.statement, "observed": c.expected, "ok": True} for c in refs.claims}}
    monkeypatch.setattr(talk_mod.claims_lib, "last_run", lambda cid: runs.get(cid, {}))
    rows, notes = talk_mod.claim_rows([overview, refs])
    # the overview's TALK_CLAIMS is empty; chapter 01's chooses, in its own order
    assert [r["claim"] for r in rows] == list(refs.module().TALK_CLAIMS)
    assert notes == [] and all(r["ok"] for r in rows)
    runs.clear()
    rows, notes = talk_mod.claim_rows([refs])
    assert all(r["observed"] == "not run" for r in rows) and len(notes) == len(rows)
    many = [dict(rows[0], statement="x" * 170) for _ in range(20)]
    slides = talk_mod.claims_slides(many)
    assert len(slides) > 1 and slides[0].title.endswith(f"(1/{len(slides)})")
    assert sum(s.cells[0].source.count("<tr>") - 1 for s in slides) == 20


@pytest.mark.browser
def test_talk_fits_its_slides_prints_a_handout_and_works_offline(demo, chromium, tmp_path):
    t = publish.build_talk(demo["pages"], tmp_path / "talk", minutes=10)
    assert t.problems == []
    assert t.pdf and _pdf_pages(t.pdf) == len(t.slides)
    tab = chromium.open(browser.file_url(t.deck), viewport=(1280, 760))
    try:
        sizes = publish.talk.measure(tab)
        assert len(sizes) == len(t.slides) and publish.talk.too_big(sizes) == []
        assert tab.evaluate("Reveal.getConfig().totalTime") == 600
        assert tab.problems() == []
    finally:
        tab.close()


def test_a_slide_too_tall_for_the_talk_is_named():
    sizes = [{"index": 0, "height": 700, "width": 1280, "title": "fine"},
             {"index": 1, "height": 900, "width": 1280, "title": "Where today's refs come from"}]
    assert publish.talk.too_big(sizes) == ["slide 2 (Where today's refs come from) is 1280 x 900 px; "
                                           "a slide has 1280 x 760: shorten or split it"]


def test_speaker_notes_fold_away_in_the_book():
    """A deck's notes cell becomes a folded "For the speaker" aside in the book; other cells stay as written."""
    from fraglife.publish.book import NOTES_TITLE, speaker_notes_as_asides

    notes = nbformat.v4.new_markdown_cell("Speaker notes: say the number twice.")
    notes.metadata["slideshow"] = {"slide_type": "notes"}
    text = nbformat.v4.new_markdown_cell("Speaker notes are not this cell's business.")
    nb = nbformat.v4.new_notebook(cells=[notes, text])
    speaker_notes_as_asides(nb)
    assert nb.cells[0].source == (f":::{{admonition}} {NOTES_TITLE}\n:class: dropdown fraglife-notes\n"
                                  "Say the number twice.\n:::")
    assert nb.cells[1].source == "Speaker notes are not this cell's business."

"""Tables show every cell whole and wrapped, the same in JupyterLab, the book and the decks."""

from html import escape

import pandas as pd

from fraglife.views import tables

LONG = "tcp_sendmsg_locked() -> skb_zerocopy_iter_stream() -> zerocopy_fill_skb_from_iter() " * 2
SHOWN = escape(LONG.strip(), quote=False)


def test_long_text_is_shown_whole_and_wrapped():
    df = pd.DataFrame({"path": [LONG.strip(), "short"], "refs": [1.5, 2.0], "flag": [True, False]})
    html = tables.to_html(df)
    assert SHOWN in html and "..." not in html and "…" not in html
    assert f'<td style="{tables.TEXT}">{SHOWN}</td>' in html
    assert f'<td style="{tables.NUMBER}">1.5</td>' in html
    assert f'<td style="{tables.TEXT}">True</td>' in html  # booleans read as words, left
    assert "white-space:normal" in tables.TEXT and "text-align:right" in tables.NUMBER
    assert "<style" not in html  # JupyterLab drops <style> in untrusted notebooks; inline styles stay


def test_headers_follow_their_columns_and_odd_shapes_render():
    df = pd.DataFrame({"name": ["a"], "n": [1]})
    head = tables.to_html(df).split("<tbody>")[0]
    assert f'<th style="{tables.HEAD["left"]}">name</th>' in head
    assert f'<th style="{tables.HEAD["right"]}">n</th>' in head
    wide = pd.DataFrame([[1, "x"]], columns=pd.MultiIndex.from_tuples([("a", "n"), ("a", "s")]))
    assert "<td" in tables.to_html(wide)
    assert "<table" in tables.to_html(pd.DataFrame())


def test_setup_lifts_pandas_truncation():
    with pd.option_context("display.max_colwidth", 50):
        tables.setup()
        assert pd.get_option("display.max_colwidth") is None
        assert SHOWN in pd.DataFrame({"p": [LONG.strip()]})._repr_html_()

"""Tables that show all they hold: no cell cut to "...", long text wrapped.

:func:`setup` (called by ``plots.setup()``, which every chapter runs first) is
the one place that decides how a DataFrame looks in every chapter:

* pandas shows the full text of every cell, every column, and up to
  :data:`MAX_ROWS` rows (a longer table should be aggregated, not shown);
* a DataFrame's HTML carries its own inline styles: text left-aligned and
  wrapped, numbers right-aligned, rows top-aligned. Inline styles survive
  JupyterLab's sanitizer (a ``<style>`` block does not, in a notebook opened
  untrusted) and travel unchanged into the executed notebook, the HTML book
  and the slide decks, so a table reads the same everywhere.
"""

from __future__ import annotations

import itertools
import re

import pandas as pd

MAX_ROWS = 200

TEXT = "text-align:left;vertical-align:top;white-space:normal;overflow-wrap:break-word"
NUMBER = "text-align:right;vertical-align:top;white-space:nowrap"
INDEX = "text-align:left;vertical-align:top"
HEAD = {"left": "text-align:left;vertical-align:bottom", "right": "text-align:right;vertical-align:bottom"}

_ROW = re.compile(r"<tr[^>]*>.*?</tr>", re.S)
_TD = re.compile(r"<td>")
_TH = re.compile(r"<th>")


def _numeric(df: pd.DataFrame) -> list[bool]:
    return [pd.api.types.is_numeric_dtype(t) and not pd.api.types.is_bool_dtype(t) for t in df.dtypes]


def to_html(df: pd.DataFrame) -> str:
    """The DataFrame as an HTML table with inline styles (see the module docstring)."""
    numeric = _numeric(df)
    html = df.to_html(max_rows=MAX_ROWS, max_cols=None, border=0, classes="fraglife-table")
    head, sep, body = html.partition("<tbody>")

    def head_row(m: re.Match) -> str:
        row = m.group(0).replace('<tr style="text-align: right;">', "<tr>")
        ths = _TH.findall(row)
        # The last len(columns) header cells name the columns (single-level columns); the rest, the index.
        aligns = ["left"] * (len(ths) - len(numeric)) + ["right" if n else "left" for n in numeric]
        if len(aligns) != len(ths) or isinstance(df.columns, pd.MultiIndex):
            aligns = ["left"] * len(ths)
        it = iter(aligns)
        return _TH.sub(lambda _: f'<th style="{HEAD[next(it)]}">', row)

    def body_row(m: re.Match) -> str:
        k = itertools.count()
        row = _TD.sub(lambda _: f'<td style="{NUMBER if numeric[next(k) % len(numeric)] else TEXT}">', m.group(0))
        return _TH.sub(f'<th style="{INDEX}">', row)

    head = _ROW.sub(head_row, head)
    body = _ROW.sub(body_row, body) if numeric else body
    return head + sep + body


def setup() -> None:
    """Full, wrapped tables for the running kernel (and plain pandas options outside one)."""
    pd.set_option("display.max_colwidth", None)
    pd.set_option("display.max_columns", None)
    pd.set_option("display.max_rows", MAX_ROWS)
    pd.set_option("display.width", 120)
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - IPython comes with ipykernel
        return
    shell = get_ipython()
    if shell is not None:
        shell.display_formatter.formatters["text/html"].for_type(pd.DataFrame, to_html)

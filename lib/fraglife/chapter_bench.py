"""``fraglife bench`` section "chapters": each written chapter's headless run time and panel re-render time.

``run_s``: one headless execution of the notebook through the runner (papermill, the
project's kernel), wall seconds, numba caches warm. ``panel_ms``: the median of a few
re-renders of the chapter's control panel at its defaults (model and chart, as when a
reader moves a control), built by ``views/NAME.py``'s ``make_panel(ch, P, R)``; a
chapter without one reports ``None``. The design's targets (design.md): about 15 s and at
most 250 ms; nothing here asserts them.
"""

from __future__ import annotations

import importlib
import statistics
import tempfile
import time
from pathlib import Path

from . import chapters

PANEL_REPEATS = 5


def panel_ms(chapter: chapters.Chapter, repeats: int = PANEL_REPEATS) -> float | None:
    """Median milliseconds of a re-render of the chapter's panel at its default parameters."""
    from .views import plots

    module = chapter.module()
    try:
        view = importlib.import_module(chapter.view_name)
    except ModuleNotFoundError:
        return None
    if module is None or not hasattr(view, "make_panel") or not hasattr(module, "Results"):
        return None
    plots.setup()
    P = chapter.spec.validate(chapter.spec.defaults())
    panel = view.make_panel(module, P, module.Results(P))
    panel.refresh()  # the first re-render pays caches; the reader's later ones do not
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        panel.refresh()
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def run_s(chapter: chapters.Chapter) -> float | None:
    """Seconds of one headless run of the chapter's notebook (None if it failed)."""
    from . import runner

    with tempfile.TemporaryDirectory(prefix="fraglife-bench-") as tmp:
        (result,) = runner.run_chapters([chapter.id], out_dir=Path(tmp), jobs=1)
    return round(result.seconds, 2) if result.ok else None


def bench_section(args=None) -> dict:
    """{"NN": {"panel_ms": ..., "run_s": ...}} for every chapter whose notebook exists."""
    out = {}
    for ch in chapters.CHAPTERS:
        if not ch.notebook.exists():
            continue
        out[ch.number] = {"panel_ms": panel_ms(ch), "run_s": run_s(ch)}
    return out

"""Do the chapter decks fit their slides? Every slide and sub-slide measured (fraglife.publish.fit).

Decks are built into a temporary folder from the chapters executed in build/executed/ (`make test`
executes them first; skipped without an execution of one build, or without Chromium) and opened
offline in headless Chromium. The slides that do not fit 1280 x 760 are listed
(build/checks/slide-fit.txt) and fail the test (listed only with FRAGLIFE_STRICT_FIT=0); `make test-offline` measures
the decks it publishes the same way (tests/test_publish_offline.py).
"""

from __future__ import annotations

import pytest
from fit_checks import report_fit

from fraglife import publish
from fraglife.publish import browser, fit

pytestmark = pytest.mark.browser


def test_every_chapter_deck_fits_its_slides(tmp_path):
    reason = browser.missing()
    if reason:
        pytest.skip(f"{reason}; `make chromium`")
    pages, _ = publish.executed_pages(None, run=False)
    pages = [p for p in pages if p.executed.exists()]
    if not pages:
        pytest.skip("no executed chapter in build/executed: run `fraglife run` (or `make test`)")
    try:
        decks = publish.build_slides(pages, tmp_path / "slides", all_ids=[p.id for p in pages])
    except publish.PublishError as e:
        pytest.skip(f"build/executed cannot be published as it is: {e}")
    fits = fit.check_decks(decks)
    assert [f.deck for f in fits] == decks and all(f.slides for f in fits)
    # The index counts what the measurement stepped through.
    assert [publish.deck_counts(d)[0] for d in decks] == [len(f.slides) for f in fits]
    report_fit(fits, "slide-fit.txt")

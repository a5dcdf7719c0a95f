"""What the slide-fit tests share: list the slides that do not fit, and fail on them only when asked.

FRAGLIFE_STRICT_FIT=1 (`make test-offline STRICT_FIT=1`) turns the list into a failure; until then it
is written to build/checks/ and summarised as a warning, so `make test` and `make test-offline` pass
while the chapters split their tall slides.
"""

from __future__ import annotations

import os
import warnings

from fraglife.paths import build_dir
from fraglife.publish import fit


def strict() -> bool:
    return os.environ.get("FRAGLIFE_STRICT_FIT") == "1"


def report_fit(fits: list, name: str) -> str:
    """List the slides that do not fit in build/checks/NAME; fail on them only with FRAGLIFE_STRICT_FIT=1. A deck
    that did not load cleanly fails either way. Returns the list."""
    text = fit.report(fits)
    out = build_dir("checks") / name
    out.write_text(text + "\n")
    print(text)
    assert [p for f in fits for p in f.problems] == [], text
    bad = sum(len(f.misfits) for f in fits)
    summary = (f"{bad} of {sum(len(f.slides) for f in fits)} slides do not fit {fit.WIDTH} x {fit.HEIGHT} "
               f"(listed in {out})")
    if strict():
        assert bad == 0, f"{summary}:\n{text}"
    elif bad:
        warnings.warn(f"report only (FRAGLIFE_STRICT_FIT=1 makes it fail): {summary}", stacklevel=2)
    return text

"""Where things live. Resolved from this file, never from the working directory."""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BOOK = ROOT / "book"
DATA = ROOT / "data"
#: The largest explorer searches checked on one machine, by policy (``fraglife explore --single --record``).
LARGEST_SEARCHES = DATA / "explorer" / "largest.json"
BUILD = Path(os.environ.get("FRAGLIFE_BUILD", ROOT / "build"))


def build_dir(*parts: str) -> Path:
    """A directory under build/, created on demand."""
    path = BUILD.joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True)
    return path

"""Where things live. Resolved from this file, never from the working directory."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
BOOK = ROOT / "book"
DATA = ROOT / "data"
#: The largest explorer searches checked on one machine, by policy (``fraglife explore --single --record``).
LARGEST_SEARCHES = DATA / "explorer" / "largest.json"
BUILD = Path(os.environ.get("FRAGLIFE_BUILD", ROOT / "build"))


def named(target: str):
    """The function a ``"package.module:function"`` name points at (the registries of bench sections and warm
    jobs hold such names), its module imported on demand."""
    import importlib

    module, _, func = target.partition(":")
    return getattr(importlib.import_module(module), func)


def build_dir(*parts: str) -> Path:
    """A directory under build/, created on demand."""
    path = BUILD.joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True)
    return path


def write_json(path: Path, data: Any, *, indent: int | None = 1, default=None, sort_keys: bool = False,
               sync: bool = False) -> None:
    """Write ``data`` as JSON to ``path`` at once: a temporary file of this process renamed over it, so a reader
    (or another process writing the same file) never sees half of it; its folder made if needed, nothing left
    beside it if the write fails. ``sync``: on disk before the rename (a record a crash must not lose)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "w") as f:
            f.write(json.dumps(data, indent=indent, default=default, sort_keys=sort_keys) + "\n")
            if sync:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise

"""numba settings shared by every compiled kernel in the library.

``cache=True`` keeps machine code in the ``__pycache__`` next to each module,
so a chapter does not recompile the engine every time its kernel starts. When
that directory is not writable (a tree owned by another user) numba raises at
import; then compile in each process instead, or honour ``NUMBA_CACHE_DIR``.
"""

from __future__ import annotations

import os
from pathlib import Path


def can_cache(package_dir: Path = Path(__file__).parent) -> bool:
    if os.environ.get("NUMBA_CACHE_DIR"):
        return True
    for d in [package_dir, *package_dir.rglob("*")]:
        if d.is_dir() and d.name != "__pycache__" and not d.name.startswith("."):
            target = d / "__pycache__"
            if not os.access(target if target.exists() else d, os.W_OK):
                return False
    return True


CACHE = can_cache()

"""The library's numba settings: inlining without numba's spare IR copies still inlines correctly."""

import numba
import numpy as np
from numba import njit

from fraglife import jit


def test_the_copy_free_inliner_is_on_for_the_pinned_numba():
    # pyproject pins numba below 0.70; a numba whose inline_function reads otherwise is left alone, and this
    # test names the version to look at again
    assert jit.INLINE_WITHOUT_COPIES, f"numba {numba.__version__}: InlineWorker.inline_function changed"


@njit(inline="always")
def _bump(a, i, by):
    t = a[i] + by  # a local of the callee: each call site gets its own
    a[i] = t
    return t


@njit(inline="always")
def _twice(a, i):
    return _bump(a, i, 1) + _bump(a, i + 1, 10)  # nested: inlined into the caller's caller


@njit
def _caller(a):
    s = 0
    for i in range(3):
        s += _twice(a, i)
        s += _bump(a, 0, 100)
    return s


def test_inlined_calls_keep_their_own_locals():
    a = np.zeros(5, dtype=np.int64)
    b = a.copy()
    assert _caller(a) == _caller.py_func(b)
    assert (a == b).all()

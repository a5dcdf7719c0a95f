"""Compiled inner loops for the timing probes (numba, cached).

Touching pages and repeating copies must not be a Python loop: the
interpreter's per-iteration cost (tens of ns) would swamp what is measured.
Each function has an obvious plain-Python meaning, given in its docstring.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import numba
import numpy as np


from ..jit import CACHE

_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
# glibc memcpy with pointers passed as integers (same registers on x86_64), so a
# compiled loop can call it through its address without Python in between.
_memcpy = _libc.memcpy
_memcpy.argtypes = [ctypes.c_size_t, ctypes.c_size_t, ctypes.c_size_t]
_memcpy.restype = ctypes.c_size_t


@numba.njit(cache=CACHE)
def touch_write(a, stride):
    """``a[::stride] = 1``: one write per ``stride`` bytes, in address order."""
    for i in range(0, a.size, stride):
        a[i] = 1


@numba.njit(cache=CACHE)
def touch_read(a, stride):
    """``int(a[::stride].sum())``: one read per ``stride`` bytes, in address order."""
    s = 0
    for i in range(0, a.size, stride):
        s += a[i]
    return s


@numba.njit
def memcpy_repeat(dst, src, n, reps):
    """Call glibc ``memcpy(dst, src, n)`` ``reps`` times (addresses as integers)."""
    for _ in range(reps):
        _memcpy(dst, src, n)
    return reps


def warm() -> None:
    """Compile (or load from cache) before anything is timed."""
    a = np.zeros(2 * 4096, np.uint8)
    touch_write(a, 4096)
    touch_read(a, 4096)
    b = np.zeros_like(a)
    memcpy_repeat(b.ctypes.data, a.ctypes.data, 64, 1)

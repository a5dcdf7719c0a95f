"""Build and call the C replay (today's per-page policy) for the benchmark and its test.

The source, replay_page_ref.c, sits beside this file and ships with the package;
:func:`load` compiles it with the system's ``cc -O2`` into the directory it is
given (``fraglife bench`` passes build/bench/) the first time it is needed, and
loads it with ctypes. With no C compiler, :func:`load` returns an object whose
``error`` says why.
"""

from __future__ import annotations

import ctypes
import hashlib
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import ledger as L
from . import trace as T

SOURCE = Path(__file__).with_name("replay_page_ref.c")
CFLAGS = ["-O2", "-shared", "-fPIC", "-std=c11"]


@dataclass
class CReplay:
    error: str | None = None
    compiler: str | None = None
    _fn: object = None

    def replay_array(self, trace: np.ndarray, *, max_frags: int = T.MAX_SKB_FRAGS) -> np.ndarray:
        return self.prepare(trace, max_frags=max_frags)()

    def prepare(self, trace: np.ndarray, *, max_frags: int = T.MAX_SKB_FRAGS):
        """Columns and sizes ready; the returned callable runs only the C loop."""
        if self.error:
            raise RuntimeError(self.error)
        s = T.sizes(trace)
        cols = T.columns(trace)
        ptr = lambda a: a.ctypes.data_as(ctypes.c_void_p)  # noqa: E731
        args = [ctypes.c_int64(len(trace)), *(ptr(cols[k]) for k in T.EVENT.names),
                *(ctypes.c_int64(s[k]) for k in ("n_pfn", "n_buf", "n_uarg", "n_skb")), ctypes.c_int64(max_frags),
                ctypes.c_int64(s["n_cpu"])]

        def run() -> np.ndarray:
            led = L.new_array()
            if self._fn(*args, ptr(led)) != 0:
                raise MemoryError("C replay could not allocate its state")
            return led

        run.keep = cols  # the pointers above stay valid while run lives
        return run


_cache: dict[Path, CReplay] = {}


def load(build_dir: Path) -> CReplay:
    """Compile (once per source version) into ``build_dir`` and load the C replay."""
    build_dir = Path(build_dir)
    if build_dir not in _cache:
        _cache[build_dir] = _build(build_dir)
    return _cache[build_dir]


def _build(build_dir: Path) -> CReplay:
    cc = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    if cc is None:
        return CReplay(error="no C compiler (cc, gcc or clang) on PATH")
    src = SOURCE.read_bytes()
    tag = hashlib.sha256(src + " ".join(CFLAGS).encode()).hexdigest()[:12]
    build_dir.mkdir(parents=True, exist_ok=True)
    lib = build_dir / f"replay_page_ref-{tag}.so"
    if not lib.exists():
        tmp = lib.with_suffix(".tmp.so")
        proc = subprocess.run([cc, *CFLAGS, "-o", str(tmp), str(SOURCE)], capture_output=True, text=True)
        if proc.returncode != 0:
            return CReplay(error=f"{cc} failed: {proc.stderr.strip()[:500]}")
        tmp.replace(lib)
    version = subprocess.run([cc, "--version"], capture_output=True, text=True).stdout.splitlines()[:1]
    fn = ctypes.CDLL(str(lib)).fl_replay_page_ref
    fn.restype = ctypes.c_int
    fn.argtypes = [ctypes.c_int64] + [ctypes.c_void_p] * len(T.EVENT.names) + [ctypes.c_int64] * 6 + [ctypes.c_void_p]
    return CReplay(compiler=f"{' '.join([Path(cc).name, *CFLAGS[:1]])} ({version[0] if version else '?'})", _fn=fn)

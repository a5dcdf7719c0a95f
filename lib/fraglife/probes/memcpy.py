"""Copy bandwidth on this machine, 64 B to 64 MiB.

How it is measured: glibc ``memcpy`` is called ``reps`` times in a row from
a numba-compiled loop (so no Python runs between calls; the per-call cost of
a real call through a function pointer remains, as it would in C), between
two separate, pre-faulted, page-aligned buffers. ``reps`` is chosen so one
timing lasts about ``target_ms``; each size is timed ``repeats`` times and
the median and quartiles are reported. Bandwidth is bytes copied per
second (read and write traffic are each that much). Small sizes repeat on
the same cache-resident bytes: that is the regime of a small send copied
into a socket buffer right after the application wrote it, not of a cold
copy.

The cache sizes of CPU 0 (``/sys/devices/system/cpu/cpu0/cache``) are
reported alongside so a chapter can mark where the curve steps down.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from . import _jit, _sys
from ._base import kernel_release, spread

NAME = "memcpy"
TITLE = "memcpy bandwidth, 64 B to 64 MiB"
REQUIRED = ("kernel", "sizes")

SIZES = tuple(64 << i for i in range(21))  # 64 B .. 64 MiB, powers of two
QUICK_SIZES = tuple(64 << i for i in range(0, 21, 2))  # powers of four
CACHE_DIR = "/sys/devices/system/cpu/cpu0/cache"


def caches() -> dict:
    out = {}
    try:
        for d in sorted(Path(CACHE_DIR).glob("index*")):
            level = (d / "level").read_text().strip()
            kind = (d / "type").read_text().strip()
            size = (d / "size").read_text().strip()
            mult = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}.get(size[-1], 1)
            key = f"L{level}" + {"Data": "d", "Instruction": "i", "Unified": ""}.get(kind, kind)
            out[key] = int(size.rstrip("KMG")) * mult
    except (OSError, ValueError):
        pass
    return out


def _time(dst: int, src: int, n: int, reps: int) -> float:
    t0 = time.perf_counter_ns()
    _jit.memcpy_repeat(dst, src, n, reps)
    return (time.perf_counter_ns() - t0) * 1e-9


def measure(quick: bool = False) -> dict:
    sizes = QUICK_SIZES if quick else SIZES
    repeats = 3 if quick else 5
    target = 0.01 if quick else 0.03
    _jit.warm()
    biggest = max(sizes)
    out_sizes = {}
    with _sys.Mapping(biggest) as src_map, _sys.Mapping(biggest) as dst_map:
        src_map.array()[:] = 0x5A  # fault in and fill
        dst_map.array()[:] = 0
        src, dst = src_map.addr, dst_map.addr
        for n in sizes:
            reps = 1
            while True:  # calibrate
                t = _time(dst, src, n, reps)
                if t >= target / 4 or reps >= 1 << 30:
                    break
                reps *= 8
            reps = max(1, int(reps * target / max(t, 1e-9)))
            secs = [_time(dst, src, n, reps) for _ in range(repeats)]
            gbps = spread(n * reps / s / 1e9 for s in secs)
            ns = spread(s / reps * 1e9 for s in secs)
            out_sizes[str(n)] = {"bytes": n, "reps": reps, "gb_per_s": gbps, "ns_per_copy": ns}
        ok = bool(np.array_equal(dst_map.array()[:biggest:4096], src_map.array()[:biggest:4096]))
    return {"kernel": kernel_release(), "sizes": out_sizes, "caches": caches(), "copy_verified": ok,
            "method": "glibc memcpy called reps times from a numba-compiled loop between two pre-faulted "
                      "page-aligned buffers; median and quartiles over repeats"}


def summarize(data: dict) -> list[str]:
    lines = []
    for s in data["sizes"].values():
        n = s["bytes"]
        label = f"{n >> 20} MiB" if n >= 1 << 20 else f"{n >> 10} KiB" if n >= 1 << 10 else f"{n} B"
        g = s["gb_per_s"]
        lines.append(f"{label:>8s}: {g['median']:7.1f} GB/s  (q1 {g['q1']:.1f}, q3 {g['q3']:.1f}); "
                     f"{s['ns_per_copy']['median']:.1f} ns per copy")
    return lines


def frame(data: dict):
    import pandas as pd

    return pd.DataFrame([{"bytes": s["bytes"], "gb_per_s": s["gb_per_s"]["median"],
                          "gb_per_s_q1": s["gb_per_s"]["q1"], "gb_per_s_q3": s["gb_per_s"]["q3"],
                          "ns_per_copy": s["ns_per_copy"]["median"], "reps": s["reps"]}
                         for s in data["sizes"].values()]).set_index("bytes")

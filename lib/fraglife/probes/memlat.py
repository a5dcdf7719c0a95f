"""Dependent loads at working sets from L1 to DRAM: ns per load, one chain or several at once.

What an extra pointer hop costs depends on where its target line lives. Measured
by a small C program (``memlat.c`` beside this file) built at probe time with the
system's ``cc -O2`` (see :mod:`._cc`); no compiler, no live result. It pins
itself to one CPU, links the 64-byte lines of a buffer into one random cycle
(Sattolo's algorithm: every load's address is the previous load's value, which
no prefetcher can predict) and walks it:

- ``chains`` = 1: the latency of a dependent load, the cost of following
  page -> memdesc when the next step needs the pointer it just read;
- ``chains`` = 2, 4, 8: as many independent cycles walked at once, one load
  each per step: how far independent misses overlap (frags of one skb are
  independent of each other, the hops within one frag are not).

Each working set is measured with the buffer backed by 2 MiB pages
(``huge``: ``MADV_HUGEPAGE``), which is how the kernel maps its own memory on
x86_64 (the direct map and the vmemmap array of ``struct page`` use large
pages: arch/x86/mm/init_64.c ``vmemmap_populate()``, v6.12), and, in the full
run, with 4 KiB pages (``4k``), where page walks add to every miss.
``thp_fraction`` says how much of each buffer huge pages did back (buffers
under 2 MiB cannot be). ``caches`` are this CPU's caches from sysfs, for labels.

Timing is noisy here: other work shares the CPUs and, under a hypervisor, the
last-level cache. Samples are repeated and reported as median and quartiles.
"""

from __future__ import annotations

import os
from pathlib import Path

from . import _cc
from ._base import ProbeUnavailable, measured, spread

NAME = "memlat"
TITLE = "dependent-load latency by working set, L1 to DRAM (pointer chasing)"
REQUIRED = ("kernel", "modes", "caches", "chains")

SOURCE = Path(__file__).with_name("memlat.c")
CFLAGS = ("-O2", "-std=gnu11")
CHAINS = (1, 2, 4, 8)
KiB, MiB = 1 << 10, 1 << 20
#: quick mode (tests, chapter runs) and full mode (``fraglife probe memlat``)
SETTINGS = {
    True: {"sizes": (16 * KiB, 64 * KiB, 256 * KiB, MiB, 4 * MiB, 16 * MiB, 64 * MiB),
           "modes": ("huge",), "target_ns": 2_000_000, "samples": 3},
    False: {"sizes": (16 * KiB, 32 * KiB, 64 * KiB, 128 * KiB, 256 * KiB, 512 * KiB, MiB, 2 * MiB, 4 * MiB,
                      8 * MiB, 16 * MiB, 32 * MiB, 64 * MiB, 128 * MiB, 256 * MiB),
            "modes": ("huge", "4k"), "target_ns": 10_000_000, "samples": 7},
}
SYSFS_CACHE = "/sys/devices/system/cpu/cpu{cpu}/cache"


def caches(cpu: int, root: str = SYSFS_CACHE) -> list[dict]:
    """The data and unified caches of one CPU: level, type, size in bytes, CPUs sharing it."""
    out = []
    for d in sorted(Path(root.format(cpu=cpu)).glob("index*")):
        try:
            kind = (d / "type").read_text().strip()
            level = int((d / "level").read_text())
            size = (d / "size").read_text().strip()
            shared = (d / "shared_cpu_list").read_text().strip()
        except (OSError, ValueError):
            continue
        if kind == "Instruction":
            continue
        mult = {"K": KiB, "M": MiB, "G": 1 << 30}.get(size[-1:], 1)
        try:
            nbytes = int(size.rstrip("KMG")) * mult
        except ValueError:
            continue
        out.append({"level": level, "type": kind, "bytes": nbytes, "shared_cpu_list": shared})
    return out


def parse(text: str) -> list[dict]:
    """The program's lines: {bytes, chains, thp_kib, ns (a sample each)}."""
    rows = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) < 4:
            continue
        rows.append({"bytes": int(parts[0]), "chains": int(parts[1]), "thp_kib": int(parts[2]),
                     "ns": [float(x) for x in parts[3:]]})
    return rows


def _run(exe: str, cpu: int, huge: bool, s: dict) -> list[dict]:
    import subprocess

    args = [exe, str(cpu), "1" if huge else "0", "1", str(s["target_ns"]), str(s["samples"]),
            *(str(b) for b in s["sizes"])]
    proc = subprocess.run(args, capture_output=True, text=True, timeout=600)
    if proc.returncode == 3:
        raise ProbeUnavailable(f"cannot pin to CPU {cpu}: {proc.stderr.strip()}")
    if proc.returncode != 0:
        raise RuntimeError(f"memlat exited {proc.returncode}: {proc.stderr.strip()}")
    return parse(proc.stdout)


def measure(quick: bool = False) -> dict:
    s = SETTINGS[bool(quick)]
    exe, compiler = _cc.build(SOURCE, NAME, CFLAGS)
    cpu = min(os.sched_getaffinity(0))
    modes = {}
    for mode in s["modes"]:
        rows = _run(exe, cpu, mode == "huge", s)
        points = []
        for b in s["sizes"]:
            mine = [r for r in rows if r["bytes"] == b]
            if not mine:
                raise RuntimeError(f"memlat printed nothing for {b} bytes")
            points.append({"bytes": b, "thp_fraction": min(1.0, max(0, mine[0]["thp_kib"]) * KiB / b),
                           "chains": {str(r["chains"]): spread(r["ns"]) for r in mine}})
        modes[mode] = {"points": points,
                       "pages": "2 MiB (MADV_HUGEPAGE)" if mode == "huge" else "4 KiB (MADV_NOHUGEPAGE)"}
    return measured(
        None, cpu=cpu, caches=caches(cpu), chains=list(CHAINS), modes=modes, compiler=compiler, quick=bool(quick),
        samples=s["samples"], target_ns=s["target_ns"],
        method="C program (probes/memlat.c) built with the system cc, pinned to one CPU; 64-byte lines of a "
               "buffer linked into one random cycle (Sattolo); ns per load over samples of at least target_ns, "
               "after a warm-up pass; K chains walked at once for K = 1, 2, 4, 8",
    )


def latency(data: dict, mode: str = "huge", chains: int = 1) -> list[tuple[int, float]]:
    """(working set bytes, median ns per load) for one mode and chain count."""
    pts = data["modes"][mode]["points"]
    return [(p["bytes"], p["chains"][str(chains)]["median"]) for p in pts]


def summarize(data: dict) -> list[str]:
    cache = ", ".join(f"L{c['level']} {c['bytes'] // KiB} KiB" for c in data["caches"])
    lines = [f"CPU {data['cpu']} caches: {cache or 'unknown'}"]
    for mode, m in data["modes"].items():
        lines.append(f"{m['pages']}: ns per load, 1 chain (dependent) / {data['chains'][-1]} chains at once")
        for p in m["points"]:
            one, many = p["chains"]["1"], p["chains"][str(data["chains"][-1])]
            size = f"{p['bytes'] // MiB} MiB" if p["bytes"] >= MiB else f"{p['bytes'] // KiB} KiB"
            lines.append(f"  {size:>8s}: {one['median']:7.2f} (q1 {one['q1']:.2f}, q3 {one['q3']:.2f}) / "
                         f"{many['median']:6.2f}; huge pages {p['thp_fraction']:.0%}")
    return lines


def frame(data: dict):
    import pandas as pd

    rows = [{"pages": mode, "bytes": p["bytes"], "chains": int(k), "ns": v["median"], "q1": v["q1"], "q3": v["q3"],
             "thp_fraction": p["thp_fraction"]}
            for mode, m in data["modes"].items() for p in m["points"] for k, v in p["chains"].items()]
    return pd.DataFrame(rows)

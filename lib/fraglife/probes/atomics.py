"""Atomic increments and cache-line transfers between CPUs on this machine.

What a refcount costs depends on where its cache line is. Measured by a small
C program (``atomics.c`` beside this file) compiled at probe time with the
system's ``cc -O2 -pthread`` into ``build/probes/`` (a private temporary
directory when that is not writable); no compiler, no live result. Every
measuring thread pins itself to one CPU with ``sched_setaffinity``. No
privilege is needed.

- ``local_atomic_ns``: one atomic increment on a 64-byte line this CPU already
  owns, in a dependent chain (each increment waits for the previous result):
  ``__atomic_fetch_add``, the ``lock xadd`` that ``refcount_inc()`` compiles to
  on x86 (arch/x86/include/asm/atomic64_64.h ``arch_atomic64_fetch_add``,
  v6.12). Median over samples.
- ``pairs``: for every pair of allowed CPUs (or, above a cap, a few
  representative pairs per topology class), half the round trip of a
  compare-and-swap ping-pong on one line: one line transfer plus the atomic
  that pulled it, the method and definition of nviennot/core-to-core-latency
  (src/bench/cas.rs), so the figures cited in :mod:`fraglife.model.costs`
  compare directly. Each pair carries its class read from sysfs
  (``smt_sibling``, ``same_llc``, ``other_llc``, ``other_socket``; ``same_socket``
  when the cache topology cannot be read).
- ``line_transfer_ns``: the median of the pairs' medians over pairs of distinct
  cores (SMT siblings share the line in their own L1 and are left out unless
  nothing else exists); ``by_class`` gives the median per class. Pairs are
  measured in ``rounds`` spread over the run (``rounds_ns``, ``over_time``):
  under a hypervisor (``topology.virtualized``) the host may move virtual
  CPUs between its cores and caches every few seconds, which the guest's
  sysfs cannot show but the transfer time does.
- ``contended``: k = 1..N threads on k CPUs increment ONE shared line for short
  windows, all at once; ``private``: the same with a line each (128 bytes
  apart, so no adjacent-line prefetch pairs them). Per k: CPU time per
  increment (sum of the threads' elapsed time / sum of their increments; the
  same as per-thread ns per op when the threads are treated fairly), the
  aggregate rate, and fairness (fewest / most increments of one thread).
  ``paced``: both again with ``gap_steps`` of dependent private arithmetic
  after each increment (about ``gap_ns``), which stops one CPU from keeping
  the line for a run of increments, as a tight loop lets it.
- ``cmpxchg_loop_ns``: one increment as a compare-and-swap loop instead (read
  the line, then ``lock cmpxchg`` until it succeeds), on a line this CPU owns,
  in a dependent chain: what ``mm_account_pinned_pages()`` pays on
  ``user->locked_vm`` per MSG_ZEROCOPY sendmsg (``atomic_long_read()`` +
  ``atomic_long_try_cmpxchg()``, net/core/skbuff.c v6.18) and
  ``refcount_inc_not_zero()`` pays per devmem sendmsg on the binding. Median
  over samples. ``cmpxchg_contended``: k = 1..N threads run such loops on one
  shared line at once (windows as ``contended``), with ``retries_per_op``
  (failed compare-and-swaps per increment): the loop's cost when another CPU
  (another sender of the same user, or of the same binding) moves the line.
- ``topology``: the allowed CPUs with core, package, SMT siblings and last-level
  cache as read from /sys/devices/system/cpu.

Timing is noisy here: other work shares the CPUs. Samples and windows are
repeated and reported as median and quartiles (``spread``); a contention
window in which any thread was switched out involuntarily (getrusage
``ru_nivcsw``) is left out when enough clean windows remain (``clean_windows``
says how many); ``load`` gives the 1-minute load average before and after.
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

from . import _cc
from ._base import ProbeUnavailable, measured, spread

NAME = "atomics"
TITLE = "atomic increments, cache-line transfers and one shared line under contention"
REQUIRED = ("kernel", "local_atomic_ns", "line_transfer_ns", "pairs", "contended", "private", "topology")

SOURCE = Path(__file__).with_name("atomics.c")
CFLAGS = ("-O2", "-pthread", "-std=gnu11")
SYSFS = "/sys/devices/system/cpu"
CLASSES = ("smt_sibling", "same_llc", "other_llc", "other_socket", "same_socket")
GAP_STEPS = 16

#: quick mode (tests, chapter runs) and full mode (``fraglife probe atomics``)
SETTINGS = {
    True: {"local_ops": 200_000, "local_samples": 15, "round_trips": 200, "pp_samples": 20,
           "window_ns": 1_000_000, "windows": 8, "min_clean": 6, "extra_runs": 3, "pair_cap": 12,
           "rounds": 2, "pause_s": 0.0},
    False: {"local_ops": 200_000, "local_samples": 201, "round_trips": 200, "pp_samples": 40,
            "window_ns": 1_000_000, "windows": 8, "min_clean": 40, "extra_runs": 10, "pair_cap": 64,
            "rounds": 24, "pause_s": 0.4},
}


# -- topology ----------------------------------------------------------------------------

def parse_cpulist(text: str) -> list[int]:
    """"0-3,8,10-11" -> [0, 1, 2, 3, 8, 10, 11]."""
    out: list[int] = []
    for part in text.strip().split(","):
        if not part:
            continue
        lo, _, hi = part.partition("-")
        out.extend(range(int(lo), int(hi or lo) + 1))
    return out


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def _llc(cpu_dir: Path) -> dict | None:
    """The highest-level data or unified cache of one CPU."""
    best = None
    for d in sorted(cpu_dir.glob("cache/index*")):
        kind, level, shared = _read(d / "type"), _read(d / "level"), _read(d / "shared_cpu_list")
        if kind not in ("Data", "Unified") or level is None or shared is None:
            continue
        if best is None or int(level) > best["level"]:
            best = {"level": int(level), "cpus": parse_cpulist(shared), "id": _read(d / "id"),
                    "size": _read(d / "size")}
    return best


def read_topology(root: str | os.PathLike = SYSFS, cpus=None) -> dict:
    """The CPUs this process may run on, each with its core, package, SMT siblings and LLC."""
    root = Path(root)
    if cpus is None:
        online = _read(root / "online")
        cpus = sorted(set(os.sched_getaffinity(0)) & set(parse_cpulist(online) if online else os.sched_getaffinity(0)))
    per = []
    for c in sorted(cpus):
        d = root / f"cpu{c}"
        t = d / "topology"
        sib = _read(t / "thread_siblings_list")
        per.append({"cpu": c,
                    "core_id": _int(_read(t / "core_id")),
                    "package": _int(_read(t / "physical_package_id")),
                    "die": _int(_read(t / "die_id")),
                    "siblings": parse_cpulist(sib) if sib else [c],
                    "llc": _llc(d)})
    llcs = {tuple(p["llc"]["cpus"]) for p in per if p["llc"]}
    return {"source": str(root), "cpus": per, "n_cpus": len(per),
            "packages": len({p["package"] for p in per}),
            "llcs": len(llcs) if all(p["llc"] for p in per) else None,
            "smt": any(len(p["siblings"]) > 1 for p in per)}


def _int(s: str | None) -> int | None:
    try:
        return int(s) if s is not None else None
    except ValueError:
        return None


def classify(topology: dict, a: int, b: int) -> str:
    """The topology class of a CPU pair: what a line crosses between them."""
    info = {p["cpu"]: p for p in topology["cpus"]}
    pa, pb = info[a], info[b]
    if b in pa["siblings"]:
        return "smt_sibling"
    if pa["package"] is not None and pb["package"] is not None and pa["package"] != pb["package"]:
        return "other_socket"
    if pa["llc"] and pb["llc"]:
        return "same_llc" if b in pa["llc"]["cpus"] else "other_llc"
    return "same_socket"


def choose_pairs(topology: dict, cap: int) -> list[tuple[int, int, str]]:
    """Every pair of CPUs if there are at most ``cap``; else up to ``cap`` pairs spread evenly
    over each class's pairs (each class present gets at least one)."""
    cpus = [p["cpu"] for p in topology["cpus"]]
    pairs = [(a, b, classify(topology, a, b)) for i, a in enumerate(cpus) for b in cpus[i + 1:]]
    if len(pairs) <= cap:
        return pairs
    by_class: dict[str, list] = {}
    for p in pairs:
        by_class.setdefault(p[2], []).append(p)
    each = max(1, cap // len(by_class))
    out = []
    for cls in CLASSES:
        members = by_class.get(cls, [])
        if members:
            n = min(each, len(members))
            out.extend(members[round(i * (len(members) - 1) / max(1, n - 1))] for i in range(n))
    return out


def spread_order(topology: dict) -> list[int]:
    """CPUs ordered one per core first, so k threads share a core only when k exceeds the cores."""
    def key(p):
        return (sorted(p["siblings"]).index(p["cpu"]) if p["cpu"] in p["siblings"] else 0,
                p["package"] or 0, p["core_id"] or 0, p["cpu"])
    return [p["cpu"] for p in sorted(topology["cpus"], key=key)]


def thread_counts(n: int) -> list[int]:
    """1, 2, 3, 4, then powers of two, and n itself."""
    ks = {k for k in (1, 2, 3, 4) if k <= n} | {1 << i for i in range(n.bit_length()) if 1 << i <= n} | {n}
    return sorted(ks)


# -- the C program -------------------------------------------------------------------------

def build() -> tuple[str, str]:
    """Compile (once per source, flags and compiler) and return (executable, compiler line)."""
    return _cc.build(SOURCE, "atomics", CFLAGS)


def _run(exe: str, *args) -> list[list[float]]:
    proc = subprocess.run([exe, *map(str, args)], capture_output=True, text=True, timeout=300)
    if proc.returncode == 3:
        raise ProbeUnavailable(f"cannot pin a thread: {proc.stderr.strip()}")
    if proc.returncode != 0:
        raise RuntimeError(f"atomics {' '.join(map(str, args[:2]))} exited {proc.returncode}: {proc.stderr.strip()}")
    return [[float(x) for x in line.split()] for line in proc.stdout.splitlines() if line.strip()]


# -- measurements ----------------------------------------------------------------------------

def local(exe: str, cpu: int, s: dict, mode: str = "local") -> dict:
    """A dependent chain on a line this CPU owns: ``local`` lock xadd, ``cas`` a compare-and-swap loop."""
    (row,) = _run(exe, mode, cpu, s["local_ops"], s["local_samples"])
    return {"ns": spread(row[:-1]), "cpu": int(row[-1]), "ops_per_sample": s["local_ops"]}


def pingpong(exe: str, a: int, b: int, s: dict) -> tuple[list[float], bool]:
    """(half round trip of each sample, whether the swaps add up)."""
    (row,) = _run(exe, "pingpong", a, b, s["round_trips"], s["pp_samples"])
    return row[:-1], row[-1] == 1


def _window_stats(threads: list[list[float]]) -> dict:
    """One window: CPU time per increment over all threads, aggregate rate, fairness, and
    whether no thread was switched out involuntarily (and, for compare-and-swap loops, retries
    per increment)."""
    ops = [t[0] for t in threads]
    ns = [t[1] for t in threads]
    total = sum(ops)
    out = {"ns_per_op": sum(ns) / total if total else float("inf"),
           "mops_per_s": total / max(ns) * 1e3 if max(ns) > 0 else 0.0,
           "fairness": min(ops) / max(ops) if max(ops) else 0.0,
           "clean": all(t[2] == 0 for t in threads)}
    if all(len(t) > 3 for t in threads):
        out["retries_per_op"] = sum(t[3] for t in threads) / total if total else 0.0
    return out


def contend(exe: str, shared: bool, gap: int, cpus: list[int], s: dict, cas: bool = False) -> tuple[list[dict], bool]:
    """One run of windows in which k threads increment at once (``cas``: by compare-and-swap loops):
    (per-window stats, verified)."""
    mode = ("shared" if shared else "private") + ("_cas" if cas else "")
    rows = _run(exe, "contend", mode, gap, s["window_ns"], s["windows"], *cpus)
    *windows, (verified,) = rows
    width = 4 if cas else 3
    return [_window_stats([w[i:i + width] for i in range(0, len(w), width)]) for w in windows], verified == 1


def _curve_point(cpus: list[int], stats: list[dict], verified: bool, s: dict) -> dict:
    """Medians over the windows no thread was switched out of (a switched-out thread leaves the
    others uncontended and its own time idle); over all windows if too few were clean."""
    clean = [w for w in stats if w["clean"]]
    use = clean if len(clean) >= min(3, s["min_clean"]) else stats
    extra = {"retries_per_op": spread(w["retries_per_op"] for w in use)} if use and "retries_per_op" in use[0] else {}
    return {"threads": len(cpus), "cpus": list(cpus), **extra,
            "ns_per_op": spread(w["ns_per_op"] for w in use),
            "mops_per_s": spread(w["mops_per_s"] for w in use),
            "fairness": spread(w["fairness"] for w in use),
            "windows": len(stats), "clean_windows": len(clean), "used": "clean" if use is clean else "all",
            "window_ms": s["window_ns"] / 1e6, "verified": verified}


def _load() -> float | None:
    try:
        return float(Path("/proc/loadavg").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def virtualized() -> bool:
    """Whether the CPU says it runs under a hypervisor (the topology read is then the guest's)."""
    try:
        return any(line.startswith("flags") and " hypervisor" in line
                   for line in Path("/proc/cpuinfo").read_text().splitlines())
    except OSError:
        return False


def measure(quick: bool = False) -> dict:
    s = SETTINGS[bool(quick)]
    exe, compiler = build()
    topo = read_topology()
    topo["virtualized"] = virtualized()
    cpus = [p["cpu"] for p in topo["cpus"]]
    if not cpus:
        raise ProbeUnavailable("no CPU is both online and allowed for this process")
    load_before = _load()
    loc = local(exe, cpus[0], s)
    cas = local(exe, cpus[0], s, "cas")

    # Rounds spread over the run: a hypervisor may move virtual CPUs between host cores every
    # few seconds, which changes what a line transfer costs; rounds show it, one burst would not.
    chosen = choose_pairs(topo, s["pair_cap"])
    samples = {p: [] for p in chosen}
    per_round = {p: [] for p in chosen}
    pair_ok = {p: True for p in chosen}
    order = spread_order(topo)
    configs = [(name, shared, gap, k) for k in thread_counts(len(order))
               for name, shared, gap in (("contended", True, 0), ("private", False, 0),
                                         ("paced_contended", True, GAP_STEPS), ("paced_private", False, GAP_STEPS),
                                         ("cmpxchg_contended", True, 0))]
    windows = {c: [] for c in configs}
    win_ok = {c: True for c in configs}
    for r in range(s["rounds"]):
        if r and s["pause_s"]:
            time.sleep(s["pause_s"])
        for p in chosen:
            vals, ok = pingpong(exe, p[0], p[1], s)
            samples[p] += vals
            per_round[p].append(spread(vals)["median"])
            pair_ok[p] &= ok
        for c in configs:
            stats, ok = contend(exe, c[1], c[2], order[:c[3]], s, cas=c[0] == "cmpxchg_contended")
            windows[c] += stats
            win_ok[c] &= ok
    for c in configs:  # more windows where too few were clean
        for _ in range(s["extra_runs"]):
            if sum(w["clean"] for w in windows[c]) >= s["min_clean"]:
                break
            stats, ok = contend(exe, c[1], c[2], order[:c[3]], s, cas=c[0] == "cmpxchg_contended")
            windows[c] += stats
            win_ok[c] &= ok

    pairs = [{"cpus": [a, b], "class": cls, "half_round_trip_ns": spread(samples[(a, b, cls)]),
              "rounds_ns": per_round[(a, b, cls)], "round_trips_per_sample": s["round_trips"],
              "verified": pair_ok[(a, b, cls)]} for a, b, cls in chosen]
    if pairs:
        distinct = [p for p in pairs if p["class"] != "smt_sibling"] or pairs
        transfer = spread(p["half_round_trip_ns"]["median"] for p in distinct)
        by_class = {}
        for cls in CLASSES:
            members = [p for p in pairs if p["class"] == cls]
            if members:
                by_class[cls] = {"ns": spread(p["half_round_trip_ns"]["median"] for p in members)["median"],
                                 "pairs": len(members),
                                 "over_time": spread(v for p in members for v in p["rounds_ns"])}
        line_transfer = {"ns": transfer, "over": "median of the per-pair medians, pairs of distinct cores",
                         "over_time": spread(v for p in distinct for v in p["rounds_ns"]),
                         "by_class": by_class}
    else:
        transfer = None
        line_transfer = {"source": "unavailable", "reason": "one CPU only: no pair to move a line between"}

    curves = {name: [] for name in ("contended", "private", "paced_contended", "paced_private", "cmpxchg_contended")}
    for c in configs:
        curves[c[0]].append(_curve_point(order[:c[3]], windows[c], win_ok[c], s))
    gap_ns = max(0.0, curves["paced_private"][0]["ns_per_op"]["median"] - loc["ns"]["median"])
    points = [p for v in curves.values() for p in v]
    return measured(
        None,
        local_atomic_ns=loc["ns"]["median"],
        local_atomic=loc,
        cmpxchg_loop_ns=cas["ns"]["median"],
        cmpxchg_loop=cas,
        cmpxchg_contended=curves["cmpxchg_contended"],
        line_transfer_ns=transfer["median"] if transfer else None,
        line_transfer=line_transfer,
        pairs=pairs,
        contended=curves["contended"],
        private=curves["private"],
        paced={"gap_steps": GAP_STEPS, "gap_ns": gap_ns,
               "contended": curves["paced_contended"], "private": curves["paced_private"]},
        topology=topo,
        compiler=compiler,
        quick=bool(quick),
        rounds=s["rounds"],
        load={"before": load_before, "after": _load(),
              "windows": sum(p["windows"] for p in points),
              "preempted_windows": sum(p["windows"] - p["clean_windows"] for p in points)},
        verified=all(p["verified"] for p in pairs) and all(p["verified"] for p in points),
        method="C program (probes/atomics.c) built with the system cc; threads pinned with sched_setaffinity; "
               "relaxed __atomic_fetch_add (lock xadd), compare-and-swap loops (lock cmpxchg) and a CAS "
               "ping-pong as nviennot/core-to-core-latency; "
               "medians and quartiles over samples and clean windows, in rounds spread over the run",
    )


# -- presentation --------------------------------------------------------------------------

def _topology_line(t: dict) -> str:
    llc = next((p["llc"] for p in t["cpus"] if p.get("llc")), None)
    llc_s = f"{t['llcs']} LLC (L{llc['level']} {llc['size']})" if llc and t.get("llcs") else "LLC unknown"
    return (f"topology: {t['n_cpus']} CPUs, {t['packages']} package(s), {llc_s}, "
            f"{'SMT' if t['smt'] else 'no SMT'}{', under a hypervisor' if t.get('virtualized') else ''}")


def summarize(data: dict) -> list[str]:
    loc = data["local_atomic"]["ns"]
    lines = [_topology_line(data["topology"]),
             f"local atomic (owned line, dependent chain): {data['local_atomic_ns']:.2f} ns "
             f"(q1 {loc['q1']:.2f}, q3 {loc['q3']:.2f}; CPU {data['local_atomic']['cpu']})"]
    if data.get("cmpxchg_loop_ns") is not None:
        c = data["cmpxchg_loop"]["ns"]
        lines.append(f"compare-and-swap loop (owned line, dependent chain): {data['cmpxchg_loop_ns']:.2f} ns "
                     f"(q1 {c['q1']:.2f}, q3 {c['q3']:.2f})")
        for p in data.get("cmpxchg_contended") or []:
            lines.append(f"  {p['threads']:3d} threads on one line: {p['ns_per_op']['median']:7.1f} ns per increment "
                         f"per thread, {p['retries_per_op']['median']:.3f} retries per increment")
    lt = data.get("line_transfer") or {}
    if data.get("line_transfer_ns") is not None:
        classes = ", ".join(f"{c} {v['ns']:.1f} ns ({v['pairs']} pair{'s' * (v['pairs'] != 1)})"
                            for c, v in lt.get("by_class", {}).items())
        lines.append(f"line transfer (half a CAS ping-pong round trip): {data['line_transfer_ns']:.1f} ns; {classes}")
        t = lt.get("over_time")
        if t and t.get("n", 0) > 1:
            lines.append(f"  over {data.get('rounds', t['n'])} rounds spread over the run: {t['min']:.1f} .. "
                         f"{t['max']:.1f} ns (q1 {t['q1']:.1f}, q3 {t['q3']:.1f})"
                         + ("; virtual CPUs: the host may move them, sysfs shows the guest's topology"
                            if data["topology"].get("virtualized") else ""))
    else:
        lines.append(f"line transfer: {lt.get('reason', 'not measured')}")
    for p in data["pairs"][:8]:
        h = p["half_round_trip_ns"]
        lines.append(f"  CPU {p['cpus'][0]} <-> {p['cpus'][1]} ({p['class']}): {h['median']:.1f} ns "
                     f"(q1 {h['q1']:.1f}, q3 {h['q3']:.1f})")
    if len(data["pairs"]) > 8:
        lines.append(f"  ... {len(data['pairs']) - 8} more pairs")
    for label, shared, private in (("tight loop", data["contended"], data["private"]),
                                   (f"paced (+{data['paced']['gap_ns']:.1f} ns work per increment)",
                                    data["paced"]["contended"], data["paced"]["private"])):
        lines.append(f"one shared line vs a line per thread, {label}:")
        for c, p in zip(shared, private):
            lines.append(f"  {c['threads']:3d} threads: {c['ns_per_op']['median']:7.1f} vs {p['ns_per_op']['median']:6.1f} "
                         f"ns per increment per thread; {c['mops_per_s']['median']:7.1f} vs "
                         f"{p['mops_per_s']['median']:7.1f} M increments/s in all; fairness "
                         f"{c['fairness']['median']:.2f}")
    ld = data.get("load", {})
    lines.append(f"noise: load {ld.get('before')} -> {ld.get('after')}; {ld.get('preempted_windows')} of "
                 f"{ld.get('windows')} contention windows had a thread switched out")
    return lines


def frame(data: dict):
    """The contention curves: one row per curve and thread count."""
    import pandas as pd

    rows = []
    curves = {"contended": data["contended"], "private": data["private"],
              "paced_contended": data["paced"]["contended"], "paced_private": data["paced"]["private"]}
    for name, curve in curves.items():
        for c in curve:
            rows.append({"curve": name, "threads": c["threads"], "ns_per_op": c["ns_per_op"]["median"],
                         "q1": c["ns_per_op"]["q1"], "q3": c["ns_per_op"]["q3"],
                         "mops_per_s": c["mops_per_s"]["median"], "fairness": c["fairness"]["median"],
                         "clean_windows": c["clean_windows"], "windows": c["windows"]})
    return pd.DataFrame(rows)


def pairs_frame(data: dict):
    """The CPU pairs: one row per pair with its class and half round trip."""
    import pandas as pd

    return pd.DataFrame([{"cpu_a": p["cpus"][0], "cpu_b": p["cpus"][1], "class": p["class"],
                          "ns": p["half_round_trip_ns"]["median"], "q1": p["half_round_trip_ns"]["q1"],
                          "q3": p["half_round_trip_ns"]["q3"]} for p in data["pairs"]])

"""``fraglife bench``: throughput measured in one run, reported as ratios in JSON.

The replay benchmark runs three implementations over the same trace: the
numba engine, its pure-Python twin (written for clarity; its ratio is for
information) and a C implementation of the same replay for today's per-page
policy, compiled with the system's ``cc -O2`` at bench time as the practical
limit on this CPU. The C ledger must equal the engine's, or the C number is
not reported. Each is timed in wall clock and in the process's CPU time
(``cpu_*`` keys, ``c_over_numba_cpu``): on a shared machine the CPU-time
ratio is the steadier one. Other modules add sections to the report through ``SECTIONS``.
Tests never assert on these numbers; speed lives here.

``fraglife bench`` runs the default sections at sizes that answer in about a
minute on two cores (``DEFAULT_SECTIONS``: everything but the chapters'
headless runs and the explorer on dask); ``--section NAME[,NAME]`` runs the named ones;
``--full`` runs every section at the full sizes. A section a run leaves out
is absent from the report; one that runs keeps its keys (the replay's are
the report's top-level keys).
"""

from __future__ import annotations

import json
import math
import time

import numpy as np

from .model import engine, engine_twin, trace as T, workloads
from .model.policies import get as get_policy

# Extra report sections: (key, "module:function"), the function takes the parsed
# CLI args and returns a JSON-safe value.
SECTIONS: tuple[tuple[str, str], ...] = (
    ("replay", "fraglife.bench:replay_section"),
    ("workloads", "fraglife.bench:workloads_section"),
    ("sweep", "fraglife.sweep:bench_section"),
    ("chapters", "fraglife.chapter_bench:bench_section"),
    ("memdesc_walk", "fraglife.model.memdesc:bench_section"),
    ("bvec", "fraglife.model.bvec:bench_section"),
    ("pins", "fraglife.model.pins:bench_section"),
    ("pagetable", "fraglife.model.pagetable:bench_section"),
    ("pipe", "fraglife.model.pipe:bench_section"),
    ("explorer", "fraglife.model.explorer:bench_section"),
    ("explorer_dask", "fraglife.sweep.explore:bench_section"),
)
#: What a plain ``fraglife bench`` runs: the chapters' headless runs and the explorer on dask take minutes alone.
DEFAULT_SECTIONS = tuple(k for k, _ in SECTIONS if k not in ("chapters", "explorer_dask"))
WORKLOAD_BYTES = 1 << 30  # each workload moves 1 GiB in the workloads section (--full)
WORKLOAD_BYTES_QUICK = 64 << 20  # and 64 MiB in a default run: rates do not depend on length beyond that
TWIN_BYTES = 8 << 20  # the Python twins generate a prefix: their speed does not depend on length


def bench_trace(events: int, *, seed: int = 1) -> np.ndarray:
    """A realistic trace of at least ``events`` events: a TCP send with loss and GSO, tiled whole."""
    base = workloads.generate("tcp_gso", bytes_sent=8 << 20, loss_rate=0.01, seed=seed)
    return T.tile(base, max(1, math.ceil(events / len(base))))


def _best(fn, repeats: int) -> tuple[float, object]:
    best, out = math.inf, None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def _best_cpu(fn, repeats: int) -> tuple[float, float, object]:
    """(best wall seconds, best CPU seconds of this process, last result): CPU time is what the call
    itself spent, so a ratio of two of them holds on a machine other work shares."""
    wall, cpu, out = math.inf, math.inf, None
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        out = fn()
        cpu = min(cpu, time.process_time() - c0)
        wall = min(wall, time.perf_counter() - t0)
    return wall, max(cpu, 1e-9), out


def replay_bench(events: int = 10_000_000, policy: str = "page_ref", *, twin_events: int | None = 500_000,
                 repeats: int = 3) -> dict:
    """Events per second of numba, twin and C on one trace; ratios from the same run."""
    from .model import creplay
    from .paths import build_dir

    pol = get_policy(policy)
    tr = bench_trace(events)
    n = len(tr)
    engine.replay_array(tr[:1000], pol)  # compile (or load the cache) outside the timing
    t_numba, cpu_numba, led_numba = _best_cpu(engine.prepare(tr, pol), repeats)
    from .system import cpu_model

    report = {"trace_events": n, "policy": pol.name, "workload": "tcp_gso x tiles, loss 1%", "cpu": cpu_model(),
              "numba": {"events_per_s": n / t_numba, "seconds": t_numba, "cpu_events_per_s": n / cpu_numba,
                        "cpu_seconds": cpu_numba}}

    # the twin replays a prefix of the same trace (its speed does not depend on length); 0 = all of it
    twin_n = n if not twin_events else max(1, min(n, twin_events))
    twin_tr = tr[:twin_n]
    t_twin, _ = _best(lambda: engine_twin.replay(twin_tr, pol), 1)
    report["twin"] = {"events_per_s": len(twin_tr) / t_twin, "seconds": t_twin, "events": len(twin_tr)}
    report["numba_over_twin"] = report["numba"]["events_per_s"] / report["twin"]["events_per_s"]

    c = creplay.load(build_dir("bench"))
    if c.error is None and pol.name == "page_ref":
        t_c, cpu_c, led_c = _best_cpu(c.prepare(tr), repeats)
        same = bool(np.array_equal(led_c, led_numba))
        report["c"] = {"events_per_s": n / t_c, "seconds": t_c, "cpu_events_per_s": n / cpu_c, "cpu_seconds": cpu_c,
                       "ledger_equal": same, "compiler": c.compiler} if same else None
        report["c_over_numba"] = (n / t_c) / report["numba"]["events_per_s"] if same else None
        # the same ratio in CPU time: wall clock also counts the time other processes held the core
        report["c_over_numba_cpu"] = cpu_numba / cpu_c if same else None
        if not same:
            report["c_reason"] = "the C ledger differs from the engine's; C number withheld"
    else:
        report["c"] = None
        report["c_over_numba"] = None
        report["c_over_numba_cpu"] = None
        report["c_reason"] = c.error or f"the C replay implements page_ref only, not {pol.name}"
    return report


def peak_memory(fn) -> tuple[object, int]:
    """(fn(), peak bytes traced by tracemalloc above what was traced when fn started).

    tracemalloc sees every numpy allocation, and the compiled loops allocate nothing, so this is the
    memory the call needs above the interpreter's baseline (its result included). Resident memory
    (VmHWM) is no better measure in one process: malloc keeps and reuses freed memory.
    """
    import tracemalloc

    tracemalloc.start()
    try:
        start = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        out = fn()
        peak = tracemalloc.get_traced_memory()[1] - start
    finally:
        tracemalloc.stop()
    return out, peak


def workload_bench(nbytes: int = WORKLOAD_BYTES, *, policy: str = "page_ref", twin_bytes: int = TWIN_BYTES,
                   repeats: int = 3) -> dict:
    """Per workload: compiled generation events/s (columns, and a trace array), generate+replay events/s
    end to end, the twin's speed and ratio, and peak memory per event above the start of each call."""
    report: dict = {"bytes_sent": nbytes, "policy": policy, "twin_bytes": twin_bytes,
                    "memory": "tracemalloc peak above the start of the call (its result included), per event",
                    "speed": "best of repeats, wall clock, one core (other work shares the machine)"}
    t0 = time.perf_counter()
    for name in workloads.ALL:  # load (or compile) every generator outside the timing
        workloads.generate_and_replay(name, policy, bytes_sent=1 << 16)
        workloads.generate(name, bytes_sent=1 << 16)
    report["load_s"] = time.perf_counter() - t0
    for name in workloads.ALL:
        t_gen, (cols, _st, _sz) = _best(lambda: workloads.generate_columns(name, bytes_sent=nbytes), repeats)
        n = len(cols["op"])
        del cols
        t_trace, _ = _best(lambda: workloads.generate(name, bytes_sent=nbytes), repeats)
        t_e2e, _ = _best(lambda: workloads.generate_and_replay(name, policy, bytes_sent=nbytes), repeats)
        _out, gen_peak = peak_memory(lambda: workloads.generate(name, bytes_sent=nbytes))
        del _out
        _out, e2e_peak = peak_memory(lambda: workloads.generate_and_replay(name, policy, bytes_sent=nbytes))
        del _out
        t_twin, twin_tr = _best(lambda: workloads.generate(name, impl="twin", bytes_sent=twin_bytes), 1)
        twin_rate = len(twin_tr) / t_twin
        report[name] = {
            "events": n,
            "generate_events_per_s": n / t_gen,
            "trace_events_per_s": n / t_trace,
            "generate_replay_events_per_s": n / t_e2e,
            "twin_events_per_s": twin_rate,
            "jit_over_twin": n / t_gen / twin_rate,
            "trace_peak_bytes_per_event": gen_peak / n,
            "generate_replay_peak_bytes_per_event": e2e_peak / n,
        }
    return report


def workloads_section(args) -> dict:
    """``fraglife bench`` section: the generators end to end (see workload_bench)."""
    full = getattr(args, "full", True)
    return workload_bench(WORKLOAD_BYTES if full else WORKLOAD_BYTES_QUICK, repeats=getattr(args, "repeats", 3))


def replay_section(args) -> dict:
    """``fraglife bench`` section: the replay, numba vs twin vs C (its keys are the report's top level)."""
    return replay_bench(args.events, args.policy, twin_events=args.twin_events, repeats=args.repeats)


def sections(spec: str | None, full: bool = False) -> tuple[str, ...]:
    """The sections a run makes: every one with ``full``, else the named ones (comma-separated), else the
    defaults. An unknown name raises ParamError naming the known ones."""
    from .params import ParamError

    known = tuple(k for k, _ in SECTIONS)
    if full:
        return known
    if not spec:
        return DEFAULT_SECTIONS
    names = tuple(dict.fromkeys(n.strip() for n in spec.split(",") if n.strip()))
    bad = [n for n in names if n not in known]
    if bad or not names:
        raise ParamError(f"parameter 'section' = {spec!r} is not allowed: expected names from "
                         f"{', '.join(known)}, comma-separated")
    return names


def run(args) -> dict:
    from .paths import named

    chosen = sections(getattr(args, "section", None), getattr(args, "full", False))
    report: dict = {}
    seconds: dict = {}
    for key, target in SECTIONS:
        if key not in chosen:
            continue
        t0 = time.perf_counter()
        out = named(target)(args)
        seconds[key] = round(time.perf_counter() - t0, 2)
        if key == "replay":
            report.update(out)
        else:
            report[key] = out
    report["sections_run"] = list(chosen)
    report["section_seconds"] = seconds
    return report


def register(sub) -> None:
    p = sub.add_parser("bench", help="replay throughput: numba engine vs Python twin vs C -O2 (JSON ratios)")
    p.add_argument("--json", action="store_true", help="print the report as JSON (default: a short summary)")
    p.add_argument("--events", type=int, default=10_000_000, help="trace length (whole tiles of a real trace)")
    p.add_argument("--policy", default="page_ref", help="policy to replay")
    p.add_argument("--twin-events", type=int, default=500_000,
                   help="events of the same trace the slow twin replays (default 500000; 0 = the whole trace)")
    p.add_argument("--repeats", type=int, default=3, help="timed repetitions; the best counts")
    p.add_argument("--section", default=None,
                   help="comma-separated sections to run (default: all but 'chapters'): "
                        + ", ".join(k for k, _ in SECTIONS))
    p.add_argument("--full", action="store_true",
                   help="every section, the chapters' headless runs included, at the full sizes")
    p.set_defaults(func=_cli)


def _cli(args) -> int:
    import sys

    from .params import ParamError

    try:
        report = run(args)
    except ParamError as e:
        print(f"fraglife bench: {e}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print("sections: " + ", ".join(f"{k} {v:.0f} s" for k, v in report["section_seconds"].items()))
    if "numba" in report:
        c = report.get("c")
        print(f"{report['trace_events']:,} events, policy {report['policy']}")
        print(f"  numba {report['numba']['events_per_s'] / 1e6:8.1f} M events/s")
        print(f"  twin  {report['twin']['events_per_s'] / 1e6:8.3f} M events/s  (numba/twin {report['numba_over_twin']:.0f}x)")
        if c:
            print(f"  C -O2 {c['events_per_s'] / 1e6:8.1f} M events/s  (C/numba {report['c_over_numba']:.2f}, "
                  f"in CPU time {report['c_over_numba_cpu']:.2f})")
        else:
            print(f"  C -O2 not measured: {report.get('c_reason')}")
    wl = report.get("workloads") or {}
    for name in workloads.ALL:
        if name in wl:
            w = wl[name]
            print(f"  {name:15s} generate {w['generate_events_per_s'] / 1e6:6.1f} M events/s, +replay "
                  f"{w['generate_replay_events_per_s'] / 1e6:5.1f}, twin x{w['jit_over_twin']:.0f}, "
                  f"{w['generate_replay_peak_bytes_per_event']:.0f} B/event")
    sw = report.get("sweep") or {}
    if sw.get("claims"):
        c = sw["claims"]
        print(f"sweep {sw['chapter']}, {sw['points']} points: {sw['workers_2']['points_per_s']:.1f} points/s on 2 "
              f"workers (x{sw['speedup']:.2f} over 1); with per-point claims x{c['ratio']:.2f} the time "
              f"({len(c['per_point'])} checked, {len(c['left_out'])} left to the chapter run)")
    return 0

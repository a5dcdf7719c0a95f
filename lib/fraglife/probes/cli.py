"""``fraglife probe [NAME ...] [--json] [--record]``: measure the kernel, or show the recordings."""

from __future__ import annotations

import argparse
import json
import sys

from ._core import ENV, MODES, NAMES, ProbeUnavailable, module, record, run


def register(sub) -> None:
    p = sub.add_parser(
        "probe",
        help="measure the running kernel (live) or show recorded results",
        description="Run kernel probes. Each result says whether it was measured live or read from "
                    "data/probes/NAME.json, and where and when. Probes: " + ", ".join(NAMES) + ".",
    )
    p.add_argument("names", nargs="*", metavar="NAME", help="probes to run (default: all)")
    p.add_argument("--json", action="store_true", help="print one JSON object keyed by probe name")
    p.add_argument("--record", action="store_true",
                   help="write each live result to data/probes/NAME.json (fails for a probe that is not live)")
    p.add_argument("--source", choices=MODES, default=None,
                   help=f"auto (live, else recorded), live only, or recorded only (default: ${ENV} or auto)")
    p.add_argument("--quick", action="store_true", help="fewer repetitions (same quantities, wider spread)")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    names = list(dict.fromkeys(args.names)) or list(NAMES)
    for n in names:
        module(n)  # unknown names stop here with ParamError before anything runs
    mode = args.source
    if args.record and mode == "recorded":
        print("fraglife probe: --record needs live results, not --source recorded", file=sys.stderr)
        return 2
    status = 0
    results = {}
    for n in names:
        if not args.json:
            print(f"== {n}: {module(n).TITLE}", flush=True)
        r = run(n, mode="live" if args.record else mode, quick=args.quick, fresh=True)
        results[n] = r
        if args.record:
            try:
                path = record(r)
                msg = f"recorded {n} -> {path}"
            except ProbeUnavailable as e:
                msg = f"NOT recorded: {e}"
                status = 1
            print(msg, file=sys.stderr if args.json else sys.stdout)
        if not args.json:
            print(r.note())
            for line in r.summary():
                print("   " + line)
    if args.json:
        json.dump({n: r.to_json() for n, r in results.items()}, sys.stdout, indent=1)
        sys.stdout.write("\n")
    return status

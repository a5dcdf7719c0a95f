"""The ``fraglife`` command: run | claims | probe | kernel-check | bench | sweep | explore | slides | book | talk |
answers | reply.

Each subcommand lives in its own module, which provides ``register(sub)``;
add a module to ``COMMANDS`` to add a subcommand. ``claims`` (the catalogue
of the chapters' claims) is small enough to live here.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from .params import ParamError

COMMANDS = (
    "fraglife.runner",
    "fraglife.cli",
    "fraglife.probes.cli",
    "fraglife.kernel_check",
    "fraglife.bench",
    "fraglife.sweep",
    "fraglife.sweep.explore",
    "fraglife.publish",
    "fraglife.answers",
    "fraglife.reply",
    "fraglife.warm",
)


def register(sub) -> None:
    p = sub.add_parser("claims", help="the chapters' claims: statement, expected verdict, verdict last observed",
                       description="List every claim of the chosen chapters (default: all) with its expected "
                                   "verdict and the verdict of the chapter's last run (build/claims/NN.json), "
                                   "or 'not run'.")
    p.add_argument("chapters", nargs="*", help="chapter ids or numbers (default: all)")
    p.set_defaults(func=_claims)


def _claims(args) -> int:
    import textwrap

    from .chapters import catalogue, select

    for ch in select(args.chapters or None):
        rows = catalogue([ch.id])
        print(f"{ch.id}: {len(rows)} claim{'s' if len(rows) != 1 else ''}")
        width = max([len(r["claim"]) for r in rows], default=0)
        for r in rows:
            last = r["observed"] if r["ok"] is None else f"{r['observed']} ({'ok' if r['ok'] else 'DRIFT'})"
            print(f"  {r['claim']:<{width}}  expected: {r['expected']:<5}  last observed: {last}")
            print(textwrap.fill(r["statement"], width=100, initial_indent="    ", subsequent_indent="    "))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fraglife", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except ParamError as e:
        print(f"fraglife {args.command}: {e}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # the reader stopped early (`fraglife claims | head`): no traceback
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141


if __name__ == "__main__":
    sys.exit(main())

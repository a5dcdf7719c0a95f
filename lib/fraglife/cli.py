"""The ``fraglife`` command: run | probe | bench | sweep.

Each subcommand lives in its own module, which provides ``register(sub)``;
add a module to ``COMMANDS`` to add a subcommand.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from .params import ParamError

COMMANDS = (
    "fraglife.runner",
    "fraglife.probes.cli",
    "fraglife.bench",
    "fraglife.sweep",
    "fraglife.publish",
)


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


if __name__ == "__main__":
    sys.exit(main())

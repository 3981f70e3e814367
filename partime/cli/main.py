"""Entry point of the ``partime`` command: one module per subcommand, registered here."""

from __future__ import annotations

import argparse
import importlib
import sys

# Each module defines ``register(subparsers)`` which adds its parser and sets ``func``.
SUBCOMMAND_MODULES = (
    "partime.cli.info",
    "partime.cli.bench",
    "partime.cli.solve",
    "partime.cli.train",
    "partime.cli.convergence_test",
    "partime.cli.manifest",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="partime", description=__doc__)
    subparsers = parser.add_subparsers(dest="command", required=True)
    for name in SUBCOMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (ValueError, TypeError, FileNotFoundError) as err:
        print(f"partime {args.command}: error: {err}", file=sys.stderr)
        return 2
    except FloatingPointError as err:  # e.g. a diverging solve: one line, no traceback
        print(f"partime {args.command}: error: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())

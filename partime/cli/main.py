"""Entry point of the ``partime`` command: one module per subcommand, registered here."""

from __future__ import annotations

import argparse
import importlib
import os
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


# User errors: bad values, missing files (exit 2), a diverging solve (exit 1). They print one
# line; anything else is a bug and shows its traceback. PARTIME_TRACEBACK=1 shows it always.
USER_ERRORS = {ValueError: 2, FileNotFoundError: 2, FloatingPointError: 1}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except tuple(USER_ERRORS) as err:
        if os.environ.get("PARTIME_TRACEBACK"):
            raise
        print(f"partime {args.command}: error: {err}", file=sys.stderr)
        return next(code for kind, code in USER_ERRORS.items() if isinstance(err, kind))


if __name__ == "__main__":
    raise SystemExit(main())

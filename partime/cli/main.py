"""Entry point of the ``partime`` command: one module per subcommand, registered here."""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from partime.cli.commands import summary

# command -> module defining ``register(subparsers)``, which adds the command's parser and
# sets ``func``; its docstring's first line is the command's summary.
SUBCOMMAND_MODULES = {
    "info": "partime.cli.info",
    "bench": "partime.cli.bench",
    "solve": "partime.cli.solve",
    "train": "partime.cli.train",
    "convergence-test": "partime.cli.convergence_test",
    "manifest": "partime.cli.manifest",
    "data": "partime.cli.data",
}


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The ``partime`` parser. Given ``argv``, only the command it names is imported (the
    others get a summary read from their source): a command starts in a fraction of the
    time it would take to import every command's libraries."""
    parser = argparse.ArgumentParser(prog="partime", description=__doc__)
    subparsers = parser.add_subparsers(dest="command", required=True)
    chosen = next((a for a in argv if a in SUBCOMMAND_MODULES), None) if argv else None
    for name, module_name in SUBCOMMAND_MODULES.items():
        if chosen in (None, name):
            importlib.import_module(module_name).register(subparsers)
        else:
            subparsers.add_parser(name, help=summary(module_name))
    return parser


# User errors: bad values, missing files (exit 2), a diverging solve (exit 1). They print one
# line; anything else is a bug and shows its traceback. PARTIME_TRACEBACK=1 shows it always.
USER_ERRORS = {ValueError: 2, FileNotFoundError: 2, FloatingPointError: 1}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser(argv).parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except tuple(USER_ERRORS) as err:
        if os.environ.get("PARTIME_TRACEBACK"):
            raise
        print(f"partime {args.command}: error: {err}", file=sys.stderr)
        return next(code for kind, code in USER_ERRORS.items() if isinstance(err, kind))


if __name__ == "__main__":
    raise SystemExit(main())

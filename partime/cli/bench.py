"""``partime bench NAME``: benchmarks that print ratios measured side by side in one run."""

from __future__ import annotations

import argparse

from partime.cli.commands import add_module_commands

# name -> module defining ``add_arguments(parser)`` and ``run(args) -> int``
BENCHMARKS = {
    "integrators": "partime.bench.integrators",
    "pint": "partime.bench.pint",
    "hits": "partime.bench.hits",
    "mgopt": "partime.bench.mgopt",
    "nets": "partime.bench.nets",
    "layerpar": "partime.bench.layerpar",
}


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("bench", help="run a benchmark and print a comparison table")
    add_module_commands(parser.add_subparsers(dest="benchmark", required=True), BENCHMARKS)

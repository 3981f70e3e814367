"""``partime bench NAME``: benchmarks that print ratios measured side by side in one run."""

from __future__ import annotations

import argparse
import importlib

# name -> module defining ``add_arguments(parser)`` and ``run(args) -> int``
BENCHMARKS = {
    "integrators": "partime.bench.integrators",
    "pint": "partime.bench.pint",
    "hits": "partime.bench.hits",
    "layerpar": "partime.bench.layerpar",
}


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("bench", help="run a benchmark and print a comparison table")
    names = parser.add_subparsers(dest="benchmark", required=True)
    for name, module_name in BENCHMARKS.items():
        module = importlib.import_module(module_name)
        sub = names.add_parser(name, help=(module.__doc__ or "").strip().splitlines()[0])
        module.add_arguments(sub)
        sub.set_defaults(func=module.run)

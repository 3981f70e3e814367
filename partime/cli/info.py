"""``partime info``: version, available backends and the rank/size this process sees."""

from __future__ import annotations

import argparse
import json

import torch

import partime


def _report() -> dict:
    return {"partime": partime.__version__, "torch": torch.__version__}


def run(args: argparse.Namespace) -> int:
    report = _report()
    print(json.dumps(report, indent=2) if args.json else "\n".join(f"{k}: {v}" for k, v in report.items()))
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("info", help="print version, backends and rank/size")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.set_defaults(func=run)

"""RK4 on Lorenz: partime eager and fast paths vs torchdiffeq and numpy (state-updates/s)."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--quick", action="store_true", help="fewer steps and batch sizes")


def run(args: argparse.Namespace) -> int:
    print("partime bench integrators: not implemented yet")
    return 0

"""ContinuousNet (OdeBlocks in depth) on a classification set; data-parallel under a launcher.

``partime train cnet --data digits --scheme rk4 --units 2-2-2 --out cnet.pt``; the model file
holds the architecture, so ``partime manifest cnet.pt`` rebuilds it.
"""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from partime.cli.train_nets import add_training_arguments
    from partime.nets.continuous import ContinuousNetConfig

    add_training_arguments(parser, ContinuousNetConfig)


def run(args: argparse.Namespace) -> int:
    from partime.cli.train_nets import run_training
    from partime.nets.continuous import ContinuousNet, ContinuousNetConfig

    return run_training(args, "cnet", ContinuousNet, ContinuousNetConfig)

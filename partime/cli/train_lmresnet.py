"""LM-ResNet (a linear two-step method in depth) on a classification set.

``partime train lmresnet --data mnist1d-hard --blocks 3-3-3 --out lm.pt``: the options of
``partime train resnet`` (no weight decay on the k_n); the summary lists the learned k_n.
"""

from __future__ import annotations

import argparse

from partime.cli.train_resnet import add_arguments

__all__ = ["add_arguments", "run"]


def run(args: argparse.Namespace) -> int:
    from partime.cli.train_nets import run_training
    from partime.nets.lmresnet import LMResNet, ResNetConfig

    return run_training(args, "lmresnet", LMResNet, ResNetConfig)

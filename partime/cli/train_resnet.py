"""Pre-activation ResNet (the baseline of LM-ResNet and ContinuousNet) on a classification set.

``partime train resnet --data mnist1d-hard --blocks 3-3-3 --out resnet.pt``, data-parallel under
mpiexec/torchrun. Defaults follow the LM-ResNet paper's CIFAR recipe (SGD lr 0.1, momentum 0.9,
weight decay 1e-4).
"""

from __future__ import annotations

import argparse

TRAIN_DEFAULTS = {"weight_decay": 1e-4}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from partime.cli.train_nets import add_training_arguments
    from partime.nets.lmresnet import ResNetConfig

    add_training_arguments(parser, ResNetConfig, TRAIN_DEFAULTS)


def run(args: argparse.Namespace) -> int:
    from partime.cli.train_nets import run_training
    from partime.nets.lmresnet import PreActResNet, ResNetConfig

    return run_training(args, "resnet", PreActResNet, ResNetConfig)

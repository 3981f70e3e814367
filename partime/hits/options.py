"""Command-line options of a HiTS hierarchy training, generated from its config dataclasses
(``partime train hits``, ``partime bench hits`` and the examples share them)."""

from __future__ import annotations

import argparse
from typing import Any

from partime.hits.config import HierarchyConfig
from partime.hits.hierarchy import default_steps
from partime.hits.workflow import DataSizes
from partime.options import add_options, config_from_args
from partime.steppers.flow_training import FlowMapTrainConfig


def add_hierarchy_options(
    parser: argparse.ArgumentParser, exclude: tuple[str, ...] = (), **defaults: Any
) -> None:
    """The options of HierarchyConfig (but ``exclude``), its per-model FlowMapTrainConfig and
    DataSizes (``defaults`` override the classes'), plus ``--levels`` for ``--steps``."""
    skip = ("train", "steps", *exclude)
    add_options(parser, HierarchyConfig, exclude=skip, defaults=defaults)
    # the per-model time budget is set from the hierarchy's (HierarchyConfig.time_budget)
    add_options(parser, FlowMapTrainConfig, exclude=("time_budget",), defaults=defaults)
    add_options(parser, DataSizes, defaults=defaults)
    steps = parser.add_mutually_exclusive_group()
    add_options(steps, HierarchyConfig, only=("steps",), defaults={"steps": None})
    steps.add_argument(
        "--levels", type=int, default=None, help="shorthand for --steps 1,2,4,...,2^(L-1)"
    )


def hierarchy_config(args: argparse.Namespace, **overrides: Any) -> HierarchyConfig:
    """The HierarchyConfig the options of ``add_hierarchy_options`` describe (fields left out
    of them are given as ``overrides``)."""
    train = config_from_args(FlowMapTrainConfig, args, time_budget=None)
    steps = default_steps(args.levels) if args.levels is not None else args.steps
    steps = steps or default_steps()
    return config_from_args(HierarchyConfig, args, train=train, steps=steps, **overrides)


def data_sizes(args: argparse.Namespace) -> DataSizes:
    return config_from_args(DataSizes, args)

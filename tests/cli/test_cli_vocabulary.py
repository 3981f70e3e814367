"""One vocabulary across the CLI: options come from the config dataclasses, and an option
name means the same thing (same choices) in every command."""

from __future__ import annotations

import argparse
import dataclasses

import pytest

from partime.cli.main import build_parser
from partime.cli.solve import OUTPUT_OPTIONS
from partime.data import DataConfig
from partime.hits.config import HierarchyConfig
from partime.hits.workflow import CoarseConfig, DataSizes
from partime.layerpar.strategy import LayerParallelConfig
from partime.nets.continuous import ContinuousNetConfig
from partime.pint.config import SolveConfig
from partime.steppers.flow_training import FlowMapTrainConfig
from partime.steppers.jacobian_fit import JacobianFitConfig
from partime.train import TrainConfig

# options that accept the same values wherever they appear (others, such as --data or
# --activation, name one thing but accept what the command's models or data allow)
SHARED_CHOICES = {"--backend", "--dtype", "--optimizer", "--scheme", "--schedule"}
# names an older CLI used for the same things (--checkpoint, --epochs, --n-train, ...)
RETIRED = {"--checkpoint-dir", "--max-epochs", "--n-traj", "--lbfgs", "--slice"}


def _commands(parser: argparse.ArgumentParser, prefix: str = "partime"):
    """(command name, parser) for every leaf command."""
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs:
        yield prefix, parser
    for action in subs:
        for name, sub in action.choices.items():
            yield from _commands(sub, f"{prefix} {name}")


COMMANDS = dict(_commands(build_parser()))


def _dests(parser: argparse.ArgumentParser) -> set[str]:
    return {a.dest for a in parser._actions if a.dest not in ("help", argparse.SUPPRESS)}


def _fields(*classes) -> set[str]:
    return {f.name for cls in classes for f in dataclasses.fields(cls)}


@pytest.mark.parametrize(
    ("command", "classes", "cli_only"),
    [
        ("partime solve", (SolveConfig,), {*OUTPUT_OPTIONS}),
        (
            "partime train hits",
            (HierarchyConfig, FlowMapTrainConfig, DataSizes),
            {"system", "out", "checkpoint", "backend", "workers", "address", "progress", "levels"},
        ),
        ("partime train coarse", (CoarseConfig, JacobianFitConfig), {"out", "progress"}),
        (
            "partime train cnet",
            (ContinuousNetConfig, DataConfig, TrainConfig, LayerParallelConfig),
            {"out", "json", "progress", "backend", "workers", "address", "threads"},
        ),
    ],
)
def test_options_are_the_config_fields(command, classes, cli_only):
    dests = _dests(COMMANDS[command])
    unmapped = dests - _fields(*classes) - cli_only
    assert unmapped == set(), f"{command}: options that map to no config field: {unmapped}"


def test_the_solve_options_cover_the_config():
    hidden = {"dense"}  # set from --plot
    assert _fields(SolveConfig) - hidden <= _dests(COMMANDS["partime solve"])


def test_an_option_name_means_one_thing_everywhere():
    choices: dict[str, dict[str, tuple]] = {}
    dests: dict[str, dict[str, str]] = {}
    for command, parser in COMMANDS.items():
        for action in parser._actions:
            for flag in action.option_strings:
                assert flag not in RETIRED, f"{command} still uses {flag}"
                dests.setdefault(flag, {})[command] = action.dest
                if action.choices is not None and flag in SHARED_CHOICES:
                    choices.setdefault(flag, {})[command] = tuple(action.choices)
    for flag, per_command in choices.items():
        assert len(set(per_command.values())) == 1, f"{flag} differs: {per_command}"
    for flag, per_command in dests.items():
        assert len(set(per_command.values())) == 1, f"{flag} means: {per_command}"
    assert "--backend" in choices and len(choices["--backend"]) >= 2
    assert len(dests["--no-progress"]) >= 8  # every long command has --progress/--no-progress

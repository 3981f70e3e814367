"""Options generated from config dataclasses: a union of numbers and tuples (one value, or one
per stage, as ContinuousNet's n_steps) parses "4", "0.5" and "4,2,2"."""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field

import pytest

from partime.options import add_options, config_from_args


@dataclass(frozen=True)
class PerStage:
    n_steps: int | float | tuple | None = field(default=None, metadata={"help": "steps"})


@pytest.mark.parametrize("text,value", [("4", 4), ("0.5", 0.5), ("4,2,2", (4, 2, 2))])
def test_number_or_numbers(text, value):
    parser = argparse.ArgumentParser()
    add_options(parser, PerStage)
    assert config_from_args(PerStage, parser.parse_args(["--n-steps", text])).n_steps == value
    assert config_from_args(PerStage, parser.parse_args([])).n_steps is None


def test_number_or_numbers_rejects_words(capsys):
    parser = argparse.ArgumentParser()
    add_options(parser, PerStage)
    with pytest.raises(SystemExit):
        parser.parse_args(["--n-steps", "four"])
    assert "expected a number or numbers like 4,2,2, got 'four'" in capsys.readouterr().err

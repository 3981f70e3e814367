"""``TrainConfig``: every option of the training loop, validated on construction.

The CLI maps ``--foo-bar`` onto the field ``foo_bar`` one to one (``help`` in each field's
metadata). Epochs are counted from 0: ``lr_decay_epochs=(30, 60)`` multiplies the lr by
``lr_decay_factor`` from epoch 30 on and again from 60 on (torch's MultiStepLR);
``refine_at=(10,)`` refines the model before epoch 10, i.e. after 10 finished epochs.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import torch

__all__ = ["DTYPES", "OPTIMIZERS", "TrainConfig"]

OPTIMIZERS = ("sgd", "adam")
DTYPES = {"float32": torch.float32, "float64": torch.float64}


def _help(text: str, **more: Any) -> dict:
    return {"help": text, **more}


def _check_int(name: str, value: object, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")


def _check_float(name: str, value: object, low: float, high: float, open_low: bool) -> None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or not (low < value if open_low else low <= value) or value > high:
        bound = f"({low}, {high}]" if open_low else f"[{low}, {high}]"
        raise ValueError(f"{name} must be a number in {bound}, got {value!r}")


def _check_epochs(name: str, values: object, epochs: int) -> None:
    ok = isinstance(values, tuple) and all(
        isinstance(v, int) and not isinstance(v, bool) for v in values
    )
    if not ok or list(values) != sorted(set(values)) or any(not 1 <= v < epochs for v in values):
        raise ValueError(
            f"{name} must be increasing distinct epochs in [1, epochs={epochs}), got {values!r}"
        )


@dataclass(frozen=True)
class TrainConfig:
    """Options of ``partime.train.fit``; defaults are ContinuousNet's CIFAR
    recipe (Queiruga et al.)."""

    epochs: int = field(default=10, metadata=_help("passes over the training set"))
    batch_size: int = field(default=128, metadata=_help("global batch (split over the ranks)"))
    optimizer: str = field(
        default="sgd", metadata=_help("sgd (momentum, no nesterov) or adam", choices=OPTIMIZERS)
    )
    lr: float = field(default=0.1, metadata=_help("learning rate"))
    momentum: float = field(default=0.9, metadata=_help("SGD momentum"))
    weight_decay: float = field(default=5e-4, metadata=_help("L2 weight decay"))
    adam_eps: float = field(default=1e-8, metadata=_help("Adam's epsilon (denominator term)"))
    exclude_from_decay: tuple[str, ...] = field(
        default=(),
        metadata=_help(
            "parameter-name patterns (fnmatch) without weight decay, besides the model's "
            "no_weight_decay()"
        ),
    )
    lr_decay_epochs: tuple[int, ...] = field(
        default=(), metadata=_help("epochs from which the lr is multiplied by lr_decay_factor")
    )
    lr_decay_factor: float = field(default=0.1, metadata=_help("step-decay factor"))
    refine_at: tuple[int, ...] = field(
        default=(), metadata=_help("epochs before which model.refine() is called")
    )
    seed: int = field(default=0, metadata=_help("seed of the shuffling and of torch's RNG"))
    device: str = field(default="cpu", metadata=_help("cpu or cuda[:i]"))
    dtype: str = field(default="float32", metadata=_help("float32 or float64", choices=DTYPES))
    eval_batch_size: int = field(default=1000, metadata=_help("samples per evaluation chunk"))
    checkpoint: str | None = field(
        default=None, metadata=_help("directory for a checkpoint after every epoch")
    )
    resume: bool = field(default=False, metadata=_help("continue from the checkpoint"))

    def __post_init__(self) -> None:
        _check_int("epochs", self.epochs, 1)
        _check_int("batch_size", self.batch_size, 1)
        _check_int("eval_batch_size", self.eval_batch_size, 1)
        _check_int("seed", self.seed, 0)
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {self.optimizer!r}")
        _check_float("lr", self.lr, 0.0, math.inf, open_low=True)
        _check_float("momentum", self.momentum, 0.0, 1.0, open_low=False)
        _check_float("weight_decay", self.weight_decay, 0.0, math.inf, open_low=False)
        _check_float("adam_eps", self.adam_eps, 0.0, math.inf, open_low=True)
        _check_float("lr_decay_factor", self.lr_decay_factor, 0.0, 1.0, open_low=True)
        _check_epochs("lr_decay_epochs", self.lr_decay_epochs, self.epochs)
        _check_epochs("refine_at", self.refine_at, self.epochs)
        patterns = self.exclude_from_decay
        if not isinstance(patterns, tuple) or not all(isinstance(p, str) and p for p in patterns):
            raise ValueError(f"exclude_from_decay must be a tuple of patterns, got {patterns!r}")
        if self.dtype not in DTYPES:
            raise ValueError(f"dtype must be one of {tuple(DTYPES)}, got {self.dtype!r}")
        try:
            device = torch.device(self.device)
        except (RuntimeError, TypeError) as err:
            raise ValueError(f"device must be cpu or cuda[:i], got {self.device!r}") from err
        if device.type not in ("cpu", "cuda"):
            raise ValueError(f"device must be cpu or cuda[:i], got {self.device!r}")
        if self.resume and self.checkpoint is None:
            raise ValueError("resume needs a checkpoint directory (checkpoint=DIR)")

    def as_dict(self) -> dict[str, Any]:
        """The fields as JSON-able plain types (tuples as lists)."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @property
    def torch_dtype(self) -> torch.dtype:
        return DTYPES[self.dtype]

    def lr_at(self, epoch: int) -> float:
        """The step-decayed learning rate of ``epoch`` (counted from 0)."""
        return self.lr * self.lr_decay_factor ** sum(epoch >= e for e in self.lr_decay_epochs)

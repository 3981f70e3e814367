"""A HiTS hierarchy: flow maps with steps ``steps[i]·dt``, one saved file, a selected range."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import nn

from partime.io.atomic import atomic_save
from partime.steppers.neural import (
    FORMAT_VERSION,
    NeuralStepper,
    check_dim,
    load_torch_file,
    model_from_payload,
    model_payload,
)

HIERARCHY_FORMAT = "partime.hits_hierarchy"


def default_steps(n_levels: int = 11) -> tuple[int, ...]:
    """The paper's steps 2^k (k = 0 .. n_levels−1), in units of the data spacing dt."""
    if not isinstance(n_levels, int) or n_levels < 1:
        raise ValueError(f"n_levels must be a positive integer, got {n_levels!r}")
    return tuple(2**k for k in range(n_levels))


@dataclass
class Hierarchy:
    """Flow maps ``models[i]`` advancing by ``steps[i]·dt`` (steps strictly increasing ints).

    ``selected = (lower, upper)`` (inclusive model indices) is the range cross-validation chose;
    ``active()`` is the sub-hierarchy forecasts and the coarse propagator use.
    """

    models: list[nn.Module]
    steps: list[int]
    dt: float
    system: str = ""
    selected: tuple[int, int] | None = None

    def __post_init__(self) -> None:
        self.models, self.steps = list(self.models), [int(s) for s in self.steps]
        if not self.models:
            raise ValueError("empty hierarchy: a HiTS hierarchy needs at least one model")
        if len(self.models) != len(self.steps):
            raise ValueError(f"{len(self.models)} models but {len(self.steps)} steps")
        if self.steps[0] < 1 or self.steps != sorted(set(self.steps)):
            raise ValueError(f"steps must be positive and strictly increasing, got {self.steps}")
        if not self.dt > 0:
            raise ValueError(f"dt must be positive, got {self.dt!r}")
        dims = {getattr(m, "dim", None) for m in self.models}
        if len(dims) != 1 or not isinstance(next(iter(dims)), int):
            raise ValueError(f"all models need the same integer .dim, got {sorted(map(str, dims))}")
        if self.selected is not None:
            lower, upper = self.selected = tuple(int(i) for i in self.selected)
            if not 0 <= lower <= upper < len(self.models):
                raise ValueError(
                    f"selected range {self.selected} is not within 0..{len(self.models) - 1}"
                )

    @property
    def dim(self) -> int:
        return self.models[0].dim

    def __len__(self) -> int:
        return len(self.models)

    def subset(self, lower: int, upper: int) -> Hierarchy:
        """Models ``lower..upper`` (inclusive) as a new hierarchy sharing the modules."""
        if not 0 <= lower <= upper < len(self):
            raise ValueError(f"model range [{lower}, {upper}] is not within 0..{len(self) - 1}")
        sl = slice(lower, upper + 1)
        return Hierarchy(self.models[sl], self.steps[sl], self.dt, self.system)

    def active(self) -> Hierarchy:
        """The cross-validated range if one was selected, else the whole hierarchy."""
        return self.subset(*self.selected) if self.selected is not None else self

    def stepper(self, index: int) -> NeuralStepper:
        """Model ``index`` as a single-scale Propagator of step ``steps[index]·dt``."""
        step = self.steps[index] * self.dt
        return NeuralStepper(self.models[index], step, system=self.system, dt=self.dt)

    def save(self, path: str | Path) -> None:
        """One torch.save file holding every model, the steps, dt, system and selected range."""
        blob: dict[str, Any] = {
            "format": HIERARCHY_FORMAT,
            "version": FORMAT_VERSION,
            "models": [model_payload(m) for m in self.models],
            "steps": self.steps,
            "dt": self.dt,
            "system": self.system,
            "selected": list(self.selected) if self.selected is not None else None,
        }
        atomic_save(blob, path)

    @classmethod
    def load(cls, path: str | Path, dim: int | None = None, map_location: Any = "cpu") -> Hierarchy:
        """Read a file written by ``save``; ValueError on a bad file or a ``dim`` mismatch."""
        blob = load_torch_file(path, HIERARCHY_FORMAT, "partime HiTS hierarchy", map_location)
        try:
            models = [model_from_payload(p, path) for p in blob["models"]]
            steps, dt, system = blob["steps"], blob["dt"], blob["system"]
            selected = blob["selected"]
        except (KeyError, TypeError) as err:
            raise ValueError(f"{path}: incomplete HiTS hierarchy file ({err})") from err
        try:
            hierarchy = cls(models, steps, float(dt), str(system), selected and tuple(selected))
        except ValueError as err:
            raise ValueError(f"{path}: invalid HiTS hierarchy ({err})") from err
        check_dim(path, hierarchy.dim, dim)
        return hierarchy


def load_hierarchy(path: str | Path, dim: int | None = None) -> Hierarchy:
    """``Hierarchy.load``: the hierarchy saved at ``path`` (checked against ``dim`` if given)."""
    return Hierarchy.load(path, dim)

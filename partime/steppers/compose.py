"""Cover an interval with repeated fixed steps: the shared step-count check and ``StepperCover``."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

# Relative slack when deciding that an interval is a whole number of steps: slice times come
# from ``linspace`` and differ from exact multiples by a few ulps.
_STEP_RTOL = 1e-9


def duration_of(t0: float | Tensor, t1: float | Tensor) -> float:
    """The common duration ``t1 - t0`` of scalar or per-row times (per-row must all agree)."""
    if not isinstance(t0, Tensor) and not isinstance(t1, Tensor):
        return float(t1) - float(t0)
    spans = torch.as_tensor(t1, dtype=torch.float64) - torch.as_tensor(t0, dtype=torch.float64)
    span = float(spans.reshape(-1)[0])
    if spans.numel() > 1 and float((spans - span).abs().max()) > _STEP_RTOL * max(1.0, abs(span)):
        raise ValueError(
            f"per-row intervals must share one duration; got durations from "
            f"{float(spans.min())} to {float(spans.max())}"
        )
    return span


def steps_in(duration: float, step: float, t0: float | Tensor = 0.0) -> int:
    """Number of ``step``s that make up ``duration``; ValueError unless a positive integer."""
    n = round(duration / step)
    if n < 1 or abs(n * step - duration) > _STEP_RTOL * max(1.0, abs(duration)):
        start = float(torch.as_tensor(t0).reshape(-1)[0]) if isinstance(t0, Tensor) else t0
        raise ValueError(
            f"the interval [{start}, {start + duration}] (length {duration}) is not a positive "
            f"whole number of steps dt={step}"
        )
    return n


class StepperCover:
    """Propagator that covers [t0, t1] with n = (t1-t0)/step applications of ``stepper_fn``.

    ``stepper_fn(x) -> x`` advances a (batch, dim) state by one fixed time ``step`` (an
    autonomous flow map, e.g. a trained network); ``dim`` is its state dimension.
    """

    def __init__(self, stepper_fn: Callable[[Tensor], Tensor], step: float, dim: int) -> None:
        if not step > 0:
            raise ValueError(f"StepperCover: step must be positive, got {step}")
        if dim < 1:
            raise ValueError(f"StepperCover: dim must be a positive integer, got {dim}")
        self.stepper_fn = stepper_fn
        self.step = float(step)
        self.dim = int(dim)

    def check_interval(self, t0: float | Tensor, t1: float | Tensor) -> int:
        """Number of steps covering [t0, t1]; ValueError naming t0, t1 and step otherwise."""
        return steps_in(duration_of(t0, t1), self.step, t0)

    def __call__(self, x: Tensor, t0: float | Tensor, t1: float | Tensor) -> Tensor:
        for _ in range(self.check_interval(t0, t1)):
            x = self.stepper_fn(x)
        return x

    def trajectory(
        self, x: Tensor, t0: float | Tensor, t1: float | Tensor, save_every: int = 1
    ) -> Tensor:
        """States every ``save_every`` steps incl. x: (n_steps // save_every + 1, batch, dim)."""
        n = self.check_interval(t0, t1)
        saved = [x]
        for i in range(1, n + 1):
            x = self.stepper_fn(x)
            if i % save_every == 0:
                saved.append(x)
        return torch.stack(saved)

    def __repr__(self) -> str:
        return f"StepperCover({self.stepper_fn!r}, step={self.step}, dim={self.dim})"

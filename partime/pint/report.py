"""What a solve produced (``SolveReport``) and the serial fine run it is compared with."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from partime.pint.config import SolveConfig
from partime.pint.problem import Problem
from partime.pint.state import PararealResult


@dataclass(frozen=True)
class SerialRun:
    """The serial fine solve: ``states`` (slices+1, batch, dim), warm wall time, its mode."""

    states: Tensor
    wall_s: float
    mode: str


@dataclass(frozen=True)
class SolveReport:
    """A solve on one rank: its config and problem, the parareal ``result`` (states on the root
    rank only) and, when compared, the ``serial`` fine run."""

    config: SolveConfig
    problem: Problem
    result: PararealResult
    ranks: int
    executor: str
    is_root: bool
    serial: SerialRun | None = None

    @property
    def times(self) -> Tensor:
        """Slice times (slices+1,)."""
        return self.problem.times

    @property
    def x0(self) -> Tensor:
        """Initial states (batch, dim)."""
        return self.problem.x0

    @property
    def states(self) -> Tensor | None:
        return self.result.states

    @property
    def max_abs_err_vs_serial(self) -> float | None:
        if self.states is None or self.serial is None:
            return None
        return float((self.states - self.serial.states).abs().max())

    @property
    def speedup(self) -> float | None:
        return None if self.serial is None else self.serial.wall_s / self.result.wall_s

    @property
    def cost_ratio(self) -> float | None:
        """c_G/c_F: the measured cost of one coarse call per slice over that of the serial fine
        solve per slice."""
        r = self.result
        if self.serial is None or r.coarse_calls == 0:
            return None
        return (r.coarse_s / r.coarse_calls) / (self.serial.wall_s / self.config.slices)

    @property
    def break_even_ratio(self) -> float:
        """The c_G/c_F below which the model speedup at P = slices exceeds 1 for this K."""
        k = self.result.iterations
        return max(0.0, 1.0 - k / self.config.slices) / (k + 1)

    @property
    def projected_speedup(self) -> float | None:
        """Parareal's model speedup over the serial fine solve with one slice per rank
        (P = slices): 1 / ((K+1)·c_G/c_F + K/P), from the measured ``cost_ratio`` and the K
        iterations this solve took."""
        ratio = self.cost_ratio
        if ratio is None:
            return None
        k = self.result.iterations
        return 1.0 / ((k + 1) * ratio + k / self.config.slices)

    @property
    def dense(self) -> tuple[Tensor, Tensor] | None:
        """The fine solution between slice times, (times (M,), states (M, batch, dim)), when
        the solve computed it (``config.dense``)."""
        trajectory = self.result.trajectory
        if trajectory is None:
            return None
        per_slice = (len(trajectory) - 1) // self.config.slices
        offsets = torch.arange(per_slice, dtype=torch.float64) / per_slice
        starts, ends = self.times[:-1, None], self.times[1:, None]
        dense_t = (starts + offsets * (ends - starts)).flatten()
        return torch.cat([dense_t, self.times[-1:]]), trajectory

    def summary(self) -> dict:
        """The machine-readable summary (``--json``)."""
        r = self.result
        return {
            "iterations": r.iterations,
            "residuals": r.residuals,
            "converged": r.converged,
            "wall_s": r.wall_s,
            "serial_wall_s": None if self.serial is None else self.serial.wall_s,
            "speedup": self.speedup,
            "projected_speedup": self.projected_speedup,
            "projected_ranks": self.config.slices,
            "cost_ratio": self.cost_ratio,
            "break_even_ratio": self.break_even_ratio,
            "max_abs_err_vs_serial": self.max_abs_err_vs_serial,
            "serial_mode": None if self.serial is None else self.serial.mode,
            "fine_calls": r.fine_calls,
            "coarse_calls": r.coarse_calls,
            "ranks": self.ranks,
            "executor": self.executor,
            "slices": self.config.slices,
            "batch": int(self.x0.shape[0]),
        }

"""Work units (eq. 10), counted where gradients are computed, and the per-V-cycle record.

One work unit is one gradient on the finest level; a gradient on level l costs 2^{l−L}. The
counter is incremented by the objective that computes a gradient, never from the formula, so
U_c = units per V-cycle is a measurement that equals eq. (10) when the V-cycle does what the
setup says. The coarse gradient at Θ^{l−1,0} (needed for δg) is computed once and is the first
coarse step's gradient, which is why eq. (10) does not count it separately.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from pathlib import Path

from partime.io.atomic import atomic_write


class WorkCounter:
    """Gradients and forward-only evaluations per level (1 = coarsest … ``levels``)."""

    def __init__(self, levels: int) -> None:
        self.levels = levels
        self.gradients = [0] * levels
        self.forwards = [0] * levels  # loss-only evaluations (Armijo trials), not in eq. (10)

    def add_gradient(self, level: int) -> None:
        self.gradients[level - 1] += 1

    def add_forward(self, level: int) -> None:
        self.forwards[level - 1] += 1

    @property
    def units(self) -> Fraction:
        """Σ_l gradients_l · 2^{l−L}: the work so far in finest-level gradients (exact)."""
        return sum(
            (Fraction(n, 2 ** (self.levels - level)) for level, n in enumerate(self.gradients, 1)),
            Fraction(0),
        )


@dataclass(frozen=True)
class VCycleRecord:
    """State after one V-cycle: fine training loss L_L (full training set), validation
    accuracy, cumulative work units and training wall time (evaluations excluded)."""

    v_cycle: int
    loss: float
    val_accuracy: float
    work_units: float
    wall_s: float


@dataclass
class TrainingHistory:
    """Every V-cycle's record plus what was run (setup, settings) and why it stopped."""

    settings: dict
    records: list[VCycleRecord] = field(default_factory=list)
    stopped: str = ""

    @property
    def v_cycles(self) -> int:
        return len(self.records)

    def summary(self) -> dict:
        """The JSON summary: v_cycles, work_units, val_accuracy, wall_s and the settings."""
        last = self.records[-1] if self.records else None
        return {
            **self.settings,
            "v_cycles": self.v_cycles,
            "work_units": last.work_units if last else 0.0,
            "work_per_cycle": last.work_units / last.v_cycle if last else 0.0,
            "val_accuracy": last.val_accuracy if last else float("nan"),
            "loss": last.loss if last else float("nan"),
            "wall_s": last.wall_s if last else 0.0,
            "stopped": self.stopped,
        }

    def save(self, path: str | os.PathLike) -> Path:
        """Write the summary and every record as JSON, atomically."""
        with atomic_write(path, "w") as handle:
            json.dump({**self.summary(), "records": [asdict(r) for r in self.records]}, handle)
        return Path(path)

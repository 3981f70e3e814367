"""What each HiTS trajectory dataset is: system, initial region, counts, dt (Liu, Kutz &
Brunton 2022).

The initial states follow the authors' data script exactly: one ``np.random.seed(seed)``
stream per system, drawn for train, then val, then test (row by row, components in order);
the same stream then provides the optional noise (see ``partime.data.datasets``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from partime.dynamics import get_system, reference_solution

SPLITS = ("train", "val", "test")
N_POINTS = 5121  # 1024 * n_forward(5) steps + the initial state


@dataclass(frozen=True)
class Box:
    """Uniform initial states in the box low <= x <= high (one bound per component)."""

    low: tuple[float, ...]
    high: tuple[float, ...]

    def __post_init__(self) -> None:
        if len(self.low) != len(self.high) or not self.low:
            raise ValueError(f"Box: low {self.low} and high {self.high} need the same length >= 1")
        if not all(math.isfinite(a) and math.isfinite(b) and a < b for a, b in self.pairs):
            raise ValueError(f"Box: need finite low < high per component, got {self.pairs}")

    @property
    def pairs(self) -> tuple[tuple[float, float], ...]:
        return tuple(zip(self.low, self.high, strict=True))

    @property
    def dim(self) -> int:
        return len(self.low)

    def sample(self, rng: np.random.RandomState, n: int) -> np.ndarray:
        """(n, dim) float64 draws, row-major: the order of a per-trajectory Python loop."""
        return rng.uniform(self.low, self.high, size=(n, self.dim))


@dataclass(frozen=True)
class TrajectorySpec:
    """An ODE dataset: ``counts[split]`` trajectories of ``n_points`` states spaced ``dt``.

    ``eval_region`` (if set) replaces ``region`` for val/test. ``warmup_steps > 0`` means the
    authors' Lorenz protocol: per split one random start, ``warmup_steps`` steps discarded,
    then the trajectories are chained (each starts where the previous one ended).
    """

    system: str
    dt: float
    counts: tuple[int, int, int]
    region: Box
    eval_region: Box | None = None
    warmup_steps: int = 0
    n_points: int = N_POINTS

    def __post_init__(self) -> None:
        if not (math.isfinite(self.dt) and self.dt > 0):
            raise ValueError(f"{self.system}: dt must be positive and finite, got {self.dt!r}")
        if len(self.counts) != 3 or min(self.counts) < 1:
            raise ValueError(f"{self.system}: counts must be 3 positive ints, got {self.counts}")
        if self.warmup_steps < 0 or self.n_points < 2:
            raise ValueError(f"{self.system}: bad warmup_steps/n_points {self}")
        if self.eval_region is not None and self.eval_region.dim != self.region.dim:
            raise ValueError(f"{self.system}: eval_region and region differ in dimension")

    @property
    def dim(self) -> int:
        return self.region.dim

    def split_region(self, split: str) -> Box:
        return self.region if split == "train" or self.eval_region is None else self.eval_region

    def starts(self, seed: int) -> tuple[dict[str, np.ndarray], np.random.RandomState]:
        """Random draws of every split (full counts) and the stream left for the noise."""
        rng = np.random.RandomState(seed)
        per_split = 1 if self.warmup_steps else None
        draws = {
            split: self.split_region(split).sample(rng, per_split or count)
            for split, count in zip(SPLITS, self.counts, strict=True)
        }
        return draws, rng

    def simulate(self, split: str, starts: np.ndarray, n_traj: int, n_points: int) -> np.ndarray:
        """Clean float64 trajectories (n_traj, n_points, dim) from this split's draws."""
        field = get_system(self.system)
        times = self.dt * np.arange(n_points)
        if not self.warmup_steps:
            # All trajectories of the split as one stacked system: one solve_ivp call.
            x0 = torch.from_numpy(starts[:n_traj])
            return reference_solution(field, x0, times).numpy().transpose(1, 0, 2)
        warm = self.dt * np.arange(self.warmup_steps + 1)
        state = reference_solution(field, torch.from_numpy(starts), warm)[-1]
        out = np.empty((n_traj, n_points, self.dim))
        # Chained: trajectory i + 1 starts at the last state of trajectory i, as in the
        # authors' script; always full-length steps, so the chain does not depend on n_points.
        full = self.dt * np.arange(self.n_points)
        for i in range(n_traj):
            traj = reference_solution(field, state, full)
            out[i] = traj[:n_points, 0].numpy()
            state = traj[-1]
        return out


DATASET_SPECS_ODE: dict[str, TrajectorySpec] = {
    "hyperbolic": TrajectorySpec("hyperbolic", 0.01, (1600, 320, 320), Box((-1, -1), (1, 1))),
    "cubic": TrajectorySpec("cubic", 0.01, (3200, 320, 320), Box((-1, -1), (1, 1))),
    "vdp": TrajectorySpec(
        "vdp", 0.01, (3200, 320, 320), Box((-2, -4), (2, 4)), eval_region=Box((-2, -2), (2, 2))
    ),
    "hopf": TrajectorySpec("hopf", 0.01, (3200, 320, 320), Box((-0.2, -1, -1), (0.6, 2, 1))),
    "lorenz": TrajectorySpec(
        "lorenz", 5e-4, (6400, 640, 640), Box((-0.1,) * 3, (0.1,) * 3), warmup_steps=10000
    ),
}

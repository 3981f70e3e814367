"""The Kuramoto–Sivashinsky dataset: one 4001-snapshot sequence per split, by ETDRK4."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from partime.data.specs import SPLITS
from partime.dynamics import KuramotoSivashinsky
from partime.dynamics.ks import DEFAULT_LENGTH
from partime.integrators import ETDRK4


@dataclass(frozen=True)
class KSSpec:
    """KS on ``n`` points of [0, length): snapshots every ``dt`` (``substeps`` ETDRK4 steps).

    Defaults follow Kassam & Trefethen: length 32 pi, u0 = cos(x/16)(1 + sin(x/16)), step
    1/4; 4001 snapshots (t = 0..1000) as in the HiTS paper. The splits are one chained
    sequence: train starts at u0, val where train ends, test where val ends (no randomness;
    the seed only drives the optional noise).
    """

    n: int = 512
    length: float = DEFAULT_LENGTH
    dt: float = 0.25
    substeps: int = 1
    n_points: int = 4001
    counts: tuple[int, int, int] = (1, 1, 1)

    def __post_init__(self) -> None:
        if not (math.isfinite(self.dt) and self.dt > 0) or self.substeps < 1:
            raise ValueError(
                f"KSSpec: need dt > 0 and substeps >= 1, got {self.dt}, {self.substeps}"
            )
        if self.counts != (1, 1, 1) or self.n_points < 2:
            raise ValueError(f"KSSpec: one sequence of >= 2 snapshots per split, got {self}")

    @property
    def dim(self) -> int:
        return self.n

    def starts(self, seed: int) -> tuple[dict[str, np.ndarray], np.random.RandomState]:
        """No random starts; the stream is left whole for the noise."""
        return {}, np.random.RandomState(seed)

    def simulate(self, split: str, starts: None, n_traj: int, n_points: int) -> np.ndarray:
        """Clean float64 snapshots (1, n_points, n) of this split."""
        ks = KuramotoSivashinsky(self.n, self.length)
        stepper = ETDRK4(ks.linear, ks.nonlinear, self.dt / self.substeps)
        v_hat = ks.to_fourier(ks.initial_condition(1))
        for _ in SPLITS[: SPLITS.index(split)]:
            v_hat = stepper.integrate(v_hat, (self.n_points - 1) * self.substeps)
        steps = (n_points - 1) * self.substeps
        snapshots = stepper.integrate(v_hat, steps, save_every=self.substeps)
        return ks.to_physical(snapshots)[:, 0].numpy()[None]


KS_SPEC = KSSpec()

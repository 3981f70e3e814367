"""ETDRK4 for the Kuramoto–Sivashinsky equation as a physical-space propagator."""

from __future__ import annotations

from torch import Tensor

from partime.dynamics import KuramotoSivashinsky
from partime.integrators import ETDRK4
from partime.steppers.compose import duration_of, steps_in


class SpectralPropagator:
    """``prop(u, t0, t1)`` for KS states u (batch, n) on the grid: ETDRK4 steps of ``dt`` in
    Fourier space, n = (t1-t0)/dt of them (validated). The equation is autonomous, so per-row
    times only need a common duration."""

    def __init__(self, ks: KuramotoSivashinsky, dt: float) -> None:
        if not dt > 0:
            raise ValueError(f"SpectralPropagator: dt must be positive, got {dt}")
        self.ks = ks
        self.dt = float(dt)
        self.dim = ks.dim
        self.scheme = ETDRK4(ks.linear, ks.nonlinear, self.dt)

    def check_interval(self, t0: float | Tensor, t1: float | Tensor) -> int:
        """Number of steps covering [t0, t1]; ValueError naming t0, t1 and dt otherwise."""
        return steps_in(duration_of(t0, t1), self.dt, t0)

    def __call__(self, u: Tensor, t0: float | Tensor, t1: float | Tensor) -> Tensor:
        v_hat = self.scheme.integrate(self.ks.to_fourier(u), self.check_interval(t0, t1))
        return self.ks.to_physical(v_hat).to(u.dtype)

    def trajectory(
        self, u: Tensor, t0: float | Tensor, t1: float | Tensor, save_every: int = 1
    ) -> Tensor:
        """States every ``save_every`` steps incl. u: (n_steps // save_every + 1, batch, n)."""
        n = self.check_interval(t0, t1)
        v_hats = self.scheme.integrate(self.ks.to_fourier(u), n, save_every=save_every)
        return self.ks.to_physical(v_hats).to(u.dtype)

    def __repr__(self) -> str:
        return f"SpectralPropagator({self.ks!r}, dt={self.dt})"

"""Explicit Runge–Kutta propagator: any Butcher tableau, fixed step ``dt``."""

from __future__ import annotations

from torch import Tensor

from partime.dynamics.base import ComponentSystem, VectorField
from partime.integrators import ButcherTableau, get_tableau, integrate
from partime.integrators.sweep import BatchedPass, FusedSweep, batched_pass, fused_sweep
from partime.steppers.compose import duration_of, steps_in


class RKPropagator:
    """``prop(x, t0, t1)``: integrate ``f`` from t0 to t1 with n = (t1-t0)/dt fixed RK steps.

    ``x`` is (batch, dim); t0/t1 floats or per-row 1-D tensors with a common duration.
    ``fast=None`` lets the integrator pick its compiled path when it pays off. Picklable, so
    it can be shipped once to Ray actors.
    """

    def __init__(
        self,
        f: VectorField,
        dt: float,
        scheme: str | ButcherTableau = "rk4",
        fast: bool | None = None,
    ) -> None:
        if not dt > 0:
            raise ValueError(f"RKPropagator: dt must be positive, got {dt}")
        self.tableau = get_tableau(scheme)  # validates the name up front
        self.f = f
        self.dt = float(dt)
        self.scheme = scheme
        self.fast = fast
        self.dim = int(f.dim)

    @property
    def static_shapes(self) -> bool:
        """True when calls run compiled kernels built per batch shape (``fast=True`` on a
        ComponentSystem): callers warm them up before timing and keep batch shapes fixed."""
        return self.fast is True and isinstance(self.f, ComponentSystem)

    def check_interval(self, t0: float | Tensor, t1: float | Tensor) -> int:
        """Number of steps covering [t0, t1]; ValueError naming t0, t1 and dt otherwise."""
        return steps_in(duration_of(t0, t1), self.dt, t0)

    def __call__(self, x: Tensor, t0: float | Tensor, t1: float | Tensor) -> Tensor:
        n = self.check_interval(t0, t1)
        return integrate(self.f, x, t0, self.dt, n, scheme=self.tableau, fast=self.fast)

    def trajectory(
        self, x: Tensor, t0: float | Tensor, t1: float | Tensor, save_every: int = 1
    ) -> Tensor:
        """States every ``save_every`` steps incl. x: (n_steps // save_every + 1, batch, dim)."""
        n = self.check_interval(t0, t1)
        return integrate(
            self.f, x, t0, self.dt, n, scheme=self.tableau, save_every=save_every, fast=self.fast
        )

    def batched_pass(self, x: Tensor, t0: Tensor, t1: Tensor) -> BatchedPass | None:
        """The fine solves of slices [t0[j], t1[j]] ((m,) tensors, one duration) from states
        like ``x`` (m, batch, dim), as one compiled call checked once here: what
        ``self(x.flatten(0, 1), per-row t0, per-row t1)`` returns, reshaped; None where each
        pass must go through ``__call__`` (see ``partime.integrators.sweep``)."""
        n = self.check_interval(t0, t1)  # one duration for all slices, as a per-row call
        return batched_pass(self.f, self.tableau, x, t0, self.dt, n, self.fast)

    def fused_sweep(self, x: Tensor, t0: Tensor, t1: Tensor) -> FusedSweep | None:
        """Parareal's coarse sweep over the slices [t0[j], t1[j]] ((m,) tensors, or (m, batch)
        per row) for states like ``x`` (batch, dim), as one compiled call; None where it must
        run slice by slice (see ``partime.integrators.sweep``)."""
        # per slice: floats (cheap to check), per row: each slice's (batch,) times
        starts, ends = (t0.tolist(), t1.tolist()) if t0.ndim == 1 else (t0, t1)
        n_steps = [self.check_interval(a, b) for a, b in zip(starts, ends, strict=True)]
        return fused_sweep(self.f, self.tableau, x, t0, self.dt, n_steps, self.fast)

    def __repr__(self) -> str:
        name = self.scheme if isinstance(self.scheme, str) else "custom"
        return f"RKPropagator({getattr(self.f, 'name', self.f)!r}, dt={self.dt}, scheme={name!r})"

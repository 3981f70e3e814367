"""ETDRK4 (Cox–Matthews, with Kassam–Trefethen's contour-integral coefficients) for stiff PDEs.

Solves ``v' = L v + N(v)`` with ``L`` diagonal (e.g. a PDE in Fourier space): the stiff linear
part is integrated exactly and the nonlinear part by a fourth-order exponential RK scheme.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

from partime.integrators.explicit import _check_count, _check_dt

CONTOUR_POINTS = 32


class ETDRK4:
    """Fixed-step ETDRK4 for ``v' = linear * v + nonlinear(v)``; states are (..., n_modes)."""

    def __init__(self, linear: Tensor, nonlinear: Callable[[Tensor], Tensor], dt: float) -> None:
        if not isinstance(linear, Tensor) or linear.ndim != 1:
            raise ValueError(f"linear must be a 1-D tensor of per-mode eigenvalues, got {linear!r}")
        if not bool(torch.isfinite(linear).all()):
            raise ValueError(f"linear has non-finite entries: {linear}")
        if not callable(nonlinear):
            raise TypeError(f"nonlinear must be callable, got {type(nonlinear).__name__}")
        self.dt = _check_dt(dt)
        self.nonlinear = nonlinear
        self.linear = linear
        self._coefficients = _coefficients(linear.to(torch.complex128), self.dt)
        self._cast: dict[tuple, tuple[Tensor, ...]] = {}

    @property
    def n_modes(self) -> int:
        """Length of the trailing (mode) dimension of the states."""
        return self.linear.shape[0]

    def _coefficients_like(self, v: Tensor) -> tuple[Tensor, ...]:
        key = (v.dtype, v.device)
        if key not in self._cast:
            coefficients = self._coefficients
            if not v.is_complex():
                if self.linear.is_complex() and bool((self.linear.imag != 0).any()):
                    raise TypeError(
                        f"a real state (dtype {v.dtype}) needs a real linear operator; "
                        "pass a complex state"
                    )
                coefficients = tuple(c.real for c in coefficients)
            self._cast[key] = tuple(c.to(dtype=v.dtype, device=v.device) for c in coefficients)
        return self._cast[key]

    def step(self, v: Tensor) -> Tensor:
        """Advance ``v`` (..., n_modes) by one step ``dt``; differentiable."""
        if not isinstance(v, Tensor):
            raise TypeError(f"state must be a torch.Tensor, got {type(v).__name__}")
        if v.ndim == 0 or v.shape[-1] != self.n_modes:
            raise ValueError(
                f"state of shape {tuple(v.shape)} does not match the {self.n_modes} modes of "
                f"the linear operator (expected shape (..., {self.n_modes}))"
            )
        e, e2, q, f1, f2, f3 = self._coefficients_like(v)
        n = self.nonlinear
        nv = n(v)
        a = e2 * v + q * nv
        na = n(a)
        b = e2 * v + q * na
        nb = n(b)
        c = e2 * a + q * (2 * nb - nv)
        nc = n(c)
        return e * v + f1 * nv + 2 * f2 * (na + nb) + f3 * nc

    def integrate(self, v0: Tensor, n_steps: int, save_every: int | None = None) -> Tensor:
        """``n_steps`` steps from ``v0``: the final state, or with ``save_every=s`` the
        trajectory (n_steps // s + 1, *v0.shape) at steps 0, s, 2s, ..."""
        n_steps = _check_count(n_steps, "n_steps", 0)
        if save_every is None:
            v = v0
            for _ in range(n_steps):
                v = self.step(v)
            return v
        save_every = _check_count(save_every, "save_every", 1)
        states = [v0]
        for _ in range(n_steps // save_every):
            v = states[-1]
            for _ in range(save_every):
                v = self.step(v)
            states.append(v)
        return torch.stack(states)


def _coefficients(linear: Tensor, dt: float) -> tuple[Tensor, ...]:
    """E, E/2, Q, f1, f2, f3 of Kassam & Trefethen (2005), complex128 (n_modes,)."""
    hl = dt * linear
    # Mean over a circle of radius 1 around each h*L_k evaluates the phi-functions without the
    # cancellation of their closed forms near h*L_k = 0 (Kassam & Trefethen, section 3). The
    # full circle (not the real-axis half trick) also serves complex eigenvalues.
    j = torch.arange(1, CONTOUR_POINTS + 1, dtype=torch.float64)
    roots = torch.exp(2j * math.pi * (j - 0.5) / CONTOUR_POINTS)
    lr = hl[:, None] + roots[None, :]
    exp_lr = torch.exp(lr)
    q = dt * ((torch.exp(lr / 2) - 1) / lr).mean(dim=1)
    f1 = dt * ((-4 - lr + exp_lr * (4 - 3 * lr + lr**2)) / lr**3).mean(dim=1)
    f2 = dt * ((2 + lr + exp_lr * (-2 + lr)) / lr**3).mean(dim=1)
    f3 = dt * ((-4 - 3 * lr - lr**2 + exp_lr * (4 - lr)) / lr**3).mean(dim=1)
    return torch.exp(hl), torch.exp(hl / 2), q, f1, f2, f3

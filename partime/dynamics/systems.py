"""The low-dimensional benchmark systems of the HiTS paper (plus a harmonic oscillator).

Every ``components`` expression uses only arithmetic on its arguments and Python-float
constants, so the same code runs on torch tensors of any dtype/device (differentiably, and
fusable by the integrators' compiled path) and on numpy arrays (the scipy references).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from partime.dynamics.base import ComponentSystem


def _finite_float(owner: str, name: str, value: float) -> float:
    """Return ``value`` as a Python float, or raise ValueError naming it if it is not finite."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{owner}: {name} must be a real number, got {value!r}") from None
    if not math.isfinite(number):
        raise ValueError(f"{owner}: {name} must be finite, got {value!r}")
    return number


class HarmonicOscillator(ComponentSystem):
    """x' = v, v' = -omega^2 x; the one system here with a closed-form solution."""

    name = "harmonic"
    dim = 2

    def __init__(self, omega: float = 1.0) -> None:
        self.omega = _finite_float(self.name, "omega", omega)
        if self.omega <= 0.0:
            raise ValueError(f"{self.name}: omega must be positive, got {omega!r}")

    def components(self, t, x, v):
        return v, -(self.omega**2) * x

    def exact(self, x0: Tensor, t: float | Tensor) -> Tensor:
        """Exact state at time ``t`` (broadcasting with x0[..., 0]) from ``x0`` (..., 2) at 0."""
        self.check_state(x0)
        t = torch.as_tensor(t, dtype=x0.dtype, device=x0.device)
        x, v = x0.unbind(-1)
        cos, sin = torch.cos(self.omega * t), torch.sin(self.omega * t)
        return torch.stack((x * cos + v / self.omega * sin, -x * self.omega * sin + v * cos), -1)


class Hyperbolic(ComponentSystem):
    """Hyperbolic fixed point: x' = mu x, y' = lam (y - x^2) (HiTS: mu=-0.05, lam=-1)."""

    name = "hyperbolic"
    dim = 2

    def __init__(self, mu: float = -0.05, lam: float = -1.0) -> None:
        self.mu = _finite_float(self.name, "mu", mu)
        self.lam = _finite_float(self.name, "lam", lam)

    def components(self, t, x, y):
        return self.mu * x, self.lam * (y - x * x)


class CubicOscillator(ComponentSystem):
    """Damped cubic oscillator: x' = -a x^3 + b y^3, y' = -b x^3 - a y^3 (a=0.1, b=2)."""

    name = "cubic"
    dim = 2

    def __init__(self, damping: float = 0.1, coupling: float = 2.0) -> None:
        self.damping = _finite_float(self.name, "damping", damping)
        self.coupling = _finite_float(self.name, "coupling", coupling)

    def components(self, t, x, y):
        x3, y3 = x * x * x, y * y * y
        return -self.damping * x3 + self.coupling * y3, -self.coupling * x3 - self.damping * y3


class VanDerPol(ComponentSystem):
    """Van der Pol oscillator: x' = y, y' = mu (1 - x^2) y - x (HiTS: mu=2)."""

    name = "vdp"
    dim = 2

    def __init__(self, mu: float = 2.0) -> None:
        self.mu = _finite_float(self.name, "mu", mu)

    def components(self, t, x, y):
        return y, self.mu * (1.0 - x * x) * y - x


class Hopf(ComponentSystem):
    """Hopf normal form with the parameter as a state: [mu, x, y], mu' = 0,
    x' = mu x + y - x (x^2 + y^2), y' = mu y - x - y (x^2 + y^2)."""

    name = "hopf"
    dim = 3

    def components(self, t, mu, x, y):
        r2 = x * x + y * y
        # 0.0 * mu rather than zeros_like: keeps the expression valid for numpy arrays too.
        return 0.0 * mu, mu * x + y - x * r2, mu * y - x - y * r2


class Lorenz(ComponentSystem):
    """Lorenz system: x' = sigma (y - x), y' = x (rho - z) - y, z' = x y - beta z."""

    name = "lorenz"
    dim = 3

    def __init__(self, sigma: float = 10.0, rho: float = 28.0, beta: float = 8.0 / 3.0) -> None:
        self.sigma = _finite_float(self.name, "sigma", sigma)
        self.rho = _finite_float(self.name, "rho", rho)
        self.beta = _finite_float(self.name, "beta", beta)

    def components(self, t, x, y, z):
        return self.sigma * (y - x), x * (self.rho - z) - y, x * y - self.beta * z

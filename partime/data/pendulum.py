"""The nonlinear pendulum lifted to 64 dimensions: koopmanAE's recipe (SEEDS-wave2 S4c).

The exact solution θ(t) = 2·arcsin(S·sn(K(S²) − ω₀t, S²)), S = sin(θ₀/2), ω₀ = √9.81, and its
derivative, at t = 0, 0.1, …, 219.9 (2200 samples); the noise array (2, 2200) is drawn before
the rotation Q (QR of a 64 × 2 normal matrix) from one ``RandomState(seed)`` stream, so that Q is
koopmanAE's; then X·Qᵀ, scaled to [−1, 1] by its global min and range. Training: the first 600.
"""

from __future__ import annotations

import numpy as np
from scipy.special import ellipj, ellipk

__all__ = ["PENDULUM_DT", "lifted_pendulum", "pendulum_state"]

PENDULUM_DT = 0.1
_N_SAMPLES, _DIM, _N_TRAIN = 2200, 64, 600


def pendulum_state(t: np.ndarray, theta0: float) -> np.ndarray:
    """(len(t), 2): angle θ and angular velocity dθ/dt of the frictionless pendulum released
    at rest from ``theta0`` (g/l = 9.81)."""
    s = np.sin(0.5 * theta0)
    omega0 = np.sqrt(9.81)
    sn, cn, dn, _ = ellipj(ellipk(s**2) - omega0 * t, s**2)
    theta = 2.0 * np.arcsin(s * sn)
    dtheta = 2.0 * s * (-omega0 * cn * dn) / np.sqrt(1.0 - (s * sn) ** 2)
    return np.stack([theta, dtheta], axis=1)


def lifted_pendulum(
    theta0: float = 2.4, seed: int = 1, noise: float = 0.0
) -> tuple[np.ndarray, np.ndarray]:
    """(train (600, 64), test (1600, 64)) in [−1, 1]. koopmanAE uses θ₀ = 2.4 with seed 1
    (``pendulum``) and θ₀ = 0.8 with seed 0 (``pendulum_lin``)."""
    if not 0 < theta0 < np.pi:
        raise ValueError(f"theta0 must be in (0, π) (a swinging pendulum), got {theta0}")
    if noise < 0:
        raise ValueError(f"noise must be >= 0, got {noise}")
    rng = np.random.RandomState(seed)  # = koopmanAE's np.random.seed(seed) stream, same order
    t = np.arange(0, _N_SAMPLES * PENDULUM_DT, PENDULUM_DT)
    states = pendulum_state(t, theta0).T  # (2, 2200)
    states = states + rng.standard_normal(states.shape) * noise
    q, _ = np.linalg.qr(rng.standard_normal((_DIM, 2)))
    lifted = states.T @ q.T
    lifted = 2 * (lifted - lifted.min()) / np.ptp(lifted) - 1
    return lifted[:_N_TRAIN], lifted[_N_TRAIN:]

"""The nonlinear pendulum lifted to 64 dimensions: koopmanAE's recipe.

The exact solution θ(t) = 2·arcsin(S·sn(K(S²) − ω₀t, S²)), S = sin(θ₀/2), ω₀ = √9.81, and its
derivative, at t = 0, 0.1, …, 219.9 (2200 samples); the noise array (2, 2200) is drawn before
the rotation Q (QR of a 64 × 2 normal matrix) from one ``RandomState(seed)`` stream, so that Q is
koopmanAE's; then X·Qᵀ, scaled to [−1, 1] by its global min and range. Training: the first 600.
"""

from __future__ import annotations

import numpy as np
from scipy.special import ellipj, ellipk

__all__ = ["PENDULUM_DT", "PENDULUM_TRAIN", "lifted_pendulum", "pendulum_state"]

PENDULUM_DT = 0.1
PENDULUM_TRAIN = 600  # koopmanAE's training window
_N_SAMPLES, _DIM = 2200, 64


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
    theta0: float = 2.4, seed: int = 1, noise: float = 0.0, n_samples: int = _N_SAMPLES
) -> np.ndarray:
    """(n_samples, 64) in [−1, 1], spacing 0.1; the first 600 are koopmanAE's training set.
    koopmanAE uses θ₀ = 2.4 with seed 1 (``pendulum``) and θ₀ = 0.8 with seed 0
    (``pendulum_lin``). Samples past 2200 continue the same solution with the same Q and scale
    (their noise is drawn after Q), so the first 2200 are koopmanAE's either way."""
    if not 0 < theta0 < np.pi:
        raise ValueError(f"theta0 must be in (0, π) (a swinging pendulum), got {theta0}")
    if noise < 0:
        raise ValueError(f"noise must be >= 0, got {noise}")
    if n_samples < _N_SAMPLES:
        raise ValueError(
            f"n_samples must be >= {_N_SAMPLES} (the recipe's length), got {n_samples}"
        )
    rng = np.random.RandomState(seed)  # = koopmanAE's np.random.seed(seed) stream, same order
    states = pendulum_state(np.arange(n_samples) * PENDULUM_DT, theta0).T  # (2, n)
    recipe, later = states[:, :_N_SAMPLES], states[:, _N_SAMPLES:]
    recipe = recipe + rng.standard_normal(recipe.shape) * noise
    q, _ = np.linalg.qr(rng.standard_normal((_DIM, 2)))
    later = later + rng.standard_normal(later.shape) * noise
    lifted = np.concatenate([recipe, later], axis=1).T @ q.T
    low, span = (recipe.T @ q.T).min(), np.ptp(recipe.T @ q.T)
    return 2 * (lifted - low) / span - 1

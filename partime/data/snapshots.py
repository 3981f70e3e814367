"""Spatio-temporal snapshot sets for the MrCAE autoencoders: the two toy fields of the paper
(formulas as the authors' notebooks compute them) and user ``.npy`` files.

Snapshots are (T, H, W) with H, W of the form 2^p − 1 (each level halves them: 127 → 63 → 31),
min-max scaled to [0, 1] over the whole array, split at random 70 / 20 / 10 (seeded here; the
authors' shuffle is unseeded).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = [
    "SNAPSHOT_SETS",
    "SnapshotSplits",
    "check_snapshots",
    "load_snapshots",
    "split_snapshots",
    "toy1",
    "toy2",
]

_GRID = 127
_T = 500
_OMEGA0, _OMEGA1, _SIGMA0, _SIGMA1 = 0.5, 4.0, 10.0, 0.25


def _mesh(t_end: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(T, 127, 127) coordinates t, y (rows), x (columns) on [−5, 5]² × [0, t_end]."""
    axis = np.linspace(-5, 5, _GRID)
    t = np.linspace(0, t_end, _T)
    return np.meshgrid(t, axis, axis, indexing="ij")


def _background(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """u(x, y) = sech((x+1)/σ₀)·sech((y−1)/σ₀): the large slow mode (the paper prints cosh)."""
    return 1.0 / np.cosh((x + 1) / _SIGMA0) / np.cosh((y - 1) / _SIGMA0)


def _gaussian(x: np.ndarray, y: np.ndarray, cx: np.ndarray, cy: np.ndarray) -> np.ndarray:
    """1/(σ₁√(2π))·exp(−((x−cx)² + (y−cy)²)/(2σ₁²)) (the paper prints (2πσ₁)^(−1/2))."""
    r2 = (x - cx) ** 2 + (y - cy) ** 2
    return np.exp(-r2 / (2 * _SIGMA1**2)) / (_SIGMA1 * math.sqrt(2 * math.pi))


def _min_max(field: np.ndarray) -> np.ndarray:
    return (field - field.min()) / (field.max() - field.min())


def toy1() -> np.ndarray:
    """Toy 1 (T=500, 127, 127) in [0, 1]: u·cos(ω₀t) + v·cos(ω₁t + π/4) on t ∈ [0, 8π], v a
    fixed Gaussian at (1, −1)."""
    t, y, x = _mesh(8 * np.pi)
    field = _background(x, y) * np.cos(_OMEGA0 * t)
    field += _gaussian(x, y, 1.0, -1.0) * np.cos(_OMEGA1 * t + np.pi / 4)
    return _min_max(field)


def toy2() -> np.ndarray:
    """Toy 2 (T=500, 127, 127) in [0, 1]: u·cos(ω₀t) + v(t)·cos(ω₁t) on t ∈ [0, 4π], v a
    Gaussian drifting from (3, −3) along the diagonal at speed 0.5 (the code: no π/4 phase)."""
    t, y, x = _mesh(4 * np.pi)
    field = _background(x, y) * np.cos(_OMEGA0 * t)
    field += _gaussian(x, y, 3.0 - 0.5 * t, -3.0 + 0.5 * t) * np.cos(_OMEGA1 * t)
    return _min_max(field)


#: Built-in snapshot sets by name.
SNAPSHOT_SETS = {"toy1": toy1, "toy2": toy2}


def check_snapshots(data: np.ndarray, name: str = "snapshots", levels: int | None = None) -> None:
    """Refuse what MrCAE cannot take: not (T, H, W), non-finite values, H or W not 2^p − 1
    (or too small for ``levels`` halvings: the coarsest level needs at least 3 × 3)."""
    if data.ndim != 3 or data.shape[0] < 1:
        raise ValueError(f"{name}: expected snapshots (T, H, W), got shape {data.shape}")
    if not np.issubdtype(data.dtype, np.floating) and not np.issubdtype(data.dtype, np.integer):
        raise ValueError(f"{name}: expected real numbers, got dtype {data.dtype}")
    for side in data.shape[1:]:
        if side < 3 or ((side + 1) & side) != 0:
            raise ValueError(
                f"{name}: snapshot size {data.shape[1]}x{data.shape[2]} is not (2^p-1)x(2^q-1) "
                f"(e.g. 127x127, 63x255); resize or crop it"
            )
    if levels is not None:
        coarsest = (min(data.shape[1:]) + 1) // 2 ** (levels - 1) - 1
        if coarsest < 3:
            raise ValueError(
                f"{name}: {data.shape[1]}x{data.shape[2]} is too small for {levels} levels "
                f"(the coarsest would be {coarsest} wide; at least 3 is needed)"
            )
    if not np.isfinite(data).all():
        bad = int((~np.isfinite(data)).sum())
        raise ValueError(f"{name}: {bad} NaN/Inf values")


def load_snapshots(source: str, levels: int | None = None) -> np.ndarray:
    """A built-in set by name (``toy1``, ``toy2``) or a user ``.npy`` file of (T, H, W)
    snapshots (min-max scaled here), validated; float64."""
    if source in SNAPSHOT_SETS:
        data = SNAPSHOT_SETS[source]()
    else:
        path = Path(source)
        if path.suffix != ".npy":
            raise ValueError(f"data must be one of {tuple(SNAPSHOT_SETS)} or a .npy file: {source}")
        if not path.is_file():
            raise FileNotFoundError(f"no snapshot file {path}")
        data = np.load(path, allow_pickle=False)
        check_snapshots(data, str(path), levels)
        if data.max() == data.min():
            raise ValueError(f"{path}: every value is {data.min()}: nothing to encode")
        data = _min_max(data.astype(np.float64))
    check_snapshots(data, source, levels)
    return data.astype(np.float64)


@dataclass(frozen=True)
class SnapshotSplits:
    """Train / validation / test snapshots (n, H, W) and their indices in the full set."""

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray
    indices: tuple[np.ndarray, np.ndarray, np.ndarray]


def split_snapshots(
    data: np.ndarray, seed: int, fractions: tuple[float, float] = (0.7, 0.2)
) -> SnapshotSplits:
    """A seeded random split: int(0.7·T) training, int(0.2·T) validation, the rest test."""
    order = np.random.default_rng(seed).permutation(len(data))
    n_train, n_val = int(fractions[0] * len(data)), int(fractions[1] * len(data))
    if n_train < 1 or n_val < 1:
        raise ValueError(f"{len(data)} snapshots are too few to split 70/20/10")
    parts = np.split(order, [n_train, n_train + n_val])
    return SnapshotSplits(*(data[p] for p in parts), indices=tuple(parts))

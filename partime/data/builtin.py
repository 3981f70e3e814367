"""Classification sets that need no files: scikit-learn's bundled digits, ``mnist1d`` generated
procedurally by its package (never its download path) and concentric circles
(the MG/OPT paper's set).

Each returns float64 inputs and int64 labels as numpy arrays; splitting, normalisation and the
dtype are ``partime.data.classification``'s business.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from partime._optional import require
from partime.io.atomic import atomic_write_with

__all__ = ["MNIST1D_VARIANTS", "Mnist1dVariant", "circles", "digits", "mnist1d"]


def digits() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's 1797 8×8 digits: images (N, 1, 8, 8) scaled to [0, 1], labels (N,)."""
    datasets = require("sklearn.datasets", "data")
    bunch = datasets.load_digits()
    return bunch.images[:, None] / 16.0, bunch.target.astype(np.int64)


def circles(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` points of [−3, 3]²: class 0 uniform by area in ‖x‖ ≤ 1, class 1 in 2 ≤ ‖x‖ < 3,
    balanced (⌈n/2⌉ and ⌊n/2⌋), shuffled: inputs (n, 2), labels (n,)."""
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.arange(n) % 2)
    inner, outer = np.where(labels == 0, 0.0, 2.0), np.where(labels == 0, 1.0, 3.0)
    # Uniform by area in the ring inner <= r < outer: r² uniform between inner² and outer².
    radius = np.sqrt(inner**2 + rng.random(n) * (outer**2 - inner**2))
    angle = rng.random(n) * 2 * np.pi
    return np.stack([radius * np.cos(angle), radius * np.sin(angle)], axis=1), labels


@dataclass(frozen=True)
class Mnist1dVariant:
    """How a mnist1d set is generated: the package's defaults times noise factors."""

    corr_noise_factor: float = 1.0
    iid_noise_factor: float = 1.0


#: "mnist1d" is the package's default; "mnist1d-hard" has ×4 correlated and iid noise (the
#: default leaves ~2% error, too little to separate LM-ResNet from ResNet).
MNIST1D_VARIANTS = {
    "mnist1d": Mnist1dVariant(),
    "mnist1d-hard": Mnist1dVariant(corr_noise_factor=4.0, iid_noise_factor=4.0),
}


def mnist1d(
    variant: str, n: int, seed: int, cache_dir: Path | None
) -> tuple[np.ndarray, np.ndarray]:
    """``n`` mnist1d signals (n, 1, 40) and labels (n,) from ``mnist1d.data.make_dataset`` with
    ``seed``, in the package's order (its train part first); cached as .npz in ``cache_dir``."""
    noise = MNIST1D_VARIANTS[variant]
    total = -(-n // 10) * 10  # the package makes num_samples // 10 per class
    path = None if cache_dir is None else cache_dir / f"{variant}_n{total}_seed{seed}.npz"
    if path is not None and path.is_file():
        with np.load(path) as stored:
            return stored["x"][:n], stored["y"][:n]
    package = require("mnist1d.data", "data")
    args = package.get_dataset_args()
    args.num_samples, args.seed = total, seed
    args.corr_noise_scale *= noise.corr_noise_factor
    args.iid_noise_scale *= noise.iid_noise_factor
    # make_dataset reseeds numpy's and Python's global generators: leave the caller's alone.
    numpy_state, python_state = np.random.get_state(), random.getstate()
    try:
        made = package.make_dataset(args)
    finally:
        np.random.set_state(numpy_state)
        random.setstate(python_state)
    x = np.concatenate([made["x"], made["x_test"]])[:, None].astype(np.float64)
    y = np.concatenate([made["y"], made["y_test"]]).astype(np.int64)
    if path is not None:
        atomic_write_with(lambda handle: np.savez(handle, x=x, y=y), path)
    return x[:n], y[:n]

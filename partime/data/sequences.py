"""Snapshot sequences y_0, y_1, … for the Lyapunov autoencoder: a training window and what
follows it in time (to score long rollouts).

- ``cylinder``: the lattice-Boltzmann wake (``partime.data.cylinder``, cached), vorticity cropped
  to ±3 D around the wake axis from 1 D behind the cylinder to the absorbing layer, every
  ``stride``-th node, flattened; minus the training window's mean, divided by its largest
  deviation (the koopmanAE variant mean-subtracts and scales to [−1, 1]).
- ``pendulum``: koopmanAE's lifted pendulum (64-D, already in [−1, 1]), 600 training samples.
- a ``.npy``/``.npz`` file of (T, ...) snapshots, flattened and scaled like the cylinder.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from partime.data.cylinder import CylinderConfig, cylinder_flow
from partime.data.pendulum import PENDULUM_TRAIN, lifted_pendulum
from partime.options import option

__all__ = ["Sequence", "SequenceConfig", "load_sequence", "wake_crop"]


@dataclass(frozen=True)
class SequenceConfig:
    """Which sequence and how long: ``n_train`` training snapshots, then ``horizon`` + the
    rollout starts' spread for scoring."""

    data: str = option("cylinder", "cylinder, pendulum or a .npy/.npz file of (T, ...) snapshots")
    n_train: int | None = option(None, "training snapshots (default: 100 cylinder, 600 pendulum)")
    horizon: int = option(1000, "rollout steps scored after the training window")
    starts: int = option(10, "rollout initial conditions (every 5th snapshot after training)")
    stride: int = option(3, "cylinder: keep every stride-th lattice node of the wake")

    def __post_init__(self) -> None:
        for name in ("horizon", "starts", "stride"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if self.n_train is not None and (not isinstance(self.n_train, int) or self.n_train < 3):
            raise ValueError(f"n_train must be an integer >= 3, got {self.n_train!r}")

    @property
    def training(self) -> int:
        default = PENDULUM_TRAIN if self.data == "pendulum" else 100
        return self.n_train if self.n_train is not None else default

    @property
    def length(self) -> int:
        """Snapshots needed: training window, then every start's full horizon."""
        return self.training + 5 * (self.starts - 1) + self.horizon + 1


@dataclass(frozen=True)
class Sequence:
    """``train`` (n_train, m), then ``later`` (the snapshots right after it, (n, m))."""

    train: np.ndarray
    later: np.ndarray
    name: str

    @property
    def dim(self) -> int:
        return self.train.shape[1]


def wake_crop(vorticity: np.ndarray, config: CylinderConfig, stride: int) -> np.ndarray:
    """(T, ny, nx) -> (T, m): the wake behind the cylinder, every ``stride``-th node."""
    cx, cy = config.centre
    d = config.diameter
    rows = slice(int(cy - 3 * d), int(cy + 3 * d), stride)
    cols = slice(int(cx + d), config.nx - config.sponge - 1, stride)
    return vorticity[:, rows, cols].reshape(len(vorticity), -1)


def _standardised(data: np.ndarray, n_train: int, name: str) -> Sequence:
    if not np.isfinite(data).all():
        raise ValueError(f"{name}: the snapshots contain NaN/Inf")
    mean = data[:n_train].mean(0)
    scale = np.abs(data[:n_train] - mean).max()
    if scale == 0:
        raise ValueError(f"{name}: the training snapshots are constant")
    data = (data - mean) / scale
    return Sequence(data[:n_train], data[n_train:], name)


def load_sequence(
    config: SequenceConfig, cache_dir: str | os.PathLike | None = None, progress: bool = False
) -> Sequence:
    """The sequence ``config`` names (the cylinder flow is generated once into ``cache_dir``)."""
    n = config.training
    if config.data == "pendulum":
        lifted = lifted_pendulum(n_samples=max(2200, config.length))
        return Sequence(lifted[:n], lifted[n:], "pendulum")
    if config.data == "cylinder":
        from partime.data.datasets import default_cache_dir

        flow_config = CylinderConfig(snapshots=config.length)
        flow = cylinder_flow(flow_config, cache_dir or default_cache_dir(), progress)
        return _standardised(wake_crop(flow.vorticity, flow_config, config.stride), n, "cylinder")
    path = Path(config.data)
    if path.suffix not in (".npy", ".npz"):
        raise ValueError(f"data must be cylinder, pendulum or a .npy/.npz file, got {config.data}")
    if not path.is_file():
        raise FileNotFoundError(f"no snapshot file {path}")
    if path.suffix == ".npy":
        data = np.load(path, allow_pickle=False)
    else:
        with np.load(path, allow_pickle=False) as stored:
            data = stored[stored.files[0]]
    data = np.asarray(data, dtype=np.float64)
    if data.ndim < 2 or len(data) < n + 2:
        raise ValueError(f"{path}: need (T, ...) snapshots with T > n_train + 1, got {data.shape}")
    return _standardised(data.reshape(len(data), -1), n, str(path))

"""``make_dataset``: HiTS trajectory datasets, generated once with scipy and cached as .npz.

Noise (``noise`` = 0.01 or 0.02 in the paper) follows the authors' script: per component c,
sigma_c = noise * (std over time of each trajectory, averaged over the split's trajectories),
and x += sigma_c * N(0, 1) independently per entry. (The paper's text says "variance", the
code scales the standard deviation; we follow the code.) The normals come from the same
``RandomState(seed)`` stream after all initial draws, train first, then val, then test, at
full size -- so a full-size split reproduces the authors' random numbers exactly.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Protocol

import numpy as np
import torch
from torch import Tensor

from partime.data.ks import KS_SPEC
from partime.data.specs import DATASET_SPECS_ODE, SPLITS
from partime.io.atomic import atomic_write_with

_NORMAL_CHUNK = 2_000_000  # numbers per draw while skipping/drawing noise (bounded memory)


class DatasetSpec(Protocol):
    """What ``make_dataset`` needs from a dataset description."""

    dim: int
    dt: float
    counts: tuple[int, int, int]
    n_points: int

    def starts(self, seed: int) -> tuple[dict[str, np.ndarray], np.random.RandomState]: ...

    def simulate(
        self, split: str, starts: np.ndarray, n_traj: int, n_points: int
    ) -> np.ndarray: ...


#: Every dataset by system name: the five ODE sets of the HiTS paper and Kuramoto–Sivashinsky.
DATASET_SPECS: Mapping[str, DatasetSpec] = {**DATASET_SPECS_ODE, "ks": KS_SPEC}


def default_cache_dir() -> Path:
    """``$PARTIME_CACHE/datasets`` if that variable is set, else ``~/.cache/partime/datasets``."""
    root = os.environ.get("PARTIME_CACHE")
    return Path(root) / "datasets" if root else Path.home() / ".cache" / "partime" / "datasets"


def _positive_int_or_none(name: str, value: object, upper: int) -> int:
    if value is None:
        return upper
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= upper:
        raise ValueError(f"{name} must be an integer in [1, {upper}], got {value!r}")
    return value


def _noise_normals(
    rng: np.random.RandomState, spec: DatasetSpec, split: str, n_traj: int, n_points: int
) -> np.ndarray:
    """This split's standard normals (n_traj, n_points, dim), consistent with full-size draws."""
    row = spec.n_points * spec.dim
    before = sum(spec.counts[: SPLITS.index(split)]) * row
    while before > 0:  # skip the earlier splits' numbers
        rng.standard_normal(min(before, _NORMAL_CHUNK))
        before -= min(before, _NORMAL_CHUNK)
    per_chunk = max(1, _NORMAL_CHUNK // row)
    out = np.empty((n_traj, n_points, spec.dim))
    for i in range(0, n_traj, per_chunk):
        block = rng.standard_normal((min(per_chunk, n_traj - i), spec.n_points, spec.dim))
        out[i : i + len(block)] = block[:, :n_points]
    return out


def add_noise(clean: np.ndarray, noise: float, normals: np.ndarray) -> np.ndarray:
    """clean + noise * (per-component std over time, averaged over trajectories) * normals."""
    scale = noise * clean.std(axis=1).mean(axis=0)
    return clean + scale * normals


def _validate(
    system: str, split: str, noise: float, seed: int, n_traj: int | None, n_points: int | None
) -> tuple[DatasetSpec, int, int]:
    """Check every argument (clear errors naming the value); fill in the default sizes."""
    spec = dataset_spec(system)
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    if not (isinstance(noise, (int, float)) and math.isfinite(noise) and noise >= 0):
        raise ValueError(f"noise must be a finite number >= 0, got {noise!r}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    n_traj = _positive_int_or_none("n_traj", n_traj, spec.counts[SPLITS.index(split)])
    return spec, n_traj, _positive_int_or_none("n_points", n_points, spec.n_points)


def generate(
    system: str,
    split: str = "train",
    noise: float = 0.0,
    seed: int = 2,
    n_traj: int | None = None,
    n_points: int | None = None,
) -> np.ndarray:
    """Compute (no cache) a dataset as float64 numpy (n_traj, n_points, dim)."""
    spec, n_traj, n_points = _validate(system, split, noise, seed, n_traj, n_points)
    starts, rng = spec.starts(seed)
    data = spec.simulate(split, starts.get(split), n_traj, n_points)
    if noise > 0:
        data = add_noise(data, noise, _noise_normals(rng, spec, split, n_traj, n_points))
    return data


def dataset_spec(system: str) -> DatasetSpec:
    """The spec of a dataset name; unknown names raise ValueError listing the known ones."""
    if system not in DATASET_SPECS:
        raise ValueError(f"unknown dataset {system!r}; known: {', '.join(DATASET_SPECS)}")
    return DATASET_SPECS[system]


def make_dataset(
    system: str,
    split: str = "train",
    noise: float = 0.0,
    seed: int = 2,
    cache_dir: str | os.PathLike | None = None,
    *,
    n_traj: int | None = None,
    n_points: int | None = None,
    dtype: torch.dtype = torch.float32,
    cache: bool = True,
) -> Tensor:
    """Trajectories (n_traj, n_points, dim) as a ``dtype`` tensor; spacing DATASET_SPECS[system].dt.

    Defaults give the paper's full split (5121 points; KS: 4001 snapshots). The data is cached
    as .npz in ``cache_dir`` (default ``default_cache_dir()``) unless ``cache=False``; the file
    name holds every argument that changes the numbers.
    """
    spec, n_traj, n_points = _validate(system, split, noise, seed, n_traj, n_points)
    if not cache:
        return torch.from_numpy(generate(system, split, noise, seed, n_traj, n_points)).to(dtype)
    # float64 requests keep the full precision on disk; anything else stores float32 (half
    # the disk: the Lorenz training split is 393 MB in float32).
    stored_dtype = np.float64 if dtype == torch.float64 else np.float32
    directory = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    name = f"{system}_{split}_seed{seed}_noise{noise:g}_n{n_traj}_p{n_points}_"
    path = directory / f"{name}{np.dtype(stored_dtype).name}.npz"
    if path.exists():
        with np.load(path) as stored:
            return torch.from_numpy(stored["data"]).to(dtype)
    data = generate(system, split, noise, seed, n_traj, n_points).astype(stored_dtype)
    # atomically, so concurrent ranks never read a half-written file
    atomic_write_with(lambda handle: np.savez(handle, data=data, dt=spec.dt), path)
    return torch.from_numpy(data).to(dtype)

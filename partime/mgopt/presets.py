"""The paper's two experiments on data available offline: circles (full batch) as in the paper,
and a minibatch stand-in for its MNIST run (digits or mnist1d, MNIST itself is not offline).

Inputs are flattened to (N, q) features; circles keep their raw coordinates in [−3, 3]²;
images and signals get the paper's MNIST preprocessing (scaled to [0, 1] by the loader, then the
per-feature mean of the training split subtracted).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from partime.comm.base import Comm
from partime.data import DataConfig, load_classification
from partime.mgopt.distributed import PartitionedResNetLevels
from partime.mgopt.model import ResNetLevels, ResNetSpec
from partime.mgopt.sgd import MGOptConfig, train_mgopt
from partime.mgopt.work import TrainingHistory


@dataclass(frozen=True)
class Preset:
    """Width, β, step size, minibatch (0: full batch) and stopping accuracy of one experiment."""

    width: int
    beta: float
    lr: float
    batch_size: int
    target_accuracy: float
    note: str


PRESETS = {
    "circles": Preset(3, 1e-4, 0.1, 0, 1.0, "the paper's circles: full batch, stop at 1.0"),
    # MNIST's settings (width 10, β 1e-5, batch 1000 of 60k, stop > 0.93) scaled to digits:
    # 1257 training images, minibatch 100; α 0.01 as for MNIST crawls, 0.1 is used
    "digits": Preset(10, 1e-5, 0.1, 100, 0.93, "stand-in for the paper's MNIST, stop at 0.93"),
    "mnist1d": Preset(10, 1e-5, 0.1, 100, 0.6, "stand-in for MNIST; width 10 nets plateau ~0.65"),
}


def load_preset_data(
    name: str, seed: int, dtype: torch.dtype = torch.float64
) -> tuple[tuple[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor], int]:
    """(train, val, classes) of preset ``name`` with data seed ``seed``: x (N, q), labels (N,)."""
    if name not in PRESETS:
        raise ValueError(f"unknown MG/OPT data {name!r}; known: {', '.join(PRESETS)}")
    # digits: its 360 test images validate (the paper stops on validation; no test here)
    counts = {"n_train": 1437, "n_val": 360} if name == "digits" else {}
    config = DataConfig(name, data_seed=seed, n_test=0, normalize=False, **counts)
    data = load_classification(config, dtype=dtype)
    (x, y), (xv, yv) = data.train, data.val
    x, xv = x.flatten(1), xv.flatten(1)
    if name != "circles":
        mean = x.mean(dim=0)
        x, xv = x - mean, xv - mean
    return (x, y), (xv, yv), data.n_classes


def run_preset(
    name: str,
    depth: int,
    setup: str,
    seed: int = 0,
    data_seed: int = 0,
    progress: bool = False,
    chain: str = "auto",
    comm: Comm | None = None,
    **overrides,
) -> tuple[torch.Tensor, TrainingHistory]:
    """Train the preset's network of ``depth`` layers with ``setup`` (its level count) from
    init seed ``seed`` on data of ``data_seed``; ``overrides`` replace MGOptConfig fields
    (lr, batch_size, target_accuracy, …) and ``beta``/``width``. With a ``comm`` of several
    ranks every level is split in depth over them (the same answer, layer-parallel)."""
    levels = MGOptConfig(setup=setup).vcycle_setup.levels
    train, val, classes = load_preset_data(name, data_seed)
    preset = PRESETS[name]
    spec = ResNetSpec(
        in_features=train[0].shape[1], width=overrides.pop("width", preset.width),
        classes=classes, depth=depth, levels=levels, beta=overrides.pop("beta", preset.beta),
    )  # fmt: skip
    defaults = {"lr": preset.lr, "batch_size": preset.batch_size}
    defaults["target_accuracy"] = preset.target_accuracy
    config = MGOptConfig(setup=setup, seed=seed, **{**defaults, **overrides})
    settings = {"data": name, "data_seed": data_seed, "width": spec.width}
    if comm is not None and comm.size > 1:
        problem = PartitionedResNetLevels(spec, comm, chain, dtype=train[0].dtype)
        settings["ranks"] = comm.size
    else:
        problem = ResNetLevels(spec, chain)
    return train_mgopt(problem, config, train, val, progress, settings)

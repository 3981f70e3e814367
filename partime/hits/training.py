"""Train a HiTS hierarchy, the models shared out over the ranks of a Comm and gathered on root.

Model j gets seed ``seed + j`` (weights and minibatches), so the result does not depend on how
many ranks trained it. Each model keeps its own checkpoint file, so an interrupted run resumes.
"""

from __future__ import annotations

import time
from pathlib import Path

from torch import Tensor

from partime.comm import Comm, SerialComm
from partime.hits.config import HierarchyConfig, init_model, model_data, stage_config
from partime.hits.hierarchy import Hierarchy
from partime.hits.stacked import train_share_stacked
from partime.steppers.flow_training import train_flow_map, training_windows
from partime.steppers.neural import FlowMapMLP, model_from_payload, model_payload


def owned_models(n_models: int, rank: int, size: int) -> list[int]:
    """The models rank ``rank`` of ``size`` trains: rank, rank + size, ... (round robin)."""
    return list(range(rank, n_models, size))


def checkpoint_path(directory: str | Path, index: int, step: int, stage: int = 0) -> Path:
    """Per-model (and per learning-rate stage after the first) checkpoint file in ``directory``."""
    suffix = f"_lr{stage}" if stage else ""
    return Path(directory) / f"model{index:02d}_step{step}{suffix}.pt"


def train_one(
    index: int,
    data: Tensor,
    val_data: Tensor | None,
    config: HierarchyConfig,
    time_budget: float | None = None,
    checkpoint_dir: str | Path | None = None,
    progress: bool = False,
) -> tuple[FlowMapMLP, list[float]]:
    """Build model ``index`` from its own seed and train it; returns the model and losses."""
    step, seed = config.steps[index], config.train.seed + index
    model = init_model(index, data.shape[-1], config)
    data, val_data = model_data(data, index, config), model_data(val_data, index, config)
    history = []
    for stage in range(len(config.lr_stages)):
        ckpt = None
        if checkpoint_dir is not None:
            ckpt = checkpoint_path(checkpoint_dir, index, step, stage)
        cfg = stage_config(config, stage, seed, time_budget)
        history += train_flow_map(
            model, data, step, cfg, val_data=val_data, checkpoint=ckpt, progress=progress
        )
    return model, history


def check_training_inputs(
    data: Tensor, val_data: Tensor | None, dt: float, config: HierarchyConfig
) -> None:
    """ValueError unless data/val_data (n_traj, n_points, dim) fit every step and dt > 0."""
    for name, d in (("data", data), ("val_data", val_data)):
        if d is not None:
            training_windows(d, config.steps[-1], config.train.n_forward)
            if d.shape[-1] != data.shape[-1]:
                raise ValueError(
                    f"dimension mismatch: {name} has dim {d.shape[-1]}, data {data.shape[-1]}"
                )
    if not dt > 0:
        raise ValueError(f"dt must be positive, got {dt!r}")


def train_share(
    indices: list[int],
    data: Tensor,
    val_data: Tensor | None,
    config: HierarchyConfig,
    checkpoint_dir: str | Path | None = None,
    progress: bool = False,
) -> dict[int, dict]:
    """Train models ``indices`` one after the other (``config.time_budget`` spread evenly
    over them), or all together with ``config.stacked``; returns {index: model_payload}."""
    if config.stacked:
        return train_share_stacked(indices, data, val_data, config, checkpoint_dir, progress)
    trained = {}
    start = time.perf_counter()
    for k, index in enumerate(indices):
        budget = None
        if config.time_budget is not None:
            left = config.time_budget - (time.perf_counter() - start)
            budget = max(0.0, left) / (len(indices) - k)
        if progress:
            print(f"model {index} (step {config.steps[index]}·dt): training", flush=True)
        model, history = train_one(index, data, val_data, config, budget, checkpoint_dir, progress)
        trained[index] = model_payload(model)
        if progress:
            last = f"{history[-1]:.3e}" if history else "n/a"
            print(f"model {index}: {len(history)} epochs, last loss {last}", flush=True)
    return trained


def gather_hierarchy(
    parts: list[dict[int, dict]], config: HierarchyConfig, dt: float, system: str = ""
) -> Hierarchy:
    """One Hierarchy from the {index: payload} shares of every worker."""
    payloads = {i: p for part in parts for i, p in part.items()}
    missing = sorted(set(range(len(config.steps))) - set(payloads))
    if missing:
        raise ValueError(f"no trained model came back for indices {missing}")
    models = [model_from_payload(payloads[i], "<gathered>") for i in range(len(config.steps))]
    return Hierarchy(models, list(config.steps), float(dt), system)


def train_hierarchy(
    data: Tensor,
    dt: float,
    config: HierarchyConfig | None = None,
    *,
    val_data: Tensor | None = None,
    comm: Comm | None = None,
    system: str = "",
    checkpoint_dir: str | Path | None = None,
    progress: bool = False,
) -> Hierarchy | None:
    """Train one flow map per step of ``config`` on data (n_traj, n_points, dim) spaced ``dt``.

    Every rank of ``comm`` (default serial) trains its share; the Hierarchy is returned on the
    root rank, None elsewhere. Progress is shown on the root rank only.
    """
    comm = comm or SerialComm()
    config = config or HierarchyConfig()
    check_training_inputs(data, val_data, dt, config)  # every rank alike, before any comm
    mine = owned_models(len(config.steps), comm.rank, comm.size)
    trained = train_share(
        mine, data, val_data, config, checkpoint_dir, progress=progress and comm.is_root
    )
    gathered = comm.gather(trained, root=0)
    if not comm.is_root:
        return None
    return gather_hierarchy(gathered, config, dt, system)

"""Train a HiTS hierarchy, the models shared out over the ranks of a Comm and gathered on root.

Model j gets seed ``seed + j`` (weights and minibatches), so the result does not depend on how
many ranks trained it. Each model keeps its own checkpoint file, so an interrupted run resumes.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import torch
from torch import Tensor

from partime.comm import Comm, SerialComm
from partime.hits.hierarchy import Hierarchy, default_steps
from partime.steppers.flow_training import FlowMapTrainConfig, train_flow_map, training_windows
from partime.steppers.neural import ACTIVATIONS, FlowMapMLP, model_from_payload, model_payload


@dataclasses.dataclass(frozen=True)
class HierarchyConfig:
    """What to train: ``steps`` (multiples of the data spacing), MLP ``widths``, per-model
    options ``train`` (its seed is the base seed), a wall-clock ``time_budget`` in seconds for
    the whole hierarchy (each rank spreads it evenly over the models it has left),
    ``normalize`` (per-dimension input/output scaling of every MLP; not in the paper),
    ``all_windows``: every model trains (and validates) on all consecutive windows of its
    own length in each trajectory (``chunk_trajectories``), not only the first (the paper's),
    so small steps also see states late in the trajectories; and
    ``lr_stages``: the epochs are split evenly into stages run with ``train.lr`` times these
    factors, each from the best model of the one before (a step schedule; the paper keeps
    lr constant, ``(1.0,)``); ``device`` and ``dtype`` the models train on (the saved models
    come back to the CPU in that dtype); ``stacked``: a rank trains its share of the models
    together in batched matrix products (``partime.hits.stacked``; the same models up to
    rounding, one loop instead of one per model: the way to use a GPU); ``activation`` of
    every MLP (a key of ``ACTIVATIONS``; ReLU is the paper's)."""

    steps: tuple[int, ...] = default_steps()
    widths: tuple[int, ...] = (128, 128, 128)
    train: FlowMapTrainConfig = FlowMapTrainConfig()
    time_budget: float | None = None
    normalize: bool = False
    lr_stages: tuple[float, ...] = (1.0,)
    all_windows: bool = False
    device: str = "cpu"
    dtype: str = "float32"
    stacked: bool = False
    activation: str = "relu"

    def __post_init__(self) -> None:
        object.__setattr__(self, "steps", tuple(self.steps))
        object.__setattr__(self, "widths", tuple(self.widths))
        object.__setattr__(self, "lr_stages", tuple(self.lr_stages))
        if not self.lr_stages or any(not f > 0 for f in self.lr_stages):
            raise ValueError(f"lr_stages must be positive factors, got {self.lr_stages}")
        if not self.steps:
            raise ValueError("empty hierarchy: give at least one step")
        if any(not isinstance(s, int) or s < 1 for s in self.steps) or list(self.steps) != sorted(
            set(self.steps)
        ):
            raise ValueError(f"steps must be distinct positive integers, increasing: {self.steps}")
        if not self.widths or any(not isinstance(w, int) or w < 1 for w in self.widths):
            raise ValueError(f"widths must be positive integers, got {self.widths}")
        if self.time_budget is not None and not self.time_budget > 0:
            raise ValueError(f"time_budget must be positive seconds or None: {self.time_budget}")
        if self.dtype not in ("float32", "float64"):
            raise ValueError(f"dtype must be 'float32' or 'float64', got {self.dtype!r}")
        try:
            device = torch.device(self.device)
        except (RuntimeError, TypeError) as err:
            raise ValueError(f"device must name a torch device, got {self.device!r}") from err
        if device.type == "cuda" and not torch.cuda.is_available():
            raise ValueError(f"device {self.device!r} asked for, but CUDA is not available")
        if self.activation not in ACTIVATIONS:
            raise ValueError(
                f"unknown activation {self.activation!r}; known: {', '.join(ACTIVATIONS)}"
            )
        if not isinstance(self.train, FlowMapTrainConfig):
            raise TypeError(f"train must be a FlowMapTrainConfig, got {type(self.train)}")


def chunk_trajectories(data: Tensor, n_points: int) -> Tensor:
    """Cut every trajectory of data (n_traj, N, dim) into consecutive pieces of ``n_points``
    states (neighbours share an end state) -> (n_traj · ((N − 1) // (n_points − 1)), n_points,
    dim): more training windows (one per piece) from the same trajectories."""
    if not isinstance(n_points, int) or not 2 <= n_points <= data.shape[1]:
        raise ValueError(f"n_points must be an integer in [2, {data.shape[1]}], got {n_points!r}")
    stride = n_points - 1
    pieces = (data.shape[1] - 1) // stride
    return torch.cat([data[:, i * stride : i * stride + n_points] for i in range(pieces)])


def owned_models(n_models: int, rank: int, size: int) -> list[int]:
    """The models rank ``rank`` of ``size`` trains: rank, rank + size, ... (round robin)."""
    return list(range(rank, n_models, size))


def checkpoint_path(directory: str | Path, index: int, step: int, stage: int = 0) -> Path:
    """Per-model (and per learning-rate stage after the first) checkpoint file in ``directory``."""
    suffix = f"_lr{stage}" if stage else ""
    return Path(directory) / f"model{index:02d}_step{step}{suffix}.pt"


# Stage k of a model draws its minibatches from seed + k * _STAGE_SEED (a fresh sequence).
_STAGE_SEED = 7919


def stage_epochs(max_epochs: int, n_stages: int) -> list[int]:
    """``max_epochs`` split into ``n_stages`` near-equal parts (earlier stages get the rest)."""
    base, rest = divmod(max_epochs, n_stages)
    return [base + (k < rest) for k in range(n_stages)]


def init_model(index: int, dim: int, config: HierarchyConfig) -> FlowMapMLP:
    """Model ``index`` with its seeded initial weights, on ``config.device`` and ``dtype``."""
    with torch.random.fork_rng():  # seeded init without touching the caller's global RNG
        torch.manual_seed(config.train.seed + index)
        model = FlowMapMLP(dim, config.widths, config.normalize, config.activation)
    return model.to(torch.device(config.device), getattr(torch, config.dtype))


def model_data(data: Tensor | None, index: int, config: HierarchyConfig) -> Tensor | None:
    """The trajectories model ``index`` trains on: data itself, or with ``all_windows`` data cut
    into pieces of one window of that model's step."""
    if data is None or not config.all_windows:
        return data
    return chunk_trajectories(data, config.train.n_forward * config.steps[index] + 1)


def stage_config(
    config: HierarchyConfig, stage: int, seed: int, budget: float | None
) -> FlowMapTrainConfig:
    """FlowMapTrainConfig of learning-rate stage ``stage`` for the model seeded ``seed``."""
    epochs = stage_epochs(config.train.max_epochs, len(config.lr_stages))
    return dataclasses.replace(
        config.train,
        lr=config.train.lr * config.lr_stages[stage],
        max_epochs=epochs[stage],
        seed=seed + stage * _STAGE_SEED,
        time_budget=None if budget is None else budget / len(config.lr_stages),
    )


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
        from partime.hits.stacked import train_share_stacked

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
    config: HierarchyConfig = HierarchyConfig(),
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
    check_training_inputs(data, val_data, dt, config)  # every rank alike, before any comm
    mine = owned_models(len(config.steps), comm.rank, comm.size)
    trained = train_share(
        mine, data, val_data, config, checkpoint_dir, progress=progress and comm.is_root
    )
    gathered = comm.gather(trained, root=0)
    if not comm.is_root:
        return None
    return gather_hierarchy(gathered, config, dt, system)

"""What a HiTS hierarchy training is (``HierarchyConfig``) and how each model is set up from
it: seeded initial weights, the windows it trains on, its learning-rate stages."""

from __future__ import annotations

import dataclasses

import torch
from torch import Tensor

from partime.hits.hierarchy import default_steps
from partime.options import option
from partime.steppers.flow_training import FlowMapTrainConfig
from partime.steppers.neural import ACTIVATIONS, FlowMapMLP


@dataclasses.dataclass(frozen=True)
class HierarchyConfig:
    """What to train: one flow map per step, each with the per-model options ``train`` (its
    seed is the base seed; model j uses seed + j). ``lr_stages`` split the epochs evenly into
    stages, each from the best model of the one before; ``stacked`` gives the same models up
    to rounding (``partime.hits.stacked``); saved models come back to the CPU in ``dtype``."""

    steps: tuple[int, ...] = option(
        default_steps(), "model steps in units of the data spacing dt (default 1,2,...,1024)"
    )
    widths: tuple[int, ...] = option((128, 128, 128), "hidden widths of every MLP")
    train: FlowMapTrainConfig = FlowMapTrainConfig()
    time_budget: float | None = option(
        None, "seconds for the whole hierarchy on each rank, spread over its models"
    )
    normalize: bool = option(
        False, "per-dimension input/output scaling of every MLP (not in the paper)"
    )
    lr_stages: tuple[float, ...] = option(
        (1.0,), "lr factors of equal epoch shares, e.g. 1,0.1 (the paper: 1, constant lr)"
    )
    all_windows: bool = option(
        False, "train each model on every window of its length in a trajectory, not the first"
    )
    device: str = option("cpu", "where to train: cpu, cuda, cuda:1, ...")
    dtype: str = option("float32", "model dtype", choices=("float32", "float64"))
    stacked: bool = option(
        False, "train a rank's models together in batched matmuls (same models; use on a GPU)"
    )
    activation: str = option(
        "relu", "nonlinearity of every MLP (the paper: relu)", choices=tuple(ACTIVATIONS)
    )

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


# Stage k of a model draws its minibatches from seed + k * _STAGE_SEED (a fresh sequence).
_STAGE_SEED = 7919


def stage_epochs(epochs: int, n_stages: int) -> list[int]:
    """``epochs`` split into ``n_stages`` near-equal parts (earlier stages get the rest)."""
    base, rest = divmod(epochs, n_stages)
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
    per_stage = stage_epochs(config.train.epochs, len(config.lr_stages))
    return dataclasses.replace(
        config.train,
        lr=config.train.lr * config.lr_stages[stage],
        epochs=per_stage[stage],
        seed=seed + stage * _STAGE_SEED,
        time_budget=None if budget is None else budget / len(config.lr_stages),
    )

"""Training a flow map on trajectories with the HiTS multi-step loss (Liu, Kutz & Brunton
2022): Adam on minibatches of windows, early stop, best-on-validation weights, resumable
checkpoints."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from partime.io.atomic import atomic_save
from partime.options import option

__all__ = ["FlowMapTrainConfig", "multi_step_loss", "train_flow_map", "training_windows"]


@dataclasses.dataclass(frozen=True)
class FlowMapTrainConfig:
    """Options of ``train_flow_map``; defaults are the HiTS paper's (Liu, Kutz & Brunton 2022).

    One "epoch" is one Adam step on a random minibatch of ``batch_size`` windows. Training
    stops at ``loss <= loss_tol``, after ``epochs`` or after ``time_budget`` seconds
    (counted across resumes). Loss = ``mean_weight``·mean + (1 − mean_weight)·max of the
    squared errors. With validation data the best model (checked every ``val_every`` epochs)
    is kept; a checkpoint file is rewritten every ``checkpoint_every`` epochs.
    """

    n_forward: int = option(5, "steps in the multi-step loss")
    lr: float = option(1e-3, "Adam learning rate")
    batch_size: int = option(320, "windows per Adam step")
    epochs: int = option(100_000, "Adam steps per model")
    time_budget: float | None = option(None, "seconds per model")
    loss_tol: float = option(1e-8, "stop a model at this training loss")
    seed: int = option(0, "seed of the weights and minibatches")
    mean_weight: float = option(1.0, "loss = w·mean + (1-w)·max of the squared errors")
    val_every: int = option(1000, "epochs between validation checks (the best model is kept)")
    checkpoint_every: int = option(1000, "epochs between checkpoint writes")

    def __post_init__(self) -> None:
        for name in ("n_forward", "batch_size", "val_every", "checkpoint_every"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ValueError(f"{name} must be a positive integer, got {getattr(self, name)!r}")
        if not isinstance(self.epochs, int) or self.epochs < 0:
            raise ValueError(f"epochs must be a non-negative integer, got {self.epochs!r}")
        if not self.lr > 0:
            raise ValueError(f"lr must be positive, got {self.lr!r}")
        if self.time_budget is not None and not self.time_budget >= 0:
            raise ValueError(f"time_budget must be >= 0 seconds or None, got {self.time_budget!r}")
        if not 0.0 <= self.mean_weight <= 1.0:
            raise ValueError(f"mean_weight must lie in [0, 1], got {self.mean_weight!r}")


# Options that must match when a checkpoint is resumed (budgets may change between runs).
_RESUME_KEYS = ("n_forward", "lr", "batch_size", "seed", "mean_weight")


def training_windows(data: Tensor, stride: int, n_forward: int) -> Tensor:
    """One window per trajectory: frames 0, s, …, n_forward·s of data (n_traj, n_points, dim)
    -> (n_traj, n_forward + 1, dim)."""
    if not isinstance(data, Tensor) or data.ndim != 3 or data.shape[0] == 0:
        shape = tuple(data.shape) if isinstance(data, Tensor) else type(data).__name__
        raise ValueError(f"training data must be a tensor (n_traj, n_points, dim), got {shape}")
    if not isinstance(stride, int) or stride < 1:
        raise ValueError(f"stride must be a positive integer (steps of dt), got {stride!r}")
    if n_forward * stride > data.shape[1] - 1:
        raise ValueError(
            f"trajectories of {data.shape[1]} points are too short for {n_forward} steps of "
            f"stride {stride} (need {n_forward * stride + 1} points)"
        )
    return data[:, : n_forward * stride + 1 : stride]


def multi_step_loss(model: nn.Module, windows: Tensor, mean_weight: float = 1.0) -> Tensor:
    """Roll ``model`` out from frame 0 of each window; squared error over batch × steps × dims."""
    x, preds = windows[:, 0], []
    for _ in range(windows.shape[1] - 1):
        x = model(x)
        preds.append(x)
    err = (torch.stack(preds, dim=1) - windows[:, 1:]).square()
    if mean_weight == 1.0:
        return err.mean()
    return mean_weight * err.mean() + (1.0 - mean_weight) * err.max()


def train_flow_map(
    model: nn.Module,
    data: Tensor,
    stride: int,
    config: FlowMapTrainConfig | None = None,
    *,
    val_data: Tensor | None = None,
    checkpoint: str | Path | None = None,
    progress: bool = False,
    **options: Any,
) -> list[float]:
    """Train a flow map of ``stride`` data steps on data (n_traj, n_points, dim) in place.

    ``options`` override fields of ``config`` (e.g. ``epochs=2000``). With ``checkpoint``
    an interrupted run resumes where it stopped. Returns the minibatch loss per epoch.
    """
    cfg = dataclasses.replace(config or FlowMapTrainConfig(), **options)
    param = next(model.parameters())
    windows = training_windows(data, stride, cfg.n_forward).to(param.device, param.dtype)
    if windows.shape[-1] != getattr(model, "dim", windows.shape[-1]):
        raise ValueError(f"dimension mismatch: data dim {windows.shape[-1]}, model dim {model.dim}")
    if getattr(model, "normalize", False):  # a resumed checkpoint restores the same buffers
        model.set_scaling(windows)
    val = None if val_data is None else training_windows(val_data, stride, cfg.n_forward)
    val = None if val is None else val.to(param.device, param.dtype)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    gen = torch.Generator().manual_seed(cfg.seed)
    state = {"epoch": 0, "elapsed": 0.0, "history": [], "best_val": float("inf")}
    state |= {"best_state": None, "converged": False, "stride": stride}
    state["architecture"] = model.extra_repr()
    if checkpoint is not None and Path(checkpoint).is_file():
        _resume(checkpoint, cfg, state, model, opt, gen)
    _run_epochs(model, windows, val, cfg, state, opt, gen, checkpoint, progress)
    if checkpoint is not None:
        _save_checkpoint(checkpoint, cfg, state, model, opt, gen)
    if state["best_state"] is not None:
        model.load_state_dict(state["best_state"])
    return state["history"]


def _run_epochs(model, windows, val, cfg, state, opt, gen, checkpoint, progress) -> None:
    """The Adam loop; mutates ``state`` (epoch, history, best model, elapsed time)."""
    from tqdm.auto import tqdm

    start = time.perf_counter() - state["elapsed"]
    bar = tqdm(total=cfg.epochs, initial=state["epoch"], disable=not progress, leave=False)
    while state["epoch"] < cfg.epochs and not state["converged"]:
        if cfg.time_budget is not None and time.perf_counter() - start >= cfg.time_budget:
            break
        batch = torch.randperm(windows.shape[0], generator=gen)[: cfg.batch_size]
        loss = multi_step_loss(model, windows[batch], cfg.mean_weight)
        state["history"].append(loss.item())
        if state["history"][-1] <= cfg.loss_tol:
            state["converged"] = True
            break
        opt.zero_grad()
        loss.backward()
        opt.step()
        state["epoch"] += 1
        state["elapsed"] = time.perf_counter() - start
        if val is not None and state["epoch"] % cfg.val_every == 0:
            _track_best(model, val, cfg, state)
        if checkpoint is not None and state["epoch"] % cfg.checkpoint_every == 0:
            _save_checkpoint(checkpoint, cfg, state, model, opt, gen)
        if state["epoch"] % 100 == 0:
            bar.set_postfix(loss=f"{state['history'][-1]:.2e}")
        bar.update()
    bar.close()
    state["elapsed"] = time.perf_counter() - start
    if val is not None:
        _track_best(model, val, cfg, state)


def _track_best(model: nn.Module, val: Tensor, cfg: FlowMapTrainConfig, state: dict) -> None:
    with torch.no_grad():
        loss = multi_step_loss(model, val, cfg.mean_weight).item()
    if loss < state["best_val"]:
        state["best_val"] = loss
        state["best_state"] = {k: v.detach().clone() for k, v in model.state_dict().items()}


def _save_checkpoint(path, cfg, state, model, opt, gen) -> None:
    blob = {"config": {k: getattr(cfg, k) for k in _RESUME_KEYS}, "state": state}
    blob |= {"model": model.state_dict(), "optimizer": opt.state_dict(), "rng": gen.get_state()}
    atomic_save(blob, path)


def _resume(path, cfg, state, model, opt, gen) -> None:
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
        saved = blob["config"]
        saved |= {k: blob["state"].get(k) for k in ("stride", "architecture")}
    except Exception as err:
        raise ValueError(f"{path} is not a readable flow-map training checkpoint ({err})") from err
    wanted = {k: getattr(cfg, k) for k in _RESUME_KEYS}
    wanted |= {k: state[k] for k in ("stride", "architecture")}
    if saved != wanted:
        raise ValueError(
            f"checkpoint {path} was written with other options ({saved}) than this run "
            f"({wanted}); delete it or use the same options"
        )
    try:
        model.load_state_dict(blob["model"])
    except RuntimeError as err:
        raise ValueError(f"checkpoint {path} holds a different architecture ({err})") from err
    opt.load_state_dict(blob["optimizer"])
    gen.set_state(blob["rng"])
    state.update(blob["state"])

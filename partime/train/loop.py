"""``fit``: the one training loop (minibatch epochs, step decay, refinement, best-on-validation,
checkpoint/resume, progress, summary), data-parallel over a ``Comm`` through a ``TrainStep``."""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn.functional import cross_entropy

from partime.comm import Comm, SerialComm
from partime.train.checkpoint import (
    check_resumable,
    checkpoint_file,
    load_checkpoint,
    restore_rng,
    rng_state,
    save_checkpoint,
)
from partime.train.config import TrainConfig
from partime.train.evaluate import Metrics, evaluate
from partime.train.optim import build_optimizer, set_lr
from partime.train.report import ProgressBar, training_summary
from partime.train.step import (
    DataParallelStep,
    LossFn,
    TrainStep,
    average_buffers,
    broadcast_module,
)

__all__ = ["TrainResult", "fit"]

Split = tuple[Tensor, Tensor]


@dataclass
class TrainResult:
    """``model``: the weights after the last epoch; ``best_model``: those of the best validation
    epoch (the last model when there is no validation set); ``summary``: JSON-able."""

    model: nn.Module
    best_model: nn.Module
    summary: dict[str, Any]


@dataclass
class _Progress:
    """What a checkpoint carries besides weights, optimizer and random states."""

    epoch: int = 0  # finished epochs
    history: list[dict[str, Any]] = field(default_factory=list)
    best: dict[str, Any] | None = None  # epoch, loss, accuracy, refinements, state


def _check_split(name: str, split: Split | None, required: bool) -> None:
    if split is None:
        if required:
            raise ValueError(f"{name} data is required")
        return
    ok = isinstance(split, tuple) and len(split) == 2 and all(isinstance(t, Tensor) for t in split)
    if not ok or len(split[0]) != len(split[1]) or len(split[0]) == 0:
        raise ValueError(f"{name} must be a non-empty (inputs, targets) pair of equal length")


def _better(metrics: Metrics, best: dict[str, Any] | None) -> bool:
    """Higher accuracy wins (lower loss breaks ties); without accuracy, lower loss wins."""
    if best is None:
        return True
    if metrics.accuracy is not None and metrics.accuracy != best["accuracy"]:
        return metrics.accuracy > best["accuracy"]
    return metrics.loss < best["loss"]


def _to(split: Split | None, device: torch.device, dtype: torch.dtype) -> Split | None:
    """Inputs (and float targets) to ``dtype`` on ``device``; class labels keep their type."""
    if split is None:
        return None
    inputs, targets = split
    targets = targets.to(device, dtype) if targets.is_floating_point() else targets.to(device)
    return inputs.to(device, dtype), targets


def _train_epoch(
    model: nn.Module, optimizer: torch.optim.Optimizer, train: Split, order: Tensor,
    batch_size: int, step: TrainStep, loss_fn: LossFn, bar: ProgressBar, epoch: int,
) -> float:  # fmt: skip
    """One pass over ``train`` in ``order``; returns the mean training loss."""
    model.train()
    loss_sum = 0.0
    for begin in range(0, len(order), batch_size):
        index = order[begin : begin + batch_size]
        optimizer.zero_grad(set_to_none=True)
        loss = step(model, train[0][index], train[1][index], loss_fn)
        if not math.isfinite(loss):
            raise FloatingPointError(f"training loss is {loss} in epoch {epoch}")
        optimizer.step()
        loss_sum += loss * len(index)
        bar.advance(epoch=epoch, loss=f"{loss:.3g}")
    return loss_sum / len(order)


def _refined(model: nn.Module, times: int, device: torch.device, dtype: torch.dtype) -> nn.Module:
    for _ in range(times):
        model = model.refine().to(device=device, dtype=dtype)
    return model


def fit(
    model: nn.Module,
    train: Split,
    val: Split | None = None,
    test: Split | None = None,
    config: TrainConfig | None = None,
    *,
    comm: Comm | None = None,
    step: TrainStep | None = None,
    loss_fn: LossFn = cross_entropy,
    progress: bool = True,
    callback: Callable[[dict[str, Any]], None] | None = None,
) -> TrainResult:
    """Train ``model`` on ``train`` (inputs (N, ...), targets (N, ...)) with ``config``.

    Every rank of ``comm`` passes the same data and an identically built model; each global
    batch is split over the ranks by ``step`` (default ``DataParallelStep(comm)``). ``callback``
    gets each epoch's record after its checkpoint is written. ``refine_at`` epochs replace the
    model by ``model.refine()`` and rebuild the optimizer at the current lr.
    """
    config = config or TrainConfig()
    comm = comm or SerialComm()
    step = step or DataParallelStep(comm)
    for name, split, required in (
        ("train", train, True),
        ("val", val, False),
        ("test", test, False),
    ):
        _check_split(name, split, required)
    if config.refine_at and not callable(getattr(model, "refine", None)):
        raise ValueError(f"refine_at={config.refine_at} but {type(model).__name__} has no refine()")
    device, dtype = torch.device(config.device), config.torch_dtype
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {config.device!r} requested but CUDA is not available")
    train, val, test = (_to(split, device, dtype) for split in (train, val, test))
    model = model.to(device=device, dtype=dtype)
    initial = copy.deepcopy(model) if config.refine_at else model
    shuffle = torch.Generator().manual_seed(config.seed)
    torch.manual_seed(config.seed)
    state, blob = _Progress(), None
    if config.resume:
        blob = load_checkpoint(config.checkpoint)
    if blob is not None:
        check_resumable(blob, config, comm, checkpoint_file(config.checkpoint))
        state = _Progress(blob["epoch"], blob["history"], blob["best"])
        model = _refined(model, sum(e < state.epoch for e in config.refine_at), device, dtype)
        model.load_state_dict(blob["model"])
    else:
        broadcast_module(model, comm)
    optimizer = build_optimizer(model, config, config.lr_at(state.epoch))
    if blob is not None:
        optimizer.load_state_dict(blob["optimizer"])
    best_model = None
    if state.best is not None:
        best_model = _refined(copy.deepcopy(initial), state.best["refinements"], device, dtype)
        best_model.load_state_dict(state.best["state"])
    if blob is not None:  # last: building models above may draw random numbers
        restore_rng(blob["rng"][comm.rank], shuffle, device)

    n_train, batch = len(train[1]), config.batch_size
    steps_per_epoch = -(-n_train // batch)
    bar = ProgressBar(
        comm, progress, config.epochs * steps_per_epoch, state.epoch * steps_per_epoch
    )
    try:
        for epoch in range(state.epoch, config.epochs):
            start = time.perf_counter()
            refined = epoch in config.refine_at
            if refined:
                model = _refined(model, 1, device, dtype)
                optimizer = build_optimizer(model, config, config.lr_at(epoch))
            set_lr(optimizer, config.lr_at(epoch))
            order = torch.randperm(n_train, generator=shuffle).to(device)
            loss = _train_epoch(model, optimizer, train, order, batch, step, loss_fn, bar, epoch)
            average_buffers(model, comm)
            record = {"epoch": epoch, "lr": config.lr_at(epoch), "train_loss": loss}
            record |= {"refined": refined}
            if val is not None:
                metrics = evaluate(model, *val, loss_fn, comm, config.eval_batch_size)
                record |= metrics.as_dict("val")
                if _better(metrics, state.best):
                    state.best = {
                        "epoch": epoch,
                        "loss": metrics.loss,
                        "accuracy": metrics.accuracy,
                    }
                    state.best["refinements"] = sum(e <= epoch for e in config.refine_at)
                    best_model = copy.deepcopy(model)
                    state.best["state"] = {
                        k: v.detach().cpu().clone() for k, v in best_model.state_dict().items()
                    }
            record["wall_s"] = time.perf_counter() - start
            state.history.append(record)
            state.epoch = epoch + 1
            if config.checkpoint is not None:
                blob = {"epoch": state.epoch, "history": state.history, "best": state.best}
                blob |= {"config": config.as_dict(), "model": model.state_dict()}
                blob["optimizer"] = optimizer.state_dict()
                save_checkpoint(config.checkpoint, blob, comm, rng_state(shuffle, device))
            if callback is not None:
                callback(record)
    finally:
        bar.close()
    best_model = model if best_model is None else best_model
    start = time.perf_counter()
    test_metrics = None
    if test is not None:
        test_metrics = evaluate(best_model, *test, loss_fn, comm, config.eval_batch_size)
    summary = training_summary(
        config, state.history, state.best and {k: v for k, v in state.best.items() if k != "state"},
        test_metrics, best_model, comm, time.perf_counter() - start,
    )  # fmt: skip
    return TrainResult(model, best_model, summary)

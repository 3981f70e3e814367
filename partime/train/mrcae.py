"""MrCAE's progressive training (Alg. 3.1 with the authors' stopping rules) and
the dense baselines trained the same way, data-parallel over a ``Comm``.

A *stage* trains every parameter (nothing is frozen) with a new Adam after each deepen or widen.
One step = one random minibatch (``batch_size``; 350 = all training snapshots for the toys);
``lr_decay_epochs`` are steps of each stage (the code: none, a constant lr).
Every ``epochs // 10`` steps: stop if every pooled pixel error is within the level's tolerance
("satisfied"); after half the steps, stop if the mean global training loss of the last window
fell by less than 0.1 % relative to the window before ("slow"). The stage ends with the
best-validation weights (deep-copied; the code's copy was a reference, a no-op), except after a
"satisfied" stop, which keeps the weights that met the tolerance (the code keeps the last weights
always), and with the error map that decides the next widen group's mask or that the level is
clear: so a "satisfied" stage always clears its level, as in the code.

Data parallel: each rank runs its share of the batch; the per-pixel squared-error sums are
summed over ranks first, so the max term of the loss is the global batch's, and each rank
backpropagates the global loss's gradient through its own share; then gradients are summed.
Serial and P ranks give the same updates (float64: to rounding).
"""

from __future__ import annotations

import copy
import dataclasses
import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from partime.comm import Comm, SerialComm
from partime.nets.mrcae import (
    ACTIVATIONS,
    MrCAE,
    MrCAEConfig,
    pool_error,
    subsample,
    upsample,
)
from partime.options import option
from partime.train.checkpoint import load_checkpoint, rng_state, save_checkpoint
from partime.train.config import TrainConfig
from partime.train.optim import build_optimizer, set_lr
from partime.train.report import ProgressBar
from partime.train.step import allreduce_gradients, broadcast_module, shard_bounds

__all__ = ["MrCAEResult", "ProgressiveConfig", "StageRecord", "train_progressive", "train_stage"]

_SLOW = 1e-3  # relative decrease of the windowed global training loss that counts as converged


def _parse_archs(text: str) -> tuple[tuple[int, ...], ...]:
    try:
        archs = tuple(tuple(int(v) for v in level.split(",")) for level in text.split(";"))
    except ValueError:
        raise ValueError(f"archs must look like 1,2,3,4;1,2,3,4;1,3,5,7, got {text!r}") from None
    for arch in archs:
        if arch[0] != 1 or any(b <= a for a, b in zip(arch, arch[1:], strict=False)):
            raise ValueError(f"each level's arch must start at 1 and increase, got {arch}")
    return archs


@dataclass(frozen=True)
class ProgressiveConfig:
    """MrCAE's architecture plan and stage rules (training options: ``TrainConfig``)."""

    archs: str = option(
        "1,2,3,4;1,2,3,4;1,3,5,7",
        "cumulative channels per level, levels split by ';' (widen groups = the differences)",
    )
    tols: tuple[float, ...] = option((1e-3, 5e-4, 1e-4), "pooled-error tolerance per level")
    levels: int = option(3, "resolution levels (3: 31, 63, 127 for 127-wide snapshots)")
    masks: bool = option(True, "adaptive masks and tolerances (off: groups act everywhere)")
    omega: float = option(0.5, "loss = omega*MSE + (1-omega)*max over pixels")
    init_std: float = option(0.01, "the initialisation's epsilon")
    activation: str = option("none", "after each widen conv", choices=tuple(ACTIVATIONS))
    val_every: int = option(1, "steps between validations (best weights, error curve)")
    global_every: int = option(
        1, "steps between global training losses (the slow-convergence rule averages them)"
    )

    def __post_init__(self) -> None:
        archs = _parse_archs(self.archs)
        if not isinstance(self.levels, int) or self.levels < 1:
            raise ValueError(f"levels must be a positive integer, got {self.levels!r}")
        if len(archs) != self.levels:
            raise ValueError(f"archs lists {len(archs)} levels but levels={self.levels}")
        if len(self.tols) != self.levels or not all(t > 0 for t in self.tols):
            raise ValueError(f"tols needs {self.levels} positive values (one per level), "
                             f"got {self.tols}")  # fmt: skip
        if not 0 <= self.omega <= 1:
            raise ValueError(f"omega must be in [0, 1], got {self.omega}")
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {tuple(ACTIVATIONS)}")
        for name in ("val_every", "global_every"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")

    def widen_sizes(self, level: int) -> tuple[int, ...]:
        arch = _parse_archs(self.archs)[level]
        return tuple(b - a for a, b in zip(arch, arch[1:], strict=False))


@dataclass
class StageRecord:
    """One stage: what was added, how long it trained and why it stopped, the best global
    validation error, the model's size then, and the (step, global validation error) curve."""

    level: int
    op: str
    channels: int
    steps: int = 0
    stop: str = "max"
    best_val: float = math.inf
    parameters: int = 0
    encoding_size: int = 0
    wall_s: float = 0.0
    curve: list[tuple[int, float]] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        return {k: v for k, v in dataclasses.asdict(self).items() if k != "curve"}


class LevelData:
    """Training and validation snapshots at every level: (n, 1, H_k, W_k) tensors."""

    def __init__(self, train: np.ndarray, val: np.ndarray, levels: int, like: Tensor) -> None:
        def pyramid(x: np.ndarray) -> list[Tensor]:
            finest = torch.as_tensor(x).to(like)[:, None]
            out = [finest]
            for _ in range(levels - 1):
                out.insert(0, subsample(out[0]))
            return out

        self.train, self.val, self.levels = pyramid(train), pyramid(val), levels


class _Ranks:
    """Sums and maxima over the ranks, back on the data's device."""

    def __init__(self, comm: Comm) -> None:
        self.comm = comm

    def reduce(self, t: Tensor, op: str = "sum") -> Tensor:
        return t if self.comm.size == 1 else self.comm.allreduce(t, op=op).to(t.device)

    def shard(self, n: int) -> slice:
        return slice(*shard_bounds(n, self.comm.rank, self.comm.size))


def _omega(sq_sum: Tensor, n: int, omega: float) -> float:
    """ω·mean + (1−ω)·max over pixels of per-pixel squared-error sums over n snapshots."""
    return float(omega * sq_sum.sum() / (n * sq_sum.numel()) + (1 - omega) * sq_sum.max() / n)


def _global_sq(output: Tensor, finest: Tensor) -> Tensor:
    """Per-pixel squared-error sum (H, W) of ``output`` prolonged to the finest grid."""
    while output.shape[-1] < finest.shape[-1]:
        output = upsample(output)
    return (output - finest).square().sum((0, 1))


def _evaluate(model: nn.Module, data: LevelData, level: int, ranks: _Ranks, omega: float):
    """(local, global) ω-losses on the validation set; each rank evaluates its share."""
    part = ranks.shard(len(data.val[level]))
    with torch.no_grad():
        out = model(data.val[level][part])
        local = (out - data.val[level][part]).square().sum((0, 1))
        both = ranks.reduce(
            torch.cat([local.flatten(), _global_sq(out, data.val[-1][part]).flatten()])
        )
    n = len(data.val[level])
    return _omega(both[: local.numel()], n, omega), _omega(both[local.numel() :], n, omega)


def pooled_error(model: nn.Module, x: Tensor, ranks: _Ranks) -> Tensor:
    """The training set's error map (0.5·mean + 0.5·max over snapshots), pooled to the latent
    grid; each rank evaluates its share."""
    part = ranks.shard(len(x))
    with torch.no_grad():
        squared = (model(x[part]) - x[part]).square()[:, 0]
        total = ranks.reduce(squared.sum(0))
        peak = ranks.reduce(squared.amax(0) if len(squared) else torch.zeros_like(total), "max")
    return pool_error(0.5 * total / len(x) + 0.5 * peak)


def _step(model, data, level, batch, ranks, omega, with_global) -> tuple[float, float | None]:
    """Gradient of the global batch's ω-loss; returns that loss and, if ``with_global``, the
    batch's global (finest-grid) loss."""
    x, fine = data.train[level][batch], data.train[-1][batch]
    part = ranks.shard(len(batch))
    out = model(x[part])
    local = (out - x[part]).square().sum((0, 1))
    parts = [local.detach().flatten()]
    if with_global:
        parts.append(_global_sq(out.detach(), fine[part]).flatten())
    both = ranks.reduce(torch.cat(parts))
    total, n = both[: local.numel()].view_as(local), len(batch)
    grad = torch.full_like(local, omega / (n * local.numel()))
    grad.view(-1)[torch.argmax(total)] += (1 - omega) / n
    local.backward(grad)
    allreduce_gradients(model, ranks.comm)
    return _omega(total, n, omega), _omega(both[local.numel() :], n, omega) if with_global else None


def train_stage(
    model: nn.Module,
    data: LevelData,
    level: int,
    record: StageRecord,
    config: ProgressiveConfig,
    train: TrainConfig,
    comm: Comm,
    generator: torch.Generator,
    tol: float | None = None,
    progress: bool = False,
) -> None:
    """Train ``model`` on level ``level`` until a stopping rule fires (fills ``record``) and
    keep its best-validation weights."""
    start, ranks = time.perf_counter(), _Ranks(comm)
    optimizer = build_optimizer(model, train, train.lr)
    n_train, max_steps = len(data.train[level]), train.epochs
    check = max(1, max_steps // 10)
    losses, previous, best_local, best_state = [], math.inf, math.inf, None
    bar = ProgressBar(comm, progress, max_steps)
    try:
        for step in range(1, max_steps + 1):
            if step % config.val_every == 0 or step == 1:
                local, global_val = _evaluate(model, data, level, ranks, config.omega)
                record.curve.append((step - 1, global_val))
                if local < best_local:
                    best_local, best_state = local, copy.deepcopy(model.state_dict())
            batch = torch.randperm(n_train, generator=generator)[: train.batch_size]
            set_lr(optimizer, train.lr_at(step - 1))  # lr_decay_epochs count steps of the stage
            optimizer.zero_grad(set_to_none=True)
            with_global = step % config.global_every == 0
            loss, global_loss = _step(model, data, level, batch.to(data.train[0].device), ranks,
                                      config.omega, with_global)  # fmt: skip
            if not math.isfinite(loss):
                raise FloatingPointError(f"MrCAE loss is {loss} (level {level}, step {step})")
            if global_loss is not None:
                losses.append((step, global_loss))
            optimizer.step()
            bar.advance(level=level, op=record.op, loss=f"{loss:.3g}")
            record.steps = step
            if step % check or step == max_steps:
                continue
            if tol is not None and bool(
                (pooled_error(model, data.train[level], ranks) <= tol).all()
            ):
                record.stop = "satisfied"
                break
            if step > max_steps // 2:
                window = float(np.mean([v for s, v in losses if s > step - check]))
                if (previous - window) / previous < _SLOW:
                    record.stop = "slow"
                    break
                previous = window
    finally:
        bar.close()
    local, global_val = _evaluate(model, data, level, ranks, config.omega)
    # weights that met the tolerance stay: earlier ones could reopen a level found clear
    if record.stop != "satisfied" and local >= best_local:
        model.load_state_dict(best_state)
        local, global_val = _evaluate(model, data, level, ranks, config.omega)
    record.best_val, record.wall_s = global_val, time.perf_counter() - start
    record.parameters = sum(p.numel() for p in model.parameters())


@dataclass
class MrCAEResult:
    """The grown model and one record per stage (JSON-able via ``summary``)."""

    model: MrCAE
    stages: list[StageRecord]

    def summary(self) -> dict[str, Any]:
        return {
            "stages": [s.summary() for s in self.stages],
            "widths": [list(w) for w in self.model.config.widths],
            "parameters": self.stages[-1].parameters,
            "encoding_size": self.stages[-1].encoding_size,
            "final_val": self.stages[-1].best_val,
            "wall_s": sum(s.wall_s for s in self.stages),
        }


def _plan(model: MrCAE, config: ProgressiveConfig, clear: bool) -> tuple[str, int] | None:
    """The next stage after what ``model`` has: ("deepen", 1), ("widen", n) or None (done)."""
    level = model.level
    sizes = config.widen_sizes(level) if level >= 0 else ()
    done = len(model.config.widths[level]) if level >= 0 else 0
    if level >= 0 and not clear and done < len(sizes):
        return ("widen", sizes[done])
    return ("deepen", 1) if level + 1 < config.levels else None


def _resumable(blob: dict, config: ProgressiveConfig, train: TrainConfig, comm: Comm) -> None:
    free = ("checkpoint", "resume", "device")
    saved = {k: v for k, v in blob["train"].items() if k not in free}
    wanted = {k: v for k, v in train.as_dict().items() if k not in free}
    if saved != wanted or blob["progressive"] != dataclasses.asdict(config):
        raise ValueError(f"the checkpoint in {train.checkpoint} was written with other options")
    if blob["ranks"] != comm.size:
        raise ValueError(f"the checkpoint was written by {blob['ranks']} ranks, not {comm.size}")


def train_progressive(
    train_snapshots: np.ndarray,
    val_snapshots: np.ndarray,
    config: ProgressiveConfig,
    train: TrainConfig,
    comm: Comm | None = None,
    progress: bool = False,
    callback=None,
) -> MrCAEResult:
    """Grow and train a MrCAE on (n, H, W) snapshots: per level one deepen, then widen groups
    until the level is clear or its arch is used up. Every rank passes the same data.
    ``callback(record)`` runs after each stage (after its checkpoint)."""
    comm = comm or SerialComm()
    if train.optimizer != "adam":
        raise ValueError("MrCAE trains with Adam (optimizer='adam')")
    if config.global_every > max(1, train.epochs // 10):
        raise ValueError(
            f"global_every={config.global_every} exceeds the check interval epochs // 10 = "
            f"{train.epochs // 10}: no global loss to compare"
        )
    like = torch.empty(0, dtype=train.torch_dtype, device=train.device)
    shape = tuple(train_snapshots.shape[1:])
    model = MrCAE(MrCAEConfig(shape, config.levels, (), config.activation, config.init_std))
    data = LevelData(train_snapshots, val_snapshots, config.levels, like)
    generator = torch.Generator().manual_seed(train.seed)
    torch.manual_seed(train.seed)
    stages, clear, unresolved = [], False, None
    blob = load_checkpoint(train.checkpoint) if train.resume else None
    if blob is not None:
        _resumable(blob, config, train, comm)
        model = MrCAE(MrCAEConfig(**blob["model_config"])).to(like)
        model.load_state_dict(blob["model"])
        stages = [StageRecord(**s) for s in blob["stages"]]
        clear, unresolved = blob["clear"], blob["unresolved"]
        rng = blob["rng"][comm.rank]
        torch.set_rng_state(rng["torch"])
        generator.set_state(rng["shuffle"])
    while (stage := _plan(model, config, clear)) is not None:
        op, channels = stage
        if op == "deepen":
            model.deepen()
        else:
            mask = unresolved if config.masks else torch.ones(model.latent_shape())
            model.widen(channels, mask.to(like))
        model.to(like)
        broadcast_module(model, comm)
        record = StageRecord(model.level, op, channels)
        tol = config.tols[model.level] if config.masks else None
        train_stage(model, data, model.level, record, config, train, comm, generator, tol, progress)
        if tol is not None:
            errors = pooled_error(model, data.train[model.level], _Ranks(comm))
            unresolved = (errors > tol).to(errors.dtype)
            clear = not bool(unresolved.any())
        record.encoding_size = model.encoding_size()
        stages.append(record)
        if train.checkpoint is not None:
            state = {"stages": [dataclasses.asdict(s) for s in stages], "clear": clear}
            state |= {"unresolved": unresolved, "model": model.state_dict(), "ranks": comm.size}
            state |= {"model_config": dataclasses.asdict(model.config), "train": train.as_dict()}
            state["progressive"] = dataclasses.asdict(config)
            save_checkpoint(train.checkpoint, state, comm, rng_state(generator, like.device))
        if callback is not None:
            callback(record)
    return MrCAEResult(model, stages)

"""The optimizer of a ``TrainConfig``: SGD with momentum (no Nesterov) or Adam, weight decay
on every parameter except those the model or the config exclude, and the step-decayed lr."""

from __future__ import annotations

from fnmatch import fnmatchcase

import torch
from torch import nn

from partime.train.config import TrainConfig

__all__ = ["build_optimizer", "excluded_from_decay", "set_lr"]


def excluded_from_decay(model: nn.Module, patterns: tuple[str, ...] = ()) -> set[str]:
    """Names of parameters without weight decay: ``model.no_weight_decay()`` (if the model has
    it, e.g. LM-ResNet's k) and names matching any fnmatch pattern."""
    names = {name for name, _ in model.named_parameters()}
    declared = set(getattr(model, "no_weight_decay", lambda: ())())
    unknown = declared - names
    if unknown:
        raise ValueError(f"no_weight_decay() names unknown parameters {sorted(unknown)}")
    return declared | {n for n in names if any(fnmatchcase(n, p) for p in patterns)}


def build_optimizer(model: nn.Module, config: TrainConfig, lr: float) -> torch.optim.Optimizer:
    """A fresh optimizer over ``model``'s trainable parameters at learning rate ``lr``."""
    excluded = excluded_from_decay(model, config.exclude_from_decay)
    params = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    groups = [
        {
            "params": [p for n, p in params if n not in excluded],
            "weight_decay": config.weight_decay,
        },
        {"params": [p for n, p in params if n in excluded], "weight_decay": 0.0},
    ]
    groups = [g for g in groups if g["params"]]
    if config.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=lr, momentum=config.momentum, nesterov=False)
    return torch.optim.Adam(groups, lr=lr, eps=config.adam_eps)


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    """Put ``lr`` into every parameter group."""
    for group in optimizer.param_groups:
        group["lr"] = lr

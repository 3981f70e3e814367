"""Multilevel training to a validation-accuracy target: Algorithm 2 (one V-cycle per minibatch),
which is multilevel gradient descent when the minibatch is the whole training set."""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import torch
from tqdm import tqdm

from partime.mgopt.model import ResNetLevels
from partime.mgopt.optimizers import OPTIMIZERS
from partime.mgopt.setup import VCycleSetup
from partime.mgopt.transfer import PARAMETER_RESTRICTION
from partime.mgopt.vcycle import VCycle
from partime.mgopt.work import TrainingHistory, VCycleRecord, WorkCounter


@dataclass(frozen=True)
class MGOptConfig:
    """How to train (validated on construction; the CLI maps onto it one to one)."""

    setup: str = field(
        default="[(1),1,1,1,2,2,2,{2}]",
        metadata={"help": "level-optimizer steps, finest first: n, (n) = no upward step, {n}"},
    )
    lr: float = field(default=0.1, metadata={"help": "step size α on every level"})
    optimizer: str = field(
        default="sgd",
        metadata={
            "help": "level optimizer (sgd with --momentum 0: the paper's gradient descent)",
            "choices": ("sgd", "adam"),
        },
    )
    coarse_optimizer: str = field(
        default="",
        metadata={
            "help": "coarsest-level optimizer ('': as --optimizer)",
            "choices": ("", "sgd", "adam", "lbfgs"),
        },
    )
    momentum: float = field(
        default=0.0, metadata={"help": "SGD momentum (0: plain gradient descent)"}
    )
    armijo: bool = field(
        default=False, metadata={"help": "backtrack the coarse correction (off in the paper)"}
    )
    batch_size: int = field(
        default=0, metadata={"help": "samples per V-cycle (0: the whole training set)"}
    )
    target_accuracy: float = field(
        default=1.0, metadata={"help": "stop when the validation accuracy reaches this"}
    )
    max_vcycles: int = field(default=2000, metadata={"help": "stop after this many V-cycles"})
    time_budget: float | None = field(
        default=None, metadata={"help": "stop after this many training seconds"}
    )
    seed: int = field(default=0, metadata={"help": "initial weights and minibatch order"})

    def __post_init__(self) -> None:
        VCycleSetup.parse(self.setup)
        for name in ("optimizer", "coarse_optimizer"):
            value = getattr(self, name)
            allowed = ("sgd", "adam") + (("", "lbfgs") if name[0] == "c" else ())
            if value not in allowed:
                raise ValueError(f"{name} {value!r} is not one of {', '.join(map(repr, allowed))}")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise ValueError(f"lr must be finite and > 0, got {self.lr}")
        if not 0 <= self.momentum < 1:
            raise ValueError(f"momentum must be in [0, 1), got {self.momentum}")
        if self.batch_size < 0 or self.max_vcycles < 1:
            raise ValueError(
                f"need batch_size >= 0 and max_vcycles >= 1, got {self.batch_size}, "
                f"{self.max_vcycles}"
            )
        if not 0 < self.target_accuracy <= 1:
            raise ValueError(f"target_accuracy must be in (0, 1], got {self.target_accuracy}")
        if self.time_budget is not None and not self.time_budget > 0:
            raise ValueError(f"time_budget must be > 0 seconds, got {self.time_budget}")

    @property
    def vcycle_setup(self) -> VCycleSetup:
        return VCycleSetup.parse(self.setup)

    def level_optimizers(self) -> list:
        """One fresh optimizer per level, coarsest first."""
        levels = self.vcycle_setup.levels
        coarse = self.coarse_optimizer or self.optimizer
        names = [coarse] + [self.optimizer] * (levels - 1)
        return [OPTIMIZERS[name](self.lr, self.momentum) for name in names]


def multilevel_sgd(
    vcycle: VCycle,
    theta: torch.Tensor,
    x: torch.Tensor,
    labels: torch.Tensor,
    batch_size: int,
    generator: torch.Generator,
) -> Iterator[torch.Tensor]:
    """Algorithm 2, epoch after epoch: θ after each V-cycle, one per minibatch of a fresh
    permutation (the last, shorter minibatch included); the whole set when batch_size = N."""
    n = labels.shape[0]
    while True:
        order = torch.randperm(n, generator=generator) if batch_size < n else torch.arange(n)
        for start in range(0, n, batch_size):
            index = order[start : start + batch_size]
            theta = vcycle(theta, (x[index], labels[index]))
            yield theta


def accuracy(problem: ResNetLevels, theta: torch.Tensor, x: torch.Tensor, labels: torch.Tensor):
    """Fraction of samples whose largest finest-level logit is their label."""
    predicted = problem.logits(problem.spec.levels, theta, x).argmax(dim=1)
    return float((predicted == labels).double().mean())


def train_mgopt(
    problem: ResNetLevels,
    config: MGOptConfig,
    train: tuple[torch.Tensor, torch.Tensor],
    val: tuple[torch.Tensor, torch.Tensor],
    progress: bool = False,
    settings: dict | None = None,
) -> tuple[torch.Tensor, TrainingHistory]:
    """Train from the glorot initial weights of ``config.seed`` until the validation accuracy
    reaches the target (or max_vcycles / time_budget); after each V-cycle record the full
    training loss, the validation accuracy, the work units and the training wall time."""
    setup = config.vcycle_setup
    spec = problem.spec
    setup.check_depth(spec.depth)
    if setup.levels != spec.levels:
        raise ValueError(f"setup {setup} has {setup.levels} levels, the network {spec.levels}")
    counter = WorkCounter(setup.levels)
    vcycle = VCycle(problem, setup, config.level_optimizers(), counter, armijo=config.armijo)
    history = TrainingHistory(
        {
            **(settings or {}),
            "setup": str(setup), "levels": setup.levels, "depth": spec.depth,
            "work_per_cycle_eq10": float(setup.work_units()), "lr": config.lr,
            "beta": spec.beta, "optimizer": config.optimizer,
            "coarse_optimizer": config.coarse_optimizer or config.optimizer,
            "parameter_restriction": PARAMETER_RESTRICTION, "batch_size": config.batch_size,
            "target_accuracy": config.target_accuracy, "seed": config.seed,
            "chain": problem.chain_name,
        }
    )  # fmt: skip
    x, labels = train
    batch_size = config.batch_size or labels.shape[0]
    generator = torch.Generator().manual_seed(config.seed)
    theta = problem.init(config.seed, dtype=x.dtype)
    steps = multilevel_sgd(vcycle, theta, x, labels, batch_size, generator)
    bar = tqdm(total=config.max_vcycles, desc=f"MG/OPT {setup}", disable=not progress)
    wall = 0.0
    history.stopped = "max_vcycles"
    for v_cycle in range(1, config.max_vcycles + 1):
        start = time.perf_counter()
        theta = next(steps)
        wall += time.perf_counter() - start
        record = VCycleRecord(
            v_cycle=v_cycle,
            loss=problem.loss(spec.levels, theta, x, labels),
            val_accuracy=accuracy(problem, theta, *val),
            work_units=float(counter.units),
            wall_s=wall,
        )
        history.records.append(record)
        bar.update()
        bar.set_postfix(loss=f"{record.loss:.4f}", val=f"{record.val_accuracy:.3f}")
        if not math.isfinite(record.loss):
            history.stopped = "diverged"
            break
        if record.val_accuracy >= config.target_accuracy:
            history.stopped = "target"
            break
        if config.time_budget is not None and wall >= config.time_budget:
            history.stopped = "time_budget"
            break
    bar.close()
    return theta, history

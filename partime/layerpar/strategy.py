"""Layer-parallel training in ``partime.train.fit``: its options, its step, its set-up.

``fit`` trains whatever module and step it is given over a data-parallel ``comm``. For
layer-parallel training that module is the ``LayerParallel`` wrapper (each rank's parameters,
so each rank's optimizer holds its stage's), the comm is the wrapper's replica group (gradient
and buffer averaging, evaluation shares and checkpoint gathers run among the replicas of one
stage) and the step is ``LayerParallelStep``: the replica's share of the global batch through
the pipeline. Checkpoints go to one directory per stage (``stage-r-of-P``), each written
atomically by the stage's first replica, and hold the stage's optimizer state.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

from torch import Tensor, nn

from partime.comm.base import Comm
from partime.layerpar.grid import check_grid
from partime.layerpar.module import LayerParallel
from partime.layerpar.schedule import SCHEDULES, check_schedule_args
from partime.train import TrainConfig
from partime.train.step import LossFn, shard_bounds


def _help(text: str) -> dict:
    return {"help": text}


@dataclass(frozen=True)
class LayerParallelConfig:
    """How the ranks split the network: pipeline stages over its depth, replicas over data."""

    layer_parallel: bool = field(
        default=False, metadata=_help("split the network's depth over the ranks (a pipeline)")
    )
    micro_batches: int = field(
        default=4, metadata=_help("micro-batches per batch in the pipeline (>= stages)")
    )
    schedule: str = field(
        default="1f1b", metadata=_help(f"pipeline schedule: {', '.join(SCHEDULES)}")
    )
    data_parallel: int = field(
        default=1, metadata=_help("replicas of the pipeline (ranks = replicas x stages)")
    )

    def __post_init__(self) -> None:
        check_schedule_args(self.schedule, 1, self.micro_batches)
        check_grid(self.data_parallel, self.data_parallel)

    def check(self, ranks: int, train: TrainConfig) -> None:
        """Everything that depends on the launch, before any communication."""
        stages = check_grid(ranks, self.data_parallel)
        check_schedule_args(self.schedule, stages, self.micro_batches)
        if train.refine_at:
            raise ValueError(
                f"refine_at={train.refine_at} cannot be combined with layer-parallel training "
                "(the refined network would need a new partition)"
            )
        if train.batch_size // self.data_parallel < self.micro_batches:
            raise ValueError(
                f"batch_size={train.batch_size} over {self.data_parallel} replica(s) is fewer "
                f"than micro_batches={self.micro_batches} rows per replica"
            )


class LayerParallelStep:
    """``fit``'s step: this replica's contiguous share of the global batch, pipelined."""

    def __init__(self, lp: LayerParallel) -> None:
        self.lp = lp

    def __call__(self, model: nn.Module, inputs: Tensor, targets: Tensor, loss_fn: LossFn) -> float:
        replicas = self.lp.grid.replicas
        if len(targets) // replicas < self.lp.micro_batches:  # the same verdict on every rank
            raise ValueError(
                f"a batch of {len(targets)} over {replicas} replica(s) cannot make "
                f"{self.lp.micro_batches} micro-batches per replica"
            )
        start, stop = shard_bounds(len(targets), self.lp.grid.replica, replicas)
        return float(self.lp.train_step(inputs[start:stop], targets[start:stop], loss_fn))


def layer_parallel_training(
    model: nn.Module, comm: Comm, config: LayerParallelConfig, train: TrainConfig
) -> tuple[LayerParallel, Comm, LayerParallelStep, TrainConfig]:
    """The module, comm, step and config to hand to ``fit`` for ``model`` on ``comm``."""
    config.check(comm.size, train)
    lp = LayerParallel(
        model.to(train.torch_dtype),
        comm,
        micro_batches=config.micro_batches,
        schedule=config.schedule,
        data_parallel=config.data_parallel,
        seed=train.seed,
    )
    if train.checkpoint is not None:
        stage = f"stage-{lp.grid.pipe.rank}-of-{lp.grid.pipe.size}"
        train = dataclasses.replace(train, checkpoint=str(Path(train.checkpoint) / stage))
    return lp, lp.grid.data, LayerParallelStep(lp), train

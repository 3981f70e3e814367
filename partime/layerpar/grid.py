"""Data × layer parallel: a 2-D grid of ranks, ``replicas`` pipelines of ``stages`` ranks each.

World rank w is stage ``w % stages`` of replica ``w // stages``: the ranks of a replica
pipeline the model's depth among themselves; the ranks holding one stage (one per replica)
allreduce its gradients. Both communicators come from ``comm.split``.
"""

from __future__ import annotations

from dataclasses import dataclass

from partime.comm.base import Comm
from partime.comm.serial import SerialComm


def check_grid(world_size: int, data_parallel: int) -> int:
    """The number of pipeline stages; ValueError unless ``data_parallel`` divides the world."""
    if isinstance(data_parallel, bool) or not isinstance(data_parallel, int) or data_parallel < 1:
        raise ValueError(f"data_parallel must be a positive int, got {data_parallel!r}")
    if world_size % data_parallel:
        raise ValueError(
            f"data_parallel={data_parallel} does not divide the {world_size} ranks "
            f"(ranks = replicas x pipeline stages)"
        )
    return world_size // data_parallel


@dataclass(frozen=True)
class PipelineGrid:
    """``pipe``: this rank's pipeline (rank = stage); ``data``: the replicas of this stage."""

    pipe: Comm
    data: Comm

    @classmethod
    def split(cls, comm: Comm, data_parallel: int = 1) -> PipelineGrid:
        stages = check_grid(comm.size, data_parallel)
        if data_parallel == 1:
            return cls(comm, SerialComm())  # one replica: nothing to reduce
        replica, stage = divmod(comm.rank, stages)
        pipe = comm.split(replica, key=stage)
        data = comm.split(stage, key=replica)
        return cls(pipe, data)

    @property
    def replica(self) -> int:
        return self.data.rank

    @property
    def replicas(self) -> int:
        return self.data.size

"""``mpi`` / ``torch`` executor: each rank owns a contiguous block of slices.

The correction sweep is pipelined rank to rank (each rank receives its incoming start state
from rank-1 and sends its outgoing one to rank+1); only the residual is reduced every
iteration, and the slice states are gathered to rank 0 once, at the end.
"""

from __future__ import annotations

import torch
from torch import Tensor

from partime.comm.base import Comm
from partime.pint.executors.vectorized import VectorizedExecutor

_SWEEP_TAG = 71  # one tag for the sweep: messages between a pair with one tag stay in order


class CommExecutor(VectorizedExecutor):
    """Parareal over the ranks of ``comm``; the fine solves of a rank's slices are one batch."""

    def __init__(self, comm: Comm, allow_idle: bool = False) -> None:
        super().__init__()
        self.comm = comm
        self.allow_idle = allow_idle

    @property
    def rank(self) -> int:
        return self.comm.rank

    @property
    def size(self) -> int:
        return self.comm.size

    def _recv_prev(self) -> Tensor:
        return self.comm.recv(self.rank - 1, tag=_SWEEP_TAG)

    def _send_next(self, x: Tensor) -> None:
        self.comm.send(x.contiguous(), self.rank + 1, tag=_SWEEP_TAG)

    def max(self, value: float) -> float:
        return float(self.comm.allreduce(float(value), op="max"))

    def total(self, value: float) -> float:
        return float(self.comm.allreduce(float(value), op="sum"))

    def gather(self, x: Tensor) -> Tensor | None:
        parts = self.comm.gather(x, root=0)
        return torch.cat(parts) if parts is not None else None

    def __repr__(self) -> str:
        return f"CommExecutor(backend={self.comm.backend!r}, size={self.size})"

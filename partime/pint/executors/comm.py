"""``mpi`` / ``torch`` executor: each rank owns a contiguous block of slices.

The correction sweep is pipelined rank to rank: each rank receives its incoming start state
from rank-1, and with it the largest residual of the ranks before, and sends its outgoing state
and the larger residual on to rank+1 (messages of the tensors' bytes alone: the receiver knows
their shapes). The last rank thus ends each sweep knowing the iteration's residual without a
reduction, and broadcasts it (non-blocking: the other ranks may start their next fine pass
meanwhile). The slice states are gathered to rank 0 once, at the end.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import Tensor

from partime.comm.base import Comm, PendingTensor
from partime.pint.executors.vectorized import Reduced, VectorizedExecutor

_SWEEP_TAG = 71  # one tag for the sweep: messages between a pair with one tag stay in order


class PendingMax:
    """A sweep's residual on its way from the last rank (see ``CommExecutor.sweep``)."""

    def __init__(self, request: PendingTensor, result: np.ndarray) -> None:
        self.request, self.result = request, result

    def test(self) -> bool:
        return self.request.test()

    def wait(self) -> float:
        self.request.wait()
        return float(self.result[0])


class CommExecutor(VectorizedExecutor):
    """Parareal over the ranks of ``comm``; the fine solves of a rank's slices are one batch."""

    def __init__(self, comm: Comm, allow_idle: bool = False) -> None:
        super().__init__()
        self.comm = comm
        self.allow_idle = allow_idle
        self.last = comm.size - 1  # the rank that ends every sweep
        # the residual carried along the sweep, and broadcast by the last rank (one sweep at a
        # time: each rank waits for a sweep's residual before its next sweep)
        self._carried, self._residual = np.zeros(1), np.zeros(1)
        self._carried_view = torch.from_numpy(self._carried)
        self._residual_view = torch.from_numpy(self._residual)
        self._broadcast: PendingTensor | None = None
        self._ends: tuple = (None, None, None)  # a sweep's starts, and its first and last state

    @property
    def rank(self) -> int:
        return self.comm.rank

    @property
    def size(self) -> int:
        return self.comm.size

    def sweep(
        self, advance: Callable[[int, Tensor], float], starts: Tensor, local: range, first: int
    ) -> Reduced | PendingMax:
        comm, rank, carried = self.comm, self.comm.rank, self._carried
        if starts is not self._ends[0]:  # parareal sweeps one buffer per run: viewed once
            self._ends = (starts, starts[0], starts[-1])
        change = 0.0  # where every local start state is final, nothing changes
        if local.stop > first:
            carried[0] = 0.0  # the largest residual of the ranks before, and then ours
            if local.start > first:
                comm.recv_buffer(self._ends[1], rank - 1, tag=_SWEEP_TAG)
                comm.recv_buffer(self._carried_view, rank - 1, tag=_SWEEP_TAG)
            change = max(float(carried[0]), advance(max(first - local.start, 0), starts))
            if rank < self.last:
                carried[0] = change
                comm.send_buffer(self._ends[2], rank + 1, tag=_SWEEP_TAG)
                comm.send_buffer(self._carried_view, rank + 1, tag=_SWEEP_TAG)
        # The last rank's sweep ends the chain from the frontier: it holds the maximum, and
        # sends it on without waiting (it completes its previous broadcast here, long done).
        self._complete_broadcast()
        self._residual[0] = change
        self._broadcast = comm.ibcast(self._residual_view, root=self.last)
        if rank == self.last:
            # MPI sends only while a rank is inside an MPI call: one test pushes the residual
            # out now, not when this rank next communicates, after its fine pass.
            self._broadcast.test()
            return Reduced(change)
        return PendingMax(self._broadcast, self._residual)

    def _complete_broadcast(self) -> None:
        if self._broadcast is not None:
            self._broadcast.wait()
            self._broadcast = None

    def max(self, value: float) -> float:
        return float(self.comm.allreduce(float(value), op="max"))

    def total(self, value: float) -> float:
        return float(self.comm.allreduce(float(value), op="sum"))

    def gather(self, x: Tensor) -> Tensor | None:
        self._complete_broadcast()  # the end of a solve: nothing left in flight
        parts = self.comm.gather(x, root=0)
        return torch.cat(parts) if parts is not None else None

    def __repr__(self) -> str:
        return f"CommExecutor(backend={self.comm.backend!r}, size={self.size})"

"""``mpi`` / ``torch`` executor: each rank owns a contiguous block of slices.

The correction sweep is pipelined rank to rank: each rank receives its incoming start state
from rank-1, and with it the largest residual of the ranks before, and sends its outgoing state
and the larger residual on to rank+1 (one message of the buffers' bytes alone: the receiver
knows their shapes). The last rank thus ends each sweep knowing the iteration's residual
without a reduction, and broadcasts it (non-blocking: the other ranks may start their next fine
pass meanwhile). These messages are persistent (``Comm.send_init`` …): set up on the run's
buffers before the clock, and used once there, so that each sweep only starts them. The slice
states are gathered to rank 0 once, at the end.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import Tensor

from partime.comm.base import Comm, Persistent
from partime.pint.executors.vectorized import Reduced, VectorizedExecutor

_SWEEP_TAG = 71  # one tag for the sweep: messages between a pair with one tag stay in order


class PendingMax:
    """A sweep's residual on its way from the last rank (see ``CommExecutor.sweep``)."""

    def __init__(self, broadcast: Persistent, result: np.ndarray) -> None:
        self.broadcast, self.result = broadcast, result

    def test(self) -> bool:
        return self.broadcast.test()

    def wait(self) -> float:
        self.broadcast.wait()
        return float(self.result[0])


class _Channels:
    """The persistent messages of the sweeps of one run, on its start-state buffer
    ``starts``: the incoming start state with ``carried``, the largest residual of the ranks
    before (from rank-1), the outgoing one (to rank+1), and the broadcast of the iteration's
    ``residual`` from the last rank."""

    def __init__(self, comm: Comm, starts: Tensor) -> None:
        rank, last = comm.rank, comm.size - 1
        self.starts = starts
        self.carried, self.residual = np.zeros(1), np.zeros(1)
        carried = torch.from_numpy(self.carried)
        self.recv = comm.recv_init((starts[0], carried), rank - 1, _SWEEP_TAG) if rank else None
        self.send = None
        if rank < last:
            self.send = comm.send_init((starts[-1], carried), rank + 1, _SWEEP_TAG)
        self.broadcast = comm.bcast_init(torch.from_numpy(self.residual), root=last)
        self.broadcasting = False  # one broadcast in flight at most

    def exercise(self) -> None:
        """One round of every message, from rank 0 on (MPI sets up a persistent request's
        path at its first start); what they carry is overwritten by the first sweep."""
        for channel in (self.recv, self.send):
            if channel is not None:
                channel.start().wait()
        self.broadcast.start().wait()

    def broadcast_residual(self, value: float) -> None:
        """Start the broadcast of the last rank's ``value`` (the previous one completed)."""
        self.complete_broadcast()
        self.residual[0] = value
        self.broadcast.start()
        self.broadcasting = True

    def complete_broadcast(self) -> None:
        if self.broadcasting:
            self.broadcast.wait()
            self.broadcasting = False

    def free(self) -> None:
        self.complete_broadcast()
        for channel in (self.recv, self.send, self.broadcast):
            if channel is not None:
                channel.free()


class CommExecutor(VectorizedExecutor):
    """Parareal over the ranks of ``comm``; the fine solves of a rank's slices are one batch."""

    def __init__(self, comm: Comm, allow_idle: bool = False) -> None:
        super().__init__()
        self.comm = comm
        self.allow_idle = allow_idle
        self.last = comm.size - 1  # the rank that ends every sweep
        self._channels: _Channels | None = None  # of the run under way

    @property
    def rank(self) -> int:
        return self.comm.rank

    @property
    def size(self) -> int:
        return self.comm.size

    def prepare_sweeps(self, starts: Tensor) -> None:
        """The persistent messages of the run on ``starts``, each used once before the clock."""
        self._open(starts).exercise()

    def sweep(
        self, advance: Callable[[int, Tensor], float], starts: Tensor, local: range, first: int
    ) -> Reduced | PendingMax:
        channels = self._channels
        if channels is None or starts is not channels.starts:  # a run sweeps one buffer
            channels = self._open(starts)
        carried = channels.carried
        change = 0.0  # where every local start state is final, nothing changes
        if local.stop > first:
            carried[0] = 0.0  # the largest residual of the ranks before, and then ours
            if local.start > first:
                channels.recv.start().wait()
            change = max(float(carried[0]), advance(max(first - local.start, 0), starts))
            if channels.send is not None:
                carried[0] = change
                channels.send.start().wait()
        # The last rank's sweep ends the chain from the frontier: it holds the maximum, and
        # sends it on without waiting (every rank completes the previous broadcast first).
        channels.broadcast_residual(change)
        if self.rank == self.last:
            # MPI sends only while a rank is inside an MPI call: one test pushes the residual
            # out now, not when this rank next communicates, after its fine pass.
            channels.broadcast.test()
            return Reduced(change)
        return PendingMax(channels.broadcast, channels.residual)

    def _open(self, starts: Tensor) -> _Channels:
        """The channels of a run on ``starts``, set up once (those of a run that ended in an
        error are released here)."""
        self._close_channels()
        self._channels = _Channels(self.comm, starts)
        return self._channels

    def _close_channels(self) -> None:
        if self._channels is not None:
            self._channels.free()
            self._channels = None

    def max(self, value: float) -> float:
        return float(self.comm.allreduce(float(value), op="max"))

    def total(self, value: float) -> float:
        return float(self.comm.allreduce(float(value), op="sum"))

    def gather(self, x: Tensor) -> Tensor | None:
        self._close_channels()  # the end of a solve: nothing left in flight
        parts = self.comm.gather(x, root=0)
        return torch.cat(parts) if parts is not None else None

    def __repr__(self) -> str:
        return f"CommExecutor(backend={self.comm.backend!r}, size={self.size})"

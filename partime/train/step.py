"""One training step as a pluggable strategy, and the data-parallel default.

A ``TrainStep`` gets the model, the *global* batch and the loss function, returns the global
batch's mean loss (the same float on every rank) and leaves the gradient of that loss in each
parameter's ``.grad``. The default, ``DataParallelStep``, lets each rank run forward/backward on
its contiguous share of the batch, weights its share's mean loss by share/batch and sums the
gradients over ranks: the update equals the serial one on the same global batch (up to the
order of floating-point sums).

Batch norm under data parallel: each rank normalises with the statistics of its own share (as
torch's DDP without SyncBatchNorm), so a network with batch norm is *not* the serial one on the
global batch; ``average_buffers`` makes the running statistics agree across ranks (their mean)
before every evaluation and checkpoint. Random numbers drawn per batch (stochastic depth) are
the same on every rank and in a serial run; those drawn per sample (dropout) are not.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import torch
from torch import Tensor, nn

from partime.comm import Comm

__all__ = [
    "DataParallelStep",
    "LossFn",
    "TrainStep",
    "allreduce_gradients",
    "average_buffers",
    "broadcast_module",
    "shard_bounds",
]

LossFn = Callable[[Tensor, Tensor], Tensor]


class TrainStep(Protocol):
    """Computes one global batch's loss and leaves its gradients in ``.grad``."""

    def __call__(self, model: nn.Module, inputs: Tensor, targets: Tensor, loss_fn: LossFn) -> float:
        """inputs (B, ...), targets (B, ...): the whole global batch, identical on every rank."""
        ...


def shard_bounds(n: int, rank: int, size: int) -> tuple[int, int]:
    """Rows [start, stop) of ``n`` that ``rank`` of ``size`` owns (contiguous, sizes within 1)."""
    return rank * n // size, (rank + 1) * n // size


def allreduce_gradients(model: nn.Module, comm: Comm, extra: Tensor | None = None) -> Tensor | None:
    """Sum every trainable parameter's ``.grad`` (and ``extra``, returned summed) over the ranks
    in one flat message.

    A gradient that is None on every rank stays None (the optimizer then skips it, as in a
    serial run); one that is None on some ranks only counts as zero there.
    """
    params = [p for p in model.parameters() if p.requires_grad]
    if comm.size == 1 or (not params and extra is None):
        return extra
    reference = params[0] if params else extra
    parts = [(p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1) for p in params]
    present = torch.tensor([float(p.grad is not None) for p in params], dtype=reference.dtype)
    tail = extra.reshape(-1) if extra is not None else reference.new_zeros(0)
    flat = torch.cat([*parts, present.to(reference.device), tail.to(reference.device)])
    summed = comm.allreduce(flat, op="sum").to(reference.device)
    offset, n_params = 0, len(params)
    flags = summed[-n_params - tail.numel() : len(summed) - tail.numel()]
    for p, flag in zip(params, flags.tolist(), strict=True):
        p.grad = summed[offset : offset + p.numel()].view_as(p).clone() if flag > 0 else None
        offset += p.numel()
    return None if extra is None else summed[len(summed) - tail.numel() :].view_as(extra)


def broadcast_module(model: nn.Module, comm: Comm, root: int = 0) -> None:
    """Copy ``root``'s parameters and buffers into every rank's ``model`` (same start)."""
    if comm.size == 1:
        return
    with torch.no_grad():
        for tensor in [*model.parameters(), *model.buffers()]:
            tensor.copy_(comm.bcast(tensor.detach().cpu() if comm.rank == root else None, root))


def average_buffers(model: nn.Module, comm: Comm) -> None:
    """Replace every floating-point buffer (batch-norm running statistics) by its rank mean."""
    if comm.size == 1:
        return
    with torch.no_grad():
        for buffer in model.buffers():
            if buffer.is_floating_point():
                buffer.copy_(
                    comm.allreduce(buffer.detach(), op="sum").to(buffer.device) / comm.size
                )


class DataParallelStep:
    """Local forward/backward on this rank's share of the global batch, then gradient allreduce."""

    def __init__(self, comm: Comm) -> None:
        self.comm = comm

    def __call__(self, model: nn.Module, inputs: Tensor, targets: Tensor, loss_fn: LossFn) -> float:
        total = len(targets)
        start, stop = shard_bounds(total, self.comm.rank, self.comm.size)
        if stop > start:
            local = loss_fn(model(inputs[start:stop]), targets[start:stop])
            (local * ((stop - start) / total)).backward()
            weighted = local.detach() * (stop - start)
        else:  # fewer samples than ranks: this rank contributes nothing
            weighted = torch.zeros((), dtype=inputs.dtype, device=inputs.device)
        return float(allreduce_gradients(model, self.comm, weighted)) / total

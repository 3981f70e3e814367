"""Loss and accuracy of a model on a data set, split over the ranks of a data-parallel group."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from partime.comm import Comm
from partime.train.step import LossFn, shard_bounds

__all__ = ["Metrics", "evaluate"]


@dataclass(frozen=True)
class Metrics:
    """Mean loss and (for integer class targets) accuracy in [0, 1], else None."""

    loss: float
    accuracy: float | None

    def as_dict(self, prefix: str) -> dict[str, float | None]:
        return {f"{prefix}_loss": self.loss, f"{prefix}_accuracy": self.accuracy}


def evaluate(
    model: nn.Module, inputs: Tensor, targets: Tensor, loss_fn: LossFn, comm: Comm,
    batch_size: int = 1000,
) -> Metrics:  # fmt: skip
    """Eval-mode metrics of inputs (N, ...) / targets (N, ...): each rank takes a contiguous share
    in chunks of ``batch_size``; sums meet in one allreduce. Restores the training mode."""
    total = len(targets)
    if total == 0:
        raise ValueError("evaluate needs at least one sample")
    classify = not targets.is_floating_point()
    start, stop = shard_bounds(total, comm.rank, comm.size)
    sums = torch.zeros(2, dtype=torch.float64)  # loss sum, correct count
    was_training = model.training
    model.eval()
    with torch.no_grad():
        for begin in range(start, stop, batch_size):
            chunk = slice(begin, min(begin + batch_size, stop))
            outputs = model(inputs[chunk])
            sums[0] += float(loss_fn(outputs, targets[chunk])) * (chunk.stop - chunk.start)
            if classify:
                sums[1] += float((outputs.argmax(dim=1) == targets[chunk]).sum())
    model.train(was_training)
    sums = comm.allreduce(sums, op="sum")
    return Metrics(float(sums[0]) / total, float(sums[1]) / total if classify else None)

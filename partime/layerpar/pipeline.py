"""The pipeline engine: one rank's stage, running forward/backward actions on micro-batches.

Activations travel forward (rank r to r+1) and activation gradients backward (r+1 to r)
over ``partime.comm`` with non-blocking sends (``isend``) and blocking receives, so any
deadlock-free schedule (``schedule.simulate`` checks) runs without deadlock whatever the
message sizes. A state may be a tuple of tensors (LM-ResNet's pair); it travels as a small
header and then each tensor as raw bytes.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from partime.comm.base import Comm, Request
from partime.layerpar.units import DepthUnit, State, run_units, tensors, unit_parameters

FORWARD_TAG, BACKWARD_TAG = 210, 211  # one tag per direction keeps each stream in order


@dataclass(frozen=True)
class _TupleHeader:
    """Announces a tuple state of ``length`` tensors (each follows as its own message)."""

    length: int


def split_batch(x: Tensor, n_micro: int) -> list[Tensor]:
    """``n_micro`` micro-batches along dim 0, sizes differing by at most one (larger first)."""
    return list(torch.tensor_split(x, n_micro, dim=0))


def micro_batch_weights(sizes: list[int]) -> list[float]:
    """Weight of each micro-batch's mean loss in the mean loss of the whole batch: n_m / N."""
    total = sum(sizes)
    return [size / total for size in sizes]


class GradientSum:
    """Parameter gradients added up in micro-batch order (None: no contribution yet). The
    first contribution is kept as autograd returned it (it may alias another gradient); from
    the second on a sum is a tensor of its own and later ones are added in place, so a step
    allocates one buffer per parameter instead of one per micro-batch."""

    def __init__(self, n_params: int) -> None:
        self.totals: list[Tensor | None] = [None] * n_params
        self._owned = [False] * n_params

    def add(self, grads: list[Tensor | None]) -> None:
        for i, (total, grad) in enumerate(zip(self.totals, grads, strict=True)):
            if grad is None:
                continue
            if total is None:
                self.totals[i] = grad
            elif self._owned[i]:
                total.add_(grad)
            else:
                self.totals[i], self._owned[i] = total + grad, True


class PipelineStage:
    """Units ``first``.. of a model on this rank of ``comm`` (rank r = stage r), and the
    micro-batches whose forward ran and whose backward has not yet (``in_flight``)."""

    def __init__(
        self, units: list[DepthUnit], first: int, comm: Comm, device: torch.device
    ) -> None:
        self.units, self.first, self.comm, self.device = units, first, comm, device
        self.params = list(unit_parameters(units))
        self.is_first = comm.rank == 0
        self.is_last = comm.rank == comm.size - 1
        self.in_flight: dict[int, tuple[tuple[Tensor, ...], State]] = {}
        self._requests: list[Request] = []

    def forward(
        self,
        micro_batch: int,
        state: State | None = None,
        keys: tuple[int, int, int] | None = None,
        record: bool = True,
        input_grad: bool = False,
    ) -> State:
        """Run this stage on ``micro_batch`` (its input: ``state`` on the first stage, received
        from the previous one elsewhere); pass the output on. ``record`` keeps the autograd
        graph for ``backward``; ``input_grad`` asks the first stage for d(out)/d(input) too."""
        if not self.is_first:
            state = self._recv(self.comm.rank - 1, FORWARD_TAG)
        if record:
            leaves = tuple(
                t.detach().requires_grad_(_differentiable(t) and (input_grad or not self.is_first))
                for t in tensors(state)
            )
            with torch.enable_grad():
                out = run_units(self.units, self.first, _like(state, leaves), keys)
            self.in_flight[micro_batch] = (leaves, out)
        else:
            out = run_units(self.units, self.first, state, keys)
        if not self.is_last:
            self._send(out, self.comm.rank + 1, FORWARD_TAG)
        return out

    def backward(
        self, micro_batch: int, target: tuple[tuple[Tensor, ...], tuple] | None = None
    ) -> tuple[list[Tensor | None], tuple[Tensor | None, ...]]:
        """Backpropagate ``micro_batch`` through this stage: from ``target`` = (outputs,
        grad_outputs) on the last stage (e.g. ((loss,), (None,))), from the gradient received
        from the next stage elsewhere; send the input gradient back. Returns the gradients
        of ``self.params`` (None where unused) and of the stage's input tensors."""
        leaves, out = self.in_flight.pop(micro_batch)
        if self.is_last:
            outputs, grads = target
        else:
            outputs, grads = tensors(out), tensors(self._recv(self.comm.rank + 1, BACKWARD_TAG))
        pairs = [(o, g) for o, g in zip(outputs, grads, strict=True) if o.requires_grad]
        wanted = [leaf for leaf in leaves if leaf.requires_grad]
        params = [p for p in self.params if p.requires_grad]
        found: tuple = (None,) * (len(wanted) + len(params))
        if pairs:
            found = torch.autograd.grad(
                [o for o, _ in pairs],
                wanted + params,
                [g for _, g in pairs],
                allow_unused=True,
            )
        by_id = {id(t): g for t, g in zip(wanted + params, found, strict=True)}
        input_grads = tuple(by_id.get(id(leaf)) for leaf in leaves)
        if not self.is_first:
            back = tuple(
                torch.zeros_like(leaf) if g is None else g
                for leaf, g in zip(leaves, input_grads, strict=True)
            )
            self._send(back if len(back) > 1 else back[0], self.comm.rank - 1, BACKWARD_TAG)
        return [by_id.get(id(p)) for p in self.params], input_grads

    def finish(self) -> None:
        """Wait for every send of this step (their buffers are then free)."""
        for request in self._requests:
            request.wait()
        self._requests.clear()
        if self.in_flight:
            left = sorted(self.in_flight)
            self.in_flight.clear()
            raise RuntimeError(f"micro-batches {left} ran forward but never backward")

    def _send(self, state: State, dest: int, tag: int) -> None:
        if isinstance(state, tuple):
            self._requests.append(self.comm.isend(_TupleHeader(len(state)), dest, tag))
        for tensor in tensors(state):
            self._requests.append(self.comm.isend(tensor.detach(), dest, tag))

    def _recv(self, source: int, tag: int) -> State:
        first = self.comm.recv(source, tag)
        if isinstance(first, _TupleHeader):
            return tuple(self.comm.recv(source, tag).to(self.device) for _ in range(first.length))
        return first.to(self.device)


def _differentiable(t: Tensor) -> bool:
    return t.is_floating_point() or t.is_complex()


def _like(state: State, parts: tuple[Tensor, ...]) -> State:
    return parts if isinstance(state, tuple) else parts[0]

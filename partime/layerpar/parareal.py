"""Parareal in depth: an OdeBlock's forward by ``partime.pint.parareal`` over the ranks.

The block's depth [0, 1] is cut into ``slices`` (each rank owns a contiguous run of them, as
the comm executor decides); fine = the block itself on a slice (``block(x, t0, t1)`` is a
Propagator), coarse = the same weights manifested with ``coarse_steps`` steps
(``block.manifest``): no extra parameters, no data. States are flattened to (batch, dim) for
parareal and reshaped for the block.

Training: the *exact backward through the converged forward*. After parareal, rank r holds the
start state U_r of its first slice; it reruns the fine block on its slices from U_r with
autograd, the last rank applies the head and the loss, and the gradient with respect to U_r
travels back rank by rank (rank 0 continues through the stem). The gradient is the true
gradient of the network evaluated at parareal's states: exactly the serial one after
K = slices iterations, and off by about what U is off otherwise (``partime bench layerpar``
prints iterations and gradient error per tolerance). Adjoint parareal is not implemented.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from partime.comm.base import Comm
from partime.pint import CommExecutor, PararealResult, parareal

_GRAD_TAG = 212


class _Flat(nn.Module):
    """A block seen on flat states (batch, dim): the Propagator parareal needs."""

    def __init__(self, block: nn.Module, shape: tuple[int, ...]) -> None:
        super().__init__()
        self.block, self.shape, self.dim = block, shape, math.prod(shape)

    def forward(self, x: Tensor, t0, t1) -> Tensor:
        return self.block(x.reshape(-1, *self.shape), t0, t1).reshape(len(x), -1)

    def check_interval(self, t0: float, t1: float) -> int:
        return self.block.check_interval(t0, t1)


@dataclass(frozen=True)
class DepthParareal:
    """Parareal over ``comm`` for ``block`` with ``slices`` slices and a coarse block of
    ``coarse_steps`` steps. ValueError (before any message) for slices off either grid."""

    block: nn.Module
    comm: Comm
    slices: int
    coarse_steps: int
    tol: float = 1e-10
    max_iter: int | None = None

    def __post_init__(self) -> None:
        n = self.block.n_steps
        for name, value in (("slices", self.slices), ("coarse_steps", self.coarse_steps)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        if n % self.slices or self.coarse_steps % self.slices:
            raise ValueError(
                f"slices={self.slices} must divide the block's {n} steps and "
                f"coarse_steps={self.coarse_steps} (slice boundaries on both grids)"
            )
        if self.slices < self.comm.size:
            raise ValueError(f"slices={self.slices} is fewer than the {self.comm.size} ranks")

    @property
    def times(self) -> Tensor:
        return torch.linspace(0.0, 1.0, self.slices + 1, dtype=torch.float64)

    def local_interval(self) -> tuple[float, float]:
        """[t0, t1] of this rank's slices."""
        local = CommExecutor(self.comm).local_slices(self.slices)
        return local.start / self.slices, local.stop / self.slices

    def forward(self, x: Tensor) -> PararealResult:
        """Parareal of the block from ``x`` (batch, *state), no autograd: ``final_state.U``
        holds this rank's slice start states (flat); ``states`` the gathered ones on rank 0."""
        shape = tuple(x.shape[1:])
        fine = _Flat(self.block, shape)
        coarse = _Flat(self.block.manifest(self.block.scheme, self.coarse_steps), shape)
        flat = x.detach().reshape(len(x), -1)
        executor = CommExecutor(self.comm)
        return parareal(coarse, fine, flat, self.times, executor, self.tol, self.max_iter)

    def train_step(
        self, stem: nn.Module, head: nn.Module, x: Tensor, y: Tensor, loss_fn
    ) -> tuple[Tensor, PararealResult]:
        """stem -> block (parareal forward, exact backward) -> head -> loss. Every rank passes
        the same ``x``, ``y``; gradients land in stem (rank 0), the block (its slices' pieces on
        each rank; summed over ranks by the caller if it wants one copy) and head (last
        rank). Returns the loss on every rank and parareal's result."""
        first, last = self.comm.rank == 0, self.comm.rank == self.comm.size - 1
        start = stem(x) if first else None
        with torch.no_grad():
            z0 = start.detach() if first else stem(x)  # every rank has x and the stem
        result = self.forward(z0)
        u = start if first else result.final_state.U[0].reshape(z0.shape).requires_grad_()
        t0, t1 = self.local_interval()
        out = self.block(u, t0, t1)
        if last:
            loss = loss_fn(head(out), y)
            loss.backward()
        else:
            out.backward(self.comm.recv(self.comm.rank + 1, _GRAD_TAG).to(out.device))
            loss = None
        if not first:
            self.comm.send(u.grad, self.comm.rank - 1, _GRAD_TAG)
        loss = self.comm.bcast(loss.detach() if last else None, root=self.comm.size - 1)
        return loss, result

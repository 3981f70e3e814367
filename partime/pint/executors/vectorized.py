"""``vectorized``: all slices in this process, each fine pass ONE batched propagator call.

The base of the other executors: ``comm`` replaces the neighbour exchange and the reductions,
``ray`` the fine pass. The contract is ``partime.pint.executors.base.Executor``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor


def fine_batched(
    prop: Callable, x: Tensor, t0: Tensor, t1: Tensor, save_every: int | None = None
) -> Tensor:
    """Run ``prop`` on m slices at once: stack (m, batch, dim) into one (m*batch, dim) call."""
    m, batch = x.shape[0], x.shape[1]
    rows_t0 = t0.repeat_interleave(batch)
    rows_t1 = t1.repeat_interleave(batch)
    flat = x.reshape(m * batch, *x.shape[2:])
    if save_every is None:
        return prop(flat, rows_t0, rows_t1).reshape(x.shape)
    saved = prop.trajectory(flat, rows_t0, rows_t1, save_every)  # (n_save+1, m*batch, dim)
    return saved.reshape(saved.shape[0], m, batch, *x.shape[2:]).transpose(0, 1)


def join_slices(saved: Tensor) -> Tensor:
    """(n_slices, m+1, batch, dim) per-slice saves -> (n_slices*m + 1, batch, dim): each slice's
    last save is the next slice's first, so it is kept only for the last slice."""
    return torch.cat([saved[:, :-1].flatten(0, 1), saved[-1, -1:]])


def has_static_shapes(prop: Callable) -> bool:
    """True for propagators running compiled kernels built per batch shape."""
    return bool(getattr(prop, "static_shapes", False))


class Reduced:
    """The sweep's residual in one process: complete at once (see ``Executor.sweep``)."""

    def __init__(self, value: float) -> None:
        self.value = value

    def test(self) -> bool:
        return True

    def wait(self) -> float:
        return self.value


class VectorizedExecutor:
    """All slices in this process; each fine pass is ONE batched propagator call."""

    rank = 0
    size = 1
    allow_idle = False

    @property
    def is_root(self) -> bool:
        return self.rank == 0

    def local_slices(self, n_slices: int) -> range:
        lo, hi = self.rank * n_slices // self.size, (self.rank + 1) * n_slices // self.size
        return range(lo, hi)

    def prepare(self, fine: Callable) -> None:
        """Nothing to start in one process."""

    def prepare_sweeps(self, starts: Tensor) -> None:
        """Nothing to set up in one process."""

    def fine(
        self, prop: Callable, x: Tensor, t0: Tensor, t1: Tensor, save_every: int | None = None
    ) -> Tensor:
        return fine_batched(prop, x, t0, t1, save_every)

    def fine_pass(
        self, prop: Callable, like: Tensor, t0: Tensor, t1: Tensor
    ) -> Callable[..., Tensor] | None:
        offer = getattr(prop, "batched_pass", None)
        return offer(like, t0, t1) if callable(offer) else None

    def sweep(
        self, advance: Callable[[int, Tensor], float], starts: Tensor, local: range, first: int
    ) -> Reduced:
        if local.stop <= first:  # every local start state is final: nothing changes here
            return Reduced(0.0)
        return Reduced(advance(max(first - local.start, 0), starts))

    def max(self, value: float) -> float:
        return float(value)

    def total(self, value: float) -> float:
        return float(value)

    def gather(self, x: Tensor) -> Tensor | None:
        return x

    def close(self) -> None:
        """Nothing to release in one process."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"

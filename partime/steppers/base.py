"""The propagator contract shared by time integrators and depth blocks."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from torch import Tensor


@runtime_checkable
class Propagator(Protocol):
    """``prop(x, t0, t1) -> x(t1)`` for ``x`` of shape (batch, dim) given ``x(t0)``.

    Batched over the leading dimension, on the device/dtype of ``x``, differentiable.
    ``t0``/``t1`` are floats, or 1-D tensors of per-batch-row times with a common
    duration ``t1 - t0`` (how the vectorized parareal executor runs many slices at once).
    ``dim`` is the state dimension, used to check coarse and fine agree before a solve.
    Optional: ``static_shapes`` (True for compiled kernels: parareal then warms the propagator
    before timing and keeps one batch shape per fine pass), ``check_interval(t0, t1)`` and
    ``trajectory(x, t0, t1, save_every)`` for fixed-step propagators, and for a coarse
    ``fused_sweep(x, t0, t1)``: parareal's coarse sweep over slices [t0[j], t1[j]] as one call
    (``partime.integrators.sweep.FusedSweep``), or None where it runs slice by slice.
    """

    dim: int

    def __call__(self, x: Tensor, t0: float | Tensor, t1: float | Tensor) -> Tensor: ...

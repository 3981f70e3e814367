"""Parareal's passes in one compiled call each, for a ComponentSystem stepped by a tableau.

``BatchedPass`` runs the fine solves of m slices (one batch of m·batch rows, each from its
slice's start time) as one kernel call whose intervals, shapes and times were checked once,
when it was made: parareal repeats the same pass every iteration, and the checks and
conversions of a general ``integrate`` call cost about as much as the kernel on small batches.

A coarse sweep over slices j = first..m-1 sets G_j = G(U_j) and U_{j+1} = G_j (parareal's iteration
0), or U_{j+1} = F_j + (G_j - G_old_j) (a correction sweep), or exactly F_j at the slice whose
start state is final. Slice by slice, each G call costs ~60-100 us of Python around a kernel of
a few microseconds; ``FusedSweep`` runs the whole chain as one call of the kernel's
``partime_sweep``, which calls ``partime_rk``'s own machine code and corrects in the eager
order, so its states equal the slice-by-slice ones bit for bit.
"""

from __future__ import annotations

import ctypes
import math

import torch
from torch import Tensor

from partime.dynamics.base import ComponentSystem
from partime.integrators.codegen import C_TYPES, RKArgs, SweepArgs
from partime.integrators.fast import kernel_for, needs_grad
from partime.integrators.kernels import Kernel
from partime.integrators.tableaus import ButcherTableau


class FusedSweep:
    """``sweep(first, starts, ends, fine=None, exact=-1)``: the sweep over slices first..m-1, in
    place on ``starts`` (m+1, *state) and ``ends`` (m, *state, the G_j); ``fine``
    (m-first, *state) the F_j from ``first`` on for a correction sweep, whose ``ends`` hold
    the previous iterate's G_j on entry (None for iteration 0); ``exact``: the slice whose
    start is final (its G_j is left alone). Returns (largest |new - prior| over the start
    states starts[first+1:] it wrote, whether they are all finite): parareal's residual and
    NaN/Inf check, measured as they are written. One sweep at a time per object (it keeps the
    kernel's arguments and scratch).
    """

    def __init__(
        self,
        kernel: Kernel,
        state: tuple,
        dtype: torch.dtype,
        t0: Tensor,
        dt: float,
        n_steps: list[int],
    ) -> None:
        self.kernel, self.dtype, self.t0 = kernel, dtype, t0
        self.shape = (len(n_steps), *state)  # (m, *state)
        self.starts_shape = (len(n_steps) + 1, *state)
        self.fine_shapes = [(len(n_steps) - first, *state) for first in range(len(n_steps) + 1)]
        self.n_steps = torch.tensor(n_steps, dtype=torch.int64)
        self.rows = math.prod(state[:-1])
        # row-steps of a sweep from slice j: they decide the split over threads
        self.updates_from = [sum(n_steps[j:]) * self.rows for j in range(len(n_steps) + 1)]
        # the kernel's per-thread residual and NaN flag, and its G_j of a correction sweep
        self.report = (ctypes.c_double * (2 * -(-self.rows // kernel.rows_per_group)))()
        self.scratch = torch.empty(state, dtype=dtype)
        per_row = t0.ndim == 2
        self.args = SweepArgs(
            t0=t0.data_ptr(), t0_slice_stride=self.rows if per_row else 1,
            t0_row_stride=1 if per_row else 0, dt=dt, n_steps=self.n_steps.data_ptr(),
            rows=self.rows, count=len(n_steps), report=ctypes.addressof(self.report),
            scratch=self.scratch.data_ptr(),
        )  # fmt: skip

    def __call__(
        self,
        first: int,
        starts: Tensor,
        ends: Tensor,
        fine: Tensor | None = None,
        exact: int = -1,
    ) -> tuple[float, bool]:
        m = self.shape[0]
        if not 0 <= first <= m:
            raise ValueError(f"first must be in [0, {m}], got {first}")
        self._check_output(starts, self.starts_shape, "starts")
        self._check_output(ends, self.shape, "ends")
        if fine is not None:
            fine = self._input(fine, self.fine_shapes[first], "fine")
        elif first <= exact < m:
            raise ValueError("a sweep with an exact slice needs the fine ends")
        args = self.args
        args.starts, args.ends = starts.data_ptr(), ends.data_ptr()
        args.fine = None if fine is None else fine.data_ptr()
        args.first, args.exact = first, exact
        report = self.report
        firsts = self.kernel.call(
            self.kernel.sweep_entry, args, self.rows, self.updates_from[first]
        )
        if len(firsts) == 1:
            return report[0], not report[1]
        return max(report[2 * g] for g in firsts), not any(report[2 * g + 1] for g in firsts)

    def _check_output(self, x: Tensor, shape: tuple, name: str) -> None:
        # The kernel writes through raw pointers: anything else would corrupt memory. (Checks
        # that cost well under a microsecond: a sweep's kernel takes a few.)
        if x.shape != shape or x.dtype is not self.dtype or not x.is_cpu:
            raise ValueError(
                f"{name} must be a CPU {self.dtype} tensor of shape {shape}, got {x.dtype} "
                f"{tuple(x.shape)} on {x.device}"
            )
        if not x.is_contiguous():
            raise ValueError(f"{name} must be contiguous (the sweep writes it in place)")

    def _input(self, x: Tensor, shape: tuple, name: str) -> Tensor:
        if x.shape != shape:
            raise ValueError(f"{name} must be a tensor of shape {shape}, got {tuple(x.shape)}")
        if x.dtype is self.dtype and x.is_cpu and x.is_contiguous():
            return x
        return x.to(device="cpu", dtype=self.dtype).contiguous()


class BatchedPass:
    """Called on states ``x`` (m-first, *state) of slices first..m-1 (``first`` 0 by default):
    each advanced ``n_steps`` steps of ``dt`` from its slice's start time, as one kernel call;
    returns the end states, shaped like ``x`` (parareal's passes shrink as slices converge),
    written into ``out`` when given (contiguous, shaped like ``x``)."""

    def __init__(
        self, kernel: Kernel, shape: tuple, dtype: torch.dtype, times: Tensor, dt: float, n: int
    ) -> None:
        self.kernel, self.shape, self.dtype, self.times = kernel, shape, dtype, times
        self.n_steps = n
        self.rows_per_slice = times.numel() // shape[0]
        self.args = RKArgs(t0_stride=1, dt=dt, n_steps=n)

    def __call__(self, x: Tensor, first: int = 0, out: Tensor | None = None) -> Tensor:
        m = self.shape[0]
        shape = self.shape if first == 0 else (m - first, *self.shape[1:])
        if not 0 <= first < m or x.shape != shape or x.dtype is not self.dtype or not x.is_cpu:
            raise ValueError(
                f"x must be a CPU {self.dtype} tensor of shape {shape} (first={first} of {m} "
                f"slices), got {x.dtype} {tuple(x.shape)} on {x.device}"
            )
        if out is None:
            out = torch.empty(shape, dtype=self.dtype)
        elif out.shape != shape or out.dtype is not self.dtype or not out.is_cpu:
            raise ValueError(f"out must be a CPU {self.dtype} tensor of shape {shape}")
        elif not out.is_contiguous():
            raise ValueError("out must be contiguous (the kernel writes it through a pointer)")
        x = x.contiguous()
        rows = (m - first) * self.rows_per_slice
        # the kernel reads and writes rows: no reshape, the (m, *state) memory is (rows, dim)
        args = self.args
        args.x, args.out, args.rows = x.data_ptr(), out.data_ptr(), rows
        args.t0 = self.times.data_ptr() + first * self.rows_per_slice * 8  # float64 times
        self.kernel.call(self.kernel.rk_entry, args, rows, rows * self.n_steps)
        return out


def batched_pass(
    f: object,
    tableau: ButcherTableau,
    x: Tensor,
    t0: Tensor,
    dt: float,
    n_steps: int,
    fast: bool | None,
) -> BatchedPass | None:
    """The compiled fine pass of ``f`` over m slices from times ``t0`` (m,), ``n_steps`` steps
    of ``dt`` each, for states shaped like ``x`` (m, *state); None where it must go through
    ``integrate`` (see ``_probe_kernel``)."""
    if x.ndim < 2 or t0.shape != (x.shape[0],):
        raise ValueError(
            f"x (m, *state) and t0 (m,) needed, got {tuple(x.shape)}, {tuple(t0.shape)}"
        )
    kernel = _probe_kernel(f, tableau, x, fast)
    if kernel is None:
        return None
    per_slice = x[0].numel() // x.shape[-1]
    times = t0.detach().to(device="cpu", dtype=torch.float64).repeat_interleave(per_slice)
    return BatchedPass(kernel, tuple(x.shape), x.dtype, times.contiguous(), float(dt), n_steps)


def _probe_kernel(
    f: object, tableau: ButcherTableau, x: Tensor, fast: bool | None
) -> Kernel | None:
    """The kernel for ``f`` and states like ``x``, or None: ``f`` not a ComponentSystem,
    ``fast=False``, autograd, not a CPU float32/64 state, no C compiler, or (``fast=None``) no
    kernel built or cached yet, so that the eager calls count their time first."""
    if fast is False or not isinstance(f, ComponentSystem) or x.device.type != "cpu":
        return None
    if x.dtype not in C_TYPES or not x.numel() or needs_grad(f, x, 0.0):
        return None
    rows = x.numel() // x.shape[-1]
    # n_steps = 0: this probe counts no eager time (see the docstring); fast=True builds.
    return kernel_for(f, tableau, x.dtype, rows, 0, fast)


def fused_sweep(
    f: object,
    tableau: ButcherTableau,
    x: Tensor,
    t0: Tensor,
    dt: float,
    n_steps: list[int],
    fast: bool | None,
) -> FusedSweep | None:
    """The compiled sweep of ``f`` over slices from times ``t0`` ((m,) per slice, or
    (m, *x.shape[:-1]) per row), ``n_steps[j]`` steps of ``dt`` each, for states shaped like
    ``x``; None where the sweep must run slice by slice (see ``_probe_kernel``)."""
    times = t0.detach().to(device="cpu", dtype=torch.float64).contiguous()
    if times.shape not in ((len(n_steps),), (len(n_steps), *x.shape[:-1])):
        raise ValueError(
            f"t0 must have shape ({len(n_steps)},) or ({len(n_steps)}, *x.shape[:-1]), got "
            f"{tuple(times.shape)}"
        )
    kernel = _probe_kernel(f, tableau, x, fast)
    if kernel is None:
        return None
    if times.ndim > 1:
        times = times.reshape(len(n_steps), x.numel() // x.shape[-1])
    return FusedSweep(kernel, tuple(x.shape), x.dtype, times, float(dt), list(n_steps))

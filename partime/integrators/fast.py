"""Which path ``integrate`` takes for a ComponentSystem: a compiled kernel or the eager loop.

On CPU the kernel is C generated from the traced ``components`` (``codegen``), built once
and cached on disk (``kernels``); on other devices it is an inductor block (``inductor``).
``fast=None`` (auto) takes a kernel that is in memory or on disk at once (a cache hit costs
nothing), and otherwise builds one when the eager time it saves pays for the compile: the
eager time of this call plus what earlier calls of the same kernel spent eagerly (so many
short calls, like parareal's coarse sweeps, still get compiled) against the measured compile
time. Autograd always runs eagerly; a field the generator cannot translate runs eagerly after
one warning.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass

import torch
from torch import Tensor

from partime.dynamics.base import ComponentSystem
from partime.integrators import inductor, kernels
from partime.integrators.codegen import C_TYPES, kernel_source
from partime.integrators.step import Time
from partime.integrators.tableaus import ButcherTableau
from partime.integrators.translate import KernelUnsupportedError

# Cost model of one eager RK step, to judge whether a compile pays back: each traced operation
# (plus the unbind/stack/add around it) is one small torch op of ~2-4 us plus its elements.
EAGER_OP_S = 3e-6
EAGER_ELEMENT_S = 1e-9
# Until a build has been timed in this process: a cold build of a small system takes ~0.1-0.3 s.
COMPILE_GUESS_S = 0.3

# kernels in memory by (class, attributes, tableau, dtype): a system's constants are compiled
# in, so a system whose attributes change gets a new kernel
_compiled: dict[tuple, kernels.Kernel] = {}
_unsupported: dict[tuple, str] = {}
_compile_times: list[float] = []
_requested_steps: dict[tuple, int] = {}


@dataclass
class _Pending:
    """A kernel not built yet: what to build, and the eager seconds spent without it."""

    spec: kernels.KernelSpec
    eager_s: float = 0.0


_pending: dict[tuple, _Pending] = {}


def _needs_grad(f: object, x0: Tensor, t0: Time) -> bool:
    if not torch.is_grad_enabled():
        return False
    params = f.parameters() if isinstance(f, torch.nn.Module) else ()
    tensors = [x0, t0, *params] if isinstance(t0, Tensor) else [x0, *params]
    return any(t.requires_grad for t in tensors)


def _system_key(f: ComponentSystem, tableau: ButcherTableau, dtype: torch.dtype) -> tuple:
    try:
        state = repr(sorted(vars(f).items()))
    except TypeError:  # no __dict__: the object itself
        state = f"id {id(f)}"
    return (type(f), state, tableau, dtype)


def _eager_step_s(source_ops: int, tableau: ButcherTableau, rows: int) -> float:
    return tableau.stages * (source_ops + 4) * (EAGER_OP_S + rows * EAGER_ELEMENT_S)


def _compile_estimate_s() -> float:
    return sum(_compile_times) / len(_compile_times) if _compile_times else COMPILE_GUESS_S


def _give_up(key: tuple, f: ComponentSystem, reason: str) -> None:
    _unsupported[key] = reason
    warnings.warn(
        f"partime cannot compile a kernel for {f!r} ({reason}); falling back to the eager "
        "integrator",
        RuntimeWarning,
        stacklevel=5,
    )


def kernel_for(
    f: ComponentSystem,
    tableau: ButcherTableau,
    dtype: torch.dtype,
    rows: int,
    n_steps: int,
    fast: bool | None,
) -> kernels.Kernel | None:
    """The CPU kernel for ``f``: from memory, from disk, or built now if ``fast`` or if it
    pays back (see the module docstring); None where the eager path should run."""
    key = _system_key(f, tableau, dtype)
    kernel = _compiled.get(key)
    if kernel is not None or key in _unsupported:
        return kernel
    pending = _pending.get(key)
    if pending is None:
        try:
            spec = kernels.kernel_spec(kernel_source(f, tableau, dtype))
        except KernelUnsupportedError as err:
            _give_up(key, f, str(err))
            return None
        kernel = kernels.load_cached(spec)
        if kernel is not None:
            _compiled[key] = kernel
            return kernel
        pending = _pending[key] = _Pending(spec)
    eager_s = n_steps * _eager_step_s(pending.spec.source.ops, tableau, rows)
    if not fast and pending.eager_s + eager_s < _compile_estimate_s():
        pending.eager_s += eager_s
        return None
    start = time.perf_counter()
    try:
        kernel = kernels.build(pending.spec)
    except kernels.KernelBuildError as err:
        _give_up(key, f, str(err))
        return None
    _compile_times.append(time.perf_counter() - start)
    _compiled[key] = kernel
    del _pending[key]
    return kernel


def _row_times(t0: Time, rows: int) -> float | Tensor:
    """Start times as the kernel reads them: one float, or float64 (rows,) per row."""
    if isinstance(t0, Tensor) and t0.ndim:
        return t0.reshape(rows).to(dtype=torch.float64, device="cpu").contiguous()
    return float(t0)


def integrate_fast(
    f: object,
    x0: Tensor,
    t0: Time,
    dt: float,
    n_steps: int,
    tableau: ButcherTableau,
    save_every: int | None,
    fast: bool | None,
) -> Tensor | None:
    """``integrate`` (arguments validated) through a compiled kernel, or None where the eager
    path should run instead."""
    if fast is False or not isinstance(f, ComponentSystem) or x0.is_complex() or not x0.numel():
        return None
    if _needs_grad(f, x0, t0):
        if fast:
            raise ValueError(
                "fast=True runs a compiled path without autograd, but x0, t0 or the vector "
                "field's parameters require grad; use fast=None/False or torch.no_grad()"
            )
        return None
    if n_steps == 0:
        return None
    if x0.device.type != "cpu":
        key = (id(f), x0.dtype, x0.device)
        _requested_steps[key] = _requested_steps.get(key, 0) + n_steps
        if fast or _requested_steps[key] >= inductor.FAST_MIN_STEPS:
            return inductor.integrate_inductor(f, x0, t0, dt, n_steps, tableau, save_every)
        return None
    if x0.dtype not in C_TYPES:
        return None
    flat = x0.reshape(-1, x0.shape[-1])
    kernel = kernel_for(f, tableau, x0.dtype, flat.shape[0], n_steps, fast)
    if kernel is None:
        return None
    out = kernel.run(flat.contiguous(), _row_times(t0, flat.shape[0]), dt, n_steps, save_every)
    return out.reshape(x0.shape) if save_every is None else out.reshape(-1, *x0.shape)


def forget_kernels() -> None:
    """Drop the kernels held in memory (the disk cache stays): the next call loads or builds."""
    _compiled.clear()
    _pending.clear()

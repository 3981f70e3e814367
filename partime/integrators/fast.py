"""Compiled fast path: ``torch.compile`` a block of RK steps over a tuple of state components.

Per-step overhead dominates small systems (an eager op costs ~1.5 us), so for a
``ComponentSystem`` we compile a function that advances the components by ``block`` steps
in one call; inductor fuses the whole unrolled block into one loop over the batch, which
reads and writes the state once per block. The state lives in one preallocated
(dim, *batch) buffer updated in place, so large batches do not churn the allocator.
"""

from __future__ import annotations

import types
import warnings
from collections import OrderedDict
from collections.abc import Callable

import torch
from torch import Tensor

from partime.dynamics.base import ComponentSystem
from partime.integrators.explicit import Time, step_state
from partime.integrators.tableaus import ButcherTableau

# fast=None compiles once a (system, scheme, dt, dtype, device) has been asked for this many
# steps in total: compiling costs seconds while an eager Lorenz RK4 step costs ~100 us at small
# batch, so the compiled path pays back after a few times 1e4 steps (``partime bench
# integrators`` prints the compile time).
FAST_MIN_STEPS = 50_000
# Steps unrolled per compiled call: longer blocks amortize the call overhead (~10 us) further
# but inductor's compile time grows steeply with the unrolled graph (block 10: ~20 s on 2
# cores, block 20: minutes).
MAX_BLOCK = 10
_CACHE_SIZE = 64

_compiled: OrderedDict[tuple, tuple | None] = OrderedDict()
_requested_steps: dict[tuple, int] = {}


def _needs_grad(f: object, x0: Tensor, t0: Time) -> bool:
    if not torch.is_grad_enabled():
        return False
    params = f.parameters() if isinstance(f, torch.nn.Module) else ()
    tensors = [x0, t0, *params] if isinstance(t0, Tensor) else [x0, *params]
    return any(t.requires_grad for t in tensors)


def _block_key(
    system: ComponentSystem, tableau: ButcherTableau, dt: float, block: int, x0: Tensor
) -> tuple:
    return (id(system), tableau, dt, block, x0.dtype, x0.device)


def use_fast(f: object, x0: Tensor, t0: Time, n_steps: int, fast: bool | None) -> bool:
    """Whether ``integrate`` should take the compiled path (``fast`` as passed to it)."""
    if fast is False or not isinstance(f, ComponentSystem) or x0.is_complex():
        return False
    if _needs_grad(f, x0, t0):
        if fast:
            raise ValueError(
                "fast=True runs a compiled path without autograd, but x0, t0 or the vector "
                "field's parameters require grad; use fast=None/False or torch.no_grad()"
            )
        return False
    if fast:
        return True
    key = ("auto", id(f), x0.dtype, x0.device)
    _requested_steps[key] = _requested_steps.get(key, 0) + n_steps
    return _requested_steps[key] >= FAST_MIN_STEPS


def block_size(segment: int, max_block: int = MAX_BLOCK) -> int:
    """Steps per compiled call for runs saved every ``segment`` steps: a divisor if possible."""
    if segment <= max_block:
        return segment
    divisor = max(d for d in range(1, max_block + 1) if segment % d == 0)
    # A tiny divisor would make every call pay the overhead; leave a remainder instead.
    return divisor if divisor * 4 >= max_block else max_block


def _advance(
    system: ComponentSystem,
    tableau: ButcherTableau,
    dt: float,
    n: int,
    step: Tensor,
    t0: Tensor,
    state: Tensor,
    out: Tensor,
) -> None:
    """Write into ``out`` the (dim, *batch) ``state`` advanced ``n`` steps from step ``step``."""
    xs = state.unbind(0)
    for i in range(n):
        xs = step_state(
            lambda t, x: system.components(t, *x), t0 + (step + i) * dt, xs, dt, tableau
        )
    for c, x in enumerate(xs):
        out[c].copy_(x)


def _make_block(system: ComponentSystem, tableau: ButcherTableau, dt: float, block: int):
    def advance(step: Tensor, t0: Tensor, state: Tensor, out: Tensor) -> None:
        _advance(system, tableau, dt, block, step, t0, state, out)

    # A fresh code object per block: dynamo's recompile limit counts per code object, and every
    # (system, scheme, dt, block) would otherwise share this one.
    fresh = types.FunctionType(
        advance.__code__.replace(), advance.__globals__, "advance", None, advance.__closure__
    )
    return torch.compile(fresh, fullgraph=True)


def compiled_block(
    system: ComponentSystem, tableau: ButcherTableau, dt: float, block: int, x0: Tensor
) -> Callable | None:
    """The cached compiled ``advance(step, t0, state, out)``; None if compiling it failed."""
    key = _block_key(system, tableau, dt, block, x0)
    if key not in _compiled:
        # The entry holds the system so that its id stays unique while it is cached.
        _compiled[key] = (system, _make_block(system, tableau, dt, block))
        if len(_compiled) > _CACHE_SIZE:
            _compiled.popitem(last=False)
    _compiled.move_to_end(key)
    entry = _compiled[key]
    return None if entry is None else entry[1]


def integrate_fast(
    f: ComponentSystem,
    x0: Tensor,
    t0: Time,
    dt: float,
    n_steps: int,
    tableau: ButcherTableau,
    save_every: int | None,
    max_block: int = MAX_BLOCK,
) -> Tensor | None:
    """``integrate`` through compiled blocks; None (after a warning) if compilation fails."""
    segment = save_every if save_every is not None else max(n_steps, 1)
    n_segments = n_steps // segment
    block = block_size(segment, max_block)
    advance = compiled_block(f, tableau, dt, block, x0)
    if advance is None:
        return None
    t0_tensor = torch.as_tensor(t0, dtype=torch.float64, device=x0.device)
    # A fresh row-major buffer: never a view of x0 (it gets overwritten), and with the same
    # strides on every call even where x0 has size-1 dimensions.
    state = x0.new_empty((x0.shape[-1], *x0.shape[:-1])).copy_(x0.movedim(-1, 0))
    # Double buffering: the compiled block reads one buffer and writes the other, which avoids
    # both a fresh allocation per call and reading a buffer that is being overwritten.
    spare = torch.empty_like(state)
    out = None
    if save_every is not None:
        out = x0.new_empty((n_segments + 1, *x0.shape))
        out[0] = x0
    done = 0

    def run(n: int) -> None:
        nonlocal done, state, spare
        full, rest = divmod(n, block)
        for _ in range(full):
            advance(torch.tensor(float(done), dtype=torch.float64), t0_tensor, state, spare)
            state, spare = spare, state
            done += block
        if rest:
            step = torch.tensor(float(done), dtype=torch.float64)
            _advance(f, tableau, dt, rest, step, t0_tensor, state, state)
            done += rest

    with torch.no_grad():
        try:
            if save_every is None:
                run(n_steps)
                return state.movedim(0, -1).contiguous()
            for j in range(1, n_segments + 1):
                run(segment)
                out[j] = state.movedim(0, -1)
            return out
        except Exception as err:  # noqa: BLE001 - any compiler failure must fall back
            _compiled[_block_key(f, tableau, dt, block, x0)] = None
            warnings.warn(
                f"torch.compile failed for {f!r} ({type(err).__name__}: {err}); "
                "falling back to the eager integrator",
                RuntimeWarning,
                stacklevel=3,
            )
            return None

"""Inductor blocks (for non-CPU devices): a block of RK steps over state components, one loop.

On CPU the generated C kernels (``kernels``) compile in well under a second and run faster;
this path serves other devices (CUDA: inductor emits Triton). Per-step overhead dominates
small systems (an eager op costs ~1.5 us), so for a ``ComponentSystem`` we trace ``block``
unrolled steps on a tuple of 1-D component tensors (no ``torch.stack`` in the right-hand side)
with ``make_fx`` and hand the graph to inductor, which emits ONE loop over the batch: per
element, load the components, take all steps in registers, store them into preallocated
output buffers. Calling inductor's compiled module
directly costs ~5 us, against ~30 us through ``torch.compile``'s guards and wrappers.
"""

from __future__ import annotations

import warnings
from collections import OrderedDict
from collections.abc import Callable

import torch
from torch import Tensor

from partime.dynamics.base import ComponentSystem
from partime.integrators.step import Time, step_state
from partime.integrators.tableaus import ButcherTableau

# fast=None compiles once a (system, dtype, device) has been asked for this many steps in
# total: a block compiles in ~10-30 s (cached on disk by inductor afterwards) while an eager
# Lorenz RK4 step costs ~100 us, so the compiled path pays back after ~2e5 steps.
FAST_MIN_STEPS = 200_000
# Steps unrolled per compiled call. Measured (Lorenz RK4, batch 1024, 2 busy cores): block 10
# leaves ~25 % of the time in the ~5 us call overhead; block 20 runs at ~1.6 us/step; block 40
# compiles 2x longer and its huge straight-line loop body runs ~2x slower per step.
MAX_BLOCK = 20
_CACHE_SIZE = 64
_INDUCTOR_OPTIONS = {
    # The default caps a fused kernel at 64 scheduler nodes, which split a 20-step block into
    # 4 loops that store and reload the state in between; we want one loop.
    "max_fusion_size": 1_000_000,
    # Give every value with more than a few ops its own node instead of re-inlining its
    # expression into each consumer: once fused these are registers, not buffers, and code
    # generation no longer repeats shared subexpressions (block 20 compiles in 12 s, not 35 s).
    "realize_cpu_opcount_threshold": 8,
}

# key -> (system, compiled block, or None where compiling failed)
_blocks: OrderedDict[tuple, tuple] = OrderedDict()


def block_size(segment: int, max_block: int = MAX_BLOCK) -> int:
    """Steps per compiled call for runs saved every ``segment`` steps: a divisor if possible."""
    if segment <= max_block:
        return segment
    divisor = max(d for d in range(1, max_block + 1) if segment % d == 0)
    # A tiny divisor would make every call pay the overhead; leave a remainder instead.
    return divisor if divisor * 4 >= max_block else max_block


def padded_rows(rows: int) -> int:
    """Batch rows the compiled kernel runs for ``rows`` trajectories (kernels have static shapes).

    Rounded up to a multiple of 16 (one vectorized loop iteration) and to a quarter of the
    power of two below ``rows``: at most 25 % extra work, and a few compiled shapes serve
    batches that vary or shrink (as parareal's unconverged slices do) instead of one each.
    """
    granule = max(16, 1 << max(rows.bit_length() - 3, 0))
    return -(-rows // granule) * granule


def _steps(
    system: ComponentSystem,
    tableau: ButcherTableau,
    dt: float,
    n: int,
    step: Tensor,
    t0: Tensor,
    xs: tuple[Tensor, ...],
) -> tuple[Tensor, ...]:
    """The components ``xs`` advanced ``n`` steps from step number ``step`` (a 0-d tensor)."""

    def rhs(t: Tensor, x: tuple[Tensor, ...]) -> tuple[Tensor, ...]:
        return system.components(t, *x)

    for i in range(n):
        xs = step_state(rhs, t0 + (step + i) * dt, xs, dt, tableau)
    return xs


def _compile_block(
    system: ComponentSystem, tableau: ButcherTableau, dt: float, block: int, example: list
) -> Callable[[list], object]:
    """Inductor's ``call([step, t0, *xs, *outs])`` writing ``block`` steps of ``xs`` to ``outs``."""
    from torch._inductor import config
    from torch._inductor.compile_fx import compile_fx_inner
    from torch._inductor.decomposition import select_decomp_table
    from torch.fx.experimental.proxy_tensor import make_fx

    dim = system.dim

    def advance(step: Tensor, t0: Tensor, *buffers: Tensor) -> tuple:
        new = _steps(system, tableau, dt, block, step, t0, buffers[:dim])
        for out, x in zip(buffers[dim:], new, strict=True):
            out.copy_(x)
        return ()

    # Fake tracing fails (and we fall back) on value-dependent Python control flow instead of
    # baking in one branch; functionalizing turns the output copies into fused stores.
    functional = torch.func.functionalize(advance, remove="mutations_and_views")
    graph = make_fx(functional, select_decomp_table(), tracing_mode="fake")(*example)
    with config.patch(_INDUCTOR_OPTIONS):
        return compile_fx_inner(graph, example).current_callable


def compiled_block(
    key: tuple,
    system: ComponentSystem,
    tableau: ButcherTableau,
    dt: float,
    block: int,
    example: list,
) -> Callable[[list], object]:
    """The compiled block cached under ``key`` (see ``_compile_block``); raises on failure."""
    if key not in _blocks:
        # The entry holds the system so that its id stays unique while it is cached.
        _blocks[key] = (system, _compile_block(system, tableau, dt, block, example))
        if len(_blocks) > _CACHE_SIZE:
            _blocks.popitem(last=False)
    _blocks.move_to_end(key)
    return _blocks[key][1]


def _block_key(
    system: ComponentSystem, tableau: ButcherTableau, dt: float, block: int, inputs: list
) -> tuple:
    # Shapes are static in the compiled kernel; the thread count decides its OpenMP loop.
    layout = tuple((t.shape, t.dtype, t.device) for t in inputs)
    return (id(system), tableau, dt, block, layout, torch.get_num_threads())


def integrate_inductor(
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
    flat = x0.reshape(-1, x0.shape[-1])
    rows, padded = flat.shape[0], padded_rows(flat.shape[0])
    # Components as rows of a fresh (dim, padded) buffer, never views of x0; padding repeats
    # the last trajectory so that the extra rows stay finite. The spare set is what the
    # compiled block writes into: no allocation per call.
    components = flat.new_empty((flat.shape[1], padded))
    components[:, :rows] = flat.t()
    components[:, rows:] = flat[-1:].t()
    state = list(components.unbind(0))
    spare = list(torch.empty_like(components).unbind(0))
    if isinstance(t0, Tensor) and t0.ndim:
        t0_rows = t0.reshape(-1)
        t0_arg = torch.cat([t0_rows, t0_rows[-1:].expand(padded - rows)])
    else:
        t0_arg = torch.as_tensor(t0, dtype=torch.float64, device=x0.device)
    key = _block_key(f, tableau, dt, block, [t0_arg, state[0]])
    if key in _blocks and _blocks[key][1] is None:
        return None  # compiling failed before, and warned then
    out = None
    if save_every is not None:
        out = x0.new_empty((n_segments + 1, *x0.shape))
        out[0] = x0
    done = 0

    def step_number() -> Tensor:
        return torch.tensor(float(done), dtype=torch.float64, device=x0.device)

    def run(n: int) -> None:
        nonlocal done, state, spare
        full, rest = divmod(n, block)
        if full:
            example = [step_number(), t0_arg, *state, *spare]
            advance = compiled_block(key, f, tableau, dt, block, example)
        for _ in range(full):
            advance([step_number(), t0_arg, *state, *spare])
            state, spare = spare, state
            done += block
        if rest:
            state = list(_steps(f, tableau, dt, rest, step_number(), t0_arg, tuple(state)))
            done += rest

    def assemble() -> Tensor:
        return torch.stack([x[:rows] for x in state], dim=-1).reshape(x0.shape)

    with torch.no_grad():
        try:
            if save_every is None:
                run(n_steps)
                return assemble()
            for j in range(1, n_segments + 1):
                run(segment)
                out[j] = assemble()
            return out
        except Exception as err:  # noqa: BLE001 - any compiler failure must fall back
            _blocks[key] = (f, None)
            warnings.warn(
                f"compiling the fast path failed for {f!r} ({type(err).__name__}: {err}); "
                "falling back to the eager integrator",
                RuntimeWarning,
                stacklevel=4,
            )
            return None

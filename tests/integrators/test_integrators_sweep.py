"""The fused coarse sweep (one compiled call) equals the slice-by-slice sweep bit for bit."""

import pytest
import torch

from partime.dynamics import Lorenz, VanDerPol
from partime.integrators import kernels
from partime.steppers import RKPropagator

needs_cc = pytest.mark.skipif(kernels.find_compiler() is None, reason="no C compiler")
# unequal slices: 4, 2, 4, 3 and 5 steps of 0.02
TIMES = torch.tensor([0.1, 0.18, 0.22, 0.3, 0.36, 0.46], dtype=torch.float64)


def slice_by_slice(coarse, t0, t1, first, starts, ends, fine=None, old=None, exact=-1):
    """The sweep as parareal writes it without fusion, one coarse call per slice."""
    for j in range(first, len(ends)):
        if j == exact:
            starts[j + 1] = fine[j - first]
            continue
        ends[j] = coarse(starts[j], t0[j], t1[j])
        starts[j + 1] = ends[j] if fine is None else fine[j - first] + (ends[j] - old[j])


def sweep_states(system, batch: int, dtype=torch.float64):
    """Start states (6, batch, dim), fine ends and old coarse ends (5, batch, dim) near the
    attractor: arbitrary but finite."""
    gen = torch.Generator().manual_seed(batch)
    lorenz = isinstance(system, Lorenz)
    scale, shift = (5.0, torch.tensor([0.0, 0.0, 25.0], dtype=dtype)) if lorenz else (1.0, 0.0)
    draw = lambda n: torch.randn(n, batch, system.dim, dtype=dtype, generator=gen)  # noqa: E731
    return draw(6) * scale + shift, draw(5) * scale + shift, draw(5) * scale + shift


@needs_cc
@pytest.mark.parametrize("batch", [1, 16])
@pytest.mark.parametrize("system", [Lorenz(), VanDerPol()], ids=["lorenz", "vdp"])
def test_fused_sweep_equals_slice_by_slice_bitwise(system, batch):
    coarse = RKPropagator(system, 0.02, fast=True)
    starts, fine, old = sweep_states(system, batch)
    t0, t1 = TIMES[:-1], TIMES[1:]
    sweep = coarse.fused_sweep(starts[0], t0, t1)
    assert sweep is not None
    t0f, t1f = t0.tolist(), t1.tolist()  # floats, as parareal passes them
    cases = [  # (first, fine, old, exact): iteration 0, then correction sweeps
        (0, None, None, -1),
        (0, fine, old, -1),
        (2, fine[2:], old, 2),  # the frontier slice: exactly F
        (1, fine[1:], old, -1),  # a block after the frontier
    ]
    for first, f, o, exact in cases:
        fused, fused_ends = starts.clone(), old.clone()
        loop, loop_ends = starts.clone(), old.clone()
        change, finite = sweep(first, fused, fused_ends, f, exact)  # ends: old G on entry
        slice_by_slice(coarse, t0f, t1f, first, loop, loop_ends, f, o, exact)
        assert finite and bool(fused.isfinite().all())
        if f is not None:  # parareal's residual, as it computes it unfused
            assert change == float((fused[first + 1 :] - starts[first + 1 :]).abs().max()) > 0
        assert torch.equal(fused, loop) and torch.equal(fused_ends, loop_ends)
        assert torch.equal(fused[: first + 1], starts[: first + 1])  # untouched before first
    assert not torch.equal(fused, starts)


@needs_cc
def test_fused_sweep_with_per_row_times_and_float32():
    system = Lorenz()
    starts, fine, old = sweep_states(system, 5, torch.float32)
    t0 = TIMES[:-1, None] + torch.linspace(0.0, 1.0, 5, dtype=torch.float64)  # (5 slices, 5 rows)
    t1 = t0 + (TIMES[1:] - TIMES[:-1])[:, None]
    coarse = RKPropagator(system, 0.02, fast=True)
    fused, fused_ends = starts.clone(), old.clone()
    loop, loop_ends = starts.clone(), old.clone()
    coarse.fused_sweep(starts[0], t0, t1)(0, fused, fused_ends, fine)
    slice_by_slice(coarse, t0, t1, 0, loop, loop_ends, fine, old)
    assert torch.equal(fused, loop) and torch.equal(fused_ends, loop_ends)


@needs_cc
def test_propagators_that_cannot_fuse_say_so():
    x = torch.ones(2, 3, dtype=torch.float64)
    t0, t1 = TIMES[:-1], TIMES[1:]
    decay = lambda t, x: -x  # noqa: E731 - a plain callable, not a ComponentSystem
    decay.dim = 3

    class Unbuilt(Lorenz):
        """A system no kernel has been built for in this session."""

    assert RKPropagator(Lorenz(), 0.02, fast=False).fused_sweep(x, t0, t1) is None
    assert RKPropagator(decay, 0.02, fast=True).fused_sweep(x, t0, t1) is None
    assert RKPropagator(Unbuilt(), 0.02).fused_sweep(x, t0, t1) is None  # auto: not built yet
    complex_x = x.to(torch.complex128)
    assert RKPropagator(Lorenz(), 0.02, fast=True).fused_sweep(complex_x, t0, t1) is None


@needs_cc
def test_fused_sweep_rejects_tensors_it_would_write_wrongly():
    x = torch.ones(2, 3, dtype=torch.float64)
    sweep = RKPropagator(Lorenz(), 0.02, fast=True).fused_sweep(x, TIMES[:-1], TIMES[1:])
    starts, ends = x.new_ones(6, 2, 3), x.new_ones(5, 2, 3)
    with pytest.raises(ValueError, match="starts must be a CPU torch.float64 tensor"):
        sweep(0, starts[:5], ends)
    with pytest.raises(ValueError, match="ends must be contiguous"):
        sweep(0, starts, x.new_ones(2, 5, 3).transpose(0, 1))
    with pytest.raises(ValueError, match="fine must be a tensor of shape"):
        sweep(1, starts, ends, ends)
    with pytest.raises(ValueError, match="exact slice needs the fine ends"):
        sweep(0, starts, ends, exact=0)
    with pytest.raises(ValueError, match="t0 must have shape"):
        RKPropagator(Lorenz(), 0.02, fast=True).fused_sweep(x, TIMES[:-1, None], TIMES[1:, None])


@needs_cc
def test_fused_sweep_split_over_threads_is_bitwise_one_thread():
    system = Lorenz()
    coarse = RKPropagator(system, 0.002, fast=True)  # 180 steps x 2048 rows: two threads' work
    starts, fine, old = sweep_states(system, 2048)
    sweep = coarse.fused_sweep(starts[0], TIMES[:-1], TIMES[1:])
    results, reports = [], []
    nan_in_last_row = fine[1:].clone()
    nan_in_last_row[-1, -1, 0] = float("nan")  # in the second thread's rows
    threads = torch.get_num_threads()
    try:
        for n in (1, 2):
            torch.set_num_threads(n)
            out, ends = starts.clone(), old.clone()
            reports.append(sweep(1, out, ends, fine[1:], 1))
            results.append((out, ends))
            assert sweep(1, starts.clone(), old.clone(), nan_in_last_row, 1)[1] is False
    finally:
        torch.set_num_threads(threads)
    assert reports[0] == reports[1] == (float((results[0][0] - starts).abs().max()), True)
    loop, loop_ends = starts.clone(), old.clone()
    slice_by_slice(
        coarse, TIMES[:-1].tolist(), TIMES[1:].tolist(), 1, loop, loop_ends, fine[1:], old, 1
    )
    for out, ends in results:
        assert torch.equal(out, loop) and torch.equal(ends, loop_ends)

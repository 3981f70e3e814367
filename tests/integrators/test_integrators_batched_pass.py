"""The prepared fine pass (one compiled call, checked once) equals the propagator's call bitwise."""

import pytest
import torch

from partime.dynamics import Lorenz, VanDerPol
from partime.integrators import kernels
from partime.pint.executors import VectorizedExecutor
from partime.pint.parareal import parareal
from partime.steppers import RKPropagator

needs_cc = pytest.mark.skipif(kernels.find_compiler() is None, reason="no C compiler")
TIMES = torch.linspace(0.1, 0.42, 5, dtype=torch.float64)  # 4 slices of 4 steps of 0.02


def starts_like(system, m: int, batch: int, dtype=torch.float64) -> torch.Tensor:
    gen = torch.Generator().manual_seed(batch)
    x = torch.randn(m, batch, system.dim, dtype=dtype, generator=gen)
    return x * 5.0 + torch.tensor([0.0, 0.0, 25.0], dtype=dtype) if system.dim == 3 else x


@needs_cc
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("batch", [1, 7])
@pytest.mark.parametrize("system", [Lorenz(), VanDerPol()], ids=["lorenz", "vdp"])
def test_batched_pass_equals_the_per_row_call_bitwise(system, batch, dtype):
    fine = RKPropagator(system, 0.02, fast=True)
    x = starts_like(system, 4, batch, dtype)
    t0, t1 = TIMES[:-1], TIMES[1:]
    prepared = fine.batched_pass(x, t0, t1)
    assert prepared is not None
    rows_t0, rows_t1 = t0.repeat_interleave(batch), t1.repeat_interleave(batch)
    expected = fine(x.reshape(4 * batch, system.dim), rows_t0, rows_t1).reshape(x.shape)
    for _ in range(2):  # repeated passes, as parareal's iterations make
        assert torch.equal(prepared(x), expected)
    assert not torch.equal(expected, x)
    for first in (1, 3):  # the slices from ``first`` on, from each one's own start time
        assert torch.equal(prepared(x[first:], first), expected[first:])
    out = torch.full_like(x, float("nan"))  # parareal's buffer, written from ``first`` on
    assert prepared(x[2:], 2, out[2:]).data_ptr() == out[2].data_ptr()
    assert torch.equal(out[2:], expected[2:]) and bool(out[:2].isnan().all())


@needs_cc
def test_batched_pass_checks_once_and_rejects_what_it_was_not_made_for():
    fine = RKPropagator(Lorenz(), 0.02, fast=True)
    x = starts_like(Lorenz(), 4, 3)
    prepared = fine.batched_pass(x, TIMES[:-1], TIMES[1:])
    with pytest.raises(ValueError, match="x must be a CPU torch.float64 tensor of shape"):
        prepared(x[:3])
    with pytest.raises(ValueError, match="x must be a CPU torch.float64 tensor"):
        prepared(x.float())
    with pytest.raises(ValueError, match=r"shape \(3, 3, 3\) \(first=1 of 4 slices\)"):
        prepared(x, 1)
    with pytest.raises(ValueError, match="first=4 of 4 slices"):
        prepared(x[4:], 4)
    with pytest.raises(ValueError, match=r"out must be a CPU torch.float64 tensor of shape \(3,"):
        prepared(x[1:], 1, torch.empty_like(x))
    with pytest.raises(ValueError, match="out must be contiguous"):
        prepared(x, 0, x.transpose(0, 1).contiguous().transpose(0, 1))
    uneven = torch.tensor([0.0, 0.08, 0.12, 0.2, 0.28], dtype=torch.float64)
    with pytest.raises(ValueError, match="share one duration"):
        fine.batched_pass(x, uneven[:-1], uneven[1:])
    assert RKPropagator(Lorenz(), 0.02, fast=False).batched_pass(x, TIMES[:-1], TIMES[1:]) is None


class UnpreparedExecutor(VectorizedExecutor):
    """Every fine pass through ``fine`` (the path of fines that offer no prepared pass)."""

    def fine_pass(self, prop, like, t0, t1):
        return None


@needs_cc
@pytest.mark.parametrize("fast", [True, None], ids=["static-shapes", "auto"])
def test_parareal_with_prepared_passes_is_bitwise_the_unprepared_solve(fast):
    system = Lorenz()
    coarse, fine = RKPropagator(system, 0.04, fast=fast), RKPropagator(system, 0.005, fast=fast)
    x0 = starts_like(system, 1, 5)[0]
    times = torch.linspace(0.0, 1.28, 9, dtype=torch.float64)
    runs = [
        parareal(coarse, fine, x0, times, executor, tol=1e-12)
        for executor in (VectorizedExecutor(), UnpreparedExecutor())
    ]
    assert runs[0].iterations == runs[1].iterations >= 2
    assert torch.equal(runs[0].states, runs[1].states)

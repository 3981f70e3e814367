"""Parareal with a fused coarse sweep equals the slice-by-slice sweep bit for bit, vectorized
and over mpiexec -n 2; coarse propagators that cannot fuse keep the per-slice loop."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest
import torch

from partime.dynamics import Lorenz, VanDerPol
from partime.integrators import fast, kernels
from partime.pint import CommExecutor, parareal, slice_times
from partime.steppers import FlowMapMLP, NeuralStepper, RKPropagator

HERE = os.path.abspath(__file__)
needs_cc = pytest.mark.skipif(kernels.find_compiler() is None, reason="no C compiler")
MPIEXEC = shutil.which("mpiexec")
SHARED_CACHE_ENV = "PARTIME_TEST_KERNEL_CACHE"  # the folder the launching test built into


class CountingRK(RKPropagator):
    """An RK coarse that counts its per-slice calls."""

    calls = 0

    def __call__(self, x, t0, t1):
        self.calls += 1
        return super().__call__(x, t0, t1)


class SliceBySliceRK(CountingRK):
    """The same compiled coarse, without its fused sweep."""

    def fused_sweep(self, x, t0, t1):
        return None


@pytest.fixture(scope="module", autouse=True)
def kernel_cache(tmp_path_factory):
    """Kernels built in a fresh cache folder; the mpiexec ranks load them from there."""
    saved = os.environ.get(kernels.CACHE_ENV)
    folder = os.environ.get(SHARED_CACHE_ENV) or str(tmp_path_factory.mktemp("partime-cache"))
    os.environ[kernels.CACHE_ENV] = folder
    fast.forget_kernels()
    yield
    fast.forget_kernels()
    if saved is None:
        os.environ.pop(kernels.CACHE_ENV, None)
    else:
        os.environ[kernels.CACHE_ENV] = saved


def problem(name: str, batch: int):
    """6 slices of 0.04 (4 fine steps, 1 coarse step each), float64 states near the attractor."""
    system = {"lorenz": Lorenz, "vdp": VanDerPol}[name]()
    gen = torch.Generator().manual_seed(batch)
    x0 = torch.randn(batch, system.dim, dtype=torch.float64, generator=gen)
    if name == "lorenz":
        x0 = 5 * x0 + torch.tensor([0.0, 0.0, 25.0], dtype=torch.float64)
    return system, x0, RKPropagator(system, 0.01, fast=True), slice_times(0.24, 6)


def fused_and_slice_by_slice(name: str, batch: int, executor=None):
    system, x0, fine, times = problem(name, batch)
    fused, looped = CountingRK(system, 0.04, fast=True), SliceBySliceRK(system, 0.04, fast=True)
    results = [parareal(g, fine, x0, times, executor, tol=0.0) for g in (fused, looped)]
    return results, (fused, looped)


def assert_bitwise_equal(a, b) -> None:
    assert a.iterations == b.iterations >= 3 and a.residuals == b.residuals
    assert a.coarse_calls == b.coarse_calls == sum(range(6 - a.iterations, 7))
    assert torch.equal(a.final_state.U, b.final_state.U)
    assert torch.equal(a.final_state.G, b.final_state.G)
    if a.states is not None:
        assert torch.equal(a.states, b.states)


@needs_cc
@pytest.mark.parametrize("batch", [1, 16])
@pytest.mark.parametrize("name", ["lorenz", "vdp"])
def test_fused_sweep_equals_slice_by_slice_bitwise(name, batch):
    (fused, looped), (fused_coarse, looped_coarse) = fused_and_slice_by_slice(name, batch)
    assert_bitwise_equal(fused, looped)
    assert fused_coarse.calls == 1  # the warm-up call: every sweep ran fused
    assert looped_coarse.calls == 1 + looped.coarse_calls


def test_coarse_that_cannot_fuse_runs_slice_by_slice():
    system, x0, _, times = problem("vdp", 2)
    fine = RKPropagator(system, 0.01, fast=False)
    decay = lambda t, x: -x  # noqa: E731 - a plain callable, not a ComponentSystem
    decay.dim = 2
    net = NeuralStepper(FlowMapMLP(2, widths=(4,)).double(), 0.04)
    assert not hasattr(net, "fused_sweep")
    for coarse in (CountingRK(system, 0.04, fast=False), CountingRK(decay, 0.04, fast=True)):
        result = parareal(coarse, fine, x0, times, max_iter=2, tol=0.0)
        assert coarse.calls == result.coarse_calls == 6 + 5 + 4
    result = parareal(net, fine, x0, times, tol=0.0)  # K = n_slices: the fine answer
    serial = fine.trajectory(x0, 0.0, 0.24, save_every=4)
    assert torch.allclose(result.states, serial, rtol=1e-13, atol=1e-13)


@pytest.mark.mpi(min_size=2)
def test_mpi_side_fused_equals_slice_by_slice():
    from partime.comm import from_env

    executor = CommExecutor(from_env("mpi"))
    for name, batch in (("lorenz", 16), ("vdp", 1)):
        (fused, looped), _ = fused_and_slice_by_slice(name, batch, executor)
        assert_bitwise_equal(fused, looped)
        if executor.is_root:
            (vectorized, _), _ = fused_and_slice_by_slice(name, batch)
            assert (fused.states - vectorized.states).abs().max() <= 1e-12


@needs_cc
@pytest.mark.skipif(MPIEXEC is None, reason="mpiexec not on PATH")
def test_mpiexec_fused_equals_slice_by_slice():
    for name, batch in (("lorenz", 16), ("vdp", 1)):
        fused_and_slice_by_slice(name, batch)  # build the kernels once, for both ranks
    pytest_args = ["-m", "pytest", "--with-mpi", "-q", "-p", "no:cacheprovider", "-m", "mpi", HERE]
    cmd = ["timeout", "120", MPIEXEC, "-n", "2", sys.executable, *pytest_args]
    env = {**os.environ, "OMP_NUM_THREADS": "1", SHARED_CACHE_ENV: os.environ[kernels.CACHE_ENV]}
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "1 passed" in proc.stdout

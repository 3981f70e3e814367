"""Parareal in depth: the OdeBlock forward by pint.parareal over ranks, exact backward after it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest
import torch
from torch import nn

from partime.comm import detect_launcher, from_env
from partime.layerpar.parareal import DepthParareal
from partime.nets import OdeBlock

HERE = os.path.abspath(__file__)
WIDTH = 6


def network():
    torch.manual_seed(0)
    rate = nn.Sequential(nn.Linear(WIDTH, WIDTH), nn.Tanh())
    block = OdeBlock(rate, 8, "pc", "rk4", 16, epsilon=1.0, state_shape=(WIDTH,)).double()
    stem, head = nn.Linear(3, WIDTH).double(), nn.Linear(WIDTH, 2).double()
    g = torch.Generator().manual_seed(1)
    x = torch.randn(5, 3, generator=g, dtype=torch.float64)
    return stem, block, head, x, torch.randn(5, 2, generator=g, dtype=torch.float64)


def serial_reference():
    stem, block, head, x, y = network()
    loss = nn.functional.mse_loss(head(block(stem(x))), y)
    loss.backward()
    modules = {"stem": stem, "block": block, "head": head}
    grads = {f"{m}.{n}": p.grad for m, mod in modules.items() for n, p in mod.named_parameters()}
    return float(loss.detach()), grads, block


def gradient_error(comm, tol: float) -> tuple[int, float, float]:
    """Iterations, |loss - serial| and the largest gradient difference (every rank)."""
    loss_ref, grads_ref, _ = serial_reference()
    stem, block, head, x, y = network()
    depth = DepthParareal(block, comm, slices=8, coarse_steps=8, tol=tol)
    loss, result = depth.train_step(stem, head, x, y, nn.functional.mse_loss)
    diffs = []
    for name, module in {"stem": stem, "block": block, "head": head}.items():
        for n, p in module.named_parameters():
            grad = torch.zeros_like(p) if p.grad is None else p.grad
            total = comm.allreduce(grad)  # each rank holds its slices' (or stem/head) share
            diffs.append(float((total - grads_ref[f"{name}.{n}"]).abs().max()))
    return result.iterations, abs(float(loss) - loss_ref), max(diffs)


inside_a_job = detect_launcher() is not None


@pytest.fixture(scope="module")
def comm():
    return from_env(num_threads=None)


def test_side_exact_after_as_many_iterations_as_slices(comm):
    iterations, loss_error, grad_error = gradient_error(comm, tol=0.0)
    assert iterations <= 8 and loss_error <= 1e-12 and grad_error <= 1e-12


def test_side_converged_forward_gives_a_close_gradient_in_fewer_iterations(comm):
    iterations, loss_error, grad_error = gradient_error(comm, tol=1e-6)
    assert iterations == 1  # one RK4 step per slice as the coarse: residual ~5e-8
    assert loss_error < 1e-7 and grad_error < 1e-6


def test_side_inference_matches_the_block(comm):
    stem, block, _, x, _ = network()
    with torch.no_grad():
        z = stem(x)
    result = DepthParareal(block, comm, slices=8, coarse_steps=8, tol=1e-12).forward(z)
    if comm.rank == 0:
        with torch.no_grad():
            serial = block.trajectory(z, 0.0, 1.0, save_every=2)  # the slice boundaries
        assert float((result.states - serial).abs().max()) <= 1e-10


def test_side_bad_slices_fail_before_communicating(comm):
    _, block, _, _, _ = network()
    with pytest.raises(ValueError, match="slices=3 must divide the block's 16 steps"):
        DepthParareal(block, comm, slices=3, coarse_steps=6)
    with pytest.raises(ValueError, match="coarse_steps=2"):
        DepthParareal(block, comm, slices=4, coarse_steps=2)


@pytest.mark.skipif(inside_a_job, reason="the launches run in the serial session")
@pytest.mark.parametrize("ranks", [2, pytest.param(3, marks=pytest.mark.slow)])
def test_mpiexec(ranks):
    mpiexec = shutil.which("mpiexec")
    if mpiexec is None:
        pytest.skip("mpiexec not on PATH")
    args = ["-m", "pytest", "-q", "-p", "no:cacheprovider", "-x", "-k", "side", HERE]
    proc = subprocess.run(
        ["timeout", "180", mpiexec, "-n", str(ranks), sys.executable, *args],
        env={**os.environ, "OMP_NUM_THREADS": "1"}, capture_output=True, text=True,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]

"""Parareal over real ranks: mpiexec -n 2 / -n 3 and torchrun (gloo) equal the vectorized run."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time

import pytest
import torch

from partime.dynamics import Lorenz
from partime.pint import (
    Checkpointer,
    CommExecutor,
    load_checkpoint,
    parareal,
    slice_times,
)
from partime.steppers import RKPropagator

HERE = os.path.abspath(__file__)
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def problem(fast: bool | None = None):
    """Lorenz, 6 slices, batch 3, float64: small enough for 3 ranks on 2 busy cores. ``fast``
    as RKPropagator's (default auto: a rank may build a kernel between two solves)."""
    f = Lorenz()
    x0 = torch.tensor([[1.0, 1.0, 1.0], [-2.0, 3.0, 20.0], [5.0, -5.0, 25.0]], dtype=torch.float64)
    coarse, fine = RKPropagator(f, 0.02, fast=fast), RKPropagator(f, 1e-3, fast=fast)
    return coarse, fine, x0, slice_times(0.6, 6)


def check_against_vectorized(comm) -> None:
    coarse, fine, x0, times = problem()
    executor = CommExecutor(comm)
    result = parareal(coarse, fine, x0, times, executor, tol=1e-9, save_every=20)
    exact = parareal(coarse, fine, x0, times, executor, tol=0.0)
    if comm.is_root:
        ref = parareal(coarse, fine, x0, times, tol=1e-9, save_every=20)
        assert result.iterations == ref.iterations and result.residuals == ref.residuals
        assert (result.states - ref.states).abs().max() <= 1e-12
        assert (result.trajectory - ref.trajectory).abs().max() <= 1e-12
        serial = fine.trajectory(x0, 0.0, 0.6, save_every=100)
        assert torch.allclose(exact.states, serial, rtol=1e-13, atol=0)
    else:
        assert result.states is None and result.trajectory is None


@pytest.mark.mpi(min_size=2)
def test_mpi_side_equals_vectorized():
    from partime.comm import from_env

    check_against_vectorized(from_env("mpi"))


@pytest.mark.mpi(min_size=2)
def test_mpi_side_resume_after_kill():
    from partime.comm import from_env

    comm = from_env("mpi")
    coarse, fine, x0, times = problem(fast=False)  # bitwise comparisons: one path throughout
    executor = CommExecutor(comm)
    directory = comm.bcast(tempfile.mkdtemp() if comm.is_root else None)
    save = Checkpointer(directory)

    def killed_after_first(state):
        save(state)
        if state.iteration == 1:
            raise KeyboardInterrupt  # stands in for the job being killed

    with pytest.raises(KeyboardInterrupt):
        parareal(coarse, fine, x0, times, executor, tol=1e-9, callback=killed_after_first)
    resumed = parareal(
        coarse, fine, x0, times, executor, tol=1e-9, resume=load_checkpoint(directory, comm.rank)
    )
    full = parareal(coarse, fine, x0, times, executor, tol=1e-9)
    comm.barrier()  # before any assertion: a failing rank must not leave the others waiting
    if comm.is_root:
        shutil.rmtree(directory)
        assert resumed.iterations == full.iterations and torch.equal(resumed.states, full.states)


@pytest.mark.mpi(min_size=2)
def test_mpi_side_idle_ranks_when_allowed():
    from partime.comm import from_env

    comm = from_env("mpi")
    coarse, fine, x0, _ = problem()
    times = slice_times(0.1 * (comm.size - 1), comm.size - 1)  # the last rank owns no slice
    result = parareal(coarse, fine, x0, times, CommExecutor(comm, allow_idle=True), save_every=50)
    if comm.is_root:
        ref = parareal(coarse, fine, x0, times, save_every=50)
        assert (result.states - ref.states).abs().max() <= 1e-12
        assert (result.trajectory - ref.trajectory).abs().max() <= 1e-12


class Timed(RKPropagator):
    """An eager RK propagator that notes when each call starts and ends, after ``pause`` s."""

    def __init__(self, *args, pause: float = 0.0, **kwargs) -> None:
        super().__init__(*args, fast=False, **kwargs)
        self.pause, self.calls = pause, []

    def __call__(self, x, t0, t1):
        start = time.monotonic()  # one clock for every process of the machine
        time.sleep(self.pause)
        out = super().__call__(x, t0, t1)
        self.calls.append((start, time.monotonic()))
        return out


@pytest.mark.mpi(min_size=2)
def test_mpi_side_first_rank_runs_its_next_fine_pass_while_the_last_rank_sweeps():
    """Pipelined parareal: rank 0 does not wait for the residual before its next fine pass."""
    from partime.comm import from_env

    comm = from_env("mpi")
    _, _, x0, times = problem()
    last = comm.rank == comm.size - 1
    coarse, fine = Timed(Lorenz(), 0.02, pause=0.05 if last else 0.0), Timed(Lorenz(), 1e-3)
    result = parareal(coarse, fine, x0, times, CommExecutor(comm), tol=1e-9)
    fine_calls, coarse_calls = comm.gather(fine.calls), comm.gather(coarse.calls)
    if comm.is_root:
        ref = parareal(Timed(Lorenz(), 0.02), Timed(Lorenz(), 1e-3), x0, times, tol=1e-9)
        assert result.iterations == ref.iterations and result.residuals == ref.residuals
        assert (result.states - ref.states).abs().max() <= 1e-12
        # Rank 0's second fine pass (of iteration 2) starts right after its part of sweep 1;
        # waiting for that sweep's residual, it would start after the last rank's sweep 1 (of
        # 2 x 0.05 s at least) has ended, i.e. after 2 x its slices' coarse calls.
        n_last = len(CommExecutor(comm).local_slices(len(times) - 1))
        second = fine_calls[0][1][0]
        ended = sum(end < second for _, end in coarse_calls[-1])
        assert ended == n_last, f"rank 0 waited for the last rank's sweep 1 ({ended} calls)"


@pytest.mark.mpi(min_size=2)
def test_mpi_side_no_fine_pass_ahead_of_the_iteration_predicted_to_converge():
    """Pipelined parareal looks ahead only while the residual is not predicted to meet the
    tolerance (from the decay of the last two): the run that converges makes no fine pass
    past its last iteration, i.e. as many fine solves as the vectorized run."""
    from partime.comm import from_env

    comm = from_env("mpi")
    coarse, fine, x0, _ = problem()
    times = slice_times(0.8, 8)  # rank 0 still owns unconverged slices after the last iteration
    result = parareal(coarse, fine, x0, times, CommExecutor(comm), tol=1e-9)
    if comm.is_root:
        ref = parareal(coarse, fine, x0, times, tol=1e-9)
        assert result.iterations == ref.iterations < len(times) - 1
        assert result.fine_calls == ref.fine_calls


@pytest.mark.skipif("TORCHELASTIC_RUN_ID" not in os.environ, reason="runs under torchrun")
def test_torch_side_equals_vectorized():
    from partime.comm import from_env

    check_against_vectorized(from_env("torch"))


def launch(cmd: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(["timeout", "120", *cmd], env=ENV, capture_output=True, text=True)


MPIEXEC = shutil.which("mpiexec")
needs_mpi = pytest.mark.skipif(MPIEXEC is None, reason="mpiexec not on PATH")


@needs_mpi
@pytest.mark.parametrize("ranks", [2, 3])
def test_mpiexec_equals_vectorized(ranks):
    mpiexec = MPIEXEC
    pytest_args = ["-m", "pytest", "--with-mpi", "-q", "-p", "no:cacheprovider", "-m", "mpi", HERE]
    proc = launch([mpiexec, "-n", str(ranks), sys.executable, *pytest_args])
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "5 passed" in proc.stdout


def test_torchrun_gloo_equals_vectorized():
    run = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2"]
    pytest_args = ["-m", "pytest", "-q", "-p", "no:cacheprovider", "-k", "torch_side", HERE]
    proc = launch([*run, "--standalone", *pytest_args])  # standalone: a free port
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "1 passed" in proc.stdout


FAILING_RANK = """
import torch
from partime.comm import from_env
from partime.dynamics import Lorenz
from partime.pint import CommExecutor, parareal, slice_times
from partime.steppers import RKPropagator

class BlowUp(Lorenz):
    def components(self, t, x, y, z):
        dx, dy, dz = super().components(t, x, y, z)
        return dx / (t < 0.45), dy, dz  # rank 1's slices (0.3..0.6) meet an infinite rate

x0 = torch.ones(2, 3, dtype=torch.float64)
coarse = RKPropagator(Lorenz(), 0.02)
parareal(coarse, RKPropagator(BlowUp(), 1e-3), x0, slice_times(0.6, 6), CommExecutor(from_env()))
"""


@needs_mpi
def test_exception_on_one_rank_ends_the_job_quickly():
    start = time.perf_counter()
    proc = launch([MPIEXEC, "-n", "2", sys.executable, "-c", FAILING_RANK])
    assert proc.returncode not in (0, 124)
    assert time.perf_counter() - start < 30
    assert "fine solve of slice 4" in proc.stderr

"""Distributed MG/OPT ≡ serial (float64, ≤ 1e-12): every level split in depth over 2 and 3
ranks (mpiexec), and 2 data-parallel replicas for a minibatch.

The ``test_side_*`` tests run inside the jobs launched at the bottom; in a plain run they run on
one rank (then the partition has one piece and they check the wrapper against the serial model).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest
import torch
from mgopt_problems import make_problem

from partime.comm import detect_launcher, from_env
from partime.mgopt import MGOptConfig, VCycle, WorkCounter
from partime.mgopt.distributed import PartitionedResNetLevels

HERE = os.path.abspath(__file__)
inside_a_job = detect_launcher() is not None


@pytest.fixture(scope="module")
def comm():
    return from_env(num_threads=None)


def _vcycles(problem, batch, cycles: int = 2) -> tuple[torch.Tensor, WorkCounter]:
    config = MGOptConfig(setup="[(1),1,{2}]", lr=0.3)
    counter = WorkCounter(3)
    vcycle = VCycle(problem, config.vcycle_setup, config.level_optimizers(), counter)
    theta = problem.init(5)
    for _ in range(cycles):
        theta = vcycle(theta, batch)
    return theta, counter


def test_side_vcycles_equal_serial(comm) -> None:
    serial, batch = make_problem(depth=32, levels=3, samples=24)
    expected, expected_counter = _vcycles(serial, batch)
    partitioned = PartitionedResNetLevels(serial.spec, comm)
    assert partitioned.partition.n_ranks == comm.size
    theta, counter = _vcycles(partitioned, batch)
    full = partitioned.gather(3, theta)
    assert full.shape == expected.shape
    assert (full - expected).abs().max() <= 1e-12
    assert counter.units == expected_counter.units
    assert abs(partitioned.loss(3, theta, *batch) - serial.loss(3, expected, *batch)) <= 1e-12
    assert torch.equal(partitioned.logits(3, theta, batch[0]).argmax(1),
                       serial.logits(3, expected, batch[0]).argmax(1))  # fmt: skip


def test_side_data_parallel_replicas_equal_serial(comm) -> None:
    serial, batch = make_problem(depth=16, levels=3, samples=20)
    expected, _ = _vcycles(serial, batch, cycles=1)
    replicas = PartitionedResNetLevels(serial.spec, comm, data_parallel=comm.size)
    theta, _ = _vcycles(replicas, batch, cycles=1)
    assert (theta - expected).abs().max() <= 1e-12


ENV = {**os.environ, "OMP_NUM_THREADS": "1"}
PYTEST = ["-m", "pytest", "-q", "-p", "no:cacheprovider", "-x", "-k", "side", HERE]


@pytest.mark.slow
@pytest.mark.skipif(inside_a_job, reason="the launches run in the serial session")
@pytest.mark.parametrize("ranks", [2, 3])
def test_mpiexec(ranks: int) -> None:
    mpiexec = shutil.which("mpiexec")
    if mpiexec is None:
        pytest.skip("mpiexec not on PATH")
    command = ["timeout", "240", mpiexec, "-n", str(ranks), sys.executable, *PYTEST]
    proc = subprocess.run(
        command, env=ENV, capture_output=True, text=True, cwd=os.path.dirname(HERE)
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-3000:]
    assert "2 passed" in proc.stdout and "failed" not in proc.stdout


def test_too_many_ranks_for_the_coarsest_level_are_refused() -> None:
    from partime.comm import SerialComm

    serial, _ = make_problem(depth=4, levels=3)
    with pytest.raises(ValueError, match="data_parallel=3 does not divide"):
        PartitionedResNetLevels(serial.spec, SerialComm(), data_parallel=3)

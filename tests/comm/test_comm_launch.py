"""Real multi-rank runs: the conformance module under mpiexec and torchrun, abort, and info.

Each launch is wrapped in ``timeout`` so a hang fails the test instead of stalling the run.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from partime.cli.main import main

HERE = Path(__file__).parent
CONFORMANCE = str(HERE / "test_comm_conformance.py")
ABORT_JOB = str(HERE / "comm_abort_job.py")
MPIEXEC = shutil.which("mpiexec")
needs_mpi = pytest.mark.skipif(MPIEXEC is None, reason="mpiexec not on PATH")
PYTEST = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-x"]
TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2"]


def launch(command: list[str], limit_s: int = 120, **env: str) -> subprocess.CompletedProcess:
    environ = {**os.environ, "OMP_NUM_THREADS": "1", **env}
    return subprocess.run(
        ["timeout", str(limit_s), *command], capture_output=True, text=True, env=environ
    )


def mpiexec(n: int) -> list[str]:
    return [MPIEXEC, "-n", str(n)]


@needs_mpi
@pytest.mark.parametrize("n", [2, 3])
def test_conformance_under_mpiexec(n):
    run = launch(
        [*mpiexec(n), *PYTEST, "--with-mpi", CONFORMANCE],
        PARTIME_EXPECT_SIZE=str(n),
        PARTIME_EXPECT_BACKEND="mpi",
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]


def test_conformance_under_torchrun_gloo():
    run = launch(
        [*TORCHRUN, "-m", *PYTEST[1:], CONFORMANCE],
        PARTIME_EXPECT_SIZE="2",
        PARTIME_EXPECT_BACKEND="torch",
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]


ABORT_LAUNCHES = {
    "mpiexec-guard": ([MPIEXEC, "-n", "2", sys.executable, ABORT_JOB, "guard"], True),
    "mpiexec-excepthook": ([MPIEXEC, "-n", "2", sys.executable, ABORT_JOB, "hook"], True),
    "torchrun-guard": ([*TORCHRUN, ABORT_JOB, "guard"], False),
}


@pytest.mark.parametrize("name", ABORT_LAUNCHES)
def test_exception_on_rank_1_ends_the_job(name):
    command, uses_mpi = ABORT_LAUNCHES[name]
    if uses_mpi and MPIEXEC is None:
        pytest.skip("mpiexec not on PATH")
    start = time.monotonic()
    run = launch(command, limit_s=60)
    elapsed = time.monotonic() - start
    # The bound on failure propagation (124 would mean `timeout` had to kill a hang).
    assert run.returncode not in (0, 124), run.stderr[-3000:]
    assert elapsed < 30, f"job took {elapsed:.1f} s to end after the exception"
    assert "[rank 1/2]" in run.stderr and "boom on rank 1" in run.stderr


def test_info_serial(capsys):
    threads = torch.get_num_threads()  # keep this shared process's thread count as it is
    assert main(["info", "--json", "--threads", str(threads)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["size"] == 1 and report["backend"] == "serial" and report["launcher"] is None
    assert report["ranks"][0]["torch_threads"] == threads
    assert report["backends"]["gloo"] is True


def test_info_text_output(capsys):
    assert main(["info", "--threads", str(torch.get_num_threads())]) == 0
    out = capsys.readouterr().out
    assert "partime" in out and "rank 0/1" in out


def test_info_bad_threads_is_a_usage_error(capsys):
    assert main(["info", "--threads", "0"]) == 2
    assert "num_threads=0" in capsys.readouterr().err

"""launch/mpirun.sh and launch/torchrun.sh start real ranks and return the command's exit code."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
ENV = dict(os.environ, PATH=str(Path(sys.executable).parent) + os.pathsep + os.environ["PATH"])
SOLVE = ["partime", "solve", "lorenz", "--slices", "4", "--fine", "rk4:0.001",
         "--coarse", "rk4:0.01", "--backend", "mpi", "--json", "--no-progress"]  # fmt: skip
needs_mpi = pytest.mark.skipif(
    shutil.which("mpiexec", path=ENV["PATH"]) is None, reason="no mpiexec (pip install mpich)"
)


def _launch(script: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(REPO / "launch" / script), *args], env=ENV, capture_output=True, text=True,
        timeout=120,
    )  # fmt: skip


@needs_mpi
def test_three_ranks_solve_and_exit_code():
    """3 ranks (oversubscribed on small machines) solve like serial; a bad argument exits 2."""
    ok = _launch("mpirun.sh", "-n", "3", "--oversubscribe", *SOLVE, "--t-end", "0.64",
                 "--compare-serial", "--serial-mode", "eager")  # fmt: skip
    assert ok.returncode == 0, ok.stderr
    lines = [line for line in ok.stdout.splitlines() if line.startswith("{")]
    assert len(lines) == 1, ok.stdout  # only rank 0 prints the summary
    summary = json.loads(lines[0])
    assert summary["ranks"] == 3 and summary["max_abs_err_vs_serial"] < 1e-8
    bad = _launch("mpirun.sh", "-n", "3", "--oversubscribe", *SOLVE, "--t-end", "-1")
    assert bad.returncode == 2 and "t_end=-1.0" in bad.stderr


@needs_mpi
def test_mpirun_options_are_checked():
    """Zero ranks, more ranks than CPUs without --oversubscribe: clear errors, nothing runs."""
    zero = _launch("mpirun.sh", "-n", "0", "true")
    assert zero.returncode == 2 and "-n/--np must be a positive integer, got '0'" in zero.stderr
    too_many = str(len(os.sched_getaffinity(0)) + 1)
    over = _launch("mpirun.sh", "-n", too_many, "true")
    assert over.returncode == 2 and "pass --oversubscribe" in over.stderr
    dry = _launch("mpirun.sh", "--dry-run", "-n", "2", "partime", "info")
    assert dry.returncode == 0 and dry.stdout.startswith("# mpich\n")  # the pip MPICH wheel


def test_torchrun_two_cpu_ranks():
    """launch/torchrun.sh --nproc-per-node 2: torch.distributed ranks (gloo), one thread each."""
    proc = _launch("torchrun.sh", "--nproc-per-node", "2", "partime", "info", "--json")
    assert proc.returncode == 0, proc.stderr
    info = json.loads(proc.stdout)
    assert (info["launcher"], info["backend"], info["size"]) == ("torchrun", "torch", 2)
    assert [r["torch_threads"] for r in info["ranks"]] == [1, 1]

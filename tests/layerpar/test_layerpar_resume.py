"""Killed-and-resumed layer-parallel training ends with the uninterrupted run's weights."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

JOB = str(Path(__file__).with_name("layerpar_train_job.py"))
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}
MPIEXEC = shutil.which("mpiexec")


def run_job(directory: Path, steps: int, kill_at: int, out: Path) -> subprocess.CompletedProcess:
    command = [MPIEXEC, "-n", "2", sys.executable, JOB, str(directory), str(steps)]
    return subprocess.run(
        ["timeout", "120", *command, str(kill_at), str(out)],
        env=ENV, capture_output=True, text=True,
    )  # fmt: skip


@pytest.mark.slow  # three 2-rank jobs
@pytest.mark.skipif(MPIEXEC is None, reason="mpiexec not on PATH")
def test_sigkilled_and_resumed_equals_uninterrupted(tmp_path):
    whole = run_job(tmp_path / "whole", 5, -1, tmp_path / "whole.pt")
    assert whole.returncode == 0, whole.stderr[-3000:]
    killed = run_job(tmp_path / "ckpt", 5, 3, tmp_path / "never.pt")
    assert killed.returncode not in (0, 124) and not (tmp_path / "never.pt").exists()
    assert (tmp_path / "ckpt" / "latest.json").read_text().startswith('{"step": 3')
    resumed = run_job(tmp_path / "ckpt", 5, -1, tmp_path / "resumed.pt")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    a, b = torch.load(tmp_path / "whole.pt"), torch.load(tmp_path / "resumed.pt")
    assert list(a) == list(b)
    for name in a:  # bitwise: weights, batch-norm statistics, their counters
        assert torch.equal(a[name], b[name]), name
    shards = sorted(p.name for p in (tmp_path / "ckpt").glob("*.pt"))
    assert shards == ["stage-0-of-2.step-5.pt", "stage-1-of-2.step-5.pt"]

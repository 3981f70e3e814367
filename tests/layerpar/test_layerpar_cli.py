"""`partime train cnet --layer-parallel` under mpiexec/torchrun equals the one-rank run with the
same micro-batches (batch norm per micro-batch), resumes exactly, and rejects bad input."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time

import pytest
import torch

ENV = {**os.environ, "OMP_NUM_THREADS": "1"}
MPIEXEC = shutil.which("mpiexec")
PARTIME = [sys.executable, "-m", "partime"]
TRAIN = [
    "train", "cnet", "--data", "digits", "--n-train", "192", "--n-val", "32", "--n-test", "32",
    "--units", "2-2", "--width", "4", "--scheme", "rk4", "--batch-size", "48",
    "--dtype", "float64", "--seed", "1", "--json", "--no-progress",
    "--layer-parallel", "--micro-batches", "4",
]  # fmt: skip
needs_mpi = pytest.mark.skipif(MPIEXEC is None, reason="mpiexec not on PATH")


def run(launcher: list[str], *extra: str, limit_s: int = 240) -> subprocess.CompletedProcess:
    command = ["timeout", str(limit_s), *launcher, *PARTIME, *TRAIN, *extra]
    return subprocess.run(command, env=ENV, capture_output=True, text=True)


def weights(path) -> dict[str, torch.Tensor]:
    return torch.load(path, weights_only=False)["state_dict"]


def assert_same_model(a, b, tol: float = 1e-12) -> None:
    wa, wb = weights(a), weights(b)
    assert list(wa) == list(wb)
    for name in wa:
        assert float((wa[name].double() - wb[name].double()).abs().max()) <= tol, name


@pytest.mark.slow  # four training runs
@needs_mpi
def test_two_ranks_equal_one_and_resume_exactly(tmp_path):
    one = run([], "--epochs", "2", "--out", str(tmp_path / "one.pt"))
    assert one.returncode == 0, one.stderr[-3000:]
    mpi = [MPIEXEC, "-n", "2"]
    two = run(mpi, "--epochs", "2", "--out", str(tmp_path / "two.pt"))
    assert two.returncode == 0, two.stderr[-3000:]
    summary = json.loads(two.stdout.strip().splitlines()[-1])
    assert summary["ranks"] == 2 and summary["layer_parallel"]["layer_parallel"]
    assert_same_model(tmp_path / "one.pt", tmp_path / "two.pt")
    losses = [e["train_loss"] for e in json.loads(one.stdout.splitlines()[-1])["epochs"]]
    assert [e["train_loss"] for e in summary["epochs"]] == pytest.approx(losses, abs=1e-12)
    # one epoch with a per-stage checkpoint, then resumed to two: the same model
    ckpt = ["--checkpoint", str(tmp_path / "ckpt")]
    first = run(mpi, "--epochs", "1", *ckpt, "--out", str(tmp_path / "first.pt"))
    assert first.returncode == 0, first.stderr[-3000:]
    assert sorted(p.name for p in (tmp_path / "ckpt").iterdir()) == ["stage-0-of-2", "stage-1-of-2"]
    rest = run(mpi, "--epochs", "2", *ckpt, "--resume", "--out", str(tmp_path / "resumed.pt"))
    assert rest.returncode == 0, rest.stderr[-3000:]
    assert_same_model(tmp_path / "two.pt", tmp_path / "resumed.pt", tol=0.0)


@pytest.mark.slow
def test_torchrun_gloo_equals_one_rank(tmp_path):
    torchrun = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc-per-node",
        "2",
    ]
    one = run([], "--epochs", "1", "--out", str(tmp_path / "one.pt"))
    assert one.returncode == 0, one.stderr[-3000:]
    proc = subprocess.run(
        ["timeout", "240", *torchrun, "-m", "partime", *TRAIN, "--epochs", "1",
         "--out", str(tmp_path / "two.pt")],
        env=ENV, capture_output=True, text=True,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert_same_model(tmp_path / "one.pt", tmp_path / "two.pt")


@needs_mpi
@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--micro-batches", "1"], "micro_batches=1 is fewer than the 2 pipeline stages"),
        pytest.param(
            ["--schedule", "zero-bubble"], "known schedules: gpipe, 1f1b", marks=pytest.mark.slow
        ),
        pytest.param(
            ["--data-parallel", "2", "--micro-batches", "64"],
            "batch_size=48",
            marks=pytest.mark.slow,
        ),  # fmt: skip
    ],
)
def test_bad_input_fails_on_every_rank_before_communicating(tmp_path, extra, message):
    start = time.monotonic()
    proc = run([MPIEXEC, "-n", "2"], "--out", str(tmp_path / "m.pt"), *extra, limit_s=120)
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert proc.stderr.count(message) == 2  # both ranks, one line each
    assert time.monotonic() - start < 60

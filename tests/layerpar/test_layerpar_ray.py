"""Layer-parallel on Ray actors that form a gloo group, on a real head on 127.0.0.1."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import torch

pytest.importorskip("ray")
REPO = Path(__file__).resolve().parents[2]
JOB = str(Path(__file__).with_name("layerpar_ray_job.py"))
ENV = dict(
    os.environ,
    OMP_NUM_THREADS="1",
    RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER="0",  # keep Ray on the loopback head
    PATH=str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", ""),
)
pytestmark = pytest.mark.slow  # a Ray head takes 10-30 s to start on a busy machine


@pytest.fixture(scope="module")
def head_address():
    """`launch/ray.sh head` on 127.0.0.1 (its own state dir and port), stopped afterwards."""
    state = tempfile.mkdtemp(prefix="pt-lp-ray-")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    ray_sh = str(REPO / "launch" / "ray.sh")
    start = [ray_sh, "head", "--state-dir", state, "--port", str(port), "--num-cpus", "3"]
    proc = subprocess.run(start, env=ENV, capture_output=True, text=True, timeout=150)
    try:
        assert proc.returncode == 0, proc.stderr
        yield proc.stdout.strip()
    finally:
        subprocess.run([ray_sh, "stop", "--state-dir", state], env=ENV, timeout=90)
        shutil.rmtree(state, ignore_errors=True)


def driver(*args: str) -> object:
    proc = subprocess.run(
        ["timeout", "150", sys.executable, JOB, *args], env=ENV, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize(("workers", "schedule"), [(2, "1f1b"), (3, "gpipe")])
def test_ray_actors_equal_serial(head_address, workers, schedule):
    results = driver(head_address, "exact", str(workers), schedule)
    assert len(results) == workers
    for loss_error, grad_error in results:
        assert loss_error <= 1e-12 and grad_error <= 1e-12


@pytest.mark.parametrize(("how", "error", "message"), [
    ("die", "RuntimeError", "Ray actor of rank 1 died"),
    ("raise", "ValueError", "rank 1: bad value on rank 1"),
])  # fmt: skip
def test_a_failing_actor_ends_the_run(head_address, how, error, message):
    start = time.monotonic()
    got = driver(head_address, "fail", how)
    assert got["type"] == error and message in got["message"]
    assert time.monotonic() - start < 30


def test_partime_train_on_ray_actors_equals_one_rank(head_address, tmp_path):
    """`partime train cnet --layer-parallel --backend ray --workers 2 --address HEAD`."""
    train = [
        sys.executable, "-m", "partime", "train", "cnet", "--data", "digits", "--n-train", "96",
        "--n-val", "32", "--n-test", "32", "--units", "1-1", "--width", "4", "--epochs", "1",
        "--batch-size", "32", "--dtype", "float64", "--json", "--no-progress",
        "--layer-parallel", "--micro-batches", "2",
    ]  # fmt: skip
    runs = {
        "one": [],
        "ray": ["--backend", "ray", "--workers", "2", "--address", head_address],
    }
    for name, extra in runs.items():
        proc = subprocess.run(
            ["timeout", "240", *train, *extra, "--out", str(tmp_path / f"{name}.pt")],
            env=ENV, capture_output=True, text=True,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr[-3000:]
    one = torch.load(tmp_path / "one.pt", weights_only=False)["state_dict"]
    ray = torch.load(tmp_path / "ray.pt", weights_only=False)["state_dict"]
    for name in one:
        assert float((one[name].double() - ray[name].double()).abs().max()) <= 1e-12, name

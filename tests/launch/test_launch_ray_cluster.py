"""launch/ray.sh on a real Ray cluster on 127.0.0.1: head, `partime solve --address`, stop."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
RAY_SH = str(REPO / "launch" / "ray.sh")
# Ray otherwise swaps the loopback head address for this machine's public one.
ENV = dict(
    os.environ,
    RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER="0",
    PATH=str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", ""),
)


def _head_pid(state_dir: str) -> int:
    return int((Path(state_dir) / "head.pid").read_text())


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.fixture(scope="module")
def ray_heads(pick_port):
    """Two independent heads on 127.0.0.1, started concurrently: [(state_dir, address)]."""
    if shutil.which("ray", path=ENV["PATH"]) is None:
        pytest.skip("ray is not installed (pip install 'partime[ray]')")
    # Short paths: Ray's unix sockets live under the state dir.
    dirs = [tempfile.mkdtemp(prefix="pt-ray-") for _ in range(2)]
    starts = [
        subprocess.Popen(
            [RAY_SH, "head", "--state-dir", d, "--port", str(pick_port()), "--num-cpus", "2"],
            env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        for d in dirs
    ]  # fmt: skip
    try:
        outs = [proc.communicate(timeout=120) for proc in starts]
        for proc, (_, err) in zip(starts, outs, strict=True):
            assert proc.returncode == 0, err
        yield [(d, out.strip()) for d, (out, _) in zip(dirs, outs, strict=True)]
    finally:
        for d in dirs:
            subprocess.run([RAY_SH, "stop", "--state-dir", d], env=ENV, timeout=90)
            shutil.rmtree(d, ignore_errors=True)


def test_solve_against_head_address(ray_heads):
    """`partime solve --backend ray --address HEAD` matches the serial fine solve."""
    _, address = ray_heads[0]
    assert address.startswith("127.0.0.1:")
    proc = subprocess.run(
        ["partime", "solve", "lorenz", "--t-end", "0.64", "--slices", "4", "--fine", "rk4:0.001",
         "--coarse", "rk4:0.01", "--compare-serial", "--serial-mode", "eager",
         "--backend", "ray", "--address", address,
         "--workers", "2", "--json", "--no-progress"],
        env=ENV, capture_output=True, text=True, timeout=150,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    assert summary["executor"] == "ray" and summary["converged"]
    assert summary["max_abs_err_vs_serial"] < 1e-8


def test_stop_ends_only_its_own_cluster(ray_heads):
    """Stopping head A ends all of A's processes and leaves head B running and reachable."""
    (dir_a, _), (dir_b, address_b) = ray_heads
    pid_a, pid_b = _head_pid(dir_a), _head_pid(dir_b)
    proc = subprocess.run([RAY_SH, "stop", "--state-dir", dir_a], env=ENV, timeout=90)
    assert proc.returncode == 0
    assert not _alive(pid_a)
    leftovers = subprocess.run(["pgrep", "-f", dir_a], capture_output=True, text=True).stdout
    assert leftovers == "", f"processes of the stopped cluster remain: {leftovers}"
    assert _alive(pid_b)
    status = subprocess.run(
        ["ray", "status", "--address", address_b], env=ENV, capture_output=True, timeout=60
    )
    assert status.returncode == 0, status.stderr

"""The networks-as-ODEs examples end to end on tiny budgets: their JSON and figures."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def run_example(name: str, tmp_path: Path, *options: str) -> dict:
    out, figure = tmp_path / f"{name}.json", tmp_path / f"{name}.png"
    cmd = [sys.executable, str(EXAMPLES / f"{name}.py"), *options, "--no-progress"]
    cmd += ["--out", str(out), "--plot", str(figure)]
    env = {**os.environ, "PARTIME_CACHE": str(tmp_path / "cache"), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert figure.stat().st_size > 10_000 or list(tmp_path.glob("*.png"))
    return json.loads(out.read_text())


@pytest.mark.slow
def test_manifestation_example(tmp_path):
    options = ["--units", "1-1", "--width", "4", "--train-steps", "4", "--epochs", "1"]
    result = run_example("manifestation", tmp_path, *options, "--seeds", "0", "--steps", "1,4")
    assert len(result["rows"]) == 2 * 4 * 2  # trained rk4/euler × 4 schemes × 2 step counts
    assert set(result["drops"]) == {"rk4", "euler"}
    assert result["drops"]["rk4"]["rk4 4 steps"] == 0.0  # its own training discretization


@pytest.mark.slow
def test_lmresnet_example(tmp_path):
    options = ["--data", "digits", "--blocks", "2-2", "--width", "4", "--epochs", "1"]
    result = run_example("lmresnet_vs_resnet", tmp_path, *options, "--seeds", "0")
    (run,) = result["runs"]
    assert len(run["ks"]) == 2 and 0 <= run["lm_error"] <= 100
    assert result["summary"]["pairs"] == 1


@pytest.mark.slow
def test_refinement_example(tmp_path):
    options = ["--data", "digits", "--width", "4", "--epochs", "3", "--seeds", "0"]
    result = run_example("refinement", tmp_path, *options)
    (run,) = result["runs"]
    assert run["refined"]["final_units"] == run["fixed"]["final_units"] == "4-4-4"
    assert len(run["refined"]["val_accuracy"]) == 3


@pytest.mark.slow
def test_convergence_example(tmp_path):
    plot = str(tmp_path / "convergence_test_dt{dt}.png")
    cmd = [sys.executable, str(EXAMPLES / "convergence_test.py"), "--quick", "--dt-data", "0.2"]
    cmd += ["--schemes", "euler", "--out", str(tmp_path / "c.json"), "--plot", plot]
    proc = subprocess.run([*cmd, "--no-progress"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads((tmp_path / "c.json").read_text())["0.2"]
    assert result["summary"]["euler"]["dip_ratio"] > 10
    assert (tmp_path / "convergence_test_dt0.2.png").stat().st_size > 10_000

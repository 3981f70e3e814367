"""``partime solve`` in one process: end to end, bad input, results/plot files, resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from partime.cli.main import main
from partime.pint import load_checkpoint
from partime.pint.results import read_results
from partime.steppers import FlowMapMLP, NeuralStepper

LORENZ = "solve lorenz --t-end 0.64 --slices 8 --fine rk4:1e-3 --no-progress".split()
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def run_json(capsys, argv: list[str]) -> dict:
    assert main([*argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def error_of(capsys, argv: list[str]) -> str:
    assert main(argv) == 2
    return capsys.readouterr().err


def test_lorenz_vectorized_matches_serial_and_writes_files(capsys, tmp_path):
    out, fig = tmp_path / "r.npz", tmp_path / "r.png"
    argv = [*LORENZ, "--coarse", "rk4:0.02", "--batch", "3", "--compare-serial",
            "--serial-mode", "eager"]  # fmt: skip
    summary = run_json(capsys, [*argv, "--out", str(out), "--plot", str(fig)])
    keys = {"iterations", "residuals", "wall_s", "serial_wall_s", "speedup"}
    assert keys | {"max_abs_err_vs_serial"} <= summary.keys()
    assert summary["converged"] and 1 <= summary["iterations"] < 8
    assert summary["residuals"][-1] <= 1e-10
    assert summary["max_abs_err_vs_serial"] <= 1e-10
    saved = read_results(out)
    assert saved["states"].shape == saved["serial_states"].shape == (9, 3, 3)
    assert abs(saved["states"] - saved["serial_states"]).max() == summary["max_abs_err_vs_serial"]
    assert saved["config"]["coarse"] == "rk4:0.02" and saved["summary"] == summary
    assert fig.stat().st_size > 10_000
    k, p, ratio = summary["iterations"], summary["projected_ranks"], summary["cost_ratio"]
    assert p == 8 and ratio > 0
    assert summary["projected_speedup"] == pytest.approx(1 / ((k + 1) * ratio + k / p))
    at_break_even = 1 / ((k + 1) * summary["break_even_ratio"] + k / p)
    assert at_break_even == pytest.approx(1.0)


def test_hybrid_and_exact_iteration_count(capsys):
    hybrid = run_json(capsys, [*LORENZ, "--coarse", "rk4:0.08", "--max-iter", "0"])
    assert hybrid["iterations"] == 0 and hybrid["residuals"] == []
    exact = run_json(capsys, [*LORENZ, "--coarse", "euler:0.08", "--tol", "0", "--x0", "1,1,1"])
    assert exact["iterations"] == 8  # tol 0: runs to N iterations, which is exact


def test_neural_fine_and_coarse_without_vector_field(capsys, tmp_path):
    torch.manual_seed(0)
    path = tmp_path / "flow.pt"
    NeuralStepper(FlowMapMLP(3, widths=(8,)).double(), 0.02).save(path)
    argv = ["solve", "none", "--t-end", "0.32", "--slices", "4", "--fine", f"neural:{path}"]
    summary = run_json(capsys, [*argv, "--coarse", f"neural:{path}", "--x0", "0.1,0.2,0.3"])
    # coarse == fine: the first correction changes nothing but rounding (batched vs per slice)
    assert summary["iterations"] == 1 and summary["residuals"][0] <= 1e-13


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--t-end", "-1", "--slices", "4", "--coarse", "rk4:0.1"], "T > 0"),
        (["--t-end", "0.64", "--slices", "0", "--coarse", "rk4:0.1"], "slices must be"),
        (["--t-end", "0.64", "--slices", "8", "--coarse", "rk4:0.03"], "cannot cover slice 0"),
        (["--t-end", "0.64", "--slices", "8", "--coarse", "rk9:0.01"], "unknown propagator kind"),
        (["--t-end", "0.64", "--slices", "8", "--coarse", "rk4:fast"], "is not a number"),
        (["--t-end", "0.64", "--slices", "8", "--coarse", "rk4"], "is not KIND:ARG"),
        (["--t-end", "0.64", "--slices", "8", "--coarse", "rk4:0.01", "--resume"], "resume"),
        (["--t-end", "0.64", "--slices", "8", "--coarse", "rk4:0.01", "--x0", "1,2"], "dimension"),
        (["--t-end", "0.64", "--slices", "8", "--coarse", "neural:/no/such.pt"], "no such model"),
    ],
)
def test_bad_input_fails_with_a_clear_message(capsys, argv, message):
    err = error_of(capsys, ["solve", "lorenz", "--fine", "rk4:1e-3", "--no-progress", *argv])
    assert err.startswith("partime solve: error:") and message in err


def test_bad_model_files(capsys, tmp_path):
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a torch file")
    err = error_of(capsys, [*LORENZ, "--coarse", f"neural:{garbage}"])
    assert "garbage.pt" in err
    two_d = tmp_path / "vdp.pt"
    NeuralStepper(FlowMapMLP(2, widths=(8,)), 0.02).save(two_d)
    err = error_of(capsys, [*LORENZ, "--coarse", f"neural:{two_d}"])
    assert "dim" in err and "vdp.pt" in err


def _solve_cmd(tmp_path, *extra: str) -> list[str]:
    # ~0.3 s of fine work per iteration and 6 iterations: a kill lands between 1 and 5.
    base = [sys.executable, "-m", "partime", "solve", "lorenz", "--t-end", "2.56"]
    base += ["--slices", "16", "--fine", "rk4:1e-4:eager", "--coarse", "rk4:0.04"]
    base += ["--batch", "2", "--tol", "1e-11", "--no-progress", "--json"]
    return [*base, "--checkpoint", str(tmp_path / "ckpt"), *extra]


def test_resume_after_kill_gives_the_same_answer(tmp_path):
    ckpt = tmp_path / "ckpt" / "rank0.pt"
    proc = subprocess.Popen(_solve_cmd(tmp_path), env=ENV, stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if ckpt.is_file() and load_checkpoint(ckpt.parent).iteration >= 1:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL, "the run ended before it could be killed"
    killed_at = load_checkpoint(ckpt.parent).iteration
    resumed = subprocess.run(
        _solve_cmd(tmp_path, "--resume", "--out", str(tmp_path / "a.npz")),
        env=ENV,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert resumed.returncode == 0, resumed.stderr
    fresh = subprocess.run(
        _solve_cmd(tmp_path / "fresh", "--out", str(tmp_path / "b.npz")),
        env=ENV,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert fresh.returncode == 0, fresh.stderr
    a, b = read_results(tmp_path / "a.npz"), read_results(tmp_path / "b.npz")
    assert 1 <= killed_at < a["summary"]["iterations"] == b["summary"]["iterations"]
    assert (a["states"] == b["states"]).all()
    assert list(a["residuals"]) == list(b["residuals"])

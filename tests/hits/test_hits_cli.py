"""``partime train hits`` end to end on a tiny budget, its bad-input errors, and the shipped
Lorenz coarse."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch

from partime.cli.main import main
from partime.hits import HierarchyPropagator, load_hierarchy


@pytest.mark.parametrize(
    ("extra", "dtype", "activation", "checkpoints"),
    [
        ([], torch.float32, "relu", ["model00_step1.pt", "model01_step4.pt"]),
        (
            ["--stacked", "--dtype", "float64", "--activation", "tanh"],
            torch.float64,
            "tanh",
            ["stacked_models00-01_lr0.pt"],
        ),
    ],
    ids=["one-by-one", "stacked-float64-tanh"],
)
def test_train_hits_saves_a_cross_validated_hierarchy(
    tmp_path, monkeypatch, capsys, extra, dtype, activation, checkpoints
):
    monkeypatch.setenv("PARTIME_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "h.pt"
    argv = ["train", "hits", "hyperbolic", "--out", str(out), "--steps", "1,4", "--widths", "8"]
    argv += ["--epochs", "30", "--n-train", "16", "--n-val", "4", "--batch-size", "8"]
    argv += ["--val-every", "10", "--backend", "serial", "--no-progress", *extra]
    assert main(argv) == 0
    assert "cross-validated range" in capsys.readouterr().out
    hierarchy = load_hierarchy(out, dim=2)
    assert hierarchy.steps == [1, 4] and hierarchy.system == "hyperbolic"
    assert hierarchy.selected is not None
    assert all(next(m.parameters()).dtype == dtype for m in hierarchy.models)
    assert all(m.activation == activation for m in hierarchy.models)
    assert sorted(p.name for p in (tmp_path / "h.pt.ckpt").iterdir()) == checkpoints
    assert HierarchyPropagator(hierarchy).dim == 2


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--steps", "4,1"], "steps must be distinct positive integers"),
        (["--epochs", "-1"], "epochs"),
        (["--widths", "0"], "widths"),
        (["--lr-stages", "1,0"], "lr_stages must be positive"),
        (["--workers", "2"], "need --backend ray"),
        (["--device", "gpu0"], "device must name a torch device"),
        (["--backend", "ray", "--workers", "0"], "--workers must be a positive integer"),
    ],
)
def test_train_hits_bad_options(tmp_path, capsys, extra, message):
    argv = ["train", "hits", "hyperbolic", "--out", str(tmp_path / "h.pt"), *extra]
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_bench_hits_prints_the_table_next_to_the_paper(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PARTIME_CACHE", str(tmp_path / "cache"))
    argv = ["bench", "hits", "--systems", "hyperbolic", "--steps", "1,4", "--widths", "8"]
    argv += ["--epochs", "20", "--n-train", "16", "--n-val", "4", "--n-test", "4"]
    argv += ["--batch-size", "8", "--val-every", "10"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if line.startswith("hyperbolic "))
    assert "5.1e-08" in row and "16/4/4" in row  # paper multiscale MSE; the sizes used
    fields = re.match(r"hyperbolic\s+(\S+)\s+\(\s*\d+\)\s+(\S+)\s+(\S+)\s+\[.*?\]\s+(\S+)", row)
    best, multiscale, ratio = (float(fields[i]) for i in (1, 2, 3))
    assert 0 < multiscale and 0 < best and ratio == pytest.approx(multiscale / best, rel=1e-2)
    assert fields[4] == ("yes" if multiscale < best else "NO")


def test_train_hits_unknown_system(tmp_path, capsys):
    argv = ["train", "hits", "nosuch", "--out", str(tmp_path / "h.pt"), "--backend", "serial"]
    assert main(argv) == 2
    assert "unknown system" in capsys.readouterr().err


def test_train_coarse_fits_a_parareal_coarse_that_solve_accepts(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PARTIME_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "vdp_coarse.pt"
    argv = ["train", "coarse", "vdp", "--out", str(out), "--fine", "rk4:0.01"]
    argv += ["--slice-length", "0.5"]
    argv += [
        "--widths",
        "16,16",
        "--epochs",
        "200",
        "--lbfgs-steps",
        "25",
        "--n-train",
        "8",
        "--n-val",
        "2",
    ]
    argv += ["--stride", "20", "--lr", "3e-3", "--no-progress"]
    assert main(argv) == 0
    assert "Jacobian rms error" in capsys.readouterr().out
    hierarchy = load_hierarchy(out, dim=2)
    assert hierarchy.steps == [50] and hierarchy.models[0].activation == "tanh"
    solve = ["solve", "vdp", "--t-end", "4", "--slices", "8", "--fine", "rk4:0.01", "--batch", "2"]
    solve += ["--coarse", f"hits:{out}", "--compare-serial", "--no-progress", "--json"]
    assert main(solve) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["converged"] and summary["max_abs_err_vs_serial"] < 1e-8


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--slice-length", "0.505"], "not a whole number of data steps"),
        (["--slice-length", "0.5", "--fine", "rk9:0.1"], "unknown propagator kind"),
        (["--slice-length", "0.5", "--epochs", "0"], "epochs must be an integer >= 1"),
        (["--slice-length", "0.5", "--stride", "0"], "need stride, n_train and n_val >= 1"),
    ],
)
def test_train_coarse_bad_options(tmp_path, capsys, extra, message):
    argv = ["train", "coarse", "vdp", "--out", str(tmp_path / "c.pt"), "--fine", "rk4:0.01"]
    argv = [*argv, *extra]
    if argv.count("--fine") == 2:
        i = argv.index("--fine")
        del argv[i : i + 2]
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_the_shipped_lorenz_coarse_runs_the_main_job_in_few_iterations(capsys):
    """The README's first command on 4 trajectories: the Jacobian-fitted coarse in examples/."""
    coarse = Path(__file__).parents[2] / "examples" / "lorenz_coarse.pt"
    argv = ["solve", "lorenz", "--t-end", "2.56", "--slices", "32", "--fine", "rk4:5e-4"]
    argv += ["--coarse", f"hits:{coarse}", "--batch", "4", "--compare-serial"]
    assert main([*argv, "--no-progress", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["converged"] and summary["iterations"] <= 6
    assert summary["max_abs_err_vs_serial"] <= 1e-10
    assert summary["projected_speedup"] > 0

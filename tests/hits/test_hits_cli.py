"""``partime train hits`` end to end on a tiny budget, and its bad-input errors."""

from __future__ import annotations

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
    argv += ["--max-epochs", "30", "--n-train", "16", "--n-val", "4", "--batch-size", "8"]
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
        (["--max-epochs", "-1"], "max_epochs"),
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
    argv += ["--max-epochs", "20", "--n-train", "16", "--n-val", "4", "--n-test", "4"]
    argv += ["--batch-size", "8", "--val-every", "10"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if line.startswith("hyperbolic "))
    assert "5.1e-08" in row and "16/4/4" in row  # paper multiscale MSE; the sizes used
    assert " yes |" in row or " NO |" in row


def test_train_hits_unknown_system(tmp_path, capsys):
    argv = ["train", "hits", "nosuch", "--out", str(tmp_path / "h.pt"), "--backend", "serial"]
    assert main(argv) == 2
    assert "unknown system" in capsys.readouterr().err

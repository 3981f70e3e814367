"""``partime bench pint --quick``: every parareal row matches serial fine; the table's shape."""

from __future__ import annotations

import json

import pytest
import torch

from partime.cli.main import main
from partime.hits import Hierarchy
from partime.steppers import FlowMapMLP, NeuralStepper


def test_bench_pint_quick_rows_and_errors(capsys, tmp_path):
    torch.manual_seed(0)
    model = tmp_path / "coarse.pt"  # an untrained flow map: a poor but finite coarse
    NeuralStepper(FlowMapMLP(3, widths=(8,)).double(), 0.04, system="lorenz").save(model)
    hits = tmp_path / "hits.pt"  # one untrained tanh flow map spanning a slice (0.08)
    tanh = FlowMapMLP(3, widths=(8,), activation="tanh").double()
    Hierarchy([tanh], [160], 5e-4, "lorenz").save(hits)
    argv = ["bench", "pint", "--quick", "--json", "--neural", str(model), "--hits", str(hits)]
    assert main(argv) == 0
    out = capsys.readouterr().out
    rows = json.loads(out.strip().splitlines()[-1])["rows"]
    keys = {"problem", "case", "backend", "iterations", "wall_s", "speedup", "bound", "p_eff"}
    keys |= {"fraction_of_bound", "unmodelled_s_per_iteration", "max_abs_err_vs_serial"}
    assert all(keys <= row.keys() for row in rows)
    serial_wall = {r["problem"]: r["wall_s"] for r in rows if r["case"] == "serial fine"}
    cases = {(r["problem"], r["case"], r["backend"]) for r in rows}
    assert ("lorenz", "parareal, RK4 0.02 coarse", "vectorized") in cases
    assert ("lorenz", "parareal, neural coarse", "vectorized") in cases
    assert ("lorenz", "parareal, HiTS coarse", "vectorized") in cases
    assert ("lorenz", "hybrid, RK4 0.02", "vectorized") in cases
    assert ("lorenz", "parareal, RK4 0.02 coarse", "mpi x2") in cases
    assert {("ks", "parareal, ETDRK4 0.25 coarse", f"mpi x{p}") for p in (1, 2)} <= cases
    assert sum(r["case"] == "serial fine" for r in rows) == 2
    for row in rows:
        if row["case"].startswith("hybrid"):
            assert row["iterations"] == 0 and row["bound"] is None
        elif row["case"].startswith("parareal"):
            assert row["max_abs_err_vs_serial"] <= 1e-10, row
            assert row["iterations"] >= 1 and row["bound"] > 0 and row["p_eff"] > 0
            model_s = serial_wall[row["problem"]] / row["bound"]  # the wall time S predicts
            unmodelled = row["unmodelled_s_per_iteration"] * (row["iterations"] + 1)
            assert model_s + unmodelled == pytest.approx(row["wall_s"], rel=1e-9)

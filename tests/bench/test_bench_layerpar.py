"""``partime bench layerpar --quick``: exact gradients on 2 MPI ranks, memory below serial."""

from __future__ import annotations

import json
import shutil

import pytest

from partime.cli.main import main


@pytest.mark.slow  # two 2-rank MPI runs beside the serial one
@pytest.mark.skipif(shutil.which("mpiexec") is None, reason="mpiexec not on PATH")
def test_bench_layerpar_quick(capsys):
    assert main(["bench", "layerpar", "--quick", "--no-ray", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["max_grad_diff_vs_serial"] <= 1e-12
    assert summary["bound"] == pytest.approx(2 * 8 / 9)
    # 1F1B holds 2 of 8 micro-batches on half the depth; GPipe all 8 on half
    assert summary["memory_ratio"] <= 0.3 and 0.4 <= summary["memory_ratio_gpipe"] <= 0.6
    assert summary["speedup"] > 0 and summary["speedup_vs_full_batch"] > 0
    assert summary["ray_vs_mpi"] is None
    assert set(summary["rows"]) == {"serial", "1 rank", "mpi 1f1b", "mpi gpipe"}
    assert summary["rows"]["1 rank"]["max_grad_diff"] <= 1e-12

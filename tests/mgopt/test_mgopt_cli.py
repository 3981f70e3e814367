"""``partime train mgopt`` and ``partime bench mgopt`` end to end (small depths)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys

import pytest

from partime.cli.main import main

ARGS = ["train", "mgopt", "--depth", "32", "--levels", "3", "--max-vcycles", "3", "--json"]
ARGS += ["--no-progress"]


def _summary(capsys) -> dict:
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def test_train_mgopt_json_holds_the_counts(capsys, tmp_path) -> None:
    out, plot = tmp_path / "run.json", tmp_path / "run.png"
    assert main([*ARGS, "--out", str(out), "--plot", str(plot)]) == 0
    summary = _summary(capsys)
    assert summary["v_cycles"] == 3 and summary["setup"] == "[(1),1,{2}]"
    assert summary["work_units"] == 3 * summary["work_per_cycle_eq10"] == 12.0
    assert 0 <= summary["val_accuracy"] <= 1 and summary["wall_s"] > 0
    saved = json.loads(out.read_text())
    assert len(saved["records"]) == 3 and saved["parameter_restriction"] == "average"
    assert [r["work_units"] for r in saved["records"]] == [4.0, 8.0, 12.0]
    assert plot.stat().st_size > 1000


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--setup", "[(1),1,2,{2}]"], "has 4 levels but --levels is 3"),
        (["--setup", "[(1),1,{2"], "must be a list in brackets"),
        (["--depth", "30"], "depth 30 is not divisible by 2\\^\\(levels-1\\) = 4"),
        (["--levels", "7", "--setup", "[1,1,1,1,1,1,{1}]"], "at most 6 levels for depth 32"),
        (["--momentum", "1.5"], "momentum must be in"),
    ],
)
def test_bad_arguments_exit_2_with_a_clear_message(capsys, extra, message) -> None:
    assert main([*ARGS, *extra]) == 2
    assert re.search(message, capsys.readouterr().err)


@pytest.mark.slow
def test_train_mgopt_under_mpiexec_equals_serial(capsys) -> None:
    mpiexec = shutil.which("mpiexec")
    if mpiexec is None:
        pytest.skip("mpiexec not on PATH")
    assert main(ARGS) == 0
    serial = _summary(capsys)
    command = ["timeout", "240", mpiexec, "-n", "2", sys.executable, "-m", "partime", *ARGS]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(command, capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 1  # only rank 0 reports
    parallel = json.loads(lines[0])
    assert parallel["ranks"] == 2
    assert abs(parallel["loss"] - serial["loss"]) <= 1e-12
    for key in ("v_cycles", "work_units", "val_accuracy"):
        assert parallel[key] == serial[key]


@pytest.mark.slow
def test_bench_quick_prints_table1(capsys) -> None:
    assert main(["bench", "mgopt", "--quick", "--no-minibatch", "--max-vcycles", "400"]) == 0
    out = capsys.readouterr().out
    assert "Table 1, circles, depth 64" in out and "[(1),1,2,{2}]" in out

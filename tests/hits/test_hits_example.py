"""``examples/hits_benchmark.py`` end to end on a tiny budget: the table, the JSON, the figure."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from partime.hits import load_hierarchy

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "hits_benchmark.py"


def test_full_budget_preset_uses_the_paper_widths(tmp_path):
    out, figure = tmp_path / "h.pt", tmp_path / "h.png"
    cmd = [sys.executable, str(EXAMPLE), "--system", "hyperbolic", "--budget", "full"]
    cmd += ["--stacked", "--epochs", "20", "--n-train", "32", "--n-val", "8"]
    cmd += ["--n-test", "4", "--steps", "1,4", "--out", str(out), "--plot", str(figure)]
    env = {**os.environ, "PARTIME_CACHE": str(tmp_path / "cache"), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(next(x for x in proc.stdout.splitlines() if x.startswith('{"system"')))
    assert result["steps"] == [1, 4] and len(result["single_mse"]) == 2
    lower, upper = result["selected"]
    assert 0 <= lower <= upper <= 1 and 0 < result["multiscale_mse"] < 1
    assert load_hierarchy(out).models[0].widths == (128, 128, 128)  # paper Table 2, hyperbolic
    assert figure.stat().st_size > 10_000

"""``partime bench integrators``: every contender at every batch, DOP853 matched to RK4."""

from __future__ import annotations

import json

import torch

from partime.cli.main import main


def test_bench_integrators_rows_and_matched_tolerance(capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("PARTIME_CACHE", str(tmp_path))
    threads = torch.get_num_threads()
    try:
        argv = ["bench", "integrators", "--steps", "400", "--batches", "1,16,40", "--json"]
        assert main([*argv, "--slow-steps", "50"]) == 0
    finally:
        torch.set_num_threads(threads)
    report = json.loads(capsys.readouterr().out)
    rows = {(r["batch"], r["contender"]): r for r in report["rows"]}
    small = {"partime default, 1st", "partime kernel", "partime eager", "numpy loop"}
    small |= {"python loop", "scipy DOP853"}
    for batch in (1, 16):
        assert small <= {c for b, c in rows if b == batch}
        dop853, kernel = rows[batch, "scipy DOP853"], rows[batch, "partime kernel"]
        # the loosest tolerance whose error is RK4's or less (1e-13 if none is)
        assert dop853["error"] <= kernel["error"] or dop853["tol"] == 1e-13
        assert 1e-13 <= dop853["tol"] <= 1e-4 and dop853["steps"] == 400
    assert (40, "python loop") not in rows and (40, "scipy DOP853") not in rows
    # an empty cache, 400 steps: eager costs less than a compile
    assert rows[1, "partime default, 1st"]["path"].startswith("eager")
    assert all(r["updates_per_s"] > 0 for r in report["rows"])
    assert report["compile"]["cold_s"] > report["compile"]["cached_s"] > 0

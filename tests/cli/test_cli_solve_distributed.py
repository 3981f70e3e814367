"""``partime solve`` across processes: ``mpiexec -n 2`` and ``--backend ray`` give the
vectorized answer; bad input and a failing rank end the whole job quickly."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time

import pytest

from partime.cli.main import main
from partime.pint.results import read_results

MPIEXEC = shutil.which("mpiexec")
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}
SOLVE = [sys.executable, "-m", "partime", "solve"]
LORENZ = "lorenz --t-end 0.64 --slices 8 --fine rk4:1e-3 --coarse rk4:0.02 --batch 3".split()
LORENZ += ["--no-progress", "--json"]
needs_mpi = pytest.mark.skipif(MPIEXEC is None, reason="mpiexec not found")

# A vector field that raises on MPI rank 1 only (PMI_RANK: set by mpich's and Intel's mpiexec).
FAULTY_FIELD = """
import os

from partime.dynamics import Lorenz

_LORENZ = Lorenz()


def lorenz_fails_on_rank1(t, x):
    if os.environ.get("PMI_RANK") == "1":
        raise RuntimeError("boom on rank 1")
    return _LORENZ(t, x)
"""


def launch(cmd: list[str], limit: int, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["timeout", str(limit), *cmd], env=ENV, capture_output=True, text=True, cwd=cwd
    )


def mpi(n: int, *args: str) -> list[str]:
    return [MPIEXEC, "-n", str(n), *SOLVE, *args]


@pytest.fixture(scope="module")
def vectorized(tmp_path_factory) -> tuple[dict, object]:
    """The in-process vectorized run: its JSON summary and its slice states."""
    out = tmp_path_factory.mktemp("vec") / "v.npz"
    assert main(["solve", *LORENZ, "--backend", "serial", "--out", str(out)]) == 0
    saved = read_results(out)
    return saved["summary"], saved["states"]


def check_same_answer(done: subprocess.CompletedProcess, out, vectorized) -> dict:
    assert done.returncode == 0, done.stderr[-2000:]
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    ref_summary, ref_states = vectorized
    assert summary["iterations"] == ref_summary["iterations"] and summary["converged"]
    assert abs(read_results(out)["states"] - ref_states).max() <= 1e-12
    return summary


@needs_mpi
def test_mpiexec_two_ranks_match_vectorized(tmp_path, vectorized):
    out = tmp_path / "mpi.npz"
    done = launch(mpi(2, *LORENZ, "--out", str(out)), 120)
    summary = check_same_answer(done, out, vectorized)
    assert summary["ranks"] == 2 and summary["executor"] == "mpi"
    assert len(done.stdout.strip().splitlines()) == 1  # only rank 0 prints


@needs_mpi
def test_mpiexec_with_a_hits_coarse_matches_vectorized(tmp_path):
    """Every rank loads the hierarchy file (a tanh flow map spanning one slice, as ``partime
    train coarse`` writes) and the distributed answer is the in-process one."""
    import torch

    from partime.hits import Hierarchy
    from partime.steppers import FlowMapMLP

    torch.manual_seed(0)
    coarse = tmp_path / "coarse.pt"
    model = FlowMapMLP(3, (16,), normalize=True, activation="tanh").double()
    Hierarchy([model], [160], 5e-4, "lorenz", selected=(0, 0)).save(coarse)
    args = [*LORENZ[:8], f"hits:{coarse}", *LORENZ[9:]]  # --coarse hits:FILE
    vec_out, mpi_out = tmp_path / "v.npz", tmp_path / "m.npz"
    assert main(["solve", *args, "--backend", "serial", "--out", str(vec_out)]) == 0
    reference = read_results(vec_out)
    done = launch(mpi(2, *args, "--out", str(mpi_out)), 120)
    summary = check_same_answer(done, mpi_out, (reference["summary"], reference["states"]))
    assert summary["ranks"] == 2


def test_ray_two_workers_match_vectorized(tmp_path, vectorized):
    pytest.importorskip("ray")
    out = tmp_path / "ray.npz"
    done = launch([*SOLVE, *LORENZ, "--backend", "ray", "--workers", "2", "--out", str(out)], 120)
    assert check_same_answer(done, out, vectorized)["executor"] == "ray"


@needs_mpi
def test_fewer_slices_than_ranks_fails_on_every_rank_before_communicating():
    start = time.monotonic()
    done = launch(mpi(3, *LORENZ[:3], "--slices", "2", *LORENZ[5:]), 60)
    assert done.returncode == 2, done.stderr[-2000:]
    assert done.stderr.count("partime solve: error: 2 time slices for 3 ranks") == 3
    assert time.monotonic() - start < 30


@needs_mpi
def test_exception_on_one_rank_ends_the_job_within_30_s(tmp_path):
    (tmp_path / "faulty_field.py").write_text(FAULTY_FIELD)
    system = ["faulty_field:lorenz_fails_on_rank1", "--dim", "3", "--x0", "1,1,1"]
    args = [*system, *LORENZ[1:9], "--no-progress"]
    start = time.monotonic()
    done = launch(mpi(2, *args), 60, cwd=tmp_path)  # -m puts cwd on sys.path
    assert done.returncode not in (0, 124), done.stderr[-2000:]
    assert time.monotonic() - start < 30
    assert "boom on rank 1" in done.stderr


@needs_mpi
def test_unusable_checkpoint_on_one_rank_fails_every_rank(tmp_path):
    ckpt = tmp_path / "ckpt"
    first = launch(mpi(2, *LORENZ, "--checkpoint", str(ckpt)), 120)
    assert first.returncode == 0, first.stderr[-2000:]
    (ckpt / "rank1.pt").write_bytes(b"torn")
    done = launch(mpi(2, *LORENZ, "--checkpoint", str(ckpt), "--resume"), 60)
    assert done.returncode == 2, done.stderr[-2000:]
    assert "rank1.pt is not a parareal checkpoint" in done.stderr
    assert done.stderr.count("partime solve: error:") == 2

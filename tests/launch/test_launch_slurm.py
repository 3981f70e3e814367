"""slurm/ templates on a real one-node SLURM cluster (fixture in conftest.py)."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SOLVE = (
    "--t-end 0.64 --slices 4 --fine rk4:0.001 --coarse rk4:0.01"
    " --compare-serial --serial-mode eager"
)

# A user vector field (`partime solve failing_lorenz:field --dim 3`) that breaks on task 1 only.
FAILING_FIELD = """\
import os
from partime.dynamics import Lorenz

_lorenz = Lorenz()

def field(t, x):
    if os.environ["PMI_RANK"] == "1":
        raise RuntimeError("injected failure on task 1")
    return _lorenz(t, x)
"""


def _summary(output: str) -> dict:
    """The one JSON summary line of a job's output."""
    lines = [line for line in output.splitlines() if line.startswith("{")]
    assert len(lines) == 1, f"expected one JSON line (rank 0 only), got:\n{output}"
    return json.loads(lines[0])


def _submit(cluster, argv: list[str], env: dict, output: Path) -> tuple[int, object]:
    """Submit from the repo root; return sbatch's exit code (the job's with --wait) and the Job."""
    proc = cluster.run(*argv, cwd=REPO, env=env, check=False, timeout=150)
    match = re.search(r"Submitted batch job (\d+)", proc.stdout)
    assert match, f"not submitted: {proc.stdout}\n{proc.stderr}"
    return proc.returncode, cluster.job(int(match.group(1)), output)


def test_solve_template_mpiexec(slurm_cluster, tmp_path):
    """sbatch slurm/solve.sbatch: 3 ranks (mpiexec in the allocation) solve like serial."""
    out = tmp_path / "job.out"
    code, job = _submit(
        slurm_cluster,
        ["sbatch", "--ntasks=3", f"--output={out}", "slurm/solve.sbatch"],
        {"PARTIME_SOLVE_ARGS": SOLVE},
        out,
    )
    assert (code, job.state, job.exit_code) == (0, "COMPLETED", 0), job.output
    summary = _summary(job.output)
    assert summary["ranks"] == 3 and summary["converged"]
    assert summary["iterations"] <= 4 and summary["residuals"][-1] <= 1e-10
    assert summary["max_abs_err_vs_serial"] < 1e-8


@pytest.mark.skipif(
    os.environ.get("PARTIME_TEST_SRUN_PMI2") != "1",
    reason="srun --mpi=pmi2 + MPICH wheel fails MPI_Init ~1 in 20 starts on Slurm 22.05 "
    "(set PARTIME_TEST_SRUN_PMI2=1 to run)",
)
def test_solve_template_srun_pmi2_via_submit(slurm_cluster, tmp_path):
    """slurm/submit.sh with PARTIME_LAUNCH=srun (srun --mpi=pmi2) gives the same."""
    out = tmp_path / "job.out"
    code, job = _submit(
        slurm_cluster,
        ["slurm/submit.sh", "solve", "--ntasks", "2", "--", f"--output={out}"],
        {"PARTIME_SOLVE_ARGS": SOLVE, "PARTIME_LAUNCH": "srun"},
        out,
    )
    assert (code, job.state, job.exit_code) == (0, "COMPLETED", 0), job.output
    summary = _summary(job.output)
    assert summary["ranks"] == 2 and summary["max_abs_err_vs_serial"] < 1e-8


def test_failure_on_one_task_fails_the_job(slurm_cluster, tmp_path):
    """An exception on task 1 ends the whole job: state FAILED and sbatch --wait non-zero."""
    (tmp_path / "failing_lorenz.py").write_text(FAILING_FIELD)
    out = tmp_path / "job.out"
    code, job = _submit(
        slurm_cluster,
        ["sbatch", "--wait", "--ntasks=2", "--time=2", f"--output={out}", "slurm/solve.sbatch"],
        {
            "PARTIME_SYSTEM": "failing_lorenz:field",
            "PARTIME_SOLVE_ARGS": SOLVE + " --dim 3",
            "PYTHONPATH": str(tmp_path),
        },
        out,
    )
    assert code != 0 and job.state == "FAILED" and job.exit_code != 0, job.output
    assert "injected failure on task 1" in job.output


def test_submit_rejects_bad_values_before_sbatch(tmp_path):
    """Zero tasks, a zero #SBATCH count or an unknown launcher fail in submit.sh with exit 2."""
    bad_template = tmp_path / "bad.sbatch"
    bad_template.write_text(
        (REPO / "slurm" / "solve.sbatch").read_text().replace("--ntasks=4", "--ntasks=0")
    )
    cases = {
        ("solve", "--ntasks", "0"): "--ntasks must be a positive integer, got '0'",
        (str(bad_template),): "'#SBATCH --ntasks' in",
        ("solve", "--ntasks", "2", "--nodes", "3"): "3 nodes is more than 2 tasks",
        ("ray", "--nodes", "x"): "--nodes must be a positive integer, got 'x'",
    }
    for args, message in cases.items():
        proc = subprocess.run(
            [str(REPO / "slurm" / "submit.sh"), *args], capture_output=True, text=True, timeout=30
        )
        assert proc.returncode == 2 and message in proc.stderr, (args, proc.stderr)
    proc = subprocess.run(
        [str(REPO / "slurm" / "submit.sh"), "solve"],
        capture_output=True,
        text=True,
        timeout=30,
        env={"PATH": "/usr/bin:/bin", "PARTIME_LAUNCH": "smp"},
    )
    assert proc.returncode == 2
    assert "PARTIME_LAUNCH must be 'srun' or 'mpiexec', got 'smp'" in proc.stderr


def test_gpu_template_runs_torch_ranks_on_cpu(slurm_cluster, tmp_path):
    """slurm/gpu.sbatch maps SLURM tasks to torch ranks (gloo here: no GPU; NCCL on GPU nodes)."""
    out = tmp_path / "job.out"
    argv = ["sbatch", "--ntasks-per-node=2", "--gpus-per-node=0", f"--output={out}"]
    code, job = _submit(
        slurm_cluster,
        [*argv, "slurm/gpu.sbatch"],
        {"PARTIME_GPU_ARGS": f"solve lorenz {SOLVE} --json --no-progress"},
        out,
    )
    assert (code, job.state, job.exit_code) == (0, "COMPLETED", 0), job.output
    summary = _summary(job.output)
    assert summary["ranks"] == 2 and summary["max_abs_err_vs_serial"] < 1e-8


@pytest.mark.slow
def test_ray_template_head_solve_teardown(slurm_cluster, tmp_path, pick_port):
    """slurm/ray.sbatch: head as an srun step, solve on Ray actors, the step torn down after."""
    out = tmp_path / "job.out"
    argv = ["sbatch", "--nodes=1", "--cpus-per-task=2", f"--output={out}"]
    code, job = _submit(
        slurm_cluster,
        [*argv, "slurm/ray.sbatch"],
        {"PARTIME_SOLVE_ARGS": SOLVE, "PARTIME_RAY_PORT": str(pick_port())},
        out,
    )
    assert (code, job.state, job.exit_code) == (0, "COMPLETED", 0), job.output
    summary = _summary(job.output)
    assert summary["executor"].startswith("ray") and summary["max_abs_err_vs_serial"] < 1e-8
    leftovers = subprocess.run(
        ["pgrep", "-f", f"/tmp/ray-{job.job_id}"], capture_output=True, text=True
    ).stdout
    assert leftovers == "", f"Ray processes of job {job.job_id} still running: {leftovers}"

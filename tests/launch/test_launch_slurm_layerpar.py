"""slurm/train-layerpar.sbatch on the one-node SLURM cluster (fixture in conftest.py)."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
TRAIN = (
    "--data digits --n-train 96 --n-val 32 --n-test 32 --units 1-1 --width 4 --epochs 1"
    " --batch-size 32 --micro-batches 2"
)
# Task 1's pipeline stage raises in its first forward (the others wait for it): the job must
# end FAILED. A sitecustomize on PYTHONPATH patches it into task 1 only.
FAIL_ON_TASK_1 = """\
import os
if os.environ.get("PMI_RANK") == "1":
    from partime.layerpar import pipeline

    def forward(*args, **kwargs):
        raise RuntimeError("injected failure on task 1")

    pipeline.PipelineStage.forward = forward
"""


def _submit(cluster, env: dict, out: Path, *sbatch: str):
    argv = ["sbatch", *sbatch, f"--output={out}", "slurm/train-layerpar.sbatch"]
    proc = cluster.run(*argv, cwd=REPO, env=env, check=False, timeout=150)
    match = re.search(r"Submitted batch job (\d+)", proc.stdout)
    assert match, f"not submitted: {proc.stdout}\n{proc.stderr}"
    return proc.returncode, cluster.job(int(match.group(1)), out, timeout=240)


@pytest.mark.slow  # a 2-rank training job
def test_train_layerpar_template_completes(slurm_cluster, tmp_path):
    out = tmp_path / "job.out"
    args = f"{TRAIN} --out {tmp_path / 'cnet.pt'}"
    code, job = _submit(slurm_cluster, {"PARTIME_TRAIN_ARGS": args}, out, "--ntasks=2")
    assert (code, job.state, job.exit_code) == (0, "COMPLETED", 0), job.output
    lines = [line for line in job.output.splitlines() if line.startswith("{")]
    summary = json.loads(lines[-1])
    assert summary["ranks"] == 2 and summary["layer_parallel"]["layer_parallel"]
    assert (tmp_path / "cnet.pt").is_file()


@pytest.mark.slow
def test_a_failing_task_fails_the_job(slurm_cluster, tmp_path):
    (tmp_path / "sitecustomize.py").write_text(FAIL_ON_TASK_1)
    out = tmp_path / "job.out"
    env = {"PARTIME_TRAIN_ARGS": f"{TRAIN} --out {tmp_path / 'x.pt'}", "PYTHONPATH": str(tmp_path)}
    code, job = _submit(slurm_cluster, env, out, "--ntasks=2", "--time=3")
    assert job.state == "FAILED" and job.exit_code != 0, job.output
    assert "injected failure on task 1" in job.output


def test_submit_checks_the_family_before_sbatch():
    proc = subprocess.run(
        [str(REPO / "slurm" / "submit.sh"), "train-layerpar", "--ntasks", "2"],
        capture_output=True, text=True, timeout=30, env={"PATH": "/usr/bin:/bin",
        "PARTIME_FAMILY": "vgg"},
    )  # fmt: skip
    assert proc.returncode == 2
    assert "PARTIME_FAMILY must be cnet, lmresnet or resnet, got 'vgg'" in proc.stderr

"""``partime train cnet|lmresnet|resnet`` end to end: a model file that rebuilds itself and
reproduces the reported test accuracy, JSON summary, clear errors, two MPI ranks."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys

import pytest
import torch

from partime.cli.main import main
from partime.comm import SerialComm
from partime.data import DataConfig, load_classification
from partime.train import evaluate, excluded_from_decay
from partime.train.model_file import load_model

SMALL = ["--data", "digits", "--n-train", "200", "--n-val", "60", "--n-test", "80"]
SMALL += ["--epochs", "1", "--batch-size", "50", "--width", "4", "--no-progress"]
MPIEXEC = shutil.which("mpiexec")


def train(capsys, family, *options, out):
    code = main(["train", family, *SMALL, *options, "--out", str(out), "--json"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return json.loads(captured.out.strip().splitlines()[-1])


def check_model_file(out, summary):
    model, metadata = load_model(out)
    assert metadata["family"] == summary["family"] and metadata["summary"] == summary
    data = load_classification(DataConfig(**metadata["data"]))
    assert data.mean.tolist() == pytest.approx(metadata["mean"])
    metrics = evaluate(model, *data.test, torch.nn.functional.cross_entropy, SerialComm())
    assert metrics.accuracy == summary["test_accuracy"]
    return model


def test_cnet_end_to_end(tmp_path, capsys):
    out = tmp_path / "cnet.pt"
    summary = train(capsys, "cnet", "--scheme", "rk4", "--units", "1-1", "--n-steps", "2",
                    "--basis", "linear", "--epochs", "2", "--refine-at", "1", out=out)  # fmt: skip
    assert summary["n_train"] == 200 and summary["input_shape"] == [1, 8, 8]
    assert [r["refined"] for r in summary["epochs"]] == [False, True]
    assert 0.0 <= summary["test_accuracy"] <= 1.0 and summary["ranks"] == 1
    model = check_model_file(out, summary)
    assert model.config.units == ("2-2" if summary["best_epoch"] == 1 else "1-1")
    assert model.config.scheme == "rk4" and model.config.basis == "linear"


def test_resnet_end_to_end(tmp_path, capsys):
    """``partime train resnet --data digits --epochs 1`` writes a model file and JSON."""
    out = tmp_path / "resnet.pt"
    summary = train(capsys, "resnet", "--blocks", "2-2", out=out)
    assert summary["family"] == "resnet" and len(summary["epochs"]) == 1
    assert summary["config"]["weight_decay"] == 1e-4 and "ks" not in summary
    model = check_model_file(out, summary)
    assert type(model).__name__ == "PreActResNet" and model.config.blocks == "2-2"


def test_lmresnet_end_to_end_reports_k(tmp_path, capsys):
    out = tmp_path / "lm.pt"
    summary = train(capsys, "lmresnet", "--blocks", "3-3", "--final-survival", "0.8", out=out)
    model = check_model_file(out, summary)
    assert summary["ks"] == model.ks and len(model.ks) == 4  # two LM blocks per stage
    assert all(-1.0 < k < 1.0 for k in summary["ks"])
    no_decay = excluded_from_decay(model)
    assert len(no_decay) == 4 and all(name.endswith(".k") for name in no_decay)
    code = main(["train", "lmresnet", *SMALL, "--refine-at", "1", "--epochs", "2",
                 "--out", str(tmp_path / "no.pt")])  # fmt: skip
    assert code == 2 and "a lmresnet cannot be refined" in capsys.readouterr().err


@pytest.mark.parametrize(
    "options,message",
    [
        (["--data", "imagenet"], "unknown data set 'imagenet'"),
        (["--data", "mnist:/no/such/dir"], "/no/such/dir does not exist"),
        (["--units", "2-x"], "units"),
        (["--scheme", "rk99"], "rk99"),
        (["--basis", "spline"], "spline"),
        (["--refine-at", "3"], r"refine_at must be increasing distinct epochs in \[1, epochs=1\)"),
        (["--lr", "-1"], "lr must be"),
        (["--threads", "0"], "num_threads"),
    ],
)
def test_bad_input_is_one_clear_line(tmp_path, capsys, options, message):
    code = main(["train", "cnet", *SMALL, *options, "--out", str(tmp_path / "m.pt")])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("partime train: error:")
    assert re.search(message, err), err
    assert not (tmp_path / "m.pt").exists()


@pytest.mark.slow
@pytest.mark.skipif(MPIEXEC is None, reason="mpiexec not found")
def test_two_mpi_ranks_one_summary(tmp_path):
    out = tmp_path / "mpi.pt"
    command = [MPIEXEC, "-n", "2", sys.executable, "-m", "partime", "train", "cnet", *SMALL]
    command += ["--out", str(out), "--json"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(["timeout", "180", *command], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.strip().splitlines()
    assert len(lines) == 1  # only rank 0 prints
    summary = json.loads(lines[0])
    assert summary["ranks"] == 2
    check_model_file(out, summary)

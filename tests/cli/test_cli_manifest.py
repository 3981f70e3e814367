"""``partime manifest``: accuracy per scheme × steps of a model file, and clear errors."""

from __future__ import annotations

import dataclasses
import json
import re

import pytest
import torch

from partime.cli.main import main
from partime.comm import SerialComm
from partime.data import DataConfig, load_classification
from partime.nets import ContinuousNet, ContinuousNetConfig, PreActResNet, ResNetConfig
from partime.train import evaluate
from partime.train.model_file import save_model

DATA = DataConfig("circles", n_train=200, n_val=0, n_test=300)


def saved(path, model, data):
    metadata = {"family": "cnet", "data": dataclasses.asdict(DATA)}
    metadata |= {"mean": data.mean.tolist(), "std": data.std.tolist()}
    save_model(path, model, metadata)
    return path


@pytest.fixture
def model_file(tmp_path):
    data = load_classification(DATA, dtype=torch.float64)
    torch.manual_seed(0)
    config = ContinuousNetConfig((2,), 2, "2-1", width=4, scheme="rk4", n_steps=(2, 3))
    model = ContinuousNet(config).double().eval()
    with torch.no_grad():  # running statistics of the data: a net that is not constant
        model.train()(data.train[0])
    path = saved(tmp_path / "cnet.pt", model.eval(), data)
    return path, model, data


def test_manifest_rows_and_the_training_discretization(model_file, tmp_path, capsys):
    path, model, data = model_file
    plot = tmp_path / "sweep.png"
    argv = ["manifest", str(path), "--schemes", "euler,rk4", "--steps", "1,3", "--json"]
    assert main([*argv, "--plot", str(plot), "--no-progress"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["trained"] == {"scheme": "rk4", "n_steps": [2, 3]} and result["n_test"] == 300
    assert [(r["scheme"], r["n_steps"]) for r in result["rows"]] == [
        ("euler", 1),
        ("euler", 3),
        ("rk4", 1),
        ("rk4", 3),
    ]
    loss = torch.nn.functional.cross_entropy
    expected = evaluate(model.manifest("rk4", 3), *data.test, loss, SerialComm()).accuracy
    assert result["rows"][3]["accuracy"] == expected
    assert plot.stat().st_size > 0
    assert main(["manifest", str(path), "--steps", "2", "--schemes", "rk38", "--no-progress"]) == 0
    table = capsys.readouterr().out.splitlines()
    assert "2-1 ContinuousNet trained with rk4, 2-3 steps" in table[0]
    assert table[1].split() == ["steps", "2"] and table[2].startswith("rk38")


@pytest.mark.parametrize(
    "options, message",
    [
        (["--schemes", "rk5"], "unknown scheme 'rk5'"),
        (["--steps", "0"], "steps=0"),
        (["--data", "digits"], r"shape \(1, 8, 8\); the model expects \(2,\)"),
        (["--data", "imagenet"], "unknown data set 'imagenet'"),
    ],
)
def test_bad_input_is_one_clear_line(model_file, capsys, options, message):
    path, _, _ = model_file
    assert main(["manifest", str(path), *options, "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("partime manifest: error:")
    assert re.search(message, err), err


def test_only_a_continuous_net_can_be_manifested(tmp_path, capsys):
    data = load_classification(DATA)
    resnet = PreActResNet(ResNetConfig((2,), 2, "2", width=4))
    path = saved(tmp_path / "resnet.pt", resnet, data)
    assert main(["manifest", str(path)]) == 2
    assert "holds a PreActResNet; only a ContinuousNet" in capsys.readouterr().err
    assert main(["manifest", str(tmp_path / "missing.pt")]) == 2
    assert "does not exist" in capsys.readouterr().err

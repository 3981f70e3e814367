"""Manifestation sweep: every scheme × steps row, the training discretization reproduced."""

import pytest
import torch

from partime.nets import ContinuousNet, ContinuousNetConfig
from partime.nets.manifest import accuracy_and_seconds, format_sweep, manifestation_sweep


def test_sweep_rows_and_the_training_discretization():
    torch.manual_seed(0)
    net = ContinuousNet(ContinuousNetConfig((1, 8, 8), 3, "2-2", width=4, scheme="rk4")).double()
    x = torch.randn(40, 1, 8, 8, dtype=torch.float64)
    net.eval()
    with torch.no_grad():
        labels = net(x).argmax(-1)  # the net's own answers: accuracy 1 at its discretization
    labels[:5] = (labels[:5] + 1) % 3
    rows = manifestation_sweep(net, x, labels, ["euler", "rk4"], [1, 2, 4], batch_size=16)
    assert [(r["scheme"], r["n_steps"]) for r in rows] == [
        (s, n) for s in ("euler", "rk4") for n in (1, 2, 4)
    ]
    trained = next(r for r in rows if r["scheme"] == "rk4" and r["n_steps"] == 2)
    assert trained["accuracy"] == pytest.approx(35 / 40)
    assert all(0 <= r["accuracy"] <= 1 and r["seconds"] > 0 for r in rows)
    assert accuracy_and_seconds(net, x, labels)[0] == trained["accuracy"]
    table = format_sweep(rows)
    assert table.splitlines()[0].split() == ["steps", "1", "2", "4"]
    assert "87.50%" in table.splitlines()[2]


def test_sweep_bad_input_names_the_value():
    net = ContinuousNet(ContinuousNetConfig((3,), 2, "1", width=2))
    x, y = torch.zeros(4, 3), torch.zeros(4, dtype=torch.long)
    with pytest.raises(ValueError, match="'rk5'"):
        manifestation_sweep(net, x, y, ["rk5"], [1])
    with pytest.raises(ValueError, match="steps=0"):
        manifestation_sweep(net, x, y, ["euler"], [0])
    with pytest.raises(ValueError, match="no manifest"):
        manifestation_sweep(torch.nn.Linear(3, 2), x, y, ["euler"], [1])

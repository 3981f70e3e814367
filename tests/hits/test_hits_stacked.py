"""Stacked training (all models of a share in batched matmuls) equals one-by-one training."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from partime.hits import HierarchyConfig, train_hierarchy
from partime.hits.config import init_model
from partime.hits.stacked import StackedFlowMaps, train_stacked
from partime.hits.training import train_one
from partime.steppers.flow_training import FlowMapTrainConfig, training_windows
from partime.steppers.neural import FlowMapMLP

DT = 0.01
TRAIN = FlowMapTrainConfig(epochs=120, batch_size=16, lr=3e-3, seed=3, val_every=40)
BASE = HierarchyConfig((1, 2, 4), (12, 12), TRAIN, dtype="float64")


@pytest.fixture(scope="module")
def data() -> tuple[torch.Tensor, torch.Tensor]:
    """Hyperbolic-system trajectories, float64: 40 for training, 12 for validation."""
    from partime.data import make_dataset

    full = make_dataset("hyperbolic", "train", n_traj=52, n_points=61).double()
    return full[:40], full[40:]


def _max_diff(a, b) -> float:
    return max(
        float((p - q).abs().max())
        for ma, mb in zip(a.models, b.models, strict=True)
        for p, q in zip(ma.state_dict().values(), mb.state_dict().values(), strict=True)
    )


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"normalize": True, "all_windows": True, "lr_stages": (1.0, 0.1)},
        {"activation": "tanh"},
    ],
    ids=["paper", "scaled-all-windows-two-stages", "tanh"],
)
def test_stacked_equals_one_by_one(data, options):
    train, val = data
    config = dataclasses.replace(BASE, **options)
    serial = train_hierarchy(train, DT, config, val_data=val)
    stacked = train_hierarchy(train, DT, dataclasses.replace(config, stacked=True), val_data=val)
    assert _max_diff(serial, stacked) < 1e-9
    untrained = init_model(0, 2, config)
    moved = (serial.models[0].net[0].weight - untrained.net[0].weight).detach()
    assert float(moved.abs().max()) > 1e-3


def test_early_stopped_models_are_frozen_and_histories_match(data):
    """With a loss_tol some models reach, each stops at the same epoch as alone, weights kept."""
    train, _ = data
    cfg = dataclasses.replace(TRAIN, loss_tol=2e-4, epochs=200)
    config = dataclasses.replace(BASE, train=cfg)
    alone = [train_one(i, train, None, config) for i in range(3)]
    models = [init_model(i, 2, config) for i in range(3)]
    windows = [training_windows(train, s, cfg.n_forward) for s in config.steps]
    together, histories = train_stacked(models, windows, cfg, [cfg.seed + i for i in range(3)])
    lengths = [len(h) for _, h in alone]
    assert min(lengths) < cfg.epochs  # at least one model stopped early ...
    assert [len(h) for h in histories] == lengths  # ... at the same epoch as when trained alone
    for (model, history), trained, stacked_history in zip(alone, together, histories, strict=True):
        assert stacked_history == pytest.approx(history, rel=1e-9, abs=1e-15)
        for p, q in zip(model.parameters(), trained.parameters(), strict=True):
            assert torch.allclose(p, q, rtol=0, atol=1e-10)


def test_interrupted_stacked_training_resumes(data, tmp_path):
    train, val = data
    config = dataclasses.replace(BASE, stacked=True)
    straight = train_hierarchy(train, DT, config, val_data=val)
    half = dataclasses.replace(config, train=dataclasses.replace(TRAIN, epochs=60))
    train_hierarchy(train, DT, half, val_data=val, checkpoint_dir=tmp_path)  # "interrupted"
    assert [p.name for p in tmp_path.glob("stacked_*.pt")] == ["stacked_models00-01-02_lr0.pt"]
    resumed = train_hierarchy(train, DT, config, val_data=val, checkpoint_dir=tmp_path)
    assert _max_diff(straight, resumed) == 0.0
    other = dataclasses.replace(config, train=dataclasses.replace(TRAIN, lr=1e-2))
    with pytest.raises(ValueError, match="another run"):
        train_hierarchy(train, DT, other, val_data=val, checkpoint_dir=tmp_path)
    tanh = dataclasses.replace(config, activation="tanh")  # same weight shapes
    with pytest.raises(ValueError, match="another run.*activation='tanh'"):
        train_hierarchy(train, DT, tanh, val_data=val, checkpoint_dir=tmp_path)


def test_stacked_module_round_trip_and_bad_inputs():
    torch.manual_seed(0)
    models = [FlowMapMLP(3, (8, 8), normalize=True) for _ in range(2)]
    x = torch.randn(2, 5, 3)
    stack = StackedFlowMaps(models)
    expected = torch.stack([m(x[i]) for i, m in enumerate(models)])
    assert torch.allclose(stack(x), expected, atol=1e-6)
    back = stack.to_models()
    assert all(torch.equal(m(x[0]), b(x[0])) for m, b in zip(models, back, strict=True))
    with pytest.raises(ValueError, match="one architecture"):
        StackedFlowMaps([FlowMapMLP(3, (8, 8)), FlowMapMLP(3, (8, 4))])
    with pytest.raises(ValueError, match="at least one"):
        StackedFlowMaps([])
    with pytest.raises(ValueError, match="dtype"):
        HierarchyConfig(dtype="float16")
    with pytest.raises(ValueError, match="unknown activation 'elu'"):
        HierarchyConfig(activation="elu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error without CUDA")
def test_cuda_device_without_cuda_is_a_clear_error():
    with pytest.raises(ValueError, match="CUDA is not available"):
        HierarchyConfig(device="cuda")

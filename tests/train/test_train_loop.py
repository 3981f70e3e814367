"""The training loop: config validation, step decay, weight-decay exclusion, best-on-validation,
refinement (function unchanged, optimizer rebuilt), resume bitwise equal to an uninterrupted run."""

from __future__ import annotations

from dataclasses import fields, replace

import pytest
import torch
from depth_mlp import DepthMLP, blobs
from torch import nn
from torch.nn.functional import cross_entropy

from partime.comm import SerialComm
from partime.nets.continuous import ContinuousNet, ContinuousNetConfig
from partime.train import (
    DataParallelStep,
    TrainConfig,
    build_optimizer,
    evaluate,
    excluded_from_decay,
    fit,
)


def cfg(**options) -> TrainConfig:
    return TrainConfig(**{"dtype": "float64", **options})


def model_and_data(seed=0, **options):
    torch.manual_seed(seed)
    model = DepthMLP(4, 6, 3, **options).double()
    return model, blobs(53, 1), blobs(31, 2), blobs(29, 3)


@pytest.mark.parametrize(
    "bad",
    [
        {"epochs": 0}, {"batch_size": 0}, {"optimizer": "lbfgs"}, {"lr": 0.0}, {"lr": float("nan")},
        {"momentum": 1.5}, {"weight_decay": -1.0}, {"lr_decay_factor": 0.0},
        {"lr_decay_epochs": (5, 3)}, {"lr_decay_epochs": (10,)}, {"refine_at": (0,)},
        {"refine_at": [2]}, {"dtype": "float16"}, {"device": "tpu"}, {"resume": True},
        {"exclude_from_decay": ("",)}, {"seed": -1},
    ],
)  # fmt: skip
def test_config_rejects_bad_values_naming_them(bad):
    name = next(iter(bad))
    with pytest.raises(ValueError, match=name if name != "resume" else "checkpoint"):
        TrainConfig(epochs=bad.get("epochs", 10), **{k: v for k, v in bad.items() if k != "epochs"})


def test_every_field_has_help():
    assert all(f.metadata.get("help") for f in fields(TrainConfig))


class ScriptedStep:
    """A TrainStep that puts given gradients in .grad (no autograd) and counts its calls."""

    def __init__(self, grads):
        self.grads, self.calls = grads, 0

    def __call__(self, model, inputs, targets, loss_fn):
        for name, p in model.named_parameters():
            p.grad = self.grads(name, p, self.calls)
        self.calls += 1
        return 1.0


def test_step_decay_follows_the_epochs():
    model, train, val, _ = model_and_data()
    config = cfg(
        epochs=4, batch_size=20, lr=1.0, momentum=0.0, weight_decay=0.0,
        lr_decay_epochs=(1, 3), lr_decay_factor=0.5,
    )  # fmt: skip
    start = model.lift.bias.detach().clone()
    step = ScriptedStep(lambda name, p, call: torch.ones_like(p))
    result = fit(model, train, val, config=config, step=step, progress=False)
    lrs = [record["lr"] for record in result.summary["epochs"]]
    assert lrs == [1.0, 0.5, 0.5, 0.25] and step.calls == 4 * 3  # 53 samples, batches of 20
    assert torch.allclose(result.model.lift.bias, start - 3 * sum(lrs), atol=1e-12)


def test_weight_decay_skips_declared_and_matched_parameters():
    model, train, _, _ = model_and_data()
    assert excluded_from_decay(model, ("head.*",)) == {"k", "head.weight", "head.bias"}
    config = cfg(epochs=1, batch_size=53, lr=1.0, momentum=0.0, weight_decay=0.1)
    config = replace(config, exclude_from_decay=("head.*",))
    groups = build_optimizer(model, config, 1.0).param_groups
    assert [g["weight_decay"] for g in groups] == [0.1, 0.0]
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    zero = ScriptedStep(lambda name, p, call: torch.zeros_like(p))
    after = dict(
        fit(model, train, config=config, step=zero, progress=False).model.named_parameters()
    )
    for name, value in before.items():
        factor = 1.0 if name in ("k", "head.weight", "head.bias") else 0.9
        assert torch.allclose(after[name], factor * value, atol=1e-15, rtol=0), name
    with pytest.raises(ValueError, match="unknown parameters"):
        excluded_from_decay(
            type("Odd", (DepthMLP,), {"no_weight_decay": lambda s: ("q",)})(4, 6, 3)
        )


class Linear2(nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(2, 2, bias=False, dtype=torch.float64)

    def forward(self, x):
        return self.linear(x)


@pytest.mark.parametrize("last_scale,best", [(0.5, 1), (2.0, 3)])
def test_best_on_validation_is_the_best_epochs_weights(last_scale, best):
    """Epoch weights set by the step: 3/4 right, all right, all wrong, all right again with
    less (0.5) or more (2) confidence. Accuracy first, then the lower loss."""
    x = torch.tensor([[1.0, 0.2], [0.3, 1.0], [2.0, -1.0], [-1.0, 2.0]], dtype=torch.float64)
    y = torch.tensor([0, 1, 0, 1])
    eye = torch.eye(2, dtype=torch.float64)
    targets = [torch.tensor([[1.0, 0.0], [0.0, 0.0]]).double(), eye, eye.flip(0), last_scale * eye]
    config = cfg(epochs=4, batch_size=4, lr=0.5, momentum=0.0, weight_decay=0.0)
    step = ScriptedStep(lambda name, p, call: (p.detach() - targets[call]) / config.lr)
    result = fit(Linear2(), (x, y), (x, y), (x, y), config=config, step=step, progress=False)
    summary = result.summary
    assert [r["val_accuracy"] for r in summary["epochs"]] == [0.75, 1.0, 0.0, 1.0]
    assert summary["best_epoch"] == best and summary["best_val_accuracy"] == 1.0
    assert torch.allclose(result.best_model.linear.weight, targets[best], atol=1e-14)
    assert torch.allclose(result.model.linear.weight, targets[3], atol=1e-14)
    assert summary["test_accuracy"] == 1.0
    assert summary["test_loss"] == pytest.approx(summary["epochs"][best]["val_loss"], abs=1e-14)


def test_evaluate_matches_a_direct_computation():
    model, _, val, _ = model_and_data()
    model.eval()
    with torch.no_grad():
        logits = model(val[0])
    direct_loss = float(cross_entropy(logits, val[1]))
    direct_acc = float((logits.argmax(1) == val[1]).double().mean())
    for chunk in (1, 7, 1000):
        metrics = evaluate(model, *val, cross_entropy, SerialComm(), chunk)
        assert metrics.loss == pytest.approx(direct_loss, abs=1e-14)
        assert metrics.accuracy == direct_acc


class Watch:
    """The data-parallel step; records (parameter count, validation loss) at the first step of
    every model it sees (a refinement hands it a new one)."""

    def __init__(self, val):
        self.val, self.seen, self.last = val, [], None
        self.inner = DataParallelStep(SerialComm())

    def __call__(self, model, inputs, targets, loss_fn):
        if model is not self.last:
            size = sum(p.numel() for p in model.parameters())
            self.seen.append((size, evaluate(model, *self.val, loss_fn, SerialComm()).loss))
            self.last = model
        return self.inner(model, inputs, targets, loss_fn)


def continuous_net(basis: str) -> ContinuousNet:
    config = ContinuousNetConfig(input_shape=(4,), n_classes=3, units="1", width=4,
                                 scheme="midpoint", basis=basis, n_steps=4)  # fmt: skip
    return ContinuousNet(config)


@pytest.mark.parametrize("make", ["depth_mlp", "pc", "fem"])
def test_refinement_keeps_the_loss_and_rebuilds_the_optimizer(make):
    """At each refinement epoch the loop swaps in ``refine()`` (more parameters) whose
    validation loss equals the loss of the model at the end of the epoch before."""
    model, train, val, _ = model_and_data(n_pieces=1)
    if make != "depth_mlp":
        model = continuous_net(make)
    watch = Watch(val)
    config = cfg(epochs=3, batch_size=30, lr=0.1, refine_at=(1, 2))
    result = fit(model, train, val, config=config, step=watch, progress=False)
    records = result.summary["epochs"]
    assert [r["refined"] for r in records] == [False, True, True]
    sizes = [size for size, _ in watch.seen]
    assert len(sizes) == 3 and sizes[0] < sizes[1] < sizes[2]
    assert sizes[2] == sum(p.numel() for p in result.model.parameters())
    for epoch in (1, 2):
        loss_after_refining = watch.seen[epoch][1]
        assert loss_after_refining == pytest.approx(records[epoch - 1]["val_loss"], abs=1e-12)
    with pytest.raises(ValueError, match="has no refine"):
        fit(Linear2(), blobs(8, 0)[:1] + (torch.zeros(8, dtype=torch.long),), config=config)


def test_resume_is_bitwise_the_uninterrupted_run(tmp_path):
    """Dropout, per-forward piece drops, momentum, weight decay, step decay and two refinements
    (one before, one after the interruption): the RNG, optimizer and refinement all resume."""
    options = dict(dropout=0.2, drop_piece=0.3)
    config = cfg(
        epochs=5, batch_size=16, lr=0.2, lr_decay_epochs=(2,), refine_at=(1, 4),
        checkpoint=str(tmp_path / "whole"),
    )  # fmt: skip
    model, train, val, test = model_and_data(**options)
    whole = fit(model, train, val, test, config, progress=False)

    def stop_after_epoch_2(record):
        if record["epoch"] == 2:
            raise KeyboardInterrupt

    parts = replace(config, checkpoint=str(tmp_path / "parts"))
    model, *_ = model_and_data(**options)
    with pytest.raises(KeyboardInterrupt):
        fit(model, train, val, test, parts, progress=False, callback=stop_after_epoch_2)
    resumed_config = replace(parts, resume=True)
    model, *_ = model_and_data(seed=99, **options)  # the checkpoint overrides a different init
    resumed = fit(model, train, val, test, resumed_config, progress=False)
    for got, want in ((resumed.model, whole.model), (resumed.best_model, whole.best_model)):
        assert got.n_pieces == want.n_pieces
        for (name, a), b in zip(got.state_dict().items(), want.state_dict().values(), strict=True):
            assert torch.equal(a, b), name
    strip = lambda s: [{k: v for k, v in r.items() if k != "wall_s"} for r in s["epochs"]]  # noqa: E731
    assert strip(resumed.summary) == strip(whole.summary) and len(strip(whole.summary)) == 5
    assert resumed.summary["test_loss"] == whole.summary["test_loss"]
    changed = replace(resumed_config, lr=0.3)
    with pytest.raises(ValueError, match=r"other options \(lr: \[0.2\] there, \[0.3\] now\)"):
        fit(model_and_data(**options)[0], train, val, config=changed, progress=False)


def test_bad_data_and_diverging_loss():
    model, train, val, _ = model_and_data()
    with pytest.raises(ValueError, match="val must be a non-empty"):
        fit(model, train, (val[0], val[1][:-1]), progress=False)
    with pytest.raises(FloatingPointError, match="training loss is nan in epoch 0"):
        fit(model, (train[0] * float("nan"), train[1]), progress=False)

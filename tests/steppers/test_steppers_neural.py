"""Neural flow-map stepper: architecture, Propagator contract, training, save/load, resume."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.integrate import solve_ivp

from partime.steppers.flow_training import multi_step_loss, train_flow_map, training_windows
from partime.steppers.neural import FlowMapMLP, NeuralStepper

DT = 0.01


def _hyperbolic(t, z):
    x, y = z
    return [-0.05 * x, -(y - x**2)]


@pytest.fixture(scope="module")
def data() -> torch.Tensor:
    """64 hyperbolic-system trajectories of 41 points (dt = 0.01), float32."""
    rng = np.random.default_rng(0)
    t = np.arange(41) * DT
    trajs = [
        solve_ivp(_hyperbolic, (0, t[-1]), rng.uniform(-1, 1, 2), t_eval=t, rtol=1e-10).y.T
        for _ in range(64)
    ]
    return torch.tensor(np.stack(trajs), dtype=torch.float32)


def _model(seed: int = 0) -> FlowMapMLP:
    torch.manual_seed(seed)
    return FlowMapMLP(2, (32, 32))


def test_architecture_is_residual_relu_mlp():
    model = _model()
    kinds = [type(m).__name__ for m in model.net]
    assert kinds == ["Linear", "ReLU", "Linear", "ReLU", "Linear"]
    x = torch.randn(5, 2)
    assert torch.allclose(model(x), x + model.net(x))


def test_bad_architecture_rejected():
    with pytest.raises(ValueError, match="dim"):
        FlowMapMLP(0)
    with pytest.raises(ValueError, match="widths"):
        FlowMapMLP(2, (16, 0))
    with pytest.raises(ValueError, match="unknown activation 'sigmoid'; known: relu, tanh"):
        FlowMapMLP(2, activation="sigmoid")


def test_tanh_activation_saved_and_loaded(tmp_path):
    torch.manual_seed(0)
    model = FlowMapMLP(2, (16, 16), activation="tanh")
    assert [type(m).__name__ for m in model.net] == ["Linear", "Tanh", "Linear", "Tanh", "Linear"]
    path = tmp_path / "tanh.pt"
    NeuralStepper(model, 0.04).save(path)
    loaded = NeuralStepper.load(path)
    assert loaded.model.activation == "tanh"
    x = torch.randn(5, 2)
    assert torch.equal(loaded.model(x), model(x))


def test_windows_take_frame_zero_and_multiples_of_stride(data):
    win = training_windows(data, 3, 5)
    assert win.shape == (64, 6, 2)
    assert torch.equal(win[:, 2], data[:, 6])
    with pytest.raises(ValueError, match="too short"):
        training_windows(data, 9, 5)  # needs 46 points, has 41


def test_training_lowers_loss_tenfold(data):
    model = _model()
    hist = train_flow_map(model, data, 4, epochs=300, batch_size=32, lr=3e-3)
    assert hist[-1] < hist[0] / 10
    win = training_windows(data, 4, 5)
    assert multi_step_loss(model, win).item() < hist[0] / 10


def test_training_stops_at_loss_tol(data):
    hist = train_flow_map(_model(), data, 1, epochs=500, loss_tol=1.0)
    assert len(hist) == 1 and hist[0] <= 1.0


def test_stepper_applies_model_n_times_and_casts(data):
    model = _model()
    stepper = NeuralStepper(model, 0.04, system="hyperbolic", dt=DT)
    x = data[:4, 0].double()
    y = stepper(x, 0.0, 0.12)
    assert y.dtype == torch.float64
    expected = model(model(model(x.float())))
    assert torch.allclose(y, expected.double())
    # per-row times with a common duration (vectorized parareal)
    t0 = torch.tensor([0.0, 0.12, 0.24, 0.36], dtype=torch.float64)
    assert torch.allclose(stepper(x, t0, t0 + 0.12), y)
    assert stepper.trajectory(x, 0.0, 0.12).shape == (4, 4, 2)
    with pytest.raises(ValueError, match="whole number of steps"):
        stepper(x, 0.0, 0.05)


def test_save_load_roundtrip_and_bad_files(tmp_path, data):
    stepper = NeuralStepper(_model(), 0.04, system="hyperbolic", dt=DT)
    path = tmp_path / "m.pt"
    stepper.save(path)
    loaded = NeuralStepper.load(path, dim=2)
    assert (loaded.step, loaded.dt, loaded.system) == (0.04, DT, "hyperbolic")
    x = data[:3, 0]
    assert torch.equal(loaded(x, 0.0, 0.08), stepper(x, 0.0, 0.08))
    with pytest.raises(ValueError, match="dimension mismatch"):
        NeuralStepper.load(path, dim=3)
    (tmp_path / "junk.pt").write_text("not a model")
    with pytest.raises(ValueError, match="not a partime neural stepper file"):
        NeuralStepper.load(tmp_path / "junk.pt")
    torch.save({"format": "something else"}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="not a partime neural stepper file"):
        NeuralStepper.load(tmp_path / "other.pt")
    blob = torch.load(path, weights_only=True)
    blob["model"]["widths"] = [16, 16]
    torch.save(blob, tmp_path / "mismatch.pt")
    with pytest.raises(ValueError, match="does not match its architecture"):
        NeuralStepper.load(tmp_path / "mismatch.pt")
    with pytest.raises(FileNotFoundError):
        NeuralStepper.load(tmp_path / "missing.pt")


def test_interrupted_training_resumes_identically(tmp_path, data):
    opts = {"batch_size": 16, "checkpoint_every": 20, "seed": 3}
    straight = _model()
    hist = train_flow_map(straight, data, 2, epochs=60, **opts)
    resumed = _model()
    ckpt = tmp_path / "ckpt.pt"
    train_flow_map(resumed, data, 2, epochs=40, checkpoint=ckpt, **opts)  # "interrupted"
    hist2 = train_flow_map(resumed, data, 2, epochs=60, checkpoint=ckpt, **opts)
    assert hist2 == hist
    for a, b in zip(straight.parameters(), resumed.parameters(), strict=True):
        assert torch.equal(a, b)
    with pytest.raises(ValueError, match="other options"):
        train_flow_map(_model(), data, 4, epochs=60, checkpoint=ckpt, **opts)
    tanh = FlowMapMLP(2, (32, 32), activation="tanh")  # same shapes, other architecture
    with pytest.raises(ValueError, match="other options.*activation='tanh'"):
        train_flow_map(tanh, data, 2, epochs=60, checkpoint=ckpt, **opts)


def test_validation_keeps_best_model(data):
    model = _model()
    train_flow_map(model, data[:48], 2, epochs=50, val_data=data[48:], val_every=10)
    # the kept model is at least as good on validation as the initial one
    win = training_windows(data[48:], 2, 5)
    assert multi_step_loss(model, win).item() <= multi_step_loss(_model(), win).item()


def test_normalized_model_scales_from_data_and_round_trips(tmp_path, data):
    """normalize=True: buffers = state mean/std and increment std of the training windows;
    saved and loaded with the model; on data of size ~40 (Lorenz-like) it trains far better."""
    big = 40.0 * data + 5.0  # states of size ~40: unscaled inputs/targets slow Adam down
    plain, scaled = _model(), FlowMapMLP(2, (32, 32), normalize=True)
    x = torch.randn(4, 2)
    assert torch.allclose(scaled(x), x + scaled.net(x))  # identity scaling before training
    with pytest.raises(ValueError, match="normalize=True"):
        plain.set_scaling(big)
    options = {"epochs": 300, "batch_size": 32, "lr": 3e-3}
    train_flow_map(plain, big, 4, **options)
    train_flow_map(scaled, big, 4, **options)
    win = training_windows(big, 4, 5).double()
    with torch.no_grad():
        loss_plain, loss_scaled = (multi_step_loss(m.double(), win).item() for m in (plain, scaled))
    assert torch.allclose(scaled.in_shift.double(), win.reshape(-1, 2).mean(0), rtol=1e-5)
    assert torch.allclose(scaled.in_scale.double(), win.reshape(-1, 2).std(0), rtol=1e-5)
    increments = (win[:, 1:] - win[:, :-1]).reshape(-1, 2)
    assert torch.allclose(scaled.out_scale.double(), increments.std(0), rtol=1e-5)
    assert loss_scaled < loss_plain / 3
    path = tmp_path / "scaled.pt"
    NeuralStepper(scaled, 0.04).save(path)
    loaded = NeuralStepper.load(path)
    assert loaded.model.normalize and torch.equal(loaded.model.out_scale, scaled.out_scale)
    assert torch.equal(
        loaded(big[:3, 0], 0.0, 0.08), NeuralStepper(scaled, 0.04)(big[:3, 0], 0.0, 0.08)
    )

"""The Lyapunov-stable autoencoder: P solves ΩᵀPΩ − P = −I (against scipy, residual <= 1e-10)
with finite-difference gradients, ρ vanishes for a stable Ω and pulls an unstable one back,
the model's predictions are its rollouts, and data-parallel training on two real ranks
(``mpiexec -n 2``, ``torchrun`` with gloo) equals serial."""

from __future__ import annotations

import math
import os

import numpy as np
import pytest
import scipy.linalg
import torch
from two_ranks import MPIEXEC, mpiexec_pytest, torchrun_pytest

from partime.comm import SerialComm
from partime.data.sequences import Sequence
from partime.nets.lyapunov import (
    LyapunovAE,
    LyapunovAEConfig,
    LyapunovLoss,
    LyapunovLossConfig,
    lyapunov_solve,
    stability_penalty,
)
from partime.train import TrainConfig
from partime.train.lyapunov import rollout_errors, sequence_pairs, train_lyapunov

F64 = torch.float64
HERE = os.path.abspath(__file__)


def scaled(n: int, radius: float, seed: int) -> torch.Tensor:
    """A random n x n matrix with spectral radius ``radius``."""
    a = torch.randn(n, n, dtype=F64, generator=torch.Generator().manual_seed(seed))
    return a * radius / torch.linalg.eigvals(a).abs().max()


def test_p_solves_the_lyapunov_equation():
    omega = scaled(15, 0.95, 0)
    p = lyapunov_solve(omega)
    residual = omega.T @ p @ omega - p + torch.eye(15, dtype=F64)
    assert float(residual.abs().max()) <= 1e-10
    assert torch.allclose(p, p.T)
    reference = scipy.linalg.solve_discrete_lyapunov(omega.T.numpy(), np.eye(15))
    assert np.abs(p.numpy() - reference).max() <= 1e-10 * np.abs(reference).max()
    # unstable: P still solves the equation, and is indefinite
    unstable = scaled(6, 1.3, 1)
    p = lyapunov_solve(unstable)
    assert float((unstable.T @ p @ unstable - p + torch.eye(6, dtype=F64)).abs().max()) <= 1e-10
    assert float(torch.linalg.eigvalsh(p).min()) < 0


def test_gradients_match_finite_differences():
    omega = scaled(4, 0.8, 2).requires_grad_()
    assert torch.autograd.gradcheck(lyapunov_solve, (omega,), eps=1e-6, atol=1e-7)
    unstable = scaled(4, 1.6, 3).requires_grad_()
    assert float(stability_penalty(unstable.detach())) > 0
    assert torch.autograd.gradcheck(stability_penalty, (unstable,), eps=1e-6, atol=1e-7)


def test_penalty_by_hand_and_zero_when_stable():
    # diagonal: p_i = 1/(1 - ω_i²); only ω = 3 gives p < 0: ρ = exp(-|−1/8 − 1|/γ)
    omega = torch.diag(torch.tensor([3.0, 0.5, -0.2], dtype=F64))
    assert float(stability_penalty(omega, gamma=4.0)) == pytest.approx(math.exp(-1.125 / 4))
    stable = scaled(15, 0.99, 4)
    assert float(stability_penalty(stable)) == 0.0
    assert float(torch.linalg.eigvalsh(lyapunov_solve(stable)).min()) > 0


def test_the_penalty_pulls_strongly_unstable_eigenvalues_back():
    omega = torch.diag(torch.tensor([2.5, -3.0, 0.5], dtype=F64)).requires_grad_()
    optimizer = torch.optim.Adam([omega], lr=0.1)
    for _ in range(100):
        optimizer.zero_grad()
        stability_penalty(omega).backward()
        optimizer.step()
    assert float(stability_penalty(omega.detach())) < 1e-3
    assert float(torch.linalg.eigvals(omega.detach()).abs().max()) < 1.0  # 0.5 measured


def test_the_push_near_the_unit_circle_is_set_by_gamma():
    # scalar: p = 1/(1 − ω²) → −∞ as ω → 1⁺, so ρ ≈ exp(−1/(γ(ω² − 1))) and its slope
    # ρ·2ω/(γ(ω² − 1)²), which peaks at ω² − 1 = 1/(2γ): at ω = 1.001 γ = 4 leaves no push
    for gamma, low, high in ((4.0, 0.0, 1e-40), (50.0, 0.4, 0.5)):
        omega = torch.diag(torch.tensor([1.001, 0.5], dtype=F64)).requires_grad_()
        stability_penalty(omega, gamma).backward()
        x = 1.001**2 - 1
        slope = math.exp(-(1 + 1 / x) / gamma) * 2 * 1.001 / (gamma * x**2)
        assert float(omega.grad[0, 0]) == pytest.approx(slope, rel=1e-6)
        assert low <= slope <= high


def held_radius(gamma: float, kappa: float) -> float:
    """Where κ·ρ holds an eigenvalue that a data term pulls outward with a constant 0.01."""
    w = torch.tensor([1.0, 0.5], dtype=F64, requires_grad=True)
    optimizer = torch.optim.Adam([w], lr=1e-4)
    for _ in range(400):
        optimizer.zero_grad()
        (kappa * stability_penalty(torch.diag(w), gamma) - 0.01 * w[0]).backward()
        optimizer.step()
    return float(w.detach()[0])


def test_the_default_prior_holds_the_radius_within_1e_3_of_the_circle():
    assert held_radius(4.0, 3.0) > 1.009  # the authors' γ = 4: held only near 1.01
    defaults = LyapunovLossConfig()
    assert 1.0 < held_radius(defaults.gamma, defaults.kappa) <= 1.001


def test_model_predictions_are_its_rollout():
    torch.manual_seed(0)
    model = LyapunovAE(LyapunovAEConfig(dim=8, widths=(6, 5), latent=3)).double()
    y = torch.randn(4, 8, dtype=F64)
    out = model(y)
    assert out.shape == (4, 3, 8)
    assert torch.allclose(model.rollout(y, 2).transpose(0, 1), out)
    assert model.spectral_radius() == pytest.approx(
        float(torch.linalg.eigvals(model.omega.detach()).abs().max())
    )
    inputs, targets = sequence_pairs(np.arange(12.0).reshape(6, 2))
    assert inputs.shape == (4, 2) and targets.shape == (4, 3, 2)
    assert torch.equal(targets[1, 2], torch.tensor([6.0, 7.0], dtype=F64))  # y_{t+2}, t = 1


def test_orthogonal_omega_starts_on_the_unit_circle():
    torch.manual_seed(2)
    model = LyapunovAE(LyapunovAEConfig(dim=8, widths=(6,), latent=5, omega_init="orthogonal"))
    moduli = torch.linalg.eigvals(model.omega.detach().double()).abs()
    assert torch.allclose(moduli, torch.ones(5, dtype=F64), atol=1e-6)
    with pytest.raises(ValueError, match="omega_init"):
        LyapunovAEConfig(omega_init="identity")


def test_loss_terms():
    torch.manual_seed(1)
    model = LyapunovAE(LyapunovAEConfig(dim=5, widths=(4,), latent=3)).double()
    with torch.no_grad():
        model.dynamics.weight.copy_(torch.diag(torch.tensor([3.0, 0.5, 0.1], dtype=F64)))
    output, target = torch.randn(6, 3, 5, dtype=F64), torch.randn(6, 3, 5, dtype=F64)
    mse = [float(((output[:, i] - target[:, i]) ** 2).sum(-1).mean()) for i in range(3)]
    loss = LyapunovLoss(model, LyapunovLossConfig(lam=2.0, kappa=0.5, gamma=4.0, two_step=1.0))
    expected = mse[1] + mse[2] + 2.0 * mse[0] + 0.5 * math.exp(-1.125 / 4)
    assert float(loss(output, target).detach()) == pytest.approx(expected)
    with pytest.raises(ValueError, match="gamma > 0"):
        LyapunovLossConfig(gamma=0.0)


def sine_sequence() -> Sequence:
    """A rotating 2-D signal lifted to 6 dimensions (a periodic flow in miniature)."""
    t = np.arange(120) * 0.3
    lift = np.random.default_rng(0).standard_normal((2, 6))
    data = np.stack([np.cos(t), np.sin(t)], 1) @ lift
    return Sequence(data[:40], data[40:], "sine")


TRAIN = TrainConfig(epochs=6, batch_size=8, optimizer="adam", lr=1e-2, weight_decay=1e-6,
                    dtype="float64")  # fmt: skip


def run(comm, kappa=3.0):
    torch.set_num_threads(1)
    config = LyapunovAEConfig(widths=(8,), latent=4)
    return train_lyapunov(sine_sequence(), config, LyapunovLossConfig(kappa=kappa), TRAIN, comm)


def test_training_records_the_spectral_radius_and_scores_rollouts():
    result = run(SerialComm())
    assert len(result.radii) == TRAIN.epochs
    losses = [e["train_loss"] for e in result.summary["epochs"]]
    assert losses[-1] < losses[0]
    errors = rollout_errors(result.model, sine_sequence(), starts=3, horizon=60)
    assert errors.shape == (61,) and np.isfinite(errors).all()
    assert errors[0] < 1.0  # the reconstruction (k = 0) is already fitted somewhat
    with pytest.raises(ValueError, match="need"):
        rollout_errors(result.model, sine_sequence(), starts=3, horizon=100)


def check_equals_serial(comm) -> None:
    """Two ranks give the serial run's weights, losses and spectral radii (float64)."""
    parallel = run(comm)
    if comm.rank == 0:
        serial = run(SerialComm())
        states = parallel.model.state_dict().values(), serial.model.state_dict().values()
        pairs = zip(*states, strict=True)
        assert max(float((a - b).abs().max()) for a, b in pairs) <= 1e-12
        assert np.allclose(parallel.radii, serial.radii, rtol=0, atol=1e-12)
        epochs = parallel.summary["epochs"], serial.summary["epochs"]
        for got, want in zip(*epochs, strict=True):
            assert abs(got["train_loss"] - want["train_loss"]) <= 1e-12
        assert parallel.summary["ranks"] == comm.size
    states = comm.allgather([t.clone() for t in parallel.model.state_dict().values()])
    assert all(torch.equal(a, b) for a, b in zip(states[0], states[1], strict=True))


@pytest.mark.mpi(min_size=2)
def test_mpi_side_equals_serial():
    from partime.comm import from_env

    check_equals_serial(from_env("mpi"))


@pytest.mark.skipif("TORCHELASTIC_RUN_ID" not in os.environ, reason="runs under torchrun")
def test_torch_side_equals_serial():
    from partime.comm import from_env

    check_equals_serial(from_env("torch"))


@pytest.mark.slow
@pytest.mark.skipif(MPIEXEC is None, reason="mpiexec not found")
def test_mpiexec_two_ranks_equal_serial():
    proc = mpiexec_pytest(HERE)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "1 passed" in proc.stdout


@pytest.mark.slow
def test_torchrun_gloo_two_ranks_equal_serial():
    proc = torchrun_pytest(HERE)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "1 passed" in proc.stdout

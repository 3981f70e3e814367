"""Kuramoto–Sivashinsky: RHS vs analytic derivatives, a bounded chaotic run, reference agreement."""

import math

import numpy as np
import pytest
import torch

from partime.dynamics import KuramotoSivashinsky, get_system, reference_solution
from partime.integrators import ETDRK4


def test_rhs_matches_analytic_derivatives():
    ks = KuramotoSivashinsky(n=64, length=22.0)
    x = ks.grid().numpy()
    q1, q2 = 2 * math.pi / 22.0, 2 * math.pi * 3 / 22.0
    u = np.sin(q1 * x) + 0.5 * np.cos(q2 * x)
    u_x = q1 * np.cos(q1 * x) - 0.5 * q2 * np.sin(q2 * x)
    u_xx = -(q1**2) * np.sin(q1 * x) - 0.5 * q2**2 * np.cos(q2 * x)
    u_xxxx = q1**4 * np.sin(q1 * x) + 0.5 * q2**4 * np.cos(q2 * x)
    got = ks(0.0, torch.from_numpy(u)[None])[0].numpy()
    np.testing.assert_allclose(got, -u * u_x - u_xx - u_xxxx, atol=1e-12)


def test_fourier_round_trip_linear_and_dealiasing():
    ks = KuramotoSivashinsky(n=16, length=2 * math.pi)
    u = torch.randn(3, 16, dtype=torch.float64)
    assert torch.allclose(ks.to_physical(ks.to_fourier(u)), u, atol=1e-14)
    q = torch.tensor([0, 1, 2, 3, 4, 5, 6, 7, 0], dtype=torch.float64)  # Nyquist zeroed
    assert torch.equal(ks.linear, (q**2 - q**4).to(torch.complex128))
    dealiased = KuramotoSivashinsky(n=16, length=2 * math.pi, dealias=True)
    out = dealiased.nonlinear(dealiased.to_fourier(u))
    assert out.shape == (3, 9) and float(out[:, 6:].abs().max()) == 0.0  # modes >= 16/3 cut
    assert float(out[:, 1:6].abs().min()) > 0.0


def test_initial_condition_and_errors():
    ks = get_system("ks")
    u0 = ks.initial_condition(batch=2)
    assert u0.shape == (2, 512) and ks.length == pytest.approx(32 * math.pi)
    x = ks.grid()
    assert torch.allclose(u0[1], torch.cos(x / 16) * (1 + torch.sin(x / 16)))
    with pytest.raises(ValueError, match="n must be an even integer >= 4, got 511"):
        KuramotoSivashinsky(n=511)
    with pytest.raises(ValueError, match="length must be a positive finite number, got -1"):
        KuramotoSivashinsky(length=-1)
    with pytest.raises(ValueError, match=r"state of shape \(2, 256\) does not match .* 512"):
        ks(0.0, torch.zeros(2, 256))


def test_etdrk4_run_is_bounded_and_converges():
    ks = KuramotoSivashinsky()
    v0 = ks.to_fourier(ks.initial_condition())
    # 600 time units at Kassam–Trefethen's h = 1/4: well into the chaotic regime.
    traj = ks.to_physical(ETDRK4(ks.linear, ks.nonlinear, 0.25).integrate(v0, 2400, save_every=40))
    assert traj.shape == (61, 1, 512) and torch.isfinite(traj).all()
    assert 1.0 < float(traj.abs().max()) < 10.0
    assert float(traj[-1].std()) > 0.5  # not decayed to a flat state
    # Before chaos amplifies differences (t = 20), h = 1/4 and 1/8 agree with h = 1/32 to a few
    # 1e-6 of an O(1) solution and the error falls with h (measured: 1.4e-5, 2.5e-6).
    reference = ks.to_physical(ETDRK4(ks.linear, ks.nonlinear, 1 / 32).integrate(v0, 640))
    errors = [
        float(
            (ks.to_physical(ETDRK4(ks.linear, ks.nonlinear, h).integrate(v0, n)) - reference)
            .abs()
            .max()
        )
        for h, n in ((0.25, 80), (0.125, 160))
    ]
    assert errors[0] < 3e-5 and errors[1] < errors[0] / 4


def test_etdrk4_matches_scipy_on_a_non_stiff_grid():
    # 32 points on [0, 32 pi] keeps q^4 <= 1, so scipy's explicit DOP853 is cheap; the
    # physical-space RHS (used by scipy) and the Fourier split (used by ETDRK4) must agree.
    ks = KuramotoSivashinsky(n=32)
    u0 = ks.initial_condition()
    ref = reference_solution(ks, u0, np.linspace(0.0, 10.0, 3))
    got = ETDRK4(ks.linear, ks.nonlinear, 0.05).integrate(ks.to_fourier(u0), 200, save_every=100)
    np.testing.assert_allclose(ks.to_physical(got).numpy(), ref.numpy(), atol=1e-7)

"""Every tableau and ETDRK4 converge at their order on problems with known solutions."""

import math

import numpy as np
import pytest
import torch

from partime.integrators import ETDRK4, TABLEAUS, integrate, rk_step


def harmonic(t, x):
    """x'' = -x as a first-order system; exact solution a rotation."""
    return torch.stack((x[..., 1], -x[..., 0]), dim=-1)


def harmonic_exact(x0, t):
    c, s = math.cos(t), math.sin(t)
    return torch.stack((c * x0[..., 0] + s * x0[..., 1], -s * x0[..., 0] + c * x0[..., 1]), -1)


def forced(t, x):
    """x' = -x + cos(t) (non-autonomous, checks the stage times); exact solution below."""
    t = torch.as_tensor(t, dtype=x.dtype)
    return -x + torch.cos(t if t.ndim == 0 else t[..., None])


def forced_exact(x0, t0, t):
    particular = lambda s: 0.5 * (math.cos(s) + math.sin(s))  # noqa: E731
    return (x0 - particular(t0)) * math.exp(-(t - t0)) + particular(t)


def slope(dts, errors):
    return float(np.polyfit(np.log(dts), np.log(errors), 1)[0])


@pytest.mark.parametrize("name", sorted(TABLEAUS))
def test_tableau_order_on_harmonic_oscillator(name):
    order = TABLEAUS[name].order
    x0 = torch.tensor([[1.0, 0.5], [-0.3, 2.0]], dtype=torch.float64)
    t_end = 2.0
    steps = [40, 80, 160, 320]
    errors = [
        float(
            (integrate(harmonic, x0, 0.0, t_end / n, n, scheme=name) - harmonic_exact(x0, t_end))
            .abs()
            .max()
        )
        for n in steps
    ]
    assert abs(slope([t_end / n for n in steps], errors) - order) < 0.1, errors


@pytest.mark.parametrize("name", sorted(TABLEAUS))
def test_tableau_order_on_non_autonomous_problem(name):
    order = TABLEAUS[name].order
    x0 = torch.tensor([[0.7]], dtype=torch.float64)
    t0, t_end = 0.3, 2.3
    steps = [20, 40, 80, 160]
    errors = [
        abs(
            float(integrate(forced, x0, t0, (t_end - t0) / n, n, scheme=name, fast=False))
            - forced_exact(0.7, t0, t_end)
        )
        for n in steps
    ]
    assert abs(slope([(t_end - t0) / n for n in steps], errors) - order) < 0.1, errors


def test_rk_step_matches_hand_written_classic_rk4():
    x, h, t = torch.tensor([0.3, -1.2], dtype=torch.float64), 0.1, 0.4
    k1 = harmonic(t, x)
    k2 = harmonic(t + h / 2, x + h / 2 * k1)
    k3 = harmonic(t + h / 2, x + h / 2 * k2)
    k4 = harmonic(t + h, x + h * k3)
    expected = x + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
    torch.testing.assert_close(rk_step(harmonic, t, x, h, "rk4"), expected, rtol=0, atol=1e-15)


def test_per_row_start_times_and_saving():
    x0 = torch.tensor([[0.7], [0.2]], dtype=torch.float64)
    t0 = torch.tensor([0.0, 1.5], dtype=torch.float64)
    traj = integrate(forced, x0, t0, 0.01, 200, save_every=50, fast=False)
    assert traj.shape == (5, 2, 1)
    torch.testing.assert_close(traj[0], x0)
    for j in range(5):
        for row in range(2):
            exact = forced_exact(float(x0[row, 0]), float(t0[row]), float(t0[row]) + 0.5 * j)
            assert abs(float(traj[j, row, 0]) - exact) < 1e-9


def test_integrate_is_differentiable():
    x0 = torch.tensor([[1.0, 0.0]], dtype=torch.float64, requires_grad=True)
    x1 = integrate(harmonic, x0, 0.0, 0.01, 100)
    (grad,) = torch.autograd.grad(x1[0, 0], x0)
    # d x(t)/d x0 of the rotation: (cos t, sin t) for the first component, t = 1.
    torch.testing.assert_close(
        grad[0],
        torch.tensor([math.cos(1.0), math.sin(1.0)], dtype=torch.float64),
        atol=1e-9,
        rtol=0,
    )


def bernoulli_exact(lam, v0, t):
    """v' = lam v + v^2: with u = 1/v, u' = -lam u - 1, solved in closed form."""
    u = (1 / v0 + 1 / lam) * torch.exp(-lam * t) - 1 / lam
    return 1 / u


@pytest.mark.parametrize("dtype", [torch.complex128, torch.float64])
def test_etdrk4_fourth_order_on_stiff_problem(dtype):
    lam = torch.tensor([-1.0, -20.0, -300.0, -500.0], dtype=torch.float64)
    if dtype.is_complex:
        lam = lam + 1j * torch.tensor([3.0, -40.0, 100.0, 0.0], dtype=torch.float64)
    v0 = torch.tensor([0.5, 2.0, 30.0, 100.0], dtype=torch.float64).to(dtype)
    t_end = 1.0
    steps = [10, 20, 40, 80]
    exact = bernoulli_exact(lam.to(torch.complex128), v0.to(torch.complex128), t_end)
    errors = []
    for n in steps:
        solver = ETDRK4(lam, lambda v: v * v, t_end / n)
        errors.append(float((solver.integrate(v0, n) - exact).abs().max()))
    assert abs(slope([t_end / n for n in steps], errors) - 4) < 0.1, errors
    # The stiff modes (|h L| up to 500) stay stable at these steps, where explicit RK4 blows up.
    assert errors[0] < 1e-3


def test_etdrk4_saves_trajectory():
    lam = torch.tensor([-1.0, -10.0], dtype=torch.complex128)
    solver = ETDRK4(lam, lambda v: v * v, 0.01)
    v0 = torch.tensor([[0.5, 1.0]], dtype=torch.complex128)
    traj = solver.integrate(v0, 100, save_every=25)
    assert traj.shape == (5, 1, 2)
    torch.testing.assert_close(traj[-1], solver.integrate(v0, 100))
    torch.testing.assert_close(traj[-1], bernoulli_exact(lam, v0, 1.0), atol=1e-8, rtol=0)

"""Every built-in system against a hand-written numpy formula, and the harmonic exact solution."""

import math

import numpy as np
import pytest
import torch

from partime.dynamics import (
    CubicOscillator,
    HarmonicOscillator,
    Hopf,
    Hyperbolic,
    Lorenz,
    VanDerPol,
    reference_solution,
)

# Independent formulas, written from the HiTS paper (not from partime's code).
FORMULAS = {
    HarmonicOscillator: lambda s: np.stack([s[:, 1], -s[:, 0]], 1),
    Hyperbolic: lambda s: np.stack([-0.05 * s[:, 0], -(s[:, 1] - s[:, 0] ** 2)], 1),
    CubicOscillator: lambda s: np.stack(
        [-0.1 * s[:, 0] ** 3 + 2 * s[:, 1] ** 3, -2 * s[:, 0] ** 3 - 0.1 * s[:, 1] ** 3], 1
    ),
    VanDerPol: lambda s: np.stack([s[:, 1], 2 * (1 - s[:, 0] ** 2) * s[:, 1] - s[:, 0]], 1),
    Hopf: lambda s: np.stack(
        [
            np.zeros(len(s)),
            s[:, 0] * s[:, 1] + s[:, 2] - s[:, 1] * (s[:, 1] ** 2 + s[:, 2] ** 2),
            s[:, 0] * s[:, 2] - s[:, 1] - s[:, 2] * (s[:, 1] ** 2 + s[:, 2] ** 2),
        ],
        1,
    ),
    Lorenz: lambda s: np.stack(
        [
            10 * (s[:, 1] - s[:, 0]),
            s[:, 0] * (28 - s[:, 2]) - s[:, 1],
            s[:, 0] * s[:, 1] - 8 / 3 * s[:, 2],
        ],
        1,
    ),
}


@pytest.mark.parametrize("cls", list(FORMULAS), ids=lambda c: c.__name__)
def test_rhs_matches_numpy_formula(cls):
    system = cls()
    states = np.random.default_rng(0).uniform(-3, 3, (50, system.dim))
    got = system(0.3, torch.from_numpy(states))
    assert got.dtype == torch.float64 and got.shape == (50, system.dim)
    np.testing.assert_allclose(got.numpy(), FORMULAS[cls](states), rtol=1e-14, atol=1e-13)
    # float32 and extra leading batch dimensions work too; components run on numpy as well.
    got32 = system(0.0, torch.from_numpy(states).float().reshape(5, 10, system.dim))
    np.testing.assert_allclose(
        got32.reshape(50, -1).numpy(), FORMULAS[cls](states), rtol=1e-5, atol=1e-4
    )
    comps = np.stack(system.components(0.0, *states.T), 1)
    np.testing.assert_allclose(comps, FORMULAS[cls](states), rtol=1e-14, atol=1e-13)


def test_rhs_is_differentiable():
    x = torch.tensor([[1.0, 2.0, 3.0]], dtype=torch.float64, requires_grad=True)
    Lorenz()(0.0, x).sum().backward()
    # d/dx of (sum of RHS) = [-10 + (28 - z) + y, 10 - 1 + x, -x - 8/3]
    np.testing.assert_allclose(x.grad.numpy(), [[-10 + 25 + 2, 10 - 1 + 1, -1 - 8 / 3]])


def test_harmonic_exact_and_reference_agree():
    h = HarmonicOscillator(omega=2.0)
    x0 = torch.tensor([[1.0, 0.0], [0.3, -1.5]], dtype=torch.float64)
    times = np.linspace(0.0, 10.0, 201)
    exact = h.exact(x0, torch.from_numpy(times)[:, None])
    ref = reference_solution(h, x0, times)
    assert ref.shape == (201, 2, 2) and ref.dtype == torch.float64
    assert float((ref - exact).abs().max()) < 1e-10
    # exact() is the flow: energy conserved, period pi for omega = 2
    np.testing.assert_allclose(h.exact(x0, math.pi).numpy(), x0.numpy(), atol=1e-14)


def test_rk45_reference_and_single_state():
    h = HarmonicOscillator()
    x0 = torch.tensor([0.5, 0.25], dtype=torch.float64)
    ref = reference_solution(h, x0, [0.0, 1.0, 2.0], method="RK45")
    assert ref.shape == (3, 2)
    assert float((ref - h.exact(x0, torch.tensor([0.0, 1.0, 2.0]))).abs().max()) < 1e-10


@pytest.mark.parametrize(
    ("x0", "match"),
    [
        (torch.tensor([[1.0, float("nan")]]), r"not finite: x0\[0, 1\] = nan"),
        (torch.ones(3, 3), r"shape \(3, 3\) does not match .* dimension 2"),
    ],
)
def test_reference_rejects_bad_initial_state(x0, match):
    with pytest.raises(ValueError, match=match):
        reference_solution(VanDerPol(), x0, [0.0, 1.0])


def test_bad_parameters_and_state_shape():
    with pytest.raises(ValueError, match="mu must be finite, got nan"):
        VanDerPol(mu=float("nan"))
    with pytest.raises(TypeError, match="sigma must be a real number"):
        Lorenz(sigma="ten")
    with pytest.raises(ValueError, match=r"state of shape \(4, 2\) does not match .* dimension 3"):
        Hopf()(0.0, torch.zeros(4, 2))
    with pytest.raises(ValueError, match="method must be one of"):
        reference_solution(Hopf(), torch.zeros(1, 3), [0.0, 1.0], method="euler")
    with pytest.raises(ValueError, match="strictly increasing"):
        reference_solution(Hopf(), torch.zeros(1, 3), [0.0, 1.0, 0.5])

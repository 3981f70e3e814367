"""Fitting flow maps to a propagator's values and Jacobians (Sobolev training)."""

from __future__ import annotations

import math
import time

import pytest
import torch

from partime.dynamics import HarmonicOscillator, VanDerPol
from partime.steppers import FlowMapMLP, RKPropagator
from partime.steppers.jacobian_fit import (
    JacobianFitConfig,
    fit_errors,
    fit_flow_map,
    model_jacobians,
    propagator_targets,
)


def _states(n: int, seed: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return 4 * torch.rand(n, 2, generator=gen, dtype=torch.float64) - 2


def test_targets_of_a_linear_flow_are_the_exact_map_and_its_matrix():
    """Harmonic oscillator: the flow over h is the rotation [[c, s], [-s, c]] at every state."""
    h = 0.3
    targets = propagator_targets(RKPropagator(HarmonicOscillator(), 1e-3), _states(50, 0), h)
    c, s = math.cos(h), math.sin(h)
    exact = torch.tensor([[c, s], [-s, c]], dtype=torch.float64)
    assert (targets.jacobians - exact).abs().max() < 1e-12
    assert (targets.values - targets.states @ exact.T).abs().max() < 1e-12


def test_targets_match_finite_differences_on_a_nonlinear_flow():
    fine = RKPropagator(VanDerPol(), 1e-3)
    x = _states(8, 1)
    targets = propagator_targets(fine, x, 0.2, chunk=3)  # chunks are stitched back in order
    eps = 1e-6
    for j in range(2):
        dx = torch.zeros_like(x)
        dx[:, j] = eps
        column = (fine(x + dx, 0.0, 0.2) - fine(x - dx, 0.0, 0.2)) / (2 * eps)
        assert (targets.jacobians[..., j] - column).abs().max() < 1e-7
    # the targets come from the eager steps (under jvp), the call from a compiled kernel
    torch.testing.assert_close(targets.values, fine(x, 0.0, 0.2), rtol=0, atol=1e-13)


def test_model_jacobians_equal_autograd_rows():
    torch.manual_seed(0)
    model = FlowMapMLP(2, (8, 8), activation="tanh").double()
    x = _states(4, 2)
    jac = model_jacobians(model, x)
    for n in range(4):
        assert torch.allclose(jac[n], torch.autograd.functional.jacobian(model, x[n]))


def _fitted(weight: float, lbfgs_steps: int = 0) -> tuple[float, float]:
    fine = RKPropagator(VanDerPol(), 1e-2)
    train = propagator_targets(fine, _states(512, 3), 0.4)
    test = propagator_targets(fine, _states(256, 4), 0.4)
    torch.manual_seed(0)
    model = FlowMapMLP(2, (32, 32), normalize=True, activation="tanh").double()
    config = JacobianFitConfig(
        epochs=600, lr=3e-3, batch_size=128, jacobian_weight=weight, lbfgs_steps=lbfgs_steps
    )
    before = fit_errors(model, test)
    history = fit_flow_map(model, train, config)
    assert len(history) == 600 + -(-lbfgs_steps // 25)  # Adam epochs, L-BFGS chunks
    after = fit_errors(model, test)
    assert after[0] < before[0] / 10  # the fit lowers the held-out value error 10x
    return after


def test_jacobian_term_fits_the_jacobian_better():
    """Same model, data and epochs: the Jacobian term lowers the held-out Jacobian error."""
    value_only = _fitted(0.0)
    sobolev = _fitted(10.0)
    assert sobolev[1] < value_only[1] / 2


def test_lbfgs_polish_lowers_both_errors():
    adam = _fitted(10.0)
    polished = _fitted(10.0, lbfgs_steps=50)
    assert polished[0] < adam[0] and polished[1] < adam[1]


@pytest.mark.parametrize("epochs", [10**6, 5], ids=["adam-phase", "lbfgs-phase"])
def test_time_budget_stops_each_phase(epochs):
    fine = RKPropagator(VanDerPol(), 1e-2)
    targets = propagator_targets(fine, _states(64, 5), 0.2)
    model = FlowMapMLP(2, (8,), activation="tanh").double()
    config = JacobianFitConfig(epochs=epochs, lbfgs_steps=10**6, time_budget=0.5)
    start = time.perf_counter()
    losses = fit_flow_map(model, targets, config)
    # a million steps take minutes: stopping at all within 30 s means the deadline held
    assert time.perf_counter() - start < 30 and 0 < len(losses) < 10**5


def test_bad_inputs_give_clear_errors():
    fine = RKPropagator(VanDerPol(), 1e-2)
    with pytest.raises(ValueError, match=r"states must be \(N, 2\)"):
        propagator_targets(fine, torch.zeros(4, 3), 0.1)
    with pytest.raises(ValueError, match="duration must be positive"):
        propagator_targets(fine, torch.zeros(4, 2), 0.0)
    for bad, match in [
        ({"epochs": 0}, "epochs"),
        ({"lbfgs_steps": -1}, "lbfgs_steps"),
        ({"lr_stages": ()}, "lr_stages"),
        ({"jacobian_weight": -1.0}, "jacobian_weight"),
        ({"time_budget": 0.0}, "time_budget"),
    ]:
        with pytest.raises(ValueError, match=match):
            JacobianFitConfig(**bad)

"""Algorithm 1 vs a plain loop, cross-validation on a constructed case, the hierarchy as
parareal coarse propagator, and the hybrid scheme (Algorithm 2)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from partime.hits import (
    Hierarchy,
    HierarchyPropagator,
    cross_validate_range,
    forecast_mse,
    hybrid_forecast,
    multiscale_forecast,
)
from partime.steppers.neural import FlowMapMLP

DT = 0.05
ROTATION = torch.tensor([[0.0, 1.0], [-1.0, 0.0]], dtype=torch.float64)


class AffineMap(nn.Module):
    """x -> x @ M^T + bias: an exact linear flow map, optionally with a constant error."""

    def __init__(self, matrix: torch.Tensor, bias: float = 0.0) -> None:
        super().__init__()
        self.dim = matrix.shape[0]
        self.matrix = nn.Parameter(matrix.clone())
        self.bias = nn.Parameter(torch.full((self.dim,), bias, dtype=matrix.dtype))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x @ self.matrix.T + self.bias


def rotation_hierarchy(steps, biases) -> Hierarchy:
    models = [
        AffineMap(torch.linalg.matrix_exp(ROTATION * s * DT), b)
        for s, b in zip(steps, biases, strict=True)
    ]
    return Hierarchy(models, list(steps), DT, "rotation")


def exact(x0: torch.Tensor, n_steps: int) -> torch.Tensor:
    """(n_steps + 1, batch, 2) exact rotation trajectory."""
    times = torch.arange(n_steps + 1, dtype=torch.float64) * DT
    maps = torch.linalg.matrix_exp(ROTATION[None] * times[:, None, None])
    return torch.einsum("tij,bj->tbi", maps, x0)


def loop_forecast(h: Hierarchy, x0: torch.Tensor, n_steps: int) -> torch.Tensor:
    """Algorithm 1 written point by point with a dict, plus numpy interpolation."""
    known = {0: x0}
    span = n_steps
    for i in sorted(range(len(h)), key=lambda i: -h.steps[i]):
        step, n_fwd = h.steps[i], span // h.steps[i]
        if n_fwd == 0:
            continue
        bases = {p: known[p] for p in known}
        for j in range(1, n_fwd + 1):
            for p in bases:
                bases[p] = h.models[i](bases[p])
                known[p + j * step] = bases[p]
        span = step - 1
    last = max(known)
    while last < n_steps:
        known[last + h.steps[0]] = h.models[0](known[last])
        last += h.steps[0]
    ts = sorted(known)
    vals = torch.stack([known[t] for t in ts]).detach().numpy()
    out = np.empty((n_steps + 1, *x0.shape))
    for b in range(x0.shape[0]):
        for d in range(x0.shape[1]):
            out[:, b, d] = np.interp(np.arange(n_steps + 1), ts, vals[:, b, d])
    return torch.from_numpy(out)


@pytest.mark.parametrize(
    ("steps", "n_steps"), [((1, 2, 4, 8), 37), ((2, 4, 16), 50), ((1, 3, 7), 30)]
)
def test_algorithm1_equals_loop(steps, n_steps):
    torch.manual_seed(1)
    models = [FlowMapMLP(3, (8, 8)).double() for _ in steps]
    h = Hierarchy(models, list(steps), 0.01)
    x0 = torch.randn(4, 3, dtype=torch.float64)
    with torch.no_grad():
        expected = loop_forecast(h, x0, n_steps)
    got = multiscale_forecast(h, x0, n_steps)
    assert got.shape == (n_steps + 1, 4, 3)
    assert torch.allclose(got, expected, rtol=1e-12, atol=1e-12)


def test_exact_maps_give_exact_forecast_at_model_points():
    h = rotation_hierarchy((1, 2, 4), (0.0,) * 3)
    x0 = torch.randn(3, 2, dtype=torch.float64)
    assert torch.allclose(multiscale_forecast(h, x0, 21), exact(x0, 21), atol=1e-12)


def test_cross_validation_picks_known_range():
    # Models 0 and 4 are badly biased; the others carry a tiny error per application, so
    # more large steps are better (upper = 3) and step 2 beats interpolating over 4 (lower = 1).
    steps, biases = (1, 2, 4, 8, 16), (5e-2, 1e-4, 1e-4, 1e-4, 5e-2)
    h = rotation_hierarchy(steps, biases)
    theta = torch.rand(16, dtype=torch.float64) * 2 * torch.pi
    x0 = torch.stack([theta.cos(), theta.sin()], dim=1)
    val = exact(x0, 64).transpose(0, 1)
    assert cross_validate_range(h, val) == (1, 3)
    best = forecast_mse(h.subset(1, 3), val)
    assert best < forecast_mse(h.subset(0, 3), val) and best < forecast_mse(h.subset(2, 3), val)


def test_bad_forecast_inputs():
    h = rotation_hierarchy((1, 2), (0.0, 0.0))
    with pytest.raises(ValueError, match="dimension mismatch"):
        multiscale_forecast(h, torch.zeros(2, 3, dtype=torch.float64), 10)
    with pytest.raises(ValueError, match="n_steps"):
        multiscale_forecast(h, torch.zeros(2, 2, dtype=torch.float64), 0)


def test_propagator_greedy_plan_and_values():
    h = rotation_hierarchy((1, 2, 4, 8), (1e-3, 2e-3, 3e-3, 4e-3))
    prop = HierarchyPropagator(h)
    assert prop.plan(13) == [(3, 1), (2, 1), (0, 1)]
    x = torch.randn(5, 2, dtype=torch.float64)
    with torch.no_grad():
        expected = h.models[0](h.models[2](h.models[3](x)))
    assert torch.allclose(prop(x, 0.0, 13 * DT), expected, atol=1e-14)
    t0 = torch.arange(5, dtype=torch.float64)
    assert torch.allclose(prop(x, t0, t0 + 13 * DT), expected, atol=1e-14)
    h.selected = (2, 3)
    coarse = HierarchyPropagator(h)  # smallest selected step is 4·dt
    with pytest.raises(ValueError, match="whole number of steps"):
        coarse(x, 0.0, 6 * DT)
    assert coarse.plan(12) == [(1, 1), (0, 1)]


def test_propagator_as_parareal_coarse():
    from partime.pint import VectorizedExecutor, parareal, slice_times
    from partime.steppers import RKPropagator

    class Rotation:
        name, dim = "rotation", 2

        def __call__(self, t, x):
            return x @ ROTATION.T

    h = rotation_hierarchy((1, 2, 4), (1e-3, 1e-3, 1e-3))
    fine = RKPropagator(Rotation(), DT / 10)
    x0 = torch.tensor([[1.0, 0.0]], dtype=torch.float64)
    times = slice_times(8 * 4 * DT, 8)
    result = parareal(HierarchyPropagator(h), fine, x0, times, VectorizedExecutor(), tol=1e-10)
    assert result.converged and result.iterations < 8
    assert torch.allclose(result.states[-1], exact(x0, 32)[-1], atol=1e-7)


def test_hybrid_matches_rk_from_each_nn_point():
    from partime.integrators.explicit import integrate

    class Rotation:
        name, dim = "rotation", 2

        def __call__(self, t, x):
            return x @ ROTATION.T

    h = rotation_hierarchy((1, 2, 8), (0.0, 0.0, 1e-3))
    x0 = torch.randn(3, 2, dtype=torch.float64)
    n_steps = 20  # NN points 0, 8, 16; RK from each with step 2·dt; tail past 16
    got = hybrid_forecast(h, Rotation(), x0, n_steps, rk_every=2)
    assert got.shape == (21, 3, 2)
    nn_points = [x0, h.models[2](x0), h.models[2](h.models[2](x0))]
    for i, start in enumerate(nn_points):
        rk = integrate(Rotation(), start.detach(), 8 * i * DT, 2 * DT, 4, "rk4", save_every=1)
        for j in range(4 if i < 2 else 3):
            assert torch.allclose(got[8 * i + 2 * j], rk[j], atol=1e-14)
    assert torch.allclose(got[8], nn_points[1])  # the NN point, not the RK endpoint
    assert torch.allclose(got[3], (got[2] + got[4]) / 2)  # interpolated between RK points
    with pytest.raises(ValueError, match="does not divide"):
        hybrid_forecast(h, Rotation(), x0, n_steps, rk_every=3)


def test_chunked_model_calls_match_one_call():
    from partime.hits.coupling import apply_chunked

    torch.manual_seed(0)
    model = FlowMapMLP(3, (8, 8)).double()
    y = torch.randn(50, 3, dtype=torch.float64)
    assert torch.allclose(apply_chunked(model, y, rows=7), model(y), rtol=0, atol=1e-14)

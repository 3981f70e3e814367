"""Transfers: R_p I = identity, R = Iᵀ as matrices, first-order coherence, β scaling."""

import torch
from mgopt_problems import make_problem

from partime.mgopt import (
    LevelObjective,
    WorkCounter,
    prolong,
    restrict_gradient,
    restrict_parameters,
)
from partime.nets import PiecewiseConstant

LAYER, SHARED = 4, 3  # a toy layout: 4 parameters per layer, 3 shared


def _matrix(operator, columns: int) -> torch.Tensor:
    """The matrix of a linear operator on flat vectors, column by column."""
    basis = torch.eye(columns, dtype=torch.float64)
    return torch.stack([operator(basis[j], LAYER, SHARED) for j in range(columns)], dim=1)


def test_restriction_is_the_transpose_of_prolongation_and_averages_parameters() -> None:
    coarse_size, fine_size = 3 * LAYER + SHARED, 6 * LAYER + SHARED
    prolongation = _matrix(prolong, coarse_size)
    assert prolongation.shape == (fine_size, coarse_size)
    assert torch.equal(_matrix(restrict_gradient, fine_size), prolongation.T)
    # parameters: R_p = (IᵀI)⁻¹Iᵀ, the L2 projection onto piecewise-constant coarse layers
    projection = torch.linalg.solve(prolongation.T @ prolongation, prolongation.T)
    assert torch.allclose(_matrix(restrict_parameters, fine_size), projection, atol=1e-15)
    coarse = torch.randn(coarse_size, dtype=torch.float64)
    assert torch.equal(restrict_parameters(prolong(coarse, LAYER, SHARED), LAYER, SHARED), coarse)
    # shared parameters (lift and head) go across by identity both ways
    assert torch.equal(prolong(coarse, LAYER, SHARED)[-SHARED:], coarse[-SHARED:])


def test_parameter_restriction_is_the_bases_l2_projection() -> None:
    layers = torch.randn(8, LAYER, dtype=torch.float64)
    fine = torch.cat([layers.flatten(), torch.randn(SHARED, dtype=torch.float64)])
    coarse_layers = PiecewiseConstant(8).project(layers, PiecewiseConstant(4))
    restricted = restrict_parameters(fine, LAYER, SHARED)
    assert torch.allclose(restricted[: 4 * LAYER].view(4, LAYER), coarse_layers, atol=1e-14)


def test_first_order_coherence_on_every_level() -> None:
    """∇H_{l−1}(R_p θ) = R ∇H_l(θ) down a hierarchy, with each coarse gradient recomputed."""
    problem, batch = make_problem(depth=32, levels=4)
    spec, counter = problem.spec, WorkCounter(4)
    sizes = (spec.layer_size, spec.shared_size)
    theta = problem.init(3) + 0.05 * torch.randn(problem.size(4), dtype=torch.float64)
    objective = LevelObjective(problem, 4, batch, counter)
    for level in (3, 2, 1):
        _, grad = objective.value_and_grad(theta)
        theta = restrict_parameters(theta, *sizes)
        target = restrict_gradient(grad, *sizes)
        coupled = LevelObjective(problem, level, batch, counter).coupled(theta, target)
        fresh = LevelObjective(problem, level, batch, counter, coupled.coupling)
        _, coarse_grad = fresh.value_and_grad(theta)
        assert (coarse_grad - target).abs().max() <= 1e-12 * max(1.0, target.abs().max())
        assert target.abs().max() > 1e-3  # not a vacuous zero gradient
        objective = coupled


def test_coarse_regularizer_is_the_fine_one_of_the_prolongation() -> None:
    """β_l = β·2^{L−l}: R ∇Reg_l(I θc) = ∇Reg_{l−1}(θc), and Reg_l(I θc) = Reg_{l−1}(θc)."""
    problem, _ = make_problem(depth=16, levels=2)
    sizes = (problem.spec.layer_size, problem.spec.shared_size)
    coarse = torch.randn(problem.size(1), dtype=torch.float64, requires_grad=True)
    fine = prolong(coarse.detach(), *sizes).requires_grad_()
    regs = [
        problem.regularizer(1, problem.unpack(coarse)),
        problem.regularizer(2, problem.unpack(fine)),
    ]
    assert torch.allclose(regs[0], regs[1], rtol=1e-14)
    (coarse_grad,) = torch.autograd.grad(regs[0], coarse)
    (fine_grad,) = torch.autograd.grad(regs[1], fine)
    assert torch.allclose(restrict_gradient(fine_grad, *sizes), coarse_grad, rtol=1e-14)

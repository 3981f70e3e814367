"""Bases in depth: evaluation, the open-interval rule, refinement and L2 projection."""

import numpy as np
import pytest
import torch

from partime.nets import BASES, FemHat, PiecewiseConstant, PiecewiseLinear, make_basis

# Interior points, piece boundaries of 3, 6 and 12 pieces, and the ends of [0, 1].
TIMES = sorted({*np.linspace(0, 1, 37).tolist(), 0.123, 0.5 + 1e-3, 0.77})


def random_coefficients(basis, generator, shape=(2, 3)):
    return torch.randn(basis.n_coefficients, *shape, dtype=torch.float64, generator=generator)


@pytest.mark.parametrize("name", sorted(BASES))
@pytest.mark.parametrize("side", ["right", "left"])
def test_refine_leaves_the_function_unchanged(name, side):
    gen = torch.Generator().manual_seed(0)
    basis = make_basis(name, 3)
    coeffs = random_coefficients(basis, gen)
    fine = basis.refine()
    fine_coeffs = basis.refine_coefficients(coeffs)
    assert fine.n_pieces == 6 and fine_coeffs.shape[0] == fine.n_coefficients
    for t in TIMES:
        expected = basis.evaluate(coeffs, t, side)
        torch.testing.assert_close(
            fine.evaluate(fine_coeffs, t, side), expected, atol=1e-15, rtol=0
        )


@pytest.mark.parametrize(
    "source, target",
    [
        (PiecewiseConstant(2), PiecewiseConstant(4)),
        (PiecewiseConstant(3), PiecewiseLinear(3)),
        (PiecewiseConstant(2), PiecewiseLinear(6)),
        (PiecewiseLinear(2), PiecewiseLinear(4)),
        (FemHat(3), PiecewiseLinear(3)),
        (FemHat(2), FemHat(6)),
        (FemHat(4), PiecewiseLinear(2).refine()),
    ],
)
def test_projection_is_exact_on_the_target_space(source, target):
    gen = torch.Generator().manual_seed(1)
    coeffs = random_coefficients(source, gen)
    projected = source.project(coeffs, target)
    assert projected.shape == (target.n_coefficients, 2, 3)
    interior = [t for t in TIMES if 0 < t < 1] + [0.01, 0.99]
    for t in interior:
        torch.testing.assert_close(
            target.evaluate(projected, t), source.evaluate(coeffs, t), atol=1e-13, rtol=0
        )


def test_projection_onto_coarser_pieces_is_the_local_average():
    fine = PiecewiseConstant(4)
    coeffs = torch.tensor([1.0, 3.0, -2.0, 6.0], dtype=torch.float64)
    coarse = fine.project(coeffs, fine.coarsen())
    torch.testing.assert_close(coarse, torch.tensor([2.0, 2.0], dtype=torch.float64))
    # a linear function's L2 projection onto constants is its mean on each piece
    hat = FemHat(1)
    mean = hat.project(torch.tensor([0.0, 1.0], dtype=torch.float64), PiecewiseConstant(1))
    torch.testing.assert_close(mean, torch.tensor([0.5], dtype=torch.float64))


def test_open_interval_rule_at_piece_boundaries():
    pc = PiecewiseConstant(4)
    assert pc.piece(0.5, "right") == 2 and pc.piece(0.5, "left") == 1
    assert pc.piece(0.0, "left") == 0 and pc.piece(1.0, "right") == 3
    # a few ulps off the boundary still counts as the boundary
    assert pc.piece(0.5 - 1e-15, "right") == 2 and pc.piece(0.5 + 1e-15, "left") == 1
    linear = PiecewiseLinear(2)
    assert linear.weights(0.5, "left") == ((0, 0.0), (1, 1.0))
    assert linear.weights(0.5, "right") == ((2, 1.0), (3, 0.0))


def test_bad_input_names_the_value():
    with pytest.raises(ValueError, match="'cubic'"):
        make_basis("cubic", 2)
    with pytest.raises(ValueError, match="n_pieces=0"):
        make_basis("pc", 0)
    with pytest.raises(ValueError, match="2.5"):
        make_basis("fem", 2.5)
    with pytest.raises(ValueError, match="t=1.5"):
        PiecewiseConstant(2).piece(1.5)
    with pytest.raises(ValueError, match="got a stack of 3"):
        FemHat(3).evaluate(torch.zeros(3, 2), 0.2)
    with pytest.raises(ValueError, match="halve 3 pieces"):
        PiecewiseLinear(3).coarsen()

"""OdeBlock: Euler + piecewise constant is a ResNet, tableau orders, manifest, refine, gradients."""

import copy

import numpy as np
import pytest
import scipy.linalg
import torch
from torch import nn
from torch.func import functional_call

from partime.integrators import TABLEAUS
from partime.nets import OdeBlock
from partime.pint.parareal import parareal
from partime.steppers.base import Propagator

SCHEMES = ("euler", "midpoint", "rk4", "rk38")


def conv_rate(channels=3):
    """The pre-activation unit BN-ReLU-conv-BN-ReLU-conv."""
    return nn.Sequential(
        nn.BatchNorm2d(channels),
        nn.ReLU(),
        nn.Conv2d(channels, channels, 3, padding=1, bias=False),
        nn.BatchNorm2d(channels),
        nn.ReLU(),
        nn.Conv2d(channels, channels, 3, padding=1, bias=False),
    )


def mlp_rate(dim=3, hidden=5):
    return nn.Sequential(nn.Linear(dim, hidden), nn.Tanh(), nn.Linear(hidden, dim))


def piece_module(block, template, k):
    """A plain copy of ``template`` holding piece k's parameters and buffers."""
    module = copy.deepcopy(template).double()
    for name, param in module.named_parameters():
        param.data = block.coefficients.get_parameter(name)[k].detach().clone()
    for name, buffer in module.named_buffers():
        buffer.data = block.coefficients.get_buffer(name)[k].clone()
    return module


@pytest.mark.parametrize("training", [True, False])
def test_euler_piecewise_constant_is_the_resnet_loop(training):
    torch.manual_seed(0)
    template = conv_rate()
    block = OdeBlock(template, n_pieces=4).double().train(training)
    with torch.no_grad():  # non-trivial running statistics for eval mode
        for buffer in block.coefficients.buffers():
            if buffer.is_floating_point():
                buffer.uniform_(0.5, 1.5)
    units = [piece_module(block, template, k).train(training) for k in range(4)]
    x = torch.randn(6, 3, 5, 5, dtype=torch.float64)
    h, epsilon = 1 / 4, block.epsilon
    expected = x
    for unit in units:
        expected = expected + h * epsilon * unit(expected)
    torch.testing.assert_close(block(x), expected, atol=1e-12, rtol=0)
    # each piece keeps its own batch-norm statistics, updated like the loop's units
    for k, unit in enumerate(units):
        for name, buffer in unit.named_buffers():
            torch.testing.assert_close(block.coefficients.get_buffer(name)[k], buffer)


def linear_block(basis, n_pieces, scheme, n_steps, seed=0):
    torch.manual_seed(seed)
    block = OdeBlock(nn.Linear(3, 3, bias=False), n_pieces, basis, scheme, n_steps, epsilon=1.0)
    return block.double()


@pytest.mark.parametrize("scheme", SCHEMES)
def test_linear_rate_converges_at_the_tableau_order(scheme):
    order = TABLEAUS[scheme].order
    x = torch.tensor([[1.0, -0.5, 0.25]], dtype=torch.float64)
    block = linear_block("pc", 2, scheme, 2)
    weights = block.coefficients.weight.detach().numpy()
    # ẋ = x Wᵀ on each half: x(1) = x expm(Wᵀ₀/2) expm(Wᵀ₁/2)
    exact = x.numpy() @ scipy.linalg.expm(weights[0].T / 2) @ scipy.linalg.expm(weights[1].T / 2)
    steps = [2, 4, 8, 16]
    errors = [
        float(np.abs(block.manifest(scheme, n)(x).detach().numpy() - exact).max()) for n in steps
    ]
    slope = -np.polyfit(np.log(steps), np.log(errors), 1)[0]
    assert abs(slope - order) < 0.25, (errors, slope)


@pytest.mark.parametrize("scheme", SCHEMES)
def test_time_dependent_fem_rate_converges_at_the_tableau_order(scheme):
    # θ(t) varies inside each step: the stage times of the plan must be right for the order
    order = TABLEAUS[scheme].order
    x = torch.tensor([[1.0, -0.5, 0.25]], dtype=torch.float64)
    block = linear_block("fem", 2, scheme, 2, seed=1)
    reference = block.manifest("rk4", 1024)(x).detach()
    steps = [4, 8, 16, 32]
    with torch.no_grad():
        errors = [float((block.manifest(scheme, n)(x) - reference).abs().max()) for n in steps]
    slope = -np.polyfit(np.log(steps), np.log(errors), 1)[0]
    assert abs(slope - order) < 0.25, (errors, slope)


def test_a_step_uses_only_its_own_piece():
    block = linear_block("pc", 2, "rk4", 2)
    x = torch.randn(4, 3, dtype=torch.float64)
    first_half = block(x, 0.0, 0.5)
    with torch.no_grad():
        block.coefficients.weight[1] += 10.0  # the piece owning t = 0.5 from the right
    torch.testing.assert_close(block(x, 0.0, 0.5), first_half, atol=0, rtol=0)


def test_manifest_shares_parameters_and_changes_only_the_discretization():
    torch.manual_seed(2)
    block = OdeBlock(conv_rate(), 3, "linear", "rk4", 6).double()
    coarse = block.manifest("euler", 2)
    assert coarse.coefficients is block.coefficients
    for (name, a), b in zip(block.state_dict().items(), coarse.state_dict().values(), strict=True):
        assert a.data_ptr() == b.data_ptr(), name
    assert (coarse.scheme, coarse.n_steps, block.scheme, block.n_steps) == ("euler", 2, "rk4", 6)
    x = torch.randn(4, 3, 5, 5, dtype=torch.float64)
    back = coarse.manifest("rk4", 6)
    torch.testing.assert_close(back(x), block(x), atol=0, rtol=0)
    with torch.no_grad():
        block.coefficients[2].weight.mul_(1.5)
    torch.testing.assert_close(back(x), block(x), atol=0, rtol=0)
    # training through the manifestation updates the shared batch-norm statistics
    before = block.coefficients[0].running_mean.clone()
    coarse.train()(x)
    assert not torch.equal(block.coefficients[0].running_mean, before)


@pytest.mark.parametrize("basis", ["pc", "linear", "fem"])
def test_gradients_match_finite_differences(basis):
    torch.manual_seed(3)
    block = OdeBlock(mlp_rate(), 2, basis, "rk38", 3).double()
    names = [name for name, _ in block.named_parameters()]
    params = [p.detach().clone().requires_grad_() for p in block.parameters()]
    x = torch.randn(3, 3, dtype=torch.float64, requires_grad=True)

    def run(x, *values):
        return functional_call(block, dict(zip(names, values, strict=True)), (x, 0.0, 1.0))

    assert torch.autograd.gradcheck(run, (x, *params))


def test_gradients_through_per_piece_batch_norm():
    torch.manual_seed(4)
    rate = nn.Sequential(nn.BatchNorm1d(3), nn.Tanh(), nn.Linear(3, 3))
    block = OdeBlock(rate, 2, "pc", "midpoint", 2).double()
    x = torch.randn(5, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(block, (x,))


@pytest.mark.parametrize("basis", ["pc", "linear", "fem"])
@pytest.mark.parametrize("training", [True, False])
def test_refine_leaves_the_loss_unchanged(basis, training):
    torch.manual_seed(5)
    block = OdeBlock(conv_rate(), 2, basis, "midpoint", 3).double().train(training)
    x = torch.randn(4, 3, 5, 5, dtype=torch.float64)
    with torch.no_grad():
        block.train()(x)  # running statistics that differ per piece
    block.train(training)
    loss = block(x).square().mean()
    refined = block.refine()
    assert refined.n_pieces == 4 and refined.n_steps == 3 and refined.training == training
    assert refined.coefficients is not block.coefficients
    torch.testing.assert_close(refined(x).square().mean(), loss, atol=1e-12, rtol=0)


def test_any_sub_interval_composes_and_per_row_times():
    block = linear_block("fem", 2, "rk4", 8)
    x = torch.randn(4, 3, dtype=torch.float64)
    whole = block(x)
    torch.testing.assert_close(block(block(x, 0.0, 0.375), 0.375, 1.0), whole, atol=1e-14, rtol=0)
    t0 = torch.tensor([0.0, 0.5, 0.25, 0.5], dtype=torch.float64)
    rows = block(x, t0, t0 + 0.25)
    for i in range(4):
        expected = block(x[i : i + 1], float(t0[i]), float(t0[i]) + 0.25)
        torch.testing.assert_close(rows[i : i + 1], expected, atol=1e-15, rtol=0)
    path = block.trajectory(x, 0.25, 1.0, save_every=2)
    assert path.shape == (4, 4, 3)
    torch.testing.assert_close(path[-1], block(x, 0.25, 1.0), atol=0, rtol=0)
    assert block.check_interval(0.25, 1.0) == 6 and block.step_range(0.25, 1.0) == (2, 8)


def test_parareal_in_depth_reaches_the_fine_block():
    torch.manual_seed(6)
    fine = OdeBlock(conv_rate(2), 4, "pc", "rk4", 8, state_shape=(2, 3, 3)).double().eval()
    coarse = fine.manifest("euler", 4)
    assert isinstance(fine, Propagator) and fine.dim == 18
    x = torch.randn(3, 18, dtype=torch.float64)  # flat states of the Propagator contract
    times = torch.linspace(0, 1, 5, dtype=torch.float64)
    result = parareal(coarse, fine, x, times, tol=0.0)
    with torch.no_grad():
        expected = fine(x.reshape(3, 2, 3, 3)).flatten(1)
    torch.testing.assert_close(result.states[-1], expected, atol=1e-12, rtol=0)


def test_bad_input_names_the_value():
    with pytest.raises(ValueError, match="'rk5'"):
        OdeBlock(mlp_rate(), 2, scheme="rk5")
    with pytest.raises(ValueError, match="'spline'"):
        OdeBlock(mlp_rate(), 2, basis="spline")
    with pytest.raises(ValueError, match="n_steps=0"):
        OdeBlock(mlp_rate(), 2, n_steps=0)
    block = OdeBlock(mlp_rate(), 2, n_steps=4)
    with pytest.raises(ValueError, match="0.3"):
        block(torch.zeros(2, 3), 0.3, 0.55)
    with pytest.raises(AttributeError, match="dim"):
        _ = block.dim
    block.state_shape = (3,)
    with pytest.raises(ValueError, match=r"\(batch, 3\).*got \(2, 4\)"):
        block(torch.zeros(2, 4))

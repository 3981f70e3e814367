"""MrCAE's pieces: deepen at initialisation is subsampling then bilinear interpolation, masks
cover the pooled pixels above tolerance dilated by one, parameter counts follow 20 per deepen
and 19n + 1 per widen group, the ω-loss by hand, the RED-Net baseline's shapes and counts."""

from __future__ import annotations

import itertools

import pytest
import torch

from partime.nets.mrcae import (
    MrCAE,
    MrCAEConfig,
    REDNet,
    REDNetConfig,
    dilate,
    error_map,
    omega_loss,
    parameter_count,
    pool_error,
    subsample,
    upsample,
)

F64 = torch.float64


def grown(config: MrCAEConfig, widths) -> MrCAE:
    model = MrCAE(config).double()
    for groups in widths:
        model.deepen()
        for n in groups:
            model.widen(n, torch.ones(model.latent_shape(), dtype=torch.float64))
    return model.double()


def test_subsample_takes_the_centres_and_upsample_is_the_bilinear_stencil():
    x = torch.arange(49.0, dtype=F64).view(1, 1, 7, 7)
    assert torch.equal(subsample(x)[0, 0], x[0, 0, 1::2, 1::2])
    spike = torch.zeros(1, 1, 5, 5, dtype=F64)
    spike[0, 0, 2, 2] = 1.0  # one coarse value in the middle of a 5x5 coarse grid
    fine = upsample(spike)[0, 0]  # 11x11: the coarse node (2, 2) sits at fine (5, 5)
    stencil = torch.tensor([[0.25, 0.5, 0.25], [0.5, 1.0, 0.5], [0.25, 0.5, 0.25]], dtype=F64)
    assert torch.equal(fine[4:7, 4:7], stencil)
    assert float(fine.sum()) == float(stencil.sum())  # nothing else is touched
    # bilinear interpolation reproduces a linear field (replicate padding only bends the edge)
    y, x = torch.meshgrid(
        torch.arange(15.0, dtype=F64), torch.arange(15.0, dtype=F64), indexing="ij"
    )
    ramp = (2 * x - 3 * y)[None, None]
    assert torch.allclose(upsample(subsample(ramp))[..., 1:-1, 1:-1], ramp[..., 1:-1, 1:-1])
    # = the code's replicate-pad, stride-2 deconv with the stencil, crop 2
    coarse = torch.rand(3, 2, 9, 5, dtype=F64)
    padded = torch.nn.functional.pad(coarse, (1, 1, 1, 1), mode="replicate")
    kernel = torch.diag_embed(stencil.expand(2, 3, 3).permute(1, 2, 0)).permute(2, 3, 0, 1)
    deconv = torch.nn.functional.conv_transpose2d(padded, kernel, stride=2)[..., 2:-2, 2:-2]
    assert torch.allclose(upsample(coarse), deconv)


def test_deepen_at_initialisation_is_subsample_then_interpolate():
    torch.manual_seed(0)
    x = torch.rand(4, 1, 31, 31, dtype=F64)
    exact = grown(MrCAEConfig((31, 31), 1, init_std=0.0), [()])
    assert torch.allclose(exact(x), upsample(subsample(x)), rtol=0, atol=1e-14)
    # the code's init: conv weights all ε plus 1 at the centre, deconv stencil + U(−ε, ε)
    noisy = grown(MrCAEConfig((31, 31), 1, init_std=0.01), [()])
    conv = noisy.levels[0].encode.weight[0, 0]
    assert torch.allclose(
        conv - torch.eye(3, dtype=F64)[1][:, None] * torch.eye(3, dtype=F64)[1],
        torch.full((3, 3), 0.01, dtype=F64),
    )
    deconv = noisy.levels[0].decode.weight[0, 0]
    stencil = torch.tensor([[0.25, 0.5, 0.25], [0.5, 1.0, 0.5], [0.25, 0.5, 0.25]], dtype=F64)
    assert float((deconv.detach() - stencil).abs().max()) <= 0.01
    assert float((noisy(x).detach() - upsample(subsample(x))).abs().max()) < 0.2
    # a second deepen wraps the level-0 network: prolong(f_0(restrict(x))) at initialisation
    two = grown(MrCAEConfig((63, 63), 2, init_std=0.0), [(), ()])
    x63 = torch.rand(3, 1, 63, 63, dtype=F64)
    assert torch.allclose(two(x63), upsample(upsample(subsample(subsample(x63)))))


def test_mask_covers_the_pooled_pixels_above_tolerance_dilated():
    torch.manual_seed(1)
    target = torch.rand(6, 1, 31, 31, dtype=F64)
    output = target + 0.01 * torch.randn(6, 1, 31, 31, dtype=F64)
    output[:, :, 8:11, 20:23] += 0.5  # one badly reconstructed patch
    errors = error_map(output, target)
    squared = (output - target).square()[:, 0]
    assert torch.allclose(errors, 0.5 * squared.mean(0) + 0.5 * squared.amax(0))
    pooled = pool_error(errors)
    assert pooled.shape == (15, 15)
    assert torch.allclose(pooled[4, 10], errors[8:11, 20:23].mean())  # 3x3 mean, stride 2
    tol = 1e-2
    unresolved = (pooled > tol).double()
    expected = torch.zeros(15, 15, dtype=F64)
    for i, j in itertools.product(range(15), range(15)):
        near = unresolved[max(i - 1, 0) : i + 2, max(j - 1, 0) : j + 2]
        expected[i, j] = float(near.max())
    assert torch.equal(dilate(unresolved), expected)
    assert 0 < unresolved.sum() < expected.sum() < 225
    # the widen group's latent code is nonzero exactly on the dilated mask
    model = grown(MrCAEConfig((31, 31), 1), [()])
    model.widen(2, unresolved)
    level = model.levels[0]
    codes = level.group_encoders[0](target) * dilate(level.unresolved()[0])
    assert torch.equal((codes.abs().sum((0, 1)) > 0).double(), expected)


def test_parameter_counts_follow_the_formula():
    widths = ((1, 1, 1), (1, 2), (2, 2, 2))
    model = grown(MrCAEConfig((127, 127), 3), widths)
    assert sum(p.numel() for p in model.parameters()) == parameter_count(widths)
    assert parameter_count(((),)) == 20 and parameter_count(((3,),)) == 20 + 19 * 3 + 1
    assert parameter_count(widths) == 3 * 20 + sum(19 * n + 1 for g in widths for n in g)
    assert model.config.widths == widths
    rebuilt = MrCAE(model.config).double()
    rebuilt.load_state_dict(model.state_dict())
    x = torch.rand(2, 1, 127, 127, dtype=F64)
    assert torch.equal(rebuilt(x), model(x))
    # encoding size: latent grids plus channels x unresolved latent pixels (all, here)
    assert model.encoding_size() == 225 * 4 + 961 * 4 + 3969 * 7


def test_omega_loss_by_hand():
    output = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]], [[[0.0, 2.0], [3.0, 1.0]]]], dtype=F64)
    target = torch.zeros_like(output)
    # squared errors: [[1,4],[9,16]] and [[0,4],[9,1]]; per-pixel means [[0.5,4],[9,8.5]]
    mean, worst = (1 + 4 + 9 + 16 + 0 + 4 + 9 + 1) / 8, 9.0
    assert float(omega_loss(output, target, 0.5)) == pytest.approx(0.5 * mean + 0.5 * worst)
    assert float(omega_loss(output, target, 1.0)) == pytest.approx(mean)
    assert float(omega_loss(output, target, 0.0)) == pytest.approx(worst)


def test_rednet_shapes_and_parameters():
    model = REDNet(REDNetConfig((1, 3, 2), "relu")).double()
    assert model(torch.rand(2, 1, 63, 63, dtype=F64)).shape == (2, 1, 63, 63)
    # encoders 1->3, 3->2 and decoders 2->3, 3->1 with biases
    assert sum(p.numel() for p in model.parameters()) == (27 + 3) + (54 + 2) + (54 + 3) + (27 + 1)
    assert sum(p.numel() for p in REDNet(REDNetConfig((1, 1))).parameters()) == 20


@pytest.mark.parametrize(
    ("config", "match"),
    [
        (dict(shape=(128, 127)), "2\\^p"),
        (dict(shape=(15, 15), n_levels=4), "too small"),
        (dict(activation="tanh"), "activation"),
        (dict(widths=((0,),)), "positive"),
    ],
)
def test_bad_architectures_are_refused(config, match):
    with pytest.raises(ValueError, match=match):
        MrCAEConfig(**config)


def test_growth_errors_are_clear():
    model = MrCAE(MrCAEConfig((31, 31), 1)).double()
    with pytest.raises(ValueError, match="deepen"):
        model(torch.rand(1, 1, 31, 31, dtype=F64))
    with pytest.raises(ValueError, match="deepen before"):
        model.widen(1, torch.ones(15, 15, dtype=F64))
    model.deepen()
    with pytest.raises(ValueError, match="shape"):
        model.widen(1, torch.ones(7, 7, dtype=F64))
    with pytest.raises(ValueError, match="all 1 levels"):
        model.deepen()

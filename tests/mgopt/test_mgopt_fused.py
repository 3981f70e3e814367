"""The fused (numba) Euler ReLU chain equals torch autograd on the eager loop."""

import pytest
import torch

from partime.mgopt import euler_relu_autograd, euler_relu_fused

pytest.importorskip("numba", reason="the fused chain needs numba (pip install 'partime[mgopt]')")


@pytest.mark.parametrize(("depth", "width", "samples"), [(70, 3, 37), (64, 5, 8), (1, 2, 3)])
def test_fused_chain_equals_autograd_float64(depth: int, width: int, samples: int) -> None:
    generator = torch.Generator().manual_seed(depth)

    def rand(*shape: int) -> torch.Tensor:
        return (
            2 * torch.rand(shape, generator=generator, dtype=torch.float64) - 1
        ).requires_grad_()

    # depth 70 is not a multiple of the 32-layer checkpoint segment; biases make ReLUs switch
    y0, weight, bias = rand(samples, width), rand(depth, width, width), rand(depth, width)
    weights_out = torch.randn(samples, width, dtype=torch.float64, generator=generator)
    results = []
    for chain in (euler_relu_fused, euler_relu_autograd):
        end = chain(y0, weight, bias, 1.0 / depth)
        grads = torch.autograd.grad((end * weights_out).sum(), (y0, weight, bias))
        results.append((end, *grads))
    for fused, reference in zip(*results, strict=True):
        assert fused.shape == reference.shape
        assert (fused - reference).abs().max() <= 1e-12


def test_fused_chain_without_gradients_and_in_float32() -> None:
    generator = torch.Generator().manual_seed(0)
    y0 = torch.randn(5, 3, generator=generator)
    weight, bias = (
        torch.randn(40, 3, 3, generator=generator),
        torch.randn(40, 3, generator=generator),
    )
    with torch.no_grad():
        fused = euler_relu_fused(y0, weight, bias, 0.025)
    assert fused.dtype == torch.float32
    assert torch.allclose(fused, euler_relu_autograd(y0, weight, bias, 0.025), atol=1e-5)

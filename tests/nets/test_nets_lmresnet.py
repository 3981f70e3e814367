"""LM-ResNet and the pre-activation ResNet: k = 0 is the ResNet, units, stochastic depth."""

import math

import pytest
import torch

from partime.nets import LMResNet, PreActResNet, ResNetConfig
from partime.nets.layers import PlainBlock

SHAPES = {"image": (1, 8, 8), "signal": (2, 12), "features": (6,)}


def make(cls, shape, **kwargs):
    torch.manual_seed(0)
    return cls(ResNetConfig(shape, 4, width=4, **kwargs)).double()


@pytest.mark.parametrize("kind", sorted(SHAPES))
def test_lm_resnet_with_k_zero_is_the_resnet(kind):
    resnet = make(PreActResNet, SHAPES[kind], blocks="3-2")
    lm = make(LMResNet, SHAPES[kind], blocks="3-2")
    missing = lm.load_state_dict(resnet.state_dict(), strict=False).missing_keys
    assert sorted(missing) == ["blocks.1.k", "blocks.2.k", "blocks.4.k"]
    x = torch.randn(5, *SHAPES[kind], dtype=torch.float64)
    assert not torch.allclose(lm(x), resnet(x))  # k ~ U(-0.1, 0) matters
    with torch.no_grad():
        for name, param in lm.named_parameters():
            if name in lm.no_weight_decay():
                param.zero_()
    torch.testing.assert_close(lm(x), resnet(x), atol=1e-12, rtol=0)


def test_lm_units_carry_the_two_step_state():
    lm = make(LMResNet, (2, 12), blocks="3-3-3").eval()
    assert lm.config.depth == 20 and len(lm.ks) == 6
    assert all(-0.1 <= k <= 0.0 for k in lm.ks)
    units = lm.units()
    assert [u.name for u in units] == ["stem"] + [f"block{i}" for i in range(1, 10)] + ["head"]
    x = torch.randn(3, 2, 12, dtype=torch.float64)
    state = units[0](x)
    assert isinstance(state, tuple) and len(state) == 2
    for unit in units[1:-1]:
        state = unit(state)
        assert isinstance(state, tuple)
    torch.testing.assert_close(units[-1](state), lm(x), atol=0, rtol=0)
    # the LM recurrence by hand for block 2: (1-k)u_1 + k u_0 + f(u_1), u_0 = stem output
    u0 = lm.stem(x)
    u1 = lm.blocks[0](u0)
    block = lm.blocks[1]
    expected = (1 - block.k) * u1 + block.k * u0 + block.branch(u1)
    torch.testing.assert_close(units[2](units[1](units[0](x)))[0], expected, atol=1e-12, rtol=0)


def test_stochastic_depth_rates_and_deterministic_eval():
    lm = make(LMResNet, (1, 8, 8), blocks="2-2", final_survival=0.5)
    assert lm.drop_rates == pytest.approx([l / 4 * 0.5 for l in range(1, 5)])  # noqa: E741
    x = torch.randn(4, 1, 8, 8, dtype=torch.float64)
    lm.eval()
    first = lm(x)
    torch.testing.assert_close(lm(x), first, atol=0, rtol=0)
    dense = make(LMResNet, (1, 8, 8), blocks="2-2").eval()
    dense.load_state_dict(lm.state_dict())
    torch.testing.assert_close(dense(x), first, atol=0, rtol=0)
    lm.train()
    torch.manual_seed(1)
    outputs = {tuple(lm(x).flatten().tolist()) for _ in range(6)}
    assert len(outputs) > 1  # training draws which blocks run


def test_stochastic_depth_is_unbiased_in_expectation():
    torch.manual_seed(2)
    drop = 0.3
    block = PlainBlock("features", 5, 5, drop_rate=drop).double()
    block.branch.eval()  # a fixed branch f: only the drop is random
    x = torch.randn(3, 5, dtype=torch.float64)
    with torch.no_grad():
        branch = block.branch(x)
        expected = x + branch  # the eval output
        torch.testing.assert_close(block.eval()(x), expected, atol=0, rtol=0)
        block.train()
        block.branch.eval()
        n = 4000
        mean = sum(block(x) for _ in range(n)) / n
    # each draw is x + f/(1-d) with probability 1-d, else x: sd of the mean |f|·sqrt(d/((1-d)n))
    sd = branch.abs() * math.sqrt(drop / ((1 - drop) * n))
    assert bool(((mean - expected).abs() <= 4 * sd).all())
    assert float((mean - expected).abs().max()) > 0  # it is random


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"blocks": "3-a"}, "'3-a'"),
        ({"final_survival": 0.0}, "final_survival"),
        ({"n_classes": 1}, "n_classes=1"),
    ],
)
def test_bad_configuration_names_the_value(kwargs, message):
    config = {"input_shape": (1, 8, 8), "n_classes": 10} | kwargs
    with pytest.raises(ValueError, match=message):
        ResNetConfig(**config)


def test_input_that_does_not_match_the_stem():
    net = make(PreActResNet, (2, 12))
    with pytest.raises(ValueError, match=r"PreActResNet .*\(batch, 2, 12\).*got \(3, 1, 40\)"):
        net(torch.zeros(3, 1, 40, dtype=torch.float64))

"""Micro-batch gradient sums: in micro-batch order, in place only on tensors of their own."""

from __future__ import annotations

import torch

from partime.layerpar.pipeline import GradientSum


def test_sums_in_order_without_touching_autograd_outputs_that_alias():
    shared = torch.tensor([1.0, 2.0])  # autograd may hand one tensor to two parameters
    micro_batches = [
        [shared, shared, None],
        [torch.tensor([10.0, 20.0]), None, torch.tensor([5.0, 5.0])],
        [torch.tensor([100.0, 200.0]), torch.tensor([3.0, 3.0]), torch.tensor([1.0, 1.0])],
    ]
    total = GradientSum(3)
    for grads in micro_batches:
        total.add(grads)
    assert torch.equal(shared, torch.tensor([1.0, 2.0]))
    assert torch.equal(total.totals[0], torch.tensor([111.0, 222.0]))
    assert torch.equal(total.totals[1], torch.tensor([4.0, 5.0]))
    assert torch.equal(total.totals[2], torch.tensor([6.0, 6.0]))
    assert total.totals[2] is not micro_batches[1][2]  # a sum of two is a new tensor


def test_the_same_floating_point_sum_as_adding_in_order():
    g = torch.Generator().manual_seed(0)
    parts = [torch.randn(64, generator=g, dtype=torch.float64) * 10.0**k for k in range(6)]
    total = GradientSum(1)
    for part in parts:
        total.add([part])
    expected = parts[0]
    for part in parts[1:]:
        expected = expected + part
    assert torch.equal(total.totals[0], expected)

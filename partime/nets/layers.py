"""Layers shared by ContinuousNet and the ResNets: 1-D/2-D/flat convolutions, the
pre-activation unit, the plain (projection) block, stem, head, init, and residual units.

The input kind follows the per-sample input shape: (C, H, W) is an image (conv2d), (C, L) a
signal (conv1d), (F,) flat features (linear layers, no striding).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.flop_counter import FlopCounterMode

KINDS = {3: "image", 2: "signal", 1: "features"}
State = Tensor | tuple[Tensor, ...]


def input_kind(input_shape: Sequence[int]) -> str:
    """ "image", "signal" or "features" for a per-sample shape (C, H, W), (C, L) or (F,)."""
    shape = tuple(input_shape)
    if len(shape) not in KINDS or not all(isinstance(s, int) and s >= 1 for s in shape):
        raise ValueError(
            f"input_shape must be (C, H, W), (C, L) or (F,) with positive sizes, got {shape}"
        )
    return KINDS[len(shape)]


def conv(kind: str, c_in: int, c_out: int, kernel: int = 3, stride: int = 1) -> nn.Module:
    """Convolution without bias (padding keeps the size at stride 1); Linear for features."""
    if kind == "features":
        return nn.Linear(c_in, c_out, bias=False)
    layer = nn.Conv2d if kind == "image" else nn.Conv1d
    return layer(c_in, c_out, kernel, stride=stride, padding=kernel // 2, bias=False)


def batch_norm(kind: str, channels: int) -> nn.Module:
    return nn.BatchNorm2d(channels) if kind == "image" else nn.BatchNorm1d(channels)


def preact_unit(kind: str, c_in: int, c_out: int, stride: int = 1) -> nn.Sequential:
    """The residual branch BN-ReLU-conv3-BN-ReLU-conv3 (first conv strided)."""
    return nn.Sequential(
        batch_norm(kind, c_in),
        nn.ReLU(),
        conv(kind, c_in, c_out, 3, stride),
        batch_norm(kind, c_out),
        nn.ReLU(),
        conv(kind, c_out, c_out, 3),
    )


def stochastic_depth_scale(module: nn.Module, drop_rate: float) -> float | None:
    """Scale of a residual branch under stochastic depth: None when dropped (training only),
    1/(1-d) when kept in training, 1 in eval, so its expectation is the eval branch."""
    if not module.training or drop_rate == 0.0:
        return 1.0
    if float(torch.rand(())) < drop_rate:
        return None
    return 1.0 / (1.0 - drop_rate)


class PlainBlock(nn.Module):
    """x -> S(x) + scale·f(x): f the pre-activation unit, S identity or, when the shape changes,
    the projection BN-ReLU-conv1×1 (strided). A stage's first block and ContinuousNet's stitch."""

    def __init__(
        self,
        kind: str,
        c_in: int,
        c_out: int,
        stride: int = 1,
        scale: float = 1.0,
        drop_rate: float = 0.0,
    ) -> None:
        super().__init__()
        stride = 1 if kind == "features" else stride
        self.branch = preact_unit(kind, c_in, c_out, stride)
        self.shortcut = (
            nn.Identity()
            if c_in == c_out and stride == 1
            else nn.Sequential(
                batch_norm(kind, c_in), nn.ReLU(), conv(kind, c_in, c_out, 1, stride)
            )
        )
        self.scale = float(scale)
        self.drop_rate = float(drop_rate)

    def forward(self, x: Tensor) -> Tensor:
        return self.forward_with_skip(x)[0]

    def forward_with_skip(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """(S(x) + scale·f(x), S(x)): the output and the shortcut (LM-ResNet's restart)."""
        skip = self.shortcut(x)
        factor = stochastic_depth_scale(self, self.drop_rate)
        if factor is None:
            return skip, skip
        return torch.add(skip, self.branch(x), alpha=self.scale * factor), skip


class Head(nn.Module):
    """BN-ReLU, global average pool (images, signals), linear classifier."""

    def __init__(self, kind: str, channels: int, n_classes: int) -> None:
        super().__init__()
        self.norm = batch_norm(kind, channels)
        self.fc = nn.Linear(channels, n_classes)

    def forward(self, x: Tensor) -> Tensor:
        x = torch.relu(self.norm(x))
        return self.fc(x.flatten(2).mean(-1) if x.ndim > 2 else x)


def check_input(x: Tensor, input_shape: tuple[int, ...], owner: str) -> None:
    """ValueError unless ``x`` is (batch, *input_shape), saying expected and got."""
    if x.ndim < 2 or tuple(x.shape[1:]) != input_shape:
        expected = ", ".join(map(str, input_shape))
        raise ValueError(
            f"{owner} expects inputs of shape (batch, {expected}) (its stem's input), "
            f"got {tuple(x.shape)}"
        )


def stem(kind: str, c_in: int, width: int) -> nn.Module:
    """The first layer: conv3 (c_in -> width), linear for features."""
    return conv(kind, c_in, width, 3)


def he_init(module: nn.Module) -> None:
    """The authors' init: convs N(0, 2/(k·out_channels)), BN weight 1 and bias 0, linear
    layers their default."""
    for sub in module.modules():
        if isinstance(sub, nn.Conv1d | nn.Conv2d):
            fan_out = math.prod(sub.kernel_size) * sub.out_channels
            nn.init.normal_(sub.weight, 0.0, math.sqrt(2.0 / fan_out))
        elif isinstance(sub, nn.Linear):
            sub.reset_parameters()
        elif isinstance(sub, nn.BatchNorm1d | nn.BatchNorm2d):
            nn.init.ones_(sub.weight)
            nn.init.zeros_(sub.bias)


@dataclass(frozen=True)
class ResidualUnit:
    """One unit of a network's depth: ``forward(state) -> state``; ``cost`` is rough floating
    point operations per sample of one forward (matmuls and convolutions only)."""

    name: str
    forward: Callable[[State], State]
    cost: float

    def __call__(self, state: State) -> State:
        return self.forward(state)


def measure_units(
    net: nn.Module, steps: Sequence[tuple[str, Callable[[State], State]]], example: Tensor
) -> list[ResidualUnit]:
    """ResidualUnits of ``steps`` with the costs of running them on one ``example`` sample
    (eval mode, no gradients; the net's mode is restored)."""
    training = net.training
    units = []
    try:
        net.eval()
        state: Any = example[:1]
        with torch.no_grad():
            for name, forward in steps:
                with FlopCounterMode(display=False) as counter:
                    state = forward(state)
                units.append(ResidualUnit(name, forward, float(counter.get_total_flops())))
    finally:
        net.train(training)
    return units

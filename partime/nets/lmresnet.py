"""Pre-activation ResNet and LM-ResNet (linear multistep in depth), with stochastic depth.

Both are stem -> stages of blocks -> head, for images, signals and flat features, built from
the blocks of ContinuousNet (``partime.nets.layers``). Stage s (width ``width·2^s``) starts
with a plain block x -> S(x) + f(x) (S the projection shortcut when the shape changes); its
other blocks are residual: ResNet u_{n+1} = u_n + f_n(u_n), LM-ResNet
u_{n+1} = (1 − k_n)u_n + k_n u_{n−1} + f_n(u_n) with one scalar k_n ~ U(−0.1, 0) per block.
After a plain block u_{n−1} is reset to S(u_n), the input mapped into the new stage.

Stochastic depth: block l of L (l = 1..L) drops its branch f with probability l/L·(1 − p_L)
in training (``final_survival`` = p_L), kept branches scaled by 1/(1 − d); eval is
deterministic with every branch at weight 1.

Residual units (as ``ContinuousNet.units``): "stem", "block{l}", "head". For LM-ResNet the
state crossing a unit boundary is the tuple (u_n, u_{n−1}); for the ResNet a tensor.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from partime.nets.checks import parse_counts, positive_int
from partime.nets.layers import (
    Head,
    PlainBlock,
    ResidualUnit,
    State,
    check_input,
    he_init,
    input_kind,
    measure_units,
    stem,
    stochastic_depth_scale,
)


@dataclass(frozen=True)
class ResNetConfig:
    """Architecture of a PreActResNet / LMResNet, validated on construction."""

    input_shape: tuple[int, ...] = field(
        metadata={"help": "per-sample input shape: (C, H, W) image, (C, L) signal, (F,) features"}
    )
    n_classes: int = field(metadata={"help": "number of output classes"})
    blocks: str = field(default="3-3-3", metadata={"help": "blocks per stage ('3-3-3': 20 layers)"})
    width: int = field(default=16, metadata={"help": "channels of the first stage"})
    final_survival: float = field(
        default=1.0, metadata={"help": "stochastic depth: survival p_L of the last block (1: off)"}
    )

    def __post_init__(self) -> None:
        object.__setattr__(self, "input_shape", tuple(self.input_shape))
        input_kind(self.input_shape)
        if positive_int(self.n_classes, "n_classes") < 2:
            raise ValueError(f"n_classes must be >= 2, got n_classes={self.n_classes}")
        positive_int(self.width, "width")
        parse_counts(self.blocks, "blocks")
        if not 0.0 < self.final_survival <= 1.0:
            raise ValueError(f"final_survival must be in (0, 1], got {self.final_survival}")

    @property
    def depth(self) -> int:
        """Layers with weights: two convolutions per block, the stem and the classifier."""
        return 2 * sum(parse_counts(self.blocks, "blocks")) + 2


class LMBlock(PlainBlock):
    """Residual block with multistep coefficient k: (u, u_prev) -> (1−k)u + k·u_prev + f(u)."""

    def __init__(self, kind: str, channels: int, drop_rate: float = 0.0) -> None:
        super().__init__(kind, channels, channels, drop_rate=drop_rate)
        self.k = nn.Parameter(torch.empty(()).uniform_(-0.1, 0.0))

    def multistep(self, u: Tensor, u_prev: Tensor) -> Tensor:
        combined = torch.lerp(u, u_prev, self.k)  # (1 − k)u + k·u_prev
        factor = stochastic_depth_scale(self, self.drop_rate)
        if factor is None:
            return combined
        return torch.add(combined, self.branch(u), alpha=factor)


class PreActResNet(nn.Module):
    """Pre-activation ResNet of ``config``; ``forward(x)`` -> logits (batch, n_classes)."""

    multistep = False

    def __init__(self, config: ResNetConfig) -> None:
        super().__init__()
        self.config = config
        kind = input_kind(config.input_shape)
        counts = parse_counts(config.blocks, "blocks")
        total = sum(counts)
        rates = [l / total * (1.0 - config.final_survival) for l in range(1, total + 1)]  # noqa: E741
        self.stem = stem(kind, config.input_shape[0], config.width)
        blocks: list[nn.Module] = []
        c_in = config.width
        for s, count in enumerate(counts):
            width = config.width * 2**s
            stride = 1 if s == 0 else 2
            blocks.append(PlainBlock(kind, c_in, width, stride, drop_rate=rates[len(blocks)]))
            for _ in range(count - 1):
                blocks.append(self._residual_block(kind, width, rates[len(blocks)]))
            c_in = width
        self.blocks = nn.ModuleList(blocks)
        self.head = Head(kind, c_in, config.n_classes)
        he_init(self)

    @staticmethod
    def _residual_block(kind: str, width: int, drop_rate: float) -> nn.Module:
        return PlainBlock(kind, width, width, drop_rate=drop_rate)

    @property
    def drop_rates(self) -> list[float]:
        """Stochastic-depth drop probability of every block, in order."""
        return [block.drop_rate for block in self.blocks]

    def forward(self, x: Tensor) -> Tensor:
        check_input(x, self.config.input_shape, type(self).__name__)
        state: State = x
        for _, forward in self._steps():
            state = forward(state)
        return state

    def _steps(self) -> list[tuple[str, Callable[[State], State]]]:
        steps: list = [("stem", self.stem)]
        steps.extend((f"block{l}", block) for l, block in enumerate(self.blocks, 1))  # noqa: E741
        steps.append(("head", self.head))
        return steps

    def units(self) -> list[ResidualUnit]:
        """The net as an ordered list of residual units (see the module docstring)."""
        weight = self.head.fc.weight
        example = torch.zeros(1, *self.config.input_shape, dtype=weight.dtype, device=weight.device)
        return measure_units(self, self._steps(), example)


class LMResNet(PreActResNet):
    """LM-ResNet of ``config``: the residual blocks are linear two-step methods in depth."""

    multistep = True

    @staticmethod
    def _residual_block(kind: str, width: int, drop_rate: float) -> nn.Module:
        return LMBlock(kind, width, drop_rate)

    def _steps(self) -> list[tuple[str, Callable[[State], State]]]:
        steps: list = [("stem", _Start(self.stem))]
        for l, block in enumerate(self.blocks, 1):  # noqa: E741
            unit = _Multistep(block) if isinstance(block, LMBlock) else _Restart(block)
            steps.append((f"block{l}", unit))
        steps.append(("head", _Finish(self.head)))
        return steps

    @property
    def ks(self) -> list[float]:
        """The learned multistep coefficients k_n, in block order."""
        return [float(b.k.detach()) for b in self.blocks if isinstance(b, LMBlock)]

    def no_weight_decay(self) -> set[str]:
        """Names of the parameters trained without weight decay: the k_n."""
        return {name for name, _ in self.named_parameters() if name.endswith(".k")}


@dataclass(frozen=True)
class _Start:
    stem: nn.Module

    def __call__(self, x: Tensor) -> tuple[Tensor, Tensor]:
        u = self.stem(x)
        return u, u


@dataclass(frozen=True)
class _Restart:
    """A plain block: u_{n+1} = S(u_n) + f(u_n), then u_{n−1} := S(u_n)."""

    block: PlainBlock

    def __call__(self, state: tuple[Tensor, Tensor]) -> tuple[Tensor, Tensor]:
        return self.block.forward_with_skip(state[0])


@dataclass(frozen=True)
class _Multistep:
    block: LMBlock

    def __call__(self, state: tuple[Tensor, Tensor]) -> tuple[Tensor, Tensor]:
        u, u_prev = state
        return self.block.multistep(u, u_prev), u


@dataclass(frozen=True)
class _Finish:
    head: nn.Module

    def __call__(self, state: tuple[Tensor, Tensor]) -> Tensor:
        return self.head(state[0])

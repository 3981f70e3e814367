"""ContinuousNet: stem -> (stitch, OdeBlock)* -> head, for images, signals and flat features.

Stage s has width ``width·2^s``: a stitch (the plain pre-activation block x_down + ε_s·h; strided
from the second stage on) then an OdeBlock ẋ = ε·R(x, θ(t)) whose rate R is the pre-activation
unit BN-ReLU-conv-BN-ReLU-conv with θ in a basis of ``units[s]`` pieces. With Euler, piecewise
constant θ and one step per piece the net is a pre-activation ResNet (``PreActResNet`` with
blocks "3-3-3" for units "2-2-2").

Residual units, the interface layer-parallel training splits: ``net.units()`` is the net as an
ordered list of ``ResidualUnit(name, forward, cost)``: "stem"; per stage s "stage{s}.stitch" and
one unit per OdeBlock step "stage{s}.step{i}" (``forward = block.run_steps(x, i, i + 1)``);
"head". Folding the units over an input gives ``net(x)``; the state crossing every boundary is
a tensor (batch, C, ...). ``cost`` is rough floating-point operations per sample of one
forward. A range of steps i..j of a stage is also ``block(x, i / n, j / n)`` (a Propagator).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field, replace

import torch
from torch import Tensor, nn

from partime.integrators import get_tableau
from partime.nets.basis import make_basis
from partime.nets.checks import parse_counts, positive_int
from partime.nets.layers import (
    Head,
    PlainBlock,
    ResidualUnit,
    check_input,
    he_init,
    input_kind,
    measure_units,
    preact_unit,
    stem,
)
from partime.nets.odeblock import OdeBlock

PerStage = int | float | tuple | None


@dataclass(frozen=True)
class ContinuousNetConfig:
    """Architecture of a ContinuousNet, validated on construction."""

    input_shape: tuple[int, ...] = field(
        metadata={"help": "per-sample input shape: (C, H, W) image, (C, L) signal, (F,) features"}
    )
    n_classes: int = field(metadata={"help": "number of output classes"})
    units: str = field(default="2-2-2", metadata={"help": "OdeBlock pieces per stage, '2-2-2'"})
    width: int = field(default=16, metadata={"help": "channels of the first stage (α)"})
    scheme: str = field(default="euler", metadata={"help": "RK tableau of every OdeBlock"})
    basis: str = field(default="pc", metadata={"help": "basis in depth: pc, linear or fem"})
    n_steps: PerStage = field(
        default=None, metadata={"help": "steps per OdeBlock (one number or one per stage)"}
    )
    epsilon: PerStage = field(
        default=None, metadata={"help": "ε of each OdeBlock (default: its number of pieces)"}
    )
    stitch_epsilon: float = field(default=1.0, metadata={"help": "ε_s of the stitches"})
    refine_steps: str = field(
        default="keep",
        metadata={
            "help": "steps at refinement: keep (the output is unchanged) or double (one step "
            "per piece stays, as the authors; the output changes by the discretization)"
        },
    )

    def __post_init__(self) -> None:
        object.__setattr__(self, "input_shape", tuple(self.input_shape))
        input_kind(self.input_shape)
        if positive_int(self.n_classes, "n_classes") < 2:
            raise ValueError(f"n_classes must be >= 2, got n_classes={self.n_classes}")
        positive_int(self.width, "width")
        get_tableau(self.scheme)
        make_basis(self.basis, 1)
        if self.refine_steps not in ("keep", "double"):
            raise ValueError(f"refine_steps must be 'keep' or 'double', got {self.refine_steps!r}")
        for name in ("n_steps", "epsilon"):
            value = getattr(self, name)
            if isinstance(value, list):
                object.__setattr__(self, name, tuple(value))
        self.steps()
        self.epsilons()

    @property
    def pieces(self) -> tuple[int, ...]:
        return parse_counts(self.units, "units")

    def steps(self) -> tuple[int, ...]:
        """Steps of each stage's OdeBlock (default one per piece)."""
        values = _per_stage(self.n_steps, self.pieces, "n_steps")
        return tuple(positive_int(v, "n_steps") for v in values)

    def epsilons(self) -> tuple[float, ...]:
        """ε of each stage's OdeBlock (default its number of pieces)."""
        return tuple(float(v) for v in _per_stage(self.epsilon, self.pieces, "epsilon"))


def _per_stage(value: PerStage, default: tuple[int, ...], name: str) -> tuple:
    if value is None:
        return default
    if isinstance(value, tuple):
        if len(value) != len(default):
            raise ValueError(f"{name} has {len(value)} entries for {len(default)} stages: {value}")
        return value
    return (value,) * len(default)


class ContinuousNet(nn.Module):
    """The network of ``config`` (see the module docstring); ``forward(x)`` -> logits."""

    def __init__(self, config: ContinuousNetConfig) -> None:
        super().__init__()
        self.config = config
        kind = input_kind(config.input_shape)
        widths = [config.width * 2**s for s in range(len(config.pieces))]
        self.stem = stem(kind, config.input_shape[0], widths[0])
        self.stitches = nn.ModuleList()
        blocks = []
        state = torch.zeros(1, *config.input_shape)
        with torch.no_grad():
            state = self.stem.eval()(state)
            stages = zip(widths, config.pieces, config.steps(), config.epsilons(), strict=True)
            for s, (width, pieces, n_steps, epsilon) in enumerate(stages):
                stitch = PlainBlock(
                    kind, state.shape[1], width, 1 if s == 0 else 2, config.stitch_epsilon
                )
                self.stitches.append(stitch)
                state = stitch.eval()(state)
                rate = preact_unit(kind, width, width)
                blocks.append(
                    OdeBlock(
                        rate, pieces, config.basis, config.scheme, n_steps, epsilon, he_init,
                        state_shape=state.shape[1:],
                    )
                )  # fmt: skip
        self.blocks = nn.ModuleList(blocks)
        self.head = Head(kind, widths[-1], config.n_classes)
        for module in (self.stem, self.stitches, self.head):
            he_init(module)
        self.train()

    def forward(self, x: Tensor) -> Tensor:
        """Logits (batch, n_classes) of inputs (batch, *input_shape)."""
        check_input(x, self.config.input_shape, "ContinuousNet")
        x = self.stem(x)
        for stitch, block in zip(self.stitches, self.blocks, strict=True):
            x = block(stitch(x))
        return self.head(x)

    def manifest(self, scheme: str, n_steps: int | tuple[int, ...]) -> ContinuousNet:
        """The same parameters and buffers (shared storage) with every OdeBlock discretized by
        ``scheme`` with ``n_steps`` (one number, or one per stage)."""
        config = replace(self.config, scheme=scheme, n_steps=n_steps)
        steps = config.steps()
        blocks = [b.manifest(scheme, n) for b, n in zip(self.blocks, steps, strict=True)]
        net = copy.copy(self)
        net._modules = dict(self._modules)
        net.blocks = nn.ModuleList(blocks)
        net.config = replace(config, n_steps=steps, epsilon=self.config.epsilons())
        return net

    def refine(self, double_steps: bool | None = None) -> ContinuousNet:
        """A copy with twice the pieces in every OdeBlock (new parameters). The steps are kept,
        and with them the output, unless ``double_steps`` (default: ``config.refine_steps``)."""
        if double_steps is None:
            double_steps = self.config.refine_steps == "double"
        net = copy.deepcopy(self)
        net.blocks = nn.ModuleList([block.refine(double_steps) for block in net.blocks])
        net.config = replace(
            self.config,
            units="-".join(str(2 * p) for p in self.config.pieces),
            n_steps=tuple(block.n_steps for block in net.blocks),
            epsilon=self.config.epsilons(),
        )
        return net

    def units(self) -> list[ResidualUnit]:
        """The net as an ordered list of residual units (see the module docstring)."""
        steps: list = [("stem", self.stem)]
        for s, (stitch, block) in enumerate(zip(self.stitches, self.blocks, strict=True)):
            steps.append((f"stage{s}.stitch", stitch))
            steps.extend((f"stage{s}.step{i}", _BlockSteps(block, i)) for i in range(block.n_steps))
        steps.append(("head", self.head))
        example = torch.zeros(1, *self.config.input_shape, dtype=self.head.fc.weight.dtype)
        return measure_units(self, steps, example.to(self.head.fc.weight.device))


@dataclass(frozen=True)
class _BlockSteps:
    """Step i of an OdeBlock as a function of the state (a residual unit's forward)."""

    block: OdeBlock
    step: int

    def __call__(self, x: Tensor) -> Tensor:
        return self.block.run_steps(x, self.step, self.step + 1)

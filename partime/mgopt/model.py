"""The seed's ResNet at every level of the hierarchy, with its parameters in one flat vector.

Level l (1 = coarsest … L = finest) has K_l = K / 2^{L−l} residual layers on the same [0, T]:
y_0 = Q x, y_{k+1} = y_k + Δt_l·ReLU(W_k y_k + b_k), logits = W_K y_K + b_K, softmax
cross-entropy averaged over samples. The layer parameters are stacked (K_l, v·v + v): row k holds
W_k (row-major) then b_k, i.e. the coefficients of a piecewise-constant basis in depth with K_l
pieces. The flat vector of a level is [layers | Q | W_K | b_K]; the lift and head are shared by
all levels. Tikhonov regularisation β_l Σ_k ‖θ_k‖² with β_l = β·2^{L−l} on the layers (the coarse
regulariser equals the fine one of the prolongated parameters, each coarse layer covering two
fine ones) and β‖·‖² on the lift and head (shared, not scaled); eq. (8) has no Δt factor.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F  # noqa: N812 - the usual alias

from partime.mgopt.fused import resolve_chain
from partime.mgopt.transfer import split_layers


@dataclass(frozen=True)
class ResNetSpec:
    """The finest network and its hierarchy (validated on construction)."""

    in_features: int = field(metadata={"help": "q, features of one input sample"})
    width: int = field(metadata={"help": "v, the state width of every residual layer"})
    classes: int = field(metadata={"help": "m, number of classes"})
    depth: int = field(default=2048, metadata={"help": "K, residual layers on the finest level"})
    levels: int = field(default=1, metadata={"help": "L, levels; K_l = K / 2^(L-l)"})
    beta: float = field(default=1e-4, metadata={"help": "Tikhonov β on the finest level"})
    t_end: float = field(default=1.0, metadata={"help": "T, depth interval [0, T] of every level"})

    def __post_init__(self) -> None:
        for name in ("in_features", "width", "classes", "depth", "levels"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        if self.classes < 2:
            raise ValueError(f"classes must be >= 2, got {self.classes}")
        check_depth(self.depth, self.levels)
        if not (self.beta >= 0 and math.isfinite(self.beta)):
            raise ValueError(f"beta must be finite and >= 0, got {self.beta}")
        if not (self.t_end > 0 and math.isfinite(self.t_end)):
            raise ValueError(f"t_end must be finite and > 0, got {self.t_end}")

    def level_depth(self, level: int) -> int:
        """K_l, layers of level l (1 = coarsest)."""
        return self.depth >> (self.levels - self._check_level(level))

    def level_beta(self, level: int) -> float:
        """β_l = β·2^{L−l}, the regularisation of the layer parameters of level l."""
        return self.beta * 2.0 ** (self.levels - self._check_level(level))

    @property
    def layer_size(self) -> int:
        """Parameters of one residual layer: v·v + v."""
        return self.width * (self.width + 1)

    @property
    def shared_size(self) -> int:
        """Parameters of the lift Q (v, q) and the head W_K (m, v), b_K (m)."""
        return self.width * self.in_features + self.classes * (self.width + 1)

    def _check_level(self, level: int) -> int:
        if not 1 <= level <= self.levels:
            raise ValueError(f"level {level} is not in 1..{self.levels}")
        return level


def check_depth(depth: int, levels: int) -> None:
    """ValueError unless ``levels`` halvings of ``depth`` leave whole layers (≥ 1 on level 1)."""
    if levels < 1:
        raise ValueError(f"need at least one level, got {levels}")
    if 2 ** (levels - 1) > depth:
        raise ValueError(
            f"{levels} levels need depth >= 2^{levels - 1} = {2 ** (levels - 1)}, got {depth}: "
            f"at most {depth.bit_length()} levels for depth {depth}"
        )
    if depth % 2 ** (levels - 1):
        raise ValueError(
            f"depth {depth} is not divisible by 2^(levels-1) = {2 ** (levels - 1)}, "
            f"so {levels} levels cannot halve it down to whole layers"
        )


@dataclass(frozen=True)
class LevelParams:
    """Views into a level's flat vector: lift Q (v, q), W (K, v, v), b (K, v), W_K (m, v),
    b_K (m), and the (K, v·v + v) layer block they come from."""

    layers: torch.Tensor
    lift: torch.Tensor
    weight: torch.Tensor
    bias: torch.Tensor
    head_weight: torch.Tensor
    head_bias: torch.Tensor


class ResNetLevels:
    """The loss L_l(θ), its gradient and predictions of every level of one ResNetSpec.

    ``layer_range(l) = (k0, k1)`` is the slice of level l's layers this object holds (all of them
    serially; a contiguous piece under a depth partition).
    """

    def __init__(self, spec: ResNetSpec, chain: str = "auto") -> None:
        self.spec = spec
        self.chain_name = chain
        self._chain = resolve_chain(chain)

    def layer_range(self, level: int) -> tuple[int, int]:
        return 0, self.spec.level_depth(level)

    def size(self, level: int) -> int:
        """Length of level l's flat parameter vector."""
        k0, k1 = self.layer_range(level)
        return (k1 - k0) * self.spec.layer_size + self.spec.shared_size

    def split(self, theta: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(layers (K, v·v + v) view, shared (s,) view) of a flat vector."""
        return split_layers(theta, self.spec.layer_size, self.spec.shared_size)

    def unpack(self, theta: torch.Tensor) -> LevelParams:
        """Named views into a flat parameter vector of any level."""
        spec = self.spec
        v, q, m = spec.width, spec.in_features, spec.classes
        layers, shared = self.split(theta)
        lift, head_weight, head_bias = shared.split((v * q, m * v, m))
        return LevelParams(
            layers=layers,
            lift=lift.view(v, q),
            weight=layers[:, : v * v].reshape(-1, v, v),
            bias=layers[:, v * v :],
            head_weight=head_weight.view(m, v),
            head_bias=head_bias,
        )

    def init(self, seed: int, dtype: torch.dtype = torch.float64) -> torch.Tensor:
        """Finest-level parameters: glorot-uniform weights (Keras' default), zero biases."""
        spec = self.spec
        v, q, m, depth = spec.width, spec.in_features, spec.classes, spec.depth
        generator = torch.Generator().manual_seed(seed)

        def glorot(*shape: int) -> torch.Tensor:
            limit = math.sqrt(6.0 / (shape[-1] + shape[-2]))
            return (2 * torch.rand(shape, generator=generator, dtype=dtype) - 1) * limit

        weight, lift, head_weight = glorot(depth, v, v), glorot(v, q), glorot(m, v)
        layers = torch.cat([weight.reshape(depth, v * v), torch.zeros(depth, v, dtype=dtype)], 1)
        k0, k1 = self.layer_range(spec.levels)
        shared = torch.cat([lift.flatten(), head_weight.flatten(), torch.zeros(m, dtype=dtype)])
        return torch.cat([layers[k0:k1].flatten(), shared])

    def _features(self, level: int, params: LevelParams, x: torch.Tensor) -> torch.Tensor:
        dt = self.spec.t_end / self.spec.level_depth(level)
        return self._chain(x @ params.lift.T, params.weight, params.bias, dt)

    def logits(self, level: int, theta: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """(N, m) class scores of inputs x (N, q) by level l's network (no gradient)."""
        with torch.no_grad():
            params = self.unpack(theta)
            return self._features(level, params, x) @ params.head_weight.T + params.head_bias

    def regularizer(self, level: int, params: LevelParams) -> torch.Tensor:
        shared_sq = params.lift.square().sum() + params.head_weight.square().sum()
        shared_sq = shared_sq + params.head_bias.square().sum()
        return (
            self.spec.level_beta(level) * params.layers.square().sum() + self.spec.beta * shared_sq
        )

    def loss(self, level: int, theta: torch.Tensor, x: torch.Tensor, labels: torch.Tensor) -> float:
        """L_l(θ): mean cross-entropy plus the regulariser (forward only)."""
        with torch.no_grad():
            params = self.unpack(theta)
            data = F.cross_entropy(self.logits(level, theta, x), labels)
            return float(data + self.regularizer(level, params))

    def value_and_grad(
        self, level: int, theta: torch.Tensor, x: torch.Tensor, labels: torch.Tensor
    ) -> tuple[float, torch.Tensor]:
        """(L_l(θ), ∇L_l(θ)) on the batch x (N, q), labels (N,)."""
        theta = theta.detach().requires_grad_(True)
        params = self.unpack(theta)
        features = self._features(level, params, x)
        logits = features @ params.head_weight.T + params.head_bias
        loss = F.cross_entropy(logits, labels) + self.regularizer(level, params)
        (grad,) = torch.autograd.grad(loss, theta)
        return float(loss.detach()), grad

    def dot(self, a: torch.Tensor, b: torch.Tensor) -> float:
        """⟨a, b⟩ of two flat vectors of one level (summed over ranks when partitioned)."""
        return float(torch.dot(a, b))

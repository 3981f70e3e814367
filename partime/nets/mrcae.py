"""MrCAE, the multiresolution convolutional autoencoder (Liu, Ponce, Brunton, Kutz), and
the dense RED-Net baseline. Choices follow the authors' code where it differs from the
paper: replicate-pad and crop on the deepen path, constant-ε deepen conv, masks from
0.5·mean + 0.5·max of the squared error, dilated by one pixel.

A level k network maps (N, 1, H_k, W_k) snapshots to reconstructions of the same size:
  f_k(x) = crop(D_k(pad(f_{k−1}(C_k(x))))) + Σ_j D_kj(M_kj · act(C_kj(x)))
with C a 3×3 stride-2 conv, D a 3×3 stride-2 deconv, f_{−1} = identity and M_kj the widen
group's mask on the latent grid. Sizes are 2^p − 1: 127 → 63 → 31, latent 31 → 15.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch
import torch.nn.functional as F  # noqa: N812
from torch import Tensor, nn

__all__ = [
    "ACTIVATIONS",
    "MrCAE",
    "MrCAEConfig",
    "REDNet",
    "REDNetConfig",
    "dilate",
    "error_map",
    "level_shape",
    "omega_loss",
    "parameter_count",
    "pool_error",
    "subsample",
    "upsample",
]

ACTIVATIONS = {"none": nn.Identity, "relu": nn.ReLU}
#: The bilinear prolongation stencil (deepen deconv init and the fixed upsampling).
BILINEAR = ((0.25, 0.5, 0.25), (0.5, 1.0, 0.5), (0.25, 0.5, 0.25))


def level_shape(shape: tuple[int, int], n_levels: int, level: int) -> tuple[int, int]:
    """Snapshot size at ``level`` (0 = coarsest) when the finest (level n_levels − 1) is
    ``shape``: each level down halves (H + 1)."""
    steps = n_levels - 1 - level
    return tuple((s + 1) // 2**steps - 1 for s in shape)  # type: ignore[return-value]


def subsample(x: Tensor) -> Tensor:
    """Centre subsampling (N, C, H, W) -> (N, C, (H−1)/2, (W−1)/2): the fixed 3×3 stride-2
    conv with centre weight 1 that makes the coarser levels' data."""
    return x[..., 1::2, 1::2]


def _bilinear(x: Tensor) -> Tensor:
    return torch.tensor(BILINEAR, dtype=x.dtype, device=x.device)


def _prolong(x: Tensor, dim: int) -> Tensor:
    """1-D bilinear prolongation along ``dim``: h -> 2h + 1 values; the coarse values land on
    the odd positions, the even ones average their neighbours (the ends repeat the edge)."""
    dim = dim % x.dim()
    first, last = x.narrow(dim, 0, 1), x.narrow(dim, x.shape[dim] - 1, 1)
    padded = torch.cat([first, x, last], dim)
    h = x.shape[dim]
    middles = 0.5 * (padded.narrow(dim, 0, h + 1) + padded.narrow(dim, 1, h + 1))
    pairs = torch.stack([middles.narrow(dim, 0, h), x], dim + 1).flatten(dim, dim + 1)
    return torch.cat([pairs, middles.narrow(dim, h, 1)], dim)


def upsample(x: Tensor) -> Tensor:
    """Bilinear prolongation (N, C, h, w) -> (N, C, 2h + 1, 2w + 1), what the code computes as
    replicate-pad 1, stride-2 deconv with the bilinear stencil, crop 2 (here separably, as
    slices: torch's 1-channel transposed conv was ~10x slower on the CPU)."""
    return _prolong(_prolong(x, -2), -1)


def pool_error(error: Tensor) -> Tensor:
    """3×3 average with stride 2, no padding: a per-pixel map (H, W) -> the latent grid."""
    return F.avg_pool2d(error[None, None], 3, stride=2)[0, 0]


def dilate(mask: Tensor) -> Tensor:
    """Grow a 0/1 map (h, w) by one pixel in every direction (3×3 square)."""
    return F.max_pool2d(mask[None, None], 3, stride=1, padding=1)[0, 0]


def error_map(output: Tensor, target: Tensor) -> Tensor:
    """0.5·mean_t + 0.5·max_t of the squared error: (N, 1, H, W) -> (H, W) (the code's mask
    feedback; the paper's eq. 3.8 says the mean only)."""
    squared = (output - target).square()[:, 0]
    return 0.5 * squared.mean(0) + 0.5 * squared.amax(0)


def omega_loss(output: Tensor, target: Tensor, omega: float = 0.5) -> Tensor:
    """ω·mean(err²) + (1 − ω)·max over pixels of mean over snapshots of err² (eq. 3.1)."""
    squared = (output - target).square()
    return omega * squared.mean() + (1 - omega) * squared.mean(0).max()


class SingleChannelConv(nn.Conv2d):
    """3×3 stride-2 conv from 1 channel. On the CPU it runs as a grouped conv with the batch as
    the groups: torch's 1-channel conv kernels were 2–7× slower there (measured)."""

    def __init__(self, out_channels: int) -> None:
        super().__init__(1, out_channels, 3, stride=2)

    def forward(self, x: Tensor) -> Tensor:
        if x.device.type != "cpu" or x.shape[1] != 1:
            return super().forward(x)
        n, c = x.shape[0], self.out_channels
        y = F.conv2d(x.reshape(1, n, *x.shape[2:]), self.weight.repeat(n, 1, 1, 1),
                     self.bias.repeat(n), stride=2, groups=n)  # fmt: skip
        return y.view(n, c, *y.shape[2:])


class SingleChannelDeconv(nn.ConvTranspose2d):
    """3×3 stride-2 transposed conv to 1 channel (batch-grouped on the CPU, as above)."""

    def __init__(self, in_channels: int) -> None:
        super().__init__(in_channels, 1, 3, stride=2)

    def forward(self, x: Tensor) -> Tensor:
        if x.device.type != "cpu":
            return super().forward(x)
        n = x.shape[0]
        y = F.conv_transpose2d(x.reshape(1, -1, *x.shape[2:]), self.weight.repeat(n, 1, 1, 1),
                               self.bias.repeat(n), stride=2, groups=n)  # fmt: skip
        return y.view(n, 1, *y.shape[2:])


def _check_common(shape: tuple[int, int], activation: str, init_std: float) -> None:
    if len(shape) != 2 or not all(
        isinstance(s, int) and s >= 3 and (s + 1) & s == 0 for s in shape
    ):
        raise ValueError(f"shape must be two sizes of the form 2^p − 1 (e.g. 127), got {shape}")
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {tuple(ACTIVATIONS)}, got {activation!r}")
    if not init_std >= 0:
        raise ValueError(f"init_std must be >= 0, got {init_std}")


@dataclass(frozen=True)
class MrCAEConfig:
    """The grown architecture: finest snapshot ``shape``, ``n_levels``, and for every level
    built so far the channels of its widen groups (``widths[k]``; empty: deepen only)."""

    shape: tuple[int, int] = (127, 127)
    n_levels: int = 3
    widths: tuple[tuple[int, ...], ...] = ()
    activation: str = "none"
    init_std: float = 0.01

    def __post_init__(self) -> None:
        _check_common(self.shape, self.activation, self.init_std)
        if not isinstance(self.n_levels, int) or self.n_levels < 1:
            raise ValueError(f"n_levels must be a positive integer, got {self.n_levels!r}")
        if min(level_shape(self.shape, self.n_levels, 0)) < 3:
            raise ValueError(f"{self.shape} is too small for {self.n_levels} levels")
        if len(self.widths) > self.n_levels or any(n < 1 for group in self.widths for n in group):
            raise ValueError(f"widths must be <= n_levels tuples of positive ints: {self.widths}")


class _Level(nn.Module):
    """One level's deepen pair (encode, decode) and its widen groups with their masks."""

    def __init__(self, activation: str, init_std: float, latent: tuple[int, int]) -> None:
        super().__init__()
        self.activation = ACTIVATIONS[activation]()
        self.latent = latent
        self.encode = SingleChannelConv(1)
        self.decode = SingleChannelDeconv(1)
        with torch.no_grad():  # subsampling and bilinear stencils, perturbed by ε
            self.encode.weight.fill_(init_std)
            self.encode.weight[0, 0, 1, 1] += 1.0
            self.decode.weight.uniform_(-init_std, init_std).add_(torch.tensor(BILINEAR))
            for bias in (self.encode.bias, self.decode.bias):
                bias.uniform_(-init_std, init_std)
        self.group_encoders = nn.ModuleList()
        self.group_decoders = nn.ModuleList()

    def add_group(self, channels: int, unresolved: Tensor, init_std: float) -> None:
        """A widen group of ``channels`` acting on the latent pixels (h, w) that are
        ``unresolved`` (1) or next to one."""
        encoder = SingleChannelConv(channels)
        decoder = SingleChannelDeconv(channels)
        with torch.no_grad():
            for p in (*encoder.parameters(), *decoder.parameters()):
                p.uniform_(-init_std, init_std)
        like = self.encode.weight
        self.group_encoders.append(encoder.to(like))
        self.group_decoders.append(decoder.to(like))
        name = f"unresolved_{len(self.group_encoders) - 1}"
        self.register_buffer(name, unresolved.to(like).clone())

    def unresolved(self) -> list[Tensor]:
        """Each group's 0/1 map of unresolved latent pixels (before dilation)."""
        return [getattr(self, f"unresolved_{j}") for j in range(len(self.group_encoders))]

    def forward(self, x: Tensor, inner: nn.Module | None) -> Tensor:
        z = self.encode(x)
        if inner is not None:
            z = inner(z)
        y = self.decode(F.pad(z, (1, 1, 1, 1), mode="replicate"))[..., 2:-2, 2:-2]
        for encoder, decoder, unresolved in zip(
            self.group_encoders, self.group_decoders, self.unresolved(), strict=True
        ):
            y = y + decoder(self.activation(encoder(x)) * dilate(unresolved))
        return y


class MrCAE(nn.Module):
    """Grows by ``deepen()`` (next finer level) and ``widen(channels, mask)`` (a group on the
    current level); ``forward`` reconstructs snapshots at the current level's resolution."""

    def __init__(self, config: MrCAEConfig | None = None) -> None:
        super().__init__()
        self.config = config or MrCAEConfig()
        self.levels = nn.ModuleList()
        widths = self.config.widths
        self.config = dataclasses.replace(self.config, widths=())
        for groups in widths:
            self.deepen()
            for channels in groups:
                self.widen(channels, torch.ones(self.latent_shape()))

    @property
    def level(self) -> int:
        """The current (finest built) level; −1 before the first deepen."""
        return len(self.levels) - 1

    def level_shape(self, level: int | None = None) -> tuple[int, int]:
        level = self.level if level is None else level
        return level_shape(self.config.shape, self.config.n_levels, level)

    def latent_shape(self, level: int | None = None) -> tuple[int, int]:
        return tuple((s - 1) // 2 for s in self.level_shape(level))  # type: ignore[return-value]

    def deepen(self) -> None:
        """Add the next finer level: its conv/deconv pair wraps the network built so far."""
        if self.level + 1 >= self.config.n_levels:
            raise ValueError(f"all {self.config.n_levels} levels are built already")
        cfg = self.config
        like = next(self.parameters(), torch.empty(0))
        level = _Level(cfg.activation, cfg.init_std, self.latent_shape(self.level + 1))
        self.levels.append(level.to(like))
        self.config = dataclasses.replace(cfg, widths=(*cfg.widths, ()))

    def widen(self, channels: int, unresolved: Tensor) -> None:
        """Add a group of ``channels`` to the current level, active on the ``unresolved``
        latent pixels (0/1 map) dilated by one pixel."""
        if self.level < 0:
            raise ValueError("deepen before widening")
        if not isinstance(channels, int) or channels < 1:
            raise ValueError(f"channels must be a positive integer, got {channels!r}")
        if tuple(unresolved.shape) != self.latent_shape():
            shape = tuple(unresolved.shape)
            raise ValueError(f"unresolved map shape {shape} != latent {self.latent_shape()}")
        self.levels[-1].add_group(channels, unresolved, self.config.init_std)
        *done, current = self.config.widths
        self.config = dataclasses.replace(self.config, widths=(*done, (*current, channels)))

    def forward(self, x: Tensor) -> Tensor:
        """(N, 1, H_k, W_k) -> (N, 1, H_k, W_k) at the current level k."""
        if self.level < 0:
            raise ValueError("the network has no level yet: call deepen() first")
        return self._level_forward(x, self.level)

    def _level_forward(self, x: Tensor, k: int) -> Tensor:
        inner = None if k == 0 else (lambda z: self._level_forward(z, k - 1))
        return self.levels[k](x, inner)

    def encoding_size(self) -> int:
        """The benchmark notebook's count: per level the deepen latent grid plus, per widen
        group, its channels times its unresolved latent pixels (before dilation)."""
        total = 0
        for level in self.levels:
            total += level.latent[0] * level.latent[1]
            for encoder, unresolved in zip(level.group_encoders, level.unresolved(), strict=True):
                total += encoder.out_channels * int(unresolved.sum())
        return total


def parameter_count(widths: tuple[tuple[int, ...], ...]) -> int:
    """Parameters of a MrCAE with these widen groups: 20 per deepen, 19n + 1 per group of n."""
    return sum(20 + sum(19 * n + 1 for n in groups) for groups in widths)


@dataclass(frozen=True)
class REDNetConfig:
    """A dense conv autoencoder with additive symmetric skips (RED-Net as the MrCAE code builds
    it): ``channels`` from the input, e.g. (1, 4, 4) has two 3×3 stride-2 encoder convs."""

    channels: tuple[int, ...] = (1, 4)
    activation: str = "none"
    init_std: float = 0.01

    def __post_init__(self) -> None:
        _check_common((3, 3), self.activation, self.init_std)
        if len(self.channels) < 2 or self.channels[0] != 1 or min(self.channels) < 1:
            raise ValueError(f"channels must start with 1 and have >= 2 entries: {self.channels}")


class REDNet(nn.Module):
    """Encoder: act(conv) per stage; decoder: deconvs, adding the mirrored encoder features."""

    def __init__(self, config: REDNetConfig | None = None) -> None:
        super().__init__()
        self.config = config or REDNetConfig()
        c = self.config.channels
        self.activation = ACTIVATIONS[self.config.activation]()
        pairs = list(zip(c[:-1], c[1:], strict=True))
        self.encoders = nn.ModuleList(nn.Conv2d(a, b, 3, stride=2) for a, b in pairs)
        self.decoders = nn.ModuleList(nn.ConvTranspose2d(b, a, 3, stride=2) for a, b in pairs)
        std = self.config.init_std
        with torch.no_grad():
            for p in self.parameters():
                p.uniform_(-std, std)

    def forward(self, x: Tensor) -> Tensor:
        features = [x]
        for encoder in self.encoders:
            features.append(self.activation(encoder(features[-1])))
        y = features[-1]
        for k in range(len(self.decoders) - 1, 0, -1):
            y = self.decoders[k](y) + features[k]
        return self.decoders[0](y)

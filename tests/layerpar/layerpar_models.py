"""Small float64 models for the layer-parallel tests, and the serial references they meet."""

from __future__ import annotations

import torch
from torch import nn

from partime.layerpar import depth_units, unit_seed
from partime.layerpar.pipeline import split_batch

IN, WIDTH, OUT = 5, 12, 3


class Residual(nn.Module):
    """x + 0.5·tanh(W x + b): one explicit Euler step of a tanh layer."""

    def __init__(self, width: int = WIDTH, dropout: float = 0.0) -> None:
        super().__init__()
        self.linear = nn.Linear(width, width)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x):
        return x + 0.5 * self.dropout(torch.tanh(self.linear(x)))


class NormBlock(nn.Module):
    def __init__(self, width: int = WIDTH) -> None:
        super().__init__()
        self.linear, self.norm = nn.Linear(width, width), nn.BatchNorm1d(width)

    def forward(self, x):
        return torch.tanh(self.norm(self.linear(x)))


class Lift(nn.Module):
    """u -> (u_1, u_0) = (u + tanh(W u), u): the plain first step of a linear multistep net."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(WIDTH, WIDTH)

    def forward(self, u):
        return u + torch.tanh(self.linear(u)), u


class MultistepBlock(nn.Module):
    """(u_n, u_{n-1}) -> ((1-k) u_n + k u_{n-1} + tanh(W u_n), u_n), k a learned scalar."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(WIDTH, WIDTH)
        self.k = nn.Parameter(torch.tensor(-0.05))

    def forward(self, pair):
        u, previous = pair
        return (1 - self.k) * u + self.k * previous + torch.tanh(self.linear(u)), u


class Latest(nn.Module):
    def forward(self, pair):
        return pair[0]


def mlp(units: int = 7) -> nn.Sequential:
    """stem, units-2 residual steps, head."""
    torch.manual_seed(1)
    layers = [nn.Linear(IN, WIDTH), *(Residual() for _ in range(units - 2)), nn.Linear(WIDTH, OUT)]
    return nn.Sequential(*layers).double()


def lm_pair() -> nn.Sequential:
    """A two-state recurrence crossing rank boundaries as a pair (8 units)."""
    torch.manual_seed(2)
    blocks = [MultistepBlock() for _ in range(4)]
    layers = [nn.Linear(IN, WIDTH), Lift(), *blocks, Latest(), nn.Linear(WIDTH, OUT)]
    return nn.Sequential(*layers).double()


def stochastic() -> nn.Sequential:
    """Batch norm and dropout in several units (6 units)."""
    torch.manual_seed(3)
    layers = [
        nn.Linear(IN, WIDTH), NormBlock(), Residual(dropout=0.3), NormBlock(),
        Residual(dropout=0.5), nn.Linear(WIDTH, OUT),
    ]  # fmt: skip
    return nn.Sequential(*layers).double()


def tied() -> nn.Sequential:
    """The same residual module at units 1 and 4: its gradient sums both uses (6 units)."""
    torch.manual_seed(4)
    shared = Residual()
    layers = [nn.Linear(IN, WIDTH), shared, Residual(), Residual(), shared, nn.Linear(WIDTH, OUT)]
    return nn.Sequential(*layers).double()


def cnet() -> nn.Module:
    """A ContinuousNet on 1-D signals: RK4, 2 steps per piece, batch norm per piece."""
    from partime.nets import ContinuousNet, ContinuousNetConfig

    torch.manual_seed(6)
    config = ContinuousNetConfig((2, 6), 3, units="2-2", width=4, scheme="rk4", n_steps=4)
    return ContinuousNet(config).double()


def lmresnet() -> nn.Module:
    """An LM-ResNet on features: the (u_n, u_{n-1}) pair crosses rank boundaries."""
    from partime.nets import LMResNet, ResNetConfig

    torch.manual_seed(7)
    return LMResNet(ResNetConfig((IN,), 3, blocks="3-3", width=4)).double()


def labels(n: int = 11, seed: int = 5) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 2, 6, generator=g, dtype=torch.float64), torch.randint(
        3, (n,), generator=g
    )


MODELS = {"mlp": mlp, "lm_pair": lm_pair, "stochastic": stochastic, "tied": tied}


def batch(n: int = 11, seed: int = 5) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return (
        torch.randn(n, IN, generator=g, dtype=torch.float64),
        torch.randn(n, OUT, generator=g, dtype=torch.float64),
    )


def serial_gradients(
    model: nn.Module, x, y, micro_batches: int = 1, seed: int = 0, step: int = 0,
    loss_fn=nn.functional.mse_loss,
):  # fmt: skip
    """Loss and {name: grad} of the serial model; with micro_batches > 1, run micro-batch by
    micro-batch with the RNG keyed by (seed, step, micro-batch, unit) — the definition that
    batch norm and dropout follow under LayerParallel."""
    model.zero_grad()
    loss = 0.0
    units = [unit.forward for unit in depth_units(model)]
    pairs = zip(split_batch(x, micro_batches), split_batch(y, micro_batches), strict=True)
    for m, (xm, ym) in enumerate(pairs):
        state = xm
        for u, unit in enumerate(units):
            torch.manual_seed(unit_seed(seed, step, m, u))
            state = unit(state)
        loss = loss + loss_fn(state, ym) * len(xm) / len(x)
    loss.backward()
    grads = {name: p.grad.clone() for name, p in model.named_parameters()}
    model.zero_grad()
    return loss.detach(), grads

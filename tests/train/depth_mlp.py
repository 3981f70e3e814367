"""A small network with weights piecewise constant in depth, for the training-loop tests:
``refine()`` doubles the pieces and leaves the function unchanged (as ContinuousNet's does)."""

from __future__ import annotations

import torch
from torch import Tensor, nn


class DepthMLP(nn.Module):
    """lift -> n_steps Euler steps of tanh(W(t) x + b(t)) (W, b constant on n_pieces pieces)
    -> dropout -> head. In training each piece is skipped with probability ``drop_piece``
    (one draw per forward, like stochastic depth); ``k`` is declared free of weight decay."""

    def __init__(
        self, n_in: int, width: int, n_out: int, n_pieces: int = 2, n_steps: int = 4,
        dropout: float = 0.0, drop_piece: float = 0.0, batch_norm: bool = False,
    ) -> None:  # fmt: skip
        super().__init__()
        self.options = dict(n_in=n_in, width=width, n_out=n_out, n_steps=n_steps)
        self.options |= dict(dropout=dropout, drop_piece=drop_piece, batch_norm=batch_norm)
        self.n_pieces, self.n_steps, self.drop_piece = n_pieces, n_steps, drop_piece
        self.lift = nn.Linear(n_in, width)
        self.weight = nn.Parameter(torch.randn(n_pieces, width, width) / width**0.5)
        self.bias = nn.Parameter(0.1 * torch.randn(n_pieces, width))
        self.k = nn.Parameter(torch.tensor(0.5))
        self.norm = nn.BatchNorm1d(width) if batch_norm else nn.Identity()
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(width, n_out)

    def no_weight_decay(self) -> tuple[str, ...]:
        return ("k",)

    def forward(self, x: Tensor) -> Tensor:
        x = self.norm(self.lift(x.flatten(1)))
        kept = torch.ones(self.n_pieces, dtype=torch.bool)
        if self.training and self.drop_piece > 0:
            kept = torch.rand(self.n_pieces) >= self.drop_piece
        h = 1.0 / self.n_steps
        for step in range(self.n_steps):
            piece = step * self.n_pieces // self.n_steps
            if kept[piece]:
                x = x + h * self.k * torch.tanh(x @ self.weight[piece].T + self.bias[piece])
        return self.head(self.dropout(x))

    def refine(self) -> DepthMLP:
        finer = DepthMLP(**self.options, n_pieces=2 * self.n_pieces)
        finer = finer.to(self.weight.device, self.weight.dtype)
        state = self.state_dict()
        state["weight"] = state["weight"].repeat_interleave(2, dim=0)
        state["bias"] = state["bias"].repeat_interleave(2, dim=0)
        finer.load_state_dict(state)
        return finer


def blobs(n: int, seed: int, dtype: torch.dtype = torch.float64) -> tuple[Tensor, Tensor]:
    """Three Gaussian classes in 4-D: inputs (n, 4), labels (n,)."""
    gen = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, 3, (n,), generator=gen)
    centres = torch.tensor([[1.0, 0, 0, 0], [0, 1.0, 0, 0], [0, 0, 1.0, 1.0]], dtype=dtype)
    return centres[labels] + 0.7 * torch.randn(n, 4, generator=gen, dtype=dtype), labels

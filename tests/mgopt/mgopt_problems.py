"""A small circles-like problem shared by the MG/OPT tests (float64)."""

import torch

from partime.mgopt import ResNetLevels, ResNetSpec


def make_problem(depth: int = 32, levels: int = 4, samples: int = 48, chain: str = "auto"):
    """(problem, (x (N, 2), labels (N,))): two classes inside / outside radius 1.2."""
    generator = torch.Generator().manual_seed(7)
    x = 3 * (2 * torch.rand(samples, 2, generator=generator, dtype=torch.float64) - 1)
    labels = (x.norm(dim=1) > 1.2).long()
    spec = ResNetSpec(in_features=2, width=3, classes=2, depth=depth, levels=levels, beta=1e-3)
    return ResNetLevels(spec, chain=chain), (x, labels)

"""The coefficient tree of an OdeBlock: plain modules named like the rate's, each parameter a
ParameterList of its basis coefficients, and the parameter-free copy of the rate the block calls."""

from __future__ import annotations

import copy
from collections.abc import Sequence

import torch
from torch import Tensor, nn


def slot(module: nn.Module, path: str) -> tuple[nn.Module, str]:
    """(the submodule holding ``path``, the attribute name) for a dotted parameter path."""
    *parents, leaf = path.split(".")
    return module.get_submodule(".".join(parents)), leaf


def combine(weights: tuple[tuple[str, float], ...], pieces: dict[str, Tensor]) -> Tensor:
    """Σ w_k c_k over the pieces keyed "k"; a single unit weight is the coefficient itself."""
    if len(weights) == 1 and weights[0][1] == 1.0:
        return pieces[weights[0][0]]
    (k, w), *rest = weights
    out = pieces[k] * w
    for k, w in rest:
        out = torch.add(out, pieces[k], alpha=w)
    return out


class CoefficientTree(nn.Module):
    """The root of an OdeBlock's coefficients: plain modules named like the rate's."""

    def __repr__(self) -> str:
        params = [m for m in self.modules() if isinstance(m, nn.ParameterList)]
        sizes = sorted({len(m) for m in params})
        return (
            f"CoefficientTree({len(params)} parameters x {', '.join(map(str, sizes))} "
            f"coefficients, {len(list(self.buffers()))} stacked buffers)"
        )


def empty_tree(rate: nn.Module) -> nn.Module:
    """Plain modules named like ``rate``'s submodules (so no layer type matches them)."""
    root = CoefficientTree()
    for name, _ in rate.named_modules():
        if name:
            parent, _, leaf = name.rpartition(".")
            root.get_submodule(parent).add_module(leaf, nn.Module())
    return root


def set_pieces(root: nn.Module, path: str, pieces: Sequence[Tensor], requires_grad: bool) -> None:
    """Put the coefficients of parameter ``path`` under ``root`` as a ParameterList."""
    module, leaf = slot(root, path)
    params = [nn.Parameter(p.clone(), requires_grad=requires_grad) for p in pieces]
    module._modules[leaf] = nn.ParameterList(params)


def stripped(rate: nn.Module) -> nn.Module:
    """A copy of ``rate`` without parameters and buffers: the blocks set them per stage."""
    template = copy.deepcopy(rate)
    for path, _ in list(rate.named_parameters()):
        module, leaf = slot(template, path)
        del module._parameters[leaf]
    for path, _ in list(rate.named_buffers()):
        module, leaf = slot(template, path)
        del module._buffers[leaf]
    return template

"""Transfers between neighbouring levels of the hierarchy, on flat parameter vectors.

The layer block (K, v·v + v) of a level holds the coefficients of a piecewise-constant function
of depth with K pieces; level l−1 has K/2 pieces on the same [0, T]. The lift and head are shared
by all levels and go across unchanged (identity).

- ``prolong`` (I, coarse → fine): ``PiecewiseConstant.refine_coefficients``, each coarse piece
  copied into the two fine pieces it covers (the function of depth is unchanged).
- ``restrict_gradient`` (R = Iᵀ): the two fine pieces' entries are *summed*; this is what makes
  the first-order coherence ∇H_{l−1}(R_p θ) = R ∇H_l(θ) a statement about the adjoint of I.
- ``restrict_parameters`` (R_p = ½Iᵀ, the L2 projection onto the coarse pieces): the two fine
  pieces are *averaged*, so R_p I = identity. The paper writes Θ^{l−1,0} = R Θ^{l,μ} with the
  gradient's R = Iᵀ, which taken literally doubles every weight at each level (×2^{L−1} on the
  coarsest); measured, that version trains erratically, so parameters are averaged.

All three act on the rank's own layers only: a depth partition with boundaries on the coarsest
grid keeps each coarse piece and the two fine pieces it covers on one rank.
"""

from __future__ import annotations

import torch

from partime.nets.basis import PiecewiseConstant

PARAMETER_RESTRICTION = "average"  # recorded in every result: the paper's literal Iᵀ is "sum"


def split_layers(
    theta: torch.Tensor, layer_size: int, shared_size: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """(layers (K, layer_size) view, shared (shared_size,) view) of a level's flat vector."""
    n_layers, rest = divmod(theta.numel() - shared_size, layer_size)
    if rest or n_layers < 0:
        raise ValueError(
            f"a vector of {theta.numel()} entries is not layers of {layer_size} plus {shared_size}"
        )
    cut = n_layers * layer_size
    return theta[:cut].view(n_layers, layer_size), theta[cut:]


def _pairs(fine: torch.Tensor, layer_size: int, shared_size: int) -> tuple[torch.Tensor, ...]:
    layers, shared = split_layers(fine, layer_size, shared_size)
    if layers.shape[0] % 2:
        raise ValueError(f"{layers.shape[0]} fine layers cannot be restricted in pairs")
    return layers.view(-1, 2, layer_size), shared


def prolong(coarse: torch.Tensor, layer_size: int, shared_size: int) -> torch.Tensor:
    """I: a level's flat vector (K·d + s) → the next finer level's (2K·d + s)."""
    layers, shared = split_layers(coarse, layer_size, shared_size)
    fine = (
        PiecewiseConstant(max(len(layers), 1)).refine_coefficients(layers)
        if len(layers)
        else layers
    )
    return torch.cat([fine.flatten(), shared])


def restrict_gradient(fine: torch.Tensor, layer_size: int, shared_size: int) -> torch.Tensor:
    """R = Iᵀ: sums each pair of fine layers (2K·d + s → K·d + s)."""
    pairs, shared = _pairs(fine, layer_size, shared_size)
    return torch.cat([pairs.sum(dim=1).flatten(), shared])


def restrict_parameters(fine: torch.Tensor, layer_size: int, shared_size: int) -> torch.Tensor:
    """R_p = ½Iᵀ: averages each pair of fine layers (2K·d + s → K·d + s); this is
    ``PiecewiseConstant(2K).project(·, PiecewiseConstant(K))`` without its dense matrix."""
    pairs, shared = _pairs(fine, layer_size, shared_size)
    return torch.cat([pairs.mean(dim=1).flatten(), shared])

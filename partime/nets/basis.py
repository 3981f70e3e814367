"""Bases in depth on [0, 1] with n pieces: piecewise constant, piecewise linear (DG), FEM hats.

A function θ(t) is a stack of coefficients (n_coefficients, *shape); ``evaluate`` sums the few
basis functions that are non-zero at t. At a piece boundary ``side`` says which piece owns t:
"right" (t belongs to the piece it starts) or "left" (the piece it ends), so a step [t, t+h)
evaluates its last stage t+h inside its own piece (the authors' ``enforce_openset``).
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch
from torch import Tensor

from partime.nets.checks import positive_int

# Times within this fraction of a piece width of a boundary are on the boundary: depth times
# come from i / n_steps and differ from exact multiples of 1 / n_pieces by a few ulps.
_BOUNDARY_TOL = 1e-9
# Gauss–Legendre points per sub-interval: exact for products of polynomials of degree <= 5.
_QUADRATURE_POINTS = 3

Weights = tuple[tuple[int, float], ...]


@dataclass(frozen=True)
class Basis(ABC):
    """A basis of functions of depth t in [0, 1] made of ``n_pieces`` polynomial pieces."""

    n_pieces: int
    name: ClassVar[str]

    def __post_init__(self) -> None:
        positive_int(self.n_pieces, "n_pieces")

    @property
    @abstractmethod
    def n_coefficients(self) -> int:
        """Length of the leading dimension of a coefficient stack."""

    @abstractmethod
    def weights(self, t: float, side: str = "right") -> Weights:
        """The non-zero basis values at ``t``: ((coefficient index, value), ...)."""

    @abstractmethod
    def refine(self) -> Basis:
        """The same family with twice the pieces (a space containing this one)."""

    @abstractmethod
    def refine_coefficients(self, coeffs: Tensor) -> Tensor:
        """Coefficients in ``refine()`` of the same function: (n_coefficients', *shape)."""

    def piece(self, t: float, side: str = "right") -> int:
        """Index of the piece that owns ``t`` (see the module docstring for ``side``)."""
        return self.local(t, side)[0]

    def local(self, t: float, side: str = "right") -> tuple[int, float]:
        """(piece index, position s in [0, 1] inside that piece) of time ``t``."""
        if side not in ("right", "left"):
            raise ValueError(f"side must be 'right' or 'left', got {side!r}")
        t = float(t)
        if not (-_BOUNDARY_TOL <= t <= 1.0 + _BOUNDARY_TOL):
            raise ValueError(f"depth time t={t} is outside the basis interval [0, 1]")
        scaled = t * self.n_pieces
        if side == "right":
            index = math.floor(scaled + _BOUNDARY_TOL)
        else:
            index = math.ceil(scaled - _BOUNDARY_TOL) - 1
        index = min(max(index, 0), self.n_pieces - 1)
        return index, min(max(scaled - index, 0.0), 1.0)

    def evaluate(self, coeffs: Tensor, t: float, side: str = "right") -> Tensor:
        """θ(t) (*shape) from coefficients (n_coefficients, *shape)."""
        self.check_coefficients(coeffs)
        terms = [w * coeffs[i] for i, w in self.weights(t, side) if w != 0.0]
        return torch.stack(terms).sum(0) if terms else torch.zeros_like(coeffs[0])

    def matrix(self, ts: np.ndarray | list[float], side: str = "right") -> np.ndarray:
        """Values of every basis function at each time: (len(ts), n_coefficients), float64."""
        ts = np.asarray(ts, dtype=np.float64).reshape(-1)
        out = np.zeros((ts.size, self.n_coefficients))
        for row, t in enumerate(ts):
            for i, w in self.weights(float(t), side):
                out[row, i] += w
        return out

    def projection_matrix(self, target: Basis) -> np.ndarray:
        """L2 projection onto ``target``: (target.n_coefficients, n_coefficients), float64.

        Least squares with Gauss–Legendre quadrature on the common refinement of both piece
        grids, so the integrals are exact and a function of ``target``'s space maps to itself.
        """
        if not isinstance(target, Basis):
            raise TypeError(f"target must be a Basis, got {type(target).__name__}")
        cells = math.lcm(self.n_pieces, target.n_pieces)
        nodes, node_weights = np.polynomial.legendre.leggauss(_QUADRATURE_POINTS)
        left = np.arange(cells)[:, None] / cells
        points = (left + (nodes[None, :] + 1.0) / (2 * cells)).reshape(-1)
        sqrt_w = np.sqrt(np.tile(node_weights / (2 * cells), cells))[:, None]
        solution, *_ = np.linalg.lstsq(
            sqrt_w * target.matrix(points), sqrt_w * self.matrix(points), rcond=None
        )
        return solution

    def project(self, coeffs: Tensor, target: Basis) -> Tensor:
        """Coefficients in ``target`` of the L2 projection of this function (exact if it lies
        in ``target``'s space): (target.n_coefficients, *shape), dtype/device of ``coeffs``."""
        self.check_coefficients(coeffs)
        matrix = torch.as_tensor(
            self.projection_matrix(target), dtype=coeffs.dtype, device=coeffs.device
        )
        return torch.tensordot(matrix, coeffs, dims=1)

    def coarsen(self) -> Basis:
        """The same family with half the pieces (the L2 projection target of a coarser level)."""
        if self.n_pieces % 2:
            raise ValueError(f"cannot halve {self.n_pieces} pieces of basis {self.name!r}")
        return type(self)(self.n_pieces // 2)

    def check_coefficients(self, coeffs: Tensor) -> None:
        """ValueError unless ``coeffs`` is a stack of n_coefficients along dimension 0."""
        if not isinstance(coeffs, Tensor) or coeffs.ndim == 0:
            raise ValueError(
                f"coefficients must be a tensor (n_coefficients, *shape), got {coeffs!r}"
            )
        if coeffs.shape[0] != self.n_coefficients:
            raise ValueError(
                f"basis {self.name!r} with {self.n_pieces} pieces has {self.n_coefficients} "
                f"coefficients, got a stack of {coeffs.shape[0]}"
            )


@dataclass(frozen=True)
class PiecewiseConstant(Basis):
    """One constant per piece: θ(t) = c_j on piece j. Euler with a step per piece is a ResNet."""

    name: ClassVar[str] = "pc"

    @property
    def n_coefficients(self) -> int:
        return self.n_pieces

    def weights(self, t: float, side: str = "right") -> Weights:
        return ((self.piece(t, side), 1.0),)

    def refine(self) -> PiecewiseConstant:
        return PiecewiseConstant(2 * self.n_pieces)

    def refine_coefficients(self, coeffs: Tensor) -> Tensor:
        self.check_coefficients(coeffs)
        return coeffs.repeat_interleave(2, dim=0)


@dataclass(frozen=True)
class PiecewiseLinear(Basis):
    """Discontinuous linear pieces: coefficients (2n, ...), [2j] at the start of piece j, [2j+1]
    at its end."""

    name: ClassVar[str] = "linear"

    @property
    def n_coefficients(self) -> int:
        return 2 * self.n_pieces

    def weights(self, t: float, side: str = "right") -> Weights:
        j, s = self.local(t, side)
        return ((2 * j, 1.0 - s), (2 * j + 1, s))

    def refine(self) -> PiecewiseLinear:
        return PiecewiseLinear(2 * self.n_pieces)

    def refine_coefficients(self, coeffs: Tensor) -> Tensor:
        self.check_coefficients(coeffs)
        start, end = coeffs[0::2], coeffs[1::2]
        middle = 0.5 * start + 0.5 * end
        return torch.stack((start, middle, middle, end), dim=1).flatten(0, 1)


@dataclass(frozen=True)
class FemHat(Basis):
    """Continuous piecewise linear: hat functions on the n + 1 nodes linspace(0, 1, n + 1)."""

    name: ClassVar[str] = "fem"

    @property
    def n_coefficients(self) -> int:
        return self.n_pieces + 1

    def weights(self, t: float, side: str = "right") -> Weights:
        j, s = self.local(t, side)
        return ((j, 1.0 - s), (j + 1, s))

    def refine(self) -> FemHat:
        return FemHat(2 * self.n_pieces)

    def refine_coefficients(self, coeffs: Tensor) -> Tensor:
        self.check_coefficients(coeffs)
        middle = 0.5 * coeffs[:-1] + 0.5 * coeffs[1:]
        interleaved = torch.stack((coeffs[:-1], middle), dim=1).flatten(0, 1)
        return torch.cat((interleaved, coeffs[-1:]))


BASES: dict[str, type[Basis]] = {b.name: b for b in (PiecewiseConstant, PiecewiseLinear, FemHat)}


def make_basis(name: str, n_pieces: int) -> Basis:
    """The basis called ``name`` ("pc", "linear" or "fem") with ``n_pieces`` pieces."""
    try:
        family = BASES[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown basis {name!r}; known bases: {', '.join(BASES)}") from None
    return family(n_pieces)

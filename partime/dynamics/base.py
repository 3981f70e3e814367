"""What evolves: vector fields ``f(t, x)`` batched over the leading dimensions of ``x``."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Protocol, runtime_checkable

import torch
from torch import Tensor


@runtime_checkable
class VectorField(Protocol):
    """``f(t, x) -> dx/dt`` for states ``x`` of shape (..., dim); ``t`` a float or tensor."""

    name: str
    dim: int

    def __call__(self, t: float | Tensor, x: Tensor) -> Tensor: ...


def check_state_dim(field: VectorField, x: Tensor) -> None:
    """Raise ValueError unless ``x`` has shape (..., field.dim)."""
    if x.ndim == 0 or x.shape[-1] != field.dim:
        raise ValueError(
            f"{field.name}: state of shape {tuple(x.shape)} does not match the vector "
            f"field's dimension {field.dim} (expected shape (..., {field.dim}))"
        )


class ComponentSystem(ABC):
    """A low-dimensional ODE written component-wise.

    Subclasses implement ``components(t, *xs) -> tuple`` of the ``dim`` right-hand sides
    as functions of the ``dim`` state components (each a tensor of the batch shape). The
    integrators' compiled fast path keeps the state as such a tuple, which avoids a
    ``torch.stack`` per stage; ``__call__`` provides the stacked form for everything else.
    """

    name: str = "system"
    dim: int = 0

    @abstractmethod
    def components(self, t: float | Tensor, *xs: Tensor) -> tuple[Tensor, ...]:
        """The ``dim`` right-hand sides from the ``dim`` state components."""

    def check_state(self, x: Tensor) -> None:
        """Raise ValueError unless ``x`` has trailing dimension ``dim``."""
        check_state_dim(self, x)

    def __call__(self, t: float | Tensor, x: Tensor) -> Tensor:
        self.check_state(x)
        return torch.stack(self.components(t, *x.unbind(-1)), dim=-1)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(dim={self.dim})"

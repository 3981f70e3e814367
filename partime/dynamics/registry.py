"""Look up vector fields by name, by ``module:function`` path, or wrap a user callable."""

from __future__ import annotations

import importlib
from collections.abc import Callable

import torch
from torch import Tensor

from partime.dynamics.base import VectorField, check_state_dim
from partime.dynamics.ks import KuramotoSivashinsky
from partime.dynamics.systems import (
    CubicOscillator,
    HarmonicOscillator,
    Hopf,
    Hyperbolic,
    Lorenz,
    VanDerPol,
)

#: Built-in systems by name; each class builds with its default (paper) parameters.
SYSTEMS: dict[str, type] = {
    "harmonic": HarmonicOscillator,
    "hyperbolic": Hyperbolic,
    "cubic": CubicOscillator,
    "vdp": VanDerPol,
    "hopf": Hopf,
    "lorenz": Lorenz,
    "ks": KuramotoSivashinsky,
}


class CallableField:
    """A user function ``f(t, x) -> dx/dt`` made a ``VectorField`` with shape checks."""

    def __init__(self, func: Callable[[float | Tensor, Tensor], Tensor], dim: int, name: str):
        self.func = func
        self.dim = dim
        self.name = name

    def check_state(self, x: Tensor) -> None:
        """Raise ValueError unless ``x`` has trailing dimension ``dim``."""
        check_state_dim(self, x)

    def __call__(self, t: float | Tensor, x: Tensor) -> Tensor:
        self.check_state(x)
        dx = self.func(t, x)
        if not isinstance(dx, Tensor) or dx.shape != x.shape:
            got = tuple(dx.shape) if isinstance(dx, Tensor) else type(dx).__name__
            raise ValueError(
                f"{self.name}: vector field returned {got} for a state of shape "
                f"{tuple(x.shape)}; it must return a tensor of the state's shape"
            )
        return dx

    def __repr__(self) -> str:
        return f"CallableField({self.name}, dim={self.dim})"


def _check_dim(dim: int | None) -> None:
    if dim is not None and (isinstance(dim, bool) or not isinstance(dim, int) or dim < 1):
        raise ValueError(f"dim must be a positive integer or None, got {dim!r}")


def _import_path(spec: str) -> object:
    """Resolve ``"package.module:attr"``; errors name the path and what failed."""
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise ValueError(f"vector field path {spec!r} must look like 'package.module:function'")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ValueError(
            f"cannot import module {module_name!r} of vector field {spec!r}: {exc}"
        ) from exc
    try:
        return getattr(module, attr)
    except AttributeError:
        raise ValueError(
            f"module {module_name!r} has no attribute {attr!r} (from {spec!r})"
        ) from None


def _from_name(name: str, dim: int | None) -> VectorField:
    if name not in SYSTEMS:
        raise ValueError(
            f"unknown system {name!r}; known systems: {', '.join(sorted(SYSTEMS))} "
            "(or give a 'package.module:function' path)"
        )
    cls = SYSTEMS[name]
    if cls is KuramotoSivashinsky:
        # The one built-in with a free dimension: dim picks the number of grid points.
        return cls() if dim is None else cls(n=dim)
    system = cls()
    if dim is not None and dim != system.dim:
        raise ValueError(f"system {name!r} has dimension {system.dim}, not dim={dim}")
    return system


def _from_callable(func: Callable, dim: int | None, name: str) -> VectorField:
    if isinstance(func, type):
        func = func()  # a class from a module path: build it with its defaults
    own_dim = getattr(func, "dim", None)
    if isinstance(func, VectorField) and isinstance(own_dim, int):
        if dim is not None and dim != own_dim:
            raise ValueError(f"vector field {name!r} has dimension {own_dim}, not dim={dim}")
        return func
    if not callable(func):
        raise TypeError(f"vector field {name!r} is not callable: {func!r}")
    dim = own_dim if dim is None else dim
    if dim is None:
        raise ValueError(f"vector field {name!r} does not say its dimension; pass dim=")
    _check_dim(dim)
    return CallableField(func, dim, getattr(func, "name", name))


def get_system(spec: str | Callable, dim: int | None = None) -> VectorField:
    """A ``VectorField`` from a built-in name, a ``'module:function'`` path, or ``f(t, x)``.

    ``dim`` is required for plain functions, picks the grid size for ``"ks"``, and is checked
    against the dimension of everything else.
    """
    _check_dim(dim)
    if isinstance(spec, str):
        if ":" in spec:
            return _from_callable(_import_path(spec), dim, spec)
        return _from_name(spec, dim)
    if callable(spec):
        return _from_callable(spec, dim, getattr(spec, "__name__", type(spec).__name__))
    raise TypeError(f"system must be a name, a 'module:function' path or a callable, got {spec!r}")


def check_initial_state(field: VectorField, x0: Tensor) -> None:
    """Raise a clear error unless ``x0`` is a finite real tensor of shape (..., field.dim)."""
    if not isinstance(x0, Tensor):
        raise TypeError(f"{field.name}: initial state must be a torch.Tensor, got {type(x0)}")
    if x0.is_complex() or not x0.is_floating_point():
        raise TypeError(f"{field.name}: initial state must be real floating point, got {x0.dtype}")
    if x0.ndim == 0 or x0.shape[-1] != field.dim:
        raise ValueError(
            f"{field.name}: initial state of shape {tuple(x0.shape)} does not match the vector "
            f"field's dimension {field.dim}"
        )
    bad = ~torch.isfinite(x0)
    if bool(bad.any()):
        index = tuple(int(i) for i in bad.nonzero()[0])
        value = float(x0[index])
        raise ValueError(
            f"{field.name}: initial state is not finite: x0{list(index)} = {value} "
            f"({int(bad.sum())} of {x0.numel()} entries are NaN or inf)"
        )

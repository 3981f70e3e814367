"""Fixed-step explicit Runge–Kutta integration: validation, the eager loop, and the dispatch
to a compiled kernel (``fast``)."""

from __future__ import annotations

import math
import numbers
import operator
from collections.abc import Callable

import torch
from torch import Tensor

from partime.integrators.fast import integrate_fast
from partime.integrators.step import Time, step_state
from partime.integrators.tableaus import ButcherTableau, get_tableau


def _check_dt(dt: object) -> float:
    if isinstance(dt, Tensor) and dt.numel() == 1:
        dt = dt.item()
    if isinstance(dt, bool) or not isinstance(dt, numbers.Real):
        raise TypeError(f"dt must be a real number, got {type(dt).__name__}: {dt!r}")
    if not math.isfinite(dt) or dt <= 0:
        raise ValueError(f"dt must be a positive finite number, got dt={dt}")
    return float(dt)


def _check_count(value: object, name: str, minimum: int) -> int:
    try:
        if isinstance(value, bool):
            raise TypeError
        count = operator.index(value)
    except TypeError:
        raise ValueError(f"{name} must be an integer, got {value!r}") from None
    if count < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {name}={count}")
    return count


def _check_x0(x0: object) -> Tensor:
    if not isinstance(x0, Tensor):
        raise TypeError(f"x0 must be a torch.Tensor, got {type(x0).__name__}: {x0!r}")
    if not (x0.is_floating_point() or x0.is_complex()):
        raise TypeError(f"x0 must have a floating-point or complex dtype, got {x0.dtype}")
    if x0.ndim == 0:
        raise ValueError("x0 must have shape (..., dim), got a 0-d tensor")
    bad = ~torch.isfinite(x0)
    if bool(bad.any()):
        index = tuple(int(i) for i in bad.nonzero()[0])
        raise ValueError(f"x0 has a non-finite entry {x0[index].item()} at index {index}")
    return x0


def _check_t0(t0: object, x0: Tensor) -> Time:
    if isinstance(t0, Tensor):
        if t0.ndim > 0 and tuple(t0.shape) != tuple(x0.shape[:-1]):
            raise ValueError(
                f"t0 must be a number or a tensor of shape x0.shape[:-1]={tuple(x0.shape[:-1])}, "
                f"got shape {tuple(t0.shape)}"
            )
        if not bool(torch.isfinite(t0).all()):
            raise ValueError(f"t0 must be finite, got {t0}")
        return t0
    if isinstance(t0, bool) or not isinstance(t0, numbers.Real) or not math.isfinite(t0):
        raise ValueError(f"t0 must be a finite number or a tensor, got {t0!r}")
    return float(t0)


def integrate_eager(
    f: Callable,
    x0: Tensor,
    t0: Time,
    dt: float,
    n_steps: int,
    tableau: ButcherTableau,
    save_every: int | None,
) -> Tensor:
    """Fixed-step loop of RK steps, differentiable; arguments as in ``integrate``, validated."""
    if save_every is None:
        x = x0
        for i in range(n_steps):
            x = step_state(f, t0 + i * dt, x, dt, tableau)
        return x
    n_saves = n_steps // save_every
    out = x0.new_empty((n_saves + 1, *x0.shape))
    out[0] = x0
    x = x0
    for i in range(n_saves * save_every):
        x = step_state(f, t0 + i * dt, x, dt, tableau)
        if (i + 1) % save_every == 0:
            out[(i + 1) // save_every] = x
    return out


def integrate(
    f: Callable,
    x0: Tensor,
    t0: Time,
    dt: float,
    n_steps: int,
    scheme: str | ButcherTableau = "rk4",
    save_every: int | None = None,
    fast: bool | None = None,
) -> Tensor:
    """Take ``n_steps`` steps of size ``dt`` of ``f(t, x)`` from ``x0`` (..., dim) at time ``t0``.

    Returns the final state (shape of ``x0``) or, with ``save_every=s``, the trajectory
    (n_steps // s + 1, *x0.shape) at steps 0, s, 2s, ... . Step ``i`` is at ``t0 + i * dt``
    (``t0`` a number or a tensor of shape x0.shape[:-1]). For a ComponentSystem ``fast=None``
    takes a compiled kernel when one is cached or its compile pays back within the run (see
    ``partime.integrators.fast``); ``False`` never, ``True`` whenever it can.
    """
    tableau = get_tableau(scheme)
    x0 = _check_x0(x0)
    t0 = _check_t0(t0, x0)
    dt = _check_dt(dt)
    n_steps = _check_count(n_steps, "n_steps", 0)
    if save_every is not None:
        save_every = _check_count(save_every, "save_every", 1)
    if fast not in (None, True, False):
        raise ValueError(f"fast must be None, True or False, got {fast!r}")
    check_state = getattr(f, "check_state", None)
    if callable(check_state):
        check_state(x0)
    result = integrate_fast(f, x0, t0, dt, n_steps, tableau, save_every, fast)
    if result is not None:
        return result
    return integrate_eager(f, x0, t0, dt, n_steps, tableau, save_every)

"""One explicit Runge–Kutta step for any Butcher tableau, on a tensor or a tuple of components."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

import torch
from torch import Tensor

from partime.integrators.tableaus import ButcherTableau, get_tableau

State = TypeVar("State", Tensor, tuple)
Time = float | Tensor


def _lincomb(x: Tensor, h: float, weights: Sequence[float], ks: Sequence[Tensor]) -> Tensor:
    """``x + h * sum_j w_j k_j``, skipping zero weights; ``add(alpha=)`` fuses the scaling."""
    for w, k in zip(weights, ks, strict=True):
        if w != 0.0:
            x = torch.add(x, k, alpha=h * w)
    return x


def _combine(x: State, h: float, weights: Sequence[float], ks: Sequence[State]) -> State:
    if isinstance(x, Tensor):
        return _lincomb(x, h, weights, ks)
    return tuple(_lincomb(xc, h, weights, [k[c] for k in ks]) for c, xc in enumerate(x))


def step_state(rhs: Callable, t: Time, x: State, h: float, tableau: ButcherTableau) -> State:
    """One explicit RK step of ``rhs(t, x)``; the state is a tensor or a tuple of components."""
    ks: list = []
    for a_i, c_i in zip(tableau.a, tableau.c, strict=True):
        x_i = _combine(x, h, a_i, ks)
        ks.append(rhs(t + c_i * h if c_i else t, x_i))
        if isinstance(x, Tensor) and ks[0].shape != x.shape:
            raise ValueError(
                f"vector field returned shape {tuple(ks[0].shape)} for a state of shape "
                f"{tuple(x.shape)}; they must match"
            )
    return _combine(x, h, tableau.b, ks)


def rk_step(f: Callable, t: Time, x: Tensor, h: float, tableau: ButcherTableau | str) -> Tensor:
    """Advance ``x`` (..., dim) from time ``t`` by one step ``h`` of ``tableau`` for ``f(t, x)``."""
    return step_state(f, t, x, h, get_tableau(tableau))

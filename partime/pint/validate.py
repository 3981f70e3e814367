"""Input checks for ``parareal``; all run before any communication so bad input never hangs."""

from __future__ import annotations

import cmath
import math

import torch
from torch import Tensor


def check_times(times: Tensor) -> Tensor:
    """Slice boundaries as a float64 1-D tensor; ValueError unless finite, increasing, T > 0."""
    times = torch.as_tensor(times, dtype=torch.float64).detach().cpu()
    if times.ndim != 1 or times.numel() < 2:
        raise ValueError(
            f"times must be 1-D with at least 2 entries, got shape {tuple(times.shape)}"
        )
    if not bool(torch.isfinite(times).all()):
        raise ValueError(f"times must be finite, got {times.tolist()}")
    if not float(times[-1] - times[0]) > 0:
        raise ValueError(
            f"the time interval must have T > 0; got t0={float(times[0])}, t_end={float(times[-1])}"
        )
    if not bool((times[1:] > times[:-1]).all()):
        raise ValueError(f"slice times must be strictly increasing, got {times.tolist()}")
    return times


def check_problem(
    coarse, fine, x0: Tensor, times: Tensor, executor, tol: float, max_iter, rtol: float = 0.0
) -> None:
    """Shapes, dimensions, slice counts, tolerances and step sizes of a parareal problem."""
    n_slices = times.numel() - 1
    if not isinstance(x0, Tensor) or x0.ndim != 2:
        shape = tuple(x0.shape) if isinstance(x0, Tensor) else type(x0).__name__
        raise ValueError(f"x0 must be a (batch, dim) tensor, got {shape}")
    if not bool(torch.isfinite(x0).all()):
        raise ValueError("x0 contains NaN or Inf")
    dims = {"coarse": getattr(coarse, "dim", None), "fine": getattr(fine, "dim", None)}
    if dims["coarse"] != dims["fine"] or dims["fine"] != x0.shape[-1]:
        raise ValueError(
            f"state dimensions differ: coarse.dim={dims['coarse']}, fine.dim={dims['fine']}, "
            f"x0 has dim {x0.shape[-1]}"
        )
    if n_slices < executor.size and not executor.allow_idle:
        raise ValueError(
            f"{n_slices} time slices for {executor.size} ranks: every rank needs at least one "
            f"slice (use more slices, fewer ranks, or an executor with allow_idle=True)"
        )
    for name, value in (("tol", tol), ("rtol", rtol)):
        if not (isinstance(value, int | float) and math.isfinite(value) and value >= 0):
            raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    if max_iter is not None and (not isinstance(max_iter, int) or max_iter < 0):
        raise ValueError(f"max_iter must be None or an integer >= 0, got {max_iter!r}")
    bounds = times.tolist()  # floats: a tensor index per slice costs more than the check
    for name, prop in (("coarse", coarse), ("fine", fine)):
        check = getattr(prop, "check_interval", None)
        for n in range(n_slices) if check is not None else ():
            try:
                check(bounds[n], bounds[n + 1])
            except ValueError as err:
                raise ValueError(f"{name} propagator cannot cover slice {n}: {err}") from err


def check_finite(x: Tensor, which: str, first: int, times: Tensor) -> Tensor:
    """``x`` (m, batch, dim): ends of slices first..first+m-1; FloatingPointError on NaN/Inf."""
    # One reduction rules NaN and Inf out (parareal checks every pass; this costs 5 us, not 40);
    # only a non-finite sum, which finite values can overflow to, is searched.
    if cmath.isfinite(x.sum().item()):
        return x
    bad = ~torch.isfinite(x.flatten(1)).all(dim=1)
    if bool(bad.any()):
        n = first + int(bad.nonzero()[0])
        raise FloatingPointError(
            f"the {which} solve of slice {n} on [{float(times[n])}, {float(times[n + 1])}] "
            f"produced NaN or Inf"
        )
    return x


def saves_per_slice(fine, times: Tensor, save_every: int) -> int:
    """Saved fine states per slice; ValueError unless every slice has the same whole number."""
    if not hasattr(fine, "trajectory") or not hasattr(fine, "check_interval"):
        raise ValueError(f"save_every needs a fine propagator with a trajectory, got {fine!r}")
    t = times.tolist()
    steps = {fine.check_interval(a, b) for a, b in zip(t[:-1], t[1:], strict=True)}
    if len(steps) > 1 or isinstance(save_every, bool) or not isinstance(save_every, int):
        raise ValueError(f"save_every needs equal slices and an integer, got {save_every!r}")
    (n,) = steps
    if save_every < 1 or n % save_every:
        raise ValueError(f"save_every={save_every} does not divide the {n} fine steps per slice")
    return n // save_every

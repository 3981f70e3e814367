"""The serial fine solve a parallel-in-time solve must beat, timed in its fastest mode."""

from __future__ import annotations

import time

import torch
from torch import Tensor

from partime.dynamics import ComponentSystem
from partime.pint.report import SerialRun
from partime.steppers import RKPropagator
from partime.steppers.base import Propagator

#: ``--serial-mode``: the RK fast-path settings the serial fine solve is timed with (the best
#: one is kept). The default, "best", is what a speedup must be measured against; "auto" lets
#: the integrator compile only when the run pays back the compile.
SERIAL_MODES: dict[str, dict[str, bool | None]] = {
    "auto": {"auto": None},
    "eager": {"eager": False},
    "compiled": {"compiled": True},
    "best": {"eager": False, "compiled": True},
}


def _serial_variants(fine: Propagator, serial_mode: str) -> dict[str, Propagator]:
    """The fine propagator in each mode of ``serial_mode``; the RK fast-path setting only
    matters for RK on a component-wise system, anything else is timed as given."""
    if isinstance(fine, RKPropagator) and isinstance(fine.f, ComponentSystem):
        return {
            mode: RKPropagator(fine.f, fine.dt, fine.scheme, fast=fast)
            for mode, fast in SERIAL_MODES[serial_mode].items()
        }
    return {"as given": fine}


def serial_fine(
    fine: Propagator, x0: Tensor, times: Tensor, serial_mode: str = "auto"
) -> SerialRun:
    """Serial fine solve over all slices in its fastest mode, timed warm (an untimed first
    slice absorbs compilation): states (slices+1, batch, dim), wall seconds, mode name."""
    if serial_mode not in SERIAL_MODES:
        raise ValueError(
            f"serial_mode must be one of {', '.join(SERIAL_MODES)}, got {serial_mode!r}"
        )
    best: SerialRun | None = None
    bounds = [(float(times[n]), float(times[n + 1])) for n in range(len(times) - 1)]
    for mode, prop in _serial_variants(fine, serial_mode).items():
        with torch.no_grad():
            prop(x0, *bounds[0])  # warm-up: every slice has the same step count, so this compiles
            start = time.perf_counter()
            states = [x0]
            for t0, t1 in bounds:
                states.append(prop(states[-1], t0, t1))
            wall = time.perf_counter() - start
        if best is None or wall < best.wall_s:
            best = SerialRun(torch.stack(states), wall, mode)
    return best

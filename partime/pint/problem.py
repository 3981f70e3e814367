"""A solve's problem: system, fine and coarse propagators, initial states and slice times."""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor

from partime.data.initial import initial_states
from partime.dynamics import VectorField, get_system
from partime.pint.config import SolveConfig
from partime.pint.spec import propagator_from_spec
from partime.pint.state import slice_times
from partime.steppers.base import Propagator


@dataclass(frozen=True)
class Problem:
    """A validated solve: vector field (None when data-driven), propagators, x0, slice times."""

    system: VectorField | None
    fine: Propagator
    coarse: Propagator
    x0: Tensor
    times: Tensor


def build_problem(config: SolveConfig) -> Problem:
    """Everything local to a rank, validated: no communication happens here."""
    system = None if config.system == "none" else get_system(config.system, config.dim)
    dim = len(config.x0) if system is None else system.dim
    fine = propagator_from_spec(config.fine, system, dim)
    coarse = propagator_from_spec(config.coarse, system, dim)
    x0 = initial_states(system, config.batch, config.seed, config.x0)
    return Problem(system, fine, coarse, x0, slice_times(config.t_end, config.slices))

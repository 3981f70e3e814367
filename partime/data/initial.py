"""Initial states of a solve: seeded draws from a system's region, the same on every rank.

A built-in system draws uniformly from the box its HiTS dataset starts in (``DATASET_SPECS``);
Lorenz is then spun up onto its attractor; KS perturbs the Kassam–Trefethen start; any other
system draws from U(-1, 1)^dim. One definition, used by ``partime solve``, the benchmarks and
the examples.
"""

from __future__ import annotations

import torch
from torch import Tensor

from partime.data.specs import DATASET_SPECS_ODE, Box
from partime.dynamics import VectorField, check_initial_state
from partime.steppers.rk import RKPropagator

#: Time units of RK4 (step ``SPIN_UP_DT``) after the draw, so a chaotic system starts on its
#: attractor instead of in the box its dataset's warm-up leaves.
SPIN_UP = {"lorenz": 25.0}
SPIN_UP_DT = 0.005
#: KS draws perturb the deterministic Kassam–Trefethen start by this relative amplitude.
KS_NOISE = 1e-3


def initial_region(system: VectorField) -> Box:
    """The box a system's initial states are drawn from (its dataset's training region)."""
    spec = DATASET_SPECS_ODE.get(system.name)
    return spec.region if spec is not None else Box((-1.0,) * system.dim, (1.0,) * system.dim)


def initial_states(
    system: VectorField | None,
    batch: int,
    seed: int = 0,
    x0: tuple[float, ...] | None = None,
) -> Tensor:
    """(batch, dim) float64 initial states: ``x0`` repeated, or ``batch`` draws seeded by
    ``seed`` (identical on every rank). ``system`` None (data-driven) needs ``x0``."""
    if x0 is not None:
        states = torch.tensor([x0], dtype=torch.float64).expand(batch, -1).clone()
        if system is not None:
            check_initial_state(system, states)
        return states
    if system is None:
        raise ValueError("a data-driven solve (no vector field) needs the initial state x0")
    gen = torch.Generator().manual_seed(seed)
    if hasattr(system, "initial_condition"):  # ks: a perturbed Kassam–Trefethen start
        u0 = system.initial_condition(batch)
        noise = torch.randn(u0.shape, generator=gen, dtype=u0.dtype)
        return u0 + KS_NOISE * u0.abs().max() * noise
    box = initial_region(system)
    low = torch.tensor(box.low, dtype=torch.float64)
    high = torch.tensor(box.high, dtype=torch.float64)
    states = low + (high - low) * torch.rand(batch, system.dim, generator=gen, dtype=torch.float64)
    spin_up = SPIN_UP.get(system.name, 0.0)
    if spin_up > 0:
        states = RKPropagator(system, SPIN_UP_DT)(states, 0.0, spin_up)
    return states

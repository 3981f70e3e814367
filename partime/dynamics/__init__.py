"""partime.dynamics: what evolves — vector fields ``f(t, x)`` batched over leading dimensions."""

from partime.dynamics.base import ComponentSystem, VectorField
from partime.dynamics.ks import KuramotoSivashinsky
from partime.dynamics.reference import reference_solution
from partime.dynamics.registry import SYSTEMS, CallableField, check_initial_state, get_system
from partime.dynamics.systems import (
    CubicOscillator,
    HarmonicOscillator,
    Hopf,
    Hyperbolic,
    Lorenz,
    VanDerPol,
)

__all__ = [
    "SYSTEMS",
    "CallableField",
    "ComponentSystem",
    "CubicOscillator",
    "HarmonicOscillator",
    "Hopf",
    "Hyperbolic",
    "KuramotoSivashinsky",
    "Lorenz",
    "VanDerPol",
    "VectorField",
    "check_initial_state",
    "get_system",
    "reference_solution",
]

"""partime.steppers: propagators ``prop(x, t0, t1)`` — RK, spectral (ETDRK4), neural flow maps."""

from partime.steppers.base import Propagator
from partime.steppers.compose import StepperCover
from partime.steppers.flow_training import train_flow_map
from partime.steppers.neural import FlowMapMLP, NeuralStepper
from partime.steppers.rk import RKPropagator
from partime.steppers.spectral import SpectralPropagator

__all__ = [
    "FlowMapMLP",
    "NeuralStepper",
    "Propagator",
    "RKPropagator",
    "SpectralPropagator",
    "StepperCover",
    "train_flow_map",
]

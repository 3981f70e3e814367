"""Networks as ODEs in depth: bases in depth, OdeBlock, ContinuousNet, LM-ResNet."""

from partime.nets.basis import BASES, Basis, FemHat, PiecewiseConstant, PiecewiseLinear, make_basis
from partime.nets.continuous import ContinuousNet, ContinuousNetConfig
from partime.nets.layers import ResidualUnit
from partime.nets.lmresnet import LMResNet, PreActResNet, ResNetConfig
from partime.nets.odeblock import OdeBlock

__all__ = [
    "BASES",
    "Basis",
    "ContinuousNet",
    "ContinuousNetConfig",
    "FemHat",
    "LMResNet",
    "OdeBlock",
    "PiecewiseConstant",
    "PiecewiseLinear",
    "PreActResNet",
    "ResNetConfig",
    "ResidualUnit",
    "make_basis",
]

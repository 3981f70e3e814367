"""Networks as ODEs in depth: bases in depth, OdeBlock, ContinuousNet, LM-ResNet."""

from partime.nets.basis import BASES, Basis, FemHat, PiecewiseConstant, PiecewiseLinear, make_basis
from partime.nets.odeblock import OdeBlock

__all__ = [
    "BASES",
    "Basis",
    "FemHat",
    "OdeBlock",
    "PiecewiseConstant",
    "PiecewiseLinear",
    "make_basis",
]

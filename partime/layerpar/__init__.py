"""partime.layerpar: layer-parallel training — a network's depth spread over ranks."""

from partime.layerpar.grid import PipelineGrid
from partime.layerpar.module import LayerParallel
from partime.layerpar.partition import DepthPartition, grid_cuts
from partime.layerpar.schedule import SCHEDULES, Action, Schedule, make_schedule, simulate
from partime.layerpar.units import ADAPTERS, DepthUnit, depth_units, unit_seed

__all__ = [
    "ADAPTERS",
    "SCHEDULES",
    "Action",
    "DepthPartition",
    "DepthUnit",
    "LayerParallel",
    "PipelineGrid",
    "Schedule",
    "depth_units",
    "grid_cuts",
    "make_schedule",
    "simulate",
    "unit_seed",
]

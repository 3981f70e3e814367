"""partime.hits: multiscale hierarchical time-steppers (HiTS: Liu, Kutz & Brunton 2022).

A hierarchy of neural flow maps with steps 2^k·dt, trained independently (and in parallel over
ranks), coupled by the vectorized multiscale forecast (Algorithm 1), combined with Runge–Kutta
in the hybrid scheme (Algorithm 2), and usable as a parareal coarse propagator.
"""

from __future__ import annotations

from partime.hits.config import HierarchyConfig
from partime.hits.coupling import cross_validate_range, forecast_mse, multiscale_forecast
from partime.hits.hierarchy import Hierarchy, default_steps, load_hierarchy
from partime.hits.hybrid import hybrid_forecast
from partime.hits.propagator import HierarchyPropagator
from partime.hits.training import train_hierarchy

__all__ = [
    "Hierarchy",
    "HierarchyConfig",
    "HierarchyPropagator",
    "cross_validate_range",
    "default_steps",
    "forecast_mse",
    "hybrid_forecast",
    "load_hierarchy",
    "multiscale_forecast",
    "train_hierarchy",
]

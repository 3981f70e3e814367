"""partime.pint: parallel-in-time integration (parareal core, executors, checkpoints)."""

from __future__ import annotations

from partime.pint.checkpoint import Checkpointer, load_checkpoint, save_checkpoint
from partime.pint.executors import (
    EXECUTORS,
    CommExecutor,
    RayExecutor,
    VectorizedExecutor,
    make_executor,
)
from partime.pint.parareal import parareal
from partime.pint.state import PararealResult, PararealState, slice_times

__all__ = [
    "EXECUTORS",
    "Checkpointer",
    "CommExecutor",
    "PararealResult",
    "PararealState",
    "RayExecutor",
    "VectorizedExecutor",
    "load_checkpoint",
    "make_executor",
    "parareal",
    "save_checkpoint",
    "slice_times",
]

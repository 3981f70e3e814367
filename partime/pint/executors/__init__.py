"""Where parareal's fine solves run: ``make_executor(name, ...)`` over the ``EXECUTORS`` registry.

See ``partime.pint.executors.vectorized`` for the executor API the parareal core calls.
"""

from __future__ import annotations

from collections.abc import Callable

from partime.pint.executors.comm import CommExecutor
from partime.pint.executors.ray import RayExecutor
from partime.pint.executors.vectorized import VectorizedExecutor


def _comm_executor(backend: str) -> Callable:
    def make(comm=None, workers=None, address=None):
        if comm is None:
            from partime.comm import from_env

            comm = from_env(backend)
        return CommExecutor(comm)

    return make


EXECUTORS: dict[str, Callable] = {
    "vectorized": lambda comm=None, workers=None, address=None: VectorizedExecutor(),
    "mpi": _comm_executor("mpi"),
    "torch": _comm_executor("torch"),
    "ray": lambda comm=None, workers=None, address=None: RayExecutor(workers, address),
}


def make_executor(name: str, comm=None, workers: int | None = None, address: str | None = None):
    """Executor by name: "vectorized", "mpi", "torch" (over ``comm`` or ``from_env``), "ray"."""
    if name not in EXECUTORS:
        raise ValueError(f"unknown executor {name!r}; choose one of {sorted(EXECUTORS)}")
    return EXECUTORS[name](comm=comm, workers=workers, address=address)


__all__ = ["EXECUTORS", "CommExecutor", "RayExecutor", "VectorizedExecutor", "make_executor"]

"""The MPI side of ``partime bench pint``: under ``mpiexec``, one solve repeated on the ranks.

``python -m partime.bench.pint_ranks CONFIG_JSON REPEATS OUT`` runs the parareal solve of the
``SolveConfig`` fields in CONFIG_JSON ``REPEATS`` times over the launcher's ranks; rank 0
saves the run with the least wall time (``{"wall_s", "iterations", "states"}``) to OUT.
"""

from __future__ import annotations

import json
import sys

import torch

from partime.comm import abort_on_exception, from_env
from partime.io import atomic_save
from partime.pint.config import SolveConfig
from partime.pint.executors import CommExecutor
from partime.pint.parareal import parareal
from partime.pint.problem import build_problem


def best_run(config: SolveConfig, repeats: int) -> dict | None:
    """The fastest of ``repeats`` solves of ``config`` over MPI ranks; its summary on rank 0."""
    problem = build_problem(config)
    comm = from_env("mpi")
    executor = CommExecutor(comm)
    with abort_on_exception(comm):
        runs = [
            parareal(
                problem.coarse,
                problem.fine,
                problem.x0,
                problem.times,
                executor,
                tol=config.tol,
                max_iter=config.max_iter,
            )  # fmt: skip
            for _ in range(repeats)
        ]
    # the ranks' clocks differ: a run is as slow as its slowest rank
    walls = [executor.max(run.wall_s) for run in runs]
    best = min(range(repeats), key=walls.__getitem__)
    if not executor.is_root:
        return None
    return {"wall_s": walls[best], "iterations": runs[best].iterations, "states": runs[best].states}


def main(argv: list[str]) -> int:
    config_json, repeats, out = argv
    torch.set_num_threads(1)
    summary = best_run(SolveConfig(**json.loads(config_json)), int(repeats))
    if summary is not None:
        atomic_save(summary, out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

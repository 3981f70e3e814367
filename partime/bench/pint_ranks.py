"""The MPI side of ``partime bench pint``: under ``mpiexec``, one solve repeated on the ranks.

``python -m partime.bench.pint_ranks CONFIG_JSON REPEATS BUDGET_S OUT`` runs the parareal
solve of the ``SolveConfig`` fields in CONFIG_JSON over the launcher's ranks as often as
``bench.pint_costs.Timing(REPEATS, BUDGET_S)`` says, every rank probing its fine pass and coarse
sweep after each solve (``bench.pint_costs.best_of``); rank 0 saves the result to OUT.
"""

from __future__ import annotations

import json
import sys

import torch

from partime.bench.pint_costs import Probe, Timing, best_of
from partime.comm import abort_on_exception, from_env
from partime.io import atomic_save
from partime.pint.config import SolveConfig
from partime.pint.executors import CommExecutor
from partime.pint.parareal import parareal
from partime.pint.problem import build_problem


def best_run(config: SolveConfig, timing: Timing) -> dict | None:
    """``best_of`` the solves of ``config`` over MPI ranks (a run, and a probe, is as slow as
    its slowest rank; every rank takes the same decisions); the result on rank 0."""
    problem = build_problem(config)
    comm = from_env("mpi")
    executor = CommExecutor(comm)
    probe = Probe(problem, executor.local_slices(config.slices))
    with abort_on_exception(comm):
        best = best_of(
            lambda: parareal(problem.coarse, problem.fine, problem.x0, problem.times, executor,
                             tol=config.tol, max_iter=config.max_iter),
            probe, timing, slowest=executor.max,
        )  # fmt: skip
    return best if executor.is_root else None


def main(argv: list[str]) -> int:
    config_json, repeats, budget_s, out = argv
    torch.set_num_threads(1)
    timing = Timing(int(repeats), float(budget_s))
    summary = best_run(SolveConfig(**json.loads(config_json)), timing)
    if summary is not None:
        atomic_save(summary, out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""The parallel-in-time solve as one call: ``solve(SolveConfig) -> SolveReport``.

Builds the problem and validates it on every rank before any communication, then runs
``parareal`` on the executor the backend names, with a progress bar and per-iteration
checkpoints; the executor is always closed, also when the solve raises.
"""

from __future__ import annotations

from pathlib import Path

from torch import Tensor

from partime.comm import Comm, abort_on_exception, from_env
from partime.pint.checkpoint import Checkpointer, load_checkpoint
from partime.pint.config import SolveConfig
from partime.pint.executors import make_executor
from partime.pint.parareal import parareal
from partime.pint.problem import build_problem
from partime.pint.report import SolveReport
from partime.pint.state import PararealState
from partime.pint.validate import check_problem
from partime.steppers.base import Propagator

# The communicator each backend runs on ("auto": the launcher's environment decides), and the
# executor of each communicator under "auto".
_COMM_OF_BACKEND = {
    "auto": "auto",
    "serial": "serial",
    "ray": "serial",
    "mpi": "mpi",
    "torch": "torch",
}
_EXECUTOR_OF_COMM = {"serial": "vectorized", "mpi": "mpi", "torch": "torch"}
#: Most fine states saved per slice in the dense solution (fewer if a slice has fewer steps).
DENSE_SAVES_PER_SLICE = 16


def dense_save_every(fine: Propagator, times: Tensor) -> int | None:
    """Fine steps between saved states so a slice keeps at most ``DENSE_SAVES_PER_SLICE``;
    None when ``fine`` cannot save a trajectory or the slices differ in step count."""
    check = getattr(fine, "check_interval", None)
    if check is None or not hasattr(fine, "trajectory"):
        return None
    t = times.tolist()
    counts = {check(a, b) for a, b in zip(t[:-1], t[1:], strict=True)}
    if len(counts) != 1:
        return None
    (n,) = counts
    return next(s for s in range(1, n + 1) if n % s == 0 and n // s <= DENSE_SAVES_PER_SLICE)


def _load_resume(directory: str, rank: int, comm: Comm) -> PararealState:
    """This rank's checkpoint; if any rank has no usable one, ValueError on every rank (a
    rank that quit alone would leave the others waiting for it)."""
    try:
        state, error = load_checkpoint(directory, rank), None
    except (ValueError, FileNotFoundError) as err:
        state, error = None, err
    if comm.allreduce(float(error is not None), op="max"):
        raise ValueError(
            str(error) if error else "cannot resume: another rank's checkpoint is unusable"
        )
    return state


class _Progress:
    """Per-iteration callback: checkpoint, and a tqdm bar over iterations on the root rank."""

    def __init__(self, config: SolveConfig, show: bool) -> None:
        self.checkpointer = Checkpointer(Path(config.checkpoint)) if config.checkpoint else None
        self.bar = None
        if show:
            from tqdm import tqdm

            total = config.slices if config.max_iter is None else config.max_iter
            self.bar = tqdm(total=total, desc="parareal", unit="iter", leave=False)

    def __call__(self, state: PararealState) -> None:
        if self.checkpointer is not None:
            self.checkpointer(state)
        if self.bar is not None:
            self.bar.update(state.iteration - self.bar.n)
            self.bar.set_postfix(residual=f"{state.residuals[-1]:.2e}" if state.residuals else "-")

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def solve(config: SolveConfig, comm: Comm | None = None) -> SolveReport:
    """Run the solve ``config`` describes on the ranks of ``comm`` (default: from the launcher)."""
    problem = build_problem(config)  # every rank, before the communicator exists
    if comm is None:
        comm = from_env(_COMM_OF_BACKEND[config.backend])
    name = _EXECUTOR_OF_COMM[comm.backend] if config.backend != "ray" else "ray"
    executor = make_executor(name, comm=comm, workers=config.workers, address=config.address)
    progress = None
    try:
        check_problem(problem.coarse, problem.fine, problem.x0, problem.times, executor,
                      config.tol, config.max_iter, config.rtol)  # fmt: skip
        resume = _load_resume(config.checkpoint, executor.rank, comm) if config.resume else None
        progress = _Progress(config, show=executor.is_root and config.progress)
        save_every = dense_save_every(problem.fine, problem.times) if config.dense else None
        with abort_on_exception(comm):
            result = parareal(
                problem.coarse,
                problem.fine,
                problem.x0,
                problem.times,
                executor,
                tol=config.tol,
                rtol=config.rtol,
                max_iter=config.max_iter,
                callback=progress,
                resume=resume,
                save_every=save_every,
            )
    finally:
        if progress is not None:
            progress.close()
        executor.close()
    return SolveReport(config, problem, result, executor.size, name, executor.is_root)

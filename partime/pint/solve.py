"""The parallel-in-time solve as one call: ``solve(SolveConfig) -> SolveReport``.

Builds the system, the coarse and fine propagators, the initial states and the executor,
validates all of it on every rank before any communication, runs parareal (progress bar and
checkpoints on the way) and optionally times the serial fine solve it must beat.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from partime.dynamics import ComponentSystem, VectorField, check_initial_state, get_system
from partime.pint.spec import propagator_from_spec
from partime.steppers.base import Propagator

BACKENDS = ("auto", "vectorized", "mpi", "torch", "ray")
#: ``--serial-mode``: the RK fast-path settings the serial fine solve is timed with (the best
#: one is kept). The default, "best", is what a speedup must be measured against; "auto" lets
#: the integrator compile only when the run pays back the compile.
SERIAL_MODES: dict[str, dict[str, bool | None]] = {
    "auto": {"auto": None},
    "eager": {"eager": False},
    "compiled": {"compiled": True},
    "best": {"eager": False, "compiled": True},
}

# Which communicator each backend runs on; "auto" lets the launcher's environment decide.
_COMM_OF_BACKEND = {
    "auto": "auto",
    "vectorized": "serial",
    "ray": "serial",
    "mpi": "mpi",
    "torch": "torch",
}
# Executor per communicator backend when --backend auto finds several ranks.
_EXECUTOR_OF_COMM = {"serial": "vectorized", "mpi": "mpi", "torch": "torch"}

#: Default initial-state region per system for ``batch`` draws: uniform in [low, high] per
#: component (the HiTS data regions), then integrated for ``spin_up`` time units with RK4 at
#: step 0.005 so a chaotic system starts on its attractor. Other systems: U(-1, 1)^dim.
INITIAL_REGIONS: dict[str, tuple[tuple[float, ...], tuple[float, ...], float]] = {
    "harmonic": ((-1.0, -1.0), (1.0, 1.0), 0.0),
    "hyperbolic": ((-1.0, -1.0), (1.0, 1.0), 0.0),
    "cubic": ((-1.0, -1.0), (1.0, 1.0), 0.0),
    "vdp": ((-2.0, -4.0), (2.0, 4.0), 0.0),
    "hopf": ((-0.2, -1.0, -1.0), (0.6, 2.0, 1.0), 0.0),
    "lorenz": ((-0.1, -0.1, -0.1), (0.1, 0.1, 0.1), 25.0),
}
_SPIN_UP_DT = 0.005
# Saved fine states per slice in the plotted dense solution (fewer if a slice has fewer steps).
_PLOT_SAVES_PER_SLICE = 16
# KS draws perturb the deterministic Kassam–Trefethen start by this relative amplitude.
_KS_NOISE = 1e-3


@dataclass(frozen=True)
class SolveConfig:
    """One parallel-in-time solve; one field per ``partime solve`` flag (see its ``--help``)."""

    system: str
    t_end: float
    slices: int
    fine: str
    coarse: str
    tol: float = 1e-10
    max_iter: int | None = None
    backend: str = "auto"
    workers: int | None = None
    address: str | None = None
    dim: int | None = None
    x0: tuple[float, ...] | None = None
    batch: int = 1
    seed: int = 0
    out: str | None = None
    plot: str | None = None
    compare_serial: bool = False
    serial_mode: str = "best"
    json: bool = False
    checkpoint: str | None = None
    resume: bool = False
    progress: bool = True

    def __post_init__(self) -> None:
        def bad(name: str, value: object, need: str) -> ValueError:
            return ValueError(f"{name} must be {need}, got {value!r}")

        if not (isinstance(self.t_end, int | float) and math.isfinite(self.t_end)):
            raise bad("t_end", self.t_end, "a finite number")
        if not self.t_end > 0:
            raise ValueError(f"the end time must be T > 0, got t_end={self.t_end}")
        for name in ("slices", "batch"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise bad(name, value, "a positive integer")
        if not (isinstance(self.tol, int | float) and math.isfinite(self.tol) and self.tol >= 0):
            raise bad("tol", self.tol, "a finite number >= 0")
        if self.max_iter is not None and (not isinstance(self.max_iter, int) or self.max_iter < 0):
            raise bad("max_iter", self.max_iter, "None or an integer >= 0")
        if self.backend not in BACKENDS:
            raise bad("backend", self.backend, f"one of {', '.join(BACKENDS)}")
        if self.serial_mode not in SERIAL_MODES:
            raise bad("serial_mode", self.serial_mode, f"one of {', '.join(SERIAL_MODES)}")
        if self.workers is not None and (not isinstance(self.workers, int) or self.workers < 1):
            raise bad("workers", self.workers, "a positive integer")
        if self.workers is not None and self.backend != "ray":
            raise ValueError(f"workers={self.workers} applies to backend 'ray' only")
        if self.resume and self.checkpoint is None:
            raise ValueError("resume needs the checkpoint directory of the run to continue")
        if self.x0 is not None:
            if len(self.x0) == 0 or not all(math.isfinite(v) for v in self.x0):
                raise bad("x0", self.x0, "a non-empty list of finite numbers")
            if self.dim is not None and len(self.x0) != self.dim:
                raise ValueError(f"x0 has {len(self.x0)} components but dim={self.dim}")
        if self.system == "none" and self.x0 is None:
            raise ValueError("a data-driven solve (system 'none') needs the initial state --x0")

    @property
    def slice_length(self) -> float:
        return self.t_end / self.slices


@dataclass
class SolveReport:
    """What a solve produced. Tensors and the serial comparison live on the root rank only.

    ``times`` (slices+1,), ``x0`` (batch, dim), ``states`` and ``serial_states``
    (slices+1, batch, dim) at the slice times; ``dense`` (times (M,), states (M, batch, dim)):
    the fine solution between them, for plots; wall times in seconds.
    """

    config: SolveConfig
    times: Tensor
    x0: Tensor
    states: Tensor | None
    iterations: int
    residuals: list[float]
    converged: bool
    wall_s: float
    fine_calls: int
    coarse_calls: int
    ranks: int
    executor: str
    is_root: bool
    serial_states: Tensor | None = None
    serial_wall_s: float | None = None
    serial_mode: str | None = None
    dense: tuple[Tensor, Tensor] | None = None

    @property
    def max_abs_err_vs_serial(self) -> float | None:
        if self.states is None or self.serial_states is None:
            return None
        return float((self.states - self.serial_states).abs().max())

    @property
    def speedup(self) -> float | None:
        return None if self.serial_wall_s is None else self.serial_wall_s / self.wall_s

    def summary(self) -> dict:
        """The machine-readable summary (``--json``): the issue's keys plus context."""
        return {
            "iterations": self.iterations,
            "residuals": self.residuals,
            "converged": self.converged,
            "wall_s": self.wall_s,
            "serial_wall_s": self.serial_wall_s,
            "speedup": self.speedup,
            "max_abs_err_vs_serial": self.max_abs_err_vs_serial,
            "serial_mode": self.serial_mode,
            "fine_calls": self.fine_calls,
            "coarse_calls": self.coarse_calls,
            "ranks": self.ranks,
            "executor": self.executor,
            "slices": self.config.slices,
            "batch": int(self.x0.shape[0]),
        }


def initial_states(system: VectorField | None, config: SolveConfig) -> Tensor:
    """(batch, dim) float64 initial states: ``config.x0``, or ``batch`` seeded draws (same on
    every rank) from the system's default region (``INITIAL_REGIONS``)."""
    if config.x0 is not None:
        x0 = torch.tensor([config.x0], dtype=torch.float64).expand(config.batch, -1).clone()
        if system is not None:
            check_initial_state(system, x0)
        return x0
    gen = torch.Generator().manual_seed(config.seed)
    if hasattr(system, "initial_condition"):  # ks: a perturbed Kassam–Trefethen start
        u0 = system.initial_condition(config.batch)
        noise = torch.randn(u0.shape, generator=gen, dtype=u0.dtype)
        return u0 + _KS_NOISE * u0.abs().max() * noise
    ones = (1.0,) * system.dim
    low, high, spin_up = INITIAL_REGIONS.get(system.name, (tuple(-v for v in ones), ones, 0.0))
    low_t, high_t = torch.tensor(low, dtype=torch.float64), torch.tensor(high, dtype=torch.float64)
    x0 = low_t + (high_t - low_t) * torch.rand(
        config.batch, system.dim, generator=gen, dtype=torch.float64
    )
    if spin_up > 0:
        from partime.steppers import RKPropagator

        x0 = RKPropagator(system, _SPIN_UP_DT)(x0, 0.0, spin_up)
    return x0


@dataclass(frozen=True)
class Problem:
    """A validated solve: vector field (None when data-driven), propagators, x0, slice times."""

    system: VectorField | None
    fine: Propagator
    coarse: Propagator
    x0: Tensor
    times: Tensor


def build_problem(config: SolveConfig) -> Problem:
    """Everything local to a rank, validated: no communication happens here."""
    from partime.pint import slice_times

    system = None if config.system == "none" else get_system(config.system, config.dim)
    dim = len(config.x0) if system is None else system.dim
    fine = propagator_from_spec(config.fine, system, dim)
    coarse = propagator_from_spec(config.coarse, system, dim)
    x0 = initial_states(system, config)
    return Problem(system, fine, coarse, x0, slice_times(config.t_end, config.slices))


def _serial_variants(fine: Propagator, serial_mode: str) -> dict[str, Propagator]:
    """The fine propagator in each mode of ``serial_mode``; the RK fast-path setting only
    matters for RK on a component-wise system, anything else is timed as given."""
    from partime.steppers import RKPropagator

    if isinstance(fine, RKPropagator) and isinstance(fine.f, ComponentSystem):
        return {
            mode: RKPropagator(fine.f, fine.dt, fine.scheme, fast=fast)
            for mode, fast in SERIAL_MODES[serial_mode].items()
        }
    return {"as given": fine}


def serial_fine(
    fine: Propagator, x0: Tensor, times: Tensor, serial_mode: str = "auto"
) -> tuple[Tensor, float, str]:
    """Serial fine solve over all slices in its fastest mode, timed warm (an untimed first
    slice absorbs compilation). Returns states (slices+1, batch, dim), wall seconds, mode name."""
    best: tuple[Tensor, float, str] | None = None
    bounds = [(float(times[n]), float(times[n + 1])) for n in range(len(times) - 1)]
    for mode, prop in _serial_variants(fine, serial_mode).items():
        with torch.no_grad():
            prop(x0, *bounds[0])  # warm-up: every slice has the same step count, so this compiles
            start = time.perf_counter()
            states = [x0]
            for t0, t1 in bounds:
                states.append(prop(states[-1], t0, t1))
            wall = time.perf_counter() - start
        if best is None or wall < best[1]:
            best = (torch.stack(states), wall, mode)
    return best


def _load_resume(directory: str, rank: int, comm):
    """This rank's checkpoint; if any rank has no usable one, ValueError on every rank (a
    rank that quit alone would leave the others waiting for it)."""
    from partime.pint import load_checkpoint

    try:
        state, error = load_checkpoint(directory, rank), None
    except (ValueError, FileNotFoundError) as err:
        state, error = None, err
    if comm.allreduce(float(error is not None), op="max"):
        raise ValueError(
            str(error) if error else "cannot resume: another rank's checkpoint is unusable"
        )
    return state


def _progress_bar(config: SolveConfig, is_root: bool):
    """A tqdm bar over iterations on the root rank (stderr), or None."""
    if not (is_root and config.progress):
        return None
    from tqdm import tqdm

    total = config.slices if config.max_iter is None else config.max_iter
    return tqdm(total=total, desc="parareal", unit="iter", leave=False)


def solve(config: SolveConfig, comm=None) -> SolveReport:
    """Run the solve ``config`` describes on the ranks of ``comm`` (default: from the launcher)."""
    from partime.comm import abort_on_exception, from_env
    from partime.pint import Checkpointer, make_executor, parareal
    from partime.pint.validate import check_problem

    problem = build_problem(config)  # every rank, before the communicator exists
    if comm is None:
        comm = from_env(_COMM_OF_BACKEND[config.backend])
    name = config.backend
    if name == "auto":
        name = _EXECUTOR_OF_COMM[comm.backend]
    executor = make_executor(name, comm=comm, workers=config.workers, address=config.address)
    check_problem(
        problem.coarse,
        problem.fine,
        problem.x0,
        problem.times,
        executor,
        config.tol,
        config.max_iter,
    )
    resume = _load_resume(config.checkpoint, executor.rank, comm) if config.resume else None
    checkpointer = Checkpointer(Path(config.checkpoint)) if config.checkpoint else None
    bar = _progress_bar(config, executor.is_root)

    def callback(state) -> None:
        if checkpointer is not None:
            checkpointer(state)
        if bar is not None:
            bar.update(state.iteration - bar.n)
            bar.set_postfix(residual=f"{state.residuals[-1]:.2e}" if state.residuals else "-")

    try:
        with abort_on_exception(comm):
            result = parareal(
                problem.coarse,
                problem.fine,
                problem.x0,
                problem.times,
                executor,
                tol=config.tol,
                max_iter=config.max_iter,
                callback=callback,
                resume=resume,
            )
    finally:
        if bar is not None:
            bar.close()
    executor.close()
    report = SolveReport(
        config=config,
        times=problem.times,
        x0=problem.x0,
        states=result.states,
        iterations=result.iterations,
        residuals=list(result.residuals),
        converged=result.converged,
        wall_s=result.wall_s,
        fine_calls=result.fine_calls,
        coarse_calls=result.coarse_calls,
        ranks=executor.size,
        executor=name,
        is_root=executor.is_root,
    )
    if config.compare_serial and report.is_root:
        states, wall, mode = serial_fine(
            problem.fine, problem.x0, problem.times, config.serial_mode
        )
        report.serial_states, report.serial_wall_s, report.serial_mode = states, wall, mode
    if config.plot and report.is_root:
        report.dense = dense_fine(problem.fine, report.states, problem.times)
    return report


def dense_fine(
    fine: Propagator, states: Tensor, times: Tensor, per_slice: int = _PLOT_SAVES_PER_SLICE
) -> tuple[Tensor, Tensor] | None:
    """The fine solution from every slice start state, saved at most ``per_slice`` times per
    slice, as (times (M,), states (M, batch, dim)); None when ``fine`` cannot save a
    trajectory or the slices differ in step count. One batched fine pass, not timed."""
    from partime.pint.executors.vectorized import fine_batched, join_slices

    check = getattr(fine, "check_interval", None)
    if check is None or not hasattr(fine, "trajectory"):
        return None
    t = times.tolist()
    counts = {check(a, b) for a, b in zip(t[:-1], t[1:], strict=True)}
    if len(counts) != 1:
        return None
    (n,) = counts
    save_every = next(s for s in range(1, n + 1) if n % s == 0 and n // s <= per_slice)
    with torch.no_grad():
        saved = fine_batched(fine, states[:-1], times[:-1], times[1:], save_every)
    m = n // save_every  # saved is (slices, m+1, batch, dim); slice ends repeat next starts
    dense = join_slices(saved)
    offsets = torch.arange(m, dtype=torch.float64) / m
    dense_t = (times[:-1, None] + offsets * (times[1:] - times[:-1])[:, None]).flatten()
    return torch.cat([dense_t, times[-1:]]), dense

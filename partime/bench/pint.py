"""Parareal vs serial fine on Lorenz (and KS): iterations, wall time, speedup, model bound.

Every row is measured in this run against the same serial fine solve (same propagator, its
fastest mode, compile excluded). The bound is parareal's model S = 1/((K+1)·c_G/c_F + K/P)
with c_F, c_G the measured fine and coarse cost per slice (c_G of the coarse sweep parareal
runs: fused into one call when the coarse offers it) and P the *effective* parallelism of the
fine pass: serial fine time / time of one fine pass over the slices a rank owns. For MPI that
is about the rank count; for the vectorized executor it is what batching all slices into one
call buys on this machine (no extra cores). The K fine passes are the ones the solve made:
all of a rank's slices each time for a compiled fine (static shapes), else the unconverged
ones (the passes shrink with the frontier). c_G and the fine passes are timed between the
solves of the row, after every solve (on MPI on every rank at once, the slowest rank
counting), so that model and solves see the same moments of a machine whose speed drifts.
"+us/it" is the wall time the model leaves out (Python around the kernels, messages,
reductions) per sweep, of the K+1 a run makes. On a shared machine a 2 ms solve is often
preempted: every time is the best of at least ``--repeats`` runs and of as many more as fit in
``--budget`` seconds (short runs get many), and each table prints the load average.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

from partime.bench.pint_costs import BUDGET_S, REPEATS, Costs, Probe, Timing, best_of, best_wall
from partime.bench.serial import SERIAL_MODES, serial_fine
from partime.pint.config import SolveConfig
from partime.pint.executors import make_executor
from partime.pint.parareal import parareal
from partime.pint.problem import build_problem

# (name, config overrides) of the Lorenz benchmark problem and its --quick reduction
LORENZ = {"system": "lorenz", "t_end": 2.56, "slices": 32, "fine": "rk4:5e-4", "batch": 16}
LORENZ_QUICK = {**LORENZ, "t_end": 0.64, "slices": 8, "batch": 4}
# The Lorenz row with both propagators on the compiled RK path (kernels built before timing)
LORENZ_COMPILED = {"fine": "rk4:5e-4:compiled", "coarse": "rk4:0.02:compiled"}
# 32 fields: one ETDRK4 step of (32, 512) costs as much per row as of (128, 512), i.e. the
# fine solve is compute-bound and batching slices buys nothing, only ranks do.
KS = {"system": "ks", "t_end": 8.0, "slices": 8, "fine": "etdrk4:0.01", "batch": 32}
KS_COARSE = "etdrk4:0.25"
KS_QUICK = {**KS, "t_end": 2.0, "slices": 4, "fine": "etdrk4:0.05", "batch": 2}
TOL = 1e-11  # the residual tracks the error closely; one decade of margin for error <= 1e-10


_HEADER = f"{'case':<32}{'backend':<12}{'K':>4}{'wall s':>10}{'speedup':>9}{'bound S':>9}"
_HEADER += f"{'of bound':>10}{'+us/it':>8}{'max err':>11}{'vs eager':>10}"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--quick", action="store_true", help="small problems (tests)")
    parser.add_argument("--neural", default=None, help="Lorenz neural coarse (NeuralStepper file)")
    parser.add_argument(
        "--hits", default=None, help="Lorenz HiTS coarse (hierarchy file, e.g. of train coarse)"
    )
    parser.add_argument("--ranks", type=int, default=2, help="MPI ranks of the distributed rows")
    parser.add_argument("--no-ks", action="store_true", help="skip the Kuramoto–Sivashinsky case")
    parser.add_argument("--ray", action="store_true", help="also run on Ray actors (--ranks)")
    parser.add_argument(
        "--repeats", type=int, default=None,
        help=f"time everything at least this often, keep the best (default {REPEATS}; --quick 1)",
    )  # fmt: skip
    parser.add_argument(
        "--budget", type=float, default=None,
        help=f"and time it again while under this many seconds (default {BUDGET_S}; --quick 0)",
    )  # fmt: skip
    parser.add_argument("--json", action="store_true", help="also print one JSON line of rows")


def _coarse_costs(problem, timing: Timing) -> tuple[float, float | None]:
    """Warm wall time per slice of one whole coarse sweep: slice by slice, and fused into one
    call (None where the coarse offers no fused sweep)."""
    x0, t0, t1 = problem.x0, problem.times[:-1], problem.times[1:]
    bounds = list(zip(t0.tolist(), t1.tolist(), strict=True))

    def slice_by_slice() -> None:
        x = x0
        for a, b in bounds:
            x = problem.coarse(x, a, b)

    per_call = best_wall(slice_by_slice, timing) / len(bounds)
    offer = getattr(problem.coarse, "fused_sweep", None)
    fused = offer(x0, t0, t1) if callable(offer) else None
    if fused is None:
        return per_call, None
    ends = x0.new_empty((len(bounds), *x0.shape))
    starts = torch.cat([x0[None], ends])
    many = 20  # one sweep takes ~50 us: time 20 in a row
    sweeps = best_wall(lambda: [fused(0, starts, ends) for _ in range(many)], timing)
    return per_call, sweeps / many / len(bounds)


def _print_coarse_cost(problem, spec: str, args) -> None:
    """``problem``'s coarse per slice called slice by slice, and in one fused sweep."""
    per_call, fused = _coarse_costs(problem, args.timing)
    line = f"coarse {spec}: {per_call * 1e6:.1f} us per slice called slice by slice"
    if fused is None:
        print(line)
        return
    print(f"{line}, {fused * 1e6:.2f} us in one fused sweep ({per_call / fused:.0f}x less)")


def _measure(config: SolveConfig, mode: str, args) -> tuple[Costs, object]:
    problem = build_problem(config)
    serial = serial_fine(problem.fine, problem.x0, problem.times, mode)
    again_mode = serial.mode if serial.mode in SERIAL_MODES else mode
    runs, spent = 1, serial.wall_s
    while args.timing.more(runs, spent):  # again, in the fastest mode only
        again = serial_fine(problem.fine, problem.x0, problem.times, again_mode)
        serial = again if again.wall_s < serial.wall_s else serial
        runs, spent = runs + 1, spent + again.wall_s
    eager_wall = serial_fine(problem.fine, problem.x0, problem.times, "eager").wall_s
    _print_coarse_cost(problem, config.coarse, args)
    return Costs(serial.states, serial.wall_s, serial.mode, eager_wall), problem


def _local_run(problem, config: SolveConfig, executor: str, timing: Timing, ranks: int) -> dict:
    """``best_of`` the solves in this process on ``executor`` (vectorized, or Ray actors
    started once, before the clock, as MPI's ranks are), probing a rank's share of the slices
    (none for the hybrid scheme: no bound)."""
    ex = make_executor(executor, workers=ranks if executor == "ray" else None)
    share = -(-config.slices // ranks)  # the last rank's block: it is never idle
    local = range(config.slices - share, config.slices)
    probe = Probe(problem, local) if config.max_iter != 0 else None
    try:
        return best_of(
            lambda: parareal(problem.coarse, problem.fine, problem.x0, problem.times, ex,
                             tol=config.tol, max_iter=config.max_iter),
            probe, timing,
        )  # fmt: skip
    finally:
        ex.close()


def _mpi_run(config: SolveConfig, ranks: int, timing: Timing) -> dict:
    """The fastest of ``timing``'s solves under ``mpiexec -n ranks`` (``bench.pint_ranks``)."""
    mpiexec = shutil.which("mpiexec")
    if mpiexec is None:
        raise RuntimeError("mpiexec not found")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "run.pt"
        fields = json.dumps(dataclasses.asdict(config))
        cmd = [mpiexec, "-n", str(ranks), sys.executable, "-m", "partime.bench.pint_ranks"]
        times = [str(timing.repeats), str(timing.budget_s)]
        done = subprocess.run([*cmd, fields, *times, str(out)], capture_output=True,
                              text=True, timeout=600)  # fmt: skip
        if done.returncode != 0:
            raise RuntimeError(done.stderr.strip().splitlines()[-1] if done.stderr else "failed")
        return torch.load(out)


def _row(problem: str, name: str, backend: str, costs: Costs, run: dict) -> dict:
    k, wall, states = run["iterations"], run["wall_s"], run["states"]
    err = float((states - costs.serial_states).abs().max())
    c_coarse, fine_s = run.get("c_coarse_s"), run.get("fine_s")
    bound, p_eff = (None, None) if c_coarse is None else costs.bound(k, fine_s, c_coarse)
    speedup = costs.serial_wall / wall
    frac = speedup / bound if bound else None
    # what the model leaves out (Python, messages, reductions), per sweep of the K+1
    extra = (wall - costs.serial_wall / bound) / (k + 1) if bound else None
    return {"problem": problem, "case": name, "backend": backend, "iterations": k,
            "wall_s": wall, "speedup": speedup, "speedup_vs_eager": costs.eager_wall / wall,
            "bound": bound, "p_eff": p_eff, "c_coarse_s": c_coarse,
            "fraction_of_bound": frac, "unmodelled_s_per_iteration": extra,
            "max_abs_err_vs_serial": err, "load_avg": os.getloadavg()[0]}  # fmt: skip


def _print_row(row: dict) -> None:
    def fmt(v, spec):
        return format(v, spec) if v is not None else "-".rjust(int(spec[:-3] or 0))

    k = "-" if row["iterations"] is None else row["iterations"]
    extra = row["unmodelled_s_per_iteration"]
    extra_us = None if extra is None else extra * 1e6
    print(
        f"{row['case']:<32}{row['backend']:<12}{k:>4}{row['wall_s']:>10.4f}"
        f"{row['speedup']:>9.2f}{fmt(row['bound'], '9.2f')}{fmt(row['fraction_of_bound'], '10.2f')}"
        f"{fmt(extra_us, '8.0f')}"
        f"{row['max_abs_err_vs_serial']:>11.2e}{row['speedup_vs_eager']:>10.2f}",
        flush=True,
    )


def _distributed_rows(name: str, config: SolveConfig, problem, costs: Costs, args,
                      rank_counts: tuple[int, ...]) -> list[dict]:  # fmt: skip
    """Parareal on ``mpiexec -n r`` for each r of ``rank_counts``, then (--ray) on Ray."""
    rows = []
    for ranks in rank_counts:
        try:
            run = _mpi_run(config, ranks, args.timing)
        except (RuntimeError, subprocess.TimeoutExpired) as err:
            print(f"{name}, mpi x{ranks}: failed: {err}")
            continue
        rows.append(_row(config.system, name, f"mpi x{ranks}", costs, run))
    if args.ray:
        run = _local_run(problem, config, "ray", args.timing, args.ranks)
        rows.append(_row(config.system, name, f"ray x{args.ranks}", costs, run))
    return rows


def _compiled_rows(config: SolveConfig, costs: Costs, args) -> list[dict]:
    """Parareal with compiled fine and coarse RK: vectorized, on MPI ranks, on Ray."""
    problem = build_problem(config)
    _print_coarse_cost(problem, config.coarse, args)
    name = "parareal, RK4 coarse (compiled)"
    run = _local_run(problem, config, "vectorized", args.timing, 1)
    rows = [_row(config.system, name, "vectorized", costs, run)]
    return rows + _distributed_rows(name, config, problem, costs, args, (args.ranks,))


def _print_table(rows: list[dict], ranks: int) -> None:
    """The rows, then Ray's wall time over MPI's for each case run on both."""
    print(_HEADER)
    for row in rows:
        _print_row(row)
    walls = {(row["case"], row["backend"]): row["wall_s"] for row in rows}
    for case in dict.fromkeys(row["case"] for row in rows):
        mpi, ray = walls.get((case, f"mpi x{ranks}")), walls.get((case, f"ray x{ranks}"))
        if mpi and ray:
            print(f"ray / mpi wall time, {case}: {ray / mpi:.2f}")


def _case(
    title: str, base: dict, coarses: dict[str, str], args, mode: str, compiled: dict | None = None
) -> list[dict]:
    """One problem: serial fine, each coarse vectorized, the hybrid, then MPI (and Ray) with
    the first; with ``compiled`` (config overrides) also the compiled-RK rows."""
    first = next(iter(coarses.values()))
    config = SolveConfig(**base, coarse=first, tol=TOL, backend="serial", progress=False)
    print(f"\n{title}: {config.slices} slices x {config.batch} trajectories, fine {config.fine}"
          f" (load average {os.getloadavg()[0]:.1f})")  # fmt: skip
    costs, problem = _measure(config, mode, args)
    system = base["system"]
    serial_run = {"iterations": None, "wall_s": costs.serial_wall, "states": costs.serial_states}
    rows = [_row(system, "serial fine", costs.serial_mode, costs, serial_run)]
    for label, coarse in coarses.items():
        run_config = dataclasses.replace(config, coarse=coarse)
        run_problem = problem
        if coarse != first:
            run_problem = build_problem(run_config)
            _print_coarse_cost(run_problem, coarse, args)
        for name, max_iter in ((f"parareal, {label} coarse", None), (f"hybrid, {label}", 0)):
            solve_config = dataclasses.replace(run_config, max_iter=max_iter)
            try:
                run = _local_run(run_problem, solve_config, "vectorized", args.timing, 1)
            except FloatingPointError as err:
                print(f"{name}: diverged: {err}")
                continue
            rows.append(_row(system, name, "vectorized", costs, run))
    name = f"parareal, {next(iter(coarses))} coarse"
    rank_counts = (1, args.ranks) if system == "ks" else (args.ranks,)
    rows += _distributed_rows(name, config, problem, costs, args, rank_counts)
    if compiled:
        rows += _compiled_rows(dataclasses.replace(config, **compiled), costs, args)
    _print_table(rows, args.ranks)
    print(f"(load average {os.getloadavg()[0]:.1f} at the end)")
    return rows


def run(args: argparse.Namespace) -> int:
    torch.set_num_threads(1)
    repeats = args.repeats if args.repeats is not None else 1 if args.quick else REPEATS
    budget = args.budget if args.budget is not None else 0.0 if args.quick else BUDGET_S
    if repeats < 1 or not budget >= 0:
        raise ValueError(f"--repeats must be >= 1 and --budget >= 0, got {repeats}, {budget}")
    args.timing = Timing(repeats, budget)
    lorenz = LORENZ_QUICK if args.quick else LORENZ
    coarses = {"RK4 0.02": "rk4:0.02"}
    if args.neural:
        coarses["neural"] = f"neural:{args.neural}"
    if args.hits:
        coarses["HiTS"] = f"hits:{args.hits}"
    # --quick leaves out the compiled serial path: its compile alone takes longer than the test.
    mode = "eager" if args.quick else "best"
    # Compiling the kernels of the compiled rows takes longer than --quick may.
    compiled = None if args.quick else LORENZ_COMPILED
    rows = _case("Lorenz", lorenz, coarses, args, mode, compiled)
    if not args.no_ks:
        ks = KS_QUICK if args.quick else KS
        try:
            title = "Kuramoto-Sivashinsky, 512 points"
            rows += _case(title, ks, {"ETDRK4 0.25": KS_COARSE}, args, mode)
        except ImportError as err:
            print(f"\nKuramoto-Sivashinsky: skipped ({err})")
    if args.json:
        print(json.dumps({"rows": rows}))
    return 0

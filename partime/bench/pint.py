"""Parareal vs serial fine on Lorenz (and KS): iterations, wall time, speedup, model bound.

Every row is measured in this run against the same serial fine solve (same propagator, its
fastest mode, compile excluded). The bound is parareal's model S = 1/((K+1)·c_G/c_F + K/P)
with c_F, c_G the measured fine and coarse cost per slice and P the *effective* parallelism
of the fine pass: serial fine time / time of one fine pass over the slices a rank owns. For
MPI that is about the rank count; for the vectorized executor it is what batching all
slices into one call buys on this machine (no extra cores).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from partime.bench.serial import serial_fine
from partime.pint.config import SolveConfig
from partime.pint.problem import build_problem
from partime.pint.results import read_results
from partime.pint.solve import solve

# (name, config overrides) of the Lorenz benchmark problem and its --quick reduction
LORENZ = {"system": "lorenz", "t_end": 2.56, "slices": 32, "fine": "rk4:5e-4", "batch": 16}
LORENZ_QUICK = {**LORENZ, "t_end": 0.64, "slices": 8, "batch": 4}
# 32 fields: one ETDRK4 step of (32, 512) costs as much per row as of (128, 512), i.e. the
# fine solve is compute-bound and batching slices buys nothing, only ranks do.
# The Lorenz row with both propagators on the compiled RK path (kernels built before timing)
LORENZ_COMPILED = {"fine": "rk4:5e-4:compiled", "coarse": "rk4:0.02:compiled"}
KS = {"system": "ks", "t_end": 8.0, "slices": 8, "fine": "etdrk4:0.01", "batch": 32}
KS_COARSE = "etdrk4:0.25"
KS_QUICK = {**KS, "t_end": 2.0, "slices": 4, "fine": "etdrk4:0.05", "batch": 2}
TOL = 1e-11  # the residual tracks the error closely; one decade of margin for error <= 1e-10
_HEADER = f"{'case':<32}{'backend':<12}{'K':>4}{'wall s':>10}{'speedup':>9}{'bound S':>9}"
_HEADER += f"{'of bound':>10}{'max err':>11}{'vs eager':>10}"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--quick", action="store_true", help="small problems (tests)")
    parser.add_argument("--neural", default=None, help="Lorenz neural coarse (NeuralStepper file)")
    parser.add_argument(
        "--hits", default=None, help="Lorenz HiTS coarse (hierarchy file, e.g. of train coarse)"
    )
    parser.add_argument("--ranks", type=int, default=2, help="MPI ranks of the distributed rows")
    parser.add_argument("--no-ks", action="store_true", help="skip the Kuramoto–Sivashinsky case")
    parser.add_argument("--ray", action="store_true", help="also run on Ray actors (--ranks)")
    parser.add_argument("--json", action="store_true", help="also print one JSON line of rows")


def _timed(fn, *args) -> float:
    start = time.perf_counter()
    with torch.no_grad():
        fn(*args)
    return time.perf_counter() - start


@dataclasses.dataclass
class _Costs:
    """Measured per-slice costs of one problem: serial fine c_F, coarse c_G, fine pass times."""

    serial_states: torch.Tensor
    serial_wall: float
    serial_mode: str
    c_coarse: float
    eager_wall: float  # the serial fine solve on the eager path, for the "vs eager" column

    def bound(self, iterations: int, fine_pass: float, n_slices: int) -> tuple[float, float]:
        """(S, P_eff) for K iterations with one fine pass over a rank's slices taking fine_pass."""
        c_fine = self.serial_wall / n_slices
        p_eff = self.serial_wall / fine_pass
        return 1.0 / ((iterations + 1) * self.c_coarse / c_fine + iterations / p_eff), p_eff


def _coarse_cost(problem) -> float:
    """Warm wall time of one coarse propagation per slice (a whole coarse sweep / slices)."""
    bounds = [
        (float(a), float(b)) for a, b in zip(problem.times[:-1], problem.times[1:], strict=True)
    ]

    def sweep() -> None:
        x = problem.x0
        for t0, t1 in bounds:
            x = problem.coarse(x, t0, t1)

    sweep()  # warm
    return _timed(sweep) / len(bounds)


def _measure(config: SolveConfig, mode: str) -> tuple[_Costs, object]:
    problem = build_problem(config)
    serial = serial_fine(problem.fine, problem.x0, problem.times, mode)
    eager_wall = serial_fine(problem.fine, problem.x0, problem.times, "eager").wall_s
    costs = _Costs(serial.states, serial.wall_s, serial.mode, _coarse_cost(problem), eager_wall)
    return costs, problem


def _fine_pass(problem, config: SolveConfig, slices: int) -> float:
    """Wall time of one vectorized fine pass over ``slices`` slices (warm)."""
    from partime.pint.executors.vectorized import fine_batched

    x = problem.x0.expand(slices, *problem.x0.shape).contiguous()
    t0 = problem.times[:slices]
    t1 = problem.times[1 : slices + 1]
    _timed(fine_batched, problem.fine, x, t0, t1)
    return _timed(fine_batched, problem.fine, x, t0, t1)


def _mpi_row(config: SolveConfig, ranks: int) -> dict:
    """Run the solve under ``mpiexec -n ranks``; its JSON summary plus its states."""
    mpiexec = shutil.which("mpiexec")
    if mpiexec is None:
        raise RuntimeError("mpiexec not found")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "r.npz"
        cmd = [mpiexec, "-n", str(ranks), sys.executable, "-m", "partime", "solve", config.system]
        cmd += ["--t-end", str(config.t_end), "--slices", str(config.slices), "--fine", config.fine]
        cmd += ["--coarse", config.coarse, "--tol", str(config.tol), "--batch", str(config.batch)]
        cmd += ["--seed", str(config.seed), "--no-progress", "--json", "--out", str(out)]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
        if done.returncode != 0:
            raise RuntimeError(done.stderr.strip().splitlines()[-1] if done.stderr else "failed")
        summary = json.loads(done.stdout.strip().splitlines()[-1])
        summary["states"] = torch.from_numpy(read_results(out)["states"])
    return summary


def _row(
    problem: str, name: str, backend: str, costs: _Costs, k: int | None, wall: float, states, p_pass
) -> dict:
    err = float((states - costs.serial_states).abs().max())
    n_slices = costs.serial_states.shape[0] - 1
    bound, p_eff = costs.bound(k, p_pass, n_slices) if p_pass else (None, None)
    speedup = costs.serial_wall / wall
    frac = speedup / bound if bound else None
    return {"problem": problem, "case": name, "backend": backend, "iterations": k,
            "wall_s": wall, "speedup": speedup, "speedup_vs_eager": costs.eager_wall / wall,
            "bound": bound, "p_eff": p_eff,
            "fraction_of_bound": frac, "max_abs_err_vs_serial": err}  # fmt: skip


def _print_row(row: dict) -> None:
    def fmt(v, spec):
        return format(v, spec) if v is not None else "-".rjust(int(spec[:-3] or 0))

    k = "-" if row["iterations"] is None else row["iterations"]
    print(
        f"{row['case']:<32}{row['backend']:<12}{k:>4}{row['wall_s']:>10.4f}"
        f"{row['speedup']:>9.2f}{fmt(row['bound'], '9.2f')}{fmt(row['fraction_of_bound'], '10.2f')}"
        f"{row['max_abs_err_vs_serial']:>11.2e}{row['speedup_vs_eager']:>10.2f}",
        flush=True,
    )


def _compiled_rows(config: SolveConfig, costs: _Costs, args) -> list[dict]:
    """Parareal with compiled fine and coarse RK, vectorized and on MPI ranks."""
    problem = build_problem(config)
    costs = dataclasses.replace(costs, c_coarse=_coarse_cost(problem))
    name, rows = "parareal, RK4 coarse (compiled)", []
    report = solve(config)
    vec_pass = _fine_pass(problem, config, config.slices)
    k, wall = report.result.iterations, report.result.wall_s
    rows.append(_row(config.system, name, "vectorized", costs, k, wall, report.states, vec_pass))
    _print_row(rows[-1])
    try:
        summary = _mpi_row(config, args.ranks)
    except (RuntimeError, subprocess.TimeoutExpired) as err:
        print(f"{name:<32}mpi x{args.ranks}: failed: {err}")
        return rows
    p_pass = _fine_pass(problem, config, -(-config.slices // args.ranks))
    rows.append(_row(config.system, name, f"mpi x{args.ranks}", costs, summary["iterations"],
                     summary["wall_s"], summary["states"], p_pass))  # fmt: skip
    _print_row(rows[-1])
    return rows


def _case(
    title: str, base: dict, coarses: dict[str, str], args, mode: str, compiled: dict | None = None
) -> list[dict]:
    """One problem: serial fine, each coarse vectorized, the hybrid, then MPI with the first;
    with ``compiled`` (config overrides) also the compiled-RK rows."""
    first = next(iter(coarses.values()))
    config = SolveConfig(**base, coarse=first, tol=TOL, backend="serial", progress=False)
    costs, problem = _measure(config, mode)
    print(f"\n{title}: {config.slices} slices x {config.batch} trajectories, fine {config.fine}")
    print(_HEADER)
    system = base["system"]
    serial = _row(system, "serial fine", costs.serial_mode, costs, None, costs.serial_wall,
                  costs.serial_states, None)  # fmt: skip
    rows = [serial]
    _print_row(serial)
    vec_pass = _fine_pass(problem, config, config.slices)
    for label, coarse in coarses.items():
        run = dataclasses.replace(config, coarse=coarse)
        if coarse != first:
            costs_c = dataclasses.replace(costs, c_coarse=_coarse_cost(build_problem(run)))
        else:
            costs_c = costs
        for name, max_iter in ((f"parareal, {label} coarse", None), (f"hybrid, {label}", 0)):
            try:
                report = solve(dataclasses.replace(run, max_iter=max_iter))
            except FloatingPointError as err:
                print(f"{name:<32}diverged: {err}")
                continue
            p_pass = vec_pass if max_iter is None else None
            k, wall = report.result.iterations, report.result.wall_s
            row = _row(system, name, "vectorized", costs_c, k, wall, report.states, p_pass)
            rows.append(row)
            _print_row(rows[-1])
    ranks_list = (1, args.ranks) if base["system"] == "ks" else (args.ranks,)
    name = f"parareal, {next(iter(coarses))} coarse"
    for ranks in ranks_list:
        try:
            summary = _mpi_row(config, ranks)
        except (RuntimeError, subprocess.TimeoutExpired) as err:
            print(f"{'parareal (mpi)':<32}mpi x{ranks}: failed: {err}")
            continue
        p_pass = _fine_pass(problem, config, -(-config.slices // ranks))
        k, wall, states = summary["iterations"], summary["wall_s"], summary["states"]
        rows.append(_row(system, name, f"mpi x{ranks}", costs, k, wall, states, p_pass))
        _print_row(rows[-1])
    if compiled:
        rows += _compiled_rows(dataclasses.replace(config, **compiled), costs, args)
    if args.ray:
        # Ray's actors start before the solve is timed (executor.prepare), as MPI's ranks do.
        report = solve(dataclasses.replace(config, backend="ray", workers=args.ranks))
        p_pass = _fine_pass(problem, config, -(-config.slices // args.ranks))
        rows.append(_row(system, name, f"ray x{args.ranks}", costs, report.result.iterations,
                         report.result.wall_s, report.states, p_pass))  # fmt: skip
        _print_row(rows[-1])
        mpi_wall = [r["wall_s"] for r in rows if r["backend"] == f"mpi x{args.ranks}"]
        if mpi_wall:
            print(f"{'':<32}ray / mpi wall time: {rows[-1]['wall_s'] / mpi_wall[0]:.2f}")
    return rows


def run(args: argparse.Namespace) -> int:
    torch.set_num_threads(1)
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

"""``partime solve SYSTEM``: a parallel-in-time (parareal) solve, with results, plot and summary.

Runs in one process (``--backend serial``: all slices batched), on every rank of
``mpiexec -n P`` / torchrun (``--backend auto`` picks MPI or torch.distributed from the
launcher) or on Ray actors (``--backend ray --workers P``). Only rank 0 prints and writes files.
"""

from __future__ import annotations

import argparse
import dataclasses

from partime.bench.serial import SERIAL_MODES, serial_fine
from partime.options import add_options, config_from_args
from partime.pint.config import SolveConfig
from partime.pint.report import SolveReport

# Options that are not part of the solve itself: what to do with its report.
OUTPUT_OPTIONS = ("out", "plot", "json", "compare_serial", "serial_mode")


def format_summary(report: SolveReport) -> str:
    """Human-readable summary lines (root rank)."""
    result = report.result
    residual = f"{result.residuals[-1]:.3e}" if result.residuals else "n/a (coarse sweep only)"
    status = "converged" if result.converged else "NOT converged"
    lines = [
        f"parareal on {report.ranks} rank(s), executor {report.executor}: "
        f"{report.config.slices} slices x {report.x0.shape[0]} trajectories",
        f"iterations: {result.iterations} ({status}, tol {report.config.tol:g})",
        f"final residual: {residual}",
        f"wall time: {result.wall_s:.4f} s",
    ]
    if report.serial is not None:
        lines += [
            f"serial fine wall time: {report.serial.wall_s:.4f} s ({report.serial.mode}, warm)",
            f"max abs error vs serial fine: {report.max_abs_err_vs_serial:.3e}",
            f"speedup vs serial fine: {report.speedup:.2f}x (measured, {report.ranks} rank(s))",
            f"on {report.config.slices} ranks (one slice each): ≈ {report.projected_speedup:.2g}x "
            f"the speed of serial fine (parareal's cost model, measured c_G/c_F and K)",
            f"measured c_G/c_F = {report.cost_ratio:.2g}; parareal pays on "
            f"{report.config.slices} ranks at K = {result.iterations} when c_G/c_F < "
            f"{report.break_even_ratio:.2g}",
        ]
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from partime.pint.solve import solve

    config = config_from_args(SolveConfig, args, dense=args.plot is not None)
    report = solve(config)  # FloatingPointError (divergence): main() prints it and exits 1
    if not report.is_root:
        return 0
    if args.compare_serial:
        problem = report.problem
        serial = serial_fine(problem.fine, problem.x0, problem.times, args.serial_mode)
        report = dataclasses.replace(report, serial=serial)
    if args.out:
        from partime.pint.results import write_results

        write_results(args.out, report)
    if args.plot:
        from partime.plot.solve import plot_solve

        plot_solve(args.plot, report)
    if args.json:
        from partime.pint.results import summary_json

        print(summary_json(report), flush=True)
    else:
        print(format_summary(report), flush=True)
    return 0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_options(parser, SolveConfig, positional=("system",), exclude=("dense",))
    parser.add_argument("--out", default=None, help="results file (.npz)")
    parser.add_argument("--plot", default=None, help="figure file (.png)")
    parser.add_argument("--json", action="store_true", help="print one JSON summary line")
    parser.add_argument(
        "--compare-serial", action="store_true", help="also time the serial fine solve"
    )
    parser.add_argument(
        "--serial-mode",
        choices=tuple(SERIAL_MODES),
        default="best",
        help="RK path(s) to time the serial solve with (default best: the fastest of eager and "
        "compiled, compiled timed warm, compile excluded; eager skips the compile)",
    )


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "solve", help="parallel-in-time (parareal) solve of an ODE", description=__doc__
    )
    add_arguments(parser)
    parser.set_defaults(func=run)

"""``partime solve SYSTEM``: a parallel-in-time (parareal) solve, with results, plot and summary.

Runs in one process (``--backend vectorized``), on every rank of ``mpiexec -n P`` / torchrun
(``--backend auto`` picks MPI or torch.distributed from the launcher) or on Ray actors
(``--backend ray --workers P``). Only rank 0 prints and writes files.
"""

from __future__ import annotations

import argparse

from partime.pint.solve import BACKENDS, SERIAL_MODES, SolveConfig, SolveReport
from partime.pint.spec import SPEC_HELP


def _floats(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated numbers such as 1,1,1, got {text!r}"
        ) from None


def config_from_args(args: argparse.Namespace) -> SolveConfig:
    """The flags, one to one, as a validated ``SolveConfig``."""
    return SolveConfig(
        system=args.system,
        t_end=args.t_end,
        slices=args.slices,
        fine=args.fine,
        coarse=args.coarse,
        tol=args.tol,
        max_iter=args.max_iter,
        backend=args.backend,
        workers=args.workers,
        address=args.address,
        dim=args.dim,
        x0=args.x0,
        batch=args.batch,
        seed=args.seed,
        out=args.out,
        plot=args.plot,
        compare_serial=args.compare_serial,
        serial_mode=args.serial_mode,
        json=args.json,
        checkpoint=args.checkpoint,
        resume=args.resume,
        progress=not args.no_progress,
    )


def format_summary(report: SolveReport) -> str:
    """Human-readable summary lines (root rank)."""
    residual = f"{report.residuals[-1]:.3e}" if report.residuals else "n/a (coarse sweep only)"
    status = "converged" if report.converged else "NOT converged"
    lines = [
        f"parareal on {report.ranks} rank(s), executor {report.executor}: "
        f"{report.config.slices} slices x {report.x0.shape[0]} trajectories",
        f"iterations: {report.iterations} ({status}, tol {report.config.tol:g})",
        f"final residual: {residual}",
        f"wall time: {report.wall_s:.4f} s",
    ]
    if report.serial_wall_s is not None:
        lines += [
            f"serial fine wall time: {report.serial_wall_s:.4f} s ({report.serial_mode}, warm)",
            f"max abs error vs serial fine: {report.max_abs_err_vs_serial:.3e}",
            f"speedup vs serial fine: {report.speedup:.2f}x",
        ]
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from partime.pint.solve import solve

    config = config_from_args(args)
    report = solve(config)  # FloatingPointError (divergence): main() prints it and exits 1
    if not report.is_root:
        return 0
    if config.out:
        from partime.io.results import write_results

        write_results(config.out, report)
    if config.plot:
        from partime.plot.solve import plot_solve

        plot_solve(config.plot, report)
    if config.json:
        from partime.io.results import summary_json

        print(summary_json(report), flush=True)
    else:
        print(format_summary(report), flush=True)
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "solve", help="parallel-in-time (parareal) solve of an ODE", description=__doc__
    )
    parser.add_argument(
        "system", help="built-in system (lorenz, vdp, ks, ...), module:function, or 'none'"
    )
    parser.add_argument("--t-end", type=float, required=True, help="end time T (> 0)")
    parser.add_argument("--slices", type=int, required=True, help="number of time slices N")
    parser.add_argument("--fine", required=True, help=f"fine propagator: {SPEC_HELP}")
    parser.add_argument("--coarse", required=True, help=f"coarse propagator: {SPEC_HELP}")
    parser.add_argument(
        "--tol", type=float, default=1e-10, help="stop when max |U^k-U^{k-1}| <= tol"
    )
    parser.add_argument("--max-iter", type=int, default=None, help="iteration cap (0 = hybrid)")
    parser.add_argument("--backend", choices=BACKENDS, default="auto")
    parser.add_argument("--workers", type=int, default=None, help="Ray actors (--backend ray)")
    parser.add_argument("--address", default=None, help="Ray cluster address, e.g. auto")
    parser.add_argument("--dim", type=int, default=None, help="state dimension (module:function)")
    parser.add_argument("--x0", type=_floats, default=None, help="initial state, e.g. 1,1,1")
    parser.add_argument("--batch", type=int, default=1, help="number of trajectories")
    parser.add_argument("--seed", type=int, default=0, help="seed of the initial-state draws")
    parser.add_argument("--out", default=None, help="results file (.npz)")
    parser.add_argument("--plot", default=None, help="figure file (.png)")
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
    parser.add_argument("--json", action="store_true", help="print one JSON summary line")
    parser.add_argument("--checkpoint", default=None, help="directory for per-iteration state")
    parser.add_argument("--resume", action="store_true", help="continue from --checkpoint")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(func=run)

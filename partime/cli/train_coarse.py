"""A flow map fitted to a fine propagator's values and Jacobians (a parareal coarse).

``partime train coarse SYSTEM``: use the result as ``--coarse hits:OUT``.
"""

from __future__ import annotations

import argparse
import time

from partime.cli.train_hits import _int_tuple
from partime.steppers.neural import ACTIVATIONS


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from partime.hits.workflow import FIT_STRIDE
    from partime.steppers.jacobian_fit import JacobianFitConfig

    fit = JacobianFitConfig()
    parser.add_argument("system", help="dataset whose states are fitted at (e.g. lorenz)")
    parser.add_argument("--out", required=True, help="hierarchy file (--coarse hits:OUT)")
    parser.add_argument("--fine", required=True, help="the fine propagator, e.g. rk4:5e-4")
    parser.add_argument(
        "--slice", type=float, required=True, help="time one model step spans (a parareal slice)"
    )
    parser.add_argument("--widths", type=_int_tuple, default=(128, 128, 128))
    parser.add_argument("--activation", default="tanh", choices=tuple(ACTIVATIONS))
    parser.add_argument("--epochs", type=int, default=fit.epochs, help="Adam steps")
    parser.add_argument(
        "--lbfgs", type=int, default=fit.lbfgs_steps, help="full-batch L-BFGS steps after"
    )
    parser.add_argument("--jacobian-weight", type=float, default=fit.jacobian_weight)
    parser.add_argument("--lr", type=float, default=fit.lr)
    parser.add_argument("--batch-size", type=int, default=fit.batch_size)
    parser.add_argument("--time-budget", type=float, default=None, help="seconds (default none)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--n-traj", type=int, default=128, help="training trajectories used")
    parser.add_argument(
        "--n-val", type=int, default=32, help="validation trajectories the error is reported on"
    )
    parser.add_argument(
        "--stride", type=int, default=FIT_STRIDE, help="use every STRIDE-th state of each"
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress output")


def run(args: argparse.Namespace) -> int:
    from partime.data import DATASET_SPECS
    from partime.dynamics import get_system
    from partime.hits.workflow import fit_pint_hierarchy, load_split
    from partime.pint.spec import propagator_from_spec
    from partime.steppers.jacobian_fit import JacobianFitConfig, fit_errors, propagator_targets

    if args.system not in DATASET_SPECS:
        raise ValueError(f"unknown system {args.system!r}; known: {', '.join(DATASET_SPECS)}")
    dt = DATASET_SPECS[args.system].dt
    step = round(args.slice / dt)
    if step < 1 or abs(step * dt - args.slice) > 1e-9 * max(1.0, args.slice):
        raise ValueError(f"--slice {args.slice} is not a whole number of data steps dt={dt}")
    if args.stride < 1 or args.n_traj < 1 or args.n_val < 1:
        raise ValueError(
            f"need --stride, --n-traj and --n-val >= 1, got {args.stride}, {args.n_traj}, "
            f"{args.n_val}"
        )
    fit = JacobianFitConfig(
        args.epochs, args.lr, batch_size=args.batch_size, jacobian_weight=args.jacobian_weight,
        lbfgs_steps=args.lbfgs, seed=args.seed, time_budget=args.time_budget,
    )  # fmt: skip
    fine = propagator_from_spec(args.fine, get_system(args.system))
    train = load_split(args.system, "train", args.n_traj, None)[:, :: args.stride]
    val = load_split(args.system, "val", args.n_val, None)[:, :: args.stride]
    start = time.perf_counter()
    hierarchy = fit_pint_hierarchy(
        fine, (step,), dt, fit, widths=args.widths, activation=args.activation,
        states=train.reshape(-1, fine.dim), system=args.system, progress=not args.no_progress,
    )  # fmt: skip
    hierarchy.save(args.out)
    targets = propagator_targets(fine, val.reshape(-1, fine.dim).double(), step * dt)
    value_rms, jacobian_rms = fit_errors(hierarchy.models[0], targets)
    print(
        f"saved a {args.activation} flow map of step {step}·dt = {step * dt:g} fitted to "
        f"{args.fine} to {args.out} in {time.perf_counter() - start:.1f} s; on validation states: "
        f"rms error {value_rms:.2e}, Jacobian rms error {jacobian_rms:.2e}; use --coarse "
        f"hits:{args.out}"
    )
    return 0

"""HiTS at a CPU budget: test MSE of single-scale models vs the multiscale coupling, per system,
next to the paper's numbers, and the time of multiscale vs the smallest-step forecast.

``--pint`` adds the Lorenz parareal case of ``partime bench pint`` with HiTS coarse propagators
(trained on trajectories; fitted to the fine map and its Jacobian) next to RK4 coarse:
iterations and wall time at the same final error.
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
import time
from pathlib import Path

import torch

from partime.hits.options import add_hierarchy_options, hierarchy_config
from partime.steppers.jacobian_fit import JacobianFitConfig

# The HiTS paper: best single-scale MSE, multiscale MSE, time of the dt model, multiscale time (s).
PAPER = {
    "hyperbolic": (1.5e-6, 5.1e-8, 10.06, 0.89),
    "cubic": (2.0e-4, 2.0e-4, 24.74, 6.73),
    "vdp": (3.3e-3, 3.2e-3, 48.95, 7.96),
    "hopf": (9.0e-4, 4.1e-5, 9.98, 1.84),
    "lorenz": (4.1, 4.1, 42.98, 0.73),
}
# The paper's hidden widths per system (its Table 2).
PAPER_WIDTHS = {
    "hyperbolic": (128,) * 3,
    "cubic": (256,) * 3,
    "vdp": (512,) * 3,
    "hopf": (128,) * 3,
    "lorenz": (1024,) * 3,
}

# The default CPU budget and why each choice: docs/notes/hits-cpu-budget.md.
CPU_BUDGET = {"epochs": 3000, "widths": (64, 64, 64), "val_every": 250, "stacked": True}
SIZES = {"n_train": 640, "n_val": 32, "n_test": 64}
SYSTEM_SIZES = {
    "cubic": {"n_val": 320, "n_test": 320},
    "lorenz": {"n_train": 128, "n_val": 128, "n_test": 32},
}
NORMALIZE = tuple(PAPER)

# The Lorenz problem of ``partime bench pint`` : 160·dt per slice = 128 + 32 steps.
PINT = {"system": "lorenz", "t_end": 2.56, "slices": 32, "fine": "rk4:5e-4", "batch": 16}
PINT_STEPS = (32, 64, 128)
PINT_TOL = 1e-11  # one decade below the 1e-10 error target (as bench pint)
PINT_REPEATS = 3
# Jacobian weight, Adam and L-BFGS steps measured: docs/notes/hits-cpu-budget.md.
PINT_FIT = JacobianFitConfig()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--systems", default=",".join(PAPER), help="comma-separated systems")
    add_hierarchy_options(parser, exclude=("normalize",), **CPU_BUDGET)
    parser.add_argument(
        "--normalize",
        default=",".join(NORMALIZE),
        help=f"systems whose nets scale inputs/outputs (default {','.join(NORMALIZE)}; '' none)",
    )
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument(
        "--pint", action="store_true", help="also: Lorenz parareal, HiTS coarse vs RK4 coarse"
    )
    parser.add_argument(
        "--pint-epochs", type=int, default=1500, help="epochs per model of the pint hierarchy"
    )
    parser.add_argument(
        "--pint-fit-epochs",
        type=int,
        default=PINT_FIT.epochs,
        help=f"Adam steps of the Jacobian-fitted pint coarse (default {PINT_FIT.epochs})",
    )
    parser.add_argument(
        "--pint-lbfgs",
        type=int,
        default=PINT_FIT.lbfgs_steps,
        help=f"L-BFGS steps after them (default {PINT_FIT.lbfgs_steps})",
    )


def _sizes(args: argparse.Namespace, system: str):
    from partime.hits.workflow import DataSizes

    budget = {**SIZES, **SYSTEM_SIZES.get(system, {})}
    given = {k: getattr(args, k) for k in SIZES if getattr(args, k) is not None}
    return DataSizes(**{**budget, **given})


def _row(system: str, s, sizes, normalize: bool) -> str:
    paper = PAPER.get(system, (float("nan"),) * 4)
    i_best = min(range(len(s.single_mse)), key=s.single_mse.__getitem__)
    beats = "yes" if s.multiscale_mse < s.best_single else "NO"
    speedup = s.single_time[0] / s.multiscale_time
    note = f"{sizes.n_train}/{sizes.n_val}/{sizes.n_test}" + (" norm" if normalize else "")
    return (
        f"{system:<10} {s.best_single:9.2e} ({s.steps[i_best]:>4}) {s.multiscale_mse:9.2e} "
        f"{s.multiscale_mse / s.best_single:6.4f} [{s.selected[0]:>2},{s.selected[1]:>2}] "
        f"{beats:>5} | {paper[0]:8.1e} {paper[1]:8.1e} | "
        f"{s.single_time[0]:6.2f} {s.multiscale_time:6.3f} {speedup:6.1f}x | "
        f"{paper[2]:6.2f} {paper[3]:5.2f} | {note}"
    )


LEGEND = """\
best 1-sc: best single-scale model (its step in dt); ratio: multiscale / best 1-sc; beats: the
multiscale MSE is below every single-scale model's (a range of one model can only tie);
paper 1 / paper ms: the paper's MSEs (1e5 epochs, full data, GPU); t(dt): forecast time (s) of the
smallest-step model alone; t(ms): vectorized multiscale (Algorithm 1, selected range); paper t:
the paper's two times; norm: nets with input/output scaling (not in the paper)."""
_HEADER = (
    f"{'system':<10} {'best 1-sc':>9} {'(step)':>6} {'multiscale':>9} {'ratio':>6} {'range':>7} "
    f"{'beats':>5} | "
    f"{'paper 1':>8} {'paper ms':>8} | {'t(dt)':>6} {'t(ms)':>6} {'speed':>7} | "
    f"{'paper t':>6} {'t(ms)':>5} | train/val/test"
)


def run(args: argparse.Namespace) -> int:
    from partime.hits.workflow import load_split, score, train_system

    torch.set_num_threads(args.threads)
    config = hierarchy_config(args, normalize=False)
    systems = [s for s in args.systems.split(",") if s]
    normalized = {s for s in args.normalize.split(",") if s}
    t = config.train
    if systems:
        print(
            f"partime bench hits: steps {list(config.steps)}·dt, widths {list(config.widths)}, "
            f"{t.epochs} epochs/model (Adam lr {t.lr:g} x {list(config.lr_stages)} in equal "
            f"shares, batch {t.batch_size}, {t.n_forward}-step loss, best on val every "
            f"{t.val_every}), {'all windows' if config.all_windows else 'first window'} per "
            f"trajectory, normalized: {sorted(normalized) or 'none'}; MSE over all test steps"
        )
    rows, start_all = [], time.perf_counter()
    for system in systems:
        start = time.perf_counter()
        sizes = _sizes(args, system)
        cfg = dataclasses.replace(config, normalize=system in normalized)
        hierarchy = train_system(system, cfg, sizes)
        test = load_split(system, "test", sizes.n_test, sizes.n_points)
        rows.append(_row(system, score(hierarchy, test), sizes, cfg.normalize))
        print(f"  {system}: {time.perf_counter() - start:.0f} s", flush=True)
    if rows:
        print(_HEADER)
        print("\n".join(rows))
        print(LEGEND)
        print(f"total {time.perf_counter() - start_all:.0f} s")
    if args.pint:
        pint_comparison(args)
    return 0


def pint_comparison(args: argparse.Namespace) -> None:
    """Lorenz parareal with RK4 coarse and with two HiTS coarses: one trained on trajectories,
    one fitted to the fine propagator's values and Jacobians (``fit_pint_hierarchy``)."""
    from partime.bench.serial import serial_fine
    from partime.pint.config import SolveConfig
    from partime.pint.problem import build_problem

    base = SolveConfig(**PINT, coarse="rk4:0.02", tol=PINT_TOL, backend="serial")
    base = dataclasses.replace(base, progress=False)
    problem = build_problem(base)
    print(
        f"\nLorenz parareal ({PINT['batch']} trajectories, T={PINT['t_end']}, {PINT['slices']} "
        f"slices, fine {PINT['fine']}, tol {PINT_TOL:g})"
    )
    with tempfile.TemporaryDirectory() as tmp:
        coarses = {"RK4 0.02": "rk4:0.02", "RK4 0.08": "rk4:0.08"}
        for label, (make, what) in _pint_hierarchies(args, problem.fine).items():
            start = time.perf_counter()
            path = Path(tmp) / f"{len(coarses)}.pt"
            make().save(path)
            print(f"{label}: {what}; {time.perf_counter() - start:.0f} s", flush=True)
            coarses[label] = f"hits:{path}"
        run = serial_fine(problem.fine, problem.x0, problem.times, "eager")
        serial = run.states
        print(f"serial fine {run.wall_s:.3f} s (eager)")
        print(f"{'coarse':<22}{'1-slice err':>12}{'K':>4}{'wall s':>9}{'max err':>10}")
        for label, spec in coarses.items():
            config = dataclasses.replace(base, coarse=spec)
            slice_err = _slice_error(build_problem(config).coarse, problem, serial)
            report = _fastest(config, PINT_REPEATS)
            err = float((report.states - serial).abs().max())
            k, wall = report.result.iterations, report.result.wall_s
            print(f"{label:<22}{slice_err:>12.2e}{k:>4}{wall:>9.3f}"
                  f"{err:>10.2e}")  # fmt: skip
    print(
        f"1-slice err: max |G - F| over one slice from the serial states; K: iterations; "
        f"wall: best of {PINT_REPEATS} solves (vectorized: all slices' fine steps batched)."
    )


def _pint_hierarchies(args: argparse.Namespace, fine) -> dict:
    """label -> (build the hierarchy, what it is): the two HiTS coarses of ``pint_comparison``."""
    from partime.data import DATASET_SPECS
    from partime.hits import HierarchyConfig
    from partime.hits.workflow import fit_pint_hierarchy, train_pint_hierarchy
    from partime.steppers.flow_training import FlowMapTrainConfig

    train = FlowMapTrainConfig(epochs=args.pint_epochs, val_every=250, seed=args.seed)
    trained = HierarchyConfig(PINT_STEPS, (128, 128, 128), train, normalize=True)
    fit = dataclasses.replace(
        PINT_FIT, epochs=args.pint_fit_epochs, lbfgs_steps=args.pint_lbfgs, seed=args.seed
    )
    dt = DATASET_SPECS["lorenz"].dt
    step = round(PINT["t_end"] / PINT["slices"] / dt)  # one model spans one slice
    return {
        "HiTS trajectories": (
            lambda: train_pint_hierarchy(trained, n_train=128, n_val=32),
            f"steps {list(PINT_STEPS)}·dt, ReLU 128x3, {args.pint_epochs} epochs/model",
        ),
        "HiTS Jacobian fit": (
            lambda: fit_pint_hierarchy(fine, (step,), dt, fit),
            f"step {step}·dt, tanh 128x3 fitted to the fine map and its Jacobian (weight "
            f"{fit.jacobian_weight:g}), {fit.epochs} Adam + {fit.lbfgs_steps} L-BFGS steps",
        ),
    }


def _fastest(config, repeats: int):
    """The report of the fastest of ``repeats`` solves (one run is noisy on a busy machine)."""
    from partime.pint.solve import solve

    return min((solve(config) for _ in range(repeats)), key=lambda r: r.result.wall_s)


@torch.no_grad()
def _slice_error(coarse, problem, serial: torch.Tensor) -> float:
    times, fine = problem.times, problem.fine
    bounds = [(float(a), float(b)) for a, b in zip(times[:-1], times[1:], strict=True)]
    errs = [(coarse(serial[n], *b) - fine(serial[n], *b)).abs().max() for n, b in enumerate(bounds)]
    return float(max(errs))

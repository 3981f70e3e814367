"""HiTS at a CPU budget: test MSE of single-scale models vs the multiscale coupling, per system,
next to the paper's numbers, and the time of multiscale vs the smallest-step forecast."""

from __future__ import annotations

import argparse
import time

import torch

# SEEDS.md S1: best single-scale MSE, multiscale MSE, time of the dt model, multiscale time (s).
PAPER = {
    "hyperbolic": (1.5e-6, 5.1e-8, 10.06, 0.89),
    "cubic": (2.0e-4, 2.0e-4, 24.74, 6.73),
    "vdp": (3.3e-3, 3.2e-3, 48.95, 7.96),
    "hopf": (9.0e-4, 4.1e-5, 9.98, 1.84),
    "lorenz": (4.1, 4.1, 42.98, 0.73),
}

# Default CPU budget (~2 min per system on one quiet core, < 10 min for all five): the paper's
# eleven steps and nets, 800 instead of 1e5 epochs per model, fewer trajectories.
CPU_BUDGET = {"max_epochs": 800, "n_train": 640, "n_val": 32, "n_test": 64, "val_every": 250}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from partime.cli.train import add_hierarchy_arguments

    parser.add_argument("--systems", default=",".join(PAPER), help="comma-separated systems")
    add_hierarchy_arguments(parser, max_epochs=CPU_BUDGET["max_epochs"])
    parser.set_defaults(**{k: v for k, v in CPU_BUDGET.items() if k != "max_epochs"})
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")


def _row(system: str, s) -> str:
    paper = PAPER.get(system, (float("nan"),) * 4)
    i_best = min(range(len(s.single_mse)), key=s.single_mse.__getitem__)
    beats = "yes" if s.multiscale_mse < s.best_single else "NO"
    speedup = s.single_time[0] / s.multiscale_time
    return (
        f"{system:<10} {s.best_single:10.2e} (step {s.steps[i_best]:>4}) {s.multiscale_mse:10.2e} "
        f"[{s.selected[0]:>2},{s.selected[1]:>2}] {beats:>6} | {paper[0]:9.1e} {paper[1]:9.1e} | "
        f"{s.single_time[0]:7.2f} {s.multiscale_time:7.2f} {speedup:6.1f}x"
    )


def run(args: argparse.Namespace) -> int:
    from partime.cli.train import data_sizes, hierarchy_config
    from partime.hits.workflow import load_split, score, train_system

    torch.set_num_threads(args.threads)
    config, sizes = hierarchy_config(args), data_sizes(args)
    systems = [s for s in args.systems.split(",") if s]
    print(
        f"partime bench hits: steps {list(config.steps)}·dt, widths {list(config.widths)}, "
        f"{config.train.max_epochs} epochs/model, {sizes.n_train} train / {sizes.n_val} val / "
        f"{sizes.n_test} test trajectories, MSE over all test steps"
    )
    header = (
        f"{'system':<10} {'best single':>10} {'':>11} {'multiscale':>10} {'range':>7} "
        f"{'beats':>6} | {'paper 1':>9} {'paper ms':>9} | {'t(dt) s':>7} {'t(ms) s':>7} speedup"
    )
    rows = []
    for system in systems:
        start = time.perf_counter()
        hierarchy = train_system(system, config, sizes)
        test = load_split(system, "test", sizes.n_test, sizes.n_points)
        rows.append(_row(system, score(hierarchy, test)))
        print(f"  {system}: {time.perf_counter() - start:.0f} s", flush=True)
    print(header)
    print("\n".join(rows))
    print("paper 1 / paper ms: the paper's best single-scale and multiscale MSE (full budget);")
    print("t(dt): forecast time of the smallest-step model alone; t(ms): vectorized multiscale.")
    return 0

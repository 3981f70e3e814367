"""Reproduce the HiTS benchmark (paper Figs. 5 and 6A) for one system.

Trains (or loads) a hierarchy, prints the test MSE and forecast time of every single-scale
model and of the cross-validated multiscale coupling, and draws error-vs-step (log scale)
and accuracy-vs-time plots.

    python examples/hits_benchmark.py --system hyperbolic --budget cpu
    python examples/hits_benchmark.py --system lorenz --n-train 128 --n-val 128 --n-test 32 \
        --normalize
    mpiexec -n 4 python examples/hits_benchmark.py --system vdp --budget full --out vdp.pt
    python examples/hits_benchmark.py --system hopf --budget full --stacked --device cuda
    python examples/hits_benchmark.py --system vdp --load vdp.pt
"""

from __future__ import annotations

import argparse
import json

import torch

from partime.bench.hits import CPU_BUDGET, PAPER, PAPER_WIDTHS, SIZES
from partime.comm import abort_on_exception, from_env
from partime.hits import load_hierarchy, multiscale_forecast
from partime.hits.options import add_hierarchy_options, data_sizes, hierarchy_config
from partime.hits.workflow import load_split, score, train_system

# --budget presets; explicit options given on the command line still win. "full": the
# paper's 1e5 epochs and its widths for the system (widths None = PAPER_WIDTHS[system]).
BUDGETS = {
    "cpu": {**CPU_BUDGET, **SIZES},
    "full": {"epochs": 100_000, "widths": None},
}


def error_curve(hierarchy, test: torch.Tensor) -> torch.Tensor:
    """Squared error per step (n_steps,), averaged over test trajectories and components."""
    pred = multiscale_forecast(hierarchy, test[:, 0], test.shape[1] - 1)[1:].transpose(0, 1)
    return (pred - test[:, 1:]).double().square().mean(dim=(0, 2))


def plot(hierarchy, test, result, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_err, ax_time) = plt.subplots(1, 2, figsize=(12, 4.5))
    steps = torch.arange(1, test.shape[1])
    for i, step in enumerate(hierarchy.steps):
        curve = error_curve(hierarchy.subset(i, i), test)
        ax_err.semilogy(
            steps, curve, lw=0.8, color=plt.cm.viridis(i / len(hierarchy)), label=f"step {step}"
        )
    ax_err.semilogy(steps, error_curve(hierarchy.active(), test), "k", lw=2, label="multiscale")
    ax_err.set(xlabel="time step", ylabel="MSE", title=f"{hierarchy.system}: error vs step")
    ax_err.legend(fontsize=6, ncol=2)
    ax_time.loglog(result.single_time, result.single_mse, "o", label="single-scale")
    for step, t, mse in zip(result.steps, result.single_time, result.single_mse, strict=True):
        ax_time.annotate(f"{step}", (t, mse), fontsize=7, xytext=(3, 3), textcoords="offset points")
    ax_time.loglog(
        [result.multiscale_time], [result.multiscale_mse], "k*", ms=14, label="multiscale"
    )
    lower, upper = result.selected
    title = f"accuracy vs time (multiscale: steps {result.steps[lower]}..{result.steps[upper]})"
    ax_time.set(xlabel="forecast time (s)", ylabel="MSE", title=title)
    ax_time.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--system", default="hyperbolic", choices=sorted(PAPER))
    parser.add_argument("--budget", default="cpu", choices=sorted(BUDGETS))
    parser.add_argument("--load", default=None, help="score a saved hierarchy instead of training")
    parser.add_argument("--out", default=None, help="save the trained hierarchy here")
    parser.add_argument("--plot", default=None, help="figure file (default hits_SYSTEM.png)")
    add_hierarchy_options(parser)
    budget = BUDGETS[parser.parse_known_args()[0].budget]
    parser.set_defaults(**budget)
    args = parser.parse_args()
    args.widths = args.widths or PAPER_WIDTHS[args.system]

    comm = from_env()
    with abort_on_exception(comm):
        if args.load:
            hierarchy = load_hierarchy(args.load)
        else:
            hierarchy = train_system(
                args.system,
                hierarchy_config(args),
                data_sizes(args),
                comm=comm,
                checkpoint_dir=args.out and f"{args.out}.ckpt",
                progress=True,
            )
        if not comm.is_root:
            return
        if args.out and not args.load:
            hierarchy.save(args.out)
        test = load_split(args.system, "test", args.n_test, None)
        result = score(hierarchy, test)
        for step, mse, t in zip(result.steps, result.single_mse, result.single_time, strict=True):
            print(f"single-scale step {step:>5}·dt: MSE {mse:.3e}  time {t:.2f} s")
        paper_single, paper_multi = PAPER[args.system][:2]
        print(
            f"multiscale {result.selected}: MSE {result.multiscale_mse:.3e} "
            f"time {result.multiscale_time:.2f} s  (paper: best single {paper_single:.1e}, "
            f"multiscale {paper_multi:.1e})"
        )
        print(json.dumps({"system": args.system, **vars(result)}))
        path = args.plot or f"hits_{args.system}.png"
        plot(hierarchy, test, result, path)
        print(f"figure: {path}")


if __name__ == "__main__":
    main()

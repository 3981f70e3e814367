"""Manifestation invariance of ContinuousNet (Queiruga et al. 2020) at CPU budget.

Trains ContinuousNets with classic RK4 and with Euler (same steps, same seeds), then evaluates
each under every scheme × steps per OdeBlock (``manifestation_sweep``: the same weights, no
data). The claim: the RK4-trained net keeps its test accuracy with 4x fewer steps (rk4, rk38)
and as Euler with the training steps; the Euler-trained net loses clearly more.

    python examples/manifestation.py                 # digits, 8-8-8, 8 steps, 3 seeds
    python examples/manifestation.py --quick         # 1 seed, 3 epochs (a smoke run)
    python examples/manifestation.py --data mnist1d --width 16
"""

from __future__ import annotations

import argparse
import json
import statistics

import torch

from partime.data import DataConfig, load_classification
from partime.io import atomic_write
from partime.nets import ContinuousNet, ContinuousNetConfig
from partime.nets.manifest import manifestation_sweep
from partime.plot.nets import plot_manifestation
from partime.train import TrainConfig, fit

SCHEMES = ("euler", "midpoint", "rk4", "rk38")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="digits", help="NAME[:PATH] (default digits)")
    parser.add_argument("--units", default="8-8-8", help="pieces per stage (default 8-8-8)")
    parser.add_argument("--width", type=int, default=8, help="first-stage channels (default 8)")
    parser.add_argument("--train-steps", type=int, default=8, help="steps per OdeBlock (8)")
    parser.add_argument("--seeds", default="0,1,2", help="comma-separated seeds (default 0,1,2)")
    parser.add_argument("--epochs", type=int, default=20, help="epochs (lr /10 at 1/2 and 3/4)")
    parser.add_argument("--steps", default="1,2,4,8,16", help="manifested steps per OdeBlock")
    parser.add_argument("--quick", action="store_true", help="one seed, 3 epochs")
    parser.add_argument("--out", default="results/manifestation.json", help="results JSON")
    parser.add_argument("--plot", default="docs/figures/manifestation.png", help="figure")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    return parser.parse_args()


def train(data, scheme: str, seed: int, args: argparse.Namespace) -> ContinuousNet:
    torch.manual_seed(seed)
    config = ContinuousNetConfig(data.input_shape, data.n_classes, args.units, args.width,
                                 scheme, n_steps=args.train_steps)  # fmt: skip
    decay = tuple(sorted({max(1, args.epochs // 2), max(1, 3 * args.epochs // 4)} - {args.epochs}))
    train_config = TrainConfig(epochs=args.epochs, lr=0.1, lr_decay_epochs=decay, seed=seed)
    result = fit(ContinuousNet(config), data.train, data.val, data.test, train_config,
                 progress=not args.no_progress)  # fmt: skip
    return result.best_model


def summarize(rows: list[dict], train_steps: int) -> dict:
    """Mean ± sd over seeds per (trained, scheme, steps) and the drops the claim is about."""
    cells: dict[tuple, list[dict]] = {}
    for row in rows:
        cells.setdefault((row["trained"], row["scheme"], row["n_steps"]), []).append(row)
    means = {}
    for key, group in cells.items():
        accuracies = [100 * r["accuracy"] for r in group]
        means[key] = {
            "accuracy": statistics.mean(accuracies),
            "sd": statistics.stdev(accuracies) if len(accuracies) > 1 else 0.0,
            "seconds": statistics.mean(r["seconds"] for r in group),
        }
    drops = {}
    for trained in dict.fromkeys(r["trained"] for r in rows):
        base = means[(trained, trained, train_steps)]["accuracy"]
        quarter = max(1, train_steps // 4)
        drops[trained] = {
            f"rk4 {quarter} steps": base - means[(trained, "rk4", quarter)]["accuracy"],
            f"rk38 {quarter} steps": base - means[(trained, "rk38", quarter)]["accuracy"],
            f"euler {train_steps} steps": base - means[(trained, "euler", train_steps)]["accuracy"],
            f"rk4 {train_steps} steps": base - means[(trained, "rk4", train_steps)]["accuracy"],
        }
    return {"means": {"|".join(map(str, k)): v for k, v in means.items()}, "drops": drops}


def main() -> None:
    args = parse_args()
    torch.set_num_threads(1)
    seeds = [0] if args.quick else [int(s) for s in args.seeds.split(",")]
    args.epochs = 3 if args.quick else args.epochs
    steps = [int(s) for s in args.steps.split(",")]
    data = load_classification(DataConfig(args.data))
    rows = []
    for trained in ("rk4", "euler"):
        for seed in seeds:
            model = train(data, trained, seed, args)
            for row in manifestation_sweep(model, *data.test, SCHEMES, steps):
                rows.append(row | {"trained": trained, "seed": seed})
    summary = summarize(rows, args.train_steps)
    print(f"{args.data}, ContinuousNet {args.units} width {args.width}, trained with "
          f"{args.train_steps} steps per OdeBlock, seeds {seeds}, {args.epochs} epochs; "
          f"test accuracy % mean ± sd (inference s)")  # fmt: skip
    for trained in ("rk4", "euler"):
        print(f"trained with {trained}:")
        print("  steps    " + "".join(f"{n:>22}" for n in steps))
        for scheme in SCHEMES:
            cells = [summary["means"][f"{trained}|{scheme}|{n}"] for n in steps]
            text = "".join(
                f"{c['accuracy']:>8.2f} ± {c['sd']:4.2f} ({c['seconds']:.2f}s)" for c in cells
            )
            print(f"  {scheme:<8} {text}")
        drops = ", ".join(f"{k}: {v:+.2f}" for k, v in summary["drops"][trained].items())
        print(f"  accuracy lost (pt) vs its training discretization: {drops}")
    with atomic_write(args.out, "w") as handle:
        json.dump({"args": vars(args), "rows": rows, **summary}, handle, indent=1)
    mean_rows = [
        {"label": f"{key.split('|')[0]}-trained", "scheme": key.split("|")[1],
         "n_steps": int(key.split("|")[2]), "accuracy": v["accuracy"] / 100,
         "seconds": v["seconds"]}
        for key, v in summary["means"].items()
        if key.split("|")[1] != "midpoint"
    ]  # fmt: skip
    plot_manifestation(mean_rows, args.plot, title=f"{args.data}: manifested (mean of seeds)")
    print(f"wrote {args.out} and {args.plot}")


if __name__ == "__main__":
    main()

"""Refinement in depth during training (Queiruga et al.): ContinuousNet 1-1-1 -> 2-2-2 -> 4-4-4
vs a fixed 4-4-4 trained for the same epochs: test accuracy and wall time, paired seeds.

Refinement doubles the pieces of every OdeBlock (each piece duplicated, its batch-norm
statistics too) and, with ``refine_steps="double"`` as the authors, the steps, so the net keeps
one step per piece and ends as the fixed net's architecture; the early epochs are cheaper.

    python examples/refinement.py                      # mnist1d, midpoint, 3 seeds
    python examples/refinement.py --seeds 0 --epochs 3 # a smoke run
"""

from __future__ import annotations

import argparse
import json
import statistics

import torch

from partime.data import DataConfig, load_classification
from partime.io import atomic_write, atomic_write_with
from partime.nets import ContinuousNet, ContinuousNetConfig
from partime.train import TrainConfig, fit


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="mnist1d", help="NAME[:PATH] (default mnist1d)")
    parser.add_argument("--scheme", default="midpoint", help="tableau (default midpoint)")
    parser.add_argument("--width", type=int, default=8, help="first-stage channels (8)")
    parser.add_argument("--seeds", default="0,1,2", help="comma-separated seeds")
    parser.add_argument("--epochs", type=int, default=18, help="epochs (refined at 1/3, 2/3)")
    parser.add_argument("--out", default="results/refinement.json", help="results JSON")
    parser.add_argument("--plot", default="docs/figures/refinement.png", help="figure")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    return parser.parse_args()


def run(data, units: str, refine_at: tuple[int, ...], seed: int, args) -> dict:
    torch.manual_seed(seed)
    config = ContinuousNetConfig(data.input_shape, data.n_classes, units, args.width,
                                 args.scheme, refine_steps="double")  # fmt: skip
    decay = (args.epochs * 5 // 6,)  # lr /10 for the last sixth, after the last refinement
    train = TrainConfig(epochs=args.epochs, lr=0.1, lr_decay_epochs=decay, refine_at=refine_at,
                        seed=seed)  # fmt: skip
    result = fit(ContinuousNet(config), data.train, data.val, data.test, train,
                 progress=not args.no_progress)  # fmt: skip
    epochs = result.summary["epochs"]
    return {
        "test_accuracy": 100 * result.summary["test_accuracy"],
        "wall_s": result.summary["wall_s"],
        "final_units": result.model.config.units,
        "val_accuracy": [100 * e["val_accuracy"] for e in epochs],
        "elapsed_s": [e["wall_s"] for e in epochs],
    }


def plot(runs: list[dict], refine_at: tuple[int, ...], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    for i, run in enumerate(runs):
        for label, style in (("fixed", "-"), ("refined", "--")):
            curve = run[label]["val_accuracy"]
            ax.plot(range(1, len(curve) + 1), curve, style, color=f"C{i}", lw=0.9,
                    label=f"{label} (seed {run['seed']})")  # fmt: skip
    for epoch in refine_at:
        ax.axvline(epoch + 0.5, color="gray", lw=0.6, ls=":")
    ax.set(xlabel="epoch", ylabel="validation accuracy (%)",
           title="1-1-1 -> 2-2-2 -> 4-4-4 (dashed) vs fixed 4-4-4")  # fmt: skip
    ax.legend(fontsize="x-small", ncol=2)
    fig.tight_layout()
    atomic_write_with(lambda handle: fig.savefig(handle, dpi=120, format="png"), path)
    plt.close(fig)


def main() -> None:
    args = parse_args()
    torch.set_num_threads(1)
    data = load_classification(DataConfig(args.data))
    refine_at = (args.epochs // 3, 2 * args.epochs // 3)
    runs = []
    for seed in [int(s) for s in args.seeds.split(",")]:
        fixed = run(data, "4-4-4", (), seed, args)
        refined = run(data, "1-1-1", refine_at, seed, args)
        runs.append({"seed": seed, "fixed": fixed, "refined": refined})
        print(f"seed {seed}: fixed 4-4-4 {fixed['test_accuracy']:.2f}% in {fixed['wall_s']:.0f} s;"
              f" refined -> {refined['final_units']} {refined['test_accuracy']:.2f}% in "
              f"{refined['wall_s']:.0f} s", flush=True)  # fmt: skip
    summary = {
        label: {
            "test_accuracy": statistics.mean(r[label]["test_accuracy"] for r in runs),
            "wall_s": statistics.mean(r[label]["wall_s"] for r in runs),
        }
        for label in ("fixed", "refined")
    }
    gap = summary["fixed"]["test_accuracy"] - summary["refined"]["test_accuracy"]
    ratio = summary["refined"]["wall_s"] / summary["fixed"]["wall_s"]
    print(f"{args.data}, {args.scheme}, {args.epochs} epochs, refined before epochs {refine_at}: "
          f"fixed {summary['fixed']['test_accuracy']:.2f}%, refined "
          f"{summary['refined']['test_accuracy']:.2f}% ({-gap:+.2f} pt vs fixed) in {ratio:.2f}x "
          f"the wall time")  # fmt: skip
    with atomic_write(args.out, "w") as handle:
        json.dump({"args": vars(args), "runs": runs, "summary": summary}, handle, indent=1)
    plot(runs, refine_at, args.plot)
    print(f"wrote {args.out} and {args.plot}")


if __name__ == "__main__":
    main()

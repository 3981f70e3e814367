"""LM-ResNet vs the pre-activation ResNet at equal depth (Lu et al.), paired seeds.

1-D ResNet-20 (blocks 3-3-3, widths 16/32/64) with and without the linear multistep update
u_{n+1} = (1 − k_n)u_n + k_n u_{n−1} + f_n(u_n); both from the same seed per pair, SGD lr 0.1,
momentum 0.9, weight decay 1e-4 (none on k_n), batch 128, 20 epochs with lr /10 at 10 and 15.
The claim: lower mean test error over >= 5 seeds, better on >= 4 of 5 pairs; k_n mostly in
(−1, 1).

    python examples/lmresnet_vs_resnet.py                   # 5 seeds (~15 CPU-minutes)
    python examples/lmresnet_vs_resnet.py --seeds 0 --epochs 2  # a smoke run
"""

from __future__ import annotations

import argparse
import json
import statistics

import torch

from partime.data import DataConfig, load_classification
from partime.io import atomic_write, atomic_write_with
from partime.nets import LMResNet, PreActResNet, ResNetConfig
from partime.train import TrainConfig, fit


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="mnist1d-hard", help="NAME[:PATH] (mnist1d-hard)")
    parser.add_argument("--blocks", default="3-3-3", help="blocks per stage (3-3-3: depth 20)")
    parser.add_argument("--width", type=int, default=16, help="first-stage channels (16)")
    parser.add_argument("--seeds", default="0,1,2,3,4", help="comma-separated seeds")
    parser.add_argument("--epochs", type=int, default=20, help="epochs (lr /10 at 1/2, 3/4)")
    parser.add_argument("--out", default="results/lmresnet_vs_resnet.json", help="results JSON")
    parser.add_argument("--plot", default="docs/figures/lmresnet_vs_resnet.png", help="figure")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    return parser.parse_args()


def train_and_test(
    cls: type, data, seed: int, args: argparse.Namespace
) -> tuple[float, list, float]:
    """(test error %, learned k_n or [], wall s) of one model trained from ``seed``."""
    torch.manual_seed(seed)
    model = cls(ResNetConfig(data.input_shape, data.n_classes, args.blocks, args.width))
    decay = tuple(sorted({max(1, args.epochs // 2), max(1, 3 * args.epochs // 4)} - {args.epochs}))
    config = TrainConfig(epochs=args.epochs, lr=0.1, weight_decay=1e-4, lr_decay_epochs=decay,
                         seed=seed)  # fmt: skip
    result = fit(model, data.train, data.val, data.test, config, progress=not args.no_progress)
    ks = getattr(result.best_model, "ks", [])
    return 100 * (1 - result.summary["test_accuracy"]), ks, result.summary["wall_s"]


def plot(runs: list[dict], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (pairs, hist) = plt.subplots(1, 2, figsize=(9, 3.6))
    for run in runs:
        pairs.plot([0, 1], [run["resnet_error"], run["lm_error"]], "o-", color="gray", lw=0.8)
    pairs.set(xticks=[0, 1], xticklabels=["ResNet", "LM-ResNet"], ylabel="test error (%)",
              title="paired seeds")  # fmt: skip
    ks = [k for run in runs for k in run["ks"]]
    hist.hist(ks, bins=20)
    hist.set(xlabel="learned k_n", ylabel="blocks", title=f"k_n over {len(runs)} seeds")
    fig.tight_layout()
    atomic_write_with(lambda handle: fig.savefig(handle, dpi=120, format="png"), path)
    plt.close(fig)


def main() -> None:
    args = parse_args()
    torch.set_num_threads(1)
    data = load_classification(DataConfig(args.data))
    runs = []
    for seed in [int(s) for s in args.seeds.split(",")]:
        resnet_error, _, resnet_s = train_and_test(PreActResNet, data, seed, args)
        lm_error, ks, lm_s = train_and_test(LMResNet, data, seed, args)
        runs.append({"seed": seed, "resnet_error": resnet_error, "lm_error": lm_error, "ks": ks,
                     "resnet_s": resnet_s, "lm_s": lm_s})  # fmt: skip
        print(f"seed {seed}: ResNet {resnet_error:.2f}%  LM-ResNet {lm_error:.2f}%  "
              f"k min/mean/max {min(ks):+.2f}/{statistics.mean(ks):+.2f}/{max(ks):+.2f}  "
              f"({resnet_s:.0f} s, {lm_s:.0f} s)", flush=True)  # fmt: skip
    resnet = [r["resnet_error"] for r in runs]
    lm = [r["lm_error"] for r in runs]
    wins = sum(b < a for a, b in zip(resnet, lm, strict=True))
    spread = lambda v: statistics.stdev(v) if len(v) > 1 else 0.0  # noqa: E731
    summary = {
        "resnet_mean": statistics.mean(resnet), "resnet_sd": spread(resnet),
        "lm_mean": statistics.mean(lm), "lm_sd": spread(lm), "lm_better": wins,
        "pairs": len(runs), "ks_inside_unit": sum(abs(k) < 1 for r in runs for k in r["ks"]),
        "ks_total": sum(len(r["ks"]) for r in runs),
    }  # fmt: skip
    depth = ResNetConfig((1, 1), 2, args.blocks).depth
    print(f"{args.data} ({len(data.test[1])} test samples), depth {depth}: "
          f"ResNet {summary['resnet_mean']:.2f} ± {summary['resnet_sd']:.2f}%, LM-ResNet "
          f"{summary['lm_mean']:.2f} ± {summary['lm_sd']:.2f}%; LM better on {wins}/{len(runs)} "
          f"pairs; {summary['ks_inside_unit']}/{summary['ks_total']} k_n in (-1, 1)")  # fmt: skip
    with atomic_write(args.out, "w") as handle:
        json.dump({"args": vars(args), "runs": runs, "summary": summary}, handle, indent=1)
    plot(runs, args.plot)
    print(f"wrote {args.out} and {args.plot}")


if __name__ == "__main__":
    main()

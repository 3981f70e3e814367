"""MrCAE, the multiresolution convolutional autoencoder, grown and trained on snapshots.

``partime train mrcae --data toy1|toy2|PATH.npy [--levels 3] [--out m.pt] [--plot f.png]``: one
deepen and up to len(arch) − 1 widen groups per level, each stage trained with a new Adam until
its pooled errors meet the level's tolerance or it converges (the authors' rules); a .npy file
holds (T, H, W) snapshots with H, W of the form 2^p − 1. Data-parallel under a launcher.
"""

from __future__ import annotations

import argparse
import dataclasses

from partime.options import add_options, config_from_args

# TrainConfig fields MrCAE uses, and its defaults (the code's toy settings: 5000 steps per
# stage on a random batch of 350, Adam with eps 1e-3 and weight decay 1e-5).
TRAINING = ("epochs", "batch_size", "lr", "lr_decay_epochs", "lr_decay_factor", "weight_decay",
            "adam_eps", "seed", "device", "dtype",
            "checkpoint", "resume")  # fmt: skip
DEFAULTS = {"epochs": 5000, "batch_size": 350, "lr": 1e-3, "weight_decay": 1e-5, "adam_eps": 1e-3}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from partime.cli.ranks import add_launch_arguments
    from partime.train import TrainConfig
    from partime.train.mrcae import ProgressiveConfig

    data = parser.add_argument_group("data")
    data.add_argument("--data", required=True, help="toy1, toy2 or a .npy file (T, H, W)")
    add_options(parser.add_argument_group("architecture and stages"), ProgressiveConfig)
    training = parser.add_argument_group("training (--epochs: steps per stage)")
    add_options(training, TrainConfig, only=TRAINING, defaults=DEFAULTS)
    out = parser.add_argument_group("output and launch")
    out.add_argument("--out", default=None, help="model file (the grown architecture + weights)")
    out.add_argument("--plot", default=None, help="figure: error through the stages, masks")
    add_launch_arguments(out)


def run(args: argparse.Namespace) -> int:
    from partime.cli.ranks import run_on_ranks
    from partime.data.snapshots import load_snapshots, split_snapshots
    from partime.train import TrainConfig
    from partime.train.mrcae import ProgressiveConfig

    config = config_from_args(ProgressiveConfig, args)
    train = config_from_args(TrainConfig, args, optimizer="adam")
    splits = split_snapshots(load_snapshots(args.data, config.levels), train.seed)
    return run_on_ranks(_train, args, args, config, train, splits, sentence=_sentence)


def _train(comm, args, config, train, splits) -> dict | None:
    """The SPMD body: every rank trains on its share; rank 0 saves, plots and summarises."""
    from partime.comm import abort_on_exception
    from partime.train.model_file import save_model
    from partime.train.mrcae import train_progressive

    with abort_on_exception(comm):
        result = train_progressive(splits.train, splits.val, config, train, comm,
                                   progress=args.progress)  # fmt: skip
        if comm.rank != 0:
            return None
        summary = {"family": "mrcae", "data": args.data, "shape": list(splits.train.shape[1:])}
        summary |= {**result.summary(), "ranks": comm.size, "out": args.out, "plot": args.plot}
        if args.out:
            stages = [dataclasses.asdict(s) for s in result.stages]
            save_model(args.out, result.model, {"summary": summary, "stages": stages})
        if args.plot:
            from partime.plot.mrcae import plot_training

            plot_training(result.stages, result.model, splits.val[0], args.plot)
    return summary


def _sentence(summary: dict) -> str:
    stages = summary["stages"]
    return (
        f"mrcae on {summary['data']}: widen groups per level {summary['widths']}, "
        f"{summary['parameters']} parameters, encoding size {summary['encoding_size']}, global "
        f"validation error {summary['final_val']:.3g} after {len(stages)} stages "
        f"({sum(s['steps'] for s in stages)} steps), {summary['wall_s']:.1f} s on "
        f"{summary['ranks']} rank(s)"
    )

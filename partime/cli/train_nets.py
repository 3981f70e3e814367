"""What ``partime train cnet|lmresnet|resnet`` share: data and training options generated from
``DataConfig`` and ``TrainConfig``, then load -> build -> ``fit`` (data-parallel under
mpiexec/torchrun) -> model file on rank 0 -> summary line."""

from __future__ import annotations

import argparse
import dataclasses
import json

from torch import nn

from partime.options import add_options, config_from_args

# Which model config fields the data decides.
DATA_DECIDES = ("input_shape", "n_classes")


def add_training_arguments(
    parser: argparse.ArgumentParser, model_config: type, train_defaults: dict | None = None
) -> None:
    """The model's options (``model_config`` fields), then data, training and output options."""
    from partime.data import DataConfig
    from partime.train import TrainConfig

    add_options(parser.add_argument_group("model"), model_config, exclude=DATA_DECIDES)
    add_options(parser.add_argument_group("data"), DataConfig)
    training = parser.add_argument_group("training")
    add_options(training, TrainConfig, defaults=train_defaults)
    out = parser.add_argument_group("output and launch")
    out.add_argument("--out", required=True, help="model file (rebuilt by `partime manifest`)")
    out.add_argument("--json", action="store_true", help="one JSON summary line on stdout")
    out.add_argument("--no-progress", action="store_true", help="no progress bar")
    out.add_argument(
        "--backend", default="auto", choices=("auto", "serial", "mpi", "torch"),
        help="communication of the data-parallel ranks (auto: from the launcher)",
    )  # fmt: skip
    out.add_argument("--threads", type=int, default=1, help="torch threads per rank (default: 1)")


def run_training(
    args: argparse.Namespace, family: str, model_class: type[nn.Module], model_config: type
) -> int:
    """Validate everything, load the data, build ``model_class(config)`` and train it; rank 0
    writes the best-on-validation model to ``--out`` and prints the summary."""
    import torch

    from partime.comm import abort_on_exception, from_env
    from partime.data import DataConfig, load_classification
    from partime.train import TrainConfig, fit
    from partime.train.model_file import save_model

    train = config_from_args(TrainConfig, args)
    data_config = config_from_args(DataConfig, args)
    data = load_classification(data_config, dtype=train.torch_dtype)
    config = config_from_args(
        model_config, args, input_shape=data.input_shape, n_classes=data.n_classes
    )
    if train.refine_at and not hasattr(model_class, "refine"):
        raise ValueError(f"--refine-at: a {family} cannot be refined (cnet can)")
    torch.manual_seed(train.seed)
    model = model_class(config)
    comm = from_env(args.backend, num_threads=args.threads)
    with abort_on_exception(comm):
        result = fit(model, data.train, data.val if len(data.val[1]) else None,
                     data.test if len(data.test[1]) else None, train, comm=comm,
                     progress=not args.no_progress)  # fmt: skip
        if comm.rank != 0:
            return 0
        summary = {"family": family, **data.describe(), **result.summary, "out": args.out}
        if hasattr(result.best_model, "ks"):  # LM-ResNet's learned multistep coefficients
            summary["ks"] = result.best_model.ks
        metadata = {"family": family, "data": dataclasses.asdict(data_config)}
        metadata |= {"mean": data.mean.tolist(), "std": data.std.tolist(), "summary": summary}
        save_model(args.out, result.best_model, metadata)
    if args.json:
        print(json.dumps(summary), flush=True)
    else:
        print(_sentence(summary), flush=True)
    return 0


def _sentence(summary: dict) -> str:
    test = summary["test_accuracy"]
    best = summary["best_epoch"]
    parts = [f"{summary['family']} on {summary['data']}: {summary['parameters']} parameters"]
    if best is not None:
        parts.append(f"best validation accuracy {summary['best_val_accuracy']:.2%} (epoch {best})")
    if test is not None:
        parts.append(f"test accuracy {test:.2%}")
    parts.append(f"{summary['wall_s']:.1f} s on {summary['ranks']} rank(s); saved {summary['out']}")
    return ", ".join(parts)

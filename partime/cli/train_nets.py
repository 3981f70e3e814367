"""What ``partime train cnet|lmresnet|resnet`` share: data and training options generated from
``DataConfig`` and ``TrainConfig``, then load -> build -> ``fit`` (data-parallel under
mpiexec/torchrun/Ray, or layer-parallel with ``--layer-parallel``) -> model file on rank 0 ->
summary line."""

from __future__ import annotations

import argparse
import dataclasses

from torch import nn

from partime.options import add_options, config_from_args

# Which model config fields the data decides.
DATA_DECIDES = ("input_shape", "n_classes")


def add_training_arguments(
    parser: argparse.ArgumentParser, model_config: type, train_defaults: dict | None = None
) -> None:
    """The model's options (``model_config`` fields), then data, training and output options."""
    from partime.cli.ranks import add_launch_arguments
    from partime.data import DataConfig
    from partime.layerpar.strategy import LayerParallelConfig
    from partime.train import TrainConfig

    add_options(parser.add_argument_group("model"), model_config, exclude=DATA_DECIDES)
    add_options(parser.add_argument_group("data"), DataConfig)
    training = parser.add_argument_group("training")
    add_options(training, TrainConfig, defaults=train_defaults)
    add_options(parser.add_argument_group("layer parallel"), LayerParallelConfig)
    out = parser.add_argument_group("output and launch")
    out.add_argument("--out", required=True, help="model file (rebuilt by `partime manifest`)")
    add_launch_arguments(out)


def run_training(
    args: argparse.Namespace, family: str, model_class: type[nn.Module], model_config: type
) -> int:
    """Validate everything, load the data, build ``model_class(config)`` and train it (on
    this launch's ranks, or on ``--workers`` Ray actors); rank 0 writes the best-on-validation
    model to ``--out`` and prints the summary."""
    from partime.cli.ranks import run_on_ranks
    from partime.layerpar.strategy import LayerParallelConfig

    layer = config_from_args(LayerParallelConfig, args)
    if args.backend == "ray" and args.workers is not None and layer.layer_parallel:
        layer.check(args.workers, _train_config(args))  # before any actor starts
    return run_on_ranks(
        train_on_ranks, args, args, family, model_class, model_config, sentence=_sentence
    )


def _train_config(args: argparse.Namespace):
    from partime.train import TrainConfig

    return config_from_args(TrainConfig, args)


def train_on_ranks(
    comm, args: argparse.Namespace, family: str, model_class: type[nn.Module], model_config: type
) -> dict | None:
    """The SPMD body (every rank of ``comm``): returns the summary on rank 0, None elsewhere."""
    import torch

    from partime.comm import abort_on_exception
    from partime.data import DataConfig, load_classification
    from partime.layerpar.strategy import LayerParallelConfig, layer_parallel_training
    from partime.train import fit
    from partime.train.model_file import save_model

    train = _train_config(args)
    layer = config_from_args(LayerParallelConfig, args)
    if layer.layer_parallel:
        layer.check(comm.size, train)  # before any message
    data_config = config_from_args(DataConfig, args)
    data = load_classification(data_config, dtype=train.torch_dtype)
    config = config_from_args(
        model_config, args, input_shape=data.input_shape, n_classes=data.n_classes
    )
    if train.refine_at and not hasattr(model_class, "refine"):
        raise ValueError(f"--refine-at: a {family} cannot be refined (cnet can)")
    torch.manual_seed(train.seed)
    model = model_class(config)
    with abort_on_exception(comm):
        fit_comm, step = comm, None
        if layer.layer_parallel:
            model, fit_comm, step, train = layer_parallel_training(model, comm, layer, train)
        result = fit(model, data.train, data.val if len(data.val[1]) else None,
                     data.test if len(data.test[1]) else None, train, comm=fit_comm, step=step,
                     progress=args.progress)  # fmt: skip
        best = result.best_model
        if layer.layer_parallel:  # the whole network, gathered from its stages
            state = best.state_dict()
            best = best.serial_model
            best.load_state_dict(state)
        if comm.rank != 0:
            return None
        summary = {"family": family, **data.describe(), **result.summary, "out": args.out}
        summary |= {"ranks": comm.size, "layer_parallel": dataclasses.asdict(layer)}
        if hasattr(best, "ks"):  # LM-ResNet's learned multistep coefficients
            summary["ks"] = best.ks
        metadata = {"family": family, "data": dataclasses.asdict(data_config)}
        metadata |= {"mean": data.mean.tolist(), "std": data.std.tolist(), "summary": summary}
        save_model(args.out, best, metadata)
    return summary


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

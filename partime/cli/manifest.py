"""``partime manifest MODEL``: a trained ContinuousNet's test accuracy and inference time when its
OdeBlocks are discretized by other schemes and step counts (the same weights, no data needed).

The model file comes from ``partime train cnet``; the test split is the one it was trained
with (``--data NAME[:PATH]`` names another), normalised with the model's training statistics.
"""

from __future__ import annotations

import argparse
import json

from partime.options import add_progress_option

DEFAULT_SCHEMES = "euler,midpoint,rk4,rk38"
DEFAULT_STEPS = "1,2,4,8,16"


def _names(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip())


def _counts(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in _names(text))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected integers like 1,2,4, got {text!r}") from None


def register(subparsers: argparse._SubParsersAction) -> None:
    doc = (__doc__ or "").strip()
    parser = subparsers.add_parser("manifest", help=doc.splitlines()[0], description=doc)
    parser.add_argument("model", help="model file of `partime train cnet`")
    parser.add_argument(
        "--schemes", type=_names, default=_names(DEFAULT_SCHEMES),
        help=f"tableaus to manifest with (default {DEFAULT_SCHEMES}; rk4 is classic, rk38 the "
        "3/8 rule)",
    )  # fmt: skip
    parser.add_argument(
        "--steps", type=_counts, default=_counts(DEFAULT_STEPS),
        help=f"steps per OdeBlock (default {DEFAULT_STEPS})",
    )  # fmt: skip
    parser.add_argument("--data", help="NAME[:PATH] to test on (default: the model's data)")
    parser.add_argument("--batch-size", type=int, default=1000, help="evaluation batch size")
    parser.add_argument("--device", default="cpu", help="cpu or cuda[:i] (default cpu)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--out", help="write the rows as JSON to this file")
    parser.add_argument("--plot", help="write accuracy and time vs steps to this PNG file")
    parser.add_argument("--json", action="store_true", help="one JSON line on stdout")
    add_progress_option(parser)
    parser.set_defaults(func=run)


def load_test_split(metadata: dict, data: str | None, input_shape: tuple, dtype, device):
    """(inputs, labels) of the model's test split (or of ``data``), normalised as in training;
    ValueError unless the samples have the model's ``input_shape``."""
    import torch

    from partime.data import DataConfig, load_classification

    if "data" not in metadata or "mean" not in metadata:
        raise ValueError("the model file has no data description (train it with partime train)")
    fields = dict(metadata["data"]) | ({"data": data} if data else {}) | {"normalize": False}
    inputs, labels = load_classification(DataConfig(**fields), dtype=dtype).test
    if len(labels) == 0:
        raise ValueError(f"the data {fields['data']!r} has an empty test split")
    if tuple(inputs.shape[1:]) != tuple(input_shape):
        raise ValueError(
            f"the data {fields['data']!r} has samples of shape {tuple(inputs.shape[1:])}; the "
            f"model expects {tuple(input_shape)}"
        )
    shape = (1, -1) + (1,) * (inputs.ndim - 2)
    mean = torch.tensor(metadata["mean"], dtype=dtype).reshape(shape)
    std = torch.tensor(metadata["std"], dtype=dtype).reshape(shape)
    return ((inputs - mean) / std).to(device), labels.to(device)


def run(args: argparse.Namespace) -> int:
    import torch

    from partime.integrators import get_tableau
    from partime.nets.checks import positive_int
    from partime.nets.manifest import format_sweep, manifestation_sweep
    from partime.train.model_file import load_model

    if args.batch_size < 1 or args.threads < 1:
        raise ValueError(f"--batch-size and --threads must be >= 1, got {args.batch_size}, "
                         f"{args.threads}")  # fmt: skip
    for scheme in args.schemes:  # fail before loading anything
        get_tableau(scheme)
    for n_steps in args.steps:
        positive_int(n_steps, "steps")
    torch.set_num_threads(args.threads)
    model, metadata = load_model(args.model, args.device)
    if not callable(getattr(model, "manifest", None)):
        raise ValueError(
            f"{args.model} holds a {type(model).__name__}; only a ContinuousNet (partime train "
            f"cnet) has OdeBlocks to manifest"
        )
    dtype = next(model.parameters()).dtype
    shape = model.config.input_shape
    inputs, labels = load_test_split(metadata, args.data, shape, dtype, args.device)
    rows = manifestation_sweep(
        model, inputs, labels, args.schemes, args.steps, args.batch_size, args.progress
    )
    trained = {"scheme": model.config.scheme, "n_steps": list(model.config.steps())}
    payload = {"model": str(args.model), "trained": trained, "n_test": len(labels), "rows": rows}
    if args.out:
        from partime.io import atomic_write

        with atomic_write(args.out, "w") as handle:
            json.dump(payload, handle, indent=1)
    if args.plot:
        from partime.plot.nets import plot_manifestation

        title = f"{model.config.units} trained with {trained['scheme']}"
        plot_manifestation(rows, args.plot, title=title)
    if args.json:
        print(json.dumps(payload))
        return 0
    steps = "-".join(map(str, trained["n_steps"]))
    print(f"{args.model}: {model.config.units} ContinuousNet trained with {trained['scheme']}, "
          f"{steps} steps; test accuracy (inference s) on {len(labels)} samples")  # fmt: skip
    print(format_sweep(rows))
    return 0

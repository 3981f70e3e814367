"""A multiscale HiTS hierarchy of flow maps, trained on a system's trajectories.

``partime train hits SYSTEM``: under ``mpiexec -n P`` (or srun/torchrun) every rank trains a
share of the models and rank 0 saves the gathered result; ``--backend ray`` trains on Ray tasks.
"""

from __future__ import annotations

import argparse
import time

from partime.hits.hierarchy import default_steps
from partime.hits.training import HierarchyConfig
from partime.hits.workflow import DataSizes
from partime.steppers.flow_training import FlowMapTrainConfig
from partime.steppers.neural import ACTIVATIONS


def _int_tuple(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError as err:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated integers, got {text!r}"
        ) from err


def _float_tuple(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from err


def add_hierarchy_arguments(parser: argparse.ArgumentParser, max_epochs: int = 100_000) -> None:
    """Options that map one to one onto HierarchyConfig / FlowMapTrainConfig / DataSizes."""
    parser.add_argument(
        "--steps",
        type=_int_tuple,
        default=None,
        help="model steps in units of dt, e.g. 1,2,4 (default 2^k, k < --levels)",
    )
    parser.add_argument("--levels", type=int, default=11, help="number of 2^k steps (default 11)")
    parser.add_argument(
        "--widths",
        type=_int_tuple,
        default=(128, 128, 128),
        help="hidden widths of every MLP (default 128,128,128)",
    )
    parser.add_argument(
        "--max-epochs",
        type=int,
        default=max_epochs,
        help=f"Adam steps per model (default {max_epochs})",
    )
    parser.add_argument(
        "--time-budget",
        type=float,
        default=None,
        help="seconds for the whole hierarchy on each rank (default: none)",
    )
    parser.add_argument("--batch-size", type=int, default=320)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument(
        "--lr-stages",
        type=_float_tuple,
        default=(1.0,),
        help="lr factors of equal epoch shares, e.g. 1,0.1 (default 1: constant lr)",
    )
    parser.add_argument(
        "--all-windows",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="train each model on every window of its length in a trajectory, not only the first",
    )
    parser.add_argument("--n-forward", type=int, default=5, help="steps in the multi-step loss")
    parser.add_argument("--loss-tol", type=float, default=1e-8, help="early stop at this loss")
    parser.add_argument(
        "--val-every",
        type=int,
        default=1000,
        help="epochs between validation checks (the best model is kept)",
    )
    parser.add_argument("--seed", type=int, default=0, help="model j uses seed + j")
    parser.add_argument(
        "--stacked",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="train a rank's models together in batched matmuls (same models; use on a GPU)",
    )
    parser.add_argument("--device", default="cpu", help="where to train: cpu, cuda, cuda:1, ...")
    parser.add_argument("--dtype", default="float32", choices=("float32", "float64"))
    parser.add_argument(
        "--activation",
        default="relu",
        choices=tuple(ACTIVATIONS),
        help="nonlinearity of every MLP (default relu, the paper's)",
    )
    parser.add_argument("--n-train", type=int, default=None, help="training trajectories")
    parser.add_argument("--n-val", type=int, default=None, help="validation trajectories")
    parser.add_argument("--n-test", type=int, default=None, help="test trajectories")


def hierarchy_config(args: argparse.Namespace) -> HierarchyConfig:
    """The HierarchyConfig the options of ``add_hierarchy_arguments`` describe."""
    train = FlowMapTrainConfig(
        n_forward=args.n_forward,
        lr=args.lr,
        batch_size=args.batch_size,
        max_epochs=args.max_epochs,
        loss_tol=args.loss_tol,
        seed=args.seed,
        val_every=args.val_every,
        checkpoint_every=args.val_every,
    )
    steps = args.steps if args.steps is not None else default_steps(args.levels)
    return HierarchyConfig(
        steps,
        args.widths,
        train,
        args.time_budget,
        lr_stages=args.lr_stages,
        all_windows=args.all_windows,
        device=args.device,
        dtype=args.dtype,
        stacked=args.stacked,
        activation=args.activation,
    )


def data_sizes(args: argparse.Namespace) -> DataSizes:
    return DataSizes(args.n_train, args.n_val, args.n_test)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("system", help="dataset name (hyperbolic, cubic, vdp, hopf, lorenz)")
    parser.add_argument("--out", required=True, help="file to save the hierarchy to")
    add_hierarchy_arguments(parser)
    parser.add_argument(
        "--checkpoint-dir",
        default=None,
        help="per-model checkpoints (default OUT.ckpt); rerun to resume",
    )
    parser.add_argument(
        "--backend",
        default="auto",
        help="auto, serial, mpi or torch (the launcher's ranks), or ray (--workers Ray tasks)",
    )
    parser.add_argument(
        "--workers", type=int, default=None, help="Ray tasks for --backend ray (default 2)"
    )
    parser.add_argument(
        "--address", default=None, help="Ray cluster address for --backend ray (default local)"
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress output")


def _ray_workers(args: argparse.Namespace) -> int | None:
    """Ray tasks to train on (None unless --backend ray); ValueError on misused options."""
    if args.backend != "ray":
        if args.workers is not None or args.address is not None:
            raise ValueError(f"--workers/--address need --backend ray, got {args.backend!r}")
        return None
    workers = 2 if args.workers is None else args.workers
    if workers < 1:
        raise ValueError(f"--workers must be a positive integer, got {workers}")
    return workers


def run(args: argparse.Namespace) -> int:
    from partime.comm import abort_on_exception, from_env
    from partime.hits.workflow import train_system

    config, sizes = hierarchy_config(args), data_sizes(args)  # validate before any comm
    ray_workers = _ray_workers(args)
    comm = from_env("serial" if ray_workers else args.backend)
    start = time.perf_counter()
    with abort_on_exception(comm):
        hierarchy = train_system(
            args.system,
            config,
            sizes,
            comm=comm,
            checkpoint_dir=args.checkpoint_dir or f"{args.out}.ckpt",
            progress=not args.no_progress,
            ray_workers=ray_workers,
            ray_address=args.address,
        )
        if hierarchy is not None:
            hierarchy.save(args.out)
            lower, upper = hierarchy.selected
            print(
                f"saved {len(hierarchy)} models (steps {hierarchy.steps}·dt, dt={hierarchy.dt}) "
                f"to {args.out}; cross-validated range [{lower}, {upper}]; "
                f"{time.perf_counter() - start:.1f} s on "
                f"{f'{ray_workers} Ray worker(s)' if ray_workers else f'{comm.size} rank(s)'}"
            )
    return 0

"""A multiscale HiTS hierarchy of flow maps, trained on a system's trajectories.

``partime train hits SYSTEM``: under ``mpiexec -n P`` (or srun/torchrun) every rank trains a
share of the models and rank 0 saves the gathered result; ``--backend ray`` trains on Ray tasks.
"""

from __future__ import annotations

import argparse
import time

from partime.comm import RUN_BACKENDS
from partime.hits.options import add_hierarchy_options, data_sizes, hierarchy_config
from partime.options import add_progress_option


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("system", help="dataset name (hyperbolic, cubic, vdp, hopf, lorenz)")
    parser.add_argument("--out", required=True, help="file to save the hierarchy to")
    add_hierarchy_options(parser)
    parser.add_argument(
        "--checkpoint",
        default=None,
        help="per-model checkpoints (default OUT.ckpt); rerun to resume",
    )
    parser.add_argument(
        "--backend", default="auto", choices=RUN_BACKENDS, help="where ranks come from"
    )
    parser.add_argument(
        "--workers", type=int, default=None, help="Ray tasks (--backend ray; default: one per CPU)"
    )
    parser.add_argument("--address", default=None, help="Ray cluster address HOST:PORT")
    add_progress_option(parser)


def run(args: argparse.Namespace) -> int:
    from partime.comm import abort_on_exception, from_env
    from partime.hits.workflow import train_system

    config, sizes = hierarchy_config(args), data_sizes(args)  # validate before any comm
    on_ray = args.backend == "ray"
    if not on_ray and (args.workers is not None or args.address is not None):
        raise ValueError(f"--workers/--address need --backend ray, got {args.backend!r}")
    if args.workers is not None and args.workers < 1:
        raise ValueError(f"--workers must be a positive integer, got {args.workers}")
    comm = from_env("serial" if on_ray else args.backend)
    start = time.perf_counter()
    with abort_on_exception(comm):
        hierarchy = train_system(
            args.system, config, sizes, comm=comm,
            checkpoint_dir=args.checkpoint or f"{args.out}.ckpt", progress=args.progress,
            on_ray=on_ray, workers=args.workers, address=args.address,
        )  # fmt: skip
        if hierarchy is not None:
            hierarchy.save(args.out)
            lower, upper = hierarchy.selected
            where = f"Ray ({args.workers or 'all'} workers)" if on_ray else f"{comm.size} rank(s)"
            print(
                f"saved {len(hierarchy)} models (steps {hierarchy.steps}·dt, dt={hierarchy.dt}) "
                f"to {args.out}; cross-validated range [{lower}, {upper}]; "
                f"{time.perf_counter() - start:.1f} s on {where}"
            )
    return 0

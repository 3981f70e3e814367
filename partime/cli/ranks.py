"""Launch options and the SPMD run of a training command: the body runs on this launch's
ranks (serial, mpiexec/srun, torchrun) or on ``--workers`` Ray actors; rank 0's summary comes
back and is printed (one JSON line with ``--json``)."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from typing import Any

from partime.options import add_progress_option


def add_launch_arguments(group: argparse._ArgumentGroup) -> None:
    """--json, --progress/--no-progress, --backend, --workers, --address, --threads."""
    from partime.comm import RUN_BACKENDS

    group.add_argument("--json", action="store_true", help="one JSON summary line on stdout")
    add_progress_option(group)
    group.add_argument(
        "--backend", default="auto", choices=RUN_BACKENDS,
        help="communication of the ranks (auto: from the launcher; ray: --workers actors)",
    )  # fmt: skip
    group.add_argument(
        "--workers", type=int, default=None,
        help="Ray actors (--backend ray; default: one per --threads CPUs of the cluster)",
    )  # fmt: skip
    group.add_argument("--address", default=None, help="Ray cluster HOST:PORT (default: local)")
    group.add_argument("--threads", type=int, default=1, help="torch threads per rank (default: 1)")


def run_on_ranks(
    body: Callable[..., dict | None],
    args: argparse.Namespace,
    *body_args: Any,
    sentence: Callable[[dict], str] = json.dumps,
) -> int:
    """``body(comm, *body_args)`` on every rank; rank 0 prints the summary it returns."""
    if args.backend == "ray":
        from partime.comm.ray_spmd import run_spmd

        summary = run_spmd(body, args.workers, *body_args, address=args.address,
                           num_threads=args.threads)[0]  # fmt: skip
    else:
        from partime.comm import from_env

        comm = from_env(args.backend, num_threads=args.threads)
        summary = body(comm, *body_args)
        if comm.rank != 0:
            return 0
    print(json.dumps(summary) if args.json else sentence(summary), flush=True)
    return 0

"""``partime info``: version, available backends and the rank/size this process sees."""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import platform
import socket
from typing import Any

import torch
import torch.distributed as dist

import partime
from partime._optional import available
from partime.comm import RUN_BACKENDS, detect_launcher, from_env, is_printing_rank


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def _mpi_library() -> str | None:
    """First line of MPI_Get_library_version (vendor and version), or None without mpi4py."""
    if not available("mpi4py"):
        return None
    from mpi4py import MPI

    return " ".join(MPI.Get_library_version().strip().splitlines()[0].split())


def _backends() -> dict[str, Any]:
    return {
        "mpi4py": _version("mpi4py"),
        "mpi_library": _mpi_library(),
        "ray": _version("ray"),
        "torch_distributed": dist.is_available(),
        "gloo": dist.is_available() and dist.is_gloo_available(),
        "nccl": dist.is_available() and dist.is_nccl_available(),
        "cuda_devices": [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())],
    }


def _this_rank(comm: Any) -> dict[str, Any]:
    return {
        "rank": comm.rank,
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "torch_threads": torch.get_num_threads(),
    }


def _report(comm: Any, ranks: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "partime": partime.__version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "launcher": detect_launcher(),
        "backend": comm.backend,
        "size": comm.size,
        "backends": _backends(),
        "ranks": ranks,
    }


def _as_text(report: dict[str, Any]) -> str:
    lines = [
        f"{key:<10} {value}"
        for key, value in report.items()
        if key not in ("backends", "ranks", "ray_cluster")
    ]
    lines += [f"  {key:<18} {value}" for key, value in report["backends"].items()]
    lines += [f"ray {key:<14} {value}" for key, value in report.get("ray_cluster", {}).items()]
    lines += [
        f"rank {r['rank']}/{report['size']} on {r['host']} pid {r['pid']} "
        f"torch threads {r['torch_threads']}"
        for r in report["ranks"]
    ]
    return "\n".join(lines)


def _ray_cluster(address: str | None) -> dict[str, Any]:
    """The Ray cluster at ``address`` (or a local one): nodes and CPUs/GPUs it offers."""
    from partime.comm.raycluster import ray_session

    with ray_session(address) as ray:
        resources = ray.cluster_resources()
        return {
            "address": address or "local",
            "nodes": len([n for n in ray.nodes() if n.get("Alive")]),
            "cpus": resources.get("CPU", 0),
            "gpus": resources.get("GPU", 0),
        }


def run(args: argparse.Namespace) -> int:
    if args.address is not None and args.backend != "ray":
        raise ValueError(f"--address needs --backend ray, got {args.backend!r}")
    comm = from_env("serial" if args.backend == "ray" else args.backend, num_threads=args.threads)
    ranks = comm.gather(_this_rank(comm), root=0)
    if is_printing_rank(comm):
        report = _report(comm, ranks)
        if args.backend == "ray":
            report["ray_cluster"] = _ray_cluster(args.address)
        print(json.dumps(report, indent=2) if args.json else _as_text(report), flush=True)
    comm.barrier()
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("info", help="print version, backends and the rank/size seen")
    parser.add_argument(
        "--backend",
        default="auto",
        choices=RUN_BACKENDS,
        help="where ranks come from (default: detected from the launcher; ray: also report "
        "the Ray cluster)",
    )
    parser.add_argument("--address", default=None, help="Ray cluster address HOST:PORT")
    parser.add_argument(
        "--threads", type=int, default=1, help="torch threads per rank (default: 1)"
    )
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.set_defaults(func=run)

"""Train a HiTS hierarchy on Ray: each of ``workers`` Ray tasks trains a share of the models.

Model j keeps its seed ``seed + j`` (as in ``train_hierarchy``), so a Ray run gives the same
models as a serial or MPI run. The trained weights are gathered on the driver into one
Hierarchy.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from torch import Tensor

from partime._optional import require
from partime.hits.hierarchy import Hierarchy
from partime.hits.training import (
    HierarchyConfig,
    check_training_inputs,
    gather_hierarchy,
    train_share,
)

_LOOPBACK = ("127.0.0.1", "localhost")


def _train_share_task(
    indices: list[int],
    data: Tensor,
    val_data: Tensor | None,
    config: HierarchyConfig,
    checkpoint_dir: str | None,
    num_threads: int,
) -> dict[int, dict[str, Any]]:
    """Ray task body: train models ``indices`` with ``num_threads`` torch threads."""
    import torch

    torch.set_num_threads(num_threads)
    return train_share(indices, data, val_data, config, checkpoint_dir)


def connect_ray(workers: int, address: str | None = None) -> tuple[Any, bool]:
    """``ray`` initialised (a local instance of ``workers`` CPUs, or the cluster at
    ``address``); the second value says whether this call started it (and should stop it)."""
    if address and address.split(":")[0] in _LOOPBACK:
        # Without it Ray dials the machine's public address for a loopback head and retries
        # for minutes; it must be set before ray is imported.
        os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    ray = require("ray", "ray")
    if ray.is_initialized():
        return ray, False
    ray.init(
        address=address,
        num_cpus=None if address else workers,
        include_dashboard=False,
        log_to_driver=False,
    )
    return ray, True


def train_hierarchy_ray(
    data: Tensor,
    dt: float,
    config: HierarchyConfig,
    *,
    workers: int = 2,
    address: str | None = None,
    val_data: Tensor | None = None,
    system: str = "",
    checkpoint_dir: str | Path | None = None,
    num_threads: int = 1,
) -> Hierarchy:
    """``train_hierarchy`` with the models shared out (round robin) over ``workers`` Ray tasks
    of ``num_threads`` CPUs each; data (n_traj, n_points, dim) is put in the object store once.
    Shuts Ray down afterwards only if it started it."""
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be a positive integer, got {workers!r}")
    check_training_inputs(data, val_data, dt, config)
    ray, started = connect_ray(workers, address)
    try:
        task = ray.remote(num_cpus=num_threads)(_train_share_task)
        data_ref = ray.put(data)
        val_ref = None if val_data is None else ray.put(val_data)
        ckpt = None if checkpoint_dir is None else str(checkpoint_dir)
        n = len(config.steps)
        shares = [list(range(w, n, workers)) for w in range(min(workers, n))]
        futures = [task.remote(s, data_ref, val_ref, config, ckpt, num_threads) for s in shares]
        gathered = ray.get(futures)
    finally:
        if started:
            ray.shutdown()
    return gather_hierarchy(gathered, config, dt, system)

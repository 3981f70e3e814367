"""Train a HiTS hierarchy on Ray: each of ``workers`` Ray tasks trains a share of the models.

Model j keeps its seed ``seed + j`` (as in ``train_hierarchy``), so a Ray run gives the same
models as a serial or MPI run. The trained weights are gathered on the driver into one
Hierarchy.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from torch import Tensor

from partime.comm.raycluster import ray_session
from partime.hits.config import HierarchyConfig
from partime.hits.hierarchy import Hierarchy
from partime.hits.training import (
    check_training_inputs,
    gather_hierarchy,
    train_share,
)


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


def train_hierarchy_ray(
    data: Tensor,
    dt: float,
    config: HierarchyConfig,
    *,
    workers: int | None = None,
    address: str | None = None,
    val_data: Tensor | None = None,
    system: str = "",
    checkpoint_dir: str | Path | None = None,
    num_threads: int = 1,
) -> Hierarchy:
    """``train_hierarchy`` with the models shared out (round robin) over ``workers`` Ray tasks
    of ``num_threads`` CPUs each (None: as many as the Ray cluster's CPUs allow); data
    (n_traj, n_points, dim) is put in the object store once.
    Shuts Ray down afterwards only if it started it."""
    if workers is not None and (
        isinstance(workers, bool) or not isinstance(workers, int) or workers < 1
    ):
        raise ValueError(f"workers must be None or a positive integer, got {workers!r}")
    check_training_inputs(data, val_data, dt, config)
    with ray_session(address, workers) as ray:
        if workers is None:
            workers = max(1, int(ray.cluster_resources().get("CPU", 1)) // num_threads)
        task = ray.remote(num_cpus=num_threads)(_train_share_task)
        data_ref = ray.put(data)
        val_ref = None if val_data is None else ray.put(val_data)
        ckpt = None if checkpoint_dir is None else str(checkpoint_dir)
        n = len(config.steps)
        shares = [list(range(w, n, workers)) for w in range(min(workers, n))]
        futures = [task.remote(s, data_ref, val_ref, config, ckpt, num_threads) for s in shares]
        gathered = ray.get(futures)
    return gather_hierarchy(gathered, config, dt, system)

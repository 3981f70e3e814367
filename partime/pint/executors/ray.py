"""``ray`` executor: the driver runs the sweep; fine solves go to a pool of Ray actors.

Each fine pass splits the active slices into contiguous chunks, one per actor. An actor
holds the fine propagator (shipped once, when the pool is made for it). If an actor dies
mid-solve (``RayActorError``) it is replaced and its chunk recomputed, so the answer is the
same as without the fault.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import torch
from torch import Tensor

from partime._optional import require
from partime.pint.executors.vectorized import VectorizedExecutor, fine_batched

_LOOPBACK = ("127.0.0.1", "localhost")
_MAX_RETRIES = 3  # replacements per chunk and pass before the error is passed on


class _FineWorker:
    """Actor body: one fine propagator, many batched slice solves."""

    def __init__(self, prop: Callable, num_threads: int) -> None:
        torch.set_num_threads(num_threads)
        self.prop = prop

    def ready(self) -> bool:
        return True

    def run(self, x: Tensor, t0: Tensor, t1: Tensor, save_every: int | None) -> Tensor:
        return fine_batched(self.prop, x, t0, t1, save_every)


class RayExecutor(VectorizedExecutor):
    """Parareal with fine solves on ``workers`` Ray actors (local, or the cluster ``address``)."""

    def __init__(
        self, workers: int | None = None, address: str | None = None, num_threads: int = 1
    ) -> None:
        if workers is not None and (not isinstance(workers, int) or workers < 1):
            raise ValueError(f"workers must be a positive integer, got {workers!r}")
        self.workers = workers
        self.address = address
        self.num_threads = num_threads
        self.actors: list = []
        self._prop: Callable | None = None
        self._started_ray = False

    def _ray(self):
        if self.address and self.address.split(":")[0] in _LOOPBACK:
            # Without it Ray dials the machine's public address for a loopback head and
            # retries for minutes; it must be set before ray is imported.
            os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
        ray = require("ray", "ray")
        if not ray.is_initialized():
            ray.init(
                address=self.address,
                num_cpus=None if self.address else self.workers,
                include_dashboard=False,
                log_to_driver=False,
            )
            self._started_ray = True
        return ray

    def _new_actor(self, ray):
        return ray.remote(num_cpus=self.num_threads)(_FineWorker).remote(
            self._prop, self.num_threads
        )

    def _pool(self, prop: Callable) -> list:
        ray = self._ray()
        if prop is not self._prop:
            self._kill_actors(ray)
            self._prop = prop
            n = self.workers or max(
                1, int(ray.cluster_resources().get("CPU", 1)) // self.num_threads
            )
            self.actors = [self._new_actor(ray) for _ in range(n)]
        return self.actors

    def prepare(self, fine: Callable) -> None:
        """Start Ray and the actor pool and wait until every actor is up."""
        ray = self._ray()
        ray.get([actor.ready.remote() for actor in self._pool(fine)])

    def fine(
        self, prop: Callable, x: Tensor, t0: Tensor, t1: Tensor, save_every: int | None = None
    ) -> Tensor:
        ray = self._ray()
        actors = self._pool(prop)
        bounds = [len(x) * i // len(actors) for i in range(len(actors) + 1)]
        chunks = [
            (i, slice(lo, hi))
            for i, (lo, hi) in enumerate(zip(bounds, bounds[1:], strict=False))
            if hi > lo
        ]
        submit = {i: actors[i].run.remote(x[s], t0[s], t1[s], save_every) for i, s in chunks}
        out = []
        for i, s in chunks:
            for attempt in range(_MAX_RETRIES + 1):
                try:
                    out.append(ray.get(submit[i]))
                    break
                except ray.exceptions.RayActorError:
                    if attempt == _MAX_RETRIES:
                        raise
                    self.actors[i] = self._new_actor(ray)  # same chunk, fresh actor
                    submit[i] = self.actors[i].run.remote(x[s], t0[s], t1[s], save_every)
        return torch.cat(out)

    def _kill_actors(self, ray) -> None:
        for actor in self.actors:
            ray.kill(actor)
        self.actors = []

    def close(self) -> None:
        """Kill the actors; shut Ray down if this executor started it."""
        if self._prop is None and not self._started_ray:
            return
        ray = require("ray", "ray")
        self._kill_actors(ray)
        self._prop = None
        if self._started_ray:
            ray.shutdown()
            self._started_ray = False

    def __repr__(self) -> str:
        return f"RayExecutor(workers={self.workers}, address={self.address!r})"

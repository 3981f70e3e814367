"""``ray`` executor: the driver runs the sweep; fine solves go to a pool of Ray actors.

Each fine pass splits the active slices into contiguous chunks, one per actor. An actor
holds the fine propagator (shipped once, when the pool is made for it). CPU tensors travel as
numpy arrays (Ray's serializer takes 3-6 ms for a round trip of a small torch tensor on this
host, ~2 ms for the same numpy array). If an actor dies
mid-solve (``RayActorError``) it is replaced and its chunk recomputed, so the answer is the
same as without the fault. ``close()`` kills the actors and stops Ray if it started it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import Tensor

from partime.comm.raycluster import connect_ray
from partime.pint.executors.vectorized import VectorizedExecutor, fine_batched

_MAX_RETRIES = 3  # replacements per chunk and pass before the error is passed on


Wire = Tensor | np.ndarray  # what a tensor travels to and from an actor as


def to_wire(tensor: Tensor) -> Wire:
    """A CPU tensor with a numpy dtype as its numpy view; anything else as it is."""
    if tensor.device.type != "cpu" or tensor.requires_grad:
        return tensor
    try:
        return tensor.numpy()
    except TypeError:  # bfloat16, …: no numpy dtype
        return tensor


def from_wire(value: Wire) -> Tensor:
    """The tensor of ``to_wire``'s value (a copy where Ray hands out read-only memory)."""
    if not isinstance(value, np.ndarray):
        return value
    return torch.from_numpy(value if value.flags.writeable else value.copy())


class _FineWorker:
    """Actor body: one fine propagator, many batched slice solves."""

    def __init__(self, prop: Callable, num_threads: int) -> None:
        torch.set_num_threads(num_threads)
        self.prop = prop

    def ready(self) -> bool:
        return True

    def run(self, x: Wire, t0: Wire, t1: Wire, save_every: int | None) -> Wire:
        x, t0, t1 = (from_wire(a) for a in (x, t0, t1))
        return to_wire(fine_batched(self.prop, x, t0, t1, save_every))


class RayExecutor(VectorizedExecutor):
    """Parareal with fine solves on ``workers`` Ray actors (local, or the cluster ``address``;
    None: one actor per ``num_threads`` CPUs of the cluster)."""

    def __init__(
        self, workers: int | None = None, address: str | None = None, num_threads: int = 1
    ) -> None:
        super().__init__()
        if workers is not None and (
            isinstance(workers, bool) or not isinstance(workers, int) or workers < 1
        ):
            raise ValueError(f"workers must be None or a positive integer, got {workers!r}")
        self.workers = workers
        self.address = address
        self.num_threads = num_threads
        self.actors: list = []
        self._prop: Callable | None = None
        self._ray: Any = None
        self._started_ray = False

    def _connected(self) -> Any:
        if self._ray is None:
            self._ray, self._started_ray = connect_ray(self.address, self.workers)
        return self._ray

    def _new_actor(self) -> Any:
        remote = self._connected().remote(num_cpus=self.num_threads)(_FineWorker)
        return remote.remote(self._prop, self.num_threads)

    def _pool(self, prop: Callable) -> list:
        ray = self._connected()
        if prop is not self._prop:
            self._kill_actors()
            self._prop = prop
            n = self.workers or max(
                1, int(ray.cluster_resources().get("CPU", 1)) // self.num_threads
            )
            self.actors = [self._new_actor() for _ in range(n)]
        return self.actors

    def prepare(self, fine: Callable) -> None:
        """Start Ray and the actor pool and wait until every actor is up."""
        self._connected().get([actor.ready.remote() for actor in self._pool(fine)])

    def fine(
        self, prop: Callable, x: Tensor, t0: Tensor, t1: Tensor, save_every: int | None = None
    ) -> Tensor:
        ray = self._connected()
        actors = self._pool(prop)
        bounds = [len(x) * i // len(actors) for i in range(len(actors) + 1)]
        spans = enumerate(zip(bounds[:-1], bounds[1:], strict=True))
        chunks = [(i, slice(lo, hi)) for i, (lo, hi) in spans if hi > lo]
        wire = {i: tuple(to_wire(a[s].contiguous()) for a in (x, t0, t1)) for i, s in chunks}
        submit = {i: actors[i].run.remote(*wire[i], save_every) for i, _ in chunks}
        out = []
        for i, _ in chunks:
            for attempt in range(_MAX_RETRIES + 1):
                try:
                    out.append(from_wire(ray.get(submit[i])))
                    break
                except ray.exceptions.RayActorError:
                    if attempt == _MAX_RETRIES:
                        raise
                    self.actors[i] = self._new_actor()  # same chunk, fresh actor
                    submit[i] = self.actors[i].run.remote(*wire[i], save_every)
        return torch.cat(out)

    def fine_pass(
        self, prop: Callable, like: Tensor, t0: Tensor, t1: Tensor
    ) -> Callable[..., Tensor] | None:
        """None: the passes run on the actors, through ``fine``."""
        return None

    def _kill_actors(self) -> None:
        for actor in self.actors:
            self._ray.kill(actor)
        self.actors = []

    def close(self) -> None:
        """Kill the actors; shut Ray down if this executor started it. Safe to call twice."""
        if self._ray is None:
            return
        self._kill_actors()
        self._prop = None
        if self._started_ray:
            self._ray.shutdown()
        self._ray, self._started_ray = None, False

    def __repr__(self) -> str:
        return f"RayExecutor(workers={self.workers}, address={self.address!r})"

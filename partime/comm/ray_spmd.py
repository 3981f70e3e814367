"""The SPMD program on Ray: N actors form a torch.distributed (gloo) group among themselves.

``run_spmd(fn, workers, *args)`` starts ``workers`` actors (on a local Ray, or the cluster at
``address``), lets actor 0 pick the rendezvous port on its node, and calls
``fn(comm, *args, **kwargs)`` on every actor with a ``TorchComm`` of rank = actor index — the
same program that ``mpiexec``/``torchrun`` run. It returns every rank's result in rank order.

Failures end the run: an exception on one rank is raised here (as the original exception
type, the rank named), and a dead actor (killed process, lost node) raises RuntimeError naming
it. In both cases the other actors, which may be blocked waiting for the lost rank, are killed
at once. There is no automatic restart: rerun with the checkpoint (``--resume``) to continue.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from typing import Any

import torch
import torch.distributed as dist

from partime.comm.raycluster import ray_session
from partime.comm.torchdist import TorchComm

#: how long the other ranks' results are awaited after a RuntimeError, for an actor's death
DEATH_GRACE_S = 5.0


class _SpmdActor:
    """One rank: joins the group, runs the function, leaves the group."""

    def __init__(self, num_threads: int) -> None:
        torch.set_num_threads(num_threads)
        os.environ["OMP_NUM_THREADS"] = str(num_threads)

    def endpoint(self) -> tuple[str, int]:
        """This node's address and a free TCP port on it (the rendezvous of rank 0)."""
        import ray

        host = ray.util.get_node_ip_address()
        with socket.socket() as sock:
            sock.bind((host, 0))
            return host, sock.getsockname()[1]

    def run(self, fn: Callable, rank: int, size: int, master: tuple[str, int], timeout_s: float,
            args: tuple, kwargs: dict) -> Any:  # fmt: skip
        os.environ.update(
            MASTER_ADDR=master[0], MASTER_PORT=str(master[1]), RANK=str(rank),
            WORLD_SIZE=str(size), LOCAL_RANK="0",
        )  # fmt: skip
        result = fn(TorchComm.from_env(timeout_s), *args, **kwargs)
        # Only after success: leaving the group on an exception would make the peers fail
        # too, and their errors could reach the driver before the original one.
        dist.destroy_process_group()
        return result


def run_spmd(
    fn: Callable[..., Any],
    workers: int | None,
    *args: Any,
    address: str | None = None,
    timeout_s: float = 60.0,
    num_threads: int = 1,
    **kwargs: Any,
) -> list[Any]:
    """``fn(comm, *args, **kwargs)`` on ``workers`` Ray actors (None: one per ``num_threads``
    CPUs of the Ray cluster); their results in rank order."""
    if workers is not None and (
        isinstance(workers, bool) or not isinstance(workers, int) or workers < 1
    ):
        raise ValueError(f"workers must be None or a positive integer, got {workers!r}")
    cpus = None if workers is None else workers * num_threads
    with ray_session(address, num_cpus=cpus) as ray:
        if workers is None:
            workers = max(1, int(ray.cluster_resources().get("CPU", 1)) // num_threads)
        actor = ray.remote(num_cpus=num_threads)(_SpmdActor)
        actors = [actor.remote(num_threads) for _ in range(workers)]
        try:
            master = ray.get(actors[0].endpoint.remote())
            refs = [
                a.run.remote(fn, rank, workers, master, timeout_s, args, kwargs)
                for rank, a in enumerate(actors)
            ]
            return _results(ray, refs)
        finally:
            for a in actors:  # also those blocked waiting for a failed rank
                ray.kill(a)


def _results(ray, refs: list) -> list[Any]:
    """Every result, in rank order. The first failure is raised; when it is a RuntimeError (a
    broken process-group connection looks so) an actor's death that shows within
    ``DEATH_GRACE_S`` is raised instead, as the cause."""
    results: dict[int, Any] = {}
    pending = list(refs)
    while pending:
        (ready,), pending = ray.wait(pending, num_returns=1)
        try:
            results[refs.index(ready)] = ray.get(ready)
        except ray.exceptions.RayTaskError as err:
            if isinstance(err.cause, RuntimeError) and pending:
                done, _ = ray.wait(pending, num_returns=len(pending), timeout=DEATH_GRACE_S)
                for ref in done:
                    _raise_if_dead(ray, refs.index(ref), ref)
            _raise_failure(ray, refs.index(ready), ready)
        except ray.exceptions.RayActorError:
            _raise_failure(ray, refs.index(ready), ready)
    return [results[rank] for rank in range(len(refs))]


def _raise_if_dead(ray, rank: int, ref) -> None:
    try:
        ray.get(ref)
    except ray.exceptions.RayActorError:
        _raise_failure(ray, rank, ref)
    except ray.exceptions.RayError:
        pass


def _raise_failure(ray, rank: int, ref) -> None:
    """Raise the failure of ``rank``'s result ``ref`` as a one-line error naming the rank."""
    try:
        ray.get(ref)
    except ray.exceptions.RayActorError as err:
        raise RuntimeError(
            f"Ray actor of rank {rank} died ({type(err).__name__}); the run is ended and "
            f"its other actors killed (no restart: rerun with --resume to continue from "
            f"the last checkpoint)"
        ) from None
    except ray.exceptions.RayTaskError as err:
        cause = err.cause
        try:
            error = type(cause)(f"rank {rank}: {cause}")
        except Exception:  # an exception type that takes other arguments
            raise err.as_instanceof_cause() from None
        raise error from cause

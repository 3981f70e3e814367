"""The communicator contract every backend implements: a small mpi4py-like surface."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import torch

REDUCE_OPS = ("sum", "max", "min")


class Comm(ABC):
    """A group of ``size`` ranks; this process is ``rank``.

    Tensors travel as raw buffers where the backend allows (no pickling); any other
    picklable object travels pickled. Received tensors are CPU tensors unless the backend
    is device-aware (torch/NCCL), in which case they land on the backend's device.
    """

    backend: str  # "serial", "mpi", "torch"

    @property
    @abstractmethod
    def rank(self) -> int: ...

    @property
    @abstractmethod
    def size(self) -> int: ...

    @abstractmethod
    def send(self, obj: Any, dest: int, tag: int = 0) -> None:
        """Blocking send of a tensor (any dtype/shape, also empty or non-contiguous) or object."""

    @abstractmethod
    def recv(self, source: int, tag: int = 0) -> Any:
        """Blocking receive of what ``send`` sent from ``source`` with ``tag``."""

    @abstractmethod
    def bcast(self, obj: Any, root: int = 0) -> Any: ...

    @abstractmethod
    def scatter(self, objs: list[Any] | None, root: int = 0) -> Any:
        """Rank ``root`` passes a list of ``size`` items; every rank returns its item."""

    @abstractmethod
    def gather(self, obj: Any, root: int = 0) -> list[Any] | None:
        """List of every rank's item on ``root``; None elsewhere."""

    @abstractmethod
    def allgather(self, obj: Any) -> list[Any]: ...

    @abstractmethod
    def allreduce(self, value: Any, op: str = "sum") -> Any:
        """Elementwise reduction (``op`` in REDUCE_OPS) of a tensor or a Python number."""

    @abstractmethod
    def barrier(self) -> None: ...

    @abstractmethod
    def split(self, color: int, key: int = 0) -> Comm:
        """Sub-communicator of the ranks that passed the same ``color``, ordered by ``key``."""

    @abstractmethod
    def abort(self, code: int = 1) -> None:
        """End every rank of the job now (used when an exception escapes on one rank)."""

    @property
    def is_root(self) -> bool:
        return self.rank == 0

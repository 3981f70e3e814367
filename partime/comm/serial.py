"""The one-rank communicator: the embedded default, needing neither MPI nor a process group."""

from __future__ import annotations

import os
import sys
from typing import Any

import torch

from partime.comm.base import Comm, PendingTensor, Request


class SerialComm(Comm):
    """Size 1: messages to self wait in a queue per tag; collectives are the identity."""

    backend = "serial"

    @property
    def rank(self) -> int:
        return 0

    @property
    def size(self) -> int:
        return 1

    def send(self, obj: Any, dest: int, tag: int = 0) -> None:
        self._check_rank(dest, "dest")
        self._post_to_self(obj, self._check_tag(tag))

    def isend(self, obj: Any, dest: int, tag: int = 0) -> Request:
        self.send(obj, dest, tag)
        return Request()

    def recv(self, source: int, tag: int = 0) -> Any:
        self._check_rank(source, "source")
        return self._take_from_self(self._check_tag(tag))

    def bcast(self, obj: Any, root: int = 0) -> Any:
        self._check_rank(root, "root")
        return obj

    def ibcast(self, tensor: torch.Tensor, root: int = 0) -> PendingTensor:
        self._check_rank(root, "root")
        self._check_buffer(tensor)
        return PendingTensor(tensor)

    def scatter(self, objs: list[Any] | None, root: int = 0) -> Any:
        self._check_scatter(objs, root)
        return objs[0]

    def gather(self, obj: Any, root: int = 0) -> list[Any] | None:
        self._check_rank(root, "root")
        return [obj]

    def allgather(self, obj: Any) -> list[Any]:
        return [obj]

    def allreduce(self, value: Any, op: str = "sum") -> Any:
        self._check_reduce(value, op)
        return value.detach().clone() if isinstance(value, torch.Tensor) else value

    def barrier(self) -> None:
        return None

    def split(self, color: int, key: int = 0) -> Comm:
        self._check_color(color, key)
        return SerialComm()

    def abort(self, code: int = 1) -> None:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)

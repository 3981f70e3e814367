"""The communicator contract every backend implements: a small mpi4py-like surface."""

from __future__ import annotations

import numbers
import pickle
from abc import ABC, abstractmethod
from collections import defaultdict, deque
from collections.abc import Callable, Sequence
from typing import Any

import torch

REDUCE_OPS = ("sum", "max", "min")
MAX_TAG = 32767  # the MPI standard guarantees at least this tag range on every implementation
# dtypes that MPI/gloo cannot reduce natively are reduced in a wider type and cast back
# (a reduced bool is True where any rank's is for sum/max, where all are for min).
REDUCE_WORK_DTYPE = {
    torch.bool: torch.int32,
    torch.float16: torch.float32,
    torch.bfloat16: torch.float32,
}
_PYTHON_REDUCE = {"sum": sum, "max": max, "min": min}
Buffers = torch.Tensor | Sequence[torch.Tensor]  # one message's buffers (``send_init``)


class Request:
    """Handle of a non-blocking send: ``wait()`` returns once the message has left this rank's
    buffers (the tensor may then be changed); it keeps what is being sent alive until then."""

    def __init__(self, handles: tuple = (), keep: Any = None) -> None:
        self._handles = handles
        self._keep = keep

    def wait(self) -> None:
        for handle in self._handles:
            handle.wait()
        self._handles, self._keep = (), None


class PendingTensor:
    """Handle of a non-blocking collective that fills a tensor (``ibcast``): ``test()`` says,
    without waiting, whether it is complete (on MPI it also lets it progress); ``wait()``
    waits and returns the tensor."""

    def __init__(
        self,
        tensor: torch.Tensor,
        test: Callable[[], bool] | None = None,
        wait: Callable[[], Any] | None = None,
        keep: Any = None,
    ) -> None:
        self._tensor, self._test, self._wait, self._keep = tensor, test, wait, keep

    def test(self) -> bool:
        return self._test is None or bool(self._test())

    def wait(self) -> torch.Tensor:
        if self._wait is not None:
            self._wait()
            self._test = self._wait = self._keep = None
        return self._tensor


class Persistent:
    """A communication set up once on fixed buffers (``Comm.send_init``, ``recv_init``,
    ``bcast_init``) and run again by each ``start()``: ``test()`` says, without waiting,
    whether the last start is complete; ``wait()`` completes it (only then may the buffers be
    read or changed, or the communication started again); ``free()`` releases it once
    complete. This default runs ``begin()`` at each start, which transfers the data or returns
    a pending transfer (``test``/``wait``); MPI has its own persistent requests."""

    def __init__(self, begin: Callable[[], Any], keep: Any = None) -> None:
        self._begin, self._keep, self._pending = begin, keep, None

    def start(self) -> Persistent:
        self._pending = self._begin()
        return self

    def test(self) -> bool:
        return self._pending is None or self._pending.test()

    def wait(self) -> None:
        if self._pending is not None:
            self._pending.wait()
            self._pending = None

    def free(self) -> None:
        self._begin = self._keep = self._pending = None


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
    def isend(self, obj: Any, dest: int, tag: int = 0) -> Request:
        """Non-blocking ``send``: returns at once; call ``wait()`` on the result before the job
        ends. Messages to one rank with one tag arrive in the order they were posted."""

    @abstractmethod
    def recv(self, source: int, tag: int = 0) -> Any:
        """Blocking receive of what ``send`` sent from ``source`` with ``tag``."""

    def send_buffer(self, tensor: torch.Tensor, dest: int, tag: int = 0) -> None:
        """Blocking send of a contiguous tensor's bytes alone, for a receiver that knows its
        dtype and shape (``recv_buffer``): one message, no header."""
        self._check_rank(dest, "dest")
        self._check_tag(tag)
        self._check_buffer(tensor)
        if dest == self.rank:
            self._post_to_self(tensor, tag)
        else:
            self._send_bytes(tensor, dest, tag)

    def recv_buffer(self, out: torch.Tensor, source: int, tag: int = 0) -> torch.Tensor:
        """Receive what ``send_buffer`` sent from ``source`` into the contiguous ``out`` (of the
        sent dtype and shape); returns ``out``."""
        self._check_rank(source, "source")
        self._check_tag(tag)
        self._check_buffer(out, "out")
        if source == self.rank:
            return self._take_buffer_from_self(out, tag)
        return self._recv_bytes(out, source, tag)

    def send_init(self, buffers: Buffers, dest: int, tag: int = 0) -> Persistent:
        """A persistent send of one message: the bytes of the contiguous ``buffers`` in order,
        as they are at each ``start()``, to a ``recv_init`` of buffers of the same sizes.
        Checked once, here. On MPI ``start()`` returns at once; backends without persistent
        requests send at ``start()``, as ``send_buffer`` does (the torch backend's sends block
        until the peer receives)."""
        buffers = self._check_persistent(buffers, dest, "dest", tag)

        def begin() -> None:
            for buffer in buffers:
                self.send_buffer(buffer, dest, tag)

        return Persistent(begin)

    def recv_init(self, buffers: Buffers, source: int, tag: int = 0) -> Persistent:
        """A persistent receive of what a ``send_init`` of buffers of the same sizes sends,
        into the contiguous ``buffers``: each ``start()`` receives one message (readable after
        ``wait()``). Backends without persistent requests receive at ``start()``."""
        buffers = self._check_persistent(buffers, source, "source", tag)

        def begin() -> None:
            for buffer in buffers:
                self.recv_buffer(buffer, source, tag)

        return Persistent(begin)

    def bcast_init(self, tensor: torch.Tensor, root: int = 0) -> Persistent:
        """A persistent broadcast of the contiguous ``tensor`` of ``root`` into every rank's
        ``tensor`` (collective: every rank sets it up, and starts it, in the same order as its
        other collectives). ``start()`` returns at once (an ``ibcast`` where the backend has no
        persistent collectives)."""
        self._check_rank(root, "root")
        self._check_buffer(tensor)
        return Persistent(lambda: self.ibcast(tensor, root))

    def _check_persistent(
        self, buffers: Buffers, peer: int, name: str, tag: int
    ) -> tuple[torch.Tensor, ...]:
        self._check_rank(peer, name)
        self._check_tag(tag)
        buffers = tuple(buffers) if isinstance(buffers, list | tuple) else (buffers,)
        if not buffers:
            raise ValueError("a persistent message needs at least one buffer")
        for buffer in buffers:
            self._check_buffer(buffer)
        return buffers

    def _send_bytes(self, tensor: torch.Tensor, dest: int, tag: int) -> None:
        """``send_buffer`` to another rank, arguments checked (backends with peers)."""
        raise NotImplementedError(f"{type(self).__name__} has no other rank")

    def _recv_bytes(self, out: torch.Tensor, source: int, tag: int) -> torch.Tensor:
        """``recv_buffer`` from another rank, arguments checked (backends with peers)."""
        raise NotImplementedError(f"{type(self).__name__} has no other rank")

    @abstractmethod
    def bcast(self, obj: Any, root: int = 0) -> Any: ...

    @abstractmethod
    def ibcast(self, tensor: torch.Tensor, root: int = 0) -> PendingTensor:
        """Non-blocking broadcast of the contiguous ``tensor`` of ``root`` into the same-shaped
        ``tensor`` of every other rank, in place; returns at once. Every rank must start the
        same collectives in the same order; ``tensor`` is not to be touched until ``wait()``."""

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

    # Validation shared by the backends; each runs before any communication so that a bad
    # argument raises on the caller instead of leaving its peers waiting forever.

    def _check_rank(self, value: Any, name: str) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < self.size:
            raise ValueError(
                f"{name}={value!r} is not a rank of this {self.size}-rank communicator"
            )
        return value

    @staticmethod
    def _check_tag(tag: Any) -> int:
        if isinstance(tag, bool) or not isinstance(tag, int) or not 0 <= tag <= MAX_TAG:
            raise ValueError(f"tag={tag!r} must be an int in [0, {MAX_TAG}]")
        return tag

    @staticmethod
    def _check_color(color: Any, key: Any) -> None:
        if isinstance(color, bool) or not isinstance(color, int) or color < 0:
            raise ValueError(f"color={color!r} must be a non-negative int")
        if isinstance(key, bool) or not isinstance(key, int):
            raise ValueError(f"key={key!r} must be an int")

    def _check_scatter(self, objs: Any, root: int) -> None:
        self._check_rank(root, "root")
        if self.rank == root and (not isinstance(objs, list | tuple) or len(objs) != self.size):
            got = len(objs) if isinstance(objs, list | tuple) else type(objs).__name__
            raise ValueError(f"scatter on root needs a list of {self.size} items, got {got}")

    @staticmethod
    def _check_buffer(tensor: Any, name: str = "tensor") -> None:
        if not isinstance(tensor, torch.Tensor):
            raise TypeError(f"{name} must be a tensor, got {type(tensor).__name__}")
        if not tensor.is_contiguous():
            raise ValueError(f"{name} must be contiguous (its memory travels as it is)")

    @staticmethod
    def _check_reduce(value: Any, op: Any) -> None:
        if op not in REDUCE_OPS:
            raise ValueError(f"op={op!r} is not one of {REDUCE_OPS}")
        if not isinstance(value, torch.Tensor | numbers.Number):
            raise TypeError(f"allreduce needs a tensor or a number, got {type(value).__name__}")
        is_complex = (
            value.is_complex() if isinstance(value, torch.Tensor) else isinstance(value, complex)
        )
        if is_complex and op != "sum":
            raise ValueError(f"op={op!r} is undefined for complex values; only 'sum' is")

    # Messages a rank sends to itself never touch the network (a blocking MPI send to self may
    # wait forever for its own receive; gloo refuses self-sends): they wait in a local queue.

    def _post_to_self(self, obj: Any, tag: int) -> None:
        mailbox = self.__dict__.setdefault("_self_mailbox", defaultdict(deque))
        if isinstance(obj, torch.Tensor):
            mailbox[tag].append(obj.detach().clone(memory_format=torch.contiguous_format))
        else:
            # The pickle trip keeps self-sends honest: what cannot travel to a peer fails here too.
            mailbox[tag].append(pickle.loads(pickle.dumps(obj)))

    def _take_buffer_from_self(self, out: torch.Tensor, tag: int) -> torch.Tensor:
        sent = self._take_from_self(tag)
        if not isinstance(sent, torch.Tensor) or sent.dtype != out.dtype or sent.shape != out.shape:
            got = f"{sent.dtype} {tuple(sent.shape)}" if isinstance(sent, torch.Tensor) else sent
            raise ValueError(f"recv_buffer into {out.dtype} {tuple(out.shape)}, but got {got}")
        return out.copy_(sent)

    def _take_from_self(self, tag: int) -> Any:
        mailbox = self.__dict__.setdefault("_self_mailbox", defaultdict(deque))
        if not mailbox[tag]:
            raise RuntimeError(
                f"recv(source={self.rank}, tag={tag}) from self with nothing sent: it would hang"
            )
        return mailbox[tag].popleft()

    def _allreduce_number(self, value: numbers.Number, op: str) -> numbers.Number:
        """Reduce a Python number in rank order, so every rank gets bitwise the same result."""
        return _PYTHON_REDUCE[op](self.allgather(value))

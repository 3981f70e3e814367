"""MPI backend (mpi4py): tensors travel as raw byte buffers, other objects pickled."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from partime._optional import require
from partime.comm.base import (
    REDUCE_WORK_DTYPE,
    Buffers,
    Comm,
    PendingTensor,
    Persistent,
    Request,
)
from partime.comm.wire import (
    HEADER_WORDS,
    PICKLED,
    TensorHeader,
    byte_view,
    compact,
    empty_from_words,
    header_words,
    packed,
)


def _mpi() -> Any:
    require("mpi4py", "mpi")
    from mpi4py import MPI

    return MPI


class MPIComm(Comm):
    """Wraps an ``mpi4py`` communicator (COMM_WORLD by default)."""

    backend = "mpi"

    def __init__(self, comm: Any = None) -> None:
        self._MPI = _mpi()
        self._comm = self._MPI.COMM_WORLD if comm is None else comm
        self._rank = self._comm.Get_rank()
        self._size = self._comm.Get_size()

    @property
    def rank(self) -> int:
        return self._rank

    @property
    def size(self) -> int:
        return self._size

    def send(self, obj: Any, dest: int, tag: int = 0) -> None:
        self._check_rank(dest, "dest")
        self._check_tag(tag)
        if dest == self.rank:
            self._post_to_self(obj, tag)
            return
        # MPI keeps messages between one pair with one tag in order: the header words, a
        # pickled object where they say so, then a tensor's bytes.
        data = packed(obj) if isinstance(obj, torch.Tensor) else None
        words = header_words(data)
        self._comm.Send(words, dest=dest, tag=tag)
        if words[0] == PICKLED:
            self._comm.send(obj if data is None else TensorHeader.of(data), dest=dest, tag=tag)
        if data is not None:
            self._comm.Send([_buffer(data), self._MPI.BYTE], dest=dest, tag=tag)

    def isend(self, obj: Any, dest: int, tag: int = 0) -> Request:
        self._check_rank(dest, "dest")
        self._check_tag(tag)
        if dest == self.rank:
            self._post_to_self(obj, tag)
            return Request()
        data = packed(obj) if isinstance(obj, torch.Tensor) else None
        words = header_words(data)
        handles = [self._comm.Isend(words, dest=dest, tag=tag)]
        if words[0] == PICKLED:
            pickled = obj if data is None else TensorHeader.of(data)
            handles.append(self._comm.isend(pickled, dest=dest, tag=tag))
        if data is not None:
            handles.append(self._comm.Isend([_buffer(data), self._MPI.BYTE], dest=dest, tag=tag))
        return Request(tuple(handles), keep=(data, words))

    def recv(self, source: int, tag: int = 0) -> Any:
        self._check_rank(source, "source")
        self._check_tag(tag)
        if source == self.rank:
            return self._take_from_self(tag)
        words = np.empty(HEADER_WORDS, dtype=np.int64)  # a shorter message fills the front
        self._comm.Recv(words, source=source, tag=tag)
        announced = empty_from_words(words)
        if announced is None:
            header = self._comm.recv(source=source, tag=tag)
            if not isinstance(header, TensorHeader):
                return header
            out = header.empty()
            into = _buffer(out)
        else:
            out, into = announced
        self._comm.Recv([into, self._MPI.BYTE], source=source, tag=tag)
        return out

    def _send_bytes(self, tensor: torch.Tensor, dest: int, tag: int) -> None:
        self._comm.Send([_buffer(_plain(tensor)), self._MPI.BYTE], dest=dest, tag=tag)

    def _recv_bytes(self, out: torch.Tensor, source: int, tag: int) -> torch.Tensor:
        self._comm.Recv([_buffer(_plain(out)), self._MPI.BYTE], source=source, tag=tag)
        return out

    def send_init(self, buffers: Buffers, dest: int, tag: int = 0) -> Persistent:
        buffers = self._check_persistent(buffers, dest, "dest", tag)
        if dest == self.rank:  # to self: through the mailbox, as ``send_buffer``
            return super().send_init(buffers, dest, tag)
        message, keep, datatype = self._message(buffers)
        return _Persistent(self._comm.Send_init(message, dest=dest, tag=tag), keep, datatype)

    def recv_init(self, buffers: Buffers, source: int, tag: int = 0) -> Persistent:
        buffers = self._check_persistent(buffers, source, "source", tag)
        if source == self.rank:
            return super().recv_init(buffers, source, tag)
        message, keep, datatype = self._message(buffers)
        return _Persistent(self._comm.Recv_init(message, source=source, tag=tag), keep, datatype)

    def bcast_init(self, tensor: torch.Tensor, root: int = 0) -> Persistent:
        if self._MPI.Get_version() < (4, 0):  # persistent collectives came with MPI 4.0
            return super().bcast_init(tensor, root)
        self._check_rank(root, "root")
        self._check_buffer(tensor)
        buffer = _buffer(_plain(tensor))
        request = self._comm.Bcast_init([buffer, self._MPI.BYTE], root=root)
        return _Persistent(request, (tensor, buffer), None)

    def _message(self, buffers: tuple[torch.Tensor, ...]) -> tuple[Any, tuple, Any]:
        """(MPI message spec, what it must keep alive, its datatype to free or None): one
        buffer's bytes, or several buffers' bytes at their addresses (an hindexed type)."""
        arrays = tuple(_buffer(_plain(buffer)) for buffer in buffers)
        if len(arrays) == 1:
            return [arrays[0], self._MPI.BYTE], (buffers, arrays), None
        lengths = [array.nbytes for array in arrays]
        addresses = [self._MPI.Get_address(array) for array in arrays]
        datatype = self._MPI.BYTE.Create_hindexed(lengths, addresses).Commit()
        return [self._MPI.BOTTOM, 1, datatype], (buffers, arrays), datatype

    def ibcast(self, tensor: torch.Tensor, root: int = 0) -> PendingTensor:
        self._check_rank(root, "root")
        self._check_buffer(tensor)
        buffer = _buffer(_plain(tensor))
        request = self._comm.Ibcast([buffer, self._MPI.BYTE], root=root)
        return PendingTensor(tensor, request.Test, request.Wait, keep=buffer)

    def bcast(self, obj: Any, root: int = 0) -> Any:
        self._check_rank(root, "root")
        is_root = self._rank == root
        if is_root and isinstance(obj, torch.Tensor):
            data = packed(obj)
            header = self._comm.bcast(TensorHeader.of(data), root=root)
        else:
            header = self._comm.bcast(obj if is_root else None, root=root)
            if not isinstance(header, TensorHeader):
                return header
            data = header.empty()
        self._comm.Bcast([_buffer(data), self._MPI.BYTE], root=root)
        return obj if is_root else data

    def scatter(self, objs: list[Any] | None, root: int = 0) -> Any:
        self._check_scatter(objs, root)
        items = [compact(obj) for obj in objs] if self._rank == root else None
        return self._comm.scatter(items, root=root)

    def gather(self, obj: Any, root: int = 0) -> list[Any] | None:
        self._check_rank(root, "root")
        return self._comm.gather(compact(obj), root=root)

    def allgather(self, obj: Any) -> list[Any]:
        return self._comm.allgather(compact(obj))

    def allreduce(self, value: Any, op: str = "sum") -> Any:
        self._check_reduce(value, op)
        if not isinstance(value, torch.Tensor):
            return self._allreduce_number(value, op)
        work = packed(value).to(REDUCE_WORK_DTYPE.get(value.dtype, value.dtype))
        out = torch.empty_like(work)
        mpi_op = {"sum": self._MPI.SUM, "max": self._MPI.MAX, "min": self._MPI.MIN}[op]
        self._comm.Allreduce(work.reshape(-1).numpy(), out.reshape(-1).numpy(), op=mpi_op)
        return out.to(value.dtype)

    def _allreduce_number(self, value: Any, op: str) -> Any:
        if op != "sum" and type(value) is float:  # max and min are exact in any order
            out = np.empty(1)
            mpi_op = self._MPI.MAX if op == "max" else self._MPI.MIN
            self._comm.Allreduce(np.array([value]), out, op=mpi_op)  # 5 us; pickled: 15-40
            return float(out[0])
        return super()._allreduce_number(value, op)

    def barrier(self) -> None:
        self._comm.Barrier()

    def split(self, color: int, key: int = 0) -> Comm:
        self._check_color(color, key)
        return MPIComm(self._comm.Split(color, key))

    def abort(self, code: int = 1) -> None:
        # Abort on COMM_WORLD: the launcher then kills every process of the job, not only a group.
        self._MPI.COMM_WORLD.Abort(code)


class _Persistent(Persistent):
    """An MPI persistent request (``Send_init``, ``Recv_init``, ``Bcast_init``), the buffers
    it reads or writes kept alive, and its datatype freed with it."""

    def __init__(self, request: Any, keep: Any, datatype: Any) -> None:
        super().__init__(request.Start, keep)
        self._request, self._datatype = request, datatype

    def start(self) -> Persistent:
        self._request.Start()
        return self

    def test(self) -> bool:
        return self._request.Test()

    def wait(self) -> None:
        self._request.Wait()

    def free(self) -> None:
        self._request.Free()
        if self._datatype is not None:
            self._datatype.Free()
        super().free()


def _plain(tensor: torch.Tensor) -> torch.Tensor:
    """``tensor`` outside autograd (detach() costs a microsecond: only where it must)."""
    return tensor.detach() if tensor.requires_grad else tensor


def _buffer(tensor: torch.Tensor) -> Any:
    """A numpy view of a contiguous CPU tensor's memory for MPI (sent as bytes): the tensor's
    own dtype where numpy has it (1 us), else a byte view (bfloat16, …; 5 us)."""
    try:
        return tensor.numpy()
    except TypeError:
        return byte_view(tensor).numpy()

"""torch.distributed backend: gloo on CPU, NCCL (one GPU per local rank) when CUDA is available."""

from __future__ import annotations

import atexit
import datetime
import os
import pickle
import sys
from typing import Any

import torch
import torch.distributed as dist

from partime.comm.base import REDUCE_WORK_DTYPE, Comm, PendingTensor, Request
from partime.comm.wire import TensorHeader, byte_view, compact, packed

_REDUCE_OP = {"sum": dist.ReduceOp.SUM, "max": dist.ReduceOp.MAX, "min": dist.ReduceOp.MIN}


def _moved(obj: Any, device: torch.device) -> Any:
    return obj.to(device) if isinstance(obj, torch.Tensor) else obj


def _destroy_default_group() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


class TorchComm(Comm):
    """A torch.distributed process group (the default group when ``group`` is None).

    ``members`` lists the group's global ranks in this communicator's rank order, which may
    differ from torch's own (ascending) order after a ``split`` with keys.
    """

    backend = "torch"

    def __init__(
        self,
        group: Any = None,
        device: torch.device | None = None,
        members: list[int] | None = None,
    ) -> None:
        self._group = group
        self._members = list(range(dist.get_world_size())) if members is None else members
        self._rank = self._members.index(dist.get_rank())
        self._size = len(self._members)
        # torch's group rank of each of our ranks (torch orders a group by global rank)
        ascending = sorted(self._members)
        self._group_rank = [ascending.index(member) for member in self._members]
        self.device = torch.device("cpu") if device is None else device

    @classmethod
    def from_env(cls, timeout_s: float = 60.0) -> TorchComm:
        """Join (or reuse) the default group set up by torchrun's RANK/WORLD_SIZE/MASTER_* vars.

        ``timeout_s`` bounds how long a peer waits in a collective once a rank has died.
        """
        if timeout_s <= 0:
            raise ValueError(f"timeout_s={timeout_s!r} must be positive")
        use_cuda = torch.cuda.is_available()
        device = torch.device("cpu")
        if use_cuda:
            device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
            torch.cuda.set_device(device)
        if not dist.is_initialized():
            dist.init_process_group(
                backend="nccl" if use_cuda else "gloo",
                timeout=datetime.timedelta(seconds=timeout_s),
            )
            # Tearing the group down before interpreter exit avoids gloo's occasional
            # "terminate called without an active exception" abort at shutdown.
            atexit.register(_destroy_default_group)
        return cls(None, device)

    @property
    def rank(self) -> int:
        return self._rank

    @property
    def size(self) -> int:
        return self._size

    def _world(self, rank: int) -> int:
        return self._members[rank]

    def _to_group_order(self, items: list[Any]) -> list[Any]:
        ordered = [None] * self._size
        for rank, group_rank in enumerate(self._group_rank):
            ordered[group_rank] = items[rank]
        return ordered

    def _from_group_order(self, items: list[Any]) -> list[Any]:
        return [_moved(items[group_rank], self.device) for group_rank in self._group_rank]

    def _send_tensor(self, tensor: torch.Tensor, dest: int, tag: int) -> None:
        if tensor.numel():
            dist.send(tensor, self._world(dest), group=self._group, tag=tag)

    def _recv_tensor(self, out: torch.Tensor, source: int, tag: int) -> torch.Tensor:
        if out.numel():
            dist.recv(out, self._world(source), group=self._group, tag=tag)
        return out

    def _messages(self, obj: Any) -> list[torch.Tensor]:
        """What ``obj`` travels as: header length, pickled header, then a tensor's bytes."""
        is_tensor = isinstance(obj, torch.Tensor)
        data = packed(obj, self.device) if is_tensor else None
        header = pickle.dumps(TensorHeader.of(data) if is_tensor else obj)
        header_bytes = torch.frombuffer(bytearray(header), dtype=torch.uint8).to(self.device)
        length = torch.tensor([len(header)], dtype=torch.int64, device=self.device)
        return [length, header_bytes, *([byte_view(data)] if is_tensor else [])]

    def send(self, obj: Any, dest: int, tag: int = 0) -> None:
        self._check_rank(dest, "dest")
        self._check_tag(tag)
        if dest == self.rank:
            self._post_to_self(obj, tag)
            return
        # The messages stay in order per pair and tag.
        for message in self._messages(obj):
            self._send_tensor(message, dest, tag)

    def isend(self, obj: Any, dest: int, tag: int = 0) -> Request:
        self._check_rank(dest, "dest")
        self._check_tag(tag)
        if dest == self.rank:
            self._post_to_self(obj, tag)
            return Request()
        messages = self._messages(obj)
        works = tuple(
            dist.isend(message, self._world(dest), group=self._group, tag=tag)
            for message in messages
            if message.numel()
        )
        return Request(works, keep=messages)

    def recv(self, source: int, tag: int = 0) -> Any:
        self._check_rank(source, "source")
        self._check_tag(tag)
        if source == self.rank:
            return self._take_from_self(tag)
        length = self._recv_tensor(
            torch.empty(1, dtype=torch.int64, device=self.device), source, tag
        )
        raw = torch.empty(int(length.item()), dtype=torch.uint8, device=self.device)
        header = pickle.loads(self._recv_tensor(raw, source, tag).cpu().numpy().tobytes())
        if not isinstance(header, TensorHeader):
            return header
        out = header.empty(self.device)
        self._recv_tensor(byte_view(out), source, tag)
        return out

    def _send_bytes(self, tensor: torch.Tensor, dest: int, tag: int) -> None:
        self._send_tensor(byte_view(packed(tensor, self.device)), dest, tag)

    def _recv_bytes(self, out: torch.Tensor, source: int, tag: int) -> torch.Tensor:
        work = out if out.device == self.device else torch.empty_like(out, device=self.device)
        self._recv_tensor(byte_view(work.detach()), source, tag)
        return out if work is out else out.copy_(work)

    def ibcast(self, tensor: torch.Tensor, root: int = 0) -> PendingTensor:
        self._check_rank(root, "root")
        self._check_buffer(tensor)
        work = tensor.detach().to(self.device)  # the tensor itself where it is on the device
        if not work.numel():
            return PendingTensor(tensor)
        group_root = self._world(root)
        handle = dist.broadcast(byte_view(work), src=group_root, group=self._group, async_op=True)
        if work.device == tensor.device:
            return PendingTensor(tensor, handle.is_completed, handle.wait)

        def wait() -> None:
            handle.wait()
            tensor.copy_(work)

        return PendingTensor(tensor, handle.is_completed, wait, keep=work)

    def bcast(self, obj: Any, root: int = 0) -> Any:
        self._check_rank(root, "root")
        is_root = self._rank == root
        data = packed(obj, self.device) if is_root and isinstance(obj, torch.Tensor) else None
        box = [TensorHeader.of(data) if data is not None else compact(obj) if is_root else None]
        dist.broadcast_object_list(box, src=self._world(root), group=self._group)
        header = box[0]
        if not isinstance(header, TensorHeader):
            return _moved(header, self.device)
        if data is None:
            data = header.empty(self.device)
        if data.numel():
            dist.broadcast(byte_view(data), src=self._world(root), group=self._group)
        return obj if is_root else data

    def scatter(self, objs: list[Any] | None, root: int = 0) -> Any:
        self._check_scatter(objs, root)
        box = [None]
        items = self._to_group_order([compact(o) for o in objs]) if self._rank == root else None
        dist.scatter_object_list(box, items, src=self._world(root), group=self._group)
        return _moved(box[0], self.device)

    def gather(self, obj: Any, root: int = 0) -> list[Any] | None:
        self._check_rank(root, "root")
        out = [None] * self._size if self._rank == root else None
        dist.gather_object(compact(obj), out, dst=self._world(root), group=self._group)
        return None if out is None else self._from_group_order(out)

    def allgather(self, obj: Any) -> list[Any]:
        out = [None] * self._size
        dist.all_gather_object(out, compact(obj), group=self._group)
        return self._from_group_order(out)

    def allreduce(self, value: Any, op: str = "sum") -> Any:
        self._check_reduce(value, op)
        if not isinstance(value, torch.Tensor):
            return self._allreduce_number(value, op)
        work_dtype = REDUCE_WORK_DTYPE.get(value.dtype, value.dtype)
        # clone: packed() and to() return the caller's tensor itself when no copy is needed.
        work = packed(value, self.device).to(work_dtype).clone()
        if work.numel():
            dist.all_reduce(work, op=_REDUCE_OP[op], group=self._group)
        return work.to(value.dtype)

    def barrier(self) -> None:
        dist.barrier(group=self._group)

    def split(self, color: int, key: int = 0) -> Comm:
        """Every rank of this group must call it (like MPI_Comm_split)."""
        self._check_color(color, key)
        entries = self.allgather((color, key, self._world(self._rank)))
        members = {
            c: [r for _, _, r in sorted(e for e in entries if e[0] == c)] for c, _, _ in entries
        }
        if self._group is None:
            # From the world group every rank takes part in creating every new group, in one
            # agreed order, so groups get distinct names even when the same split repeats.
            groups = {c: dist.new_group(members[c]) for c in sorted(members)}
            group = groups[color]
        else:
            # Ranks outside this group cannot join the call, so only the members synchronise.
            group = dist.new_group(members[color], use_local_synchronization=True)
        return TorchComm(group, self.device, members[color])

    def abort(self, code: int = 1) -> None:
        # No MPI_Abort here: exit now; torchrun then stops the other workers, and peers
        # blocked in a collective error out when the connection drops or the timeout expires.
        print(f"[rank {self._rank}/{self._size}] aborting with exit code {code}", file=sys.stderr)
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)

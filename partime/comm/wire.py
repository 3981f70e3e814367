"""How tensors travel: a small picklable header (dtype, shape) plus the raw bytes of the data."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch


@dataclass(frozen=True)
class TensorHeader:
    """What a receiver needs to allocate the tensor that the following raw bytes fill."""

    dtype: torch.dtype
    shape: tuple[int, ...]

    @classmethod
    def of(cls, tensor: torch.Tensor) -> TensorHeader:
        return cls(tensor.dtype, tuple(tensor.shape))

    def empty(self, device: torch.device | str = "cpu") -> torch.Tensor:
        return torch.empty(self.shape, dtype=self.dtype, device=device)

    def __reduce__(self) -> tuple:
        # The dtype by name: pickling a torch.dtype object costs more than the whole message
        # of a small tensor (parareal's sweep sends one (batch, dim) state per iteration).
        return (_header, (str(self.dtype).removeprefix("torch."), self.shape))


def _header(dtype_name: str, shape: tuple[int, ...]) -> TensorHeader:
    return TensorHeader(getattr(torch, dtype_name), shape)


def packed(tensor: torch.Tensor, device: torch.device | str = "cpu") -> torch.Tensor:
    """``tensor`` detached, on ``device``, dense and row-major (a copy only where needed)."""
    if (
        device == "cpu"
        and tensor.device.type == "cpu"
        and tensor.is_contiguous()
        and not (tensor.is_conj() or tensor.is_neg())
    ):
        return tensor.detach()  # the common case, without four no-op conversions
    # conj/neg bits are lazy views: they must be materialised before the bytes are read.
    return tensor.detach().to(device).resolve_conj().resolve_neg().contiguous()


def byte_view(tensor: torch.Tensor) -> torch.Tensor:
    """1-D uint8 view of a contiguous tensor's memory; works for every dtype, 0-d and empty."""
    return tensor.reshape(-1).view(torch.uint8)


def compact(obj: Any) -> Any:
    """A tensor as a fresh dense CPU copy (so pickling it ships only its own elements)."""
    # Pickling a view ships the whole underlying storage; clone() drops the rest of it.
    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu().clone(memory_format=torch.contiguous_format)
    return obj

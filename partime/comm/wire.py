"""How tensors travel: a small header (dtype, shape) plus the raw bytes of the data.

The header is a picklable ``TensorHeader``, or where a backend sends raw buffers (MPI) a few
int64 words (``header_words``): [TENSOR, dtype index, ndim, *shape] for the common dtypes and up
to ``MAX_WORDS_NDIM`` dimensions, else [PICKLED] and a pickled object follows. Raw words
take ~3 us between two ranks, a pickled header ~13 us: parareal's sweep sends one small
state per rank per iteration on its critical path.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

PICKLED, TENSOR = 0, 1  # first header word: a pickled object follows, or a described tensor
WORDS_DTYPES = (
    torch.float64, torch.float32, torch.float16, torch.bfloat16, torch.complex128,
    torch.complex64, torch.int64, torch.int32, torch.int16, torch.int8, torch.uint8, torch.bool,
)  # fmt: skip
_DTYPE_INDEX = {dtype: i for i, dtype in enumerate(WORDS_DTYPES)}
MAX_WORDS_NDIM = 12
HEADER_WORDS = 3 + MAX_WORDS_NDIM  # the receive buffer of ``header_words``


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
    """``tensor`` outside autograd, on ``device``, dense and row-major (a copy only where
    needed)."""
    if (
        device == "cpu"
        and tensor.is_cpu
        and tensor.is_contiguous()
        and not (tensor.is_conj() or tensor.is_neg())
    ):
        # the common case, without four no-op conversions
        return tensor.detach() if tensor.requires_grad else tensor
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


def header_words(tensor: torch.Tensor | None) -> np.ndarray:
    """int64 words announcing ``tensor`` ([TENSOR, dtype index, ndim, *shape]), or [PICKLED]
    for a non-tensor (None) or a tensor the words cannot describe: a pickled object follows."""
    index = None if tensor is None else _DTYPE_INDEX.get(tensor.dtype)
    if index is None or tensor.ndim > MAX_WORDS_NDIM:
        return np.array([PICKLED], dtype=np.int64)
    return np.array([TENSOR, index, tensor.ndim, *tensor.shape], dtype=np.int64)


def empty_from_words(words: np.ndarray) -> tuple[torch.Tensor, np.ndarray] | None:
    """The empty CPU tensor ``header_words`` announced and a numpy view of its memory to
    receive into (bytes where numpy lacks the dtype), or None for [PICKLED]."""
    values = words.tolist()
    if values[0] == PICKLED:
        return None
    if values[0] != TENSOR or not 0 <= values[1] < len(WORDS_DTYPES):
        raise ValueError(f"not a tensor header: {values[:3]}")
    shape, dtype = values[3 : 3 + values[2]], WORDS_DTYPES[values[1]]
    if dtype is torch.bfloat16:
        out = torch.empty(shape, dtype=dtype)
        return out, byte_view(out).numpy()
    into = np.empty(shape, dtype=_NUMPY[dtype])  # a numpy allocation costs half torch's
    return torch.from_numpy(into), into


_NUMPY = {
    dtype: torch.empty(0, dtype=dtype).numpy().dtype
    for dtype in WORDS_DTYPES
    if dtype is not torch.bfloat16  # numpy has no bfloat16
}

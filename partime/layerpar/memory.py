"""Activation memory: the bytes of tensors autograd keeps for backward, live and at the peak.

Measured the same way serially and on every rank (CPU or GPU): a ``saved_tensors_hooks`` pair
records each saved tensor's storage once (parameters excluded) until autograd releases it.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import Tensor


class _Saved:
    """A saved tensor; the meter forgets its storage when the last such handle goes."""

    __slots__ = ("key", "meter", "tensor")

    def __init__(self, tensor: Tensor, key: int, meter: ActivationMeter) -> None:
        self.tensor, self.key, self.meter = tensor, key, meter

    def __del__(self) -> None:
        self.meter._release(self.key)


class ActivationMeter:
    """``with ActivationMeter(model.parameters()) as meter: ...``; then ``meter.peak`` bytes."""

    def __init__(self, parameters: Iterable[Tensor] = ()) -> None:
        self._skip = {p.untyped_storage().data_ptr() for p in parameters}
        self._count: dict[int, int] = {}
        self._size: dict[int, int] = {}
        self.live = self.peak = 0
        self._hooks = torch.autograd.graph.saved_tensors_hooks(self._pack, self._unpack)

    def __enter__(self) -> ActivationMeter:
        self._hooks.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self._hooks.__exit__(*exc)

    def _pack(self, tensor: Tensor):
        storage = tensor.untyped_storage()
        key = storage.data_ptr()
        if key in self._skip or storage.nbytes() == 0:
            return tensor
        if key not in self._count:
            self._count[key], self._size[key] = 0, storage.nbytes()
            self.live += storage.nbytes()
            self.peak = max(self.peak, self.live)
        self._count[key] += 1
        return _Saved(tensor, key, self)

    @staticmethod
    def _unpack(saved) -> Tensor:
        return saved.tensor if isinstance(saved, _Saved) else saved

    def _release(self, key: int) -> None:
        self._count[key] -= 1
        if not self._count[key]:
            del self._count[key]
            self.live -= self._size.pop(key)

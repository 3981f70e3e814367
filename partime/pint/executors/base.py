"""The executor contract: where parareal's fine solves run and how its sweep crosses ranks."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, runtime_checkable

from torch import Tensor


@runtime_checkable
class Executor(Protocol):
    """What ``parareal`` calls. Every method is collective over the executor's ranks.

    ``rank``/``size``/``is_root``: this process among the executor's ranks (1 rank for the
    one-process executors); ``allow_idle``: whether a rank may own no slice.
    """

    rank: int
    size: int
    allow_idle: bool

    @property
    def is_root(self) -> bool: ...

    def local_slices(self, n_slices: int) -> range:
        """The contiguous block of slices this rank owns. Pure."""

    def prepare(self, fine: Callable, n_local: int) -> None:
        """Start what the fine solves need (actors, …) before the solve is timed; ``n_local``
        is the number of slices of this rank (a static-shape fine pass is padded to it)."""

    def fine(
        self, prop: Callable, x: Tensor, t0: Tensor, t1: Tensor, save_every: int | None = None
    ) -> Tensor:
        """End states (m, batch, dim) of m slices from start states ``x`` (m, batch, dim)
        with per-slice times ``t0``/``t1`` (m,); with ``save_every`` the saved fine states
        (m, n_save+1, batch, dim)."""

    def sweep(
        self, step: Callable[[int, Tensor], Tensor], starts: Tensor, local: range, first: int
    ) -> None:
        """The sequential sweep, in place on ``starts`` (n_local+1, batch, dim): receive the
        incoming start state from the previous rank when this rank's block begins after slice
        ``first``, set ``starts[j+1] = step(j, starts[j])`` from there on, and pass
        ``starts[-1]`` to the next rank. Pipelined: neighbours only, nothing gathered."""

    def max(self, value: float) -> float:
        """Maximum of ``value`` over ranks."""

    def total(self, value: float) -> float:
        """Sum of ``value`` over ranks."""

    def gather(self, x: Tensor) -> Tensor | None:
        """Concatenation over ranks along dim 0 on the root, None elsewhere."""

    def close(self) -> None:
        """Release workers (actors, …); safe to call twice."""

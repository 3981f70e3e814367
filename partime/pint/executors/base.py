"""The executor contract: where parareal's fine solves run and how its sweep crosses ranks."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, runtime_checkable

from torch import Tensor


class Reduction(Protocol):
    """A value being combined over ranks: ``test()`` says, without waiting, whether it is in;
    ``wait()`` returns it."""

    def test(self) -> bool: ...

    def wait(self) -> float: ...


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

    def prepare(self, fine: Callable) -> None:
        """Start what the fine solves need (actors, …) before the solve is timed."""

    def prepare_sweeps(self, starts: Tensor) -> None:
        """Before the solve is timed: set up what the sweeps over the run's start states
        ``starts`` (the buffer every ``sweep`` of the run is given) need."""

    def fine(
        self, prop: Callable, x: Tensor, t0: Tensor, t1: Tensor, save_every: int | None = None
    ) -> Tensor:
        """End states (m, batch, dim) of m slices from start states ``x`` (m, batch, dim)
        with per-slice times ``t0``/``t1`` (m,); with ``save_every`` the saved fine states
        (m, n_save+1, batch, dim)."""

    def fine_pass(
        self, prop: Callable, like: Tensor, t0: Tensor, t1: Tensor
    ) -> Callable[..., Tensor] | None:
        """A callable ``(x, first=0, out=None)`` for repeated ``fine`` passes over the slices
        ``t0``/``t1`` (m,) from first on, from start states ``x`` shaped like
        ``like[first:]`` (``like`` (m, batch, dim)), checked and prepared once (a
        propagator's ``batched_pass``), the end states written into ``out`` (shaped like
        ``x``) when given; None where every pass goes through ``fine``."""

    def sweep(
        self, advance: Callable[[int, Tensor], float], starts: Tensor, local: range, first: int
    ) -> Reduction:
        """The sequential sweep, in place on ``starts`` (n_local+1, batch, dim), where this
        rank's block ends after slice ``first``: receive the incoming start state from the
        previous rank when the block begins after ``first``, call ``advance(j0, starts)``, which
        fills starts[j0+1:] from starts[j0] (j0: the first local slice at or after ``first``;
        the parareal core runs the coarse sweep of the block there, fused or slice by slice)
        and returns the largest change it made, and pass ``starts[-1]`` to the next rank.
        Returns the largest change over all ranks (0 where nothing changed), possibly still
        in flight (the executor completes it by its next sweep or gather, whether or not it
        was waited for). Pipelined: neighbours only, nothing gathered."""

    def max(self, value: float) -> float:
        """Maximum of ``value`` over ranks."""

    def total(self, value: float) -> float:
        """Sum of ``value`` over ranks."""

    def gather(self, x: Tensor) -> Tensor | None:
        """Concatenation over ranks along dim 0 on the root, None elsewhere."""

    def close(self) -> None:
        """Release workers (actors, …); safe to call twice."""

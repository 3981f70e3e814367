"""DepthPartition: which contiguous run of depth units each rank of a pipeline owns.

Units are the pieces a model is split at (a Sequential's children, an OdeBlock's steps, …).
Rank r owns units ``bounds[r]`` .. ``bounds[r+1]-1``: the stem (unit 0) is on the first rank,
the head (the last unit) and the loss on the last. ``balanced`` minimises the most expensive
rank's cost, then the spread (sum of squared rank costs), optionally cutting only at allowed
unit indices — e.g. the steps of the coarsest MG/OPT level, so every level shares the cuts.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class DepthPartition:
    """``bounds`` (n_ranks+1,): 0 = bounds[0] < bounds[1] < … < bounds[-1] = n_units."""

    bounds: tuple[int, ...]

    def __post_init__(self) -> None:
        b = tuple(self.bounds)
        if len(b) < 2 or any(isinstance(v, bool) or not isinstance(v, int) for v in b):
            raise ValueError(f"bounds must be at least two ints, got {self.bounds!r}")
        if b[0] != 0 or any(hi <= lo for lo, hi in zip(b, b[1:], strict=False)):
            raise ValueError(
                f"bounds must start at 0 and increase strictly (every rank owns a unit), got {b}"
            )
        object.__setattr__(self, "bounds", b)

    @property
    def n_ranks(self) -> int:
        return len(self.bounds) - 1

    @property
    def n_units(self) -> int:
        return self.bounds[-1]

    @property
    def sizes(self) -> tuple[int, ...]:
        return tuple(hi - lo for lo, hi in zip(self.bounds, self.bounds[1:], strict=False))

    def units(self, rank: int) -> range:
        """The unit indices of ``rank``."""
        if not 0 <= rank < self.n_ranks:
            raise ValueError(f"rank={rank} is not one of the partition's {self.n_ranks} ranks")
        return range(self.bounds[rank], self.bounds[rank + 1])

    def rank_of(self, unit: int) -> int:
        """The rank that owns unit index ``unit``."""
        if not 0 <= unit < self.n_units:
            raise ValueError(f"unit={unit} is not one of the {self.n_units} units")
        return int(np.searchsorted(self.bounds, unit, side="right")) - 1

    @classmethod
    def balanced(
        cls,
        costs: Sequence[float] | int,
        n_ranks: int,
        cuts: Collection[int] | None = None,
    ) -> DepthPartition:
        """Contiguous intervals over units of ``costs`` (or that many unit-cost units) for
        ``n_ranks`` ranks, cut only at unit indices in ``cuts`` (default: anywhere)."""
        costs = _check_costs(costs)
        n = len(costs)
        if isinstance(n_ranks, bool) or not isinstance(n_ranks, int) or n_ranks < 1:
            raise ValueError(f"n_ranks must be a positive int, got {n_ranks!r}")
        if n < n_ranks:
            raise ValueError(
                f"the model has {n} depth units for {n_ranks} ranks: every rank needs at "
                f"least one unit (use fewer ranks or split the model finer)"
            )
        allowed = _check_cuts(cuts, n, n_ranks)
        points = np.array([0, *allowed, n])  # candidate bounds
        prefix = np.concatenate([[0.0], np.cumsum(costs)])[points]
        worst = _min_max_cost(prefix, n_ranks)
        chosen = _min_spread(prefix, n_ranks, worst)
        return cls(tuple(int(points[i]) for i in chosen))


def grid_cuts(n_units: int, stride: int, offset: int = 0) -> list[int]:
    """Cut points ``offset + k·stride`` inside (0, n_units): a grid of ``stride`` units from
    ``offset`` (e.g. the fine steps where the coarsest MG/OPT level has its steps)."""
    if stride < 1 or offset < 0:
        raise ValueError(f"stride must be >= 1 and offset >= 0, got {stride}, {offset}")
    return [c for c in range(offset, n_units, stride) if 0 < c < n_units]


def _check_costs(costs: Sequence[float] | int) -> np.ndarray:
    if isinstance(costs, int) and not isinstance(costs, bool):
        if costs < 1:
            raise ValueError(f"a model needs at least one depth unit, got {costs}")
        return np.ones(costs)
    values = np.asarray(costs, dtype=np.float64)
    if (
        values.ndim != 1
        or values.size == 0
        or not np.all(np.isfinite(values))
        or (values < 0).any()
    ):
        raise ValueError(f"costs must be a non-empty list of finite numbers >= 0, got {costs!r}")
    return values


def _check_cuts(cuts: Collection[int] | None, n: int, n_ranks: int) -> list[int]:
    if cuts is None:
        return list(range(1, n))
    allowed = sorted(set(cuts))
    if any(isinstance(c, bool) or not isinstance(c, int | np.integer) for c in allowed):
        raise ValueError(f"cuts must be unit indices (ints), got {cuts!r}")
    outside = [c for c in allowed if not 0 < c < n]
    if outside:
        raise ValueError(f"cuts {outside} are not inside (0, {n}) for a model of {n} units")
    if len(allowed) < n_ranks - 1:
        raise ValueError(
            f"{len(allowed)} allowed cut points cannot split the model over {n_ranks} ranks "
            f"(needs {n_ranks - 1})"
        )
    return [int(c) for c in allowed]


def _min_max_cost(prefix: np.ndarray, parts: int) -> float:
    """Smallest achievable cost of the most expensive part (dynamic programme over points)."""
    m = len(prefix)
    best = np.full(m, np.inf)
    best[0] = 0.0
    for _ in range(parts):
        nxt = np.full(m, np.inf)
        for j in range(1, m):
            nxt[j] = np.min(np.maximum(best[:j], prefix[j] - prefix[:j]))
        best = nxt
    return float(best[-1])


def _min_spread(prefix: np.ndarray, parts: int, worst: float) -> list[int]:
    """Indices into ``prefix`` of the bounds with the least sum of squared part costs among
    partitions whose parts cost at most ``worst``; ties go to earlier ranks holding more."""
    m = len(prefix)
    cost = np.full((parts + 1, m), np.inf)
    choice = np.zeros((parts + 1, m), dtype=int)
    cost[0, 0] = 0.0
    slack = 1e-12 * max(abs(worst), 1.0)
    for p in range(1, parts + 1):
        for j in range(1, m):
            part = prefix[j] - prefix[:j]
            total = np.where(part <= worst + slack, cost[p - 1, :j] + part**2, np.inf)
            i = j - 1 - int(np.argmin(total[::-1]))  # the last minimiser: a shorter last part
            cost[p, j], choice[p, j] = total[i], i
    bounds = [m - 1]
    for p in range(parts, 0, -1):
        bounds.append(int(choice[p, bounds[-1]]))
    return bounds[::-1]

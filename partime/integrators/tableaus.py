"""Explicit Runge–Kutta methods as data: a Butcher tableau per scheme, one stepping routine."""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class ButcherTableau:
    """Explicit RK coefficients: stage ``i`` uses row ``a[i]`` (length i) and node ``c[i]``."""

    name: str
    a: tuple[tuple[float, ...], ...]
    b: tuple[float, ...]
    c: tuple[float, ...]
    order: int

    def __post_init__(self) -> None:
        stages = len(self.b)
        if stages == 0 or len(self.c) != stages or len(self.a) != stages:
            raise ValueError(
                f"tableau {self.name!r}: a, b, c must describe the same number of stages "
                f"(got len(a)={len(self.a)}, len(b)={stages}, len(c)={len(self.c)})"
            )
        for i, row in enumerate(self.a):
            if len(row) != i:
                raise ValueError(
                    f"tableau {self.name!r}: explicit schemes need row a[{i}] of length {i}, "
                    f"got {row}"
                )
            # Consistency c_i = sum_j a_ij keeps non-autonomous fields at the right order.
            if not math.isclose(sum(row), self.c[i], abs_tol=1e-14):
                raise ValueError(
                    f"tableau {self.name!r}: c[{i}]={self.c[i]} != sum(a[{i}])={sum(row)}"
                )
        if not math.isclose(sum(self.b), 1.0, abs_tol=1e-14):
            raise ValueError(f"tableau {self.name!r}: weights b={self.b} must sum to 1")
        if self.order < 1:
            raise ValueError(f"tableau {self.name!r}: order must be >= 1, got {self.order}")

    @property
    def stages(self) -> int:
        """Number of right-hand-side evaluations per step."""
        return len(self.b)


def _tableau(name: str, a: list[list[float]], b: list[float], order: int) -> ButcherTableau:
    return ButcherTableau(
        name=name,
        a=tuple(tuple(row) for row in a),
        b=tuple(b),
        c=tuple(float(sum(row)) for row in a),
        order=order,
    )


TABLEAUS: dict[str, ButcherTableau] = {
    t.name: t
    for t in (
        _tableau("euler", [[]], [1.0], order=1),
        _tableau("midpoint", [[], [0.5]], [0.0, 1.0], order=2),
        _tableau("heun", [[], [1.0]], [0.5, 0.5], order=2),
        _tableau("ralston", [[], [2 / 3]], [0.25, 0.75], order=2),
        # Classic RK4 is ``rk4``; torchdiffeq's ``rk4`` is the 3/8 rule, here ``rk38``.
        _tableau(
            "rk4",
            [[], [0.5], [0.0, 0.5], [0.0, 0.0, 1.0]],
            [1 / 6, 1 / 3, 1 / 3, 1 / 6],
            order=4,
        ),
        _tableau(
            "rk38",
            [[], [1 / 3], [-1 / 3, 1.0], [1.0, -1.0, 1.0]],
            [1 / 8, 3 / 8, 3 / 8, 1 / 8],
            order=4,
        ),
    )
}


def get_tableau(scheme: str | ButcherTableau) -> ButcherTableau:
    """Return the tableau named ``scheme`` (see ``TABLEAUS``), or ``scheme`` itself if a tableau."""
    if isinstance(scheme, ButcherTableau):
        return scheme
    if not isinstance(scheme, str):
        raise TypeError(
            f"scheme must be a name or a ButcherTableau, got {type(scheme).__name__}: {scheme!r}"
        )
    try:
        return TABLEAUS[scheme]
    except KeyError:
        raise ValueError(
            f"unknown scheme {scheme!r}; known schemes: {', '.join(TABLEAUS)}"
        ) from None

"""The paper's level-optimizer setup notation, e.g. ``[(1),1,1,1,2,2,2,{2}]``, and eq. (10).

The list runs from the finest level L down to level 2, then the coarsest level in braces:
``n`` means μ1 = μ2 = n (steps on the way down and up), ``(n)`` means μ1 = n and μ2 = 0 (no
upward smoothing), ``{n}`` is μ^1, the steps on the coarsest level. A single level is ``{n}``
(plain gradient descent). Spaces are allowed; ``str()`` gives the form without spaces.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction

from partime.mgopt.model import check_depth

_ENTRY = re.compile(r"^(?:(\d+)|\((\d+)\)|\{(\d+)\})$")


@dataclass(frozen=True)
class VCycleSetup:
    """Steps per level: ``down``/``up`` (μ1, μ2) for levels L, L−1, …, 2 and ``coarse`` (μ^1)."""

    down: tuple[int, ...]
    up: tuple[int, ...]
    coarse: int

    def __post_init__(self) -> None:
        if len(self.down) != len(self.up):
            raise ValueError(f"down {self.down} and up {self.up} must have one entry per level")
        for steps in (*self.down, *self.up, self.coarse):
            if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
                raise ValueError(f"step counts must be ints >= 0, got {steps!r} in {self}")
        if self.coarse < 1:
            raise ValueError(f"the coarsest level needs at least one step, got {{{self.coarse}}}")
        for down, up in zip(self.down, self.up, strict=True):
            if up not in (0, down):
                raise ValueError(
                    f"the notation only has μ2 = μ1 (n) or μ2 = 0 ((n)), got μ1={down}, μ2={up}"
                )

    @property
    def levels(self) -> int:
        """L, the number of levels."""
        return len(self.down) + 1

    def steps(self, level: int) -> tuple[int, int]:
        """(μ1, μ2) of level ``level`` in 2..L."""
        if not 2 <= level <= self.levels:
            raise ValueError(f"level {level} has no (μ1, μ2): levels are 2..{self.levels}")
        index = self.levels - level
        return self.down[index], self.up[index]

    def work_units(self) -> Fraction:
        """U_c of eq. (10): 2^{1−L} μ^1 + Σ_{l=2..L} (μ1^l + μ2^l + 1) 2^{l−L}, exactly."""
        total = Fraction(self.coarse, 2 ** (self.levels - 1))
        for level in range(2, self.levels + 1):
            down, up = self.steps(level)
            total += Fraction(down + up + 1, 2 ** (self.levels - level))
        return total

    def check_depth(self, depth: int) -> None:
        """ValueError unless a network of ``depth`` layers has these many levels."""
        check_depth(depth, self.levels)

    def __str__(self) -> str:
        if self.levels == 1:
            return f"{{{self.coarse}}}"
        entries = [f"({d})" if u == 0 else str(d) for d, u in zip(self.down, self.up, strict=True)]
        return "[" + ",".join([*entries, f"{{{self.coarse}}}"]) + "]"

    @classmethod
    def parse(cls, text: str) -> VCycleSetup:
        """The setup written ``[(1),1,2,{2}]`` (finest first) or ``{n}`` for one level."""
        if not isinstance(text, str):
            raise ValueError(f"a setup is a string like '[(1),1,2,{{2}}]', got {text!r}")
        compact = re.sub(r"\s+", "", text)
        if _ENTRY.match(compact) and compact.startswith("{"):
            compact = f"[{compact}]"
        if not (compact.startswith("[") and compact.endswith("]")) or len(compact) < 3:
            raise ValueError(f"setup {text!r} must be a list in brackets, e.g. '[(1),1,2,{{2}}]'")
        entries = compact[1:-1].split(",")
        parsed = [_ENTRY.match(entry) for entry in entries]
        for entry, match in zip(entries, parsed, strict=True):
            if match is None:
                raise ValueError(
                    f"setup {text!r}: entry {entry!r} is not n, (n) or {{n}} with n an integer"
                )
        *levels, last = parsed
        if last.group(3) is None:
            raise ValueError(f"setup {text!r} must end with the coarsest level's {{n}}")
        if any(match.group(3) is not None for match in levels):
            raise ValueError(f"setup {text!r}: only the last (coarsest) entry may be {{n}}")
        down = tuple(int(m.group(1) or m.group(2)) for m in levels)
        up = tuple(0 if m.group(2) is not None else int(m.group(1)) for m in levels)
        return cls(down, up, int(last.group(3)))


def table1_setup(levels: int) -> VCycleSetup:
    """The paper's Table 1 rule: one step on levels L/2+1..L, two on 2..L/2 and {2} on the
    coarsest ({1} for one level), no upward step on the finest level."""
    if levels < 1:
        raise ValueError(f"need at least one level, got {levels}")
    if levels == 1:
        return VCycleSetup((), (), 1)
    down = tuple(1 if level > levels / 2 else 2 for level in range(levels, 1, -1))
    return VCycleSetup(down, (0, *down[1:]), 2)


#: Table 1 (circles and MNIST): setups and the paper's V-cycles / U per L
TABLE1_PAPER = {
    1: {"circles": (95, 95), "mnist": (460, 460)},
    2: {"circles": (32, 96), "mnist": (152, 456)},
    4: {"circles": (12, 60), "mnist": (55, 275)},
    6: {"circles": (7, 37), "mnist": (33, 173)},
    8: {"circles": (5, 26), "mnist": (28, 145)},
}
#: Table 2 (circles, 8 levels): setup -> (V-cycles, U_c as printed, U). The printed U_c of the
#: first two rows (5.97, 5.96) are swapped: eq. (10) gives 5.961 and 5.969.
TABLE2_PAPER = {
    "[1,1,1,1,1,1,1,{1}]": (7, 5.97, 42),
    "[1,1,1,1,1,1,1,{2}]": (7, 5.96, 42),
    "[1,1,1,1,1,1,1,{5}]": (6, 5.99, 36),
    "[1,1,1,1,1,1,1,{10}]": (5, 6.03, 30),
    "[1,1,1,1,2,2,2,{2}]": (5, 6.19, 31),
    "[(1),1,1,1,2,2,2,{2}]": (5, 5.19, 26),
}

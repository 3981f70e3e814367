"""A HiTS hierarchy as a Propagator (e.g. the coarse propagator of parareal)."""

from __future__ import annotations

from torch import Tensor

from partime.dynamics.base import VectorField
from partime.hits.hierarchy import Hierarchy, load_hierarchy
from partime.pint.spec import existing_file
from partime.steppers.base import Propagator
from partime.steppers.compose import duration_of, steps_in


class HierarchyPropagator:
    """``prop(x, t0, t1)``: cover t1 − t0 greedily with the largest model steps that fit, then
    smaller ones (x (batch, dim), any dtype; the models run in their own dtype).

    Uses the hierarchy's selected range. Every step must be a multiple of the smallest, and
    t1 − t0 a multiple of the smallest step (ValueError otherwise).
    """

    def __init__(self, hierarchy: Hierarchy) -> None:
        if not isinstance(hierarchy, Hierarchy):
            raise TypeError(f"HierarchyPropagator needs a Hierarchy, got {type(hierarchy)}")
        self.hierarchy = hierarchy.active()
        steps = self.hierarchy.steps
        if any(s % steps[0] for s in steps):
            raise ValueError(f"every step must be a multiple of the smallest one, got {steps}")
        self.dim = self.hierarchy.dim
        self.dt = self.hierarchy.dt
        self.step = steps[0] * self.dt  # the finest interval this propagator can cover

    def plan(self, n_steps: int) -> list[tuple[int, int]]:
        """(model index, repeats) from the largest step down, covering n_steps·dt exactly."""
        plan, left = [], n_steps
        for index in range(len(self.hierarchy) - 1, -1, -1):
            repeats, left = divmod(left, self.hierarchy.steps[index])
            if repeats:
                plan.append((index, repeats))
        return plan

    def check_interval(self, t0: float | Tensor, t1: float | Tensor) -> list[tuple[int, int]]:
        """The plan for [t0, t1]; ValueError unless t1 − t0 is a multiple of the smallest step."""
        n_smallest = steps_in(duration_of(t0, t1), self.step, t0)
        return self.plan(n_smallest * self.hierarchy.steps[0])

    def __call__(self, x: Tensor, t0: float | Tensor, t1: float | Tensor) -> Tensor:
        plan = self.check_interval(t0, t1)
        p = next(self.hierarchy.models[0].parameters())
        y = x.to(p.device, p.dtype)
        for index, repeats in plan:
            for _ in range(repeats):
                y = self.hierarchy.models[index](y)
        return y.to(x.device, x.dtype)

    prop = __call__

    def __repr__(self) -> str:
        h = self.hierarchy
        return f"HierarchyPropagator(system={h.system!r}, steps={h.steps}, dt={h.dt})"


def propagator_from_file(arg: str, system: VectorField | None, dim: int | None) -> Propagator:
    """The ``hits:PATH`` propagator spec (entry point ``partime.propagators``): a saved
    hierarchy as a coarse or fine propagator."""
    return HierarchyPropagator(load_hierarchy(existing_file(arg, "hits")))

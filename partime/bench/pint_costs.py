"""How ``partime bench pint`` times parareal: best-of runs (``Timing``), and the costs its model
bound is made of, measured beside the solves (``Probe``, ``best_of``) so that both see the same
moments of a machine whose speed drifts; ``Costs.bound`` is the model."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable

import torch

from partime.pint.executors.vectorized import (
    VectorizedExecutor,
    fine_batched,
    has_static_shapes,
)

REPEATS = 3
BUDGET_S = 0.5
MAX_RUNS = 200


@dataclasses.dataclass(frozen=True)
class Timing:
    """Best of at least ``repeats`` runs, more while they took under ``budget_s`` in all."""

    repeats: int = REPEATS
    budget_s: float = BUDGET_S

    def more(self, runs: int, spent_s: float) -> bool:
        return runs < self.repeats or (spent_s < self.budget_s and runs < MAX_RUNS)


def best_wall(fn, timing: Timing, *args) -> float:
    """Least wall time of calls of ``fn(*args)`` (``timing``) after one untimed (warm) call."""
    walls: list[float] = []
    with torch.no_grad():
        fn(*args)
        while timing.more(len(walls), sum(walls)):
            start = time.perf_counter()
            fn(*args)
            walls.append(time.perf_counter() - start)
    return min(walls)


@dataclasses.dataclass
class Costs:
    """The serial fine solve of one problem: its states, wall time (c_F = wall / n_slices)."""

    serial_states: torch.Tensor
    serial_wall: float
    serial_mode: str
    eager_wall: float  # the serial fine solve on the eager path, for the "vs eager" column

    def bound(self, iterations: int, fine_s: float, c_coarse: float) -> tuple[float, float | None]:
        """(S, P_eff) for K iterations whose fine passes took ``fine_s`` in all on the slowest
        rank, and the coarse ``c_coarse`` per slice of a sweep: S = serial / (fine_s +
        (K+1)·n_slices·c_G), i.e. 1/((K+1)·c_G/c_F + K/P) with P = K·serial / fine_s."""
        n_slices = self.serial_states.shape[0] - 1
        model_s = fine_s + (iterations + 1) * n_slices * c_coarse
        p_eff = iterations * self.serial_wall / fine_s if fine_s else None  # None: no pass
        return self.serial_wall / model_s, p_eff


class Probe:
    """The fine passes and one coarse sweep over the slices ``local`` as a solve runs them
    (passes prepared, the sweep fused, where the propagators offer it), timed."""

    def __init__(self, problem, local: range) -> None:
        self.problem, self.local = problem, local
        x0, times = problem.x0, problem.times
        self.x = x0.expand(len(local), *x0.shape).contiguous()
        self.t0, self.t1 = times[local.start : local.stop], times[local.start + 1 : local.stop + 1]
        self.bounds = list(zip(self.t0.tolist(), self.t1.tolist(), strict=True))
        self.prepared = VectorizedExecutor().fine_pass(problem.fine, self.x, self.t0, self.t1)
        self.static = has_static_shapes(problem.fine)
        offer = getattr(problem.coarse, "fused_sweep", None)
        self.fused = offer(x0, self.t0, self.t1) if callable(offer) else None
        self.starts = torch.cat([x0[None], self.x])
        self.ends = self.x.clone()

    @torch.no_grad()
    def fine_s(self, iterations: int) -> float:
        """The fine passes of a solve of ``iterations``: iteration k over the slices from the
        frontier k-1 on (all of them for a ``static_shapes`` fine), as ``parareal`` runs them."""
        total = 0.0
        for k in range(1, iterations + 1):
            first = 0 if self.static else min(max(k - 1 - self.local.start, 0), len(self.local))
            if first == len(self.local):
                break
            start = time.perf_counter()
            if self.prepared is not None:
                self.prepared(self.x[first:], first, self.ends[first:])
            else:
                fine_batched(self.problem.fine, self.x[first:], self.t0[first:], self.t1[first:])
            total += time.perf_counter() - start
        return total

    @torch.no_grad()
    def coarse_per_slice_s(self) -> float:
        start = time.perf_counter()
        if self.fused is not None:
            self.fused(0, self.starts, self.ends)
        else:
            x = self.problem.x0
            for a, b in self.bounds:
                x = self.problem.coarse(x, a, b)
        return (time.perf_counter() - start) / len(self.bounds)


def best_of(solve: Callable, probe: Probe | None, timing: Timing, slowest=float) -> dict:
    """The fastest of ``timing``'s runs of ``solve()`` (a PararealResult; wall time reduced over
    ranks by ``slowest``), each followed by a ``probe`` of its fine passes and of the coarse
    sweep: {"wall_s", "iterations", "states"} and the least probe times, "fine_s" and
    "c_coarse_s" (each reduced by ``slowest``: on MPI every rank probes at once)."""
    runs, walls, passes, sweeps = [], [], [], []
    while timing.more(len(walls), sum(walls)):
        runs.append(solve())
        walls.append(slowest(runs[-1].wall_s))
        if probe is not None:
            passes.append(slowest(probe.fine_s(runs[-1].iterations)))
            sweeps.append(slowest(probe.coarse_per_slice_s()))
    best = runs[min(range(len(runs)), key=walls.__getitem__)]
    result = {"wall_s": min(walls), "iterations": best.iterations, "states": best.states}
    if probe is not None:  # every run makes the same iterations (one problem, one tolerance)
        result.update(fine_s=min(passes), c_coarse_s=min(sweeps))
    return result

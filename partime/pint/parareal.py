"""Parareal, written once: a pure function of (coarse, fine, x0, slice times, executor, tol).

Iteration 0 is the coarse sweep U_{n+1} = G(U_n) (with ``max_iter=0`` this is the hybrid
scheme). Iteration k runs the fine propagator on every slice at or after the frontier
f = k-1 (start states U_0..U_f are already final) and then sweeps
    U_{n+1}^k = F(U_n^{k-1}) + (G(U_n^k) - G(U_n^{k-1}))
in that order, so an unchanged start state gives exactly F: after K = n_slices iterations the
result is the serial fine solution to rounding. The residual of iteration k is the absolute
max |U_n^k - U_n^{k-1}| over slices and batch (the CLI's --tol); the run stops when it is <= tol.
Where the fine solves run and how the sweep crosses ranks is the executor's business.
A propagator with ``static_shapes`` true (compiled RK) is called once per shape before the
clock starts, and its fine pass always covers all local slices, so it keeps one shape.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import torch
from torch import Tensor

from partime.pint.executors.vectorized import VectorizedExecutor, join_slices
from partime.pint.state import PararealResult, PararealState, check_fingerprint, problem_fingerprint
from partime.pint.validate import check_finite, check_problem, check_times


@torch.no_grad()  # a forward solver: no autograd graph across iterations
def parareal(
    coarse: Callable,
    fine: Callable,
    x0: Tensor,
    times: Tensor,
    executor=None,
    tol: float = 1e-10,
    max_iter: int | None = None,
    callback: Callable[[PararealState], None] | None = None,
    resume: PararealState | None = None,
    save_every: int | None = None,
) -> PararealResult:
    """Solve from ``x0`` (batch, dim) over slices ``times`` (n_slices+1,) with parareal.

    ``max_iter=None`` means n_slices (exact); ``callback(state)`` runs after every iteration
    (checkpoints, progress); ``resume`` continues from a saved state. ``save_every`` adds the
    fine trajectory from the final start states, saved every that many fine steps.
    """
    executor = VectorizedExecutor() if executor is None else executor
    times = check_times(times)
    check_problem(coarse, fine, x0, times, executor, tol, max_iter)
    n_slices = times.numel() - 1
    n_save = 0 if save_every is None else _saves_per_slice(fine, times, save_every)
    max_iter = n_slices if max_iter is None else min(max_iter, n_slices)
    local = executor.local_slices(n_slices)
    fingerprint = problem_fingerprint(coarse, fine, x0, times, tol, executor.size)
    run = _Slices(coarse, fine, times, local, executor)
    executor.prepare(fine)
    run.warm(x0)
    start = time.perf_counter()
    if resume is None:
        state = run.coarse_sweep(x0, fingerprint)
        if callback is not None:
            callback(state)
    else:
        state = _checked_resume(resume, fingerprint, executor.rank, (len(local) + 1, *x0.shape))
    while not _converged(state, n_slices, tol) and state.iteration < max_iter:
        state = run.iterate(state)
        if callback is not None:
            callback(state)
    gathered = executor.gather(state.U[1:])
    states = torch.cat([x0[None], gathered]) if executor.is_root else None
    trajectory = None
    if save_every is not None:
        trajectory = run.trajectory(state, save_every, n_save)
    k = state.iteration
    return PararealResult(
        states=states,
        iterations=k,
        residuals=list(state.residuals),
        converged=_converged(state, n_slices, tol),
        wall_s=time.perf_counter() - start,
        fine_calls=k * n_slices - k * (k - 1) // 2 + (n_slices if save_every else 0),
        coarse_calls=n_slices + k * n_slices - k * (k + 1) // 2,
        trajectory=trajectory,
        final_state=state,
    )


class _Slices:
    """The per-iteration work on this rank's contiguous block of slices ``local``."""

    def __init__(self, coarse, fine, times: Tensor, local: range, executor) -> None:
        self.coarse, self.fine, self.times, self.local, self.ex = (
            coarse,
            fine,
            times,
            local,
            executor,
        )
        self.t0 = times[local.start : local.stop]
        self.t1 = times[local.start + 1 : local.stop + 1]
        self.t0f, self.t1f = self.t0.tolist(), self.t1.tolist()  # floats: no per-call tensor ops

    def warm(self, x0: Tensor) -> None:
        """One untimed call of each shape the solve will use, for ``static_shapes``
        propagators (compiled kernels are built on a shape's first call)."""
        if not (_static(self.coarse) or _static(self.fine)):
            return
        if len(self.local) and _static(self.coarse):
            self.coarse(x0, self.t0f[0], self.t1f[0])
        if len(self.local) and _static(self.fine):
            self.ex.fine(self.fine, x0.expand(len(self.local), *x0.shape), self.t0, self.t1)
        # Ranks compile at different speeds: a collective, so that no rank's clock starts
        # while a neighbour is still compiling (it would wait for it in the first sweep).
        self.ex.max(0.0)

    def _coarse(self, j: int, u: Tensor) -> Tensor:
        g = self.coarse(u, self.t0f[j], self.t1f[j])
        return check_finite(g[None], "coarse", self.local.start + j, self.times)[0]

    def coarse_sweep(self, x0: Tensor, fingerprint: dict) -> PararealState:
        starts = x0.new_empty((len(self.local) + 1, *x0.shape))
        coarse_ends = x0.new_empty((len(self.local), *x0.shape))
        if self.local.start == 0:
            starts[0] = x0

        def step(j: int, u: Tensor) -> Tensor:
            coarse_ends[j] = self._coarse(j, u)
            return coarse_ends[j]

        self.ex.sweep(step, starts, self.local, first=0)
        return PararealState(0, starts, coarse_ends, (), fingerprint, self.ex.rank)

    def iterate(self, state: PararealState) -> PararealState:
        frontier = state.iteration  # U_0..U_frontier are final
        a = min(max(frontier - self.local.start, 0), len(self.local))  # first active local slice
        # A static-shape fine propagator also reruns the final slices (results unused): one
        # batch shape, so one compiled kernel, instead of a new shape as the frontier moves.
        b = 0 if _static(self.fine) else a  # first local slice of the fine pass
        starts, coarse_ends = state.U.clone(), state.G.clone()
        if a < len(self.local):
            fine_ends = self.ex.fine(self.fine, starts[b:-1], self.t0[b:], self.t1[b:])
            check_finite(fine_ends[a - b :], "fine", self.local.start + a, self.times)

        def correct(j: int, u: Tensor) -> Tensor:
            if self.local.start + j == frontier:  # start state final: the G terms cancel
                return fine_ends[j - b]
            coarse_ends[j] = self._coarse(j, u)
            return fine_ends[j - b] + (coarse_ends[j] - state.G[j])

        self.ex.sweep(correct, starts, self.local, first=frontier)
        active = slice(a + 1, None)
        change = (
            float((starts[active] - state.U[active]).abs().max()) if a < len(self.local) else 0.0
        )
        residuals = (*state.residuals, self.ex.max(change))
        return PararealState(
            state.iteration + 1, starts, coarse_ends, residuals, state.fingerprint, state.rank
        )

    def trajectory(self, state: PararealState, save_every: int, n_save: int) -> Tensor | None:
        """Fine solution from every final start state: (n_slices*m + 1, batch, dim) on root."""
        if len(self.local):
            saved = self.ex.fine(self.fine, state.U[:-1], self.t0, self.t1, save_every)
        else:  # an idle rank still takes part in the gather
            saved = state.U.new_empty((0, n_save + 1, *state.U.shape[1:]))
        check_finite(saved[:, -1], "fine", self.local.start, self.times)
        gathered = self.ex.gather(saved)  # (n_slices, m+1, batch, dim)
        if gathered is None:
            return None
        return join_slices(gathered)


def _static(prop) -> bool:
    return bool(getattr(prop, "static_shapes", False))


def _converged(state: PararealState, n_slices: int, tol: float) -> bool:
    return state.iteration >= n_slices or bool(state.residuals and state.residuals[-1] <= tol)


def _saves_per_slice(fine, times: Tensor, save_every: int) -> int:
    """Saved fine states per slice; ValueError unless every slice has the same whole number."""
    if not hasattr(fine, "trajectory") or not hasattr(fine, "check_interval"):
        raise ValueError(f"save_every needs a fine propagator with a trajectory, got {fine!r}")
    t = times.tolist()
    steps = {fine.check_interval(a, b) for a, b in zip(t[:-1], t[1:], strict=True)}
    if len(steps) > 1 or not isinstance(save_every, int) or save_every < 1:
        raise ValueError(
            f"save_every needs equal slices and a positive integer, got {save_every!r}"
        )
    (n,) = steps
    if n % save_every:
        raise ValueError(f"save_every={save_every} does not divide the {n} fine steps per slice")
    return n // save_every


def _checked_resume(
    state: PararealState, fingerprint: dict, rank: int, shape: tuple
) -> PararealState:
    check_fingerprint(state.fingerprint, fingerprint)
    if state.rank != rank or tuple(state.U.shape) != shape:
        raise ValueError(
            f"cannot resume: checkpoint of rank {state.rank} with U of shape "
            f"{tuple(state.U.shape)}, but this is rank {rank} expecting {shape}"
        )
    return state

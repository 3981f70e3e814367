"""Parareal, written once: a pure function of (coarse, fine, x0, slice times, executor, tol).

Iteration 0 is the coarse sweep U_{n+1} = G(U_n) (with ``max_iter=0`` this is the hybrid
scheme). Iteration k runs the fine propagator on every slice at or after the frontier
f = k-1 (start states U_0..U_f are already final) and then sweeps
    U_{n+1}^k = F(U_n^{k-1}) + (G(U_n^k) - G(U_n^{k-1}))
in that order, so an unchanged start state gives exactly F: after K = n_slices iterations the
result is the serial fine solution to rounding. The residual of iteration k is the absolute
max |U_n^k - U_n^{k-1}| over slices and batch; the run stops when it is <= tol + rtol·max|U^k|.
Where the fine solves run and how the sweep crosses ranks is the executor's business
(``partime.pint.executors.base.Executor``); a coarse that offers ``fused_sweep`` runs a rank's
part of each sweep as one call, bitwise the slice-by-slice loop. On several ranks the
iterations are pipelined: a rank whose part of the sweep is not the last starts its next fine
pass while the residual is still on its way (pipelined parareal: the same states, sooner),
unless the residual's decay predicts that the run stops there.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace

import torch
from torch import Tensor

from partime.pint.executors.base import Executor, Reduction
from partime.pint.executors.vectorized import VectorizedExecutor, has_static_shapes, join_slices
from partime.pint.state import PararealResult, PararealState, check_fingerprint, problem_fingerprint
from partime.pint.validate import check_finite, check_problem, check_times, saves_per_slice


@torch.no_grad()  # a forward solver: no autograd graph across iterations
def parareal(
    coarse: Callable,
    fine: Callable,
    x0: Tensor,
    times: Tensor,
    executor: Executor | None = None,
    tol: float = 1e-10,
    max_iter: int | None = None,
    callback: Callable[[PararealState], None] | None = None,
    resume: PararealState | None = None,
    save_every: int | None = None,
    rtol: float = 0.0,
) -> PararealResult:
    """Solve from ``x0`` (batch, dim) over slices ``times`` (n_slices+1,) with parareal.

    ``max_iter=None`` means n_slices (exact); ``callback(state)`` runs after every iteration
    (checkpoints, progress; the next iteration updates ``state.U`` and ``state.G`` in place:
    copy them to keep them); ``resume`` continues from a saved state (left unchanged).
    ``save_every`` adds the fine trajectory from the final start states, saved every that many
    fine steps (computed after the clock stops).
    """
    executor = VectorizedExecutor() if executor is None else executor
    times = check_times(times)
    check_problem(coarse, fine, x0, times, executor, tol, max_iter, rtol)
    n_slices = times.numel() - 1
    if save_every is not None:
        saves_per_slice(fine, times, save_every)
    max_iter = n_slices if max_iter is None else min(max_iter, n_slices)
    stop = _Stop(tol, rtol, n_slices)
    local = executor.local_slices(n_slices)
    run = _Slices(coarse, fine, times, local, executor, measure_scale=rtol > 0)
    executor.prepare(fine)
    run.warm(x0)
    fingerprint = problem_fingerprint(coarse, fine, x0, times, tol, rtol, executor.size)
    start = time.perf_counter()
    if resume is None:
        state = run.coarse_sweep(x0, fingerprint)
        if callback is not None:
            callback(state)
    else:
        state = _checked_resume(resume, fingerprint, executor.rank, run.U, run.G)
    looked_ahead, fine_ends = False, None
    while not stop(state) and state.iteration < max_iter:
        if not looked_ahead:
            fine_ends = run.fine_pass(state.iteration, state.U)
        residual = run.sweep(state, fine_ends)  # in place on state.U and state.G
        # Pipelined: a rank whose part of the sweep is not the last runs the next fine pass
        # while the residual is on its way (its neighbours sweep meanwhile), unless the run is
        # predicted to stop here (the pass would be wasted; if it goes on, the rank waits).
        looked_ahead = (
            run.looks_ahead
            and state.iteration + 1 < max_iter  # an iteration may follow this one
            and not residual.test()
            and not stop.predicted(state)
        )
        if looked_ahead:
            fine_ends = run.fine_pass(state.iteration + 1, state.U)
        state = run.swept(state, residual.wait())
        if callback is not None:
            callback(state)
    wall_s = time.perf_counter() - start
    gathered = executor.gather(state.U[1:])
    trajectory = None if save_every is None else run.trajectory(state, save_every)
    return PararealResult(
        states=torch.cat([x0[None], gathered]) if executor.is_root else None,
        iterations=state.iteration,
        residuals=list(state.residuals),
        converged=stop(state),
        wall_s=wall_s,
        fine_calls=round(executor.total(run.fine_calls)),
        coarse_calls=round(executor.total(run.coarse_calls)),
        coarse_s=executor.total(run.coarse_s),
        trajectory=trajectory,
        final_state=state,
    )


@dataclass(frozen=True)
class _Stop:
    """Convergence: K = n_slices (exact), or the last residual <= tol + rtol·max|U|."""

    tol: float
    rtol: float
    n_slices: int

    def __call__(self, state: PararealState) -> bool:
        if state.iteration >= self.n_slices:
            return True
        return bool(state.residuals) and state.residuals[-1] <= self.threshold(state)

    def threshold(self, state: PararealState) -> float:
        """The residual that stops the run after ``state``."""
        return self.tol + self.rtol * state.scale

    def predicted(self, state: PararealState) -> bool:
        """Whether the iteration after ``state`` is likely to stop the run: its residual
        extrapolated from the last two, at their rate of decay (parareal's residuals fall
        faster than geometrically, so this rarely predicts a stop too early: that costs a wait
        for the residual, never a different result)."""
        if len(state.residuals) < 2 or not state.residuals[-2]:
            return False
        last, before = state.residuals[-1], state.residuals[-2]
        return last * (last / before) <= self.threshold(state)


class _Slices:
    """The per-iteration work on this rank's contiguous block of slices ``local``; counts the
    propagator calls (slice propagations) it makes and the time its coarse calls take."""

    def __init__(
        self, coarse, fine, times: Tensor, local: range, executor: Executor, measure_scale: bool
    ) -> None:
        self.coarse, self.fine, self.times, self.local = coarse, fine, times, local
        self.ex, self.measure_scale = executor, measure_scale
        self.t0 = times[local.start : local.stop]
        self.t1 = times[local.start + 1 : local.stop + 1]
        self.t0f, self.t1f = self.t0.tolist(), self.t1.tolist()  # floats: no per-call tensor ops
        self.fine_calls = self.coarse_calls = 0
        self.coarse_s = 0.0
        self.fused = None  # the coarse's fused sweep, when it offers one (see ``warm``)
        self.prepared: Callable | None = None  # the fine pass over the local slices (``_pass``)
        self.fine_ends: Tensor | None = None  # where the prepared pass writes (one per run)
        self.views: tuple[Tensor | None, Tensor | None] = (None, None)  # U, and U[:-1]
        self.U = self.G = torch.empty(0)  # the run's buffers (``warm``)
        self.fine_static = has_static_shapes(fine)
        self.looks_ahead = executor.rank + 1 < executor.size  # see ``parareal``'s loop

    def warm(self, x0: Tensor) -> None:
        """Before the clock starts: the coarse's fused sweep when it offers one (a compiled
        coarse builds its kernel here), one untimed call of each shape the solve will use for
        ``static_shapes`` propagators (compiled kernels are built on a shape's first call), the
        run's buffers U and G and what the executor's sweeps over them need, and a collective
        that lines up the ranks' clocks."""
        offer = getattr(self.coarse, "fused_sweep", None)
        if callable(offer) and len(self.local):
            self.fused = offer(x0, self.t0, self.t1)
        if len(self.local) and has_static_shapes(self.coarse):
            self.coarse(x0, self.t0f[0], self.t1f[0])
        if len(self.local) and self.fine_static:
            self._pass(0, x0.expand(len(self.local), *x0.shape).contiguous())
        self.U = x0.new_empty((len(self.local) + 1, *x0.shape))  # the run's working buffers
        self.G = x0.new_empty((len(self.local), *x0.shape))
        self.ex.prepare_sweeps(self.U)
        # Ranks set up (and compile) at different speeds: a collective, so that no rank's
        # clock starts while a neighbour is still busy (it would wait for it in the first
        # sweep, and count the wait). A no-op in one process.
        self.ex.max(0.0)

    def _coarse(self, j: int, u: Tensor) -> Tensor:
        self.coarse_calls += 1
        start = time.perf_counter()
        g = self.coarse(u, self.t0f[j], self.t1f[j])
        self.coarse_s += time.perf_counter() - start
        return check_finite(g[None], "coarse", self.local.start + j, self.times)[0]

    def _fine(
        self, first: int, starts: Tensor, save_every: int | None = None, checked: bool = True
    ) -> Tensor:
        """Fine solves of local slices ``first``.. from ``starts`` (n_local, ...) (one executor
        pass); a ``static_shapes`` fine runs every local slice, to keep one batch shape as the
        frontier moves, and the frozen slices' ends are dropped. ``checked=False`` leaves the
        NaN/Inf check to the sweep that consumes the ends."""
        self.fine_calls += len(self.local) - first
        begin = 0 if self.fine_static else first
        if save_every is None:
            ends = self._pass(begin, starts[begin:] if begin else starts)
            ends = ends[first - begin :] if first > begin else ends
        else:
            t0, t1 = self.t0[begin:], self.t1[begin:]
            ends = self.ex.fine(self.fine, starts[begin:], t0, t1, save_every)[first - begin :]
        if checked:
            check = ends if save_every is None else ends[:, -1]
            check_finite(check, "fine", self.local.start + first, self.times)
        return ends

    def _pass(self, begin: int, starts: Tensor) -> Tensor:
        """One fine pass over local slices ``begin``.. from ``starts``: through the pass the
        executor prepared once, for all local slices, where the fine offers it (every
        iteration repeats it, on fewer slices as they converge), else through
        ``executor.fine`` (asked again next time: a kernel may have been built)."""
        if self.prepared is None:
            self.fine_ends = starts.new_empty((len(self.local), *starts.shape[1:]))
            self.prepared = self.ex.fine_pass(self.fine, self.fine_ends, self.t0, self.t1)
            if self.prepared is None:
                return self.ex.fine(self.fine, starts, self.t0[begin:], self.t1[begin:])
        return self.prepared(starts, begin, self.fine_ends[begin:] if begin else self.fine_ends)

    def _advance(
        self, j0: int, starts: Tensor, ends: Tensor, fine: Tensor | None = None, exact: int = -1
    ) -> float:
        """Fill starts[j0+1:] from starts[j0], in place: for local slices j >= j0, G_j =
        G(starts[j]), then starts[j+1] = ends[j] = G_j (iteration 0), or starts[j+1] =
        fine[j-j0] + (G_j - ends[j]) with the previous G_j in ends[j], and ends[j] = G_j; at
        the local slice ``exact``, whose start state is final, exactly fine[j-j0] (the G terms
        cancel). One compiled call when the coarse offers a fused sweep, else slice by slice.
        Returns the largest |new - prior| over starts[j0+1:] (this rank's residual; 0 for
        iteration 0, whose prior states are unset)."""
        if self.fused is None:
            prior = None if fine is None else starts[j0 + 1 :].clone()
            for j in range(j0, len(self.local)):
                if j == exact:
                    starts[j + 1] = fine[j - j0]
                elif fine is None:
                    starts[j + 1] = ends[j] = self._coarse(j, starts[j])
                else:
                    g = self._coarse(j, starts[j])
                    starts[j + 1] = fine[j - j0] + (g - ends[j])
                    ends[j] = g
            if prior is None or not len(prior):
                return 0.0
            return float((starts[j0 + 1 :] - prior).abs().max())
        start = time.perf_counter()
        change, finite = self.fused(j0, starts, ends, fine, exact)
        change = change if fine is not None else 0.0
        self.coarse_s += time.perf_counter() - start
        self.coarse_calls += len(self.local) - j0 - (j0 <= exact)
        if not finite:  # name the propagator that produced it, as the unfused checks do
            if fine is not None:
                check_finite(fine, "fine", self.local.start + j0, self.times)
            check_finite(ends[j0:], "coarse", self.local.start + j0, self.times)
            check_finite(starts[j0 + 1 :], "corrected", self.local.start + j0, self.times)
        return change

    def coarse_sweep(self, x0: Tensor, fingerprint: dict) -> PararealState:
        starts, coarse_ends = self.U, self.G
        if self.local.start == 0:
            starts[0] = x0

        def advance(j0: int, starts: Tensor) -> float:
            return self._advance(j0, starts, coarse_ends)

        # No residual to wait for: a rank starts its first fine pass while later ranks sweep.
        self.ex.sweep(advance, starts, self.local, first=0)
        return PararealState(0, starts, coarse_ends, (), fingerprint, self.ex.rank)

    def fine_pass(self, frontier: int, starts: Tensor) -> Tensor | None:
        """The fine ends of the local slices at or after the slice ``frontier`` (from the start
        states ``starts``), or None where every local start state is final. Not checked for
        NaN/Inf: the sweep that consumes them checks them."""
        a = min(max(frontier - self.local.start, 0), len(self.local))  # first active local slice
        if a == len(self.local):
            return None
        if starts is not self.views[0]:  # the run's U: its start states, viewed once per run
            self.views = (starts, starts[:-1])
        return self._fine(a, self.views[1], checked=False)

    def sweep(self, state: PararealState, fine_ends: Tensor | None) -> Reduction:
        """The correction sweep of the iteration after ``state``, in place on its U and G (the
        run's working buffers), from this rank's ``fine_pass`` ends; returns its residual
        (the maximum over ranks), possibly still on its way."""
        frontier = state.iteration  # U_0..U_frontier are final
        coarse_ends = state.G

        def advance(j0: int, starts: Tensor) -> float:  # j0: starts[j0+1:] are rewritten
            if self.fused is None:  # a fused sweep checks the fine ends as it reads them
                check_finite(fine_ends, "fine", self.local.start + j0, self.times)
            exact = frontier - self.local.start
            return self._advance(j0, starts, coarse_ends, fine_ends, exact)

        return self.ex.sweep(advance, state.U, self.local, first=frontier)

    def swept(self, state: PararealState, residual: float) -> PararealState:
        """The state after ``state``'s iteration, whose sweep (in place on its buffers) has
        this ``residual``."""
        scale = self.ex.max(float(state.U.abs().max())) if self.measure_scale else 0.0
        residuals = (*state.residuals, residual)
        return PararealState(state.iteration + 1, state.U, state.G, residuals, state.fingerprint,
                             state.rank, scale)  # fmt: skip

    def trajectory(self, state: PararealState, save_every: int) -> Tensor | None:
        """Fine solution from every final start state: (n_slices*m + 1, batch, dim) on root."""
        if len(self.local):
            saved = self._fine(0, state.U[:-1], save_every)
        else:  # an idle rank still takes part in the gather
            n_save = saves_per_slice(self.fine, self.times, save_every)
            saved = state.U.new_empty((0, n_save + 1, *state.U.shape[1:]))
        gathered = self.ex.gather(saved)  # (n_slices, m+1, batch, dim)
        return None if gathered is None else join_slices(gathered)


def _checked_resume(
    state: PararealState, fingerprint: dict, rank: int, starts: Tensor, coarse_ends: Tensor
) -> PararealState:
    """``state`` on the run's buffers ``starts`` (its U) and ``coarse_ends`` (its G), its own
    copied there: the run updates its buffers in place."""
    check_fingerprint(state.fingerprint, fingerprint)
    if state.rank != rank or state.U.shape != starts.shape:
        raise ValueError(
            f"cannot resume: checkpoint of rank {state.rank} with U of shape "
            f"{tuple(state.U.shape)}, but this is rank {rank} expecting {tuple(starts.shape)}"
        )
    return replace(state, U=starts.copy_(state.U), G=coarse_ends.copy_(state.G))

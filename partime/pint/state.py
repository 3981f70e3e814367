"""What a parareal run carries between iterations (``PararealState``) and what it returns."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import torch
from torch import Tensor


@dataclass(frozen=True)
class PararealState:
    """One rank's view after ``iteration`` (0 = coarse sweep done).

    ``U`` (n_local+1, batch, dim): start state of each local slice, then the end state of the
    last one; ``G`` (n_local, batch, dim): coarse end states ``G(U_n)`` of the local slices;
    ``residuals``: global max |U^k - U^{k-1}| for k = 1..iteration; ``fingerprint``
    identifies the problem so a resume with different inputs fails clearly; ``scale``: global
    max |U^k| (measured only for a relative tolerance, else 0). U and G are the run's working
    buffers, which the next iteration updates in place (a checkpoint saves them at once).
    """

    iteration: int
    U: Tensor
    G: Tensor
    residuals: tuple[float, ...]
    fingerprint: dict
    rank: int = 0
    scale: float = 0.0


@dataclass(frozen=True)
class PararealResult:
    """Outcome of ``parareal``.

    ``states`` (n_slices+1, batch, dim): slice start states and the final state, on the root
    rank (None elsewhere). ``trajectory`` (n_slices*m+1, batch, dim): the fine solution from
    every final start state saved every ``save_every`` fine steps, when asked for (root only).
    ``residuals[k-1]`` is max |U^k - U^{k-1}| over slices and batch; ``fine_calls`` and
    ``coarse_calls`` count the slice propagations this run made, summed over ranks (the
    trajectory's fine pass included), ``coarse_s`` the seconds its coarse calls took (summed
    over ranks; a fused sweep counts as the calls of its slices); ``wall_s`` excludes the
    trajectory.
    """

    states: Tensor | None
    iterations: int
    residuals: list[float]
    converged: bool
    wall_s: float
    fine_calls: int
    coarse_calls: int
    coarse_s: float = 0.0
    trajectory: Tensor | None = None
    final_state: PararealState | None = field(default=None, repr=False)


def problem_fingerprint(
    coarse, fine, x0: Tensor, times: Tensor, tol: float, rtol: float, size: int
) -> dict:
    """Everything a resumed run must share with the run that wrote the checkpoint."""
    x0_bytes = x0.detach().cpu().contiguous().numpy().tobytes()
    return {
        "times": [float(t) for t in times],
        "x0_sha256": hashlib.sha256(x0_bytes).hexdigest(),
        "x0_shape": list(x0.shape),
        "dtype": str(x0.dtype),
        "tol": float(tol),
        "rtol": float(rtol),
        "coarse": repr(coarse),
        "fine": repr(fine),
        "ranks": int(size),
    }


def check_fingerprint(saved: dict, current: dict) -> None:
    """ValueError listing every field in which a checkpoint differs from the current problem."""
    diffs = [k for k in current if saved.get(k) != current[k]]
    if diffs:
        details = "; ".join(
            f"{k}: checkpoint {saved.get(k)!r} vs now {current[k]!r}" for k in diffs
        )
        raise ValueError(f"cannot resume: the checkpoint is for a different problem ({details})")


def slice_times(t_end: float, n_slices: int, t0: float = 0.0) -> Tensor:
    """Equally spaced slice boundaries t0 < ... < t_end: float64 tensor (n_slices+1,)."""
    if not isinstance(n_slices, int) or n_slices < 1:
        raise ValueError(f"n_slices must be a positive integer, got {n_slices!r}")
    if not t_end > t0:
        raise ValueError(f"the time interval must have T > 0; got t0={t0}, t_end={t_end}")
    return torch.linspace(t0, t_end, n_slices + 1, dtype=torch.float64)

"""Reference solutions with scipy's ``solve_ivp`` at tight tolerance (the tests' ground truth)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import Tensor

from partime.dynamics.base import ComponentSystem, VectorField
from partime.dynamics.registry import check_initial_state

METHODS = ("DOP853", "RK45")


def _numpy_rhs(field: VectorField, batch: int) -> Callable[[float, np.ndarray], np.ndarray]:
    """Right-hand side on the flat scipy state; the batch is integrated as one stacked system."""
    if isinstance(field, ComponentSystem):
        # Component expressions are plain arithmetic, so they run on numpy directly: a
        # component-major layout (dim, batch) avoids any torch round trip per evaluation.
        def rhs(t: float, y: np.ndarray) -> np.ndarray:
            # One row: numpy scalars make each evaluation a few cheap float operations,
            # which matters for long sequential runs (the chained Lorenz dataset).
            xs = y if batch == 1 else y.reshape(field.dim, batch)
            return np.array(field.components(t, *xs)).reshape(-1)

        return rhs

    def rhs(t: float, y: np.ndarray) -> np.ndarray:
        x = torch.from_numpy(y.reshape(field.dim, batch).T)
        return field(t, x).T.reshape(-1).numpy()

    return rhs


def reference_solution(
    f: VectorField,
    x0: Tensor,
    t_eval,
    rtol: float = 1e-12,
    atol: float = 1e-12,
    method: str = "DOP853",
) -> Tensor:
    """Solve from ``x0`` (batch, dim) at ``t_eval[0]``; float64 (len(t_eval), batch, dim).

    A 1-D ``x0`` (dim,) gives (len(t_eval), dim). All rows form one stacked system, so the
    step size follows the hardest row and the error norm is scipy's RMS over all rows.
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    check_initial_state(f, x0)
    if x0.ndim > 2:
        raise ValueError(
            f"{f.name}: x0 must have shape (batch, dim) or (dim,), got {tuple(x0.shape)}"
        )
    times = np.asarray(torch.as_tensor(t_eval, dtype=torch.float64).cpu(), dtype=np.float64)
    if times.ndim != 1 or times.size == 0 or not np.all(np.isfinite(times)):
        raise ValueError(f"t_eval must be a non-empty 1-D array of finite times, got {t_eval!r}")
    if times.size > 1 and not np.all(np.diff(times) > 0):
        raise ValueError("t_eval must be strictly increasing")
    rows = x0.detach().to(device="cpu", dtype=torch.float64).reshape(-1, f.dim)
    batch = rows.shape[0]
    y0 = rows.T.reshape(-1).numpy()
    if times.size == 1:
        ys = y0[:, None]
    else:
        # imported here: scipy.integrate costs ~0.5 s, which every partime command would pay
        from scipy.integrate import solve_ivp

        sol = solve_ivp(
            _numpy_rhs(f, batch),
            (times[0], times[-1]),
            y0,
            method=method,
            t_eval=times,
            rtol=rtol,
            atol=atol,
        )
        if not sol.success:
            raise RuntimeError(f"{f.name}: solve_ivp failed: {sol.message}")
        ys = sol.y
    out = torch.from_numpy(np.ascontiguousarray(ys.reshape(f.dim, batch, -1).transpose(2, 1, 0)))
    return out if x0.ndim == 2 else out[:, 0]

"""Algorithm 2 (hybrid time-stepping): the largest flow map lays out the trajectory, batched
Runge–Kutta fills every interval at once (Liu, Kutz & Brunton 2022)."""

from __future__ import annotations

import torch
from torch import Tensor

from partime.dynamics.base import VectorField
from partime.hits.coupling import check_forecast_inputs, interpolate_grid
from partime.hits.hierarchy import Hierarchy
from partime.integrators.explicit import integrate


@torch.no_grad()
def hybrid_forecast(
    hierarchy: Hierarchy,
    f: VectorField,
    x0: Tensor,
    n_steps: int,
    rk_every: int = 1,
    scheme: str = "rk4",
    fast: bool | None = None,
) -> Tensor:
    """Forecast x0 (batch, dim) over n_steps·dt: the largest model of the active range rolls out
    (step S·dt), then ``scheme`` with step ``rk_every``·dt runs from every NN point in one batch.

    Returns (n_steps + 1, batch, dim) in x0's dtype (the RK part runs in x0's dtype); steps
    between RK points are linearly interpolated. ``rk_every`` must divide S.
    """
    check_forecast_inputs(hierarchy, x0, n_steps)
    if getattr(f, "dim", x0.shape[1]) != x0.shape[1]:
        raise ValueError(f"dimension mismatch: vector field dim {f.dim}, x0 dim {x0.shape[1]}")
    active = hierarchy.active()
    big = active.models[-1]
    span = active.steps[-1]
    if isinstance(rk_every, bool) or not isinstance(rk_every, int) or rk_every < 1:
        raise ValueError(f"rk_every must be a positive integer (steps of dt), got {rk_every!r}")
    if span % rk_every:
        raise ValueError(f"RK step {rk_every}·dt does not divide the largest NN step {span}·dt")
    batch, dim = x0.shape
    p = next(big.parameters())
    # NN points 0, S, 2S, ... up to the last one inside the horizon.
    y, coarse = x0.to(p.device, p.dtype), [x0]
    for _ in range(n_steps // span):
        y = big(y)
        coarse.append(y.to(x0.device, x0.dtype))
    n_start = -(-n_steps // span)  # intervals that start before the horizon ends
    n_rk = span // rk_every
    starts = torch.cat(coarse[:n_start])
    t0 = (torch.arange(n_start, dtype=torch.float64) * span * active.dt).repeat_interleave(batch)
    fine = integrate(f, starts, t0, rk_every * active.dt, n_rk, scheme, save_every=1, fast=fast)
    fine = fine.reshape(n_rk + 1, n_start, batch, dim)
    body = fine[:n_rk].transpose(0, 1).reshape(n_start * n_rk, batch, dim)
    # The end of the last interval: the NN point if there is one there (it "resets" the RK
    # error, as everywhere else), else the RK state past the horizon.
    end = coarse[n_start] if n_start < len(coarse) else fine[n_rk, n_start - 1]
    points = torch.arange(n_start)[:, None] * span + torch.arange(n_rk)[None, :] * rk_every
    points = torch.cat([points.reshape(-1), torch.tensor([n_start * span])])
    return interpolate_grid(points, torch.cat([body, end[None]]), n_steps)

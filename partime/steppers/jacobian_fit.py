"""Fit a flow map to a reference propagator's values *and* Jacobians (Sobolev training).

Parareal contracts at the rate set by how well the coarse map's Jacobian matches the fine
map's: a coarse map with a tiny value error but a wrong Jacobian needs many iterations, one with
a constant offset but the exact Jacobian needs two (README: "Why trajectory training is not
enough").
Training on trajectories (HiTS) controls only the values; here the loss is
``|G(x) − F(x)|² + jacobian_weight · |∂G/∂x(x) − ∂F/∂x(x)|²`` over sampled states, with F the
fine propagator over the flow map's step. Use a smooth activation (tanh): a ReLU net's Jacobian
is piecewise constant and cannot follow F's.
"""

from __future__ import annotations

import dataclasses
import time

import torch
from torch import Tensor, nn
from torch.func import jacfwd, jvp, vmap

from partime.options import option
from partime.steppers.base import Propagator


@dataclasses.dataclass(frozen=True)
class JacobianFitConfig:
    """Options of ``fit_flow_map``: ``epochs`` Adam steps on minibatches of ``batch_size``
    states, split evenly into stages with learning rate ``lr`` times ``lr_stages``, then
    ``lbfgs_steps`` full-batch L-BFGS iterations (strong-Wolfe line search: smooth nets fit
    far closer so); training also stops after ``time_budget`` seconds; minibatches drawn from
    ``seed``."""

    epochs: int = option(3000, "Adam steps")
    lr: float = option(1e-3, "Adam learning rate")
    lr_stages: tuple[float, ...] = option((1.0, 1.0, 0.1), "lr factors of equal epoch shares")
    batch_size: int = option(256, "states per Adam step")
    jacobian_weight: float = option(100.0, "weight of the Jacobian error in the loss")
    lbfgs_steps: int = option(4000, "full-batch L-BFGS steps after the Adam steps")
    seed: int = option(0, "seed of the weights and minibatches")
    time_budget: float | None = option(None, "seconds for both phases")

    def __post_init__(self) -> None:
        object.__setattr__(self, "lr_stages", tuple(self.lr_stages))
        for name, low in (("epochs", 1), ("batch_size", 1), ("lbfgs_steps", 0)):
            value = getattr(self, name)
            if not isinstance(value, int) or value < low:
                raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
        if not self.lr > 0 or not self.lr_stages or any(not f > 0 for f in self.lr_stages):
            raise ValueError(f"lr and lr_stages must be positive, got {self.lr}, {self.lr_stages}")
        if not self.jacobian_weight >= 0:
            raise ValueError(f"jacobian_weight must be >= 0, got {self.jacobian_weight!r}")
        if self.time_budget is not None and not self.time_budget > 0:
            raise ValueError(f"time_budget must be positive seconds or None: {self.time_budget}")


@dataclasses.dataclass(frozen=True)
class FitTargets:
    """What a flow map of one step is fitted to: ``states`` (N, dim), the reference's
    ``values`` there (N, dim) and its ``jacobians`` (N, dim out, dim in)."""

    states: Tensor
    values: Tensor
    jacobians: Tensor

    def rows(self, index: Tensor) -> FitTargets:
        """The targets at rows ``index`` of the states."""
        return FitTargets(self.states[index], self.values[index], self.jacobians[index])

    def to(self, like: Tensor) -> FitTargets:
        """On the device and in the dtype of ``like``."""
        return FitTargets(*(t.to(like.device, like.dtype) for t in dataclasses.astuple(self)))


@torch.no_grad()
def propagator_targets(
    reference: Propagator, states: Tensor, duration: float, chunk: int = 8192
) -> FitTargets:
    """Values and Jacobians of ``reference`` over [0, duration] at states (N, dim), by
    forward-mode AD through its steps (one JVP per input dimension; autonomous systems)."""
    if states.ndim != 2 or states.shape[0] == 0 or states.shape[1] != reference.dim:
        raise ValueError(
            f"states must be (N, {reference.dim}) with N > 0, got {tuple(states.shape)}"
        )
    if not duration > 0:
        raise ValueError(f"duration must be positive, got {duration!r}")

    def flow(x: Tensor) -> Tensor:
        return reference(x, 0.0, duration)

    values, jacobians = [], []
    for x in states.split(chunk):
        columns = []
        for j in range(x.shape[1]):
            tangent = torch.zeros_like(x)
            tangent[:, j] = 1.0
            value, column = jvp(flow, (x,), (tangent,))
            columns.append(column)
        values.append(value)
        jacobians.append(torch.stack(columns, dim=-1))
    return FitTargets(states, torch.cat(values), torch.cat(jacobians))


def model_jacobians(model: nn.Module, x: Tensor) -> Tensor:
    """∂model/∂x at each row of x (B, dim) -> (B, dim out, dim in); differentiable."""
    return vmap(jacfwd(model))(x)


def sobolev_loss(model: nn.Module, targets: FitTargets, weight: float) -> Tensor:
    """Mean squared value error plus ``weight`` times the mean squared Jacobian error."""
    loss = (model(targets.states) - targets.values).square().mean()
    if weight == 0:
        return loss
    jacobian_error = model_jacobians(model, targets.states) - targets.jacobians
    return loss + weight * jacobian_error.square().mean()


def fit_flow_map(
    model: nn.Module, targets: FitTargets, config: JacobianFitConfig, progress: bool = False
) -> list[float]:
    """Fit ``model`` (in place, in its own dtype) to ``targets``; returns the loss of every
    Adam step, then of every L-BFGS chunk.

    A model with ``normalize`` gets its scaling from the states and their increments first."""
    from tqdm.auto import tqdm

    targets = targets.to(next(model.parameters()))
    if getattr(model, "normalize", False):
        model.set_scaling(torch.stack([targets.states, targets.values], dim=1))
    opt = torch.optim.Adam(model.parameters(), lr=config.lr)
    gen = torch.Generator().manual_seed(config.seed)
    n_stage, n = -(-config.epochs // len(config.lr_stages)), targets.states.shape[0]
    history: list[float] = []
    start = time.perf_counter()
    bar = tqdm(range(config.epochs), desc="Adam", disable=not progress, leave=False)
    for epoch in bar:
        if config.time_budget is not None and time.perf_counter() - start >= config.time_budget:
            break
        for group in opt.param_groups:
            group["lr"] = config.lr * config.lr_stages[epoch // n_stage]
        batch = targets.rows(torch.randperm(n, generator=gen)[: config.batch_size])
        loss = sobolev_loss(model, batch, config.jacobian_weight)
        opt.zero_grad()
        loss.backward()
        opt.step()
        history.append(loss.item())
        if epoch % 100 == 0:
            bar.set_postfix(loss=f"{history[-1]:.2e}")
    bar.close()
    if config.lbfgs_steps:
        deadline = None if config.time_budget is None else start + config.time_budget
        history += _lbfgs(model, targets, config, deadline, progress)
    return history


_LBFGS_CHUNK = 25  # L-BFGS iterations per optimizer call (budget checks in between)


def _lbfgs(
    model: nn.Module,
    targets: FitTargets,
    config: JacobianFitConfig,
    deadline: float | None,
    progress: bool,
) -> list[float]:
    """Full-batch L-BFGS polishing of the Adam result until ``deadline`` (perf_counter time);
    returns the loss at the start of each chunk of ``_LBFGS_CHUNK`` iterations."""
    from tqdm.auto import tqdm

    opt = torch.optim.LBFGS(
        model.parameters(),
        max_iter=_LBFGS_CHUNK,
        history_size=50,
        tolerance_change=0.0,  # run the iterations asked for (the loss falls below 1e-9)
        line_search_fn="strong_wolfe",
    )
    history: list[float] = []

    def closure() -> Tensor:
        opt.zero_grad()
        loss = sobolev_loss(model, targets, config.jacobian_weight)
        loss.backward()
        return loss

    bar = tqdm(total=config.lbfgs_steps, desc="L-BFGS", disable=not progress, leave=False)
    for done in range(0, config.lbfgs_steps, _LBFGS_CHUNK):
        if deadline is not None and time.perf_counter() >= deadline:
            break
        opt.param_groups[0]["max_iter"] = min(_LBFGS_CHUNK, config.lbfgs_steps - done)
        history.append(opt.step(closure).item())
        bar.set_postfix(loss=f"{history[-1]:.2e}")
        bar.update(opt.param_groups[0]["max_iter"])
    bar.close()
    return history


@torch.no_grad()
def fit_errors(model: nn.Module, targets: FitTargets, chunk: int = 4096) -> tuple[float, float]:
    """Root-mean-square value and Jacobian errors of ``model`` on ``targets``."""
    param = next(model.parameters())
    value_sq, jac_sq = 0.0, 0.0
    for index in torch.arange(targets.states.shape[0]).split(chunk):
        part = targets.rows(index).to(param)
        value_sq += float((model(part.states) - part.values).square().sum())
        jac_sq += float((model_jacobians(model, part.states) - part.jacobians).square().sum())
    return (value_sq / targets.values.numel()) ** 0.5, (jac_sq / targets.jacobians.numel()) ** 0.5

"""The ODE-Net convergence test: train a vector field G inside one scheme, integrate it with every
scheme over a sweep of steps h.

System: the pendulum θ̈ = −g sin θ from (θ₀, 0), exact via Jacobi elliptic functions. G is a
tanh MLP 2–hidden–2 (float64) trained on pairs (x_i, x_{i+1}) one Δt apart with the loss
MSE(step(G, x_i, Δt), x_{i+1}), ``step`` one step of the training scheme. Then G is frozen and
integrated from x(0) to T with step h; error = ‖x_h(T) − x(T)‖₂. An Euler-trained G learns the
flow map over Δt, not the vector field: its error dips at h = Δt and does not converge as
h → 0. A G trained in a higher-order scheme converges, under any scheme, to a model-error floor.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
from scipy.special import ellipj, ellipk
from torch import Tensor, nn
from tqdm.auto import tqdm

from partime.integrators import get_tableau, integrate
from partime.integrators.explicit import step_state
from partime.nets.checks import positive_int

GRAVITY = 9.81
# Step counts over [0, T] for the h sweep: a 1-2-5 ladder, h = T / n.
_STEP_LADDER = (2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000)


def pendulum_exact(t: np.ndarray | float, theta0: float) -> np.ndarray:
    """Exact (θ, θ̇) (len(t), 2) of θ̈ = −g sin θ from (θ0, 0), |θ0| < π:
    θ = 2 arcsin(S·sn(K(S²) − ω₀t; S²)), θ̇ = −2Sω₀·cn(...), S = sin(θ0/2), ω₀ = √g."""
    s, omega = math.sin(theta0 / 2), math.sqrt(GRAVITY)
    sn, cn, _, _ = ellipj(ellipk(s**2) - omega * np.atleast_1d(np.asarray(t, float)), s**2)
    return np.stack([2 * np.arcsin(s * sn), -2 * s * omega * cn], axis=-1)


def pendulum_rhs(t: float, x: Tensor) -> Tensor:
    """The true vector field (θ̇, −g sin θ) of states (..., 2)."""
    return torch.stack((x[..., 1], -GRAVITY * torch.sin(x[..., 0])), dim=-1)


@dataclass(frozen=True)
class ConvergenceConfig:
    """The convergence test's settings, validated on construction."""

    schemes: tuple[str, ...] = field(
        default=("euler", "midpoint", "rk38"),
        metadata={"help": "schemes to train G in (rk38 is torchdiffeq's rk4)"},
    )
    integrators: tuple[str, ...] = field(
        default=(), metadata={"help": "schemes to integrate G with (default: the schemes)"}
    )
    dt_data: float = field(default=0.1, metadata={"help": "time between training pairs Δt"})
    n_samples: int = field(default=1000, metadata={"help": "training pairs along the orbit"})
    iterations: int = field(default=20000, metadata={"help": "Adam iterations per scheme"})
    batch_size: int = field(default=128, metadata={"help": "pairs per iteration"})
    lr: float = field(default=1e-3, metadata={"help": "Adam learning rate (cosine to 0)"})
    hidden: int = field(default=50, metadata={"help": "hidden width of G"})
    horizon: float = field(default=2.0, metadata={"help": "test horizon T"})
    min_step: float = field(default=1e-4, metadata={"help": "smallest test step h"})
    theta0: float = field(default=3 * math.pi / 4, metadata={"help": "initial angle θ₀"})
    seed: int = field(default=0, metadata={"help": "seed of G's initialization and batches"})

    def __post_init__(self) -> None:
        object.__setattr__(self, "schemes", tuple(self.schemes))
        object.__setattr__(self, "integrators", tuple(self.integrators) or self.schemes)
        if not self.schemes:
            raise ValueError("schemes must name at least one scheme")
        for scheme in self.schemes + self.integrators:
            get_tableau(scheme)
        for name in ("n_samples", "iterations", "batch_size", "hidden"):
            positive_int(getattr(self, name), name)
        for name in ("dt_data", "lr", "horizon", "min_step"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a positive number, got {name}={value!r}")
        if not 0 < abs(self.theta0) < math.pi:
            raise ValueError(f"theta0 must be in (-π, π) without 0, got theta0={self.theta0}")
        data_steps = self.horizon / self.dt_data
        if abs(data_steps - round(data_steps)) > 1e-9 * data_steps:
            raise ValueError(
                f"dt_data={self.dt_data} must divide the horizon {self.horizon} (to test h = Δt)"
            )

    @classmethod
    def quick(cls, **overrides: object) -> ConvergenceConfig:
        """A CPU preset of well under a minute: full batches of 500 pairs, 2000 iterations from
        lr 2e-2, steps down to h = 1e-3."""
        preset = {"n_samples": 500, "batch_size": 500, "iterations": 2000, "lr": 2e-2}
        return cls(**(preset | {"min_step": 1e-3} | overrides))

    def step_counts(self) -> list[int]:
        """Test step counts n (h = T / n), decreasing h, always including h = Δt."""
        counts = {n for n in _STEP_LADDER if self.horizon / n >= self.min_step * (1 - 1e-9)}
        counts.add(round(self.horizon / self.dt_data))
        return sorted(counts)


def make_vector_field(hidden: int, generator: torch.Generator) -> nn.Sequential:
    """G: Linear(2, hidden)–tanh–Linear(hidden, 2), float64, Xavier-normal weights, zero biases."""
    net = nn.Sequential(nn.Linear(2, hidden), nn.Tanh(), nn.Linear(hidden, 2)).double()
    for layer in (net[0], net[2]):
        std = math.sqrt(2.0 / (layer.in_features + layer.out_features))
        with torch.no_grad():
            layer.weight.copy_(torch.randn(layer.weight.shape, generator=generator) * std)
            layer.bias.zero_()
    return net


def train_in_scheme(
    config: ConvergenceConfig, scheme: str, pairs: tuple[Tensor, Tensor], progress: bool = False
) -> tuple[nn.Sequential, float]:
    """Train G so that one ``scheme`` step of Δt maps x_i to x_{i+1}; returns (G, final loss)."""
    generator = torch.Generator().manual_seed(config.seed)
    field_net = make_vector_field(config.hidden, generator)
    tableau = get_tableau(scheme)
    optimizer = torch.optim.Adam(field_net.parameters(), lr=config.lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, config.iterations)
    inputs, targets = pairs
    batch = min(config.batch_size, len(inputs))
    loss = torch.zeros(())
    bar = tqdm(range(config.iterations), desc=f"train G in {scheme}", disable=not progress)
    for iteration in bar:
        rows = torch.randperm(len(inputs), generator=generator)[:batch]
        predicted = step_state(
            lambda _t, x: field_net(x), 0.0, inputs[rows], config.dt_data, tableau
        )
        loss = torch.nn.functional.mse_loss(predicted, targets[rows])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
        if iteration % 100 == 0:
            bar.set_postfix(loss=f"{float(loss.detach()):.2e}")
    return field_net.requires_grad_(False), float(loss.detach())


def final_errors(vector_field, config: ConvergenceConfig, scheme: str) -> list[float]:
    """‖x_h(T) − x(T)‖₂ integrating ``vector_field(t, x)`` with ``scheme`` at each test step."""
    x0 = torch.tensor(pendulum_exact(0.0, config.theta0), dtype=torch.float64)
    exact = torch.tensor(pendulum_exact(config.horizon, config.theta0)[0], dtype=torch.float64)
    errors = []
    with torch.no_grad():
        for n in config.step_counts():
            end = integrate(vector_field, x0, 0.0, config.horizon / n, n, scheme, fast=False)[0]
            errors.append(float(torch.linalg.vector_norm(end - exact)))
    return errors


@dataclass
class ConvergenceResult:
    """Errors at T: ``errors[trained_in][integrated_with][i]`` at step ``steps[i]``; the true
    vector field's in ``baseline[integrated_with]``."""

    config: ConvergenceConfig
    steps: list[float]
    errors: dict[str, dict[str, list[float]]]
    baseline: dict[str, list[float]]
    train_loss: dict[str, float]
    train_seconds: dict[str, float]

    def error_at(self, trained: str, integrated: str, h: float) -> float:
        index = int(np.argmin(np.abs(np.log(self.steps) - math.log(h))))
        return self.errors[trained][integrated][index]

    def summary(self) -> dict[str, dict[str, float]]:
        """Per training scheme, integrated with itself: the error at h = Δt, at the smallest h,
        and the dip ratio (smallest h / Δt; ≫ 1 means the model only works at h = Δt)."""
        out = {}
        for scheme in self.errors:
            at_data = self.error_at(scheme, scheme, self.config.dt_data)
            smallest = self.errors[scheme][scheme][-1]
            out[scheme] = {
                "error_at_dt": at_data,
                "error_at_min_h": smallest,
                "dip_ratio": smallest / at_data,
            }
        return out

    def to_dict(self) -> dict:
        return asdict(self) | {"summary": self.summary()}

    def table(self) -> str:
        """Errors vs h, one column per (trained in → integrated with) and the true field."""
        columns = [(f"{a}→{b}", self.errors[a][b]) for a in self.errors for b in self.errors[a]]
        columns += [(f"true→{b}", errs) for b, errs in self.baseline.items()]
        width = max(11, *(len(name) + 1 for name, _ in columns))
        lines = ["h".rjust(9) + "".join(name.rjust(width) for name, _ in columns)]
        for i, h in enumerate(self.steps):
            marker = "*" if math.isclose(h, self.config.dt_data) else " "
            row = "".join(f"{values[i]:.2e}".rjust(width) for _, values in columns)
            lines.append(f"{h:8.1e}{marker}{row}")
        lines.append(f"(* h = Δt = {self.config.dt_data}; error ‖x_h(T) − x(T)‖₂, T = "
                     f"{self.config.horizon})")  # fmt: skip
        return "\n".join(lines)


def run_convergence_test(config: ConvergenceConfig, progress: bool = False) -> ConvergenceResult:
    """Train G in each scheme of ``config`` and sweep h with every integrator (and the true
    vector field)."""
    times = np.arange(config.n_samples + 1) * config.dt_data
    orbit = torch.tensor(pendulum_exact(times, config.theta0), dtype=torch.float64)
    pairs = (orbit[:-1], orbit[1:])
    errors, losses, seconds = {}, {}, {}
    for trained in config.schemes:
        start = time.perf_counter()
        field_net, losses[trained] = train_in_scheme(config, trained, pairs, progress)
        seconds[trained] = time.perf_counter() - start
        errors[trained] = {
            used: final_errors(lambda _t, x: field_net(x), config, used)  # noqa: B023
            for used in config.integrators
        }
    baseline = {used: final_errors(pendulum_rhs, config, used) for used in config.integrators}
    steps = [config.horizon / n for n in config.step_counts()]
    return ConvergenceResult(config, steps, errors, baseline, losses, seconds)

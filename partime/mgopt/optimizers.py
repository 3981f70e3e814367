"""Level optimizers: n steps on one level's objective H_l, θ → θ.

Each level has its own optimizer object. Momentum and Adam keep their state across calls (the
level's objective changes by a linear term δg between V-cycles, the curvature does not);
L-BFGS restarts its history at every call. Every gradient goes through the objective, which
counts it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Protocol

import torch


class Objective(Protocol):
    def value_and_grad(self, theta: torch.Tensor) -> tuple[float, torch.Tensor]: ...

    def dot(self, a: torch.Tensor, b: torch.Tensor) -> float: ...


@dataclass
class GradientDescent:
    """θ ← θ − α∇H(θ) (the paper's Algorithm 3)."""

    lr: float

    def run(self, objective: Objective, theta: torch.Tensor, steps: int) -> torch.Tensor:
        for _ in range(steps):
            _, grad = objective.value_and_grad(theta)
            theta = theta - self.lr * grad
        return theta


@dataclass
class Momentum:
    """Heavy-ball SGD as torch.optim.SGD: b ← m·b + ∇H(θ), θ ← θ − α·b."""

    lr: float
    momentum: float = 0.9
    _buffer: torch.Tensor | None = field(default=None, repr=False)

    def run(self, objective: Objective, theta: torch.Tensor, steps: int) -> torch.Tensor:
        for _ in range(steps):
            _, grad = objective.value_and_grad(theta)
            self._buffer = grad if self._buffer is None else self.momentum * self._buffer + grad
            theta = theta - self.lr * self._buffer
        return theta


@dataclass
class Adam:
    """Adam (Kingma & Ba) with bias correction, as torch.optim.Adam without weight decay."""

    lr: float
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    _moments: tuple[torch.Tensor, torch.Tensor] | None = field(default=None, repr=False)
    _count: int = 0

    def run(self, objective: Objective, theta: torch.Tensor, steps: int) -> torch.Tensor:
        beta1, beta2 = self.betas
        for _ in range(steps):
            _, grad = objective.value_and_grad(theta)
            first, second = self._moments or (torch.zeros_like(grad), torch.zeros_like(grad))
            first = beta1 * first + (1 - beta1) * grad
            second = beta2 * second + (1 - beta2) * grad.square()
            self._moments, self._count = (first, second), self._count + 1
            scale = self.lr * math.sqrt(1 - beta2**self._count) / (1 - beta1**self._count)
            theta = theta - scale * first / (second.sqrt() + self.eps)
        return theta


_Pairs = list[tuple[torch.Tensor, torch.Tensor, float]]


@dataclass
class LBFGS:
    """L-BFGS (two-loop recursion, ``memory`` pairs) with Armijo backtracking from step ``lr``;
    every trial point's gradient is computed (and counted), so one step may cost several."""

    lr: float = 1.0
    memory: int = 10
    sufficient_decrease: float = 1e-4
    max_backtracks: int = 10

    def run(self, objective: Objective, theta: torch.Tensor, steps: int) -> torch.Tensor:
        pairs: _Pairs = []
        value, grad = objective.value_and_grad(theta)
        for _ in range(steps):
            direction = -self._inverse_hessian_times(objective, grad, pairs)
            slope = objective.dot(grad, direction)
            if slope >= 0:  # not a descent direction: fall back to steepest descent
                pairs.clear()
                direction, slope = -grad, -objective.dot(grad, grad)
            step = self.lr
            for _ in range(self.max_backtracks):
                trial = theta + step * direction
                trial_value, trial_grad = objective.value_and_grad(trial)
                if trial_value <= value + self.sufficient_decrease * step * slope:
                    break
                step /= 2
            else:
                return theta  # no decrease found: keep the best point
            s, y = trial - theta, trial_grad - grad
            curvature = objective.dot(s, y)
            if curvature > 1e-12 * objective.dot(s, s):
                pairs = [*pairs[-(self.memory - 1) :], (s, y, 1.0 / curvature)]
            theta, value, grad = trial, trial_value, trial_grad
        return theta

    @staticmethod
    def _inverse_hessian_times(
        objective: Objective,
        grad: torch.Tensor,
        pairs: list[tuple[torch.Tensor, torch.Tensor, float]],
    ) -> torch.Tensor:
        q, alphas = grad, []
        for s, y, rho in reversed(pairs):
            alpha = rho * objective.dot(s, q)
            alphas.append(alpha)
            q = q - alpha * y
        if pairs:
            s, y, rho = pairs[-1]
            q = q / (rho * objective.dot(y, y))
        for (s, y, rho), alpha in zip(pairs, reversed(alphas), strict=True):
            q = q + (alpha - rho * objective.dot(y, q)) * s
        return q


#: name -> constructor from (lr, momentum); "lbfgs" is meant for the coarsest level
OPTIMIZERS = {
    "sgd": lambda lr, momentum: Momentum(lr, momentum) if momentum else GradientDescent(lr),
    "adam": lambda lr, momentum: Adam(lr),
    "lbfgs": lambda lr, momentum: LBFGS(),  # its own unit initial step, backtracked
}

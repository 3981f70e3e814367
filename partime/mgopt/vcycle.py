"""One MG/OPT V-cycle (the paper's Algorithm 1) over a hierarchy of levels.

In the paper's notation, on level l with H_l(Θ) = L_l(Θ) + ⟨δg^l, Θ⟩ (δg^L = 0):

    Θ   ← LevelOptimizer(H_l, Θ, μ1^l)
    Θc0 ← R_p Θ                                  (parameters: average, see transfer.py)
    δg^{l−1} ← R ∇H_l(Θ) − ∇L_{l−1}(Θc0)          (so ∇H_{l−1}(Θc0) = R ∇H_l(Θ))
    Θc  ← V-cycle on level l−1 from Θc0  (μ^1 optimizer steps when l−1 = 1)
    Θ   ← Θ + s·I(Θc − Θc0)                      (s = 1; Armijo backtracking if asked)
    Θ   ← LevelOptimizer(H_l, Θ, μ2^l)
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from partime.mgopt.model import ResNetLevels
from partime.mgopt.setup import VCycleSetup
from partime.mgopt.transfer import prolong, restrict_gradient, restrict_parameters
from partime.mgopt.work import WorkCounter


class LevelObjective:
    """H_l(θ) = L_l(θ) + ⟨δg, θ⟩ on one batch; counts every gradient it computes and
    remembers the last one (a tensor is never changed in place, so identity is equality)."""

    def __init__(
        self,
        problem: ResNetLevels,
        level: int,
        batch: tuple[torch.Tensor, torch.Tensor],
        counter: WorkCounter,
        coupling: torch.Tensor | None = None,
    ) -> None:
        self.problem, self.level, self.batch, self.counter = problem, level, batch, counter
        self.coupling = coupling
        self._last: tuple[torch.Tensor, float, torch.Tensor] | None = None

    def value_and_grad(self, theta: torch.Tensor) -> tuple[float, torch.Tensor]:
        if self._last is not None and self._last[0] is theta:
            return self._last[1], self._last[2]
        value, grad = self.problem.value_and_grad(self.level, theta, *self.batch)
        self.counter.add_gradient(self.level)
        if self.coupling is not None:
            value, grad = value + self.problem.dot(self.coupling, theta), grad + self.coupling
        self._last = (theta, value, grad)
        return value, grad

    def value(self, theta: torch.Tensor) -> float:
        """H_l(θ) by a forward pass only (counted apart from the gradients)."""
        self.counter.add_forward(self.level)
        value = self.problem.loss(self.level, theta, *self.batch)
        return value + (self.problem.dot(self.coupling, theta) if self.coupling is not None else 0)

    def dot(self, a: torch.Tensor, b: torch.Tensor) -> float:
        return self.problem.dot(a, b)

    def coupled(self, theta: torch.Tensor, target_grad: torch.Tensor) -> LevelObjective:
        """H with δg = target_grad − ∇L(θ): its gradient at θ is ``target_grad`` (first-order
        coherence). The gradient of L at θ is computed (and counted) here, once: it is also
        the first optimizer step's gradient on this level."""
        value, grad = self.value_and_grad(theta)
        coupling = target_grad - grad
        coupled = LevelObjective(self.problem, self.level, self.batch, self.counter, coupling)
        coupled._last = (theta, value + self.problem.dot(coupling, theta), grad + coupling)
        return coupled


@dataclass
class VCycle:
    """MG/OPT V-cycles of ``setup`` with one optimizer per level (``optimizers[l − 1]``)."""

    problem: ResNetLevels
    setup: VCycleSetup
    optimizers: list
    counter: WorkCounter
    armijo: bool = False  # backtrack the coarse correction on H_l (off in the paper's runs)
    armijo_backtracks: int = 8
    sufficient_decrease: float = 1e-4

    def __post_init__(self) -> None:
        if len(self.optimizers) != self.setup.levels:
            raise ValueError(
                f"{len(self.optimizers)} optimizers for a {self.setup.levels}-level setup"
            )
        if self.setup.levels != self.problem.spec.levels:
            raise ValueError(
                f"setup {self.setup} has {self.setup.levels} levels, the network "
                f"{self.problem.spec.levels}"
            )

    def __call__(
        self, theta: torch.Tensor, batch: tuple[torch.Tensor, torch.Tensor]
    ) -> torch.Tensor:
        """One V-cycle from the finest level's θ on ``batch`` (x (N, q), labels (N,))."""
        finest = LevelObjective(self.problem, self.setup.levels, batch, self.counter)
        return self.cycle(finest, theta)

    def cycle(self, objective: LevelObjective, theta: torch.Tensor) -> torch.Tensor:
        level = objective.level
        optimizer = self.optimizers[level - 1]
        if level == 1:
            return optimizer.run(objective, theta, self.setup.coarse)
        down, up = self.setup.steps(level)
        theta = optimizer.run(objective, theta, down)
        value, grad = objective.value_and_grad(theta)  # the "+1" of eq. (10), for δg
        spec = self.problem.spec
        sizes = (spec.layer_size, spec.shared_size)
        coarse_start = restrict_parameters(theta, *sizes)
        plain = LevelObjective(self.problem, level - 1, objective.batch, self.counter)
        coarse = plain.coupled(coarse_start, restrict_gradient(grad, *sizes))
        coarse_end = self.cycle(coarse, coarse_start)
        correction = prolong(coarse_end - coarse_start, *sizes)
        theta = theta + self._step_length(objective, theta, value, grad, correction) * correction
        return optimizer.run(objective, theta, up)

    def _step_length(
        self,
        objective: LevelObjective,
        theta: torch.Tensor,
        value: float,
        grad: torch.Tensor,
        correction: torch.Tensor,
    ) -> float:
        """1, or with ``armijo`` the first of 1, ½, ¼, … giving sufficient decrease of H_l
        (0 when the correction is no descent direction or none does)."""
        if not self.armijo:
            return 1.0
        slope = objective.dot(grad, correction)
        if not slope < 0:
            return 0.0
        step = 1.0
        for _ in range(self.armijo_backtracks):
            trial = objective.value(theta + step * correction)
            if trial <= value + self.sufficient_decrease * step * slope:
                return step
            step /= 2
        return 0.0

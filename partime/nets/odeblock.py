"""OdeBlock: ẋ = ε·R(x, θ(t)) on depth t in [0, 1], R a template module with θ in a basis.

Every parameter of the template R gets a basis dimension: ``block.coefficients`` mirrors R's
module tree (plain modules, so loops over layer types skip it) with each parameter as the
ParameterList of its n_coefficients basis coefficients (state dict
``coefficients.conv1.weight.0``, ``….1``, …; ``coefficient_stack("conv1.weight")`` is the
stack (n_coefficients, *shape)). One leaf per coefficient keeps a step's backward to the
pieces it read, however the steps are split. Every buffer of R (batch-norm running
statistics) is stacked, one copy per piece (``coefficients.bn.running_mean``: (n_pieces, C)).
A stage at depth time t evaluates θ(t) and the buffers of the piece that owns t, then calls
R. With the piecewise-constant basis θ(t) is one coefficient (no arithmetic).

Steps use the foundation's Butcher tableaus (``partime.integrators.step_state``). A step
[t, t + h) evaluates its stages inside its own interval: the stage time t + h (c = 1) is owned
by the piece that ends there (open-interval rule). ``block(x, t0, t1)`` integrates any
sub-interval of the step grid and is a ``partime.steppers.base.Propagator``.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from partime.integrators import ButcherTableau, get_tableau
from partime.integrators.explicit import step_state
from partime.nets.basis import Basis, make_basis
from partime.nets.checks import positive_int
from partime.nets.coefficients import combine, empty_tree, set_pieces, slot, stripped
from partime.steppers.compose import duration_of, steps_in

_GRID_TOL = 1e-9  # fraction of a step within which a time counts as a grid point


@dataclass(frozen=True)
class _Stage:
    """Where one RK stage reads θ: non-zero basis weights and the piece owning its buffers."""

    weights: tuple[tuple[str, float], ...]
    piece: int


def reset_parameters(module: nn.Module) -> None:
    """Default initialization of every submodule that has ``reset_parameters``."""
    for sub in module.modules():
        if sub is not module and callable(getattr(sub, "reset_parameters", None)):
            sub.reset_parameters()
    if callable(getattr(module, "reset_parameters", None)):
        module.reset_parameters()


class OdeBlock(nn.Module):
    """ẋ = ε·R(x, θ(t)), t in [0, 1], θ in ``basis`` with ``n_pieces``; ``n_steps`` of ``scheme``.

    ``rate``: the template R (its shape-preserving forward maps a state (batch, *state) to the
    same shape); each coefficient is a copy of it initialized by ``init`` (default: its layers'
    ``reset_parameters``, so every piece starts independent). ``epsilon`` defaults to
    ``n_pieces``: with Euler and one step per piece each step is one ResNet unit x + R(x; θ_k).
    ``state_shape`` (optional) is the per-sample state shape; it gives ``dim`` for the
    Propagator contract and lets the block take flat (batch, dim) states.
    """

    def __init__(
        self,
        rate: nn.Module,
        n_pieces: int,
        basis: str | Basis = "pc",
        scheme: str | ButcherTableau = "euler",
        n_steps: int | None = None,
        epsilon: float | None = None,
        init: Callable[[nn.Module], None] | None = None,
        state_shape: Sequence[int] | None = None,
    ) -> None:
        super().__init__()
        if not isinstance(rate, nn.Module):
            raise TypeError(f"rate must be an nn.Module, got {type(rate).__name__}")
        basis = basis if isinstance(basis, Basis) else make_basis(basis, n_pieces)
        if basis.n_pieces != n_pieces:
            raise ValueError(f"basis has {basis.n_pieces} pieces, n_pieces={n_pieces}")
        copies = [copy.deepcopy(rate) for _ in range(basis.n_coefficients)]
        for piece in copies:
            (init or reset_parameters)(piece)
        coefficients = empty_tree(rate)
        paths = [path for path, _ in rate.named_parameters()]
        for path in paths:
            pieces = [c.get_parameter(path).detach() for c in copies]
            set_pieces(coefficients, path, pieces, requires_grad=True)
        for path, buffer in rate.named_buffers():
            module, leaf = slot(coefficients, path)
            persistent = leaf not in slot(rate, path)[0]._non_persistent_buffers_set
            stacked = torch.stack([buffer.detach().clone()] * n_pieces)
            module.register_buffer(leaf, stacked, persistent=persistent)
        self._setup(coefficients, stripped(rate), paths, basis, scheme, n_steps, epsilon,
                    state_shape)  # fmt: skip

    def _setup(
        self,
        coefficients: nn.Module,
        template: nn.Module,
        paths: Sequence[str],
        basis: Basis,
        scheme: str | ButcherTableau,
        n_steps: int | None,
        epsilon: float | None,
        state_shape: Sequence[int] | None,
    ) -> None:
        self.basis = basis
        self.tableau = get_tableau(scheme)
        self.n_steps = positive_int(basis.n_pieces if n_steps is None else n_steps, "n_steps")
        self.epsilon = float(basis.n_pieces if epsilon is None else epsilon)
        if not math.isfinite(self.epsilon):
            raise ValueError(f"epsilon must be finite, got {epsilon!r}")
        self.state_shape = None if state_shape is None else tuple(int(s) for s in state_shape)
        self.coefficients = coefficients
        # Not a registered submodule: it holds no tensors, and generic loops over modules()
        # must not find layers whose weights are gone. Its training flag follows the block's.
        object.__setattr__(self, "_template", template)
        self.parameter_paths = tuple(paths)
        self._param_slots = [(coefficients.get_submodule(p), slot(template, p)) for p in paths]
        self._buffer_slots = [
            (slot(coefficients, b), slot(template, b)) for b, _ in coefficients.named_buffers()
        ]
        self._plan = self._stage_plan()

    def _stage_plan(self) -> list[list[_Stage]]:
        h = 1.0 / self.n_steps
        plan = []
        for i in range(self.n_steps):
            stages = []
            for c in self.tableau.c:
                # c = 1 is the end of the step: owned by the piece ending there (open interval)
                t, side = ((i + 1) * h, "left") if c == 1.0 else (i * h + c * h, "right")
                # ParameterList keys: the coefficient index as a string
                weights = tuple((str(k), w) for k, w in self.basis.weights(t, side) if w != 0.0)
                stages.append(_Stage(weights, self.basis.piece(t, side)))
            plan.append(stages)
        return plan

    @property
    def scheme(self) -> str:
        """Name of the Runge–Kutta tableau."""
        return self.tableau.name

    @property
    def n_pieces(self) -> int:
        return self.basis.n_pieces

    @property
    def dim(self) -> int:
        """Flat state dimension (Propagator contract); needs ``state_shape``."""
        if self.state_shape is None:
            raise AttributeError("OdeBlock.dim needs state_shape (the per-sample state shape)")
        return math.prod(self.state_shape)

    @property
    def grid(self) -> list[float]:
        """The step grid: n_steps + 1 depth times i / n_steps."""
        return [i / self.n_steps for i in range(self.n_steps + 1)]

    def step_range(self, t0: float | Tensor, t1: float | Tensor) -> tuple[int, int]:
        """Steps (first, last) with [t0, t1] = [grid[first], grid[last]]; ValueError otherwise."""
        n = steps_in(duration_of(t0, t1), 1.0 / self.n_steps, t0)
        start = float(t0.reshape(-1)[0]) if isinstance(t0, Tensor) else float(t0)
        first = round(start * self.n_steps)
        off_grid = abs(first - start * self.n_steps) > _GRID_TOL
        if off_grid or first < 0 or first + n > self.n_steps:
            raise ValueError(
                f"[{start}, {start + n / self.n_steps}] is not an interval of the depth grid "
                f"of {self.n_steps} steps on [0, 1]"
            )
        return first, first + n

    def check_interval(self, t0: float | Tensor, t1: float | Tensor) -> int:
        """Number of steps covering [t0, t1] (Propagator contract); ValueError if off-grid."""
        first, last = self.step_range(t0, t1)
        return last - first

    def forward(self, x: Tensor, t0: float | Tensor = 0.0, t1: float | Tensor = 1.0) -> Tensor:
        """x(t1) from x(t0): (batch, *state) or flat (batch, dim); per-row times allowed."""
        return self._per_row(lambda y, a, b: self.run_steps(y, *self.step_range(a, b)), x, t0, t1)

    def trajectory(
        self, x: Tensor, t0: float | Tensor, t1: float | Tensor, save_every: int = 1
    ) -> Tensor:
        """States every ``save_every`` steps incl. x: (n_steps // save_every + 1, batch, ...)."""
        save_every = positive_int(save_every, "save_every")

        def saved(y: Tensor, a: float | Tensor, b: float | Tensor) -> Tensor:
            first, last = self.step_range(a, b)
            states = [y]
            for i in range(first, first + (last - first) // save_every * save_every, save_every):
                states.append(self.run_steps(states[-1], i, i + save_every))
            return torch.stack(states)

        return self._per_row(saved, x, t0, t1, batch_dim=1)

    def run_steps(self, x: Tensor, first: int, last: int) -> Tensor:
        """Steps first..last-1 of the grid from x (batch, *state_shape)."""
        if not 0 <= first <= last <= self.n_steps:
            raise ValueError(f"steps {first}..{last} outside the grid of {self.n_steps} steps")
        if first == last:
            return x
        template = self._template
        if template.training != self.training:
            template.train(self.training)
        params = [pieces._parameters for pieces, _ in self._param_slots]
        buffers = [m._buffers[leaf] for (m, leaf), _ in self._buffer_slots]
        h = self.epsilon / self.n_steps  # step in the rescaled time of ẋ = R: ε folded into h
        try:
            for stages in self._plan[first:last]:
                plan = iter(stages)
                x = step_state(
                    lambda _t, y: self._rate(next(plan), y, params, buffers),  # noqa: B023
                    0.0,
                    x,
                    h,
                    self.tableau,
                )
        finally:
            for _, (module, leaf) in self._param_slots + self._buffer_slots:
                module.__dict__.pop(leaf, None)
        return x

    def _rate(self, stage: _Stage, x: Tensor, params: list[dict], buffers: list[Tensor]) -> Tensor:
        """R(x; θ(stage)) with the buffers of the stage's piece."""
        for (_, (module, leaf)), pieces in zip(self._param_slots, params, strict=True):
            module.__dict__[leaf] = combine(stage.weights, pieces)
        for (_, (module, leaf)), stacked in zip(self._buffer_slots, buffers, strict=True):
            module.__dict__[leaf] = stacked[stage.piece]
        return self._template(x)

    def coefficient_stack(self, path: str) -> Tensor:
        """The coefficients of the template parameter ``path`` (e.g. "2.weight") stacked:
        (n_coefficients, *shape), differentiable."""
        return torch.stack(list(self._pieces(path)))

    def set_coefficient_stack(self, path: str, stack: Tensor) -> None:
        """Copy ``stack`` (n_coefficients, *shape) into the coefficients of ``path``."""
        pieces = self._pieces(path)
        self.basis.check_coefficients(stack)
        with torch.no_grad():
            for piece, value in zip(pieces, stack, strict=True):
                piece.copy_(value)

    def piece_state_dict(self, k: int) -> dict[str, Tensor]:
        """Coefficient k of every parameter and piece k's buffers, named as in the template
        (with ``pc``: the k-th residual unit's state dict)."""
        state = {path: self._pieces(path)[k] for path in self.parameter_paths}
        for path, buffer in self.coefficients.named_buffers():
            state[path] = buffer[k]
        return state

    def _pieces(self, path: str) -> nn.ParameterList:
        if path not in self.parameter_paths:
            raise ValueError(
                f"{path!r} is not a parameter of the rate; it has {self.parameter_paths}"
            )
        return self.coefficients.get_submodule(path)

    def _per_row(
        self,
        fn: Callable[[Tensor, float | Tensor, float | Tensor], Tensor],
        x: Tensor,
        t0: float | Tensor,
        t1: float | Tensor,
        batch_dim: int = 0,
    ) -> Tensor:
        """Run ``fn`` per group of rows that share a start time; flat states reshaped."""
        flat = self._is_flat(x)
        if not flat and self.state_shape is not None and tuple(x.shape[1:]) != self.state_shape:
            raise ValueError(
                f"OdeBlock expects states of shape (batch, {', '.join(map(str, self.state_shape))})"
                f" or flat (batch, {self.dim}), got {tuple(x.shape)}"
            )
        y = x.reshape(x.shape[0], *self.state_shape) if flat else x
        starts = t0.reshape(-1) if isinstance(t0, Tensor) and t0.numel() > 1 else None
        if starts is None or bool((starts == starts[0]).all()):
            out = fn(y, t0, t1)
        else:
            duration = duration_of(t0, t1)
            order, parts = [], []
            for start in torch.unique(starts):
                rows = (starts == start).nonzero().reshape(-1)
                order.append(rows)
                parts.append(fn(y[rows], float(start), float(start) + duration))
            inverse = torch.argsort(torch.cat(order)).to(x.device)
            out = torch.cat(parts, dim=batch_dim).index_select(batch_dim, inverse)
        return out.flatten(batch_dim + 1) if flat else out

    def _is_flat(self, x: Tensor) -> bool:
        shape = self.state_shape
        return (
            shape is not None
            and len(shape) > 1
            and x.ndim == 2
            and x.shape[1] == math.prod(shape)
            and tuple(x.shape[1:]) != shape
        )

    def manifest(self, scheme: str | ButcherTableau, n_steps: int) -> OdeBlock:
        """The same parameters and buffers (shared storage) with another discretization."""
        return self._assemble(self.coefficients, self.basis, scheme, n_steps, self.epsilon)

    def refine(self, double_steps: bool = False) -> OdeBlock:
        """A block with twice the pieces (each piece's buffers duplicated), new parameters.

        θ(t), ε and the scheme are unchanged; so is n_steps, and with it the output, unless
        ``double_steps`` (the authors' refinement: as many steps per piece as before, the
        output then changes by the discretization error)."""
        coefficients = copy.deepcopy(self.coefficients)
        for path in self.parameter_paths:
            stack = self.coefficient_stack(path).detach()
            requires_grad = self._pieces(path)[0].requires_grad
            pieces = self.basis.refine_coefficients(stack).unbind(0)
            set_pieces(coefficients, path, pieces, requires_grad)
        for path, buffer in self.coefficients.named_buffers():
            module, leaf = slot(coefficients, path)
            module._buffers[leaf] = buffer.repeat_interleave(2, dim=0)
        n_steps = 2 * self.n_steps if double_steps else self.n_steps
        return self._assemble(
            coefficients, self.basis.refine(), self.tableau, n_steps, self.epsilon
        )

    def _assemble(
        self,
        coefficients: nn.Module,
        basis: Basis,
        scheme: str | ButcherTableau,
        n_steps: int,
        epsilon: float,
    ) -> OdeBlock:
        block = OdeBlock.__new__(type(self))
        nn.Module.__init__(block)
        block._setup(coefficients, self._template, self.parameter_paths, basis, scheme,
                     n_steps, epsilon, self.state_shape)  # fmt: skip
        block.train(self.training)
        return block

    def extra_repr(self) -> str:
        return (
            f"basis={self.basis.name!r}, n_pieces={self.n_pieces}, scheme={self.scheme!r}, "
            f"n_steps={self.n_steps}, epsilon={self.epsilon:g}"
        )

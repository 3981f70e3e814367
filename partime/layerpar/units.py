"""A model as an ordered list of depth units: the pieces a pipeline may cut it at.

A unit maps a state — a tensor, or a tuple of tensors such as LM-ResNet's pair
(u_n, u_{n-1}) — to the next state. An ``nn.Sequential`` is split at its children; a model
with a ``depth_units()`` method (or one registered in ``ADAPTERS``) gives its own list. Units
may share modules (an OdeBlock's steps share its parameters); a parameter is then held by
every rank that runs one of its units and their gradient contributions are summed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

State = Tensor | tuple[Tensor, ...]


@dataclass(frozen=True)
class DepthUnit:
    """``forward(state) -> state`` with its parameters and buffers in ``module``; ``cost``
    weighs it in the partition (e.g. 1 per RK step); ``cut_before``: may a rank boundary fall
    just before this unit (not inside a piece of an OdeBlock whose buffers are per piece)."""

    name: str
    module: nn.Module
    forward: Callable[[State], State] = field(repr=False)
    cost: float = 1.0
    cut_before: bool = True


# model type -> function returning its units (filled by the adapters for partime.nets models)
ADAPTERS: dict[type, Callable[[nn.Module], list[DepthUnit]]] = {}


def depth_units(model: nn.Module) -> list[DepthUnit]:
    """The ordered units of ``model``: its ``depth_units()``, an adapter's, or a Sequential's
    children. ValueError for a model that cannot be cut."""
    if hasattr(model, "depth_units"):
        units = list(model.depth_units())
    elif callable(getattr(model, "units", None)):  # partime.nets: ResidualUnit(name, forward, cost)
        units = [_from_residual_unit(unit) for unit in model.units()]
    elif type(model) in ADAPTERS:
        units = ADAPTERS[type(model)](model)
    elif isinstance(model, nn.Sequential):
        # _modules, not named_children(): a module used twice is two units (tied weights)
        units = [DepthUnit(name, child, child) for name, child in model._modules.items()]
    else:
        raise ValueError(
            f"cannot split a {type(model).__name__} into depth units: pass an nn.Sequential "
            f"of blocks or a model with a depth_units() method"
        )
    if not units:
        raise ValueError(f"{type(model).__name__} has no depth units")
    return units


def depth_cuts(units: list[DepthUnit]) -> list[int]:
    """Unit indices before which a rank boundary may fall."""
    return [i for i in range(1, len(units)) if units[i].cut_before]


def _from_residual_unit(unit) -> DepthUnit:
    """A ``partime.nets`` residual unit: its modules are the nn.Modules its forward holds (the
    forward itself, or the fields of a small step object such as an OdeBlock's step i)."""
    forward = unit.forward
    if isinstance(forward, nn.Module):
        modules = [forward]
    else:
        modules = [v for v in vars(forward).values() if isinstance(v, nn.Module)]
    cut_before = True
    block, step = getattr(forward, "block", None), getattr(forward, "step", None)
    if isinstance(step, int) and hasattr(block, "n_pieces") and any(True for _ in block.buffers()):
        # per-piece buffers (batch-norm statistics): a piece's steps stay on one rank
        cut_before = (step * block.n_pieces) % block.n_steps == 0
    return DepthUnit(unit.name, nn.ModuleList(modules), forward, float(unit.cost), cut_before)


def next_step_key() -> int:
    """The key of one training step, drawn from torch's global RNG (the same on every rank
    that seeded it alike; restored with it on resume)."""
    return int(torch.randint(0, 2**62, (), dtype=torch.int64))


def unit_seed(seed: int, step: int, micro_batch: int, unit: int) -> int:
    """The RNG seed of one unit on one micro-batch of one step (SplitMix64-style mixing):
    dropout draws the same numbers wherever the unit runs."""
    z = 0
    for value in (seed, step, micro_batch, unit):
        z = (z ^ (value & 0xFFFFFFFFFFFFFFFF)) + 0x9E3779B97F4A7C15 & 0xFFFFFFFFFFFFFFFF
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9 & 0xFFFFFFFFFFFFFFFF
        z = (z ^ (z >> 27)) * 0x94D049BB133111EB & 0xFFFFFFFFFFFFFFFF
        z ^= z >> 31
    return z & 0x7FFFFFFFFFFFFFFF


def run_units(
    units: list[DepthUnit],
    first: int,
    state: State,
    keys: tuple[int, int, int] | None = None,
) -> State:
    """Apply ``units`` (global indices ``first``, ``first+1``, …) to ``state``; with
    ``keys = (seed, step, micro_batch)`` reseed the RNG of the state's device before each
    unit, so stochastic layers are keyed by micro-batch and unit (callers fork the RNG)."""
    for offset, unit in enumerate(units):
        if keys is not None:
            _reseed(_device(state), unit_seed(*keys, first + offset))
        state = unit.forward(state)
    return state


def tensors(state: State) -> tuple[Tensor, ...]:
    return state if isinstance(state, tuple) else (state,)


def unit_parameters(units: list[DepthUnit]) -> Iterator[nn.Parameter]:
    """Every parameter of ``units``, each once, in unit order."""
    seen: set[int] = set()
    for unit in units:
        for p in unit.module.parameters():
            if id(p) not in seen:
                seen.add(id(p))
                yield p


def unit_buffers(units: list[DepthUnit]) -> Iterator[Tensor]:
    seen: set[int] = set()
    for unit in units:
        for b in unit.module.buffers():
            if id(b) not in seen:
                seen.add(id(b))
                yield b


def _device(state: State) -> torch.device:
    return tensors(state)[0].device


def _reseed(device: torch.device, seed: int) -> None:
    torch.default_generator.manual_seed(seed)
    if device.type == "cuda":
        torch.cuda.default_generators[device.index or 0].manual_seed(seed)

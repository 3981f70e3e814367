"""LayerParallel: a model's depth units spread over the ranks of a pipeline, as one nn.Module.

Every rank builds the same serial model and wraps it; rank r of the pipeline then runs only
its units (``DepthPartition``) and holds only their parameters, under the serial names.
``train_step(x, y, loss_fn)`` runs the schedule (1F1B or GPipe) and leaves the serial
model's gradients in each rank's parameters; ``lp(x)`` is a drop-in forward whose backward
is the pipelined backward (one autograd.Function around the distributed pass).

Exactness. The batch is cut into micro-batches (sizes differ by at most one when they do not
divide it) and ``loss_fn`` is taken to be a mean over its batch, so micro-batch m's loss
weighs n_m / N. Gradients then equal the serial ones up to the order of summation (float64:
≤ 1e-12). Layers that depend on the batch are defined per micro-batch: batch norm normalises
each micro-batch with its own statistics and updates the running statistics micro-batch by
micro-batch, in order; dropout (any RNG draw) is keyed by (seed, step, micro-batch, unit).
The serial reference with the same definition is this class on one rank (``SerialComm``).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator

import torch
from torch import Tensor, nn

from partime.comm.base import Comm
from partime.layerpar.function import PipelinedPass
from partime.layerpar.grid import PipelineGrid, check_grid
from partime.layerpar.partition import DepthPartition
from partime.layerpar.pipeline import (
    GradientSum,
    PipelineStage,
    micro_batch_weights,
    split_batch,
)
from partime.layerpar.schedule import FORWARD, check_schedule_args, make_schedule
from partime.layerpar.units import (
    depth_cuts,
    depth_units,
    next_step_key,
    unit_buffers,
    unit_parameters,
)


class LayerParallel(nn.Module):
    """``model`` (the same on every rank) pipelined over ``comm``; with ``data_parallel`` R
    the ranks form R replicas of ``comm.size // R`` stages (replica-major)."""

    def __init__(
        self,
        model: nn.Module,
        comm: Comm,
        micro_batches: int = 4,
        schedule: str = "1f1b",
        partition: DepthPartition | None = None,
        data_parallel: int = 1,
        seed: int = 0,
    ) -> None:
        super().__init__()
        stages = check_grid(comm.size, data_parallel)
        check_schedule_args(schedule, stages, micro_batches)
        units = depth_units(model)
        if partition is None:
            partition = DepthPartition.balanced([u.cost for u in units], stages, depth_cuts(units))
        if (partition.n_ranks, partition.n_units) != (stages, len(units)):
            raise ValueError(
                f"the partition covers {partition.n_units} units on {partition.n_ranks} ranks, "
                f"but the model has {len(units)} units and the pipeline {stages} ranks"
            )
        inside = sorted(set(partition.bounds[1:-1]) - set(depth_cuts(units)))
        if inside:
            names = [units[i].name for i in inside]
            raise ValueError(f"the partition cuts before units {names}, inside a piece of a block")
        self.schedule = make_schedule(schedule, stages, micro_batches)
        self.partition, self.seed = partition, seed
        self.grid = PipelineGrid.split(comm, data_parallel)  # the first communication
        object.__setattr__(self, "serial_model", model)  # not a submodule: only its units are ours
        mine = partition.units(self.grid.pipe.rank)
        device = next(iter(model.parameters()), torch.empty(0)).device
        self.stage = PipelineStage(
            units[mine.start : mine.stop], mine.start, self.grid.pipe, device
        )
        self._names = _names(model)
        self._owned = self._first_holders(units)
        self._shared = self._shared_parameters(units)
        self._baseline = self._shared_buffer_baseline(units)

    # -- the serial model's view -------------------------------------------------------------

    @property
    def micro_batches(self) -> int:
        return self.schedule.n_micro

    def named_parameters(
        self, prefix: str = "", recurse: bool = True, remove_duplicate: bool = True
    ) -> Iterator[tuple[str, nn.Parameter]]:
        """This rank's parameters under their names in the serial model."""
        for p in self.stage.params:
            yield prefix + self._names[id(p)], p

    def named_buffers(
        self, prefix: str = "", recurse: bool = True, remove_duplicate: bool = True
    ) -> Iterator[tuple[str, Tensor]]:
        for b in unit_buffers(self.stage.units):
            yield prefix + self._names[id(b)], b

    def train(self, mode: bool = True) -> LayerParallel:
        self.serial_model.train(mode)
        return super().train(mode)

    def state_dict(self, *args, **kwargs) -> dict[str, Tensor]:
        """The full serial model's state dict, on every rank (gathered from the owners)."""
        mine = {
            name: value.detach().cpu().clone()
            for name, value in self.serial_model.state_dict(keep_vars=True).items()
            if self._owned.get(name) == self.grid.pipe.rank
        }
        held = {
            name: value.detach().cpu().clone()
            for name, value in self.named_buffers()
            if name in self._baseline
        }
        merged: dict[str, Tensor] = {}
        for part, shared in self.grid.pipe.allgather((mine, held)):
            merged.update(part)
            for name, value in shared.items():  # each holder's changed elements (its pieces)
                base = merged.get(name, self._baseline[name])
                merged[name] = torch.where(value != self._baseline[name], value, base)
        own = self.serial_model.state_dict()
        return {name: merged.get(name, own[name].detach().cpu()) for name in own}

    def load_state_dict(self, state_dict: dict[str, Tensor], strict: bool = True, assign=False):
        """Load a full serial state dict (every rank passes the same one)."""
        result = self.serial_model.load_state_dict(state_dict, strict=strict)
        self._baseline = {name: state_dict[name].detach().cpu().clone() for name in self._baseline}
        return result

    def no_weight_decay(self) -> set[str]:
        """The serial model's no-weight-decay names that this rank holds."""
        declared = set(getattr(self.serial_model, "no_weight_decay", lambda: ())())
        return declared & {name for name, _ in self.named_parameters()}

    def _apply(self, fn, recurse: bool = True):
        # .to()/.double() act on the serial model (its parameters keep their identity)
        self.serial_model._apply(fn, recurse)
        self.stage.device = next(iter(self.serial_model.parameters()), torch.empty(0)).device
        return self

    def __deepcopy__(self, memo: dict) -> LayerParallel:
        """A copy of the weights (for best-model snapshots) on the same communicators."""
        for comm in (self.grid, self.grid.pipe, self.grid.data, self.stage.comm):
            memo[id(comm)] = comm
        clone = self.__class__.__new__(self.__class__)
        clone.__dict__.update(copy.deepcopy(self.__dict__, memo))
        clone._names = _names(clone.serial_model)
        return clone

    def local_state_dict(self) -> dict[str, Tensor]:
        """This rank's parameters and buffers (its checkpoint shard), serial names."""
        return {
            name: t.detach().clone()
            for name, t in (*self.named_parameters(), *self.named_buffers())
        }

    def load_local_state_dict(self, state: dict[str, Tensor]) -> None:
        mine = dict((*self.named_parameters(), *self.named_buffers()))
        if set(state) != set(mine):
            raise ValueError(
                f"shard holds {sorted(set(state) ^ set(mine))[:5]} that this rank does not "
                f"(or misses them): a checkpoint of another partition?"
            )
        with torch.no_grad():
            for name, value in state.items():
                mine[name].copy_(value)

    # -- training ----------------------------------------------------------------------------

    def train_step(
        self, x: Tensor, y: Tensor, loss_fn: Callable[[Tensor, Tensor], Tensor]
    ) -> Tensor:
        """One pipelined forward and backward of the batch (``x``, ``y``: passed on every rank;
        the first stage reads ``x``, the last ``y``). Adds the gradients to each rank's
        parameters' ``.grad`` (as ``backward`` would) and returns the mean loss on every rank."""
        self._check_batch(x, y)
        xs, ys = split_batch(x, self.micro_batches), split_batch(y, self.micro_batches)
        weights = self._weights([len(part) for part in xs])
        stage, rank = self.stage, self.grid.pipe.rank
        targets, losses, step_grads = {}, [], GradientSum(len(stage.params))
        with self._keyed_rng() as keys:
            for action in self.schedule.actions[rank]:
                m = action.micro_batch
                if action.kind == FORWARD:
                    out = stage.forward(m, xs[m] if stage.is_first else None, keys(m))
                    if stage.is_last:
                        loss = loss_fn(out, ys[m]) * weights[m]
                        targets[m] = ((loss,), (None,))
                        losses.append(loss.detach())
                else:
                    grads, _ = stage.backward(m, targets.pop(m, None))
                    step_grads.add(grads)
        stage.finish()
        for p, g in zip(stage.params, self._reduce_gradients(step_grads.totals), strict=True):
            if g is not None:
                p.grad = g if p.grad is None else p.grad + g
        total = torch.stack(losses).sum() if stage.is_last else None
        loss = self._from_last(total)
        return self.grid.data.allreduce(loss) if self.grid.replicas > 1 else loss

    def forward(self, x: Tensor) -> Tensor:
        """The model's output on every rank; its backward is the pipelined backward. Without
        autograd (inference) a batch smaller than ``micro_batches`` is fine."""
        if torch.is_grad_enabled():
            self._check_batch(x, None)
            return PipelinedPass.apply(self, x, *self.stage.params)
        self._check_batch(x, None, inference=True)
        outputs = []
        with self._keyed_rng() as keys:
            for m, part in enumerate(split_batch(x, min(len(x), self.micro_batches))):
                outputs.append(self.stage.forward(m, part, keys(m), record=False))
        self.stage.finish()
        return self._from_last(_joined(outputs) if self.stage.is_last else None)

    # -- pieces shared with the autograd.Function -----------------------------------------

    def _check_batch(self, x: Tensor, y: Tensor | None, inference: bool = False) -> None:
        if not isinstance(x, Tensor) or x.ndim == 0 or len(x) == 0:
            raise ValueError(f"x must be a non-empty batched tensor, got {type(x).__name__}")
        if len(x) < self.micro_batches and not inference:
            raise ValueError(
                f"a batch of {len(x)} cannot make {self.micro_batches} micro-batches "
                f"(use micro_batches <= the batch size)"
            )
        if y is not None and (not isinstance(y, Tensor) or len(y) != len(x)):
            got = len(y) if isinstance(y, Tensor) else type(y).__name__
            raise ValueError(f"y must be a tensor of {len(x)} targets like x, got {got}")

    def _weights(self, sizes: list[int]) -> list[float]:
        """n_m / N over the global batch (all replicas): a mean loss's micro-batch weights."""
        if self.grid.replicas == 1:
            return micro_batch_weights(sizes)
        total = self.grid.data.allreduce(sum(sizes))
        return [size / total for size in sizes]

    def _keyed_rng(self):
        """Context giving ``keys(m)`` for micro-batch m, with the caller's RNG restored after."""
        return _KeyedRng(self)

    def _from_last(self, value: Tensor | None) -> Tensor:
        """The last stage's ``value`` on every rank of the pipeline."""
        pipe = self.grid.pipe
        return pipe.bcast(value, root=pipe.size - 1).to(self.stage.device)

    def _reduce_gradients(
        self, grads: list[Tensor | None], replica_weight: float = 1.0
    ) -> list[Tensor | None]:
        """Sum shared parameters' gradients over the ranks holding them, then over replicas
        (each replica's weighted by ``replica_weight``, its share of the global batch)."""
        params = self.stage.params
        if self._shared:
            index = {id(p): i for i, p in enumerate(params)}
            flat = torch.cat([
                _or_zeros(grads[index[id(p)]] if id(p) in index else None, p)
                for p in self._shared
            ])  # fmt: skip
            summed = self.grid.pipe.allreduce(flat)
            for p, part in zip(self._shared, _split_like(summed, self._shared), strict=True):
                if id(p) in index:
                    grads[index[id(p)]] = part.view_as(p).clone()
        if self.grid.replicas > 1 and params:
            local = torch.cat([_or_zeros(g, p) for g, p in zip(grads, params, strict=True)])
            flat = self.grid.data.allreduce(
                local * replica_weight if replica_weight != 1 else local
            )
            grads = [
                part.view_as(p).clone()
                for p, part in zip(params, _split_like(flat, params), strict=True)
            ]
        return grads

    def _first_holders(self, units) -> dict[str, int]:
        """State-dict name -> the first rank whose units hold it (who reports it)."""
        owner: dict[str, int] = {}
        for rank in range(self.partition.n_ranks):
            r = self.partition.units(rank)
            held = units[r.start : r.stop]
            for t in (*unit_parameters(held), *unit_buffers(held)):
                owner.setdefault(self._names[id(t)], rank)
        return owner

    def _shared_buffer_baseline(self, units) -> dict[str, Tensor]:
        """Buffers held by several ranks (per-piece statistics of an OdeBlock cut between
        ranks), as they are now: each rank changes only its pieces' elements."""
        count: dict[str, int] = {}
        for rank in range(self.partition.n_ranks):
            r = self.partition.units(rank)
            for b in unit_buffers(units[r.start : r.stop]):
                count[self._names[id(b)]] = count.get(self._names[id(b)], 0) + 1
        values = dict(self.serial_model.named_buffers())
        return {n: values[n].detach().cpu().clone() for n, c in count.items() if c > 1}

    def _shared_parameters(self, units) -> list[nn.Parameter]:
        """Parameters held by more than one rank (e.g. an OdeBlock cut between two ranks)."""
        count: dict[int, int] = {}
        every: dict[int, nn.Parameter] = {}
        for rank in range(self.partition.n_ranks):
            r = self.partition.units(rank)
            for p in unit_parameters(units[r.start : r.stop]):
                count[id(p)] = count.get(id(p), 0) + 1
                every[id(p)] = p
        return [every[i] for i in every if count[i] > 1 and every[i].requires_grad]


class _KeyedRng:
    def __init__(self, lp: LayerParallel) -> None:
        self.lp = lp
        devices = [lp.stage.device] if lp.stage.device.type == "cuda" else []
        self.fork = torch.random.fork_rng(devices=devices)

    def __enter__(self) -> Callable[[int], tuple[int, int, int] | None]:
        training = self.lp.serial_model.training
        step = next_step_key() if training else 0  # advances the caller's RNG: once a step
        self.fork.__enter__()
        return lambda m: (self.lp.seed, step, m) if training else None

    def __exit__(self, *exc) -> None:
        self.fork.__exit__(*exc)


def _names(model: nn.Module) -> dict[int, str]:
    """id of each parameter and buffer -> its (first) name in the serial model."""
    names: dict[int, str] = {}
    for name, t in (*model.named_parameters(), *model.named_buffers()):
        names.setdefault(id(t), name)
    return names


def _or_zeros(g: Tensor | None, p: Tensor) -> Tensor:
    return (torch.zeros_like(p) if g is None else g).reshape(-1)


def _split_like(flat: Tensor, params: list[Tensor]) -> tuple[Tensor, ...]:
    return torch.split(flat, [p.numel() for p in params])


def _joined(outputs: list) -> Tensor:
    if not all(isinstance(o, Tensor) for o in outputs):
        raise TypeError("the model's last unit must return a tensor (not a tuple of states)")
    return torch.cat([o.detach() for o in outputs])

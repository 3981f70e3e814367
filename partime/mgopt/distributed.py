"""Every level of the hierarchy split in depth over the ranks of a pipeline (layer-parallel).

The network of level l is cut into the same units on every level: the lift, then one unit per
*coarsest-level* layer (2^{l−1} layers of level l), then the head. One ``DepthPartition`` of
these K_1 + 2 units therefore serves all levels, and a coarse layer and the two fine layers it
covers are always on one rank: prolongation and restriction never communicate. Each gradient
is a ``LayerParallel`` pass (pipelined forward and backward over the ranks, exactly the serial
gradient); the lift and head are replicated in every rank's vector, their gradients summed over
the pipeline, so every rank takes the same optimizer steps on them. With ``data_parallel`` R the
ranks form R replicas; each computes on its share of the batch and the gradients are averaged.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F  # noqa: N812 - the usual alias
from torch import nn

from partime.comm.base import Comm
from partime.layerpar import DepthPartition, LayerParallel
from partime.layerpar.grid import check_grid
from partime.mgopt.model import ResNetLevels, ResNetSpec


class _Linear(nn.Module):
    """x @ Wᵀ (+ b): the lift (no bias) and the head."""

    def __init__(self, rows: int, cols: int, bias: bool, dtype: torch.dtype) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(rows, cols, dtype=dtype))
        self.bias = nn.Parameter(torch.zeros(rows, dtype=dtype)) if bias else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = x @ self.weight.T
        return out if self.bias is None else out + self.bias


class _Layers(nn.Module):
    """A run of residual layers y ← y + Δt·ReLU(W_k y + b_k): W (n, v, v), b (n, v)."""

    def __init__(self, n: int, width: int, dt: float, chain, dtype: torch.dtype) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(n, width, width, dtype=dtype))
        self.bias = nn.Parameter(torch.zeros(n, width, dtype=dtype))
        self.dt, self.chain = dt, chain

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        return self.chain(y, self.weight, self.bias, self.dt)


class PartitionedResNetLevels(ResNetLevels):
    """ResNetLevels whose flat vectors hold this rank's layers of each level (and the shared
    lift and head); gradients, losses and inner products are those of the whole network."""

    def __init__(
        self,
        spec: ResNetSpec,
        comm: Comm,
        chain: str = "auto",
        micro_batches: int | None = None,
        data_parallel: int = 1,
        dtype: torch.dtype = torch.float64,
    ) -> None:
        super().__init__(spec, chain)
        stages = check_grid(comm.size, data_parallel)
        coarse = spec.level_depth(1)
        if coarse + 2 < stages:
            raise ValueError(
                f"{stages} pipeline ranks need at least {stages} depth units, but the coarsest "
                f"level has {coarse} layers (+ lift and head): use fewer ranks or levels"
            )
        micro_batches = stages if micro_batches is None else micro_batches  # 1F1B needs >= stages
        # cut anywhere between units: every unit boundary is on the coarsest grid
        self.partition = DepthPartition.balanced([1.0] * (coarse + 2), stages)
        self.levels = {
            level: LayerParallel(
                self._network(level, dtype), comm, micro_batches, "1f1b", self.partition,
                data_parallel,
            )
            for level in range(1, spec.levels + 1)
        }  # fmt: skip
        self.grid = self.levels[spec.levels].grid
        units = self.partition.units(self.grid.pipe.rank)
        self._coarse_range = (max(units.start, 1) - 1, min(units.stop, coarse + 1) - 1)

    def _network(self, level: int, dtype: torch.dtype) -> nn.Sequential:
        spec = self.spec
        per_unit = spec.level_depth(level) // spec.level_depth(1)
        dt = spec.t_end / spec.level_depth(level)
        layers = [
            _Layers(per_unit, spec.width, dt, self._chain, dtype)
            for _ in range(spec.level_depth(1))
        ]
        lift = _Linear(spec.width, spec.in_features, False, dtype)
        return nn.Sequential(lift, *layers, _Linear(spec.classes, spec.width, True, dtype))

    def layer_range(self, level: int) -> tuple[int, int]:
        per_unit = self.spec.level_depth(level) // self.spec.level_depth(1)
        return self._coarse_range[0] * per_unit, self._coarse_range[1] * per_unit

    def _load(self, level: int, theta: torch.Tensor) -> LayerParallel:
        """The level's pipeline with this rank's parameters set from θ and no gradients."""
        lp, params = self.levels[level], self.unpack(theta)
        model = lp.serial_model
        first, last = self._coarse_range
        per_unit = self.spec.level_depth(level) // self.spec.level_depth(1)
        with torch.no_grad():
            for index, unit in enumerate(model[1 + first : 1 + last]):
                rows = slice(index * per_unit, (index + 1) * per_unit)
                unit.weight.copy_(params.weight[rows])
                unit.bias.copy_(params.bias[rows])
            model[0].weight.copy_(params.lift)
            model[-1].weight.copy_(params.head_weight)
            model[-1].bias.copy_(params.head_bias)
        for p in model.parameters():
            p.grad = None
        return lp

    def _local_batch(self, x: torch.Tensor, labels: torch.Tensor):
        replica, replicas = self.grid.replica, self.grid.replicas
        return x[replica::replicas], labels[replica::replicas]

    def value_and_grad(self, level, theta, x, labels):
        lp = self._load(level, theta)
        loss = lp.train_step(*self._local_batch(x, labels), F.cross_entropy)
        model = lp.serial_model
        first, last = self._coarse_range
        layers = [
            torch.cat([_grad(u.weight).flatten(1), _grad(u.bias)], dim=1)
            for u in model[1 + first : 1 + last]
        ]
        shared = torch.cat([_grad(model[0].weight).flatten(), _grad(model[-1].weight).flatten()])
        # the lift's gradient is on the first rank, the head's on the last (train_step has
        # already averaged both over the replicas)
        shared = self.grid.pipe.allreduce(torch.cat([shared, _grad(model[-1].bias)]))
        grad = torch.cat([torch.cat(layers).flatten() if layers else theta[:0], shared])
        # the regulariser: local layers (summed over the pipeline) and the shared part once
        theta = theta.detach().requires_grad_(True)
        params = self.unpack(theta)
        local = self.spec.level_beta(level) * params.layers.square().sum()
        shared_reg = self.regularizer(level, params) - local
        (reg_grad,) = torch.autograd.grad(local + shared_reg, theta)
        total = (
            float(loss.detach())
            + float(self.grid.pipe.allreduce(local.detach()))
            + float(shared_reg.detach())
        )
        return total, grad + reg_grad

    def logits(self, level, theta, x):
        with torch.no_grad():
            return self._load(level, theta)(x)

    def loss(self, level, theta, x, labels):
        with torch.no_grad():
            params = self.unpack(theta)
            data = F.cross_entropy(self.logits(level, theta, x), labels)
            local = self.spec.level_beta(level) * params.layers.square().sum()
            shared_reg = self.regularizer(level, params) - local
            return float(data + shared_reg + self.grid.pipe.allreduce(local))

    def dot(self, a: torch.Tensor, b: torch.Tensor) -> float:
        (a_layers, a_shared), (b_layers, b_shared) = self.split(a), self.split(b)
        local = torch.dot(a_layers.flatten(), b_layers.flatten())
        return float(self.grid.pipe.allreduce(local) + torch.dot(a_shared, b_shared))

    def gather(self, level: int, theta: torch.Tensor) -> torch.Tensor:
        """The whole network's flat vector of level ``level`` on every rank."""
        layers, shared = self.split(theta)
        parts = self.grid.pipe.allgather(layers.flatten().contiguous())
        return torch.cat([*parts, shared])


def _grad(p: nn.Parameter) -> torch.Tensor:
    return torch.zeros_like(p) if p.grad is None else p.grad

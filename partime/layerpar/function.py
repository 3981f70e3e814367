"""The distributed pass as one autograd.Function: ``lp(x)`` forward, pipelined backward.

Forward runs every micro-batch through this rank's stage (keeping the graphs) and returns the
last stage's output on every rank; backward takes the gradient of that output (the last
stage's copy is used), runs the backwards of the schedule and returns the gradients of this
rank's parameters (summed over the ranks that share one, then over replicas) and, on the
first stage, of ``x``. The forwards and backwards run in the schedule's orders, one after the
other: the loss is computed outside, so a forward/backward interleaving (1F1B) is for
``train_step``.
"""

from __future__ import annotations

import torch
from torch import Tensor

from partime.layerpar.pipeline import GradientSum, split_batch
from partime.layerpar.units import tensors


class PipelinedPass(torch.autograd.Function):
    @staticmethod
    def forward(ctx, lp, x: Tensor, *params: Tensor) -> Tensor:
        stage, rank = lp.stage, lp.grid.pipe.rank
        parts = split_batch(x, lp.micro_batches)
        outputs = {}
        with lp._keyed_rng() as keys:
            for action in lp.schedule.forwards(rank):
                m = action.micro_batch
                out = stage.forward(
                    m, parts[m] if stage.is_first else None, keys(m), input_grad=x.requires_grad
                )
                if stage.is_last:
                    outputs[m] = out
        if stage.is_last and not all(isinstance(o, Tensor) for o in outputs.values()):
            raise TypeError("the model's last unit must return a tensor (not a tuple of states)")
        joined = (
            torch.cat([outputs[m].detach() for m in sorted(outputs)]) if stage.is_last else None
        )
        ctx.lp, ctx.sizes, ctx.x_grad = lp, [len(p) for p in parts], x.requires_grad
        ctx.outputs = outputs
        # this replica's share of the global batch: the weight of its mean loss's gradient
        ctx.replica_weight = sum(lp._weights(ctx.sizes))
        return lp._from_last(joined)

    @staticmethod
    def backward(ctx, grad_output: Tensor):
        lp = ctx.lp
        stage, rank = lp.stage, lp.grid.pipe.rank
        grads_out = torch.split(grad_output, ctx.sizes) if stage.is_last else None
        param_grads = GradientSum(len(stage.params))
        input_grads: dict[int, Tensor | None] = {}
        for action in lp.schedule.backwards(rank):
            m = action.micro_batch
            target = None
            if stage.is_last:
                target = (tensors(ctx.outputs.pop(m)), (grads_out[m],))
            grads, inputs = stage.backward(m, target)
            param_grads.add(grads)
            input_grads[m] = inputs[0]
        stage.finish()
        reduced = lp._reduce_gradients(param_grads.totals, ctx.replica_weight)
        x_grad = None
        if stage.is_first and ctx.x_grad:
            parts = [input_grads[m] for m in sorted(input_grads)]
            if all(g is not None for g in parts):
                x_grad = torch.cat(parts)
        return (None, x_grad, *reduced)

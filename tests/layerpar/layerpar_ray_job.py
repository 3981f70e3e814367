"""Driver of the Ray tests (a fresh process: Ray reads RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER at
import). Usage: layerpar_ray_job.py ADDRESS exact WORKERS SCHEDULE | ADDRESS fail die|raise
Prints one JSON line: the per-rank errors, or the exception's type and message."""

import json
import os
import sys

import layerpar_models
import ray
from layerpar_models import batch, lm_pair, serial_gradients
from torch import nn

from partime.comm.ray_spmd import run_spmd
from partime.layerpar import LayerParallel

ray.cloudpickle.register_pickle_by_value(layerpar_models)  # not importable on the workers


def gradient_errors(comm, schedule: str) -> tuple[float, float]:
    """On every rank: |loss - serial loss| and the largest gradient difference, by name."""
    x, y = batch(11)
    lp = LayerParallel(lm_pair(), comm, micro_batches=4, schedule=schedule)
    loss = lp.train_step(x, y, nn.functional.mse_loss)
    loss_ref, grads_ref = serial_gradients(lm_pair(), x, y)
    diffs = [float((p.grad - grads_ref[name]).abs().max()) for name, p in lp.named_parameters()]
    return abs(float(loss) - float(loss_ref)), max(diffs)


def fail_on_rank_1(comm, how: str) -> None:
    if comm.rank == 1:
        if how == "die":
            os._exit(3)  # the actor's process disappears
        raise ValueError("bad value on rank 1")
    comm.recv(1)  # rank 0 waits for a message that never comes


address, mode = sys.argv[1], sys.argv[2]
if mode == "exact":
    print(json.dumps(run_spmd(gradient_errors, int(sys.argv[3]), sys.argv[4], address=address)))
else:
    try:
        run_spmd(fail_on_rank_1, 2, sys.argv[3], address=address)
    except Exception as err:
        print(json.dumps({"type": type(err).__name__, "message": str(err)}))

"""A layer-parallel training run for the resume test: ``STEPS`` SGD steps of the batch-norm +
dropout model, a shard checkpoint after every step, optionally SIGKILLed on rank 1 after step
``KILL_AT``; rank 0 saves the final full state dict to ``OUT``.

Usage: layerpar_train_job.py CHECKPOINT_DIR STEPS KILL_AT OUT
"""

import os
import signal
import sys

import torch
from layerpar_models import batch, stochastic
from torch import nn

from partime.comm import abort_on_exception, from_env
from partime.io.atomic import atomic_save
from partime.layerpar import LayerParallel
from partime.layerpar.checkpoint import ShardCheckpoint

directory, steps, kill_at, out = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
comm = from_env()
with abort_on_exception(comm):
    lp = LayerParallel(stochastic(), comm, micro_batches=3, seed=11)
    optimizer = torch.optim.SGD(lp.parameters(), lr=0.05, momentum=0.9)
    checkpoint = ShardCheckpoint(directory, lp)
    resumed = checkpoint.load(optimizer)
    start = 0 if resumed is None else resumed[0]
    for step in range(start, steps):
        x, y = batch(12, seed=100 + step)
        optimizer.zero_grad()
        lp.train_step(x, y, nn.functional.mse_loss)
        optimizer.step()
        checkpoint.save(step + 1, optimizer)
        if step + 1 == kill_at and comm.rank == 1:
            os.kill(os.getpid(), signal.SIGKILL)
    full = lp.state_dict()
    if comm.rank == 0:
        atomic_save(full, out)

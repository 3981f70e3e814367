"""partime.train: the one training loop (``fit``) and its separately usable pieces.

Layer ``train`` sits between ``nets`` and ``layerpar``: optimizer building and step decay
(``optim``), the pluggable step with the data-parallel default (``step``), evaluation
(``evaluate``), checkpoints (``checkpoint``), progress and summary (``report``), model files
that rebuild themselves (``model_file``).
"""

from partime.train.checkpoint import load_checkpoint, save_checkpoint
from partime.train.config import DTYPES, OPTIMIZERS, TrainConfig
from partime.train.evaluate import Metrics, evaluate
from partime.train.loop import TrainResult, fit
from partime.train.model_file import load_model, save_model
from partime.train.optim import build_optimizer, excluded_from_decay, set_lr
from partime.train.report import ProgressBar, training_summary
from partime.train.step import (
    DataParallelStep,
    TrainStep,
    allreduce_gradients,
    average_buffers,
    broadcast_module,
    shard_bounds,
)

__all__ = [
    "DTYPES",
    "OPTIMIZERS",
    "DataParallelStep",
    "Metrics",
    "ProgressBar",
    "TrainConfig",
    "TrainResult",
    "TrainStep",
    "allreduce_gradients",
    "average_buffers",
    "broadcast_module",
    "build_optimizer",
    "evaluate",
    "excluded_from_decay",
    "fit",
    "load_checkpoint",
    "load_model",
    "save_checkpoint",
    "save_model",
    "set_lr",
    "shard_bounds",
    "training_summary",
]

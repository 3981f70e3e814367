"""partime.comm: one mpi4py-like communicator over serial, MPI and torch.distributed backends."""

from partime.comm.base import REDUCE_OPS, Comm, PendingTensor, Persistent, Request
from partime.comm.env import BACKENDS, LAUNCHER_BACKEND, RUN_BACKENDS, detect_launcher, from_env
from partime.comm.guard import abort_on_exception, install_excepthook
from partime.comm.logging import is_printing_rank, rank_prefix_logging
from partime.comm.serial import SerialComm

__all__ = [
    "BACKENDS",
    "LAUNCHER_BACKEND",
    "REDUCE_OPS",
    "RUN_BACKENDS",
    "Comm",
    "PendingTensor",
    "Persistent",
    "Request",
    "SerialComm",
    "abort_on_exception",
    "detect_launcher",
    "from_env",
    "install_excepthook",
    "is_printing_rank",
    "rank_prefix_logging",
]

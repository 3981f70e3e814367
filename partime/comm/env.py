"""Pick the communicator from the launcher's environment (mpiexec, srun, torchrun, or none)."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping

import torch

from partime.comm.base import Comm
from partime.comm.guard import install_excepthook
from partime.comm.serial import SerialComm

# Variables that process managers set in every rank they start.
_MPI_VARS = ("PMI_RANK", "PMI_SIZE", "PMIX_RANK", "OMPI_COMM_WORLD_SIZE", "HYDI_CONTROL_FD")
_MPIEXEC_VARS = ("HYDI_CONTROL_FD", "OMPI_COMM_WORLD_SIZE")  # only under mpiexec/mpirun
_TORCHRUN_VARS = ("RANK", "WORLD_SIZE", "MASTER_ADDR")

LAUNCHER_BACKEND = {"torchrun": "torch", "mpiexec": "mpi", "srun": "mpi", None: "serial"}
#: ``--backend`` of every command: where the ranks come from — the launcher's environment
#: (auto), this process alone (serial), MPI, torch.distributed, or Ray actors.
RUN_BACKENDS = ("auto", "serial", "mpi", "torch", "ray")


def detect_launcher(environ: Mapping[str, str] | None = None) -> str | None:
    """'torchrun', 'srun' (several tasks in a Slurm step), 'mpiexec', or None (a plain run)."""
    env = os.environ if environ is None else environ
    if all(name in env for name in _TORCHRUN_VARS):
        return "torchrun"
    if int(env.get("SLURM_STEP_NUM_TASKS", "1")) > 1 and not any(v in env for v in _MPIEXEC_VARS):
        return "srun"
    if any(name in env for name in _MPI_VARS):
        return "mpiexec"
    return None


def _mpi_comm(timeout_s: float) -> Comm:
    from partime.comm.mpi import MPIComm

    comm = MPIComm()
    tasks = int(os.environ.get("SLURM_STEP_NUM_TASKS", "1"))
    if comm.size == 1 and detect_launcher() == "srun" and tasks > 1:
        # Each task initialised MPI alone: srun could not hand the ranks an MPI wire-up.
        raise RuntimeError(
            f"srun started {tasks} tasks but MPI sees 1 rank; launch with "
            "`srun --mpi=pmi2` (or pmix) matching your MPI library"
        )
    return comm


def _torch_comm(timeout_s: float) -> Comm:
    from partime.comm.torchdist import TorchComm

    return TorchComm.from_env(timeout_s)


BACKENDS: dict[str, Callable[[float], Comm]] = {
    "serial": lambda timeout_s: SerialComm(),
    "mpi": _mpi_comm,
    "torch": _torch_comm,
}


def from_env(backend: str = "auto", num_threads: int | None = 1, timeout_s: float = 60.0) -> Comm:
    """The communicator of this launch: ``backend`` "auto" follows ``detect_launcher()``.

    Sets ``torch.set_num_threads(num_threads)`` per rank (None leaves torch's default), and,
    with several ranks, an excepthook that aborts the job on an uncaught exception.
    ``timeout_s`` bounds torch.distributed waits on a dead peer.
    """
    if backend != "auto" and backend not in BACKENDS:
        raise ValueError(f"backend={backend!r} is not 'auto' or one of {sorted(BACKENDS)}")
    if num_threads is not None and (
        isinstance(num_threads, bool) or not isinstance(num_threads, int) or num_threads < 1
    ):
        raise ValueError(f"num_threads={num_threads!r} must be a positive int or None")
    name = LAUNCHER_BACKEND[detect_launcher()] if backend == "auto" else backend
    if num_threads is not None:
        # Several ranks each using every core oversubscribe the node (40x slowdowns under srun).
        torch.set_num_threads(num_threads)
    comm = BACKENDS[name](timeout_s)
    install_excepthook(comm)
    return comm

"""Launcher detection, from_env validation, rank-prefixed logging and the guard on one rank."""

from __future__ import annotations

import logging

import pytest
import torch

from partime.comm import (
    LAUNCHER_BACKEND,
    SerialComm,
    abort_on_exception,
    detect_launcher,
    from_env,
    is_printing_rank,
    rank_prefix_logging,
)

LAUNCHES = {
    "plain": ({"HOME": "/root"}, None),
    "mpich-hydra": ({"PMI_RANK": "1", "PMI_SIZE": "2", "HYDI_CONTROL_FD": "7"}, "mpiexec"),
    "open-mpi": ({"OMPI_COMM_WORLD_SIZE": "4", "OMPI_COMM_WORLD_RANK": "0"}, "mpiexec"),
    "srun-pmi2": ({"SLURM_STEP_NUM_TASKS": "8", "SLURM_PROCID": "3", "PMI_RANK": "3"}, "srun"),
    "srun-one-task": ({"SLURM_STEP_NUM_TASKS": "1", "SLURM_PROCID": "0"}, None),
    "mpiexec-inside-slurm": ({"SLURM_STEP_NUM_TASKS": "2", "HYDI_CONTROL_FD": "7"}, "mpiexec"),
    "torchrun": (
        {"RANK": "0", "WORLD_SIZE": "2", "MASTER_ADDR": "x", "MASTER_PORT": "1"},
        "torchrun",
    ),
    "torchrun-under-srun": (
        {"RANK": "1", "WORLD_SIZE": "2", "MASTER_ADDR": "x", "SLURM_STEP_NUM_TASKS": "2"},
        "torchrun",
    ),
    "rank-without-master": ({"RANK": "0", "WORLD_SIZE": "2"}, None),
}


@pytest.mark.parametrize("name", LAUNCHES)
def test_detect_launcher(name):
    environ, launcher = LAUNCHES[name]
    assert detect_launcher(environ) == launcher
    assert LAUNCHER_BACKEND[launcher] in ("serial", "mpi", "torch")


def test_from_env_plain_run_is_serial_and_sets_threads():
    before = torch.get_num_threads()
    try:
        comm = from_env(num_threads=1)
        assert isinstance(comm, SerialComm) and torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"backend": "nccl"}, "backend='nccl'"),
        ({"num_threads": 0}, "num_threads=0"),
        ({"num_threads": 2.0}, "num_threads=2.0"),
    ],
)
def test_from_env_rejects_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        from_env(**kwargs)


def test_serial_messages_to_self_are_queued_per_tag():
    comm = SerialComm()
    for tag, value in [(1, "a"), (2, "b"), (1, "c")]:
        comm.send(value, dest=0, tag=tag)
    assert [comm.recv(0, tag=2), comm.recv(0, tag=1), comm.recv(0, tag=1)] == ["b", "a", "c"]
    with pytest.raises(RuntimeError, match="would hang"):
        comm.recv(0, tag=1)
    with pytest.raises(TypeError):
        comm.send((i for i in range(2)), dest=0)  # unpicklable: could not reach a peer either


def test_guard_reraises_on_one_rank():
    with pytest.raises(KeyError), abort_on_exception(SerialComm()):
        raise KeyError("one rank: the caller sees the exception")


def test_rank_prefix_logging(capsys):
    comm = SerialComm()
    logger = rank_prefix_logging(comm, name="partime.test_comm")
    rank_prefix_logging(comm, name="partime.test_comm")  # again: still one handler
    logger.info("hello")
    assert capsys.readouterr().err == "[rank 0/1] hello\n"
    assert is_printing_rank(comm) and logger.level == logging.INFO

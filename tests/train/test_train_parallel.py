"""Data-parallel training on real ranks: ``mpiexec -n 2`` gives the serial run's weights on the
same global batches (float64, <= 1e-12), batch-norm statistics agree across ranks, and a
2-rank checkpoint resumes bitwise."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import replace

import pytest
import torch
from depth_mlp import DepthMLP, blobs

from partime.comm import SerialComm
from partime.train import TrainConfig, fit

HERE = os.path.abspath(__file__)
MPIEXEC = shutil.which("mpiexec")
# Uneven shards: 45 samples in batches of 10 (last batch 5 -> 2 + 3 rows) and one batch of 3.
CONFIG = TrainConfig(
    epochs=3, batch_size=10, lr=0.1, weight_decay=1e-3, lr_decay_epochs=(2,), refine_at=(1,),
    dtype="float64",
)  # fmt: skip


def run(comm, config=CONFIG, callback=None, **options):
    torch.manual_seed(0)
    model = DepthMLP(4, 6, 3, **options)
    data = blobs(45, 1), blobs(23, 2), blobs(17, 3)
    return fit(model, *data, config, comm=comm, progress=False, callback=callback)


def max_difference(a, b) -> float:
    pairs = zip(a.state_dict().values(), b.state_dict().values(), strict=True)
    return max(float((x - y).abs().max()) for x, y in pairs if x.is_floating_point())


def check_equals_serial(comm) -> None:
    # Pieces skipped at random per forward: the same draws on every rank and in the serial run.
    parallel = run(comm, drop_piece=0.3)
    if comm.rank == 0:
        serial = run(SerialComm(), drop_piece=0.3)
        assert max_difference(parallel.model, serial.model) <= 1e-12
        assert max_difference(parallel.best_model, serial.best_model) <= 1e-12
        for got, want in zip(parallel.summary["epochs"], serial.summary["epochs"], strict=True):
            assert got["val_accuracy"] == want["val_accuracy"]
            assert abs(got["train_loss"] - want["train_loss"]) <= 1e-12
        assert parallel.summary["ranks"] == comm.size and serial.summary["ranks"] == 1
        assert parallel.summary["test_accuracy"] == serial.summary["test_accuracy"]
    # a batch smaller than the ranks: some ranks hold no rows
    tiny = replace(CONFIG, batch_size=1, epochs=2, refine_at=(), lr_decay_epochs=())
    small = fit(DepthMLP(4, 6, 3).double(), blobs(3, 4), config=tiny, comm=comm, progress=False)
    states = comm.allgather([t.clone() for t in small.model.state_dict().values()])
    assert all(torch.equal(a, b) for a, b in zip(states[0], states[-1], strict=True))


@pytest.mark.mpi(min_size=2)
def test_mpi_side_equals_serial_on_the_same_global_batches():
    from partime.comm import from_env

    check_equals_serial(from_env("mpi"))


@pytest.mark.skipif("TORCHELASTIC_RUN_ID" not in os.environ, reason="runs under torchrun")
def test_torch_side_equals_serial_on_the_same_global_batches():
    from partime.comm import from_env

    check_equals_serial(from_env("torch"))


@pytest.mark.mpi(min_size=2)
def test_mpi_side_batch_norm_statistics_agree():
    from partime.comm import from_env

    comm = from_env("mpi")
    result = run(comm, batch_norm=True)
    states = comm.allgather({k: v.clone() for k, v in result.model.state_dict().items()})
    for name in states[0]:
        assert torch.equal(states[0][name], states[1][name]), name
    assert float(states[0]["norm.running_var"].sub(1).abs().max()) > 1e-3  # statistics moved


@pytest.mark.mpi(min_size=2)
def test_mpi_side_resume_is_bitwise():
    from partime.comm import from_env

    comm = from_env("mpi")
    directory = comm.bcast(tempfile.mkdtemp() if comm.rank == 0 else None)
    whole = run(comm, replace(CONFIG, checkpoint=f"{directory}/whole"), dropout=0.3)
    parts = replace(CONFIG, checkpoint=f"{directory}/parts")

    def stop(record):
        if record["epoch"] == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run(comm, parts, callback=stop, dropout=0.3)
    resumed = run(comm, replace(parts, resume=True), dropout=0.3)
    # dropout draws per rank (different shard sizes): each rank resumed its own RNG state
    assert max_difference(resumed.model, whole.model) == 0.0
    comm.barrier()
    if comm.rank == 0:
        with pytest.raises(ValueError, match="written by 2 ranks; resume it with as many"):
            run(SerialComm(), replace(parts, resume=True), dropout=0.3)
        shutil.rmtree(directory)


def launch(command: list[str]) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(["timeout", "180", *command], env=env, capture_output=True, text=True,
                          cwd=os.path.dirname(HERE))  # fmt: skip


@pytest.mark.slow
@pytest.mark.skipif(MPIEXEC is None, reason="mpiexec not found")
def test_mpiexec_two_ranks():
    pytest_args = ["-m", "pytest", "--with-mpi", "-q", "-p", "no:cacheprovider", "-m", "mpi", HERE]
    proc = launch([MPIEXEC, "-n", "2", sys.executable, *pytest_args])
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "3 passed" in proc.stdout


@pytest.mark.slow
def test_torchrun_gloo_two_ranks():
    torchrun = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc-per-node",
        "2",
    ]
    pytest_args = ["-m", "pytest", "-q", "-p", "no:cacheprovider", "-k", "torch_side", HERE]
    proc = launch([*torchrun, *pytest_args])
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "1 passed" in proc.stdout

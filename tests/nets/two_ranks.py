"""Running a test file's rank-side tests on two real ranks (``mpiexec -n 2`` or ``torchrun``
with gloo) from a serial test, under ``timeout``."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

MPIEXEC = shutil.which("mpiexec")
TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2"]
PYTEST = ["-m", "pytest", "-q", "-p", "no:cacheprovider"]


def launch(command: list[str], limit_s: int = 240) -> subprocess.CompletedProcess:
    environ = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(["timeout", str(limit_s), *command], env=environ, capture_output=True,
                          text=True, cwd=os.path.dirname(os.path.abspath(__file__)))  # fmt: skip


def mpiexec_pytest(path: str) -> subprocess.CompletedProcess:
    """The file's ``@pytest.mark.mpi`` tests on ``mpiexec -n 2``."""
    return launch([MPIEXEC, "-n", "2", sys.executable, *PYTEST, "--with-mpi", "-m", "mpi", path])


def torchrun_pytest(path: str) -> subprocess.CompletedProcess:
    """The file's ``torch_side`` tests on two torchrun ranks (gloo)."""
    return launch([*TORCHRUN, *PYTEST, "-k", "torch_side", path])

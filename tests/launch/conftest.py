"""A real one-node SLURM cluster on localhost (munged, slurmctld, slurmd) for the launch tests.

Everything lives in a temporary directory with its own munge key, socket and ports, so it
neither needs nor disturbs a system SLURM. The daemons run in the foreground as children of
the test process and are stopped by PID. Without the binaries or root the tests skip.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DAEMONS = ("munged", "slurmctld", "slurmd")
CLIENTS = ("sbatch", "scancel", "scontrol", "sinfo", "squeue", "srun")
START_TIMEOUT_S = 30.0

SLURM_CONF = """\
ClusterName=partime-test
SlurmctldHost=localhost
SlurmctldPort={ctld_port}
SlurmdPort={slurmd_port}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={root}/run/munge.socket
StateSaveLocation={root}/state
SlurmdSpoolDir={root}/spool
SlurmctldPidFile={root}/run/slurmctld.pid
SlurmdPidFile={root}/run/slurmd.pid
SlurmctldLogFile={root}/log/slurmctld.log
SlurmdLogFile={root}/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
SchedulerType=sched/builtin
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
# More CPUs than the machine has, so 3-4 task jobs fit on a 2-core CI runner.
SlurmdParameters=config_overrides
ReturnToService=2
# No accounting: finished jobs stay visible to `scontrol show job` for MinJobAge seconds.
MinJobAge=3600
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
NodeName=localhost CPUs={cpus} RealMemory=1000 State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass(frozen=True)
class Job:
    """A finished batch job: id, scheduler state (COMPLETED, FAILED, ...), exit code, output."""

    job_id: int
    state: str
    exit_code: int
    output: str


class SlurmCluster:
    """Daemons of a private SLURM cluster; ``env`` is the environment for its client commands."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.procs: list[subprocess.Popen] = []
        self.env = dict(os.environ, SLURM_CONF=str(root / "slurm.conf"))
        # Jobs inherit the submitting environment: make this interpreter's tools (partime,
        # mpiexec, ray) come first even when the venv is not activated.
        bin_dir = str(Path(sys.executable).parent)
        self.env["PATH"] = bin_dir + os.pathsep + self.env.get("PATH", "")

    def _spawn(self, *argv: str) -> None:
        log = open(self.root / "log" / f"{Path(argv[0]).name}.out", "wb")
        with log:
            self.procs.append(
                subprocess.Popen(argv, env=self.env, stdout=log, stderr=subprocess.STDOUT)
            )

    def start(self) -> None:
        """Write key and config, start munged, slurmctld and slurmd, wait for an idle node."""
        for sub in ("run", "log", "state", "spool", "munge"):
            (self.root / sub).mkdir(mode=0o755)
        # munged insists on a private key dir and a socket dir everyone can traverse.
        os.chmod(self.root, 0o755)
        os.chmod(self.root / "munge", 0o700)
        key = self.root / "munge" / "munge.key"
        key.write_bytes(os.urandom(1024))
        key.chmod(0o600)
        conf = SLURM_CONF.format(
            root=self.root,
            ctld_port=free_port(),
            slurmd_port=free_port(),
            cpus=max(4, os.cpu_count() or 1),
        )
        (self.root / "slurm.conf").write_text(conf)
        self._spawn(
            "munged",
            "--foreground",
            "--force",
            f"--key-file={key}",
            f"--socket={self.root}/run/munge.socket",
            f"--pid-file={self.root}/run/munged.pid",
            f"--log-file={self.root}/log/munged.log",
            f"--seed-file={self.root}/munge/seed",
        )
        self._wait_for(lambda: (self.root / "run" / "munge.socket").exists(), "munged socket")
        self._spawn("slurmctld", "-D", "-f", str(self.root / "slurm.conf"))
        self._spawn("slurmd", "-D", "-N", "localhost", "-f", str(self.root / "slurm.conf"))
        self._wait_for(self._node_idle, "an idle node in sinfo")

    def _node_idle(self) -> bool:
        out = self.run("sinfo", "--noheader", "--format=%t", check=False).stdout
        return out.strip() == "idle"

    def _wait_for(self, ready, what: str) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while not ready():
            dead = [p.args[0] for p in self.procs if p.poll() is not None]
            if dead or time.monotonic() > deadline:
                why = f"died: {', '.join(dead)}" if dead else "timeout"
                raise RuntimeError(f"no {what} ({why}); logs:\n{self.logs()}")
            time.sleep(0.2)

    def logs(self) -> str:
        """The tails of the daemons' logs, for failure messages."""
        parts = []
        for path in sorted((self.root / "log").glob("*")):
            parts.append(f"--- {path.name}\n" + "\n".join(path.read_text().splitlines()[-15:]))
        return "\n".join(parts)

    def stop(self) -> None:
        """Cancel leftover jobs, SIGTERM each daemon we started (by PID), SIGKILL after 10 s."""
        if self.procs and all(proc.poll() is None for proc in self.procs):
            self.run("scancel", "--full", "--partition=debug", check=False)
            deadline = time.monotonic() + 20
            while self.run("squeue", "--noheader", check=False).stdout.strip():
                if time.monotonic() > deadline:
                    break
                time.sleep(0.5)
        for proc in reversed(self.procs):
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)

    def run(self, *argv: str, check: bool = True, timeout: float = 30, **kwargs):
        """Run a command with this cluster's SLURM_CONF; return the CompletedProcess."""
        return subprocess.run(
            argv,
            env={**self.env, **kwargs.pop("env", {})},
            capture_output=True,
            text=True,
            timeout=timeout,
            check=check,
            **kwargs,
        )

    def job(self, job_id: int, output: Path, timeout: float = 120) -> Job:
        """Wait for a job to end (polling scontrol: sbatch --wait polls every ~10-30 s) and
        return its state, exit code and output file."""
        deadline = time.monotonic() + timeout
        while True:
            info = self.run("scontrol", "show", "job", "--oneliner", str(job_id)).stdout
            state = re.search(r"JobState=(\S+)", info).group(1)
            if state not in ("PENDING", "CONFIGURING", "RUNNING", "COMPLETING"):
                break
            if time.monotonic() > deadline:
                self.run("scancel", str(job_id), check=False)
                raise TimeoutError(f"job {job_id} still {state} after {timeout} s")
            time.sleep(0.3)
        exit_code = int(re.search(r"ExitCode=(\d+):", info).group(1))
        return Job(job_id, state, exit_code, output.read_text() if output.exists() else "")


@pytest.fixture(scope="session")
def pick_port() -> Callable[[], int]:
    """A function returning an unused loopback TCP port (for Ray heads, SLURM daemons)."""
    return free_port


@pytest.fixture(scope="session")
def slurm_cluster() -> Iterator[SlurmCluster]:
    """A running one-node SLURM cluster for the test session (skips where it cannot run)."""
    missing = [name for name in DAEMONS + CLIENTS if shutil.which(name) is None]
    if missing:
        pytest.skip(
            f"SLURM/munge not installed (missing {', '.join(missing)}); "
            "run .ci/install-system.sh as root"
        )
    if os.geteuid() != 0:
        pytest.skip("slurmd must run as root to start jobs")
    cluster = SlurmCluster(Path(tempfile.mkdtemp(prefix="pt-slurm-")))
    try:
        cluster.start()
    except RuntimeError as err:
        cluster.stop()
        pytest.skip(f"SLURM daemons did not start: {err}")
    try:
        yield cluster
    finally:
        cluster.stop()
        shutil.rmtree(cluster.root, ignore_errors=True)

"""The kernel cache on disk: reused by a second process, missed on any change, self-healing."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from partime.integrators.kernels import find_compiler

# Runs in a fresh interpreter: integrates Lorenz and prints the kernel counters after each step.
SCRIPT = """
import json, sys, torch
import partime
from partime.dynamics import Lorenz
from partime.integrators import fast, integrate, kernels

def lorenz(system=None, dtype=torch.float64, mode=True):
    x0 = torch.tensor([[-8.0, 7.0, 27.0]], dtype=dtype)
    return integrate(system or Lorenz(), x0, 0.0, 5e-4, 200, fast=mode).tolist()

out = {}
for step in sys.argv[1:]:
    if step == "version":
        partime.__version__ += "+changed"
        fast.forget_kernels()  # memory only: the disk cache decides
    if step in ("fast", "version"):
        out[step] = lorenz()
    elif step == "auto":  # 200 eager steps are worth less than a compile: only a hit is free
        out[step] = lorenz(mode=None)
    elif step == "system":
        lorenz(Lorenz(rho=30.0))
    elif step == "dtype":
        lorenz(dtype=torch.float32)
    out[step + " stats"] = dict(kernels.STATS)
out["paths"] = sorted(str(k.path) for k in fast._compiled.values())
print(json.dumps(out))
"""


def run(cache: Path, *steps: str) -> dict:
    env = {**os.environ, "PARTIME_CACHE": str(cache)}
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, *steps],
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.slow  # three fresh interpreters: ~10 s, 30 s on a busy machine
@pytest.mark.skipif(find_compiler() is None, reason="no C compiler")
def test_cache_reused_across_processes_missed_on_changes_and_healed(tmp_path):
    first = run(tmp_path, "fast")
    assert first["fast stats"]["compiled"] == 1 and first["fast stats"]["loaded"] == 0
    (library,) = first["paths"]
    assert Path(library).parent == tmp_path / "kernels" and Path(library).is_file()
    assert Path(library).with_suffix(".c").read_text().startswith("/* partime RK kernel")

    second = run(tmp_path, "auto", "system", "dtype")
    assert second["auto"] == first["fast"]  # the cached kernel, bit for bit
    assert second["auto stats"] == {**second["auto stats"], "compiled": 0, "loaded": 1}
    assert second["system stats"]["compiled"] == 1  # another rho: another kernel
    assert second["dtype stats"]["compiled"] == 2  # float32: another kernel
    assert len(list((tmp_path / "kernels").glob("*.so"))) == 3

    # A truncated library (it would pass dlopen, then SIGBUS) is noticed and rebuilt.
    data = Path(library).read_bytes()
    Path(library).write_bytes(data[: len(data) // 3])
    healed = run(tmp_path, "fast", "version")
    assert healed["fast"] == first["fast"]
    assert healed["fast stats"]["compiled"] == 1 and healed["fast stats"]["loaded"] == 0
    assert len(Path(library).read_bytes()) == len(data)  # rebuilt in place, whole
    assert healed["version"] == first["fast"]
    assert healed["version stats"]["compiled"] == 2  # partime's version is part of the key

"""`import partime` needs only torch/numpy/scipy; a missing backend names the extra to install."""

import subprocess
import sys

import pytest

from partime._optional import require

NO_OPTIONAL_BACKENDS = """
import sys
import partime, partime.comm, partime.pint, partime.hits, partime.cli.main
partime.cli.main.build_parser()
loaded = sorted(m for m in ("mpi4py", "ray", "torchdiffeq") if m in sys.modules)
assert not loaded, loaded
"""

RAY_MISSING = """
import sys
sys.modules["ray"] = None  # as if ray were not installed
from partime.pint import make_executor
try:
    make_executor("ray", workers=2).prepare(lambda x, t0, t1: x, 1)
except ImportError as err:
    print(err)
"""


def test_import_loads_no_optional_backend() -> None:
    done = subprocess.run([sys.executable, "-c", NO_OPTIONAL_BACKENDS], capture_output=True)
    assert done.returncode == 0, done.stderr.decode()


def test_missing_backend_names_the_extra() -> None:
    done = subprocess.run([sys.executable, "-c", RAY_MISSING], capture_output=True, text=True)
    assert "pip install 'partime[ray]'" in done.stdout, done.stdout + done.stderr


def test_require_names_module_and_extra() -> None:
    with pytest.raises(ImportError, match=r"'no_such_backend'.*partime\[mpi\]"):
        require("no_such_backend", "mpi")

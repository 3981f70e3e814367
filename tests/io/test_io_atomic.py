"""Files partime writes are never half-written: an error or a kill mid-write leaves the old file."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from partime.io import atomic_save, atomic_write, atomic_write_with


def test_an_error_mid_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "state.pt"
    atomic_save({"version": 1}, path)

    def half_then_fail(handle) -> None:
        handle.write(b"partial bytes")
        raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError, match="disk on fire"):
        atomic_write_with(half_then_fail, path)
    assert torch.load(path) == {"version": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["state.pt"]


def test_a_new_file_gets_the_permissions_open_gives_and_an_old_one_keeps_its_own(tmp_path):
    (tmp_path / "plain").write_text("x")
    atomic_save(1, tmp_path / "new.pt")
    assert (tmp_path / "new.pt").stat().st_mode == (tmp_path / "plain").stat().st_mode
    (tmp_path / "new.pt").chmod(0o640)
    atomic_save(2, tmp_path / "new.pt")
    assert (tmp_path / "new.pt").stat().st_mode & 0o777 == 0o640


def test_writers_that_take_a_file_object(tmp_path):
    atomic_write_with(lambda h: np.savez(h, a=np.arange(3)), tmp_path / "a.npz")
    np.testing.assert_array_equal(np.load(tmp_path / "a.npz")["a"], np.arange(3))
    with atomic_write(tmp_path / "sub" / "b.txt", "w") as handle:
        handle.write("text")
    assert (tmp_path / "sub" / "b.txt").read_text() == "text"
    with pytest.raises(ValueError, match="mode"):
        with atomic_write(tmp_path / "c", "a"):
            pass


KEEP_SAVING = """
import sys, torch
from partime.io import atomic_save
path, n = sys.argv[1], 0
print("ready", flush=True)
while True:  # 8 MB files, each with its own fill value, rewritten as fast as possible
    n += 1
    atomic_save({"n": n, "data": torch.full((1_000_000,), float(n), dtype=torch.float64)}, path)
"""


@pytest.mark.parametrize("delay_s", [0.3, 0.7, 1.1])
def test_a_kill_mid_save_leaves_a_whole_file(tmp_path, delay_s):
    path = tmp_path / "ckpt.pt"
    proc = subprocess.Popen([sys.executable, "-c", KEEP_SAVING, str(path)], stdout=subprocess.PIPE)
    assert proc.stdout.readline().strip() == b"ready"
    deadline = time.monotonic() + 30
    while not path.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(delay_s)  # several saves later, somewhere inside one of them
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    blob = torch.load(path)
    assert blob["n"] >= 1 and bool((blob["data"] == float(blob["n"])).all())

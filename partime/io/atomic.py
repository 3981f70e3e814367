"""Files that are never half-written: write to a temporary file beside the target, then rename.

Every file partime writes (checkpoints, model files, results, datasets, figures) goes through
``atomic_write``, so an interrupt or a crash leaves either the old file or the new one.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any


@contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "wb") -> Iterator[IO]:
    """Open a temporary file in ``path``'s folder; on a clean exit flush, fsync and rename it
    onto ``path``. On an exception the temporary file is removed and ``path`` is untouched."""
    if mode not in ("w", "wb"):
        raise ValueError(f"mode must be 'w' or 'wb', got {mode!r}")
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.chmod(tmp, _file_mode(target))  # mkstemp makes 0600; a written file gets what open() gives
    try:
        with os.fdopen(fd, mode) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _file_mode(target: Path) -> int:
    """The target's mode if it exists, else what a plain ``open(..., "w")`` would give."""
    if target.exists():
        return target.stat().st_mode & 0o7777
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def atomic_save(obj: Any, path: str | os.PathLike) -> Path:
    """``torch.save(obj, path)``, atomically."""
    import torch

    with atomic_write(path) as handle:
        torch.save(obj, handle)
    return Path(path)


def atomic_write_with(writer: Callable[[IO], None], path: str | os.PathLike) -> Path:
    """Call ``writer(handle)`` on a binary handle and put the result at ``path`` atomically
    (for writers such as ``np.savez`` or ``fig.savefig`` that take a file object)."""
    with atomic_write(path) as handle:
        writer(handle)
    return Path(path)

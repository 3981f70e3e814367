"""Make an exception on one rank end the whole job quickly instead of leaving its peers hanging."""

from __future__ import annotations

import sys
import time
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from types import TracebackType

from partime.comm.base import Comm

REPORT_GRACE_S = 0.3  # between printing a rank's exception and aborting the job


def _report(comm: Comm, exc: BaseException) -> None:
    lines = traceback.format_exception(type(exc), exc, exc.__traceback__)
    prefix = f"[rank {comm.rank}/{comm.size}] "
    text = "".join(lines).rstrip("\n")
    print("\n".join(prefix + line for line in text.splitlines()), file=sys.stderr, flush=True)
    # The launcher forwards this rank's output through a pipe; an abort that follows at once
    # can tear the job down before it is read (seen on a loaded machine under mpiexec: the job
    # ended with no message). A moment for it to be forwarded, on a job that is failing anyway.
    time.sleep(REPORT_GRACE_S)


@contextmanager
def abort_on_exception(comm: Comm, code: int = 1) -> Iterator[None]:
    """Run the block; on an exception print it with the rank prefix and abort every rank.

    With one rank the exception is re-raised unchanged; a clean ``SystemExit(0)`` always is.
    """
    try:
        yield
    except BaseException as exc:
        if comm.size == 1 or (isinstance(exc, SystemExit) and exc.code in (0, None)):
            raise
        _report(comm, exc)
        comm.abort(code)


def install_excepthook(comm: Comm, code: int = 1) -> None:
    """Abort the job on any uncaught exception of this process (for users without the guard)."""
    if comm.size == 1:
        return

    def hook(kind: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
        _report(comm, exc.with_traceback(tb))
        comm.abort(code)

    sys.excepthook = hook

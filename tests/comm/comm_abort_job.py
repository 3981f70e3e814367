"""A 2-rank job where rank 1 raises while rank 0 waits for it: the job must end, not hang.

Usage: comm_abort_job.py guard|hook  (hook: no guard, the excepthook from from_env aborts).
"""

import sys

from partime.comm import abort_on_exception, from_env

comm = from_env()


def work() -> None:
    if comm.rank == 1:
        raise RuntimeError("boom on rank 1")
    comm.recv(source=1)  # never satisfied: without an abort rank 0 would wait forever


if sys.argv[1] == "guard":
    with abort_on_exception(comm):
        work()
else:
    work()

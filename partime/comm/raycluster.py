"""One way to reach Ray: a local instance or a cluster address, stopped only by who started it."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from partime._optional import require

_LOOPBACK = ("127.0.0.1", "localhost")


def connect_ray(address: str | None = None, num_cpus: int | None = None) -> tuple[Any, bool]:
    """``ray``, initialised: the cluster at ``address``, or a local instance of ``num_cpus``
    CPUs (None: all). The second value says whether this call started Ray (and must stop it)."""
    if address and address.split(":")[0] in _LOOPBACK:
        # Without it Ray dials the machine's public address for a loopback head and retries
        # for minutes; it must be set before ray is imported.
        os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    ray = require("ray", "ray")
    if ray.is_initialized():
        return ray, False
    ray.init(
        address=address,
        num_cpus=None if address else num_cpus,
        include_dashboard=False,
        log_to_driver=False,
    )
    return ray, True


@contextmanager
def ray_session(address: str | None = None, num_cpus: int | None = None) -> Iterator[Any]:
    """``connect_ray`` for a block: Ray is shut down at its end (also on an exception) if the
    block started it."""
    ray, started = connect_ray(address, num_cpus)
    try:
        yield ray
    finally:
        if started:
            ray.shutdown()

"""Rank-aware logging: every line says which rank wrote it; only rank 0 reports progress."""

from __future__ import annotations

import logging
import sys

from partime.comm.base import Comm

_HANDLER_NAME = "partime-rank-prefix"


def is_printing_rank(comm: Comm) -> bool:
    """True on the one rank that prints summaries and progress bars (rank 0)."""
    return comm.rank == 0


def rank_prefix_logging(
    comm: Comm, level: int = logging.INFO, all_ranks: bool = False, name: str = "partime"
) -> logging.Logger:
    """Log ``name`` to stderr as "[rank r/size] message"; only rank 0 below WARNING by default.

    Calling it again replaces the handler it installed (safe after a ``split``).
    """
    logger = logging.getLogger(name)
    for handler in [h for h in logger.handlers if h.get_name() == _HANDLER_NAME]:
        logger.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    handler.set_name(_HANDLER_NAME)
    handler.setFormatter(logging.Formatter(f"[rank {comm.rank}/{comm.size}] %(message)s"))
    logger.addHandler(handler)
    logger.setLevel(level if all_ranks or is_printing_rank(comm) else max(level, logging.WARNING))
    logger.propagate = False
    return logger

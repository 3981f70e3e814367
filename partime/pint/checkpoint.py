"""Per-rank parareal checkpoints: ``rank{r}.pt`` written atomically after each iteration."""

from __future__ import annotations

import os
from dataclasses import asdict
from pathlib import Path

import torch

from partime.io.atomic import atomic_save
from partime.pint.state import PararealState


def checkpoint_path(directory: str | os.PathLike, rank: int = 0) -> Path:
    return Path(directory) / f"rank{rank}.pt"


def save_checkpoint(directory: str | os.PathLike, state: PararealState) -> Path:
    """Write ``state`` to ``directory/rank{state.rank}.pt`` (atomically: never torn)."""
    return atomic_save(asdict(state), checkpoint_path(directory, state.rank))


def load_checkpoint(directory: str | os.PathLike, rank: int = 0) -> PararealState:
    """Read this rank's checkpoint; FileNotFoundError / ValueError with the path when unusable."""
    path = checkpoint_path(directory, rank)
    if not path.is_file():
        raise FileNotFoundError(f"no parareal checkpoint for rank {rank} at {path}")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
        return PararealState(**data)
    except Exception as err:  # any unpickling/field error means the same thing to the user
        raise ValueError(f"{path} is not a parareal checkpoint: {err}") from err


class Checkpointer:
    """Callback for ``parareal``: save every iteration's state into ``directory``."""

    def __init__(self, directory: str | os.PathLike) -> None:
        self.directory = Path(directory)

    def __call__(self, state: PararealState) -> None:
        save_checkpoint(self.directory, state)

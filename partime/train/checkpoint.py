"""Training checkpoints: one file per directory, written atomically by rank 0 after every epoch,
holding the model, the optimizer, every rank's random-number state and the loop's progress,
so that a resumed run gives bitwise the weights of an uninterrupted one."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from partime.comm import Comm
from partime.io.atomic import atomic_save
from partime.train.config import TrainConfig

__all__ = [
    "CHECKPOINT_NAME",
    "check_resumable",
    "checkpoint_file",
    "load_checkpoint",
    "restore_rng",
    "rng_state",
    "save_checkpoint",
]

CHECKPOINT_NAME = "train_checkpoint.pt"
# Options a resumed run may change: the length of training and where/how it reports.
_FREE_ON_RESUME = ("epochs", "checkpoint", "resume", "eval_batch_size", "device")


def checkpoint_file(directory: str | Path) -> Path:
    return Path(directory) / CHECKPOINT_NAME


def rng_state(shuffle: torch.Generator, device: torch.device) -> dict[str, Any]:
    """This rank's random-number state: torch's global CPU (and CUDA) RNG and the shuffler."""
    state = {"torch": torch.get_rng_state(), "shuffle": shuffle.get_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def restore_rng(state: dict[str, Any], shuffle: torch.Generator, device: torch.device) -> None:
    torch.set_rng_state(state["torch"])
    shuffle.set_state(state["shuffle"])
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], device)


def save_checkpoint(directory: str | Path, blob: dict[str, Any], comm: Comm, rng: dict) -> None:
    """Gather every rank's ``rng`` into ``blob`` and write it on rank 0 (others wait for it)."""
    states = comm.gather(rng) if comm.size > 1 else [rng]
    if comm.rank == 0:
        atomic_save({**blob, "rng": states, "ranks": comm.size}, checkpoint_file(directory))
    comm.barrier()


def load_checkpoint(directory: str | Path) -> dict[str, Any] | None:
    """The checkpoint in ``directory``, or None if there is none yet."""
    path = checkpoint_file(directory)
    if not path.is_file():
        return None
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise ValueError(f"{path} is not a readable training checkpoint ({err})") from err


def check_resumable(blob: dict[str, Any], config: TrainConfig, comm: Comm, path: Path) -> None:
    """Refuse a checkpoint of other options or another number of ranks (before any message)."""
    saved = {k: v for k, v in blob["config"].items() if k not in _FREE_ON_RESUME}
    wanted = {k: v for k, v in config.as_dict().items() if k not in _FREE_ON_RESUME}
    if saved != wanted:
        changed = sorted(k for k in wanted if saved.get(k) != wanted[k])
        raise ValueError(
            f"checkpoint {path} was written with other options ({', '.join(changed)}: "
            f"{[saved.get(k) for k in changed]} there, {[wanted[k] for k in changed]} now)"
        )
    if blob["ranks"] != comm.size:
        raise ValueError(
            f"checkpoint {path} was written by {blob['ranks']} ranks; resume it with as many "
            f"(this run has {comm.size})"
        )
    if blob["epoch"] > config.epochs:
        raise ValueError(f"checkpoint {path} is at epoch {blob['epoch']} > epochs={config.epochs}")

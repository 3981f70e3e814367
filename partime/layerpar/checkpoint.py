"""Checkpoints of layer-parallel training: one shard per pipeline stage, written atomically.

Step k writes ``stage-{r}-of-{P}.step-{k}.pt`` on every stage of the first replica (the other
replicas hold the same weights), then — after all shards of step k are on disk — the first
rank points ``latest.json`` at k and removes older shards. A run killed at any moment leaves
the shards that ``latest.json`` names complete, so resuming from them gives what an
uninterrupted run gives. A shard holds the stage's parameters and buffers (serial names),
its optimizer state, torch's RNG state (which keys dropout) and the caller's ``extra``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from partime.io.atomic import atomic_save, atomic_write
from partime.layerpar.module import LayerParallel

LATEST = "latest.json"


class ShardCheckpoint:
    """Save and resume ``lp`` (and its ``optimizer``) in ``directory``."""

    def __init__(self, directory: str | Path, lp: LayerParallel) -> None:
        self.directory, self.lp = Path(directory), lp
        self.stage, self.stages = lp.grid.pipe.rank, lp.grid.pipe.size

    def _shard(self, step: int) -> Path:
        return self.directory / f"stage-{self.stage}-of-{self.stages}.step-{step}.pt"

    def save(self, step: int, optimizer: torch.optim.Optimizer, extra: Any = None) -> None:
        """Write this stage's shard of ``step`` (collective over the pipeline)."""
        if self.lp.grid.replica == 0:
            shard = {
                "step": step,
                "bounds": self.lp.partition.bounds,
                "state": self.lp.local_state_dict(),
                "optimizer": optimizer.state_dict(),
                "rng": torch.get_rng_state(),  # draws each step's dropout key
                "extra": extra,
            }
            atomic_save(shard, self._shard(step))
            self.lp.grid.pipe.barrier()  # every shard of this step is on disk
            if self.stage == 0:
                with atomic_write(self.directory / LATEST, "w") as handle:
                    json.dump({"step": step, "stages": self.stages}, handle)
            self.lp.grid.pipe.barrier()
            for old in self.directory.glob(f"stage-{self.stage}-of-{self.stages}.step-*.pt"):
                if old != self._shard(step):
                    old.unlink(missing_ok=True)

    def latest(self) -> int | None:
        """The step of the last complete checkpoint, or None (pure: no communication)."""
        path = self.directory / LATEST
        if not path.is_file():
            return None
        latest = json.loads(path.read_text())
        if latest["stages"] != self.stages:
            raise ValueError(
                f"{path} is a checkpoint of {latest['stages']} pipeline stages, "
                f"this run has {self.stages}"
            )
        return int(latest["step"])

    def load(self, optimizer: torch.optim.Optimizer) -> tuple[int, Any] | None:
        """Restore the latest checkpoint into ``lp`` and ``optimizer``: (step, extra), or None
        when there is none. Every rank reads its own stage's shard (no communication)."""
        step = self.latest()
        if step is None:
            return None
        path = self._shard(step)
        if not path.is_file():
            raise FileNotFoundError(
                f"{path} is missing: the checkpoint in {self.directory} is incomplete"
            )
        shard = torch.load(path, map_location="cpu", weights_only=False)
        if tuple(shard["bounds"]) != self.lp.partition.bounds:
            raise ValueError(
                f"{path} was written for the partition {shard['bounds']}, "
                f"this run uses {self.lp.partition.bounds}"
            )
        self.lp.load_local_state_dict(shard["state"])
        optimizer.load_state_dict(shard["optimizer"])
        torch.set_rng_state(shard["rng"])
        return step, shard["extra"]

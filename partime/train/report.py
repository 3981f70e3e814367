"""What a training run shows and leaves: a tqdm bar on rank 0 and a JSON-able summary."""

from __future__ import annotations

from typing import Any

from torch import nn

from partime.comm import Comm
from partime.train.config import TrainConfig
from partime.train.evaluate import Metrics

__all__ = ["ProgressBar", "count_parameters", "training_summary"]


class ProgressBar:
    """A tqdm bar over training steps (stderr) on rank 0 when ``enabled``; a no-op elsewhere."""

    def __init__(self, comm: Comm, enabled: bool, total: int, initial: int = 0) -> None:
        self._bar = None
        if enabled and comm.rank == 0:
            from tqdm.auto import tqdm

            self._bar = tqdm(total=total, initial=initial, desc="train", unit="step", leave=False)

    def advance(self, **postfix: Any) -> None:
        if self._bar is not None:
            self._bar.update()
            if postfix:
                self._bar.set_postfix(postfix, refresh=False)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def training_summary(
    config: TrainConfig,
    history: list[dict[str, Any]],
    best: dict[str, Any] | None,
    test: Metrics | None,
    model: nn.Module,
    comm: Comm,
    test_wall_s: float,
) -> dict[str, Any]:
    """Per-epoch records, the best validation epoch, test metrics of the returned model and the
    wall time (summed over resumed runs)."""
    return {
        "epochs": history,
        "best_epoch": None if best is None else best["epoch"],
        "best_val_loss": None if best is None else best["loss"],
        "best_val_accuracy": None if best is None else best["accuracy"],
        "test_loss": None if test is None else test.loss,
        "test_accuracy": None if test is None else test.accuracy,
        "parameters": count_parameters(model),
        "ranks": comm.size,
        "wall_s": sum(record["wall_s"] for record in history) + test_wall_s,
        "config": config.as_dict(),
    }

"""Manifestation sweep: one trained network evaluated under other discretizations of its
OdeBlocks (scheme × steps), with no data and no re-projection (the parameters are shared)."""

from __future__ import annotations

import time
from collections.abc import Sequence

import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from partime.integrators import get_tableau
from partime.nets.checks import positive_int


def accuracy_and_seconds(
    model: nn.Module, inputs: Tensor, labels: Tensor, batch_size: int = 1000
) -> tuple[float, float]:
    """Eval-mode top-1 accuracy in [0, 1] over inputs (N, ...) and the wall seconds it took."""
    training = model.training
    model.eval()
    correct = 0
    start = time.perf_counter()
    with torch.no_grad():
        for first in range(0, len(labels), batch_size):
            logits = model(inputs[first : first + batch_size])
            correct += int((logits.argmax(-1) == labels[first : first + batch_size]).sum())
    seconds = time.perf_counter() - start
    model.train(training)
    return correct / len(labels), seconds


def manifestation_sweep(
    model: nn.Module,
    inputs: Tensor,
    labels: Tensor,
    schemes: Sequence[str],
    steps: Sequence[int],
    batch_size: int = 1000,
    progress: bool = False,
) -> list[dict]:
    """Accuracy and inference time of ``model.manifest(scheme, n)`` for every scheme × n.

    ``model`` is a ContinuousNet (anything with ``manifest(scheme, n_steps)``); inputs
    (N, *input_shape) and int labels (N,). Rows: {"scheme", "n_steps", "accuracy", "seconds"}.
    """
    if not callable(getattr(model, "manifest", None)):
        raise ValueError(
            f"{type(model).__name__} has no manifest(scheme, n_steps): not a ContinuousNet"
        )
    if len(inputs) != len(labels) or len(labels) == 0:
        raise ValueError(
            f"need as many labels as inputs (> 0), got {len(inputs)} and {len(labels)}"
        )
    for scheme in schemes:
        get_tableau(scheme)
    steps = [positive_int(n, "steps") for n in steps]
    rows = []
    grid = [(scheme, n_steps) for scheme in schemes for n_steps in steps]
    for scheme, n_steps in tqdm(grid, desc="manifestations", disable=not progress):
        accuracy, seconds = accuracy_and_seconds(
            model.manifest(scheme, n_steps), inputs, labels, batch_size
        )
        rows.append(
            {"scheme": scheme, "n_steps": n_steps, "accuracy": accuracy, "seconds": seconds}
        )
    return rows


def format_sweep(rows: Sequence[dict]) -> str:
    """A table: one line per scheme, accuracy % (inference s) per number of steps."""
    steps = sorted({r["n_steps"] for r in rows})
    schemes = list(dict.fromkeys(r["scheme"] for r in rows))
    cell = {(r["scheme"], r["n_steps"]): r for r in rows}
    lines = ["steps".ljust(10) + "".join(str(n).rjust(17) for n in steps)]
    for scheme in schemes:
        entries = []
        for n in steps:
            row = cell.get((scheme, n))
            text = f"{100 * row['accuracy']:.2f}% ({row['seconds']:.2f}s)" if row else "-"
            entries.append(text.rjust(17))
        lines.append(scheme.ljust(10) + "".join(entries))
    return "\n".join(lines)

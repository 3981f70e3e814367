"""MrCAE figures: the global validation error through the stages (the seed's Fig. 5d), the
widen groups' masks over a snapshot (Fig. 5c), and error against parameters and against
encoding size beside the dense baselines (Figs. 10–11)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: no display on compute nodes
import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.ticker  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from partime.io.atomic import atomic_write_with  # noqa: E402
from partime.nets.mrcae import MrCAE, dilate  # noqa: E402
from partime.train.mrcae import StageRecord  # noqa: E402

__all__ = ["benchmark_panels", "error_curve_panel", "mask_panels", "plot_report", "plot_training"]


def _save(fig, path: str | os.PathLike) -> Path:
    fig.tight_layout()
    out = atomic_write_with(lambda handle: fig.savefig(handle, format="png", dpi=110), path)
    plt.close(fig)
    return out


def error_curve_panel(ax, stages: Sequence[StageRecord]) -> None:
    """Global validation error against the cumulative step; a dotted line per new stage."""
    offset = 0
    for record in stages:
        steps, errors = np.array(record.curve, dtype=float).T
        ax.semilogy(offset + steps, errors, lw=0.8, color=f"C{record.level}")
        ax.axvline(offset, color="0.8", lw=0.5, ls=":")
        offset += record.steps
    for level in sorted({r.level for r in stages}):
        ax.plot([], [], color=f"C{level}", label=f"level {level}")
    ax.set(xlabel="training step (all stages)", ylabel="global validation error")
    ax.legend(fontsize=8)


def mask_panels(fig, model: MrCAE, snapshot: np.ndarray, gridspec) -> None:
    """One image per widen group: the snapshot (finest grid) with the group's dilated mask,
    prolonged to the snapshot's size, in red."""
    groups = [
        (k, j, u) for k, level in enumerate(model.levels) for j, u in enumerate(level.unresolved())
    ]
    for i, (k, j, unresolved) in enumerate(groups):
        ax = fig.add_subplot(gridspec[i])
        mask = dilate(unresolved.detach().cpu().double())[None, None]
        full = torch.nn.functional.interpolate(mask, size=snapshot.shape, mode="nearest")[0, 0]
        ax.imshow(snapshot, cmap="gray", origin="lower")
        ax.imshow(np.ma.masked_equal(full.numpy(), 0), cmap="autumn", alpha=0.5, origin="lower")
        ax.set_title(f"R{j + 1}, level {k}", fontsize=8)
        ax.set_xticks([])
        ax.set_yticks([])


def _mask_grid(fig, grid_cell, model: MrCAE, snapshot: np.ndarray) -> None:
    n_groups = sum(len(level.unresolved()) for level in model.levels)
    if n_groups:
        cells = grid_cell.subgridspec((n_groups + 5) // 6, 6)
        mask_panels(fig, model, snapshot, [cells[i // 6, i % 6] for i in range(n_groups)])


def _mask_rows(model: MrCAE) -> int:
    return max(1, (sum(len(level.unresolved()) for level in model.levels) + 5) // 6)


def plot_training(
    stages: Sequence[StageRecord], model: MrCAE, snapshot: np.ndarray, path: str | os.PathLike
) -> Path:
    """The error curve and the masks of a progressive run in one figure."""
    rows = _mask_rows(model)
    fig = plt.figure(figsize=(10, 3.6 + 1.8 * rows))
    grid = fig.add_gridspec(2, 1, height_ratios=[2, rows])
    error_curve_panel(fig.add_subplot(grid[0]), stages)
    _mask_grid(fig, grid[1], model, snapshot)
    return _save(fig, path)


def benchmark_panels(by_parameters, by_encoding, curves: dict[str, Sequence[StageRecord]]) -> None:
    """Validation error against parameters and against encoding size, one line per model."""
    for name, records in curves.items():
        errors = [r.best_val for r in records]
        style = "o-" if name.startswith("MrCAE") else "s--"
        by_parameters.loglog([r.parameters for r in records], errors, style, ms=4, label=name)
        by_encoding.loglog([r.encoding_size for r in records], errors, style, ms=4, label=name)
    by_parameters.set(xlabel="parameters", ylabel="global validation error", title="(Fig. 10)")
    by_encoding.set(xlabel="encoding size", ylabel="global validation error", title="(Fig. 11)")
    by_parameters.legend(fontsize=7)
    for ax in (by_parameters, by_encoding):  # short ranges: log minor labels would overlap
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())


def plot_report(
    curves: dict[str, Sequence[StageRecord]],
    model: MrCAE,
    snapshot: np.ndarray,
    path: str | os.PathLike,
) -> Path:
    """One figure: MrCAE's error through the stages (``curves["MrCAE"]``), error against
    parameters and against encoding size beside the baselines, and the masks over a snapshot."""
    rows = _mask_rows(model)
    fig = plt.figure(figsize=(14, 4 + 2.2 * rows))
    grid = fig.add_gridspec(2, 1, height_ratios=[2, rows])
    top = grid[0].subgridspec(1, 3)
    error_curve_panel(fig.add_subplot(top[0]), curves["MrCAE"])
    benchmark_panels(fig.add_subplot(top[1]), fig.add_subplot(top[2]), curves)
    _mask_grid(fig, grid[1], model, snapshot)
    return _save(fig, path)

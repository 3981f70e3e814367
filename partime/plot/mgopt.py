"""MG/OPT figures in the style of the paper's Figs. 5 and 6: training loss (solid) and
validation accuracy (dashed) against V-cycles, one colour per run; work units beside them."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: no display on compute nodes
import matplotlib.pyplot as plt  # noqa: E402

from partime.io.atomic import atomic_write_with  # noqa: E402
from partime.mgopt.work import TrainingHistory  # noqa: E402


def plot_histories(
    panels: Mapping[str, Mapping[str, TrainingHistory]], path: str | os.PathLike
) -> Path:
    """One row per panel title: [loss and accuracy vs V-cycles | loss vs work units], one line
    per run label (e.g. "L=8"). Written atomically to ``path``."""
    fig, axes = plt.subplots(len(panels), 2, figsize=(11, 3.6 * len(panels)), squeeze=False)
    for (title, runs), (left, right) in zip(panels.items(), axes, strict=True):
        accuracy_axis = left.twinx()
        for index, (label, history) in enumerate(runs.items()):
            color = f"C{index}"
            cycles = [r.v_cycle for r in history.records]
            left.plot(cycles, [r.loss for r in history.records], color=color, label=label)
            accuracy_axis.plot(
                cycles, [r.val_accuracy for r in history.records], "--", color=color, lw=0.9
            )
            right.plot(
                [r.work_units for r in history.records], [r.loss for r in history.records],
                color=color, label=label,
            )  # fmt: skip
        left.set(xscale="log", xlabel="V-cycles", ylabel="training loss (solid)", title=title)
        accuracy_axis.set(ylabel="validation accuracy (dashed)")
        right.set(xscale="log", xlabel="work units (finest-level gradients)", ylabel="loss")
        right.set_title(f"{title}: loss against cost")
        left.legend(loc="lower left", fontsize=8)
    fig.tight_layout()
    target = atomic_write_with(lambda handle: fig.savefig(handle, format="png", dpi=110), path)
    plt.close(fig)
    return target

"""Figures of the networks-as-ODEs experiments: the convergence test and manifestation sweeps."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: no display on compute nodes
import matplotlib.pyplot as plt  # noqa: E402

from partime.io import atomic_write_with  # noqa: E402
from partime.nets.convergence import ConvergenceResult  # noqa: E402


def _save(fig, path: str | os.PathLike) -> Path:
    fig.tight_layout()
    out = atomic_write_with(lambda handle: fig.savefig(handle, dpi=120, format="png"), path)
    plt.close(fig)
    return out


def plot_convergence(result: ConvergenceResult, path: str | os.PathLike) -> Path:
    """One panel per training scheme: error at T vs h under every integrator (dashed: the true
    vector field), the data spacing Δt marked."""
    trained = list(result.errors)
    fig, axes = plt.subplots(1, len(trained), figsize=(4.2 * len(trained), 3.6), squeeze=False)
    for ax, scheme in zip(axes[0], trained, strict=True):
        for used, errors in result.errors[scheme].items():
            (line,) = ax.loglog(result.steps, errors, "o-", ms=3, label=f"integrated with {used}")
            ax.loglog(result.steps, result.baseline[used], "--", lw=0.8, color=line.get_color())
        ax.plot([], [], "k--", lw=0.8, label="true vector field")
        ax.axvline(result.config.dt_data, color="gray", lw=0.8, ls=":", label="h = Δt")
        ax.set(xlabel="h", ylabel="‖x_h(T) − x(T)‖", title=f"G trained in {scheme}")
        ax.invert_xaxis()
        ax.legend(fontsize="small")
    return _save(fig, path)


def plot_manifestation(
    rows: Sequence[dict], path: str | os.PathLike, title: str = "manifestation"
) -> Path:
    """Accuracy and inference time vs n_steps, one line per (label, scheme) of the sweep rows
    (dicts with scheme, n_steps, accuracy, seconds and optionally label)."""
    fig, (acc_ax, time_ax) = plt.subplots(1, 2, figsize=(9, 3.6))
    groups: dict[str, list[dict]] = {}
    for row in rows:
        name = f"{row['label']}: {row['scheme']}" if row.get("label") else row["scheme"]
        groups.setdefault(name, []).append(row)
    for name, group in groups.items():
        group = sorted(group, key=lambda r: r["n_steps"])
        steps = [r["n_steps"] for r in group]
        acc_ax.plot(steps, [100 * r["accuracy"] for r in group], "o-", ms=3, label=name)
        time_ax.plot(steps, [r["seconds"] for r in group], "o-", ms=3, label=name)
    acc_ax.set(xscale="log", xlabel="steps per OdeBlock", ylabel="test accuracy (%)", title=title)
    time_ax.set(xscale="log", xlabel="steps per OdeBlock", ylabel="inference (s)")
    acc_ax.legend(fontsize="small")
    return _save(fig, path)

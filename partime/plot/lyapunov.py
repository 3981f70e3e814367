"""Lyapunov autoencoder figures: relative prediction error against the horizon (the talk's
figures), Ω's eigenvalues beside the unit circle, and Ω's spectral radius through training —
one colour per setting (e.g. κ = 0 against κ > 0), one line per seed."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: no display on compute nodes
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from partime.io.atomic import atomic_write_with  # noqa: E402

__all__ = ["plot_lyapunov"]

Run = tuple[np.ndarray, np.ndarray, Sequence[float]]  # errors, eigenvalues, radii per epoch


def plot_lyapunov(runs: dict[str, Sequence[Run]], path: str | os.PathLike, title: str = "") -> Path:
    """``runs``: setting name -> one (errors, eigenvalues, radii) per seed."""
    fig, axes = plt.subplots(1, 3, figsize=(14, 4))
    circle = np.exp(1j * np.linspace(0, 2 * np.pi, 200))
    axes[1].plot(circle.real, circle.imag, color="0.6", lw=0.8)
    for c, (name, seeds) in enumerate(runs.items()):
        for s, (errors, eigenvalues, radii) in enumerate(seeds):
            label = name if s == 0 else None
            axes[0].semilogy(np.asarray(errors), color=f"C{c}", lw=0.8, alpha=0.8, label=label)
            z = np.asarray(eigenvalues)
            axes[1].plot(z.real, z.imag, "o", ms=3, color=f"C{c}", alpha=0.7, label=label)
            axes[2].plot(np.arange(1, len(radii) + 1), radii, color=f"C{c}", lw=0.8, label=label)
    axes[0].set(xlabel="prediction step", ylabel="relative prediction error", title=title)
    axes[1].set(xlabel="Re", ylabel="Im", title="eigenvalues of Ω", aspect="equal")
    axes[2].axhline(1.0, color="0.6", lw=0.8, ls=":")
    axes[2].set(xlabel="epoch", ylabel="spectral radius of Ω")
    for ax in axes:
        ax.legend(fontsize=8)
    fig.tight_layout()
    out = atomic_write_with(lambda handle: fig.savefig(handle, format="png", dpi=110), path)
    plt.close(fig)
    return out

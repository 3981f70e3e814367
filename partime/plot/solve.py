"""Figure of a parallel-in-time solve: trajectories and the residual per parareal iteration."""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: no display on compute nodes
import matplotlib.pyplot as plt  # noqa: E402

from partime.io.atomic import atomic_write_with  # noqa: E402
from partime.pint.report import SolveReport  # noqa: E402

_MAX_LINES = 8  # trajectories drawn per panel; more would only clutter it


def _curves(report: SolveReport):
    """(times, states) to draw as lines: the dense fine solution if any, else slice states."""
    return report.dense if report.dense is not None else (report.times, report.states)


def _phase_panel(ax, report: SolveReport) -> None:
    """x–z projection for 3-D systems, x–y for 2-D ones: lines, parareal slice states as dots."""
    _, lines = _curves(report)
    j = 2 if lines.shape[-1] == 3 else 1
    for b in range(min(lines.shape[1], _MAX_LINES)):
        (line,) = ax.plot(lines[:, b, 0].numpy(), lines[:, b, j].numpy(), lw=0.7)
        dots = report.states[:, b]
        ax.plot(dots[:, 0].numpy(), dots[:, j].numpy(), ".", ms=3, color=line.get_color())
    ax.set(xlabel="x", ylabel="z" if j == 2 else "y", title="phase projection (dots: slice states)")


def _field_panel(ax, report: SolveReport) -> None:
    """Space–time image of the first trajectory for fields (KS)."""
    t, lines = _curves(report)
    image, t = lines[:, 0].numpy(), t.numpy()
    ax.imshow(image, aspect="auto", origin="lower", extent=(0, image.shape[1], t[0], t[-1]))
    ax.set(xlabel="grid point", ylabel="t", title="first trajectory")


def _components_panel(ax, report: SolveReport) -> None:
    """The first trajectory's components over time (dots: parareal slice states)."""
    t, lines = _curves(report)
    for i in range(min(lines.shape[-1], _MAX_LINES)):
        (line,) = ax.plot(t.numpy(), lines[:, 0, i].numpy(), lw=0.8, label=f"x{i}")
        dots = report.states[:, 0, i].numpy()
        ax.plot(report.times.numpy(), dots, ".", ms=3, color=line.get_color())
    ax.set(xlabel="t", ylabel="state", title="components of trajectory 0")
    ax.legend(fontsize="small", ncol=4)


def _residual_panel(ax, report: SolveReport) -> None:
    residuals = report.result.residuals
    ax.semilogy(range(1, len(residuals) + 1), residuals, "o-")
    ax.axhline(report.config.tol, color="gray", ls="--", lw=0.8, label="tol")
    ax.set(xlabel="iteration k", ylabel="max |U^k - U^{k-1}|", title="parareal residual")
    ax.legend(fontsize="small")


def plot_solve(path: str | os.PathLike, report: SolveReport) -> Path:
    """Write the solve figure (root rank): phase or field panel, components, residuals."""
    if report.states is None:
        raise ValueError("only the root rank holds the solution; plot there")
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    low_dim = 2 <= report.states.shape[-1] <= 3
    (_phase_panel if low_dim else _field_panel)(axes[0], report)
    _components_panel(axes[1], report)
    _residual_panel(axes[2], report)
    err = report.max_abs_err_vs_serial
    vs_serial = "" if err is None else f", max |error| vs serial fine {err:.1e}"
    fig.suptitle(
        f"partime solve {report.config.system}: {report.result.iterations} iterations, "
        f"{report.result.wall_s:.3g} s on {report.ranks} rank(s) ({report.executor}){vs_serial}"
    )
    fig.tight_layout()
    kind = Path(path).suffix.lstrip(".") or "png"
    atomic_write_with(lambda handle: fig.savefig(handle, dpi=110, format=kind), path)
    plt.close(fig)
    return Path(path)

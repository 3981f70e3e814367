"""Results of a parallel-in-time solve: an ``.npz`` file and a one-line JSON summary."""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from partime.io.atomic import atomic_write_with
from partime.pint.report import SolveReport


def _finite_or_none(value: Any) -> Any:
    """JSON has no NaN/Inf: map them to null, recursively through lists and dicts."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, list | tuple):
        return [_finite_or_none(v) for v in value]
    if isinstance(value, dict):
        return {k: _finite_or_none(v) for k, v in value.items()}
    return value


def summary_json(report: SolveReport) -> str:
    """One JSON line with ``iterations``, ``residuals``, ``wall_s``, ``serial_wall_s``,
    ``speedup``, ``max_abs_err_vs_serial`` (null when not measured) and context keys."""
    return json.dumps(_finite_or_none(report.summary()), sort_keys=True)


def write_results(path: str | os.PathLike, report: SolveReport) -> Path:
    """Write ``report`` (root rank) to ``path`` (.npz): ``times`` (N+1,), ``x0`` (batch, dim),
    ``states`` and, when compared, ``serial_states`` (N+1, batch, dim), ``residuals`` (K,),
    ``dense_times``/``dense_states`` (the fine solution, when computed), and JSON
    strings ``config`` and ``summary``."""
    if report.states is None:
        raise ValueError("only the root rank holds the solution; write results there")
    arrays = {
        "times": report.times.numpy(),
        "x0": report.x0.numpy(),
        "states": report.states.numpy(),
        "residuals": np.asarray(report.result.residuals, dtype=np.float64),
        "config": np.asarray(json.dumps(asdict(report.config))),
        "summary": np.asarray(summary_json(report)),
    }
    if report.serial is not None:
        arrays["serial_states"] = report.serial.states.numpy()
    if report.dense is not None:
        arrays["dense_times"], arrays["dense_states"] = (a.numpy() for a in report.dense)
    # a file handle keeps numpy from appending ".npz"
    return atomic_write_with(lambda handle: np.savez_compressed(handle, **arrays), path)


def read_results(path: str | os.PathLike) -> dict[str, Any]:
    """Arrays of a results file, with ``config`` and ``summary`` decoded to dicts."""
    with np.load(path, allow_pickle=False) as data:
        out: dict[str, Any] = {key: data[key] for key in data.files}
    for key in ("config", "summary"):
        out[key] = json.loads(str(out[key]))
    return out

"""``SolveConfig``: one parallel-in-time solve, validated on construction (every rank, before
any communication). Each field is one ``partime solve`` option (``partime.options``)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from partime.comm import RUN_BACKENDS as BACKENDS  # serial: all slices batched in one process
from partime.pint.spec import SPEC_HELP


def _help(text: str, **more) -> dict:
    return {"help": text, **more}


@dataclass(frozen=True)
class SolveConfig:
    """One parallel-in-time solve (see ``partime solve --help`` for each field)."""

    system: str = field(
        metadata=_help("built-in system (lorenz, vdp, ks, ...), module:function, or 'none'")
    )
    t_end: float = field(metadata=_help("end time T (> 0)"))
    slices: int = field(metadata=_help("number of time slices N"))
    fine: str = field(metadata=_help(f"fine propagator: {SPEC_HELP}"))
    coarse: str = field(metadata=_help(f"coarse propagator: {SPEC_HELP}"))
    tol: float = field(default=1e-10, metadata=_help("absolute tolerance on max |U^k-U^{k-1}|"))
    rtol: float = field(
        default=0.0, metadata=_help("relative tolerance: stop at residual <= tol + rtol·max|U|")
    )
    max_iter: int | None = field(default=None, metadata=_help("iteration cap (0 = hybrid)"))
    backend: str = field(default="auto", metadata=_help("where ranks come from", choices=BACKENDS))
    workers: int | None = field(
        default=None, metadata=_help("Ray actors (--backend ray; default: one per CPU)")
    )
    address: str | None = field(default=None, metadata=_help("Ray cluster address HOST:PORT"))
    dim: int | None = field(default=None, metadata=_help("state dimension (module:function)"))
    x0: tuple[float, ...] | None = field(default=None, metadata=_help("initial state, e.g. 1,1,1"))
    batch: int = field(default=1, metadata=_help("number of trajectories"))
    seed: int = field(default=0, metadata=_help("seed of the initial-state draws"))
    checkpoint: str | None = field(
        default=None, metadata=_help("directory for every rank's state after each iteration")
    )
    resume: bool = field(default=False, metadata=_help("continue from --checkpoint"))
    progress: bool = field(default=True, metadata=_help("progress bar on rank 0"))
    dense: bool = field(
        default=False, metadata=_help("also compute the fine solution between slice times")
    )

    def __post_init__(self) -> None:
        def bad(name: str, value: object, need: str) -> ValueError:
            return ValueError(f"{name} must be {need}, got {value!r}")

        if not (isinstance(self.t_end, int | float) and math.isfinite(self.t_end)):
            raise bad("t_end", self.t_end, "a finite number")
        if not self.t_end > 0:
            raise ValueError(f"the end time must be T > 0, got t_end={self.t_end}")
        for name in ("slices", "batch"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise bad(name, value, "a positive integer")
        for name in ("tol", "rtol"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and math.isfinite(value) and value >= 0):
                raise bad(name, value, "a finite number >= 0")
        if self.max_iter is not None and (not isinstance(self.max_iter, int) or self.max_iter < 0):
            raise bad("max_iter", self.max_iter, "None or an integer >= 0")
        if self.backend not in BACKENDS:
            raise bad("backend", self.backend, f"one of {', '.join(BACKENDS)}")
        if self.workers is not None and (not isinstance(self.workers, int) or self.workers < 1):
            raise bad("workers", self.workers, "a positive integer")
        if (self.workers is not None or self.address is not None) and self.backend != "ray":
            raise ValueError("workers and address apply to backend 'ray' only")
        if self.resume and self.checkpoint is None:
            raise ValueError("resume needs the checkpoint directory of the run to continue")
        if self.x0 is not None:
            if len(self.x0) == 0 or not all(math.isfinite(v) for v in self.x0):
                raise bad("x0", self.x0, "a non-empty list of finite numbers")
            if self.dim is not None and len(self.x0) != self.dim:
                raise ValueError(f"x0 has {len(self.x0)} components but dim={self.dim}")
        if self.system == "none" and self.x0 is None:
            raise ValueError("a data-driven solve (system 'none') needs the initial state --x0")

    @property
    def slice_length(self) -> float:
        return self.t_end / self.slices

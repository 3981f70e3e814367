"""Vorticity snapshots of the flow past a cylinder (D2Q9 lattice Boltzmann), cached as .npz.

The papers' cylinder file is not public, so it is generated here: a uniform inflow U past a
cylinder of diameter D at Re = U·D/ν, a transverse kick behind the cylinder to start the
shedding at once, ``warmup`` lattice steps until the wake is periodic, then ``snapshots``
vorticity fields every ``sample_every`` steps (0.2 D/U by default, ~30 per shedding period as
in the DMD-book data). The lift (momentum exchange) over the sampled window gives the
Strouhal number St = f·D/U. The domain is 20 D × 20 D (blockage 0.05): at the 400×100, D = 20
grid (blockage 0.2) the confinement raised St to 0.20 (measured), the literature's unconfined
value is ≈ 0.165. Absorbing layers at the top, bottom and outlet stop acoustic ringing.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from partime.dynamics.lbm import (
    Lattice,
    LatticeFlow,
    cylinder_mask,
    sponge,
    tau_from_reynolds,
    vorticity,
)
from partime.io.atomic import atomic_write_with
from partime.options import option

#: Literature Strouhal number of the unconfined cylinder wake at Re = 100 (e.g. Williamson 1996).
STROUHAL_RE100 = 0.165


@dataclass(frozen=True)
class CylinderConfig:
    """Lattice flow past a cylinder; every length in lattice nodes, time in lattice steps."""

    re: float = option(100.0, "Reynolds number U·D/ν")
    snapshots: int = option(151, "vorticity snapshots to keep")
    nx: int = option(240, "lattice nodes along the flow")
    ny: int = option(240, "lattice nodes across the flow (periodic)")
    diameter: int = option(12, "cylinder diameter D in nodes")
    velocity: float = option(0.1, "inflow velocity U (lattice units)")
    upstream: float = option(5.0, "inlet-to-centre distance in D")
    warmup: int = option(6000, "lattice steps before the first snapshot")
    sample_every: int = option(24, "lattice steps between snapshots")
    sponge: int = option(8, "absorbing-layer width in nodes (0: none)")
    device: str = option("cpu", "where to run: cpu, cuda, cuda:1, ...")
    dtype: str = option("float32", "float32 or float64", choices=("float32", "float64"))
    compile: bool = option(True, "fuse the collision with inductor")

    def __post_init__(self) -> None:
        for name in ("snapshots", "nx", "ny", "diameter", "sample_every"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if isinstance(self.warmup, bool) or not isinstance(self.warmup, int) or self.warmup < 0:
            raise ValueError(f"warmup must be an integer >= 0, got {self.warmup!r}")
        if not (isinstance(self.re, (int, float)) and math.isfinite(self.re) and self.re > 0):
            raise ValueError(f"re must be a positive number, got {self.re!r}")
        if not 0 < self.velocity < 0.3:
            raise ValueError(f"velocity must be in (0, 0.3) (low Mach number), got {self.velocity}")
        if self.tau <= 0.5 + 1e-3:
            raise ValueError(
                f"re={self.re} with D={self.diameter}, U={self.velocity} gives tau={self.tau:.4f}"
                " (too close to 0.5: unstable); raise --diameter or --velocity"
            )
        centre = self.upstream * self.diameter
        if not (self.diameter < centre < self.nx - 3 * self.diameter):
            raise ValueError(f"upstream={self.upstream} puts the cylinder outside the domain")
        if not 0 <= self.sponge < min(self.ny // 4, self.nx // 4):
            raise ValueError(
                f"sponge must be in [0, {min(self.ny, self.nx) // 4}), got {self.sponge}"
            )
        if self.dtype not in ("float32", "float64"):
            raise ValueError(f"dtype must be float32 or float64, got {self.dtype!r}")

    @property
    def tau(self) -> float:
        return tau_from_reynolds(self.re, self.velocity, self.diameter)

    @property
    def centre(self) -> tuple[float, float]:
        """Cylinder centre (x, y) in nodes."""
        return (self.upstream * self.diameter, self.ny / 2)

    @property
    def snapshot_dt(self) -> float:
        """Time between snapshots in units of D/U."""
        return self.sample_every * self.velocity / self.diameter


@dataclass(frozen=True)
class CylinderFlow:
    """Vorticity (snapshots, ny, nx) in units U/D, x to the right, y up (row 0 at the bottom);
    the lift on the cylinder every lattice step of the sampled window; the measured St."""

    vorticity: np.ndarray
    lift: np.ndarray
    strouhal: float
    config: CylinderConfig
    wall_s: float = 0.0


def shedding_frequency(signal: np.ndarray, dt: float = 1.0) -> float:
    """Frequency of a periodic signal from the mean spacing of its upward zero crossings
    (after removing its mean; crossings placed by linear interpolation). Needs >= 2 periods."""
    x = np.asarray(signal, dtype=np.float64)
    x = x - x.mean()
    up = np.flatnonzero((x[:-1] < 0) & (x[1:] >= 0))
    if len(up) < 3:
        raise ValueError(f"the signal crosses zero upward {len(up)} times: too short to time")
    crossings = up + x[up] / (x[up] - x[up + 1])
    return 1.0 / (float(np.diff(crossings).mean()) * dt)


def generate_cylinder(config: CylinderConfig, progress: bool = False) -> CylinderFlow:
    """Run the lattice flow (on ``config.device``) and return its snapshots and St."""
    from tqdm.auto import tqdm

    start = time.perf_counter()
    dtype = getattr(torch, config.dtype)
    d, nx, ny = config.diameter, config.nx, config.ny
    lattice = Lattice(nx, ny, cylinder_mask(nx, ny, config.centre, d), walls="periodic")
    damping = sponge(nx, ny, config.sponge, 0.1) if config.sponge else None
    flow = LatticeFlow(
        lattice, config.tau, config.velocity, config.device, dtype, config.compile, damping
    )
    cx, cy = config.centre
    flow.kick(0.5 * config.velocity, (cx + d, cy), d / 2)
    total = config.warmup + (config.snapshots - 1) * config.sample_every + 1
    lift = torch.empty(total - config.warmup, dtype=dtype, device=flow.device)
    fields = []
    with tqdm(total=total, desc="LBM cylinder", disable=not progress, leave=False) as bar:
        for n in range(total):
            flow.step()
            if n >= config.warmup:
                lift[n - config.warmup] = flow.force[1]
                if (n - config.warmup) % config.sample_every == 0:
                    fields.append(vorticity(flow.fields()[1]) * (d / config.velocity))
            if n % 100 == 99:
                bar.update(100)
    lift_np = lift.double().cpu().numpy()
    strouhal = shedding_frequency(lift_np) * d / config.velocity
    snapshots = torch.stack(fields).float().cpu().numpy()
    if not np.isfinite(snapshots).all():
        raise FloatingPointError("the lattice flow diverged (NaN/Inf): raise tau or lower U")
    return CylinderFlow(snapshots, lift_np, strouhal, config, time.perf_counter() - start)


def save_cylinder(flow: CylinderFlow, path: str | os.PathLike) -> Path:
    """Write the flow to ``path`` (.npz, atomically)."""
    meta = json.dumps({**asdict(flow.config), "strouhal": flow.strouhal, "wall_s": flow.wall_s})

    def write(handle) -> None:
        np.savez(handle, vorticity=flow.vorticity, lift=flow.lift, meta=np.array(meta))

    return atomic_write_with(write, path)


def load_cylinder(path: str | os.PathLike) -> CylinderFlow:
    """Read what ``save_cylinder`` wrote."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no cylinder data at {path}")
    with np.load(path) as stored:
        meta = json.loads(str(stored["meta"]))
        strouhal, wall_s = meta.pop("strouhal"), meta.pop("wall_s")
        return CylinderFlow(
            stored["vorticity"], stored["lift"], strouhal, CylinderConfig(**meta), wall_s
        )


def cylinder_flow(
    config: CylinderConfig, cache_dir: str | os.PathLike, progress: bool = False
) -> CylinderFlow:
    """The flow of ``config`` from ``cache_dir`` (generated and stored on the first call)."""
    numbers = {k: v for k, v in asdict(config).items() if k not in ("device", "compile")}
    key = hashlib.sha1(json.dumps(numbers, sort_keys=True).encode()).hexdigest()[:12]
    path = Path(cache_dir) / f"cylinder_re{config.re:g}_n{config.snapshots}_{key}.npz"
    if path.exists():
        return load_cylinder(path)
    flow = generate_cylinder(config, progress)
    save_cylinder(flow, path)
    return flow

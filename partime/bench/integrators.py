"""RK4 on Lorenz: partime eager and fast paths vs torchdiffeq and numpy (state-updates/s).

One state update = advancing one trajectory by one RK4 step (batch x steps per run), the
same count for every contender. Slow contenders run fewer steps at large batch; the table
says how many, and compares rates.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Callable

import numpy as np
import torch

from partime._optional import require
from partime.dynamics import Lorenz
from partime.integrators import integrate
from partime.integrators.fast import MAX_BLOCK

# The hand-fused C loop, fp64 Lorenz RK4 at batch 65,536 on the reference machine.
REFERENCE_PEAK = 1.51e9
DT = 1e-3


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--steps", type=int, default=10_000, help="RK4 steps (default 10000)")
    parser.add_argument(
        "--batches", type=str, default="1,1024,65536", help="comma-separated batch sizes"
    )
    parser.add_argument(
        "--slow-steps",
        type=int,
        default=2_000,
        help="steps for eager/torchdiffeq/numpy (divided by 10 above batch 1024; default 2000)",
    )
    parser.add_argument("--quick", action="store_true", help="1000 steps at batch 1 and 1024")
    parser.add_argument(
        "--peak",
        type=float,
        default=REFERENCE_PEAK,
        help=f"reference peak in state-updates/s (default {REFERENCE_PEAK:.3g}, a fused C loop)",
    )
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")


def _numpy_rk4(x: np.ndarray, n: int, system: Lorenz) -> np.ndarray:
    def f(x, y, z):
        return system.sigma * (y - x), x * (system.rho - z) - y, x * y - system.beta * z

    s = (x[:, 0].copy(), x[:, 1].copy(), x[:, 2].copy())
    for _ in range(n):
        k1 = f(*s)
        k2 = f(*(a + 0.5 * DT * k for a, k in zip(s, k1, strict=True)))
        k3 = f(*(a + 0.5 * DT * k for a, k in zip(s, k2, strict=True)))
        k4 = f(*(a + DT * k for a, k in zip(s, k3, strict=True)))
        s = tuple(
            a + DT / 6 * (p + 2 * q + 2 * r + w)
            for a, p, q, r, w in zip(s, k1, k2, k3, k4, strict=True)
        )
    return np.stack(s, axis=1)


def _timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _contenders(system: Lorenz, x0: torch.Tensor) -> dict[str, Callable[[int], object]]:
    odeint = require("torchdiffeq", "bench").odeint

    def torchdiffeq_rk4(n: int) -> object:
        t = torch.tensor([0.0, n * DT], dtype=torch.float64)
        # torchdiffeq's "rk4" is the 3/8 rule: same cost (4 stages) as classic RK4.
        return odeint(system, x0, t, method="rk4", options={"step_size": DT})

    return {
        "partime eager": lambda n: integrate(system, x0, 0.0, DT, n, fast=False),
        "torchdiffeq rk4": torchdiffeq_rk4,
        "numpy loop": lambda n: _numpy_rk4(x0.numpy(), n, system),
    }


def _bench_batch(batch: int, steps: int, slow_steps: int) -> list[dict]:
    system = Lorenz()
    x0 = torch.randn(batch, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    x0 = x0 + torch.tensor([0.0, 0.0, 25.0], dtype=torch.float64)
    rows = []
    with torch.no_grad():
        compile_s = _timed(lambda: integrate(system, x0, 0.0, DT, MAX_BLOCK, fast=True))
        wall = _timed(lambda: integrate(system, x0, 0.0, DT, steps, fast=True))
        rows.append(
            {
                "contender": "partime fast",
                "batch": batch,
                "steps": steps,
                "wall_s": wall,
                "compile_s": compile_s,
            }
        )
        n_slow = min(steps, slow_steps if batch <= 1024 else max(slow_steps // 10, 1))
        for name, fn in _contenders(system, x0).items():
            rows.append(
                {
                    "contender": name,
                    "batch": batch,
                    "steps": n_slow,
                    "wall_s": _timed(lambda fn=fn: fn(n_slow)),
                    "compile_s": None,
                }
            )
    for row in rows:
        row["updates_per_s"] = row["batch"] * row["steps"] / row["wall_s"]
    return rows


def _print_table(rows: list[dict], peak: float) -> None:
    reference = {
        r["batch"]: r["updates_per_s"] for r in rows if r["contender"] == "torchdiffeq rk4"
    }
    print(
        f"{'batch':>7} {'contender':<16} {'steps':>6} {'updates/s':>10} "
        f"{'x torchdiffeq':>13} {'% of peak':>9} {'compile s':>9}"
    )
    for r in rows:
        compile_s = "" if r["compile_s"] is None else f"{r['compile_s']:.1f}"
        print(
            f"{r['batch']:>7} {r['contender']:<16} {r['steps']:>6} {r['updates_per_s']:>10.3g} "
            f"{r['updates_per_s'] / reference[r['batch']]:>13.1f} "
            f"{100 * r['updates_per_s'] / peak:>8.2f}% {compile_s:>9}"
        )


def run(args: argparse.Namespace) -> int:
    """Run every contender at every batch size and print (or dump as JSON) the comparison."""
    steps, batches = args.steps, [int(b) for b in args.batches.split(",")]
    if args.quick:
        steps, batches = 1_000, [1, 1024]
    if steps < 1 or args.slow_steps < 1 or args.threads < 1 or min(batches) < 1:
        raise ValueError(
            f"--steps, --slow-steps, --threads and --batches must be positive, got {steps}, "
            f"{args.slow_steps}, {args.threads}, {batches}"
        )
    torch.set_num_threads(args.threads)
    rows = [row for batch in batches for row in _bench_batch(batch, steps, args.slow_steps)]
    if args.json:
        print(json.dumps({"peak": args.peak, "threads": args.threads, "rows": rows}, indent=1))
        return 0
    print(
        f"Lorenz, classic RK4, float64, dt={DT}, {args.threads} torch thread(s). "
        f"One state update = one trajectory advanced one step; rates compare runs of "
        f"different lengths. Peak = {args.peak:.3g} updates/s (--peak). Fast path: compiled "
        f"blocks of {MAX_BLOCK} steps; compile s = first call, excluded from its rate. "
        f"Load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores at the end: rates "
        "from a busy machine understate the fast path."
    )
    _print_table(rows, args.peak)
    return 0

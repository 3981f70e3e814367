"""RK4 on Lorenz: partime's paths vs plain loops, scipy DOP853 and torchdiffeq (updates/s).

One state update = advancing one trajectory by one RK4 step (batch x steps per run), the
same count for every contender; slow contenders run fewer steps, and rates compare. At small
batches the plain loops a person would write first (numpy, pure-Python floats) and scipy's
DOP853 at the tolerance whose error matches RK4's are the bar; at large batches the bar is a
fused C loop (``--peak``). Kernel compile time is measured cold (empty cache) and cached.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable

import numpy as np
import torch

from partime._optional import available
from partime.dynamics import Lorenz
from partime.integrators import fast as fast_path
from partime.integrators import get_tableau, integrate, kernels

# The hand-fused C loop, fp64 Lorenz RK4 at batch 65,536 on the reference machine.
REFERENCE_PEAK = 1.51e9
# Batches up to this size also run the pure-Python loop and scipy's DOP853.
SMALL_BATCH = 16
DOP853_TOLERANCES = [10.0**-k for k in range(4, 14)]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--steps", type=int, default=10_000, help="RK4 steps (default 10000)")
    parser.add_argument("--dt", type=float, default=1e-3, help="step size (default 1e-3)")
    parser.add_argument(
        "--batches", type=str, default="1,16,1024,65536", help="comma-separated batch sizes"
    )
    parser.add_argument(
        "--slow-steps",
        type=int,
        default=2_000,
        help="steps for eager/torchdiffeq/loops (divided by 10 above batch 1024; default 2000)",
    )
    parser.add_argument("--quick", action="store_true", help="1000 steps at batch 1, 16, 1024")
    parser.add_argument(
        "--peak",
        type=float,
        default=REFERENCE_PEAK,
        help=f"reference peak in state-updates/s (default {REFERENCE_PEAK:.3g}, a fused C loop)",
    )
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")


def _numpy_rk4(x: np.ndarray, n: int, dt: float, system: Lorenz) -> np.ndarray:
    def f(x, y, z):
        return system.sigma * (y - x), x * (system.rho - z) - y, x * y - system.beta * z

    s = (x[:, 0].copy(), x[:, 1].copy(), x[:, 2].copy())
    for _ in range(n):
        k1 = f(*s)
        k2 = f(*(a + 0.5 * dt * k for a, k in zip(s, k1, strict=True)))
        k3 = f(*(a + 0.5 * dt * k for a, k in zip(s, k2, strict=True)))
        k4 = f(*(a + dt * k for a, k in zip(s, k3, strict=True)))
        s = tuple(
            a + dt / 6 * (p + 2 * q + 2 * r + w)
            for a, p, q, r, w in zip(s, k1, k2, k3, k4, strict=True)
        )
    return np.stack(s, axis=1)


def _python_rk4(x: np.ndarray, n: int, dt: float, system: Lorenz) -> list:
    """Row by row on Python floats, every stage written out (the fastest plain Python)."""
    sigma, rho, beta, h = system.sigma, system.rho, system.beta, 0.5 * dt
    out = []
    for x1, x2, x3 in x.tolist():
        for _ in range(n):
            a1, a2, a3 = sigma * (x2 - x1), x1 * (rho - x3) - x2, x1 * x2 - beta * x3
            y1, y2, y3 = x1 + h * a1, x2 + h * a2, x3 + h * a3
            b1, b2, b3 = sigma * (y2 - y1), y1 * (rho - y3) - y2, y1 * y2 - beta * y3
            y1, y2, y3 = x1 + h * b1, x2 + h * b2, x3 + h * b3
            c1, c2, c3 = sigma * (y2 - y1), y1 * (rho - y3) - y2, y1 * y2 - beta * y3
            y1, y2, y3 = x1 + dt * c1, x2 + dt * c2, x3 + dt * c3
            d1, d2, d3 = sigma * (y2 - y1), y1 * (rho - y3) - y2, y1 * y2 - beta * y3
            x1 += dt / 6 * (a1 + 2 * b1 + 2 * c1 + d1)
            x2 += dt / 6 * (a2 + 2 * b2 + 2 * c2 + d2)
            x3 += dt / 6 * (a3 + 2 * b3 + 2 * c3 + d3)
        out.append((x1, x2, x3))
    return out


def _dop853(x: np.ndarray, t_end: float, tol: float, system: Lorenz) -> np.ndarray:
    """scipy's DOP853 on all rows as one system, rtol = atol = ``tol``."""
    from scipy.integrate import solve_ivp

    def rhs(t: float, y: np.ndarray) -> np.ndarray:
        return np.stack(system.components(t, *y.reshape(-1, 3).T), axis=1).ravel()

    solution = solve_ivp(rhs, (0.0, t_end), x.ravel(), method="DOP853", rtol=tol, atol=tol)
    return solution.y[:, -1].reshape(x.shape)


def _matching_tolerance(x: np.ndarray, t_end: float, rk4_end: np.ndarray, system: Lorenz):
    """(tolerance, error, RK4's error): the loosest DOP853 tolerance in 1e-4..1e-13 whose error
    against a 1e-13 reference is at most RK4's."""
    reference = _dop853(x, t_end, 1e-13, system)
    rk4_error = float(np.abs(rk4_end - reference).max())
    for tol in DOP853_TOLERANCES:
        error = float(np.abs(_dop853(x, t_end, tol, system) - reference).max())
        if error <= rk4_error:
            break
    return tol, error, rk4_error


def _timed(fn: Callable[[], object], budget_s: float = 0.5) -> dict:
    """Best wall and CPU (this process) seconds of ``fn`` over repeats within ``budget_s``: on
    a shared machine the CPU time shows the speed that other processes' load hides."""
    best, cpu, spent = float("inf"), float("inf"), 0.0
    while spent < budget_s or best == float("inf"):
        start, start_cpu = time.perf_counter(), time.process_time()
        fn()
        elapsed = time.perf_counter() - start
        best, cpu = min(best, elapsed), min(cpu, time.process_time() - start_cpu)
        spent += elapsed
        if elapsed > budget_s / 3:
            break
    return {"wall_s": best, "cpu_s": max(cpu, 1e-9)}


def _compile_times(system: Lorenz, dtype: torch.dtype) -> dict:
    """Seconds to get the kernel cold (trace + compile, empty cache) and cached (trace + load
    from a fresh copy of the cache), each with nothing in memory."""
    saved = os.environ.get(kernels.CACHE_ENV)
    tableau = get_tableau("rk4")
    get = lambda: fast_path.kernel_for(system, tableau, dtype, 1, 1, fast=True)  # noqa: E731
    try:
        with tempfile.TemporaryDirectory() as cold, tempfile.TemporaryDirectory() as copy:
            os.environ[kernels.CACHE_ENV] = cold
            fast_path.forget_kernels()
            start = time.perf_counter()
            get()
            cold_s = time.perf_counter() - start
            # A copy has other inodes, so the library is really loaded again, not reused.
            shutil.copytree(cold, copy, dirs_exist_ok=True)
            os.environ[kernels.CACHE_ENV] = copy
            fast_path.forget_kernels()
            start = time.perf_counter()
            get()
            cached_s = time.perf_counter() - start
    finally:
        if saved is None:
            os.environ.pop(kernels.CACHE_ENV, None)
        else:
            os.environ[kernels.CACHE_ENV] = saved
        fast_path.forget_kernels()
    return {"cold_s": cold_s, "cached_s": cached_s}


def _first_call(system: Lorenz, x0: torch.Tensor, dt: float, steps: int) -> dict:
    """The default path's first call in this process, with whatever it compiles or loads."""
    fast_path.forget_kernels()
    before = dict(kernels.STATS)
    start, start_cpu = time.perf_counter(), time.process_time()
    integrate(system, x0, 0.0, dt, steps)
    wall, cpu = time.perf_counter() - start, time.process_time() - start_cpu
    how = "eager (a compile would not pay back)"
    if kernels.STATS["compiled"] > before["compiled"]:
        how = "kernel compiled"
    elif kernels.STATS["loaded"] > before["loaded"]:
        how = "kernel from the disk cache"
    return {"wall_s": wall, "cpu_s": cpu, "path": how}


def _contenders(system: Lorenz, x0: torch.Tensor, dt: float) -> dict[str, Callable[[int], object]]:
    contenders = {
        "partime eager": lambda n: integrate(system, x0, 0.0, dt, n, fast=False),
        "numpy loop": lambda n: _numpy_rk4(x0.numpy(), n, dt, system),
    }
    if x0.shape[0] <= SMALL_BATCH:
        contenders["python loop"] = lambda n: _python_rk4(x0.numpy(), n, dt, system)
    if available("torchdiffeq"):
        from torchdiffeq import odeint

        def torchdiffeq_rk4(n: int) -> object:
            t = torch.tensor([0.0, n * dt], dtype=torch.float64)
            # torchdiffeq's "rk4" is the 3/8 rule: same cost (4 stages) as classic RK4.
            return odeint(system, x0, t, method="rk4", options={"step_size": dt})

        contenders["torchdiffeq rk4"] = torchdiffeq_rk4
    return contenders


def _row(contender: str, batch: int, steps: int, **measured) -> dict:
    return {"contender": contender, "batch": batch, "steps": steps, **measured}


def _bench_batch(batch: int, steps: int, slow_steps: int, dt: float) -> list[dict]:
    system = Lorenz()
    x0 = torch.randn(batch, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    x0 = x0 + torch.tensor([0.0, 0.0, 25.0], dtype=torch.float64)
    rows = []
    with torch.no_grad():
        first = _first_call(system, x0, dt, steps)
        rows.append(_row("partime default, 1st", batch, steps, **first))
        kernel = lambda: integrate(system, x0, 0.0, dt, steps, fast=True)  # noqa: E731
        rows.append(_row("partime kernel", batch, steps, **_timed(kernel)))
        n_slow = min(steps, slow_steps if batch <= 1024 else max(slow_steps // 10, 1))
        for name, fn in _contenders(system, x0, dt).items():
            rows.append(_row(name, batch, n_slow, **_timed(lambda fn=fn: fn(n_slow), 0.2)))
        if batch <= SMALL_BATCH:
            x = x0.numpy()
            tol, error, rk4_error = _matching_tolerance(x, steps * dt, kernel().numpy(), system)
            timed = _timed(lambda: _dop853(x, steps * dt, tol, system), 0.2)
            rows.append(_row("scipy DOP853", batch, steps, **timed, tol=tol, error=error))
            rows[1]["error"] = rk4_error
    for row in rows:
        row["updates_per_s"] = row["batch"] * row["steps"] / row["wall_s"]
        if "cpu_s" in row:
            row["updates_per_cpu_s"] = row["batch"] * row["steps"] / row["cpu_s"]
    return rows


def _print_table(rows: list[dict], peak: float) -> None:
    print(
        f"{'batch':>7} {'contender':<22} {'steps':>6} {'wall s':>9} {'CPU s':>9} "
        f"{'updates/s':>10} {'per CPU s':>10} {'% of peak':>9}  note"
    )
    for r in rows:
        note = ""
        if "path" in r:
            note = f"{r['path']}, all included"
        elif "tol" in r:
            note = f"rtol=atol={r['tol']:.0e}, error {r['error']:.1e}"
        elif "error" in r:
            note = f"error {r['error']:.1e} vs DOP853 1e-13"
        print(
            f"{r['batch']:>7} {r['contender']:<22} {r['steps']:>6} {r['wall_s']:>9.2e} "
            f"{r['cpu_s']:>9.2e} {r['updates_per_s']:>10.3g} {r['updates_per_cpu_s']:>10.3g} "
            f"{100 * r['updates_per_s'] / peak:>8.2f}%  {note}"
        )


def run(args: argparse.Namespace) -> int:
    """Run every contender at every batch size and print (or dump as JSON) the comparison."""
    steps, batches = args.steps, [int(b) for b in args.batches.split(",")]
    if args.quick:
        steps, batches = 1_000, [1, SMALL_BATCH, 1024]
    if steps < 1 or args.slow_steps < 1 or args.threads < 1 or min(batches) < 1:
        raise ValueError(
            f"--steps, --slow-steps, --threads and --batches must be positive, got {steps}, "
            f"{args.slow_steps}, {args.threads}, {batches}"
        )
    if not args.dt > 0:
        raise ValueError(f"--dt must be positive, got {args.dt}")
    torch.set_num_threads(args.threads)
    rows = [
        row for batch in batches for row in _bench_batch(batch, steps, args.slow_steps, args.dt)
    ]
    compile_s = _compile_times(Lorenz(), torch.float64)
    load = os.getloadavg()
    if args.json:
        summary = {"peak": args.peak, "threads": args.threads, "compile": compile_s}
        print(json.dumps({**summary, "load_average": load, "rows": rows}, indent=1))
        return 0
    print(
        f"Lorenz, classic RK4, float64, dt={args.dt}, {args.threads} thread(s). One state "
        "update = one trajectory advanced one step; rates compare runs of different lengths. "
        f"Peak = {args.peak:.3g} updates/s (--peak), against wall time. 'partime default, 1st' "
        "is the first call of integrate() in this process; 'partime kernel' the same call "
        "warm. CPU s: this process's CPU time (all its threads)."
    )
    _print_table(rows, args.peak)
    print(
        f"Kernel compile (trace + C compiler + load): cold {compile_s['cold_s']:.3f} s, "
        f"cached {compile_s['cached_s']:.4f} s. Load average {load[0]:.1f} on "
        f"{os.cpu_count()} cores: rates from a busy machine understate the fast contenders."
    )
    return 0

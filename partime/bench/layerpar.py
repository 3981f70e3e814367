"""Layer-parallel training step vs serial: speed, bound, exact gradients, memory, Ray vs MPI.

The network is a deep OdeBlock MLP (stem, ``steps`` Euler steps of a width-``width`` tanh
layer with piecewise-constant weights, one module per step, head), float64, one thread per
process. Side by side
in one run: the serial step (full batch, one process), the same pipeline on one rank (its
micro-batches one after another), the pipelined step on ``--ranks`` MPI ranks (1F1B and
GPipe) and on as many Ray actors (1F1B), each launched here. ``speedup`` is the one-rank
pipeline's time per step over the 1F1B MPI run's (median of ``--repeat``; the comparison
``bound``, the schedule's P·M/(M+P−1) for balanced stages, is about),
``speedup_vs_full_batch`` the full-batch serial step's over it (micro-batching's own cost
included), ``max_grad_diff_vs_serial`` the largest difference of any loss, output or
parameter gradient from the serial model's, ``memory_ratio`` the largest rank's peak saved
activations over the serial step's, ``ray_vs_mpi`` Ray's step time over MPI's.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass

import torch
from torch import Tensor, nn

from partime.comm import Comm, from_env
from partime.comm.serial import SerialComm
from partime.layerpar import LayerParallel
from partime.layerpar.memory import ActivationMeter


@dataclass(frozen=True)
class BenchConfig:
    width: int = 256
    steps: int = 64
    batch: int = 2048
    micro_batches: int = 8
    repeat: int = 3
    schedule: str = "1f1b"


class EulerStep(nn.Module):
    """One explicit Euler step x + h·tanh(W x + b) of a piecewise-constant OdeBlock."""

    def __init__(self, width: int, h: float) -> None:
        super().__init__()
        self.linear, self.h = nn.Linear(width, width), h

    def forward(self, x: Tensor) -> Tensor:
        return x + self.h * torch.tanh(self.linear(x))


def deep_ode_mlp(width: int, steps: int, n_in: int = 32, n_out: int = 10) -> nn.Sequential:
    """stem, ``steps`` Euler steps of ẋ = tanh(W(t) x + b(t)) on [0, 1] with one weight piece
    per step (partime.nets' Euler + piecewise-constant OdeBlock, written as one module per
    step: the OdeBlock's stacked coefficients make every step's gradient fill the whole
    stack, which dominates when each rank runs its steps one micro-batch at a time), head."""
    steps_ = [EulerStep(width, 1.0 / steps) for _ in range(steps)]
    return nn.Sequential(nn.Linear(n_in, width), *steps_, nn.Linear(width, n_out))


def _problem(config: BenchConfig) -> tuple[nn.Module, Tensor, Tensor]:
    torch.manual_seed(0)
    model = deep_ode_mlp(config.width, config.steps).double()
    g = torch.Generator().manual_seed(1)
    x = torch.randn(config.batch, 32, generator=g, dtype=torch.float64)
    y = torch.randint(10, (config.batch,), generator=g)
    return model, x, y


def serial_step(config: BenchConfig) -> dict:
    """Time, peak activations and gradients of the serial full-batch step (this process)."""
    model, x, y = _problem(config)
    times = []
    for _ in range(config.repeat + 1):  # the first is a warm-up
        model.zero_grad()
        start = time.perf_counter()
        with ActivationMeter(model.parameters()) as meter:
            loss = nn.functional.cross_entropy(model(x), y)
            loss.backward()
        times.append(time.perf_counter() - start)
    grads = {name: p.grad.clone() for name, p in model.named_parameters()}
    return {"step_s": _median(times[1:] or times), "peak": meter.peak,
            "loss": float(loss.detach()), "grads": grads}  # fmt: skip


def pipelined_step(comm: Comm, config: BenchConfig, reference: dict | None = None) -> dict:
    """The same step pipelined over ``comm`` (every rank); on rank 0 the timings, the largest
    gradient difference from ``reference`` (computed here if None) and the peak memory."""
    model, x, y = _problem(config)
    lp = LayerParallel(model, comm, config.micro_batches, config.schedule)
    times, peaks = [], []
    for _ in range(config.repeat + 1):
        lp.serial_model.zero_grad()
        comm.barrier()
        start = time.perf_counter()
        with ActivationMeter(lp.parameters()) as meter:
            loss = lp.train_step(x, y, nn.functional.cross_entropy)
        times.append(comm.allreduce(time.perf_counter() - start, "max"))
        peaks.append(meter.peak)
    if reference is None:
        reference = serial_step(BenchConfig(**{**asdict(config), "repeat": 0}))
    diff = max(
        float((p.grad - reference["grads"][n]).abs().max()) for n, p in lp.named_parameters()
    )
    diff = max(diff, abs(float(loss) - reference["loss"]))
    return {
        "step_s": _median(times[1:] or times),
        "peak": comm.allreduce(max(peaks), "max"),
        "max_grad_diff": comm.allreduce(diff, "max"),
        "ranks": comm.size,
    }


def _median(values: list[float]) -> float:
    return sorted(values)[len(values) // 2]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--ranks", type=int, default=2, help="pipeline stages (MPI ranks, actors)")
    parser.add_argument("--micro-batches", type=int, default=8, help="micro-batches per step")
    parser.add_argument("--width", type=int, default=256, help="width of the MLP")
    parser.add_argument("--steps", type=int, default=64, help="OdeBlock steps (depth)")
    parser.add_argument("--batch", type=int, default=2048, help="batch size")
    parser.add_argument("--repeat", type=int, default=3, help="timed steps (median)")
    parser.add_argument("--no-ray", action="store_true", help="skip the Ray row")
    parser.add_argument("--quick", action="store_true", help="a small network (tests)")
    parser.add_argument("--json", action="store_true", help="also print one JSON line")


def _mpi_row(config: BenchConfig, ranks: int) -> dict:
    mpiexec = shutil.which("mpiexec")
    if mpiexec is None:
        raise FileNotFoundError("mpiexec not found: pip install 'partime[mpi]'")
    command = [mpiexec, "-n", str(ranks), sys.executable, "-m", "partime.bench.layerpar"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [*command, json.dumps(asdict(config))], env=env, capture_output=True, text=True
    )
    if proc.returncode != 0:
        raise RuntimeError(f"the MPI run failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def run(args: argparse.Namespace) -> int:
    torch.set_num_threads(1)
    sizes = {"width": 32, "steps": 8, "batch": 64, "repeat": 1} if args.quick else {}
    chosen = {"width": args.width, "steps": args.steps, "batch": args.batch}
    chosen |= {"micro_batches": args.micro_batches, "repeat": args.repeat}
    base = BenchConfig(**{**chosen, **sizes})
    serial = serial_step(base)
    rows = {"serial": {"step_s": serial["step_s"], "peak": serial["peak"], "max_grad_diff": 0.0}}
    rows["1 rank"] = pipelined_step(SerialComm(), base, reference=serial)
    for schedule in ("1f1b", "gpipe"):
        rows[f"mpi {schedule}"] = _mpi_row(
            BenchConfig(**{**asdict(base), "schedule": schedule}), args.ranks
        )
    if not args.no_ray:
        from partime.comm.ray_spmd import run_spmd

        rows["ray 1f1b"] = run_spmd(pipelined_step, args.ranks, base)[0]
    p, m = args.ranks, base.micro_batches
    best = rows["mpi 1f1b"]
    summary = {
        "ranks": p, "micro_batches": m, "config": asdict(base),
        "speedup": rows["1 rank"]["step_s"] / best["step_s"], "bound": p * m / (m + p - 1),
        "speedup_vs_full_batch": serial["step_s"] / best["step_s"],
        "max_grad_diff_vs_serial": max(r["max_grad_diff"] for r in rows.values()),
        "memory_ratio": best["peak"] / serial["peak"],
        "memory_ratio_gpipe": rows["mpi gpipe"]["peak"] / serial["peak"],
        "ray_vs_mpi": rows["ray 1f1b"]["step_s"] / best["step_s"] if "ray 1f1b" in rows else None,
        "load_average": os.getloadavg()[0],
        "rows": rows,
    }  # fmt: skip
    print(
        f"{'run':<12}{'step s':>10}{'speedup':>9}{'vs serial':>10}{'peak MB':>10}{'memory':>8}"
        f"{'max grad diff':>15}"
    )
    for name, row in rows.items():
        print(f"{name:<12}{row['step_s']:>10.4f}{rows['1 rank']['step_s'] / row['step_s']:>9.2f}"
              f"{serial['step_s'] / row['step_s']:>10.2f}"
              f"{row['peak'] / 1e6:>10.2f}{row['peak'] / serial['peak']:>8.2f}"
              f"{row['max_grad_diff']:>15.2e}")  # fmt: skip
    print(
        f"speedup: over the same {m} micro-batches on 1 rank; vs serial: over the full-batch "
        f"step in one process"
    )
    print(f"bound {summary['bound']:.2f}x ({p} ranks, {m} micro-batches): 1F1B reaches "
          f"{summary['speedup'] / summary['bound']:.0%} of it; load average "
          f"{summary['load_average']:.1f} on {os.cpu_count()} CPUs")  # fmt: skip
    if summary["ray_vs_mpi"] is not None:
        print(f"Ray / MPI step time: {summary['ray_vs_mpi']:.2f}")
    if args.json:
        print(json.dumps(summary))
    return 0


if __name__ == "__main__":  # the MPI ranks of _mpi_row
    comm = from_env()
    result = pipelined_step(comm, BenchConfig(**json.loads(sys.argv[1])))
    if comm.rank == 0:
        print(json.dumps(result))

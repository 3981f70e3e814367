"""OdeBlock (Euler, piecewise constant) vs the hand-written nn.Sequential ResNet of the same layers.

Forward + backward time of one depth block, measured side by side in interleaved rounds: the
residual loop y_{k+1} = y_k + R_k(y_k) as modules in an nn.Sequential, the OdeBlock that holds
the same weights (one Euler step per piece), and, for reference, the same loop evaluating θ_k
with ``torch.func.functional_call`` (the path the OdeBlock's slot assignment replaces).
The target: OdeBlock / ResNet <= 1.2.
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import time
from collections.abc import Callable

import torch
from torch import Tensor, nn
from torch.func import functional_call

from partime.nets import OdeBlock
from partime.nets.layers import he_init, preact_unit

TARGET = 1.2
# (kind, channels, spatial size, batch, pieces): digits- and mnist1d-sized blocks, and a small
# batch where per-call overhead weighs most.
CASES = (
    ("image", 16, 8, 128, 4),
    ("image", 16, 8, 16, 4),
    ("signal", 16, 40, 128, 4),
    ("signal", 16, 40, 16, 8),
)


class _Residual(nn.Module):
    def __init__(self, branch: nn.Module) -> None:
        super().__init__()
        self.branch = branch

    def forward(self, x: Tensor) -> Tensor:
        return x + self.branch(x)


def _contenders(kind: str, channels: int, pieces: int) -> dict[str, Callable[[Tensor], Tensor]]:
    template = preact_unit(kind, channels, channels)
    block = OdeBlock(template, pieces, "pc", "euler", init=he_init)
    units = []
    for k in range(pieces):
        unit = copy.deepcopy(template)
        unit.load_state_dict({n: t[k] for n, t in block.coefficients.state_dict().items()})
        units.append(_Residual(unit))
    resnet = nn.Sequential(*units)
    stacked = dict(block.coefficients.named_parameters()) | dict(block.coefficients.named_buffers())

    def functional_loop(x: Tensor) -> Tensor:
        for k in range(pieces):
            x = x + functional_call(template, {n: t[k] for n, t in stacked.items()}, (x,))
        return x

    return {"resnet": resnet, "odeblock": block, "functional_call": functional_loop}


def _measure(case: tuple, rounds: int) -> dict:
    kind, channels, size, batch, pieces = case
    torch.manual_seed(0)
    contenders = _contenders(kind, channels, pieces)
    shape = (batch, channels, size, size) if kind == "image" else (batch, channels, size)
    x = torch.randn(shape)
    times: dict[str, list[float]] = {name: [] for name in contenders}
    for round_ in range(rounds + 2):  # two warm-up rounds
        for name, forward in contenders.items():
            start = time.perf_counter()
            forward(x).square().mean().backward()
            if round_ >= 2:
                times[name].append(time.perf_counter() - start)
    base = times["resnet"]
    row = {"kind": kind, "channels": channels, "size": size, "batch": batch, "pieces": pieces}
    for name, values in times.items():
        row[f"{name}_ms"] = 1e3 * statistics.median(values)
        # median of per-round ratios: both timed back to back, so load spikes cancel
        row[f"{name}_ratio"] = statistics.median(v / b for v, b in zip(values, base, strict=True))
    return row


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--rounds", type=int, help="timed rounds (default 40, --quick 10)")
    parser.add_argument("--quick", action="store_true", help="the two image cases, 10 rounds")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--json", action="store_true", help="one JSON line on stdout")


def run(args: argparse.Namespace) -> int:
    """Time every case and print the ratios to the hand-written ResNet (or one JSON line)."""
    rounds = args.rounds if args.rounds is not None else 10 if args.quick else 40
    if rounds < 1 or args.threads < 1:
        raise ValueError(f"--rounds and --threads must be >= 1, got {rounds}, {args.threads}")
    torch.set_num_threads(args.threads)
    cases = CASES[:2] if args.quick else CASES
    rows = [_measure(case, rounds) for case in cases]
    met = all(row["odeblock_ratio"] <= TARGET for row in rows)
    if args.json:
        print(json.dumps({"target": TARGET, "threads": args.threads, "met": met, "rows": rows}))
        return 0
    print(f"forward+backward of one depth block, median ms ({args.threads} thread(s))")
    print(
        f"{'kind':>7} {'C':>3} {'size':>4} {'batch':>5} {'pieces':>6} {'resnet':>8} "
        f"{'odeblock':>9} {'ratio':>6} {'functional_call':>16} {'ratio':>6}"
    )
    for r in rows:
        print(
            f"{r['kind']:>7} {r['channels']:>3} {r['size']:>4} {r['batch']:>5} {r['pieces']:>6} "
            f"{r['resnet_ms']:8.2f} {r['odeblock_ms']:9.2f} {r['odeblock_ratio']:6.2f} "
            f"{r['functional_call_ms']:16.2f} {r['functional_call_ratio']:6.2f}"
        )
    print(f"target: odeblock / resnet <= {TARGET}: {'met' if met else 'NOT met'}")
    return 0

"""MG/OPT multilevel training of the seed's deep ResNet (circles, digits, mnist1d).

``partime train mgopt --data circles --depth 2048 --levels 8 --setup "[(1),1,1,1,2,2,2,{2}]"``
trains until the validation accuracy target (circles: 1.0) and reports V-cycles, work units
(eq. 10, counted) and wall time; under ``mpiexec -n P`` every level is split over P ranks in
depth (layer-parallel gradients, same answer as serial).
"""

from __future__ import annotations

import argparse
import dataclasses
import json

from partime.mgopt.presets import PRESETS
from partime.mgopt.sgd import MGOptConfig
from partime.options import add_options, add_progress_option

_FROM_PRESET = ("lr", "batch_size", "target_accuracy")  # default: the --data preset's value
_OWN_OPTIONS = ("setup",)  # added with the --levels logic below


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", default="circles", choices=tuple(PRESETS))
    parser.add_argument("--depth", type=int, default=2048, help="layers of the finest network")
    parser.add_argument("--levels", type=int, default=8, help="levels L (1: plain GD/SGD)")
    parser.add_argument(
        "--setup", default=None, help="level-optimizer steps, finest first (default: Table 1's "
        "rule for --levels, e.g. [(1),1,1,1,2,2,2,{2}] for 8)",
    )  # fmt: skip
    parser.add_argument("--beta", type=float, default=None, help="Tikhonov β (default: preset)")
    parser.add_argument("--width", type=int, default=None, help="state width (default: preset)")
    parser.add_argument("--data-seed", type=int, default=0, help="seed of the data")
    parser.add_argument(
        "--chain", default="auto", choices=("auto", "fused", "autograd"),
        help="Euler chain: fused numba forward/backward or torch autograd",
    )  # fmt: skip
    # lr, batch size and target default to the --data preset's (None here)
    add_options(parser, MGOptConfig, exclude=_OWN_OPTIONS, defaults=dict.fromkeys(_FROM_PRESET))
    parser.add_argument("--out", default=None, help="JSON file: summary and every V-cycle")
    parser.add_argument("--plot", default=None, help="PNG: loss and accuracy per V-cycle")
    parser.add_argument("--json", action="store_true", help="one JSON line on stdout")
    add_progress_option(parser)


def run(args: argparse.Namespace) -> int:
    from partime.comm import from_env
    from partime.mgopt.presets import run_preset
    from partime.mgopt.setup import VCycleSetup, table1_setup

    setup = VCycleSetup.parse(args.setup) if args.setup else table1_setup(args.levels)
    if setup.levels != args.levels:
        raise ValueError(f"--setup {setup} has {setup.levels} levels but --levels is {args.levels}")
    setup.check_depth(args.depth)
    overrides = {
        name: getattr(args, name)
        for name in (f.name for f in dataclasses.fields(MGOptConfig))
        if name not in _OWN_OPTIONS and getattr(args, name) is not None
    }
    overrides |= {k: getattr(args, k) for k in ("beta", "width") if getattr(args, k) is not None}
    comm = from_env()  # one math thread per rank; serial without a launcher
    _, history = run_preset(
        args.data, args.depth, str(setup), data_seed=args.data_seed, chain=args.chain,
        progress=args.progress and comm.rank == 0, comm=comm, **overrides,
    )  # fmt: skip
    if comm.rank != 0:
        return 0
    summary = history.summary()
    if args.out:
        history.save(args.out)
    if args.plot:
        from partime.plot.mgopt import plot_histories

        plot_histories(
            {f"{args.data}, depth {args.depth}": {f"L={setup.levels}": history}}, args.plot
        )
    if args.json:
        print(json.dumps(summary))
    else:
        print(
            f"{args.data} depth {args.depth}, {setup.levels} levels {setup}: "
            f"{summary['v_cycles']} V-cycles, {summary['work_units']:g} work units "
            f"(U_c {summary['work_per_cycle']:g}, eq. (10) {summary['work_per_cycle_eq10']:g}), "
            f"validation accuracy {summary['val_accuracy']:.4f}, loss {summary['loss']:.4f}, "
            f"{summary['wall_s']:.1f} s training ({summary['stopped']})"
        )
    return 0

"""``partime data NAME --out FILE``: generate a data set and write it (atomically).

``partime data cylinder --out cyl.npz [--re 100] [--snapshots 151]``: vorticity snapshots of the
flow past a cylinder from the D2Q9 lattice-Boltzmann solver, with the measured Strouhal number.
"""

from __future__ import annotations

import argparse
import json

from partime.options import add_options, add_progress_option, config_from_args


def register(subparsers: argparse._SubParsersAction) -> None:
    from partime.data.cylinder import CylinderConfig

    parser = subparsers.add_parser("data", help="generate a data set and write it to a file")
    names = parser.add_subparsers(dest="name", required=True)
    cylinder = names.add_parser(
        "cylinder", help="vorticity past a cylinder (lattice Boltzmann), Strouhal number"
    )
    add_options(cylinder, CylinderConfig)
    cylinder.add_argument("--out", required=True, help="output .npz file")
    cylinder.add_argument("--json", action="store_true", help="one JSON summary line on stdout")
    add_progress_option(cylinder)
    cylinder.add_argument(
        "--threads", type=int, default=None, help="torch threads (default: torch's, all cores)"
    )
    cylinder.set_defaults(func=run_cylinder)


def run_cylinder(args: argparse.Namespace) -> int:
    import torch

    from partime.data.cylinder import (
        STROUHAL_RE100,
        CylinderConfig,
        generate_cylinder,
        save_cylinder,
    )

    config = config_from_args(CylinderConfig, args)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    flow = generate_cylinder(config, progress=args.progress)
    save_cylinder(flow, args.out)
    summary = {"out": args.out, "shape": list(flow.vorticity.shape), "re": config.re,
               "tau": config.tau, "strouhal": flow.strouhal, "snapshot_dt": config.snapshot_dt,
               "wall_s": flow.wall_s, "threads": torch.get_num_threads()}  # fmt: skip
    if args.json:
        print(json.dumps(summary), flush=True)
    else:
        error = flow.strouhal / STROUHAL_RE100 - 1
        t, h, w = flow.vorticity.shape
        print(
            f"cylinder at Re {config.re:g}: {t} vorticity snapshots {h}x{w} every "
            f"{config.snapshot_dt:g} D/U, Strouhal {flow.strouhal:.4f} ({error:+.1%} vs "
            f"{STROUHAL_RE100} at Re 100), {flow.wall_s:.1f} s on {summary['threads']} "
            f"thread(s); wrote {args.out}",
            flush=True,
        )
    return 0

"""``partime convergence-test``: the ODE-Net convergence test on the pendulum (error vs h table).

Trains the vector field G inside each scheme, then integrates it with every scheme over a sweep
of steps h; an Euler-trained G only works at h = Δt (the dip). ``--quick`` is a CPU preset of
well under a minute; every other flag overrides one field of ``ConvergenceConfig``.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import fields

from partime.io import atomic_write
from partime.nets.convergence import ConvergenceConfig, run_convergence_test
from partime.options import add_progress_option


def _schemes(text: str) -> tuple[str, ...]:
    return tuple(s.strip() for s in text.split(",") if s.strip())


def register(subparsers: argparse._SubParsersAction) -> None:
    doc = (__doc__ or "").strip()
    parser = subparsers.add_parser("convergence-test", help=doc.splitlines()[0], description=doc)
    parser.add_argument("--quick", action="store_true", help="CPU preset (under a minute)")
    quick = ConvergenceConfig.quick()
    for spec in fields(ConvergenceConfig):
        listed = spec.name in ("schemes", "integrators")

        def shown(value: object, listed: bool = listed) -> str:
            return ",".join(value) if listed else str(value)

        notes = [f"default {shown(spec.default)}"] if spec.default != () else []
        if getattr(quick, spec.name) != spec.default and spec.name != "integrators":
            notes.append(f"--quick {shown(getattr(quick, spec.name))}")
        parser.add_argument(
            f"--{spec.name.replace('_', '-')}",
            type=_schemes if listed else type(spec.default),
            default=None,
            help=f"{spec.metadata['help']}" + (f" ({'; '.join(notes)})" if notes else ""),
        )
    parser.add_argument("--out", help="write the results as JSON to this file")
    parser.add_argument("--plot", help="write the error-vs-h figure to this PNG file")
    parser.add_argument("--json", action="store_true", help="one JSON line on stdout")
    add_progress_option(parser)
    parser.set_defaults(func=run)


def config_from_args(args: argparse.Namespace) -> ConvergenceConfig:
    """The flags, one to one, as a validated ``ConvergenceConfig`` (on the quick preset)."""
    given = {
        spec.name: getattr(args, spec.name)
        for spec in fields(ConvergenceConfig)
        if getattr(args, spec.name) is not None
    }
    return ConvergenceConfig.quick(**given) if args.quick else ConvergenceConfig(**given)


def run(args: argparse.Namespace) -> int:
    import torch

    torch.set_num_threads(1)  # tiny float64 MLP: threads only add overhead
    config = config_from_args(args)
    result = run_convergence_test(config, progress=args.progress)
    payload = result.to_dict()
    if args.out:
        with atomic_write(args.out, "w") as handle:
            json.dump(payload, handle, indent=1)
    if args.plot:
        from partime.plot.nets import plot_convergence

        plot_convergence(result, args.plot)
    if args.json:
        print(json.dumps(payload))
        return 0
    print(result.table())
    print("\n".join(result.summary_lines()))
    return 0

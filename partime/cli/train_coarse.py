"""A flow map fitted to a fine propagator's values and Jacobians (a parareal coarse).

``partime train coarse SYSTEM``: use the result as ``--coarse hits:OUT``.
"""

from __future__ import annotations

import argparse
import time

from partime.hits.workflow import CoarseConfig, fit_coarse
from partime.options import add_options, add_progress_option, config_from_args
from partime.steppers.jacobian_fit import JacobianFitConfig


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_options(parser, CoarseConfig, positional=("system",))
    parser.add_argument("--out", required=True, help="hierarchy file (--coarse hits:OUT)")
    add_options(parser, JacobianFitConfig)
    add_progress_option(parser)


def run(args: argparse.Namespace) -> int:
    config = config_from_args(CoarseConfig, args)
    fit = config_from_args(JacobianFitConfig, args)
    start = time.perf_counter()
    result = fit_coarse(config, fit, progress=args.progress)
    result.hierarchy.save(args.out)
    print(
        f"saved a {config.activation} flow map of step {config.model_step}·dt = "
        f"{config.slice_length:g} fitted to {config.fine} to {args.out} in "
        f"{time.perf_counter() - start:.1f} s; on validation states: rms error "
        f"{result.value_rms:.2e}, Jacobian rms error {result.jacobian_rms:.2e}; use --coarse "
        f"hits:{args.out}"
    )
    return 0

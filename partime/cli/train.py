"""``partime train FAMILY ...``: train a model family and save it.

Each family lives in its own module defining ``add_arguments(parser)`` and ``run(args) -> int``
(its module docstring's first line is the family's help).
"""

from __future__ import annotations

import argparse

from partime.cli.commands import add_module_commands

# family -> module defining ``add_arguments(parser)`` and ``run(args) -> int``
TRAIN_FAMILIES = {
    "hits": "partime.cli.train_hits",
    "coarse": "partime.cli.train_coarse",
    "mgopt": "partime.cli.train_mgopt",
    "cnet": "partime.cli.train_cnet",
    "resnet": "partime.cli.train_resnet",
    "lmresnet": "partime.cli.train_lmresnet",
    "mrcae": "partime.cli.train_mrcae",
    "lyapunov-ae": "partime.cli.train_lyapunov",
}


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("train", help="train a model family and save it")
    add_module_commands(parser.add_subparsers(dest="family", required=True), TRAIN_FAMILIES)

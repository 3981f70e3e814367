"""Subcommands from modules: each defines ``add_arguments(parser)`` and ``run(args) -> int``,
and its docstring's first line is the subcommand's help."""

from __future__ import annotations

import argparse
import importlib


def add_module_commands(subparsers: argparse._SubParsersAction, modules: dict[str, str]) -> None:
    """One subcommand ``name`` per entry of ``modules`` (name -> module path)."""
    for name, module_name in modules.items():
        module = importlib.import_module(module_name)
        doc = (module.__doc__ or "").strip()
        sub = subparsers.add_parser(name, help=doc.splitlines()[0], description=doc)
        module.add_arguments(sub)
        sub.set_defaults(func=module.run)

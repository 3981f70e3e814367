"""Subcommands from modules: each defines ``add_arguments(parser)`` and ``run(args) -> int``,
and its docstring's first line is the subcommand's help."""

from __future__ import annotations

import argparse
import ast
import importlib
import importlib.util
import re
from pathlib import Path


def summary(module_name: str) -> str:
    """The first line of a module's docstring (minus a leading ````partime …``: ``), read
    from its source without importing it."""
    spec = importlib.util.find_spec(module_name)
    doc = ast.get_docstring(ast.parse(Path(spec.origin).read_text())) or ""
    first = doc.strip().splitlines()[0] if doc.strip() else ""
    return re.sub(r"^``[^`]*``:\s*", "", first)


def add_module_commands(subparsers: argparse._SubParsersAction, modules: dict[str, str]) -> None:
    """One subcommand ``name`` per entry of ``modules`` (name -> module path)."""
    for name, module_name in modules.items():
        module = importlib.import_module(module_name)
        sub = subparsers.add_parser(name, help=summary(module_name), description=module.__doc__)
        module.add_arguments(sub)
        sub.set_defaults(func=module.run)

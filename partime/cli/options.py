"""Command-line options generated from frozen config dataclasses, one to one: the field
``foo_bar`` is the option ``--foo-bar``, its help the field's ``metadata["help"]``.

Types: int, float, str, bool (``--x`` / ``--no-x``), ``tuple[int, ...]`` / ``tuple[str, ...]``
(comma-separated), ``X | None`` (the option may be left out), and anything else mixing numbers
and tuples (e.g. ``int | tuple | None``: "4" or "4,2,2"). The dataclass validates the values.
"""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from collections.abc import Callable, Iterable
from typing import Any

__all__ = ["add_dataclass_options", "dataclass_from_args"]


def _number(text: str) -> int | float:
    try:
        return int(text)
    except ValueError:
        return float(text)


def _comma_tuple(item: Callable[[str], Any]) -> Callable[[str], tuple]:
    def parse(text: str) -> tuple:
        return tuple(item(part) for part in text.split(",") if part.strip()) if text else ()

    return parse


def _numbers_or_tuple(text: str) -> int | float | tuple:
    return _comma_tuple(_number)(text) if "," in text else _number(text)


def _parser_for(hint: Any) -> tuple[Callable[[str], Any] | None, bool]:
    """(argument type, is_flag) for a resolved type hint."""
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    if typing.get_origin(hint) in (typing.Union, types.UnionType) and len(args) == 1:
        hint, args = args[0], list(typing.get_args(args[0]))
    if hint is bool:
        return None, True
    if hint in (int, float, str):
        return hint, False
    if typing.get_origin(hint) is tuple and args and args[0] in (int, float, str):
        return _comma_tuple(args[0]), False
    return _numbers_or_tuple, False


def add_dataclass_options(
    parser: argparse.ArgumentParser | argparse._ArgumentGroup,
    cls: type,
    exclude: Iterable[str] = (),
    defaults: dict[str, Any] | None = None,
) -> None:
    """One option per field of ``cls`` not in ``exclude``; ``defaults`` override the class's."""
    hints = typing.get_type_hints(cls)
    defaults = defaults or {}
    for spec in dataclasses.fields(cls):
        if spec.name in exclude:
            continue
        option = "--" + spec.name.replace("_", "-")
        kind, flag = _parser_for(hints[spec.name])
        required = spec.name not in defaults and spec.default is dataclasses.MISSING
        default = defaults.get(spec.name, None if required else spec.default)
        text = spec.metadata.get("help", "").replace("%", "%%")  # argparse formats help
        if flag:
            parser.add_argument(
                option, action=argparse.BooleanOptionalAction, default=default, help=text
            )
        else:
            shown = ",".join(map(str, default)) if isinstance(default, tuple) else default
            shown = "none" if shown in (None, "") else shown
            mentioned = required or "default" in text
            help_text = text if mentioned else f"{text} (default: {shown})"
            parser.add_argument(option, type=kind, default=default, required=required,
                                help=help_text)  # fmt: skip


def dataclass_from_args(cls: type, args: argparse.Namespace, **given: Any) -> Any:
    """``cls`` built from the parsed options of its fields, ``given`` taking precedence."""
    names = [f.name for f in dataclasses.fields(cls) if hasattr(args, f.name)]
    values = {name: getattr(args, name) for name in names}
    return cls(**{**values, **given})

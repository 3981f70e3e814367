"""Command-line options generated from frozen config dataclasses: one option per field.

A field ``foo_bar`` becomes ``--foo-bar`` (or a positional argument), with the field's
default, its ``metadata["help"]`` and, if given, ``metadata["choices"]``. Types follow the
annotation: int, float, str, bool (``--x/--no-x``), ``tuple[int|float|str, ...]``
(comma-separated), ``X | None`` and unions of numbers and tuples (``int | tuple``: "4" or
"4,2,2"). So the CLI and the Python API cannot drift apart.
"""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from collections.abc import Callable, Iterable
from typing import Any

_SCALARS: dict[type, Callable[[str], Any]] = {int: int, float: float, str: str}


def option_name(field_name: str) -> str:
    """``foo_bar`` -> ``--foo-bar``."""
    return "--" + field_name.replace("_", "-")


def _comma_list(item: Callable[[str], Any], kind: str) -> Callable[[str], tuple]:
    def parse(text: str) -> tuple:
        try:
            return tuple(item(v) for v in text.split(",") if v.strip())
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected comma-separated {kind} such as 1,2,3, got {text!r}"
            ) from None

    return parse


def _number(text: str) -> int | float:
    try:
        return int(text)
    except ValueError:
        return float(text)


def _number_or_numbers(text: str) -> int | float | tuple:
    """ "4" -> 4, "0.5" -> 0.5, "4,2,2" -> (4, 2, 2): one value or one per item."""
    try:
        return _comma_list(_number, "numbers")(text) if "," in text else _number(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a number or numbers like 4,2,2, got {text!r}"
        ) from None


def _parser_of(annotation: Any) -> tuple[Callable[[str], Any] | None, bool]:
    """(argparse ``type``, is a bool flag) for a field annotation."""
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if typing.get_origin(annotation) in (typing.Union, types.UnionType) and len(args) == 1:
        annotation = args[0]  # X | None: optional X
    if annotation is bool:
        return None, True
    if annotation in _SCALARS:
        return _SCALARS[annotation], False
    if typing.get_origin(annotation) is tuple:
        item = typing.get_args(annotation)[0]
        if item in _SCALARS:
            return _comma_list(_SCALARS[item], f"{item.__name__}s"), False
    if args and all(a in (int, float) or a is tuple or typing.get_origin(a) is tuple for a in args):
        return _number_or_numbers, False  # e.g. int | tuple | None: one value or one per stage
    raise TypeError(f"no command-line form for a field of type {annotation!r}")


def add_options(
    parser: argparse.ArgumentParser | argparse._ArgumentGroup,
    cls: type,
    *,
    only: Iterable[str] | None = None,
    exclude: Iterable[str] = (),
    positional: Iterable[str] = (),
    defaults: dict[str, Any] | None = None,
) -> None:
    """Add one option per field of the dataclass ``cls`` (the fields in ``only`` if given,
    minus ``exclude``); ``defaults`` override the class's defaults."""
    hints = typing.get_type_hints(cls)
    skip, positional, defaults = set(exclude), set(positional), defaults or {}
    only = None if only is None else set(only)
    for field in dataclasses.fields(cls):
        if field.name in skip or not field.init or (only is not None and field.name not in only):
            continue
        kind, is_flag = _parser_of(hints[field.name])
        help_text = field.metadata.get("help")
        if field.name in positional:
            parser.add_argument(field.name, type=kind, help=help_text)
            continue
        has_default = field.name in defaults or field.default is not dataclasses.MISSING
        default = defaults.get(field.name, field.default)
        if field.default_factory is not dataclasses.MISSING and field.name not in defaults:
            default, has_default = field.default_factory(), True
        if help_text and has_default and not is_flag and "default" not in help_text:
            help_text += " (default: %(default)s)"
        options: dict[str, Any] = {"dest": field.name, "help": help_text}
        if is_flag:
            options.update(action=argparse.BooleanOptionalAction, default=bool(default))
        else:
            options.update(type=kind, choices=field.metadata.get("choices"))
            options.update(default=default) if has_default else options.update(required=True)
        parser.add_argument(option_name(field.name), **options)


def config_from_args(cls: type, args: argparse.Namespace, **overrides: Any) -> Any:
    """An instance of ``cls`` from the parsed options of its fields (plus ``overrides``)."""
    values = {
        f.name: getattr(args, f.name)
        for f in dataclasses.fields(cls)
        if f.init and hasattr(args, f.name)
    }
    return cls(**{**values, **overrides})


def option(default: Any = dataclasses.MISSING, help: str = "", **metadata: Any) -> Any:
    """A dataclass field with its command-line help (and e.g. ``choices``) in its metadata."""
    return dataclasses.field(default=default, metadata={"help": help, **metadata})


def add_progress_option(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """``--progress/--no-progress`` (dest ``progress``, default on), as every command has it."""
    parser.add_argument(
        "--progress", action=argparse.BooleanOptionalAction, default=True,
        help="progress output on stderr (rank 0)",
    )  # fmt: skip

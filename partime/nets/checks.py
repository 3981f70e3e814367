"""Argument checks shared by the nets modules (ValueError naming the bad value)."""

from __future__ import annotations

import operator


def parse_counts(text: str, name: str) -> tuple[int, ...]:
    """ "2-2-2" -> (2, 2, 2): positive counts per stage; ValueError naming a malformed string."""
    parts = text.split("-") if isinstance(text, str) else []
    if not parts or not all(p.isascii() and p.isdigit() and int(p) >= 1 for p in parts):
        raise ValueError(
            f"{name} must be positive integers per stage joined by '-' (like '2-2-2'), got {text!r}"
        )
    return tuple(int(p) for p in parts)


def positive_int(value: object, name: str) -> int:
    """``value`` as an int >= 1; ValueError naming it otherwise."""
    try:
        if isinstance(value, bool):
            raise TypeError
        count = operator.index(value)
    except TypeError:
        raise ValueError(f"{name} must be an integer, got {value!r}") from None
    if count < 1:
        raise ValueError(f"{name} must be >= 1, got {name}={count}")
    return count

"""Lazy imports of optional backends, with an error that names the extra to install."""

from __future__ import annotations

import importlib
import importlib.util
from types import ModuleType


def require(module: str, extra: str) -> ModuleType:
    """Import ``module`` or raise ImportError telling the user which partime extra provides it."""
    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise ImportError(
            f"{module!r} is needed for this feature but is not installed; "
            f"install it with: pip install 'partime[{extra}]'"
        ) from err


def available(module: str) -> bool:
    """True if ``module`` can be imported (without importing optional backends eagerly)."""
    return importlib.util.find_spec(module) is not None

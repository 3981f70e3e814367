"""Model files that rebuild themselves: the class, its architecture config and the weights.

A model qualifies when it keeps its architecture as a frozen dataclass in ``model.config`` and
``type(model)(model.config)`` builds the same architecture (every ``partime.nets`` network
does). The file stores the class and config by name (classes of ``partime`` only), the config
as plain values and the state dict, so ``load_model`` needs no pickled code
(``torch.load(weights_only=True)``).
"""

from __future__ import annotations

import dataclasses
import importlib
from pathlib import Path
from typing import Any

import torch
from torch import nn

from partime.io.atomic import atomic_save

__all__ = ["MODEL_FORMAT", "load_model", "save_model"]

MODEL_FORMAT = "partime-model/1"


def _qualified(cls: type) -> str:
    return f"{cls.__module__}:{cls.__qualname__}"


def _resolve(name: str, path: Path) -> type:
    """The class ``module:QualName`` from a partime module (a file names no other code)."""
    module, _, qualname = name.partition(":")
    if not (module == "partime" or module.startswith("partime.")) or not qualname:
        raise ValueError(f"{path}: refers to {name!r}, not a partime class")
    try:
        value: Any = importlib.import_module(module)
        for part in qualname.split("."):
            value = getattr(value, part)
    except (ImportError, AttributeError) as err:
        raise ValueError(f"{path}: class {name!r} does not exist in this partime ({err})") from err
    return value


def _plain(value: Any) -> Any:
    """Tuples as lists, recursively (what ``weights_only`` loading accepts)."""
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _tuples(value: Any) -> Any:
    """Lists back to tuples, recursively (configs hold tuples)."""
    if isinstance(value, list):
        return tuple(_tuples(v) for v in value)
    if isinstance(value, dict):
        return {k: _tuples(v) for k, v in value.items()}
    return value


def save_model(path: str | Path, model: nn.Module, metadata: dict[str, Any] | None = None) -> Path:
    """Write ``model`` (class, ``model.config``, weights) and JSON-able ``metadata`` atomically."""
    config = getattr(model, "config", None)
    if not dataclasses.is_dataclass(config) or isinstance(config, type):
        raise ValueError(
            f"{type(model).__name__} has no dataclass ``config``; save_model cannot rebuild it"
        )
    blob = {
        "format": MODEL_FORMAT,
        "class": _qualified(type(model)),
        "config_class": _qualified(type(config)),
        "config": _plain(dataclasses.asdict(config)),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "metadata": _plain(metadata or {}),
    }
    return atomic_save(blob, path)


def load_model(
    path: str | Path, device: str | torch.device = "cpu"
) -> tuple[nn.Module, dict[str, Any]]:
    """The model saved by ``save_model`` (in its saved dtype, on ``device``) and its metadata."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"model file {path} does not exist")
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise ValueError(f"{path} is not a partime model file ({err})") from err
    if not isinstance(blob, dict) or blob.get("format") != MODEL_FORMAT:
        found = blob.get("format") if isinstance(blob, dict) else type(blob).__name__
        raise ValueError(f"{path} is not a partime model file (format {found!r}, {MODEL_FORMAT=})")
    config = _resolve(blob["config_class"], path)(**_tuples(blob["config"]))
    model = _resolve(blob["class"], path)(config)
    floating = [v for v in blob["state_dict"].values() if v.is_floating_point()]
    if floating:  # build in the saved precision before copying the weights in
        model = model.to(floating[0].dtype)
    model.load_state_dict(blob["state_dict"])
    return model.to(device), blob["metadata"]

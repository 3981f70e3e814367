"""Classification data for the networks of ``partime.nets``: one spec ``NAME[:PATH]``, seeded
train/val/test splits, per-channel normalisation, float32/float64.

Inputs come as (N, C, H, W) for images, (N, C, L) for signals and (N, F) for features; labels
as int64 (N,). Nothing is downloaded: the sets are bundled (digits), generated (mnist1d,
circles) or read from files the user names (MNIST IDX, CIFAR-10 python batches).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from partime.data import builtin, formats
from partime.data.datasets import default_cache_dir

__all__ = [
    "CLASSIFICATION_SETS",
    "ClassificationData",
    "DataConfig",
    "load_classification",
    "parse_data_spec",
]

Arrays = tuple[np.ndarray, np.ndarray]


@dataclass(frozen=True)
class ClassificationSet:
    """A named set: how to get its samples and its default split sizes (None: the rest).

    ``load(path, seed, n, cache_dir)`` returns ``{"train": (x, y)}`` (one pool, split by the
    seed) or also ``"test"`` (a fixed test pool); generated sets (``generated``) make exactly
    ``n`` samples in the order train, val, test.
    """

    summary: str
    counts: tuple[int | None, int | None, int | None]
    load: Callable[[Path | None, int, int, Path | None], dict[str, Arrays]]
    needs_path: bool = False
    generated: bool = False


def _scaled(images: np.ndarray) -> np.ndarray:
    return images.astype(np.float64) / 255.0


def _from_files(reader: Callable[[Path], dict[str, np.ndarray]]) -> Callable:
    def load(path: Path | None, seed: int, n: int, cache_dir: Path | None) -> dict[str, Arrays]:
        raw = reader(path)
        return {
            split: (_scaled(raw[f"{split}_images"]), raw[f"{split}_labels"].astype(np.int64))
            for split in ("train", "test")
        }

    return load


def _mnist1d(variant: str) -> Callable:
    return lambda path, seed, n, cache_dir: {"train": builtin.mnist1d(variant, n, seed, cache_dir)}


#: Every named set. ``mnist1d-hard`` draws 12 000 signals: 8000/2000/2000. Sets read from files
#: take 5000 validation samples from their training files, the rest for training, and test on
#: the whole test files.
CLASSIFICATION_SETS: dict[str, ClassificationSet] = {
    "digits": ClassificationSet(
        "scikit-learn's 1797 8x8 digits (1, 8, 8)", (1257, 180, 360),
        lambda path, seed, n, cache_dir: {"train": builtin.digits()},
    ),
    "mnist1d": ClassificationSet(
        "mnist1d signals (1, 40), the package's defaults", (3600, 400, 1000),
        _mnist1d("mnist1d"), generated=True,
    ),
    "mnist1d-hard": ClassificationSet(
        "mnist1d with x4 correlated and iid noise (1, 40)", (8000, 2000, 2000),
        _mnist1d("mnist1d-hard"), generated=True,
    ),
    "circles": ClassificationSet(
        "concentric circles in [-3, 3]^2, 2 balanced classes (2,)", (2000, 1000, 1000),
        lambda path, seed, n, cache_dir: {"train": builtin.circles(n, seed)}, generated=True,
    ),
    "mnist": ClassificationSet(
        "MNIST IDX files (raw or .gz) in PATH (1, 28, 28)", (None, 5000, None),
        _from_files(formats.read_mnist), needs_path=True,
    ),
    "fashion-mnist": ClassificationSet(
        "Fashion-MNIST IDX files (raw or .gz) in PATH (1, 28, 28)", (None, 5000, None),
        _from_files(formats.read_mnist), needs_path=True,
    ),
    "cifar10": ClassificationSet(
        "CIFAR-10 python batches in PATH (3, 32, 32)", (None, 5000, None),
        _from_files(formats.read_cifar10), needs_path=True,
    ),
}  # fmt: skip


def parse_data_spec(spec: str) -> tuple[str, Path | None]:
    """``NAME[:PATH]`` -> (name, path); checks the name and whether it takes a path."""
    if not isinstance(spec, str) or not spec:
        raise ValueError(f"data spec must be NAME[:PATH], got {spec!r}")
    name, sep, path = spec.partition(":")
    if name not in CLASSIFICATION_SETS:
        raise ValueError(f"unknown data set {name!r}; known: {', '.join(CLASSIFICATION_SETS)}")
    info = CLASSIFICATION_SETS[name]
    if info.needs_path and not path:
        raise ValueError(f"data set {name!r} needs a path: {name}:/path/to/files ({info.summary})")
    if not info.needs_path and sep:
        raise ValueError(f"data set {name!r} takes no path, got {spec!r}")
    return name, Path(path).expanduser() if path else None


def _check_count(name: str, value: object, minimum: int) -> None:
    if value is not None and (
        isinstance(value, bool) or not isinstance(value, int) or value < minimum
    ):
        raise ValueError(f"{name} must be an integer >= {minimum} or None, got {value!r}")


@dataclass(frozen=True)
class DataConfig:
    """Which data, which split: ``data`` is ``NAME[:PATH]``; counts default to the set's own."""

    data: str = field(metadata={"help": "NAME[:PATH]: " + ", ".join(CLASSIFICATION_SETS)})
    data_seed: int = field(default=0, metadata={"help": "seed of the split (and generation)"})
    n_train: int | None = field(default=None, metadata={"help": "training samples"})
    n_val: int | None = field(default=None, metadata={"help": "validation samples (0: none)"})
    n_test: int | None = field(default=None, metadata={"help": "test samples (0: none)"})
    normalize: bool = field(
        default=True, metadata={"help": "per-channel mean/std of the training split"}
    )

    def __post_init__(self) -> None:
        parse_data_spec(self.data)
        _check_count("data_seed", self.data_seed, 0)
        _check_count("n_train", self.n_train, 1)
        _check_count("n_val", self.n_val, 0)
        _check_count("n_test", self.n_test, 0)

    def counts(self) -> tuple[int | None, int | None, int | None]:
        """(train, val, test) sizes: the given ones, else the set's defaults (None: the rest)."""
        defaults = CLASSIFICATION_SETS[parse_data_spec(self.data)[0]].counts
        given = (self.n_train, self.n_val, self.n_test)
        return tuple(d if g is None else g for g, d in zip(given, defaults, strict=True))


@dataclass(frozen=True)
class ClassificationData:
    """Splits as (inputs, int64 labels); ``mean``/``std`` (C,) are what was normalised with."""

    name: str
    train: tuple[Tensor, Tensor]
    val: tuple[Tensor, Tensor]
    test: tuple[Tensor, Tensor]
    n_classes: int
    mean: Tensor
    std: Tensor

    @property
    def input_shape(self) -> tuple[int, ...]:
        """One sample's shape: (C, H, W), (C, L) or (F,)."""
        return tuple(self.train[0].shape[1:])

    @property
    def kind(self) -> str:
        return {3: "image", 2: "signal", 1: "features"}[len(self.input_shape)]

    def describe(self) -> dict:
        """JSON-able summary: name, shape, classes, split sizes."""
        sizes = {split: len(getattr(self, split)[1]) for split in ("train", "val", "test")}
        return {"data": self.name, "input_shape": list(self.input_shape), "kind": self.kind,
                "n_classes": self.n_classes, **{f"n_{k}": v for k, v in sizes.items()}}  # fmt: skip


def _split(pools: dict[str, Arrays], counts: tuple[int, int, int], seed: int, name: str):
    """(train, val, test) arrays: from one shuffled pool, or val from the train pool and the
    first n_test of a fixed test pool."""
    x, y = pools["train"]
    has_test_pool = "test" in pools
    n_train, n_val, n_test = counts
    n_test = len(pools["test"][1]) if n_test is None else n_test
    if n_train is None:
        n_train = max(1, len(y) - n_val - (0 if has_test_pool else n_test))
    need = n_train + n_val + (0 if has_test_pool else n_test)
    if need > len(y):
        raise ValueError(
            f"{name} has {len(y)} {'training ' if has_test_pool else ''}samples; the split "
            f"asks for {need} (n_train {n_train}, n_val {n_val}"
            f"{'' if has_test_pool else f', n_test {n_test}'})"
        )
    order = np.random.default_rng(seed).permutation(len(y))
    if has_test_pool:
        tx, ty = pools["test"]
        if n_test > len(ty):
            raise ValueError(f"{name} has {len(ty)} test samples; n_test is {n_test}")
        test = tx[:n_test], ty[:n_test]
    else:
        test_index, order = order[:n_test], order[n_test:]
        test = x[test_index], y[test_index]
    val_index, train_index = order[:n_val], order[n_val : n_val + n_train]
    return (x[train_index], y[train_index]), (x[val_index], y[val_index]), test


def _channel_stats(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and std per channel (axis 1) over every other axis; a constant channel gets std 1."""
    axes = tuple(i for i in range(x.ndim) if i != 1)
    mean, std = x.mean(axis=axes), x.std(axis=axes)
    return mean, np.where(std > 0, std, 1.0)


def load_classification(
    config: DataConfig | str,
    dtype: torch.dtype = torch.float32,
    cache_dir: str | Path | None = None,
) -> ClassificationData:
    """The splits of ``config`` (or a bare ``NAME[:PATH]``) as ``dtype`` tensors.

    Generated sets are cached in ``cache_dir`` (default ``default_cache_dir()``).
    """
    config = DataConfig(config) if isinstance(config, str) else config
    if dtype not in (torch.float32, torch.float64):
        raise ValueError(f"dtype must be torch.float32 or torch.float64, got {dtype}")
    name, path = parse_data_spec(config.data)
    info = CLASSIFICATION_SETS[name]
    counts = config.counts()
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    pools = info.load(path, config.data_seed, sum(c for c in counts if c is not None), cache)
    if info.generated:
        x, y = pools["train"]
        bounds = np.cumsum((0, *counts))
        splits = [(x[a:b], y[a:b]) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
    else:
        splits = _split(pools, counts, config.data_seed, name)
    if config.normalize:
        mean, std = _channel_stats(splits[0][0])
    else:
        mean, std = np.zeros(splits[0][0].shape[1]), np.ones(splits[0][0].shape[1])
    shape = (1, -1) + (1,) * (splits[0][0].ndim - 2)
    tensors = [
        (torch.from_numpy((x - mean.reshape(shape)) / std.reshape(shape)).to(dtype),
         torch.from_numpy(y))
        for x, y in splits
    ]  # fmt: skip
    n_classes = int(max(int(pool[1].max()) for pool in pools.values())) + 1
    return ClassificationData(
        config.data, *tensors, n_classes=n_classes,
        mean=torch.from_numpy(mean).to(dtype), std=torch.from_numpy(std).to(dtype),
    )  # fmt: skip

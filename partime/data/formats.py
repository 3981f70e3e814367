"""Readers for the standard files a user already has: MNIST-style IDX (raw or gzip) and the
CIFAR-10 python batches. Every error names the file and what was expected."""

from __future__ import annotations

import gzip
import pickle
import re
from pathlib import Path

import numpy as np

__all__ = ["find_idx_file", "read_cifar10", "read_idx", "read_mnist"]

# IDX type byte -> big-endian numpy dtype (LeCun's format description).
_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
_GZIP_MAGIC = b"\x1f\x8b"
MNIST_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
CIFAR10_TRAIN = tuple(f"data_batch_{i}" for i in range(1, 6))
CIFAR10_TEST = "test_batch"
CIFAR10_SIDE = 32
# What unpickling or indexing something other than a batch raises.
_NOT_A_BATCH = (pickle.UnpicklingError, EOFError, KeyError, TypeError, ValueError, AttributeError)


def _read_bytes(path: Path) -> bytes:
    """The file's bytes, gunzipped if it starts with the gzip magic."""
    raw = path.read_bytes()
    if not raw.startswith(_GZIP_MAGIC):
        return raw
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError) as err:
        raise ValueError(f"{path}: starts like gzip but does not decompress ({err})") from err


def read_idx(path: str | Path) -> np.ndarray:
    """An IDX file (raw or gzip) as a numpy array of the shape and type its header declares."""
    path = Path(path)
    data = _read_bytes(path)
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _IDX_DTYPES:
        raise ValueError(
            f"{path}: not an IDX file (expected magic 00 00 <type> <ndim>, got {data[:4].hex()})"
        )
    ndim = data[3]
    header = 4 + 4 * ndim
    if ndim == 0 or len(data) < header:
        raise ValueError(f"{path}: IDX header declares {ndim} dimensions but is truncated")
    shape = tuple(int(n) for n in np.frombuffer(data, ">u4", count=ndim, offset=4))
    dtype = np.dtype(_IDX_DTYPES[data[2]])
    expected = int(np.prod(shape)) * dtype.itemsize
    if len(data) - header != expected:
        raise ValueError(
            f"{path}: IDX header declares shape {shape} ({expected} bytes of {dtype.str}) but "
            f"the file holds {len(data) - header} bytes of data"
        )
    return np.frombuffer(data, dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))


def find_idx_file(directory: Path, stem: str) -> Path:
    """``stem`` in ``directory``, raw or .gz, also spelt with a dot (train-images.idx3-ubyte)."""
    pattern = re.compile(re.escape(stem).replace(r"\-idx", "[-.]idx") + r"(\.gz)?")
    found = sorted(p for p in directory.iterdir() if pattern.fullmatch(p.name))
    if not found:
        raise FileNotFoundError(
            f"{directory}: no {stem} or {stem}.gz (expected the four MNIST IDX files "
            f"{', '.join(MNIST_FILES.values())}, raw or .gz)"
        )
    return found[0]


def read_mnist(directory: str | Path) -> dict[str, np.ndarray]:
    """The four MNIST-style IDX files of ``directory``: images (N, 1, H, W) uint8, labels (N,)."""
    directory = _existing_dir(directory, "mnist")
    out = {key: read_idx(find_idx_file(directory, stem)) for key, stem in MNIST_FILES.items()}
    for split in ("train", "test"):
        images, labels = out[f"{split}_images"], out[f"{split}_labels"]
        name = MNIST_FILES[f"{split}_images"]
        if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
            raise ValueError(
                f"{directory}: {name} has shape {images.shape} and its labels {labels.shape}; "
                "expected images (N, H, W) and labels (N,) of the same N"
            )
        out[f"{split}_images"] = images[:, None]
    return out


def _existing_dir(path: str | Path, name: str) -> Path:
    path = Path(path).expanduser()
    if not path.exists():
        raise FileNotFoundError(f"{name}: {path} does not exist")
    if not path.is_dir():
        raise ValueError(f"{name}: {path} is a file; give the directory that holds the data files")
    return path


class _ArrayUnpickler(pickle.Unpickler):
    """Unpickles plain containers and numpy arrays only: a batch file can run no code."""

    _ALLOWED = {
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.numeric", "_frombuffer"),
        ("numpy._core.numeric", "_frombuffer"),
        ("_codecs", "encode"),  # bytes pickled with protocol 2 by Python 3
    }

    def find_class(self, module: str, name: str) -> object:
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}")
        return super().find_class(module, name)


def _entry(batch: dict, key: str) -> object:
    """``batch[key]`` whether the pickle stored the key as str or as bytes."""
    return batch[key] if key in batch else batch[key.encode()]


def _read_cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """One CIFAR-10 python batch: images (N, 3, 32, 32) uint8 and labels (N,) int64."""
    try:
        with path.open("rb") as handle:
            # latin1: the original (Python 2) batches hold numpy arrays and str keys.
            batch = _ArrayUnpickler(handle, encoding="latin1").load()
        data = np.asarray(_entry(batch, "data"), dtype=np.uint8)
        labels = np.asarray(_entry(batch, "labels"), dtype=np.int64)
    except _NOT_A_BATCH as err:
        raise ValueError(
            f"{path}: not a CIFAR-10 python batch (expected a pickled dict with b'data' "
            f"(N, 3072) uint8 and b'labels'; {type(err).__name__}: {err})"
        ) from err
    side = CIFAR10_SIDE
    if data.ndim != 2 or data.shape[1] != 3 * side * side or len(labels) != len(data):
        raise ValueError(
            f"{path}: b'data' has shape {data.shape} and b'labels' {labels.shape}; expected "
            f"(N, {3 * side * side}) and (N,)"
        )
    return data.reshape(-1, 3, side, side), labels


def read_cifar10(directory: str | Path) -> dict[str, np.ndarray]:
    """CIFAR-10 python batches (data_batch_1..5, test_batch) from ``directory`` or its
    ``cifar-10-batches-py`` subfolder: images (N, 3, 32, 32) uint8, labels (N,) int64."""
    directory = _existing_dir(directory, "cifar10")
    if not (directory / CIFAR10_TEST).exists() and (directory / "cifar-10-batches-py").is_dir():
        directory = directory / "cifar-10-batches-py"
    missing = [n for n in (*CIFAR10_TRAIN, CIFAR10_TEST) if not (directory / n).is_file()]
    if missing:
        raise FileNotFoundError(
            f"{directory}: missing {', '.join(missing)} (expected the CIFAR-10 python batches "
            f"{', '.join(CIFAR10_TRAIN)} and {CIFAR10_TEST}, as extracted from "
            "cifar-10-python.tar.gz)"
        )
    train = [_read_cifar_batch(directory / name) for name in CIFAR10_TRAIN]
    test_images, test_labels = _read_cifar_batch(directory / CIFAR10_TEST)
    return {
        "train_images": np.concatenate([images for images, _ in train]),
        "train_labels": np.concatenate([labels for _, labels in train]),
        "test_images": test_images,
        "test_labels": test_labels,
    }

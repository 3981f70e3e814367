"""MNIST IDX and CIFAR-10 python batches: files written here in those formats load back
exactly; wrong files give errors naming the file and what was expected."""

from __future__ import annotations

import gzip
import pickle
import struct

import numpy as np
import pytest
import torch

from partime.data import DataConfig, load_classification
from partime.data.formats import read_cifar10, read_idx, read_mnist

IDX_TYPES = {np.uint8: 0x08, np.int8: 0x09, np.int16: 0x0B, np.int32: 0x0C}
IDX_TYPES |= {np.float32: 0x0D, np.float64: 0x0E}


def idx_bytes(array: np.ndarray) -> bytes:
    """LeCun's IDX layout: 0, 0, type, ndim, big-endian uint32 dims, big-endian data."""
    header = struct.pack(">BBBB", 0, 0, IDX_TYPES[array.dtype.type], array.ndim)
    header += struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


def write_mnist(directory, n_train=30, n_test=12, side=5, gz=True, dot=False):
    """Images whose first pixel is the sample's index (train: i, test: 100 + i)."""
    rng = np.random.default_rng(0)
    pools = {}
    for split, n, offset in (("train", n_train, 0), ("t10k", n_test, 100)):
        images = rng.integers(0, 256, (n, side, side), dtype=np.uint8)
        images[:, 0, 0] = offset + np.arange(n)
        labels = rng.integers(0, 10, n).astype(np.uint8)
        labels[:10] = np.arange(10)  # every class present
        pools[split] = images, labels
        sep = "." if dot else "-"
        for kind, array in (("images", images), ("labels", labels)):
            name = f"{split}-{kind}{sep}idx{array.ndim}-ubyte" + (".gz" if gz else "")
            raw = idx_bytes(array)
            (directory / name).write_bytes(gzip.compress(raw) if gz else raw)
    return pools


@pytest.mark.parametrize("dtype", list(IDX_TYPES))
def test_idx_roundtrip_every_type(tmp_path, dtype):
    array = (np.arange(24).reshape(2, 3, 4) - 7).astype(dtype)
    (tmp_path / "a.idx").write_bytes(idx_bytes(array))
    got = read_idx(tmp_path / "a.idx")
    assert got.dtype == np.dtype(dtype) and got.shape == (2, 3, 4)
    np.testing.assert_array_equal(got, array)


@pytest.mark.parametrize("gz,dot", [(True, False), (False, False), (False, True)])
def test_mnist_directory_loads_with_seeded_split(tmp_path, gz, dot):
    pools = write_mnist(tmp_path, gz=gz, dot=dot)
    raw = read_mnist(tmp_path)
    assert raw["train_images"].shape == (30, 1, 5, 5) and raw["test_labels"].shape == (12,)
    config = DataConfig(f"mnist:{tmp_path}", data_seed=3, n_train=20, n_val=6, n_test=8)
    data = load_classification(config, dtype=torch.float64, cache_dir=tmp_path / "cache")
    assert data.input_shape == (1, 5, 5) and data.kind == "image" and data.n_classes == 10
    # normalised with the training split's mean/std: undo it to find the raw pixels
    pixels = {s: getattr(data, s)[0] * data.std + data.mean for s in ("train", "val", "test")}
    ids = {s: torch.round(p[:, 0, 0, 0] * 255).long() for s, p in pixels.items()}
    assert ids["test"].tolist() == list(range(100, 108))  # the first n_test of the test files
    used = ids["train"].tolist() + ids["val"].tolist()
    assert len(set(used)) == 26 and set(used) <= set(range(30))
    train_images, train_labels = pools["train"]
    for split in ("train", "val"):
        index = ids[split].numpy()
        expected = train_images[index] / 255
        np.testing.assert_allclose(pixels[split][:, 0].numpy(), expected, atol=1e-12)
        assert getattr(data, split)[1].tolist() == train_labels[index].tolist()
    assert abs(float(data.train[0].mean())) < 1e-12 and abs(float(data.train[0].std()) - 1) < 0.03
    again = load_classification(config, dtype=torch.float64)
    assert torch.equal(again.val[0], data.val[0])
    other = load_classification(DataConfig(config.data, data_seed=4, n_val=6), torch.float64)
    assert len(other.train[1]) == 24 and len(other.test[1]) == 12  # defaults: the rest, all
    other_ids = torch.round((other.val[0] * other.std + other.mean)[:, 0, 0, 0] * 255)
    assert other_ids.long().tolist() != ids["val"].tolist()


def test_mnist_errors_name_the_file(tmp_path):
    write_mnist(tmp_path, gz=False)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_classification(f"mnist:{tmp_path / 'nowhere'}")
    with pytest.raises(ValueError, match="is a file"):
        load_classification(f"mnist:{tmp_path / 'train-labels-idx1-ubyte'}")
    (tmp_path / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(FileNotFoundError, match="no t10k-labels-idx1-ubyte"):
        load_classification(f"mnist:{tmp_path}")
    images = tmp_path / "train-images-idx3-ubyte"
    good = images.read_bytes()
    (tmp_path / "t10k-labels-idx1-ubyte").write_bytes(idx_bytes(np.zeros(12, np.uint8)))
    images.write_bytes(good[:-7])
    with pytest.raises(ValueError, match=r"train-images-idx3-ubyte: IDX header declares shape"):
        load_classification(f"mnist:{tmp_path}")
    images.write_bytes(b"PK\x03\x04 this is a zip file")
    with pytest.raises(ValueError, match="train-images-idx3-ubyte: not an IDX file"):
        load_classification(f"mnist:{tmp_path}")
    images.write_bytes(b"\x1f\x8b broken gzip")
    with pytest.raises(ValueError, match="train-images-idx3-ubyte: starts like gzip"):
        load_classification(f"mnist:{tmp_path}")
    images.write_bytes(good)
    (tmp_path / "train-labels-idx1-ubyte").write_bytes(idx_bytes(np.zeros(29, np.uint8)))
    with pytest.raises(ValueError, match="same N"):
        load_classification(f"mnist:{tmp_path}")


def write_cifar(directory, per_batch=4, str_keys=False):
    """Six batches; sample k of batch b has first byte 10 b + k (test batch: b = 6)."""
    rng = np.random.default_rng(1)
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    for b, name in enumerate(names, start=1):
        data = rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8)
        data[:, 0] = 10 * b + np.arange(per_batch)
        labels = [int(v) for v in rng.integers(0, 10, per_batch)]
        batch = {b"data": data, b"labels": labels, b"batch_label": name.encode()}
        if str_keys:  # how the original (Python 2) files look when read with latin1
            batch = {k.decode(): v for k, v in batch.items()}
        (directory / name).write_bytes(pickle.dumps(batch, protocol=2))
    return names


@pytest.mark.parametrize("str_keys", [False, True])
def test_cifar10_batches_load(tmp_path, str_keys):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    write_cifar(folder, str_keys=str_keys)
    raw = read_cifar10(tmp_path)  # the parent folder works too
    assert raw["train_images"].shape == (20, 3, 32, 32)
    assert raw["test_images"].shape == (4, 3, 32, 32)
    first_bytes = [10 * b + k for b in range(1, 6) for k in range(4)]
    assert raw["train_images"][:, 0, 0, 0].tolist() == first_bytes
    batch = pickle.loads((folder / "data_batch_2").read_bytes())
    data = batch[b"data" if not str_keys else "data"]
    # row-major 3072 = red plane, green plane, blue plane of 32x32
    np.testing.assert_array_equal(raw["train_images"][4:8], data.reshape(4, 3, 32, 32))
    config = DataConfig(f"cifar10:{folder}", n_train=14, n_val=6, n_test=4, normalize=False)
    loaded = load_classification(config)
    assert loaded.train[0].shape == (14, 3, 32, 32) and loaded.train[0].dtype == torch.float32
    assert loaded.test[0][:, 0, 0, 0].mul(255).round().tolist() == [60, 61, 62, 63]
    with pytest.raises(ValueError, match="has 20 training samples"):
        load_classification(DataConfig(f"cifar10:{folder}", n_train=15, n_val=6, n_test=4))


def test_cifar10_errors_name_the_file(tmp_path):
    write_cifar(tmp_path)
    (tmp_path / "data_batch_3").unlink()
    with pytest.raises(FileNotFoundError, match="missing data_batch_3"):
        read_cifar10(tmp_path)
    (tmp_path / "data_batch_3").write_bytes(b"not a pickle at all")
    with pytest.raises(ValueError, match="data_batch_3: not a CIFAR-10 python batch"):
        read_cifar10(tmp_path)
    bad_shape = {b"data": np.zeros((4, 100), np.uint8), b"labels": [0, 1, 2, 3]}
    (tmp_path / "data_batch_3").write_bytes(pickle.dumps(bad_shape))
    with pytest.raises(ValueError, match=r"data_batch_3: b'data' has shape \(4, 100\)"):
        read_cifar10(tmp_path)


class Exploit:
    def __reduce__(self):
        return (print, ("this must never run",))


def test_cifar10_batches_cannot_run_code(tmp_path, capsys):
    write_cifar(tmp_path)
    (tmp_path / "test_batch").write_bytes(pickle.dumps({b"data": Exploit(), b"labels": []}))
    with pytest.raises(ValueError, match="test_batch: .*refusing to load builtins.print"):
        read_cifar10(tmp_path)
    assert "must never run" not in capsys.readouterr().out

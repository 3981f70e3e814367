"""The named classification sets: spec parsing and its errors, seeded splits, normalisation,
mnist1d equal to its package's own generator, circles balanced and uniform by area."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from partime.data import CLASSIFICATION_SETS, DataConfig, load_classification, parse_data_spec
from partime.data.builtin import circles, mnist1d


def test_spec_parsing_and_errors(tmp_path):
    assert parse_data_spec("digits") == ("digits", None)
    assert parse_data_spec(f"cifar10:{tmp_path}") == ("cifar10", tmp_path)
    with pytest.raises(ValueError, match="unknown data set 'imagenet'; known: digits, mnist1d"):
        parse_data_spec("imagenet")
    with pytest.raises(ValueError, match="'mnist' needs a path: mnist:/path"):
        parse_data_spec("mnist")
    with pytest.raises(ValueError, match="'digits' takes no path"):
        parse_data_spec("digits:/tmp")
    with pytest.raises(FileNotFoundError, match="cifar10: .*nowhere does not exist"):
        load_classification(f"cifar10:{tmp_path / 'nowhere'}")
    for bad in ({"n_train": 0}, {"n_val": -1}, {"data_seed": -2}, {"n_test": 1.5}):
        with pytest.raises(ValueError, match=next(iter(bad))):
            DataConfig("digits", **bad)
    with pytest.raises(ValueError, match="digits has 1797 samples; the split asks for 1800"):
        load_classification(DataConfig("digits", n_train=1700, n_val=100, n_test=0))
    with pytest.raises(ValueError, match="dtype"):
        load_classification("circles", dtype=torch.int64)


def test_digits_split_and_normalisation():
    data = load_classification("digits", dtype=torch.float64)
    assert data.input_shape == (1, 8, 8) and data.kind == "image" and data.n_classes == 10
    sizes = [len(split[1]) for split in (data.train, data.val, data.test)]
    assert sizes == [1257, 180, 360] and data.train[1].dtype == torch.int64
    assert abs(float(data.train[0].mean())) < 1e-12 and abs(float(data.train[0].std()) - 1) < 1e-3
    inputs = torch.cat([split[0] for split in (data.train, data.val, data.test)])
    raw = inputs * data.std + data.mean
    rows = {tuple(r) for r in (raw.reshape(-1, 64) * 16).round().long().tolist()}
    assert len(rows) >= 1790  # the three splits are disjoint parts of the 1797 images
    assert raw.min() >= -1e-12 and raw.max() <= 1 + 1e-12
    other = load_classification(DataConfig("digits", data_seed=1, normalize=False))
    assert other.train[0].dtype == torch.float32 and float(other.train[0].max()) == 1.0
    assert not torch.equal(other.test[1], data.test[1])


def test_mnist1d_is_the_package_generator(tmp_path):
    from mnist1d.data import get_dataset_args, make_dataset

    np.random.seed(123)
    random.seed(123)
    before = np.random.get_state()[1].copy(), random.getstate()
    x, y = mnist1d("mnist1d-hard", 37, seed=5, cache_dir=tmp_path)
    after = np.random.get_state()[1], random.getstate()
    assert np.array_equal(before[0], after[0]) and before[1] == after[1]  # caller's RNG untouched
    args = get_dataset_args()
    args.num_samples, args.seed = 40, 5
    args.corr_noise_scale, args.iid_noise_scale = 1.0, 0.08  # x4 the defaults 0.25 and 0.02
    made = make_dataset(args)
    np.testing.assert_array_equal(x[:, 0], np.concatenate([made["x"], made["x_test"]])[:37])
    np.testing.assert_array_equal(y, np.concatenate([made["y"], made["y_test"]])[:37])
    assert (tmp_path / "mnist1d-hard_n40_seed5.npz").is_file()
    cached = mnist1d("mnist1d-hard", 37, seed=5, cache_dir=tmp_path)
    assert np.array_equal(cached[0], x) and np.array_equal(cached[1], y)
    easy = mnist1d("mnist1d", 37, seed=5, cache_dir=None)[0]
    # same shapes and labels, four times the noise: the hard signals differ from the easy ones
    assert easy.shape == (37, 1, 40) and np.abs(easy - x).mean() > 0.1


def test_mnist1d_splits_in_order(tmp_path):
    config = DataConfig("mnist1d", data_seed=2, n_train=50, n_val=20, n_test=30, normalize=False)
    data = load_classification(config, torch.float64, cache_dir=tmp_path)
    x, y = mnist1d("mnist1d", 100, seed=2, cache_dir=tmp_path)
    assert data.input_shape == (1, 40) and data.kind == "signal"
    np.testing.assert_array_equal(data.val[0].numpy(), x[50:70])
    np.testing.assert_array_equal(data.test[1].numpy(), y[70:])


def test_circles_balanced_and_uniform_by_area():
    x, y = circles(4001, seed=0)
    assert x.shape == (4001, 2) and np.bincount(y).tolist() == [2001, 2000]
    radius = np.linalg.norm(x, axis=1)
    inner, outer = radius[y == 0], radius[y == 1]
    assert inner.max() <= 1 and outer.min() >= 2 and outer.max() < 3 and np.abs(x).max() <= 3
    # uniform by area: half the inner disc's points lie within r^2 < 1/2, half the ring's
    # within r^2 < (4 + 9) / 2; a radius-uniform law would give 0.29 and 0.45
    assert abs((inner**2 < 0.5).mean() - 0.5) < 0.04 and abs((outer**2 < 6.5).mean() - 0.5) < 0.04
    data = load_classification("circles", torch.float64)
    assert data.kind == "features" and data.n_classes == 2 and data.input_shape == (2,)
    assert [len(s[1]) for s in (data.train, data.val, data.test)] == [2000, 1000, 1000]
    assert torch.allclose(data.train[0].mean(0), torch.zeros(2, dtype=torch.float64), atol=1e-12)


def test_every_set_documents_itself():
    for name, info in CLASSIFICATION_SETS.items():
        assert info.summary and len(info.counts) == 3, name
        assert info.needs_path == (name in ("mnist", "fashion-mnist", "cifar10"))

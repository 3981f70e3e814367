"""Snapshot data: MrCAE's toy fields by their formulas, user .npy files validated (sizes
2^p − 1, NaN, levels), the seeded 70/20/10 split; the lifted pendulum equals koopmanAE's recipe;
sequences for the Lyapunov autoencoder."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.special import ellipj, ellipk

from partime.data.pendulum import lifted_pendulum, pendulum_state
from partime.data.sequences import SequenceConfig, load_sequence
from partime.data.snapshots import check_snapshots, load_snapshots, split_snapshots, toy1, toy2


def test_toy1_follows_the_notebook_formula():
    data = toy1()
    assert data.shape == (500, 127, 127) and data.min() == 0.0 and data.max() == 1.0
    axis, t = np.linspace(-5, 5, 127), np.linspace(0, 8 * np.pi, 500)
    k, i, j = 37, 50, 75  # snapshot, row (y), column (x)
    x, y = axis[j], axis[i]
    u = 1 / np.cosh((x + 1) / 10) / np.cosh((y - 1) / 10)
    v = np.exp(-((x - 1) ** 2 + (y + 1) ** 2) / (2 * 0.25**2)) / (0.25 * math.sqrt(2 * math.pi))
    raw = u * np.cos(0.5 * t[k]) + v * np.cos(4 * t[k] + np.pi / 4)
    # min-max scaling is affine: compare differences of two points
    raw0 = 1 / np.cosh((axis[0] + 1) / 10) / np.cosh((axis[0] - 1) / 10) * np.cos(0.5 * t[k])
    scale = (data[k, i, j] - data[k, 0, 0]) / (raw - raw0)
    other = 1 / np.cosh((axis[3] + 1) / 10) / np.cosh((axis[9] - 1) / 10) * np.cos(0.5 * t[k])
    assert data[k, 9, 3] - data[k, 0, 0] == pytest.approx(scale * (other - raw0), rel=1e-9)


def test_toy2_gaussian_drifts_along_the_diagonal():
    data = toy2()
    assert data.shape == (500, 127, 127)
    axis, t = np.linspace(-5, 5, 127), np.linspace(0, 4 * np.pi, 500)
    for k in (0, 120, 260):
        centre_x, centre_y = 3 - 0.5 * t[k], -3 + 0.5 * t[k]
        anomaly = np.abs(data[k] - np.median(data[k]))
        i, j = np.unravel_index(np.argmax(anomaly), anomaly.shape)
        if abs(np.cos(4 * t[k])) > 0.5:  # the bump is visible when its cosine is not small
            assert abs(axis[j] - centre_x) < 0.2 and abs(axis[i] - centre_y) < 0.2


def test_user_files_are_validated(tmp_path):
    good = np.random.default_rng(0).random((20, 31, 63)) * 5 - 1
    np.save(tmp_path / "good.npy", good)
    loaded = load_snapshots(str(tmp_path / "good.npy"), levels=3)
    assert loaded.min() == 0 and loaded.max() == 1 and loaded.shape == (20, 31, 63)
    np.save(tmp_path / "wide.npy", np.zeros((5, 32, 31)))
    with pytest.raises(ValueError, match="not \\(2\\^p-1\\)"):
        load_snapshots(str(tmp_path / "wide.npy"))
    nan = good.copy()
    nan[3, 4, 5] = np.nan
    np.save(tmp_path / "nan.npy", nan)
    with pytest.raises(ValueError, match="1 NaN"):
        load_snapshots(str(tmp_path / "nan.npy"))
    with pytest.raises(ValueError, match="too small for 4 levels"):
        check_snapshots(np.zeros((3, 15, 15)), levels=4)
    with pytest.raises(ValueError, match="\\(T, H, W\\)"):
        check_snapshots(np.zeros((15, 15)))
    with pytest.raises(FileNotFoundError):
        load_snapshots(str(tmp_path / "missing.npy"))
    with pytest.raises(ValueError, match="toy1"):
        load_snapshots("toy3")


def test_split_is_seeded_70_20_10():
    data = np.arange(500.0)[:, None, None] * np.ones((1, 3, 3))
    a, b = split_snapshots(data, 0), split_snapshots(data, 0)
    assert (len(a.train), len(a.val), len(a.test)) == (350, 100, 50)
    assert np.array_equal(a.train, b.train)
    assert sorted(np.concatenate(a.indices).tolist()) == list(range(500))
    assert not np.array_equal(split_snapshots(data, 1).train, a.train)


def test_lifted_pendulum_is_koopmanae_recipe():
    """The recipe written out: global seed, noise drawn before Q, X·Qᵀ, global min/ptp."""
    for theta0, seed, noise in ((2.4, 1, 0.0), (0.8, 0, 0.03)):
        np.random.seed(seed)
        t = np.arange(0, 2200 * 0.1, 0.1)
        s = np.sin(0.5 * theta0)
        sn, cn, dn, _ = ellipj(ellipk(s**2) - np.sqrt(9.81) * t, s**2)
        x = np.stack([2 * np.arcsin(s * sn), 2 * s * (-np.sqrt(9.81) * cn * dn)
                      / np.sqrt(1 - (s * sn) ** 2)], 1).T  # fmt: skip
        x = x + np.random.standard_normal(x.shape) * noise
        q, _ = np.linalg.qr(np.random.standard_normal((64, 2)))
        x = x.T @ q.T
        x = 2 * (x - x.min()) / np.ptp(x) - 1
        assert np.array_equal(lifted_pendulum(theta0, seed, noise), x)
    longer = lifted_pendulum(n_samples=3000)
    assert np.array_equal(longer[:2200], lifted_pendulum())
    assert pendulum_state(np.array([0.0]), 1.0)[0] == pytest.approx([1.0, 0.0])


def test_sequences(tmp_path):
    pendulum = load_sequence(SequenceConfig(data="pendulum", horizon=2000, starts=2))
    assert pendulum.train.shape == (600, 64) and len(pendulum.later) == 600 + 5 + 2000 + 1 - 600
    snapshots = np.random.default_rng(1).standard_normal((60, 4, 5))
    np.save(tmp_path / "s.npy", snapshots)
    sequence = load_sequence(SequenceConfig(data=str(tmp_path / "s.npy"), n_train=20))
    assert sequence.train.shape == (20, 20) and sequence.later.shape == (40, 20)
    assert abs(sequence.train.mean(0)).max() < 1e-12 and abs(sequence.train).max() == 1.0
    snapshots[30, 1, 1] = np.nan
    np.save(tmp_path / "nan.npy", snapshots)
    with pytest.raises(ValueError, match="NaN"):
        load_sequence(SequenceConfig(data=str(tmp_path / "nan.npy"), n_train=20))
    with pytest.raises(ValueError, match="n_train"):
        SequenceConfig(n_train=1)

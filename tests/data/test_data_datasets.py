"""HiTS datasets: shapes, seeds, the authors' random draws, agreement with the vector field."""

import numpy as np
import pytest
import torch

from partime.data import DATASET_SPECS, default_cache_dir, generate, make_dataset
from partime.dynamics import get_system, reference_solution

ODE_SETS = ["hyperbolic", "cubic", "vdp", "hopf", "lorenz"]


@pytest.mark.parametrize("system", ODE_SETS)
def test_shapes_dtype_and_specs(system, tmp_path):
    spec = DATASET_SPECS[system]
    data = make_dataset(system, "val", n_traj=3, n_points=40, cache_dir=tmp_path)
    assert data.shape == (3, 40, spec.dim) and data.dtype == torch.float32
    assert spec.n_points == 5121 and spec.dt == (5e-4 if system == "lorenz" else 0.01)
    assert torch.isfinite(data).all()


def test_paper_counts():
    counts = {name: DATASET_SPECS[name].counts for name in ODE_SETS}
    assert counts == {
        "hyperbolic": (1600, 320, 320),
        "cubic": (3200, 320, 320),
        "vdp": (3200, 320, 320),
        "hopf": (3200, 320, 320),
        "lorenz": (6400, 640, 640),
    }


def test_initial_states_are_the_authors_draws():
    # The authors' loop: np.random.seed(2); train rows, then val rows, drawn one at a time.
    rng = np.random.RandomState(2)
    train = [[rng.uniform(-2.0, 2.0), rng.uniform(-4.0, 4.0)] for _ in range(3200)]
    val = [[rng.uniform(-2.0, 2.0), rng.uniform(-2.0, 2.0)] for _ in range(320)]
    got_train = generate("vdp", "train", n_traj=5, n_points=2)[:, 0]
    got_val = generate("vdp", "val", n_traj=5, n_points=2)[:, 0]
    np.testing.assert_array_equal(got_train, np.array(train[:5]))
    np.testing.assert_array_equal(got_val, np.array(val[:5]))


def test_seed_determinism_and_prefixes():
    a = generate("hopf", "test", seed=7, n_traj=4, n_points=30)
    np.testing.assert_array_equal(a, generate("hopf", "test", seed=7, n_traj=4, n_points=30))
    assert not np.allclose(a, generate("hopf", "test", seed=8, n_traj=4, n_points=30))
    # smaller requests are prefixes of bigger ones (same draws; the stacked solve's step
    # sizes depend on the batch, so the values agree to the integration tolerance)
    small = generate("hopf", "test", seed=7, n_traj=2, n_points=10)
    np.testing.assert_allclose(a[:2, :10], small, rtol=0, atol=1e-10)


@pytest.mark.parametrize("system", ["hyperbolic", "cubic", "vdp", "hopf"])
def test_trajectories_follow_the_vector_field(system):
    spec, field = DATASET_SPECS[system], get_system(system)
    data = generate(system, "train", n_traj=4, n_points=201)
    # 4th-order central differences vs f at the interior points
    d = (data[:, :-4] - 8 * data[:, 1:-3] + 8 * data[:, 3:-1] - data[:, 4:]) / (12 * spec.dt)
    rhs = field(0.0, torch.from_numpy(data[:, 2:-2])).numpy()
    assert np.abs(d - rhs).max() < 1e-5 * max(1.0, np.abs(rhs).max())
    # independent re-integration of one trajectory with RK45 agrees to tight tolerance
    times = spec.dt * np.arange(201)
    again = reference_solution(field, torch.from_numpy(data[1:2, 0]), times, method="RK45")
    np.testing.assert_allclose(again[:, 0].numpy(), data[1], atol=1e-8)


def test_lorenz_warmup_and_chaining():
    data = generate("lorenz", "test", n_traj=2)
    assert data.shape == (2, 5121, 3)
    np.testing.assert_array_equal(data[0, -1], data[1, 0])  # chained
    assert np.abs(data[0, 0]).max() > 1.0  # 10000 warm-up steps left the 0.1-box
    rng = np.random.RandomState(2)
    rng.uniform(-0.1, 0.1, 3)  # train's start
    rng.uniform(-0.1, 0.1, 3)  # val's start
    start = torch.from_numpy(rng.uniform(-0.1, 0.1, (1, 3)))
    warm = reference_solution(get_system("lorenz"), start, 5e-4 * np.arange(10001))[-1, 0]
    np.testing.assert_allclose(data[0, 0], warm.numpy(), rtol=1e-12)


def test_noise_is_the_authors_protocol():
    clean = generate("hopf", "train", n_traj=3, n_points=300)
    noisy = generate("hopf", "train", noise=0.02, n_traj=3, n_points=300)
    # Authors: after all initial draws (train, val, test), randn for the full train split.
    rng = np.random.RandomState(2)
    rng.uniform(-1.0, 1.0, (3200 + 320 + 320) * 3)
    normals = rng.standard_normal((3, 5121, 3))[:, :300]
    scale = 0.02 * clean.std(axis=1).mean(axis=0)
    np.testing.assert_allclose(noisy, clean + scale * normals, rtol=0, atol=1e-15)
    np.testing.assert_array_equal(
        noisy, generate("hopf", "train", noise=0.02, n_traj=3, n_points=300)
    )


def test_cache_round_trip(tmp_path, monkeypatch):
    first = make_dataset("hyperbolic", "test", n_traj=2, n_points=20, cache_dir=tmp_path)
    (path,) = tmp_path.glob("hyperbolic_test_seed2_noise0_n2_p20_float32.npz")
    second = make_dataset("hyperbolic", "test", n_traj=2, n_points=20, cache_dir=tmp_path)
    assert torch.equal(first, second)
    wide = make_dataset(
        "hyperbolic", "test", n_traj=2, n_points=20, cache_dir=tmp_path, dtype=torch.float64
    )
    assert wide.dtype == torch.float64 and torch.allclose(wide.float(), first)
    monkeypatch.setenv("PARTIME_CACHE", str(tmp_path / "root"))
    assert default_cache_dir() == tmp_path / "root" / "datasets"


def test_full_size_validation_split():
    data = make_dataset("hopf", "val", cache=False)
    assert data.shape == (320, 5121, 3)
    low, high = np.array([-0.2, -1, -1]), np.array([0.6, 2, 1])
    start = data[:, 0].numpy()
    assert ((start >= low) & (start <= high)).all()
    assert torch.equal(data[:, :, 0], data[:, :1, 0].expand(-1, 5121))  # mu is constant


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"system": "lorentz"}, "unknown dataset 'lorentz'; known: hyperbolic"),
        ({"system": "vdp", "split": "dev"}, "split must be one of"),
        ({"system": "vdp", "noise": -0.1}, "noise must be a finite number >= 0, got -0.1"),
        (
            {"system": "vdp", "split": "val", "n_traj": 321},
            r"n_traj must be an integer in \[1, 320\]",
        ),
        ({"system": "vdp", "seed": -1}, "seed must be a non-negative integer, got -1"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        make_dataset(cache=False, **kwargs)

"""Training a hierarchy on Ray tasks gives the same models as serial training."""

from __future__ import annotations

import pytest
import torch

from partime.cli.main import main
from partime.hits import Hierarchy, HierarchyConfig, load_hierarchy, train_hierarchy
from partime.steppers.flow_training import FlowMapTrainConfig

ray = pytest.importorskip("ray")

from partime.hits.ray_training import train_hierarchy_ray  # noqa: E402

CONFIG = HierarchyConfig(
    steps=(1, 2, 4),
    widths=(8, 8),
    train=FlowMapTrainConfig(epochs=30, batch_size=16, lr=3e-3, seed=3, val_every=10),
)


def _data(n_traj: int, seed: int) -> torch.Tensor:
    """Damped rotation x' = A x sampled every 0.01 (n_traj, 21, 2), float32."""
    gen = torch.Generator().manual_seed(seed)
    x0 = torch.rand(n_traj, 2, generator=gen, dtype=torch.float64) * 2 - 1
    a = torch.tensor([[-0.1, 2.0], [-2.0, -0.1]], dtype=torch.float64)
    steps = [torch.matrix_exp(a * 0.01 * k) for k in range(21)]
    return torch.stack([x0 @ m.T for m in steps], dim=1).float()


def _params(h: Hierarchy) -> list[torch.Tensor]:
    return [p for m in h.models for p in m.parameters()]


def test_ray_two_workers_equal_serial():
    train, val = _data(32, 0), _data(8, 1)
    serial = train_hierarchy(train, 0.01, CONFIG, val_data=val, system="rot")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        distributed = train_hierarchy_ray(
            train, 0.01, CONFIG, workers=2, val_data=val, system="rot"
        )
        assert ray.is_initialized()  # a Ray the caller started is left running
    finally:
        ray.shutdown()
    assert distributed.steps == [1, 2, 4] and distributed.system == "rot"
    for p, q in zip(_params(serial), _params(distributed), strict=True):
        torch.testing.assert_close(p, q, rtol=0, atol=1e-6)


def test_ray_bad_workers_fail_before_ray_starts():
    with pytest.raises(ValueError, match="workers must be None or a positive integer"):
        train_hierarchy_ray(_data(4, 0), 0.01, CONFIG, workers=0)
    assert not ray.is_initialized()


def test_train_hits_cli_on_ray(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PARTIME_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "h.pt"
    argv = ["train", "hits", "hyperbolic", "--out", str(out), "--steps", "1,2,4", "--widths", "8"]
    argv += ["--epochs", "20", "--n-train", "16", "--n-val", "4", "--batch-size", "8"]
    argv += ["--val-every", "10", "--backend", "ray", "--workers", "2", "--no-progress"]
    assert main(argv) == 0
    assert "on Ray (2 workers)" in capsys.readouterr().out
    assert not ray.is_initialized()  # the CLI stops the Ray it started
    hierarchy = load_hierarchy(out, dim=2)
    assert hierarchy.steps == [1, 2, 4] and hierarchy.selected is not None
    assert len(list((tmp_path / "h.pt.ckpt").glob("model*.pt"))) == 3

"""Hierarchy files, bad inputs, training a tiny hierarchy, resume, and 2-rank == serial."""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch
from scipy.integrate import solve_ivp

from partime.hits import Hierarchy, HierarchyConfig, load_hierarchy, train_hierarchy
from partime.hits.config import chunk_trajectories
from partime.steppers.flow_training import FlowMapTrainConfig
from partime.steppers.neural import FlowMapMLP

DT = 0.01
CONFIG = HierarchyConfig(
    steps=(1, 2, 4),
    widths=(16, 16),
    train=FlowMapTrainConfig(epochs=40, batch_size=24, lr=3e-3, seed=7, checkpoint_every=10),
)


def _cubic(t, z):
    x, y = z
    return [-0.1 * x**3 + 2 * y**3, -2 * x**3 - 0.1 * y**3]


@functools.cache
def tiny_data(n_traj: int = 48, seed: int = 0) -> torch.Tensor:
    """Cubic-oscillator trajectories (n_traj, 21, 2), dt = 0.01, float32 (do not modify)."""
    rng = np.random.default_rng(seed)
    t = np.arange(21) * DT
    trajs = [
        solve_ivp(_cubic, (0, t[-1]), rng.uniform(-1, 1, 2), t_eval=t, rtol=1e-8).y.T
        for _ in range(n_traj)
    ]
    return torch.tensor(np.stack(trajs), dtype=torch.float32)


def _same(a: Hierarchy, b: Hierarchy) -> bool:
    return a.steps == b.steps and all(
        torch.equal(p, q)
        for ma, mb in zip(a.models, b.models, strict=True)
        for p, q in zip(ma.parameters(), mb.parameters(), strict=True)
    )


def test_save_load_roundtrip_and_bad_files(tmp_path):
    torch.manual_seed(0)
    h = Hierarchy([FlowMapMLP(2, (8,)) for _ in range(3)], [1, 2, 4], DT, "cubic", (0, 1))
    path = tmp_path / "h.pt"
    h.save(path)
    loaded = load_hierarchy(path, dim=2)
    assert _same(h, loaded) and loaded.selected == (0, 1) and loaded.system == "cubic"
    assert loaded.active().steps == [1, 2]
    with pytest.raises(ValueError, match="dimension mismatch"):
        load_hierarchy(path, dim=3)
    (tmp_path / "junk.pt").write_bytes(b"\x00garbage")
    with pytest.raises(ValueError, match="not a partime HiTS hierarchy file"):
        load_hierarchy(tmp_path / "junk.pt")
    h.stepper(1).save(tmp_path / "single.pt")  # a single stepper file is not a hierarchy
    with pytest.raises(ValueError, match="not a partime HiTS hierarchy file"):
        load_hierarchy(tmp_path / "single.pt")


def test_bad_hierarchies_rejected():
    m2, m3 = FlowMapMLP(2, (4,)), FlowMapMLP(3, (4,))
    with pytest.raises(ValueError, match="empty hierarchy"):
        Hierarchy([], [], DT)
    with pytest.raises(ValueError, match="same integer .dim"):
        Hierarchy([m2, m3], [1, 2], DT)
    with pytest.raises(ValueError, match="strictly increasing"):
        Hierarchy([m2, m2], [2, 1], DT)
    with pytest.raises(ValueError, match="empty hierarchy"):
        HierarchyConfig(steps=())
    with pytest.raises(ValueError, match="too short"):
        train_hierarchy(tiny_data(4), DT, HierarchyConfig(steps=(1, 8)))
    with pytest.raises(ValueError, match="dimension mismatch"):
        train_hierarchy(tiny_data(4), DT, CONFIG, val_data=torch.zeros(4, 21, 3))


def test_tiny_training_lowers_loss_tenfold():
    from partime.steppers.flow_training import multi_step_loss, training_windows

    data = tiny_data()
    h = train_hierarchy(data, DT, CONFIG)
    for index, step in enumerate(h.steps):
        with torch.random.fork_rng():
            torch.manual_seed(CONFIG.train.seed + index)
            initial = FlowMapMLP(2, CONFIG.widths)
        win = training_windows(data, step, 5)
        before = multi_step_loss(initial, win).item()
        assert multi_step_loss(h.models[index], win).item() < before / 10


def test_interrupted_hierarchy_training_resumes(tmp_path):
    data = tiny_data()
    straight = train_hierarchy(data, DT, CONFIG)
    short = HierarchyConfig(
        CONFIG.steps, CONFIG.widths, FlowMapTrainConfig(**{**vars(CONFIG.train), "epochs": 20})
    )
    train_hierarchy(data, DT, short, checkpoint_dir=tmp_path)  # "interrupted" half way
    assert len(list(tmp_path.glob("model*.pt"))) == 3
    resumed = train_hierarchy(data, DT, CONFIG, checkpoint_dir=tmp_path)
    assert _same(straight, resumed)


@pytest.mark.mpi(min_size=2)
@pytest.mark.parametrize("stacked", [False, True])
def test_two_ranks_give_serial_models(tmp_path_factory, stacked):
    """Each rank trains its share (stacked: together); root gets the one-by-one serial models."""
    import dataclasses

    from partime.comm import SerialComm, from_env

    comm = from_env("mpi")
    data = tiny_data()
    parallel = train_hierarchy(data, DT, dataclasses.replace(CONFIG, stacked=stacked), comm=comm)
    if comm.is_root:
        serial = train_hierarchy(data, DT, CONFIG, comm=SerialComm())
        assert (
            _same(parallel, serial)
            if not stacked
            else all(
                torch.allclose(p, q, rtol=1e-5, atol=1e-6)
                for a, b in zip(parallel.models, serial.models, strict=True)
                for p, q in zip(a.parameters(), b.parameters(), strict=True)
            )
        )
    else:
        assert parallel is None


def test_distributed_training_under_mpiexec():
    mpiexec = shutil.which("mpiexec")
    if mpiexec is None:
        pytest.skip("mpiexec not on PATH")
    cmd = ["timeout", "120", mpiexec, "-n", "2", sys.executable, "-m", "pytest", "--with-mpi"]
    cmd += ["-q", "-p", "no:cacheprovider", "-k", "two_ranks", __file__]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "2 passed" in proc.stdout


def test_chunk_trajectories_pieces_share_end_states():
    from partime.hits.workflow import chunk_trajectories

    data = tiny_data()  # (48, 21, 2)
    pieces = chunk_trajectories(data, 6)  # 4 pieces of 6 states per trajectory
    assert pieces.shape == (4 * 48, 6, 2)
    assert torch.equal(pieces[0], data[0, :6]) and torch.equal(pieces[48], data[0, 5:11])
    assert torch.equal(pieces[3 * 48 + 7, -1], data[7, 20])
    with pytest.raises(ValueError, match="n_points"):
        chunk_trajectories(data, 22)


def test_pint_hierarchy_is_float64_and_scaled(tmp_path, monkeypatch):
    from partime.hits.workflow import train_pint_hierarchy

    monkeypatch.setenv("PARTIME_CACHE", str(tmp_path / "cache"))
    train = FlowMapTrainConfig(epochs=3, batch_size=8, val_every=2)
    config = HierarchyConfig((1, 2), (8,), train, normalize=True)
    hierarchy = train_pint_hierarchy(config, n_train=2, n_val=1, system="hyperbolic")
    assert hierarchy.steps == [1, 2] and hierarchy.selected is None
    for model in hierarchy.models:
        assert model.normalize and next(model.parameters()).dtype == torch.float64
        assert float(model.in_scale.min()) > 0


def test_lr_stages_and_all_windows():
    import dataclasses

    from partime.hits.config import stage_epochs
    from partime.hits.training import train_one

    assert stage_epochs(40, 3) == [14, 13, 13]
    data = tiny_data()
    # Stage 1 of (1, 0.1) is the 20-epoch constant-rate run; stage 2 goes on from its model.
    first = dataclasses.replace(CONFIG, train=dataclasses.replace(CONFIG.train, epochs=20))
    _, history_a = train_one(0, data, None, first)
    model_b, history_b = train_one(0, data, None, dataclasses.replace(CONFIG, lr_stages=(1, 0.1)))
    assert len(history_b) == 40 and history_b[:20] == history_a
    assert sum(history_b[30:]) < sum(history_a[10:])
    # all_windows: the same as training on every 6-frame window (step 1) of each trajectory.
    every, _ = train_one(0, data, None, dataclasses.replace(CONFIG, all_windows=True))
    chunked, _ = train_one(0, chunk_trajectories(data, 6), None, CONFIG)
    first_only, _ = train_one(0, data, None, CONFIG)
    params = [list(m.parameters()) for m in (every, chunked, first_only)]
    assert all(torch.equal(p, q) for p, q in zip(params[0], params[1], strict=True))
    assert not all(torch.equal(p, q) for p, q in zip(params[0], params[2], strict=True))


def test_jacobian_fitted_coarse_needs_fewer_parareal_iterations():
    """The fitted hierarchy is a float64 tanh coarse propagator; with the Jacobian term parareal
    converges in fewer iterations than with a value-only fit of the same budget (Van der Pol)."""
    from partime.dynamics import VanDerPol
    from partime.hits import HierarchyPropagator
    from partime.hits.workflow import fit_pint_hierarchy
    from partime.pint import VectorizedExecutor, parareal, slice_times
    from partime.steppers import RKPropagator
    from partime.steppers.jacobian_fit import JacobianFitConfig

    fine = RKPropagator(VanDerPol(), 1e-2)
    gen = torch.Generator().manual_seed(0)
    states = 6 * torch.rand(1024, 2, generator=gen, dtype=torch.float64) - 3
    x0 = 4 * torch.rand(8, 2, generator=gen, dtype=torch.float64) - 2
    times = slice_times(8.0, 16)  # slices of 0.5 = 50 fine steps = one model step
    serial = fine(x0, 0.0, 8.0)
    iterations = []  # measured: 15 value-only, 10 with the Jacobian term
    for weight in (0.0, 10.0):
        fit = JacobianFitConfig(800, 3e-3, batch_size=128, jacobian_weight=weight, lbfgs_steps=0)
        hierarchy = fit_pint_hierarchy(fine, (50,), 1e-2, fit, widths=(32, 32), states=states)
        model = hierarchy.models[0]
        assert hierarchy.selected == (0, 0) and model.activation == "tanh" and model.normalize
        assert next(model.parameters()).dtype == torch.float64
        coarse = HierarchyPropagator(hierarchy)
        result = parareal(coarse, fine, x0, times, VectorizedExecutor(), tol=1e-10)
        assert result.converged
        assert torch.allclose(result.states[-1], serial, atol=1e-8)
        iterations.append(result.iterations)
    assert iterations[1] < iterations[0], iterations

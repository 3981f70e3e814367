"""MrCAE's progressive training on a small two-level problem: the stage plan and stopping
rules, resume after an interrupted stage sequence (bitwise), two ranks (``mpiexec -n 2`` and
``torchrun`` with gloo) equal to serial (float64, <= 1e-12), the RED-Net baselines, and bad
options refused with clear errors."""

from __future__ import annotations

import dataclasses
import os
import shutil
import tempfile

import numpy as np
import pytest
import torch
from two_ranks import MPIEXEC, mpiexec_pytest, torchrun_pytest

from partime.comm import SerialComm
from partime.train import TrainConfig
from partime.train.mrcae import ProgressiveConfig, train_progressive
from partime.train.mrcae_baselines import train_rednets

HERE = os.path.abspath(__file__)
TRAIN = TrainConfig(epochs=60, batch_size=12, optimizer="adam", lr=1e-2, weight_decay=1e-5,
                    adam_eps=1e-3, dtype="float64")  # fmt: skip
SHORT = dataclasses.replace(TRAIN, epochs=10)
PLAN = ProgressiveConfig(archs="1,2,3;1,2,4", tols=(1e-9, 1e-9), levels=2, val_every=2)


def snapshots(n: int = 40, seed: int = 0) -> np.ndarray:
    """A slow background times cos plus a small fast bump: toy 1 in miniature (n, 31, 31)."""
    t = np.linspace(0, 4 * np.pi, n)[:, None, None] + np.random.default_rng(seed).random() * 0.1
    y, x = np.meshgrid(np.linspace(-3, 3, 31), np.linspace(-3, 3, 31), indexing="ij")
    field = np.cos(0.5 * t) / np.cosh(x / 4) + np.exp(
        -((x - 1) ** 2 + (y + 1) ** 2) / 0.3
    ) * np.cos(4 * t)
    return (field - field.min()) / np.ptp(field)


def run(comm=None, plan=PLAN, train=TRAIN, callback=None):
    torch.set_num_threads(1)  # the conftest fixture restores the count
    data = snapshots()
    return train_progressive(data[:28], data[28:36], plan, train, comm, callback=callback)


def max_difference(a, b) -> float:
    pairs = zip(a.state_dict().values(), b.state_dict().values(), strict=True)
    return max(float((x - y).abs().max()) for x, y in pairs)


def test_stages_follow_the_plan_and_the_error_falls():
    result = run()
    ops = [(s.level, s.op, s.channels) for s in result.stages]
    assert ops == [(0, "deepen", 1), (0, "widen", 1), (0, "widen", 1),
                   (1, "deepen", 1), (1, "widen", 1), (1, "widen", 2)]  # fmt: skip
    assert result.model.config.widths == ((1, 1), (1, 2))
    errors = [s.best_val for s in result.stages]
    assert all(b < a for a, b in zip(errors[:-1], errors[1:], strict=True))
    assert errors[-1] < 0.3 * errors[0]
    assert [s.parameters for s in result.stages] == [20, 40, 60, 80, 100, 139]
    assert all(s.stop in ("max", "slow") for s in result.stages)  # tol 1e-9: never satisfied
    assert all(1 <= s.steps <= TRAIN.epochs for s in result.stages)


def test_a_loose_tolerance_clears_the_level():
    loose = dataclasses.replace(PLAN, tols=(1.0, 1.0))
    result = run(plan=loose)
    assert [(s.op, s.stop) for s in result.stages] == [("deepen", "satisfied")] * 2
    assert result.model.config.widths == ((), ())


def test_a_satisfied_stage_clears_its_level():
    """The stage that met the tolerance keeps those weights, so its level is clear (restoring
    the best-validation weights instead gave level 0 a second group here)."""
    result = run(plan=dataclasses.replace(PLAN, tols=(2e-3, 5e-4)))
    assert [(s.op, s.stop) for s in result.stages if s.level == 0] == [
        ("deepen", "slow"), ("widen", "satisfied")
    ]  # fmt: skip
    assert result.model.config.widths[0] == (1,)
    for stage, after in zip(result.stages, result.stages[1:], strict=False):
        assert stage.stop != "satisfied" or after.level != stage.level


def test_without_masks_every_group_acts_everywhere():
    result = run(plan=dataclasses.replace(PLAN, masks=False, activation="relu"), train=SHORT)
    assert result.model.config.widths == ((1, 1), (1, 2))
    for level in result.model.levels:
        assert all(bool(u.all()) for u in level.unresolved())


def test_resume_after_an_interrupt_is_bitwise():
    directory = tempfile.mkdtemp()
    try:
        whole = run(train=SHORT)

        def stop(record):
            if record.level == 1 and record.op == "deepen":
                raise KeyboardInterrupt

        parts = dataclasses.replace(SHORT, checkpoint=directory)
        with pytest.raises(KeyboardInterrupt):
            run(train=parts, callback=stop)
        resumed = run(train=dataclasses.replace(parts, resume=True))
        assert max_difference(resumed.model, whole.model) == 0.0
        assert [s.best_val for s in resumed.stages] == [s.best_val for s in whole.stages]
        with pytest.raises(ValueError, match="other options"):
            run(train=dataclasses.replace(parts, resume=True, lr=0.5))
    finally:
        shutil.rmtree(directory)


def test_rednet_baselines_train_one_net_per_stage():
    data = snapshots()
    torch.set_num_threads(1)
    records = train_rednets(((1,), (1,)), data[:28], data[28:36], PLAN, SHORT, "relu")
    assert [(r.level, r.channels, r.parameters) for r in records] == [
        (0, 1, 20), (0, 2, 39), (1, 1, 10 + 20 + 19 + 10), (1, 2, 20 + 38 + 38 + 19)
    ]  # fmt: skip
    assert [r.encoding_size for r in records] == [49, 98, 98 + 225, 98 + 450]
    assert all(np.isfinite(r.best_val) for r in records)


def test_rednet_baselines_levels_only_train_each_levels_widest_net():
    data = snapshots()
    torch.set_num_threads(1)
    records = train_rednets(((1,), (1,)), data[:28], data[28:36], PLAN, SHORT, levels_only=True)
    assert [(r.level, r.channels, r.parameters) for r in records] == [
        (0, 2, 39), (1, 2, 20 + 38 + 38 + 19)
    ]  # fmt: skip
    assert [r.encoding_size for r in records] == [98, 98 + 450]


def test_lr_decay_counts_the_steps_of_each_stage():
    """lr × 1e-30 from step 5 of every stage: the weights stop moving after step 4, so every
    validation from step 6 on (taken before that step) repeats the same error."""
    frozen = dataclasses.replace(TRAIN, epochs=20, lr_decay_epochs=(4,), lr_decay_factor=1e-30)
    result = run(train=frozen)
    assert len(result.stages) == 6
    for stage in result.stages:
        errors = dict(stage.curve)  # step - 1 -> global validation error
        assert len({errors[0], errors[1], errors[3]}) == 3  # moving while lr is 1e-2
        later = [e for step, e in stage.curve if step >= 5]
        assert len(later) >= 3 and max(later) - min(later) <= 1e-15 * max(later)


@pytest.mark.parametrize(
    ("options", "match"),
    [
        (dict(tols=(1e-3,)), "tols needs 2 positive values"),
        (dict(levels=3), "archs lists 2 levels but levels=3"),
        (dict(archs="2,3;1,2"), "start at 1"),
        (dict(archs="1,x;1,2"), "archs must look like"),
        (dict(omega=1.5), "omega"),
    ],
)
def test_bad_plans_are_refused(options, match):
    with pytest.raises(ValueError, match=match):
        dataclasses.replace(PLAN, **options)


def test_sgd_is_refused():
    with pytest.raises(ValueError, match="Adam"):
        run(train=dataclasses.replace(TRAIN, optimizer="sgd"))


def check_equals_serial(comm) -> None:
    """Two ranks (uneven shards: batches of 12 over 2 ranks, validation 8) give the serial
    run's weights, stages and errors; every rank ends with the same weights."""
    parallel = run(comm, train=SHORT)
    if comm.rank == 0:
        serial = run(SerialComm(), train=SHORT)
        assert max_difference(parallel.model, serial.model) <= 1e-12
        for got, want in zip(parallel.stages, serial.stages, strict=True):
            assert (got.steps, got.stop) == (want.steps, want.stop)
            assert abs(got.best_val - want.best_val) <= 1e-12
            assert np.allclose(got.curve, want.curve, rtol=0, atol=1e-12)
    states = comm.allgather([t.clone() for t in parallel.model.state_dict().values()])
    assert all(torch.equal(a, b) for a, b in zip(states[0], states[1], strict=True))


@pytest.mark.mpi(min_size=2)
def test_mpi_side_equals_serial():
    from partime.comm import from_env

    check_equals_serial(from_env("mpi"))


@pytest.mark.skipif("TORCHELASTIC_RUN_ID" not in os.environ, reason="runs under torchrun")
def test_torch_side_equals_serial():
    from partime.comm import from_env

    check_equals_serial(from_env("torch"))


@pytest.mark.slow
@pytest.mark.skipif(MPIEXEC is None, reason="mpiexec not found")
def test_mpiexec_two_ranks_equal_serial():
    proc = mpiexec_pytest(HERE)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "1 passed" in proc.stdout


@pytest.mark.slow
def test_torchrun_gloo_two_ranks_equal_serial():
    proc = torchrun_pytest(HERE)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "1 passed" in proc.stdout

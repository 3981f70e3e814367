"""RKPropagator and StepperCover: accuracy, per-row times, step checks, pickling."""

from __future__ import annotations

import math
import pickle

import pytest
import torch

from partime.dynamics import HarmonicOscillator, VanDerPol, reference_solution
from partime.steppers import Propagator, RKPropagator, StepperCover

X0 = torch.tensor([[1.0, 0.0], [0.0, 2.0]], dtype=torch.float64)


def harmonic_exact(x0, t):
    c, s = math.cos(t), math.sin(t)
    return torch.stack([x0[:, 0] * c + x0[:, 1] * s, -x0[:, 0] * s + x0[:, 1] * c], -1)


@pytest.mark.parametrize(("scheme", "order"), [("rk4", 4), ("heun", 2), ("euler", 1)])
def test_converges_at_its_order(scheme, order):
    f = HarmonicOscillator()
    errors = [
        (RKPropagator(f, dt, scheme)(X0, 0.0, 1.0) - harmonic_exact(X0, 1.0)).abs().max().item()
        for dt in (0.02, 0.01)
    ]
    assert math.log2(errors[0] / errors[1]) == pytest.approx(order, abs=0.15)


def test_per_row_times_match_scalar_times_and_scipy():
    f = VanDerPol()
    prop = RKPropagator(f, 0.005)
    assert isinstance(prop, Propagator) and prop.dim == 2
    t0 = torch.tensor([0.5, 2.0], dtype=torch.float64)
    rows = prop(X0, t0, t0 + 1.0)
    assert torch.equal(rows[1], prop(X0[1:], 2.0, 3.0)[0])
    ref = reference_solution(f, X0, [0.0, 1.0])[-1]
    assert (rows - ref).abs().max() < 1e-8


def test_trajectory_saves_every_kth_step():
    prop = RKPropagator(HarmonicOscillator(), 0.01)
    traj = prop.trajectory(X0, 0.0, 1.0, save_every=25)
    assert traj.shape == (5, 2, 2)
    assert torch.equal(traj[0], X0) and torch.equal(traj[-1], prop(X0, 0.0, 1.0))


@pytest.mark.parametrize(("t0", "t1"), [(0.0, 0.015), (0.0, 0.0), (1.0, 0.5)])
def test_interval_must_be_whole_steps(t0, t1):
    prop = RKPropagator(HarmonicOscillator(), 0.01)
    with pytest.raises(ValueError, match=rf"\[{t0}, .*dt=0.01"):
        prop(X0, t0, t1)


def test_bad_construction_and_mixed_durations():
    with pytest.raises(ValueError, match="dt must be positive"):
        RKPropagator(HarmonicOscillator(), 0.0)
    with pytest.raises(ValueError):
        RKPropagator(HarmonicOscillator(), 0.1, scheme="nope")
    prop = RKPropagator(HarmonicOscillator(), 0.01)
    t0 = torch.tensor([0.0, 0.5], dtype=torch.float64)
    with pytest.raises(ValueError, match="share one duration"):
        prop(X0, t0, torch.tensor([0.1, 0.7], dtype=torch.float64))


def test_pickles_for_ray_actors():
    prop = RKPropagator(VanDerPol(mu=1.5), 0.01, "rk38")
    clone = pickle.loads(pickle.dumps(prop))
    assert torch.equal(clone(X0, 0.0, 0.5), prop(X0, 0.0, 0.5))


def test_stepper_cover_applies_the_map_n_times():
    cover = StepperCover(lambda x: 2.0 * x, 0.25, dim=2)
    assert torch.equal(cover(X0, 0.0, 1.0), 16.0 * X0)
    assert cover.trajectory(X0, 0.0, 1.0, save_every=2).shape == (3, 2, 2)
    with pytest.raises(ValueError, match="dt=0.25"):
        cover(X0, 0.0, 0.3)
    with pytest.raises(ValueError, match="step must be positive"):
        StepperCover(lambda x: x, -1.0, 2)

"""SpectralPropagator: ETDRK4 on Kuramoto–Sivashinsky with physical-space states."""

from __future__ import annotations

import math

import pytest
import torch

from partime.dynamics import KuramotoSivashinsky
from partime.pint import parareal, slice_times
from partime.steppers import SpectralPropagator

KS = KuramotoSivashinsky(n=64)


def test_fourth_order_in_dt():
    u0 = KS.initial_condition(batch=2)
    ref = SpectralPropagator(KS, 1 / 64)(u0, 0.0, 2.0)
    errors = [
        (SpectralPropagator(KS, dt)(u0, 0.0, 2.0) - ref).abs().max().item() for dt in (0.25, 0.125)
    ]
    assert u0.shape == ref.shape == (2, 64) and ref.dtype == torch.float64
    assert math.log2(errors[0] / errors[1]) == pytest.approx(4.0, abs=0.5)


def test_trajectory_and_step_check():
    prop = SpectralPropagator(KS, 0.25)
    u0 = KS.initial_condition()
    traj = prop.trajectory(u0, 0.0, 1.0, save_every=2)
    assert traj.shape == (3, 1, 64) and torch.allclose(traj[-1], prop(u0, 0.0, 1.0))
    with pytest.raises(ValueError, match="dt=0.25"):
        prop(u0, 0.0, 0.3)


def test_as_parareal_propagators():
    coarse, fine = SpectralPropagator(KS, 0.5), SpectralPropagator(KS, 0.05)
    u0 = KS.initial_condition(batch=2)
    result = parareal(coarse, fine, u0, slice_times(4.0, 4), tol=0.0)
    assert torch.allclose(result.states[-1], fine(u0, 0.0, 4.0), rtol=1e-12, atol=1e-12)

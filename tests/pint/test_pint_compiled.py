"""Parareal with compiled (static-shape) RK propagators: warmed before timing, one fine shape."""

from __future__ import annotations

import pytest
import torch

from partime.dynamics import Lorenz
from partime.integrators import fast as fast_path
from partime.pint import parareal, slice_times
from partime.steppers import RKPropagator

X0 = torch.tensor([[1.0, 1.0, 1.0], [-2.0, 3.0, 20.0]], dtype=torch.float64)


class _ShrinkingRK(RKPropagator):
    """The same compiled propagator, run only on the active slices (the eager behaviour)."""

    static_shapes = False


def test_static_shapes_only_for_compiled_component_systems():
    f = Lorenz()
    assert RKPropagator(f, 0.01, fast=True).static_shapes
    assert not RKPropagator(f, 0.01).static_shapes
    assert not RKPropagator(f, 0.01, fast=False).static_shapes
    decay = lambda t, x: -x  # noqa: E731 - a plain callable, not a ComponentSystem
    decay.dim = 3
    assert not RKPropagator(decay, 0.01, fast=True).static_shapes


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # a compile failure falls back to eager
def test_compiled_parareal_runs_all_slices_and_matches_the_shrinking_pass():
    f = Lorenz()
    # 4 fine steps per slice: a small block that compiles in seconds.
    coarse, fine = RKPropagator(f, 0.04, fast=True), RKPropagator(f, 0.01, fast=True)
    times = slice_times(0.24, 6)
    result = parareal(coarse, fine, X0, times, tol=0.0)
    compiled = set(fast_path._compiled)
    again = parareal(coarse, fine, X0, times, tol=0.0)
    assert set(fast_path._compiled) == compiled  # the second solve compiled nothing new
    shrinking = parareal(coarse, _ShrinkingRK(f, 0.01, fast=True), X0, times, tol=0.0)
    assert result.iterations == 6 and result.fine_calls == 6 + 5 + 4 + 3 + 2 + 1
    assert torch.equal(result.states, again.states)
    assert torch.equal(result.states, shrinking.states)
    serial = RKPropagator(f, 0.01, fast=False).trajectory(X0, 0.0, 0.24, save_every=4)
    assert torch.allclose(result.states, serial, rtol=1e-13, atol=1e-13)

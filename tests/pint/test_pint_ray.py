"""Ray executor: same answer as vectorized, also when an actor dies mid-solve."""

from __future__ import annotations

import pytest
import torch

from partime.dynamics import VanDerPol
from partime.pint import RayExecutor, make_executor, parareal, slice_times
from partime.steppers import RKPropagator

ray = pytest.importorskip("ray")


@pytest.fixture(scope="module")
def ray_session():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def problem():
    f = VanDerPol()
    x0 = torch.tensor([[2.0, 0.0], [0.5, -1.0], [1.0, 1.0]], dtype=torch.float64)
    return RKPropagator(f, 0.1, "heun"), RKPropagator(f, 0.005), x0, slice_times(3.0, 6)


def test_ray_equals_vectorized_and_survives_a_killed_actor(ray_session):
    coarse, fine, x0, times = problem()
    ref = parareal(coarse, fine, x0, times, tol=1e-10)
    executor = make_executor("ray", workers=2)
    assert isinstance(executor, RayExecutor)
    try:
        result = parareal(coarse, fine, x0, times, executor, tol=1e-10)
        killed, after = [], []

        def kill_an_actor(state):
            if state.iteration == 1:
                killed.append(executor.actors[0])
                ray.kill(executor.actors[0])
            elif state.iteration == 2:
                after.append(executor.actors[0])

        faulty = parareal(coarse, fine, x0, times, executor, tol=1e-10, callback=kill_an_actor)
    finally:
        executor.close()
    assert result.iterations == ref.iterations == faulty.iterations
    assert (result.states - ref.states).abs().max() <= 1e-12
    assert killed and after and after[0] != killed[0]  # the dead actor was replaced
    assert (faulty.states - ref.states).abs().max() <= 1e-12

"""Ray executor: same answer as vectorized, also when an actor dies mid-solve."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch

from partime.dynamics import VanDerPol
from partime.pint import RayExecutor, make_executor, parareal, slice_times
from partime.pint.executors.ray import from_wire, to_wire
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


@pytest.mark.parametrize("dtype", [torch.float64, torch.complex128, torch.bfloat16], ids=str)
def test_tensors_travel_to_actors_as_numpy_where_numpy_has_their_dtype(dtype):
    x = torch.arange(6.0).reshape(2, 3).to(dtype)
    wire = to_wire(x)
    if dtype == torch.bfloat16:  # no numpy dtype: travels as the tensor (Ray pickles it)
        assert from_wire(wire) is x
        return
    assert isinstance(wire, np.ndarray)
    wire = wire.copy()
    wire.flags.writeable = False  # as Ray hands out what it deserialized in place
    back = from_wire(wire)
    assert back.dtype == dtype and torch.equal(back, x)
    back += 1  # a writable copy


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


def _alive_actors() -> list:
    from ray._private.state import actors  # the GCS actor table; needs no dashboard

    return [a for a in actors().values() if a["State"] == "ALIVE"]


def test_a_solve_that_raises_leaves_no_ray_actor_alive(ray_session, tmp_path):
    from partime.pint.config import SolveConfig
    from partime.pint.solve import solve
    from partime.steppers import FlowMapMLP, NeuralStepper

    broken = FlowMapMLP(2, widths=(4,)).double()
    with torch.no_grad():
        for p in broken.parameters():
            p.fill_(float("nan"))  # the fine solves return NaN: the driver raises mid-solve
    NeuralStepper(broken, 0.125).save(tmp_path / "nan.pt")
    NeuralStepper(FlowMapMLP(2, widths=(4,)).double(), 0.25).save(tmp_path / "coarse.pt")
    fine, coarse = f"neural:{tmp_path / 'nan.pt'}", f"neural:{tmp_path / 'coarse.pt'}"
    config = SolveConfig("none", 1.0, 4, fine, coarse, x0=(1.0, 0.0), backend="ray",
                         workers=2, progress=False)  # fmt: skip
    with pytest.raises(FloatingPointError, match="the fine solve of slice"):
        solve(config)  # raised on the driver once the actors' fine solves came back
    assert ray.is_initialized()  # the caller's Ray is left running, its actors are not
    for _ in range(100):
        if not _alive_actors():
            break
        time.sleep(0.1)
    assert _alive_actors() == []

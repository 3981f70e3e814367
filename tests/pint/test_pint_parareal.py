"""Parareal core on the vectorized executor: exactness, hybrid, convergence, bad input."""

from __future__ import annotations

import math

import pytest
import torch

from partime.dynamics import HarmonicOscillator, Lorenz, VanDerPol, reference_solution
from partime.integrators import kernels
from partime.pint import VectorizedExecutor, parareal, slice_times
from partime.steppers import FlowMapMLP, NeuralStepper, RKPropagator, StepperCover, train_flow_map

X0_LORENZ = torch.tensor(
    [[1.0, 1.0, 1.0], [-2.0, 3.0, 20.0], [5.0, -5.0, 25.0]], dtype=torch.float64
)


def lorenz_problem(n_slices: int = 6, t_end: float = 0.6):
    f = Lorenz()
    return RKPropagator(f, 0.02), RKPropagator(f, 1e-3), X0_LORENZ, slice_times(t_end, n_slices)


def test_k_equals_n_is_serial_fine():
    coarse, fine, x0, times = lorenz_problem()
    result = parareal(coarse, fine, x0, times, tol=0.0)
    serial = fine.trajectory(x0, 0.0, 0.6, save_every=100)  # slice ends every 0.1
    assert result.iterations == 6 and result.converged
    assert torch.allclose(result.states, serial, rtol=1e-13, atol=0)
    assert len(result.residuals) == 6
    assert result.fine_calls == 6 + 5 + 4 + 3 + 2 + 1 and result.coarse_calls == 6 + 15


def test_max_iter_zero_is_the_hybrid_scheme():
    coarse, fine, x0, times = lorenz_problem()
    result = parareal(coarse, fine, x0, times, max_iter=0, save_every=10)
    points = [x0]  # by hand: coarse sweep, then fine from every coarse point
    for n in range(6):
        points.append(coarse(points[-1], float(times[n]), float(times[n + 1])))
    pieces = [
        fine.trajectory(points[n], float(times[n]), float(times[n + 1]), 10) for n in range(6)
    ]
    by_hand = torch.cat([p[:-1] for p in pieces] + [pieces[-1][-1:]])
    assert result.iterations == 0 and result.residuals == [] and not result.converged
    assert torch.equal(result.states, torch.stack(points))
    assert result.trajectory.shape == (61, 3, 3)
    assert torch.allclose(result.trajectory, by_hand, rtol=1e-14, atol=1e-14)


def test_stops_at_tolerance_and_matches_serial_fine():
    coarse, fine, x0, times = lorenz_problem(n_slices=12, t_end=1.2)
    result = parareal(coarse, fine, x0, times, tol=1e-10)
    assert result.converged and result.iterations < 12
    assert result.residuals[-1] <= 1e-10 < result.residuals[-2]
    assert (result.states[-1] - fine(x0, 0.0, 1.2)).abs().max() < 1e-10


def test_harmonic_oscillator_converges_to_exact_solution():
    f = HarmonicOscillator()
    x0 = torch.tensor([[1.0, 0.0], [0.0, 2.0]], dtype=torch.float64)
    times = slice_times(2 * math.pi, 16)
    result = parareal(
        RKPropagator(f, times[1].item() / 2, "midpoint"),
        RKPropagator(f, times[1].item() / 40),
        x0,
        times,
        tol=1e-12,
    )
    t = times[:, None]
    exact = torch.stack(  # x' = v, v' = -x
        [
            x0[:, 0] * torch.cos(t) + x0[:, 1] * torch.sin(t),
            -x0[:, 0] * torch.sin(t) + x0[:, 1] * torch.cos(t),
        ],
        -1,
    )
    assert result.converged and result.iterations <= 8
    assert (result.states - exact).abs().max() < 1e-8


def test_van_der_pol_matches_scipy_with_rk_coarse():
    f = VanDerPol()
    x0 = torch.tensor([[2.0, 0.0], [0.5, -1.0]], dtype=torch.float64)
    times = slice_times(4.0, 20)
    result = parareal(RKPropagator(f, 0.1, "heun"), RKPropagator(f, 0.005), x0, times, tol=1e-10)
    ref = reference_solution(f, x0, times.numpy())
    assert result.converged and result.iterations < 20
    assert (result.states - ref).abs().max() < 1e-8


def test_neural_coarse_propagator_converges():
    f = VanDerPol()
    torch.manual_seed(0)
    fine = RKPropagator(f, 0.01)
    x0s = torch.rand(32, 2, dtype=torch.float64) * 4 - 2
    data = fine.trajectory(x0s, 0.0, 4.0, save_every=10).transpose(0, 1).float()  # dt 0.1
    model = FlowMapMLP(2, widths=(32, 32))
    train_flow_map(model, data, stride=1, epochs=300, batch_size=64, seed=0)
    coarse = NeuralStepper(model, 0.1)
    x0 = torch.tensor([[2.0, 0.0], [1.0, 1.0]], dtype=torch.float64)
    times = slice_times(4.0, 10)
    result = parareal(coarse, fine, x0, times, tol=1e-10)
    assert result.converged
    assert (result.states[-1] - fine(x0, 0.0, 4.0)).abs().max() < 1e-10
    assert result.residuals[0] > result.residuals[-1]


def test_stepper_cover_as_coarse():
    f = HarmonicOscillator()
    rk = RKPropagator(f, 0.05)
    coarse = StepperCover(lambda x: rk(x, 0.0, 0.05), 0.05, 2)
    x0 = torch.tensor([[1.0, 0.0]], dtype=torch.float64)
    times = slice_times(1.0, 5)
    result = parareal(coarse, RKPropagator(f, 0.01), x0, times, max_iter=0)
    assert torch.equal(result.states[-1], rk(x0, 0.0, 1.0))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"times": torch.tensor([0.0, 0.0])}, "T > 0"),
        ({"times": torch.tensor([1.0, 0.5, 0.0])}, "T > 0"),
        ({"times": slice_times(0.6, 4)}, "not a positive whole number of steps dt=0.02"),
        ({"coarse": RKPropagator(HarmonicOscillator(), 0.02)}, "coarse.dim=2, fine.dim=3"),
        ({"x0": torch.tensor([[1.0, float("nan"), 0.0]])}, "NaN"),
        ({"x0": torch.ones(3)}, r"\(batch, dim\)"),
        ({"tol": -1.0}, "tol"),
        ({"max_iter": -1}, "max_iter"),
    ],
)
def test_bad_input_is_rejected(change, message):
    coarse, fine, x0, times = lorenz_problem()
    args = {"coarse": coarse, "fine": fine, "x0": x0, "times": times, **change}
    with pytest.raises(ValueError, match=message):
        parareal(**args)


def test_fewer_slices_than_ranks_is_rejected_before_communication():
    class TwoRanks(VectorizedExecutor):
        size = 2  # any communication would fail: sweep has no neighbours here

    coarse, fine, x0, _ = lorenz_problem()
    with pytest.raises(ValueError, match="1 time slices for 2 ranks"):
        parareal(coarse, fine, x0, slice_times(0.1, 1), TwoRanks())


def test_nan_during_solve_names_slice_and_time():
    class BlowUp(Lorenz):
        def components(self, t, x, y, z):
            dx, dy, dz = super().components(t, x, y, z)
            return dx / (t < 0.35), dy, dz  # infinite rate from t = 0.35 on

    fine = RKPropagator(BlowUp(), 1e-3, fast=False)
    coarse, _, x0, times = lorenz_problem()
    with pytest.raises(FloatingPointError, match=r"fine solve of slice 3 on \[0.3\d*, 0.4\d*\]"):
        parareal(coarse, fine, x0, times)


class BlowUpAt035(Lorenz):
    """Lorenz whose x rate grows like exp(2000 (t - 0.35)): finite before slice 3 of
    ``lorenz_problem``, overflowing inside it; a component system the kernels compile."""

    def components(self, t, x, y, z):
        dx, dy, dz = super().components(t, x, y, z)
        return dx * torch.exp(2000.0 * (t - 0.35)), dy, dz


@pytest.mark.skipif(kernels.find_compiler() is None, reason="no C compiler")
@pytest.mark.parametrize("blown", ["fine", "coarse"])
def test_nan_in_a_fused_sweep_names_the_propagator_and_slice(blown, tmp_path, monkeypatch):
    """The fused sweep checks the fine ends and its own for NaN/Inf as it writes them; the
    error names the same propagator and slice as the unfused checks."""
    monkeypatch.setenv(kernels.CACHE_ENV, str(tmp_path))
    systems = {name: BlowUpAt035() if name == blown else Lorenz() for name in ("fine", "coarse")}
    coarse = RKPropagator(systems["coarse"], 0.02, fast=True)
    fine = RKPropagator(systems["fine"], 1e-3, fast=False)
    _, _, x0, times = lorenz_problem()
    assert coarse.fused_sweep(x0, times[:-1], times[1:]) is not None
    with pytest.raises(FloatingPointError, match=rf"{blown} solve of slice 3 on \[0.3\d*, 0.4"):
        parareal(coarse, fine, x0, times)

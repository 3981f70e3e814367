"""The ODE-Net convergence test: the exact pendulum, and the quick run's Euler dip."""

import json
import math

import numpy as np
import pytest
import torch

from partime.cli.main import main
from partime.integrators import integrate
from partime.nets.convergence import ConvergenceConfig, pendulum_exact, pendulum_rhs


def test_exact_pendulum_matches_a_fine_integration():
    theta0 = 3 * math.pi / 4
    x0 = torch.tensor(pendulum_exact(0.0, theta0), dtype=torch.float64)
    torch.testing.assert_close(x0, torch.tensor([[theta0, 0.0]], dtype=torch.float64))
    fine = integrate(pendulum_rhs, x0, 0.0, 1e-3, 2000, "rk4")[0]
    np.testing.assert_allclose(fine.numpy(), pendulum_exact(2.0, theta0)[0], atol=1e-9)
    # energy θ̇²/2 − g cos θ is conserved along the exact orbit
    states = pendulum_exact(np.linspace(0, 10, 101), theta0)
    energy = 0.5 * states[:, 1] ** 2 - 9.81 * np.cos(states[:, 0])
    assert np.ptp(energy) < 1e-10


def test_step_sweep_includes_the_data_spacing():
    config = ConvergenceConfig(dt_data=0.02, min_step=1e-3)
    assert 100 in config.step_counts() and config.horizon / config.step_counts()[-1] == 1e-3
    with pytest.raises(ValueError, match="dt_data=0.3"):
        ConvergenceConfig(dt_data=0.3)
    with pytest.raises(ValueError, match="'rk5'"):
        ConvergenceConfig(schemes=("euler", "rk5"))
    with pytest.raises(ValueError, match="iterations=0"):
        ConvergenceConfig.quick(iterations=0)


@pytest.mark.slow
def test_quick_run_shows_the_euler_dip_and_rk_convergence(tmp_path, capsys):
    plot = tmp_path / "convergence.png"
    argv = ["convergence-test", "--quick", "--schemes", "euler,rk38", "--json", "--no-progress"]
    assert main([*argv, "--integrators", "euler,midpoint,rk38", "--plot", str(plot)]) == 0
    result = json.loads(capsys.readouterr().out)
    assert plot.stat().st_size > 0
    summary, errors = result["summary"], result["errors"]
    # Euler-trained G: ≥ 100x smaller error at h = Δt than as h -> 0, where it does not converge
    assert summary["euler"]["dip_ratio"] >= 100
    assert summary["euler"]["error_at_min_h"] > 0.5
    # RK-trained G: no dip; converged to one model-error floor under rk38 and midpoint, and
    # under Euler converging at first order
    assert summary["rk38"]["dip_ratio"] < 3
    floor = errors["rk38"]["rk38"][-1]
    assert floor < 0.02
    np.testing.assert_allclose(errors["rk38"]["rk38"][-3:], floor, rtol=0.01)
    np.testing.assert_allclose(errors["rk38"]["midpoint"][-2:], floor, rtol=0.05)
    to_euler = errors["rk38"]["euler"]
    assert to_euler[-1] < to_euler[-2] < to_euler[-3]
    assert 1.5 < to_euler[-2] / to_euler[-1] < 2.5  # h halves: first order

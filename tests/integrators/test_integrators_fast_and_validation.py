"""Compiled fast path agrees with the eager path; bad input fails with a clear error."""

import math

import pytest
import torch

from partime.dynamics.base import ComponentSystem
from partime.integrators import ETDRK4, get_tableau, integrate


class Forced(ComponentSystem):
    """A non-autonomous 2-D system, so the fast path's stage times are exercised too."""

    name = "forced"
    dim = 2

    def components(self, t, x, y):
        return y, -x - 0.1 * y + torch.cos(torch.as_tensor(t, dtype=x.dtype))


def test_fast_path_matches_eager_with_per_row_times_and_saving():
    torch.manual_seed(0)
    f = Forced()
    x0 = torch.randn(3, 2, dtype=torch.float64)
    t0 = torch.tensor([0.0, 0.5, -1.0], dtype=torch.float64)
    # 57 steps saved every 19: compiled blocks of 10 plus eager remainders, and a tail.
    eager = integrate(f, x0, t0, 0.01, 57, save_every=19, fast=False)
    fast = integrate(f, x0, t0, 0.01, 57, save_every=19, fast=True)
    assert fast.shape == eager.shape == (4, 3, 2)
    torch.testing.assert_close(fast, eager, rtol=0, atol=1e-12)
    # A second call reuses the cached compiled block; a scalar t0 and no saving.
    final = integrate(f, x0, 0.25, 0.01, 35, fast=True)
    torch.testing.assert_close(
        final, integrate(f, x0, 0.25, 0.01, 35, fast=False), rtol=0, atol=1e-12
    )
    assert x0.equal(eager[0])  # x0 untouched by the in-place buffers


def test_fast_true_refuses_autograd():
    x0 = torch.ones(1, 2, dtype=torch.float64, requires_grad=True)
    with pytest.raises(ValueError, match="fast=True"):
        integrate(Forced(), x0, 0.0, 0.1, 5, fast=True)
    assert integrate(Forced(), x0, 0.0, 0.1, 5).requires_grad  # auto picks eager


@pytest.mark.parametrize("dt", [0.0, -0.1, math.nan, math.inf])
def test_bad_dt(dt):
    with pytest.raises(ValueError, match=f"dt={dt}"):
        integrate(Forced(), torch.ones(1, 2), 0.0, dt, 10)


@pytest.mark.parametrize("n_steps", [-1, 2.5, "3"])
def test_bad_n_steps(n_steps):
    with pytest.raises(ValueError, match="n_steps"):
        integrate(Forced(), torch.ones(1, 2), 0.0, 0.1, n_steps)


def test_nan_initial_state():
    x0 = torch.tensor([[1.0, 2.0], [3.0, math.nan]])
    with pytest.raises(ValueError, match=r"nan at index \(1, 1\)"):
        integrate(Forced(), x0, 0.0, 0.1, 10)


def test_non_tensor_state():
    with pytest.raises(TypeError, match="torch.Tensor"):
        integrate(Forced(), [[1.0, 2.0]], 0.0, 0.1, 10)


@pytest.mark.parametrize("fast", [False, True])
def test_shape_mismatch_with_component_system(fast):
    with pytest.raises(ValueError, match=r"shape \(4, 3\).*dimension 2"):
        integrate(Forced(), torch.ones(4, 3), 0.0, 0.1, 10, fast=fast)


def test_shape_mismatch_with_plain_function():
    def f(t, x):
        return x[..., :1]

    with pytest.raises(ValueError, match=r"shape \(4, 1\).*\(4, 3\)"):
        integrate(f, torch.ones(4, 3), 0.0, 0.1, 10)


def test_unknown_scheme_lists_known_names():
    with pytest.raises(ValueError, match="'rk5'.*euler.*rk38"):
        integrate(Forced(), torch.ones(1, 2), 0.0, 0.1, 10, scheme="rk5")
    with pytest.raises(ValueError, match="unknown scheme"):
        get_tableau("dopri")


def test_etdrk4_bad_input():
    with pytest.raises(ValueError, match="dt=-1"):
        ETDRK4(torch.tensor([-1.0 + 0j]), lambda v: v, -1.0)
    solver = ETDRK4(torch.tensor([-1.0 + 0j, -2.0 + 0j]), lambda v: v, 0.1)
    with pytest.raises(ValueError, match=r"shape \(3,\).*2 modes"):
        solver.step(torch.ones(3, dtype=torch.complex128))

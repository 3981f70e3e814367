"""Compiled fast path agrees with the eager path; bad input fails with a clear error."""

import math
import warnings

import pytest
import torch

from partime.dynamics import Lorenz
from partime.dynamics.base import ComponentSystem
from partime.integrators import ETDRK4, get_tableau, integrate
from partime.integrators.inductor import block_size, padded_rows


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
    # 23 steps saved every 7: compiled blocks of 7, and an unsaved tail of 2 steps.
    eager = integrate(f, x0, t0, 0.01, 23, save_every=7, fast=False)
    fast = integrate(f, x0, t0, 0.01, 23, save_every=7, fast=True)
    assert fast.shape == eager.shape == (4, 3, 2)
    torch.testing.assert_close(fast, eager, rtol=0, atol=1e-12)
    # A scalar t0 and no saving: two compiled blocks of 7 (cached) and 3 eager steps.
    final = integrate(f, x0, 0.25, 0.01, 17, fast=True, save_every=None)
    torch.testing.assert_close(
        final, integrate(f, x0, 0.25, 0.01, 17, fast=False), rtol=0, atol=1e-12
    )
    assert x0.equal(eager[0])  # x0 untouched by the in-place buffers


# One instance: compiled blocks are cached per system object (batches 1 and 7 share a kernel).
LORENZ = Lorenz()


@pytest.mark.parametrize("batch", [1, 7, 1024])
def test_fast_lorenz_matches_eager_at_every_batch(batch):
    gen = torch.Generator().manual_seed(batch)
    x0 = torch.randn(batch, 3, dtype=torch.float64, generator=gen) * 5 + 10
    x0_copy = x0.clone()
    f = LORENZ
    # Saved every 4 steps: compiled blocks of 4 (the number of steps each call fuses).
    fast = integrate(f, x0, 0.0, 1e-3, 14, save_every=4, fast=True)
    eager = integrate(f, x0, 0.0, 1e-3, 14, save_every=4, fast=False)
    assert fast.shape == (4, batch, 3)
    torch.testing.assert_close(fast, eager, rtol=0, atol=1e-12)
    # Unsaved: the cached block of 4 three times, then 2 eager steps.
    torch.testing.assert_close(
        integrate(f, x0, 0.0, 1e-3, 14, fast=True),
        integrate(f, x0, 0.0, 1e-3, 14, fast=False),
        rtol=0,
        atol=1e-12,
    )
    assert x0.equal(x0_copy)  # at batch 1 a component "copy" can be a view of x0


def test_fast_state_without_batch_dimensions():
    x0 = torch.tensor([1.0, 2.0, 20.0], dtype=torch.float64)
    fast = integrate(LORENZ, x0, 0.0, 1e-3, 8, save_every=4, fast=True)
    assert fast.shape == (3, 3)
    torch.testing.assert_close(
        fast, integrate(LORENZ, x0, 0.0, 1e-3, 8, save_every=4, fast=False), rtol=0, atol=1e-12
    )


class ValueDependent(ComponentSystem):
    """Branches on state values in Python, which cannot be compiled into one kernel."""

    name = "value-dependent"
    dim = 1

    def components(self, t, x):
        return (-x if float(x.sum()) > 0 else x,)


def test_uncompilable_system_warns_once_and_falls_back_to_eager():
    f = ValueDependent()
    x0 = torch.ones(2, 1, dtype=torch.float64)
    with pytest.warns(RuntimeWarning, match="falling back to the eager integrator"):
        result = integrate(f, x0, 0.0, 0.1, 5, fast=True)
    torch.testing.assert_close(result, integrate(f, x0, 0.0, 0.1, 5, fast=False))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the failure is cached: no second attempt or warning
        torch.testing.assert_close(integrate(f, x0, 0.0, 0.1, 5, fast=True), result)


@pytest.mark.parametrize(
    ("segment", "block"), [(1, 1), (20, 20), (40, 20), (45, 15), (57, 19), (59, 20), (300, 20)]
)
def test_block_size_prefers_divisors_of_the_saving_interval(segment, block):
    assert block_size(segment) == block


def test_padded_rows_bounds_waste_and_shapes():
    assert [padded_rows(n) for n in (1, 7, 16, 17, 100, 1000, 1024, 1025)] == [
        16,
        16,
        16,
        32,
        112,
        1024,
        1024,
        1280,
    ]
    for n in range(1, 5000, 7):
        assert n <= padded_rows(n) <= max(n + 15, 1.25 * n)
    assert len({padded_rows(n) for n in range(1025, 2049)}) == 4  # four shapes per octave


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

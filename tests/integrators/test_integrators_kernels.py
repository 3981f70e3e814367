"""Generated C kernels equal the eager path, row by row, on built-in and user systems."""

import warnings

import pytest
import torch

from partime.dynamics import SYSTEMS, ComponentSystem, Lorenz
from partime.integrators import fast, integrate, kernels

BUILTINS = sorted(name for name, cls in SYSTEMS.items() if issubclass(cls, ComponentSystem))
needs_cc = pytest.mark.skipif(kernels.find_compiler() is None, reason="no C compiler")


class Driven(ComponentSystem):
    """A user system with time, libm functions, powers and divisions: every kind of term."""

    name = "driven"
    dim = 3

    def __init__(self, gain: float = 0.7) -> None:
        self.gain = gain

    def components(self, t, x, y, z):
        time = torch.as_tensor(t, dtype=x.dtype)
        drive = self.gain * torch.sin(2.0 * time) + torch.exp(-0.5 * time)
        return (
            y - x**3 / 3.0 + drive,
            -x + 0.1 * y.tanh() - torch.sqrt(1.0 + z * z) + z**2 - 1 / (2.0 + torch.cos(x)),
            x.pow(0.5 * 2) * torch.zeros_like(z) - z / (1.0 + y**2) + (1.0 + x * x) ** -0.5,
        )


def starts(batch: int, dim: int, dtype=torch.float64, seed: int = 0):
    gen = torch.Generator().manual_seed(seed + batch)
    x0 = torch.randn(batch, dim, dtype=dtype, generator=gen)
    t0 = torch.rand(batch, dtype=torch.float64, generator=gen) * 3.0 - 1.0
    return x0, t0


def kernel_and_eager(f, x0, t0, dt, n, **kwargs):
    return (
        integrate(f, x0, t0, dt, n, fast=True, **kwargs),
        integrate(f, x0, t0, dt, n, fast=False, **kwargs),
    )


@needs_cc
@pytest.mark.parametrize("batch", [1, 7, 1024])
@pytest.mark.parametrize("name", BUILTINS)
def test_kernel_equals_eager_on_every_builtin_system(name, batch):
    f = SYSTEMS[name]()
    x0, t0 = starts(batch, f.dim)
    if name == "lorenz":
        x0 = 5 * x0 + torch.tensor([0.0, 0.0, 25.0], dtype=torch.float64)
    built = kernels.STATS["compiled"] + kernels.STATS["loaded"]
    kernel, eager = kernel_and_eager(f, x0, t0, 1e-2, 40, save_every=8)
    assert kernels.STATS["compiled"] + kernels.STATS["loaded"] <= built + 1
    assert kernel.shape == (6, batch, f.dim)
    torch.testing.assert_close(kernel, eager, rtol=0, atol=1e-13)
    final, final_eager = kernel_and_eager(f, x0, 0.25, 1e-2, 13)  # one start time for all rows
    torch.testing.assert_close(final, final_eager, rtol=0, atol=1e-13)


@needs_cc
@pytest.mark.parametrize("batch", [1, 7, 1024])
def test_kernel_equals_eager_on_a_user_system_with_per_row_times(batch):
    x0, t0 = starts(batch, 3)
    for scheme in ("rk4", "midpoint", "rk38"):
        kernel, eager = kernel_and_eager(Driven(), x0, t0, 1e-2, 30, scheme=scheme, save_every=6)
        torch.testing.assert_close(kernel, eager, rtol=0, atol=1e-13)
    assert any(key[0] is Driven for key in fast._compiled)  # a kernel ran, not a fallback


@needs_cc
def test_float32_kernel_matches_eager_and_leading_dimensions_are_kept():
    x0 = 5 * torch.randn(2, 5, 3) + torch.tensor([0.0, 0.0, 25.0])
    t0 = torch.rand(2, 5, dtype=torch.float64)
    kernel, eager = kernel_and_eager(Lorenz(), x0, t0, 1e-3, 50, save_every=10)
    assert kernel.dtype == torch.float32 and kernel.shape == (6, 2, 5, 3)
    torch.testing.assert_close(kernel, eager, rtol=1e-5, atol=1e-4)
    kernel, eager = kernel_and_eager(Driven(), x0[0, 0], 0.5, 1e-2, 20)  # no batch dimension
    assert kernel.shape == (3,)
    torch.testing.assert_close(kernel, eager, rtol=1e-5, atol=1e-5)


@needs_cc
def test_rows_do_not_depend_on_batch_position_or_threads():
    f = Lorenz()
    x0, t0 = starts(1000, 3, seed=3)
    x0 = 5 * x0 + torch.tensor([0.0, 0.0, 25.0], dtype=torch.float64)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        batch = integrate(f, x0, t0, 1e-3, 300, fast=True)
        torch.set_num_threads(2)  # 1000 rows x 300 steps: split over two threads
        assert torch.equal(integrate(f, x0, t0, 1e-3, 300, fast=True), batch)
    finally:
        torch.set_num_threads(threads)
    for row in (0, 7, 8, 23, 24, 999):
        alone = integrate(f, x0[row : row + 1], t0[row : row + 1], 1e-3, 300, fast=True)
        assert torch.equal(alone[0], batch[row])


class NumpyInside(ComponentSystem):
    """Calls numpy on the state: works eagerly on CPU tensors, cannot be traced."""

    name = "numpy-inside"
    dim = 1

    def components(self, t, x):
        import numpy as np

        return (torch.as_tensor(np.cos(x.numpy())),)


class Reducing(ComponentSystem):
    """Couples the rows through a mean over the batch: not elementwise."""

    name = "reducing"
    dim = 1

    def components(self, t, x):
        return (x - x.mean(),)


@pytest.mark.parametrize("system", [NumpyInside(), Reducing()])
@pytest.mark.parametrize("mode", [True, None])
def test_untranslatable_field_falls_back_to_eager_with_one_warning(system, mode):
    fast._unsupported.clear()
    x0 = torch.linspace(-1, 1, 5, dtype=torch.float64)[:, None]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        first = integrate(system, x0, 0.0, 0.1, 5, fast=mode)
        second = integrate(system, x0, 0.0, 0.1, 5, fast=mode)
    messages = [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)]
    assert len(messages) == 1 and "falling back to the eager integrator" in messages[0]
    eager = integrate(system, x0, 0.0, 0.1, 5, fast=False)
    assert torch.equal(first, eager) and torch.equal(second, eager)


@needs_cc
def test_auto_compiles_once_the_eager_time_pays_for_it(monkeypatch):
    monkeypatch.setattr(fast, "_compile_estimate_s", lambda: 0.01)
    f = Lorenz(rho=27.5)  # a kernel no other test builds
    x0 = torch.tensor([[1.0, 2.0, 20.0]], dtype=torch.float64)
    compiled = kernels.STATS["compiled"]
    results = []
    while len(results) < 10:  # each 10-step call is worth ~1.4 ms of eager work
        results.append(integrate(f, x0, 0.0, 1e-3, 10))
        if kernels.STATS["compiled"] > compiled:
            break
    assert 4 <= len(results) < 10, len(results)  # neither at once nor never
    torch.testing.assert_close(results[0], results[-1], rtol=0, atol=0)
    # A long run of a new system compiles at its first call: the run alone pays for it.
    integrate(Lorenz(rho=27.25), x0, 0.0, 1e-3, 5000)
    assert kernels.STATS["compiled"] == compiled + 2


def test_grad_needing_calls_stay_eager():
    x0 = torch.ones(1, 3, dtype=torch.float64, requires_grad=True)
    x1 = integrate(Lorenz(), x0, 0.0, 1e-3, 20)
    (grad,) = torch.autograd.grad(x1.sum(), x0)
    assert grad.shape == (1, 3) and bool(torch.isfinite(grad).all())


@needs_cc
def test_unwritable_cache_still_builds_and_runs(monkeypatch, tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the cache folder would go")
    monkeypatch.setenv(kernels.CACHE_ENV, str(blocker))
    f, x0 = Lorenz(rho=26.75), torch.tensor([[1.0, 2.0, 20.0]], dtype=torch.float64)
    compiled = kernels.STATS["compiled"]
    kernel, eager = kernel_and_eager(f, x0, 0.0, 1e-3, 50)
    assert kernels.STATS["compiled"] == compiled + 1
    torch.testing.assert_close(kernel, eager, rtol=0, atol=1e-13)


def test_missing_compiler_falls_back_to_eager_with_one_warning(monkeypatch, tmp_path):
    monkeypatch.setenv("CC", str(tmp_path / "no-such-cc"))
    monkeypatch.setenv(kernels.CACHE_ENV, str(tmp_path))
    f, x0 = Lorenz(rho=26.5), torch.tensor([[1.0, 2.0, 20.0]], dtype=torch.float64)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        first = integrate(f, x0, 0.0, 1e-3, 50, fast=True)
        second = integrate(f, x0, 0.0, 1e-3, 50, fast=True)
    messages = [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)]
    assert len(messages) == 1 and "no C compiler found" in messages[0]
    assert torch.equal(first, second)
    assert torch.equal(first, integrate(f, x0, 0.0, 1e-3, 50, fast=False))

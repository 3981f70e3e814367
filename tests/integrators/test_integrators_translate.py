"""What the kernel generator translates, and what it refuses (so the field runs eagerly)."""

import numpy as np
import pytest
import torch

from partime.dynamics import ComponentSystem, Lorenz
from partime.integrators import get_tableau
from partime.integrators.codegen import kernel_source
from partime.integrators.translate import KernelUnsupportedError

RK4 = get_tableau("rk4")


class OneLine(ComponentSystem):
    """``components`` is the function given, for one state component."""

    name = "one-line"
    dim = 1

    def __init__(self, rhs) -> None:
        self.rhs = rhs

    def components(self, t, x):
        return (self.rhs(t, x),)


@pytest.mark.parametrize(
    ("rhs", "why"),
    [
        (lambda t, x: x * torch.as_tensor(t), "failed"),  # no dtype: float32 in eager
        (lambda t, x: x - x.sum(), "sum"),
        (lambda t, x: x * float(x), "tracing components failed"),
        (lambda t, x: np.sin(x), "tracing components failed"),
        (lambda t, x: -x if x > 0 else x, "tracing components failed"),
        (lambda t, x: torch.where(x > 0, x, -x), "gt"),
        (lambda t, x: x // 2.0, "floordiv"),
        (lambda t, x: x * torch.ones(3), "operand"),
    ],
)
def test_untranslatable_components_are_refused_with_the_reason(rhs, why):
    with pytest.raises(KernelUnsupportedError, match=why):
        kernel_source(OneLine(rhs), RK4, torch.float64)


def test_wrong_output_count_and_dtype_are_refused():
    class TwoOutputs(OneLine):
        def components(self, t, x):
            return x, x

    with pytest.raises(KernelUnsupportedError, match="not 1"):
        kernel_source(TwoOutputs(None), RK4, torch.float64)
    with pytest.raises(KernelUnsupportedError, match="float16"):
        kernel_source(Lorenz(), RK4, torch.float16)


def test_powers_follow_torch_and_constants_are_exact():
    source = kernel_source(OneLine(lambda t, x: x**3 + x**2.5 + 0.1 * x), RK4, torch.float64)
    assert "x0 * x0 * x0" in source.code  # torch computes x ** 3 as x * x * x
    assert "pow(a0[l], a1[l])" in source.code  # any other exponent: libm pow per lane
    assert (0.1).hex() in source.code  # hex literals: no decimal rounding
    assert source.ops == 5
    float32 = kernel_source(OneLine(lambda t, x: torch.sin(x)), RK4, torch.float32)
    assert "sinf(a0[l])" in float32.code and "typedef float T;" in float32.code

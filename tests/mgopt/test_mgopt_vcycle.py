"""The V-cycle: work counted = eq. (10), one level = plain gradient descent, loss decreases."""

import pytest
import torch
from mgopt_problems import make_problem

from partime.mgopt import TABLE2_PAPER, MGOptConfig, VCycle, VCycleSetup, WorkCounter, table1_setup
from partime.mgopt.optimizers import GradientDescent

SETUPS = [str(table1_setup(levels)) for levels in (1, 2, 4, 6)] + list(TABLE2_PAPER)


@pytest.mark.parametrize("text", SETUPS)
def test_counted_work_per_vcycle_equals_eq10(text: str) -> None:
    setup = VCycleSetup.parse(text)
    problem, batch = make_problem(depth=128, levels=setup.levels, samples=16)
    counter = WorkCounter(setup.levels)
    config = MGOptConfig(setup=text)
    vcycle = VCycle(problem, setup, config.level_optimizers(), counter)
    theta = problem.init(0)
    for cycles in (1, 2):
        theta = vcycle(theta, batch)
        assert counter.units == cycles * setup.work_units()
    assert counter.forwards == [0] * setup.levels


def test_one_level_vcycle_is_plain_gradient_descent(small_problem) -> None:
    problem, batch = make_problem(depth=32, levels=1)
    counter = WorkCounter(1)
    vcycle = VCycle(problem, VCycleSetup.parse("{3}"), [GradientDescent(0.1)], counter)
    theta = problem.init(1)
    expected = theta
    for _ in range(3):
        expected = expected - 0.1 * problem.value_and_grad(1, expected, *batch)[1]
    assert torch.equal(vcycle(theta, batch), expected)
    assert counter.units == 3


@pytest.mark.parametrize(
    ("optimizer", "momentum", "coarse_optimizer", "armijo"),
    [
        ("sgd", 0, "", False),
        ("sgd", 0, "", True),
        ("sgd", 0.9, "lbfgs", False),
        ("adam", 0, "", False),
    ],
)
def test_vcycles_lower_the_loss(
    optimizer: str, momentum: float, coarse_optimizer: str, armijo: bool
) -> None:
    problem, batch = make_problem(depth=32, levels=4)
    config = MGOptConfig(
        setup="[(1),1,2,{2}]", optimizer=optimizer, coarse_optimizer=coarse_optimizer,
        momentum=momentum,
        lr=0.05 if optimizer == "adam" else 0.2, armijo=armijo,
    )  # fmt: skip
    counter = WorkCounter(4)
    vcycle = VCycle(problem, config.vcycle_setup, config.level_optimizers(), counter, armijo=armijo)
    theta = problem.init(2)
    losses = [problem.loss(4, theta, *batch)]
    for _ in range(5):
        theta = vcycle(theta, batch)
        losses.append(problem.loss(4, theta, *batch))
    assert losses[-1] < 0.9 * losses[0]
    if optimizer == "sgd" and not momentum:  # plain gradient descent
        assert all(b < a for a, b in zip(losses, losses[1:], strict=False))
    assert (sum(counter.forwards) > 0) == armijo


def test_multilevel_beats_single_level_per_work_unit() -> None:
    """The paper's claim on a small problem: 4 levels reach a lower loss for the same work."""
    problem, batch = make_problem(depth=64, levels=4)
    single, _ = make_problem(depth=64, levels=1)
    losses = {}
    for name, prob, text, cycles in [
        ("single", single, "{1}", 40),
        ("multi", problem, "[(1),1,2,{2}]", 8),
    ]:
        setup = VCycleSetup.parse(text)
        counter = WorkCounter(setup.levels)
        config = MGOptConfig(setup=text, lr=0.2)
        vcycle = VCycle(prob, setup, config.level_optimizers(), counter)
        theta = prob.init(4)
        for _ in range(cycles):
            theta = vcycle(theta, batch)
        assert counter.units == 40
        losses[name] = prob.loss(prob.spec.levels, theta, *batch)
    assert losses["multi"] < losses["single"]


def test_level_count_mismatch_is_refused() -> None:
    problem, _ = make_problem(depth=32, levels=3)
    with pytest.raises(ValueError, match="setup \\[\\(1\\),\\{2\\}\\] has 2 levels, the network 3"):
        VCycle(problem, VCycleSetup.parse("[(1),{2}]"), [GradientDescent(0.1)] * 2, WorkCounter(2))


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("optimizer", "lbfgs", "optimizer 'lbfgs' is not one of"),
        ("lr", -1.0, "lr must be finite and > 0"),
        ("target_accuracy", 1.5, "target_accuracy must be in"),
        ("setup", "[1,{2}", "must be a list in brackets"),
    ],
)
def test_bad_configs_are_refused(field: str, value, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        MGOptConfig(**{field: value})

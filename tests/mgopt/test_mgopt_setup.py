"""The setup notation, eq. (10) and the depth checks."""

from fractions import Fraction

import pytest

from partime.mgopt import TABLE2_PAPER, ResNetSpec, VCycleSetup, check_depth, table1_setup

TABLE1 = {1: ("{1}", 1), 2: ("[(1),{2}]", 3), 4: ("[(1),1,2,{2}]", 5)}
TABLE1 |= {
    6: ("[(1),1,1,2,2,{2}]", Fraction(21, 4)),
    8: ("[(1),1,1,1,2,2,2,{2}]", Fraction(83, 16)),
}


@pytest.mark.parametrize("levels", sorted(TABLE1))
def test_table1_rule_gives_the_papers_setups_and_work(levels: int) -> None:
    text, work = TABLE1[levels]
    setup = table1_setup(levels)
    assert str(setup) == text and VCycleSetup.parse(text) == setup
    assert setup.work_units() == work and setup.levels == levels


def test_table2_setups_print_back_and_give_eq10() -> None:
    works = [Fraction(763, 128), Fraction(191, 32), Fraction(767, 128), Fraction(193, 32)]
    works += [Fraction(99, 16), Fraction(83, 16)]
    for (text, (_, printed, _)), work in zip(TABLE2_PAPER.items(), works, strict=True):
        setup = VCycleSetup.parse(text)
        assert str(setup) == text and setup.work_units() == work
        assert abs(float(work) - printed) < 0.015  # the paper rounds (and swaps the first two)


def test_spaces_and_one_level_forms() -> None:
    setup = VCycleSetup.parse("[ (1), 2, 1, 3, {4} ]")
    assert str(setup) == "[(1),2,1,3,{4}]"
    assert setup.steps(5) == (1, 0) and setup.steps(4) == (2, 2) and setup.steps(2) == (3, 3)
    assert VCycleSetup.parse("[{3}]") == VCycleSetup.parse("{3}") == VCycleSetup((), (), 3)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("(1),1,{2}", "must be a list in brackets"),
        ("[(1),1,2]", "must end with the coarsest"),
        ("[{1},1,{2}]", "only the last"),
        ("[(1),x,{2}]", "entry 'x' is not"),
        ("[(1),,{2}]", "entry '' is not"),
        ("[(1),1.5,{2}]", "entry '1.5'"),
        ("[(1),-1,{2}]", "entry '-1'"),
        ("[1,{0}]", "at least one step"),
        ("[]", "must be a list in brackets"),
        ("", "must be a list in brackets"),
    ],
)
def test_malformed_setups_are_refused_clearly(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace("{", r"\{")):
        VCycleSetup.parse(text)


@pytest.mark.parametrize(
    ("depth", "levels", "message"),
    [(100, 4, "not divisible by 2\\^\\(levels-1\\) = 8"), (8, 5, "at most 4 levels for depth 8")],
)
def test_bad_depths_are_refused(depth: int, levels: int, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        check_depth(depth, levels)
    with pytest.raises(ValueError, match=message):
        ResNetSpec(2, 3, 2, depth=depth, levels=levels)
    with pytest.raises(ValueError, match=message):
        table1_setup(levels).check_depth(depth)

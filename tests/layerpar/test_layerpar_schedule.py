"""Partitions and schedules are pure data: balanced, validated, deadlock-free."""

from __future__ import annotations

import pytest

from partime.layerpar import DepthPartition, grid_cuts, make_schedule, simulate
from partime.layerpar.schedule import BACKWARD, FORWARD, Action, Schedule


def test_uneven_units_go_to_the_first_ranks():
    assert DepthPartition.balanced(7, 3).sizes == (3, 2, 2)
    assert DepthPartition.balanced(8, 2).bounds == (0, 4, 8)
    assert DepthPartition.balanced(5, 5).sizes == (1, 1, 1, 1, 1)


def test_balanced_by_cost_minimises_the_slowest_rank():
    # an expensive stem and head: the middle units move to balance them
    part = DepthPartition.balanced([6, 1, 1, 1, 1, 1, 1, 6], 2)
    assert part.bounds == (0, 4, 8)
    part = DepthPartition.balanced([9, 1, 1, 1, 1, 1, 1, 1], 2)
    assert part.bounds == (0, 1, 8)
    part = DepthPartition.balanced([1, 2, 3, 4, 5, 6], 3)
    assert max(sum([1, 2, 3, 4, 5, 6][r.start : r.stop]) for r in map(part.units, range(3))) == 9


def test_cuts_on_a_coarse_grid():
    # stem + 16 steps + head; boundaries only where the 4-step coarse level has a step
    cuts = grid_cuts(18, 4, offset=1)
    assert cuts == [1, 5, 9, 13, 17]
    part = DepthPartition.balanced(18, 3, cuts=cuts)
    assert part.bounds == (0, 5, 13, 18)  # the only split on the grid with no rank over 8
    assert part.rank_of(0) == 0 and part.rank_of(17) == 2


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: DepthPartition.balanced(2, 3), "2 depth units for 3 ranks"),
        (lambda: DepthPartition.balanced(8, 3, cuts=[4]), "1 allowed cut points"),
        (lambda: DepthPartition.balanced(8, 2, cuts=[8]), r"cuts \[8\] are not inside"),
        (lambda: DepthPartition.balanced([1, -1], 1), "finite numbers >= 0"),
        (lambda: DepthPartition((0, 2, 2)), "increase strictly"),
        (lambda: make_schedule("interleaved", 2, 4), "known schedules: gpipe, 1f1b"),
        (lambda: make_schedule("1f1b", 3, 2), "micro_batches=2 is fewer than the 3"),
        (lambda: make_schedule("gpipe", 2, 0), "micro_batches must be a positive int"),
    ],
)
def test_bad_input_names_the_value(call, message):
    with pytest.raises(ValueError, match=message):
        call()


@pytest.mark.parametrize("name", ["gpipe", "1f1b"])
@pytest.mark.parametrize(("stages", "micro"), [(1, 1), (2, 2), (2, 8), (3, 5), (4, 9)])
def test_schedules_are_complete_and_reach_the_pipeline_bound(name, stages, micro):
    schedule = make_schedule(name, stages, micro)
    for s in range(stages):
        forwards = [a.micro_batch for a in schedule.forwards(s)]
        assert forwards == list(range(micro))  # batch-norm statistics in serial order
    sim = simulate(schedule, 1.0 / stages, 2.0 / stages)
    serial = 3.0 * micro
    assert sim.makespan == pytest.approx(3.0 * (micro + stages - 1) / stages)
    assert serial / sim.makespan == pytest.approx(stages * micro / (micro + stages - 1))
    held = sim.peak_in_flight
    if name == "gpipe":
        assert held == (micro,) * stages
    else:
        assert held == tuple(min(stages - s, micro) for s in range(stages))


def test_simulate_finds_a_deadlock_and_a_missing_action():
    f, b = FORWARD, BACKWARD
    # stage 0 waits for B0 from stage 1 before sending F1; stage 1 waits for F1 first
    bad = Schedule(
        "bad", 2, 2,
        ((Action(f, 0), Action(b, 0), Action(f, 1), Action(b, 1)),
         (Action(f, 0), Action(f, 1), Action(b, 1), Action(b, 0))),
    )  # fmt: skip
    with pytest.raises(ValueError, match="deadlocks"):
        simulate(bad)
    short = Schedule("short", 1, 2, ((Action(f, 0), Action(b, 0), Action(f, 1)),))
    with pytest.raises(ValueError, match="stage 0 of short has B actions"):
        simulate(short)

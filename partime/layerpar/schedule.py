"""Pipeline schedules as data: for each stage, the ordered (forward|backward, micro-batch) actions.

GPipe runs every forward, then every backward; 1F1B (PipeDream-flush) runs ``n_stages-1-s``
warm-up forwards on stage s, then alternates one forward and one backward, so a stage holds
at most ``n_stages - s`` micro-batches' activations instead of all of them. Both keep the
forwards of a stage in micro-batch order (batch-norm running statistics then update in the
serial order). ``make_schedule`` validates everything before any rank communicates, and
``simulate`` replays a schedule with costs: deadlock check, makespan, activations held.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

FORWARD, BACKWARD = "F", "B"


@dataclass(frozen=True)
class Action:
    """One step of a stage: ``kind`` FORWARD or BACKWARD of micro-batch ``micro_batch``."""

    kind: str
    micro_batch: int

    def __repr__(self) -> str:
        return f"{self.kind}{self.micro_batch}"


def gpipe(n_stages: int, n_micro: int) -> tuple[tuple[Action, ...], ...]:
    """All forwards, then all backwards, on every stage."""
    stage = tuple(Action(FORWARD, m) for m in range(n_micro)) + tuple(
        Action(BACKWARD, m) for m in range(n_micro)
    )
    return (stage,) * n_stages


def one_f_one_b(n_stages: int, n_micro: int) -> tuple[tuple[Action, ...], ...]:
    """Warm-up forwards, then forward/backward pairs, then the remaining backwards."""
    stages = []
    for s in range(n_stages):
        warmup = min(n_stages - 1 - s, n_micro)
        actions = [Action(FORWARD, m) for m in range(warmup)]
        for i in range(n_micro - warmup):
            actions += [Action(FORWARD, warmup + i), Action(BACKWARD, i)]
        actions += [Action(BACKWARD, m) for m in range(n_micro - warmup, n_micro)]
        stages.append(tuple(actions))
    return tuple(stages)


SCHEDULES: dict[str, Callable[[int, int], tuple[tuple[Action, ...], ...]]] = {
    "gpipe": gpipe,
    "1f1b": one_f_one_b,
}


@dataclass(frozen=True)
class Schedule:
    """``actions[s]``: what stage s does, in order, for ``n_micro`` micro-batches."""

    name: str
    n_stages: int
    n_micro: int
    actions: tuple[tuple[Action, ...], ...]

    def forwards(self, stage: int) -> list[Action]:
        return [a for a in self.actions[stage] if a.kind == FORWARD]

    def backwards(self, stage: int) -> list[Action]:
        return [a for a in self.actions[stage] if a.kind == BACKWARD]


def check_schedule_args(name: str, n_stages: int, n_micro: int) -> None:
    """ValueError naming the bad value; pure, so every rank raises before communicating."""
    if name not in SCHEDULES:
        raise ValueError(f"unknown schedule {name!r}; known schedules: {', '.join(SCHEDULES)}")
    for label, value in (("stages", n_stages), ("micro_batches", n_micro)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{label} must be a positive int, got {value!r}")
    if n_micro < n_stages:
        raise ValueError(
            f"micro_batches={n_micro} is fewer than the {n_stages} pipeline stages: every stage "
            f"needs a micro-batch in flight (use micro_batches >= {n_stages})"
        )


def make_schedule(name: str, n_stages: int, n_micro: int) -> Schedule:
    """The named schedule (``SCHEDULES``), checked to be complete and deadlock-free."""
    check_schedule_args(name, n_stages, n_micro)
    schedule = Schedule(name, n_stages, n_micro, SCHEDULES[name](n_stages, n_micro))
    simulate(schedule)
    return schedule


@dataclass(frozen=True)
class Simulation:
    """A replay of a schedule: ``makespan`` and, per stage, the most micro-batches whose
    activations were held at once (a forward done, its backward not yet)."""

    makespan: float
    peak_in_flight: tuple[int, ...]


def simulate(
    schedule: Schedule,
    forward_cost: Sequence[float] | float = 1.0,
    backward_cost: Sequence[float] | float = 2.0,
) -> Simulation:
    """Replay ``schedule`` with per-stage costs (sends are free): F(m) on stage s waits for
    F(m) on s-1, B(m) for B(m) on s+1 and F(m) on s. ValueError if it is incomplete or would
    deadlock."""
    n, m_total = schedule.n_stages, schedule.n_micro
    fwd = _per_stage(forward_cost, n)
    bwd = _per_stage(backward_cost, n)
    for s, actions in enumerate(schedule.actions):
        for kind in (FORWARD, BACKWARD):
            got = sorted(a.micro_batch for a in actions if a.kind == kind)
            if got != list(range(m_total)):
                raise ValueError(f"stage {s} of {schedule.name} has {kind} actions {got}")
    done: dict[tuple[str, int, int], float] = {}
    position, clock = [0] * n, [0.0] * n
    held, peak = [0] * n, [0] * n
    remaining = sum(len(a) for a in schedule.actions)
    while remaining:
        progressed = False
        for s in range(n):
            if position[s] == len(schedule.actions[s]):
                continue
            action = schedule.actions[s][position[s]]
            m = action.micro_batch
            if action.kind == FORWARD:
                needs = [(FORWARD, s - 1, m)] if s > 0 else []
            else:
                needs = [(FORWARD, s, m)] + ([(BACKWARD, s + 1, m)] if s < n - 1 else [])
            if not all(need in done for need in needs):
                continue
            start = max([clock[s], *(done[need] for need in needs)])
            clock[s] = start + (fwd[s] if action.kind == FORWARD else bwd[s])
            done[(action.kind, s, m)] = clock[s]
            held[s] += 1 if action.kind == FORWARD else -1
            peak[s] = max(peak[s], held[s])
            position[s] += 1
            remaining -= 1
            progressed = True
        if not progressed:
            stuck = {
                s: schedule.actions[s][position[s]]
                for s in range(n)
                if position[s] < len(schedule.actions[s])
            }
            raise ValueError(f"schedule {schedule.name} deadlocks: stages wait at {stuck}")
    return Simulation(max(clock), tuple(peak))


def _per_stage(cost: Sequence[float] | float, n: int) -> list[float]:
    values = [float(cost)] * n if isinstance(cost, int | float) else [float(c) for c in cost]
    if len(values) != n:
        raise ValueError(f"need one cost per stage ({n}), got {len(values)}")
    return values

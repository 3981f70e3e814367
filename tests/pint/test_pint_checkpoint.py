"""Checkpoint after each iteration; a killed run resumed from it gives the same answer."""

from __future__ import annotations

import pytest
import torch

from partime.dynamics import Lorenz
from partime.pint import Checkpointer, load_checkpoint, parareal, save_checkpoint, slice_times
from partime.steppers import RKPropagator

X0 = torch.tensor([[1.0, 1.0, 1.0], [5.0, -5.0, 25.0]], dtype=torch.float64)


def solve(**kwargs):
    f = Lorenz()
    return parareal(RKPropagator(f, 0.02), RKPropagator(f, 1e-3), X0, slice_times(0.8, 8), **kwargs)


def test_resume_after_kill_gives_the_same_answer(tmp_path):
    save = Checkpointer(tmp_path)

    def killed_after_first(state):
        save(state)
        if state.iteration == 1:
            raise KeyboardInterrupt  # stands in for the job being killed

    with pytest.raises(KeyboardInterrupt):
        solve(tol=1e-10, callback=killed_after_first)
    saved = load_checkpoint(tmp_path)
    assert saved.iteration == 1 and len(saved.residuals) == 1
    resumed = solve(tol=1e-10, resume=saved)
    full = solve(tol=1e-10)
    assert resumed.iterations == full.iterations > 1
    assert resumed.residuals == full.residuals
    assert torch.equal(resumed.states, full.states)


def test_resume_of_a_different_problem_fails_clearly(tmp_path):
    solve(tol=1e-10, max_iter=1, callback=Checkpointer(tmp_path))
    with pytest.raises(ValueError, match="different problem.*tol"):
        solve(tol=1e-6, resume=load_checkpoint(tmp_path))


def test_bad_checkpoint_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="rank 0"):
        load_checkpoint(tmp_path)
    (tmp_path / "rank0.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="not a parareal checkpoint"):
        load_checkpoint(tmp_path)


def test_save_is_atomic_and_round_trips(tmp_path):
    state = solve(max_iter=2).final_state
    path = save_checkpoint(tmp_path, state)
    assert path.name == "rank0.pt" and sorted(p.name for p in tmp_path.iterdir()) == ["rank0.pt"]
    loaded = load_checkpoint(tmp_path)
    assert (
        loaded.iteration == 2
        and torch.equal(loaded.U, state.U)
        and loaded.fingerprint == state.fingerprint
    )

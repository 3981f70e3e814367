"""Training the Lyapunov-stable autoencoder with the one training loop, and scoring its long
rollouts: data-parallel over a ``Comm`` like every network (the stability penalty depends on Ω
only, so each rank adds it and the weighted gradient sum counts it once)."""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from partime.comm import Comm, SerialComm
from partime.data.sequences import Sequence
from partime.nets.lyapunov import LyapunovAE, LyapunovAEConfig, LyapunovLoss, LyapunovLossConfig
from partime.train.config import TrainConfig
from partime.train.loop import fit

__all__ = ["LyapunovResult", "rollout_errors", "sequence_pairs", "train_lyapunov"]

REPORTED_HORIZONS = (1, 10, 100, 1000)


def sequence_pairs(snapshots: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """Inputs y_t (N − 2, m) and targets (y_t, y_{t+1}, y_{t+2}) (N − 2, 3, m)."""
    y = torch.as_tensor(snapshots)
    return y[:-2], torch.stack([y[:-2], y[1:-1], y[2:]], dim=1)


def rollout_errors(model: LyapunovAE, sequence: Sequence, starts: int, horizon: int) -> np.ndarray:
    """Relative prediction error ‖ŷ_k − y_k‖/‖y_k‖ for k = 0..horizon, averaged over ``starts``
    initial conditions: every 5th snapshot after the training window (koopmanAE's measure)."""
    need = 5 * (starts - 1) + horizon + 1
    if len(sequence.later) < need:
        raise ValueError(f"{starts} starts x {horizon} steps need {need} snapshots after "
                         f"training, the sequence has {len(sequence.later)}")  # fmt: skip
    device = next(model.parameters()).device
    later = torch.as_tensor(sequence.later, dtype=torch.float64, device=device)
    begin = torch.arange(starts) * 5
    with torch.no_grad():  # in float64: an unstable Ω's latent state grows like radius^k
        predicted = copy.deepcopy(model).double().rollout(later[begin], horizon)
    truth = later[begin[None, :] + torch.arange(horizon + 1)[:, None]]
    relative = (predicted - truth).norm(dim=-1) / truth.norm(dim=-1)
    return relative.mean(1).nan_to_num(nan=np.inf).cpu().numpy()  # NaN: inf - inf, diverged


@dataclass
class LyapunovResult:
    """The trained model, Ω's spectral radius after every epoch and the loop's summary."""

    model: LyapunovAE
    radii: list[float]
    summary: dict[str, Any]


def train_lyapunov(
    sequence: Sequence,
    model_config: LyapunovAEConfig,
    loss_config: LyapunovLossConfig,
    train: TrainConfig,
    comm: Comm | None = None,
    progress: bool = False,
) -> LyapunovResult:
    """Fit the autoencoder to ``sequence.train`` (the same on every rank); ``model_config.dim``
    is set from the data."""
    comm = comm or SerialComm()
    torch.manual_seed(train.seed)
    model = LyapunovAE(dataclasses.replace(model_config, dim=sequence.dim))
    radii: list[float] = []
    result = fit(model, sequence_pairs(sequence.train), config=train, comm=comm,
                 loss_fn=LyapunovLoss(model, loss_config), progress=progress,
                 callback=lambda record: radii.append(model.spectral_radius()))  # fmt: skip
    return LyapunovResult(result.model, radii, result.summary)

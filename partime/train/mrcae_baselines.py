"""The dense baselines of MrCAE's benchmark (Figs. 10–11): one RED-Net per stage of a grown
MrCAE, trained from scratch on that stage's level with MrCAE's loss, optimizer and stopping
rules (no masks, hence no "satisfied" stop). The code gave the n-th net n × max_epoch / 2
steps; here every net gets ``epochs`` steps, as each MrCAE stage does. ``levels_only`` trains
just each level's widest net (the lowest errors, the hardest to match), a third of the cost."""

from __future__ import annotations

import numpy as np
import torch

from partime.comm import Comm, SerialComm
from partime.nets.mrcae import REDNet, REDNetConfig
from partime.train.config import TrainConfig
from partime.train.mrcae import LevelData, ProgressiveConfig, StageRecord, train_stage
from partime.train.step import broadcast_module

__all__ = ["dense_encoding_sizes", "rednet_plan", "train_rednets"]


def _cumulative(widths: tuple[tuple[int, ...], ...]) -> list[list[int]]:
    """Per level the cumulative channels 1, 1 + n_1, 1 + n_1 + n_2, … (the paper's arch)."""
    return [np.cumsum([1, *groups]).tolist() for groups in widths]


def rednet_plan(widths: tuple[tuple[int, ...], ...]) -> list[tuple[int, tuple[int, ...]]]:
    """(level, channels) of the RED-Net matching each stage of a MrCAE with these widen groups:
    at level k, stage j, channels (1, arch_k[j], arch_{k−1}[−1], …, arch_0[−1])."""
    archs = _cumulative(widths)
    return [
        (k, (1, c, *(archs[i][-1] for i in range(k - 1, -1, -1))))
        for k, arch in enumerate(archs)
        for c in arch
    ]


def dense_encoding_sizes(
    widths: tuple[tuple[int, ...], ...], latents: list[tuple[int, int]]
) -> list[int]:
    """The benchmark notebook's encoding size of a dense net per stage: the finished levels'
    latent grids × their channels plus this level's grid × this stage's channels."""
    sizes, finished = [], 0
    for arch, (h, w) in zip(_cumulative(widths), latents, strict=True):
        sizes += [finished + h * w * c for c in arch]
        finished += h * w * arch[-1]
    return sizes


def train_rednets(
    widths: tuple[tuple[int, ...], ...],
    train_snapshots: np.ndarray,
    val_snapshots: np.ndarray,
    config: ProgressiveConfig,
    train: TrainConfig,
    activation: str = "none",
    comm: Comm | None = None,
    progress: bool = False,
    levels_only: bool = False,
) -> list[StageRecord]:
    """One trained RED-Net record per stage of ``rednet_plan(widths)`` (``activation`` after
    every encoder conv: none = RED-Net (linear), relu = RED-Net (+ReLU)); ``levels_only``: only
    the last stage of each level."""
    comm = comm or SerialComm()
    like = torch.empty(0, dtype=train.torch_dtype, device=train.device)
    data = LevelData(train_snapshots, val_snapshots, len(widths), like)
    latents = [tuple((s - 1) // 2 for s in x.shape[-2:]) for x in data.train]
    generator = torch.Generator().manual_seed(train.seed)
    records = []
    plan = list(zip(rednet_plan(widths), dense_encoding_sizes(widths, latents), strict=True))
    if levels_only:  # keep a stage when the next one is on another level (or there is none)
        ends = [i + 1 == len(plan) or plan[i + 1][0][0] != level for i, ((level, _), _) in
                enumerate(plan)]  # fmt: skip
        plan = [stage for stage, end in zip(plan, ends, strict=True) if end]
    for (level, channels), encoding in plan:
        torch.manual_seed(train.seed)
        model = REDNet(REDNetConfig(channels, activation, config.init_std)).to(like)
        broadcast_module(model, comm)
        record = StageRecord(level, "rednet", channels[1], encoding_size=encoding)
        train_stage(model, data, level, record, config, train, comm, generator, None, progress)
        records.append(record)
    return records

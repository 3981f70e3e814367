"""Train the flow maps of a hierarchy together, stacked into batched matrix products.

The M models of a share become one module whose layers are (M, n_in, n_out) weights applied
with ``baddbmm``: one kernel per layer for all models instead of M, which is what fills a GPU
with eleven small MLPs (and saves M − 1 Python loops on a CPU). Everything that makes the
models independent is kept per model: its seeded initial weights, its own minibatch sequence,
its early stop at ``loss <= loss_tol`` (its weights are frozen from then on), its best weights
on validation. The loss is the sum of the per-model losses, so each model's gradient is its own
loss's and Adam (elementwise) takes the same steps: the models equal those of training them
one by one (``train_flow_map``), up to the rounding of batched vs plain matrix products.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import Tensor, nn

from partime.hits.config import HierarchyConfig, init_model, model_data, stage_config
from partime.io.atomic import atomic_save
from partime.steppers.flow_training import FlowMapTrainConfig, training_windows
from partime.steppers.neural import FlowMapMLP, model_payload

_BLOCK = 100  # epochs between host syncs (budget, progress); their minibatches drawn at once


class StackedFlowMaps(nn.Module):
    """M FlowMapMLPs of one architecture as one module: ``forward(x)`` maps (M, B, dim) to
    (M, B, dim), row m through model m."""

    def __init__(self, models: Sequence[FlowMapMLP]) -> None:
        super().__init__()
        if not models:
            raise ValueError("StackedFlowMaps needs at least one model")
        first = models[0]
        for m in models:
            if m.extra_repr() != first.extra_repr():
                raise ValueError(
                    "stacked models must share one architecture: "
                    f"{first.extra_repr()} vs {m.extra_repr()}"
                )
        self.dim, self.widths, self.normalize = first.dim, first.widths, first.normalize
        self.activation = first.activation
        self.act = first.net[1]  # the (stateless) activation module between the layers
        layers = [[lin for lin in m.net if isinstance(lin, nn.Linear)] for m in models]
        self.weights = nn.ParameterList(
            nn.Parameter(torch.stack([m[k].weight.detach().T for m in layers]).contiguous())
            for k in range(len(layers[0]))
        )
        self.biases = nn.ParameterList(
            nn.Parameter(torch.stack([m[k].bias.detach()[None] for m in layers]))
            for k in range(len(layers[0]))
        )
        if self.normalize:
            for name in ("in_shift", "in_scale", "out_scale"):
                self.register_buffer(name, torch.stack([getattr(m, name)[None] for m in models]))

    def forward(self, x: Tensor) -> Tensor:
        h = (x - self.in_shift) / self.in_scale if self.normalize else x
        last = len(self.weights) - 1
        for k, (w, b) in enumerate(zip(self.weights, self.biases, strict=True)):
            h = torch.baddbmm(b, h, w)
            if k < last:
                h = self.act(h)
        return x + (self.out_scale * h if self.normalize else h)

    def to_models(self) -> list[FlowMapMLP]:
        """The M models as FlowMapMLPs (on this module's device and dtype)."""
        models = []
        for m in range(len(self.weights[0])):
            model = FlowMapMLP(self.dim, self.widths, self.normalize, self.activation).to(
                self.weights[0].device, self.weights[0].dtype
            )  # first, so that the scaling buffers are copied at full precision
            linears = [lin for lin in model.net if isinstance(lin, nn.Linear)]
            with torch.no_grad():
                for lin, w, b in zip(linears, self.weights, self.biases, strict=True):
                    lin.weight = nn.Parameter(w[m].T.clone(memory_format=torch.contiguous_format))
                    lin.bias = nn.Parameter(b[m, 0].clone())
                if self.normalize:
                    for name in ("in_shift", "in_scale", "out_scale"):
                        getattr(model, name).copy_(getattr(self, name)[m, 0])
            models.append(model)
        return models


@dataclasses.dataclass
class _Windows:
    """Every model's windows in one tensor: model m owns rows offsets[m] : offsets[m] + counts[m].
    ``padded`` (M, max count, frames, dim) with ``mask`` (M, max count) serves whole-set losses."""

    flat: Tensor
    offsets: list[int]
    counts: list[int]
    padded: Tensor
    mask: Tensor

    @classmethod
    def build(cls, windows: Sequence[Tensor], device: torch.device, dtype: torch.dtype):
        """From each model's windows (n_m, frames, dim), on ``device`` in ``dtype``."""
        counts = [int(w.shape[0]) for w in windows]
        offsets = [sum(counts[:m]) for m in range(len(counts))]
        flat = torch.cat(list(windows)).to(device, dtype)
        n_max = max(counts)
        padded = flat.new_zeros((len(windows), n_max, *flat.shape[1:]))
        mask = torch.zeros(len(windows), n_max, device=device, dtype=dtype)
        for m, (off, n) in enumerate(zip(offsets, counts, strict=True)):
            padded[m, :n] = flat[off : off + n]
            mask[m, :n] = 1.0
        return cls(flat, offsets, counts, padded, mask)


def stacked_loss(model: nn.Module, windows: Tensor, mask: Tensor, mean_weight: float) -> Tensor:
    """Per-model multi-step loss (M,) of windows (M, B, frames, dim); rows where mask (M, B) is 0
    are padding and do not count (as ``multi_step_loss`` on each model's real rows)."""
    x, preds = windows[:, :, 0], []
    for _ in range(windows.shape[2] - 1):
        x = model(x)
        preds.append(x)
    err = (torch.stack(preds, dim=2) - windows[:, :, 1:]).square() * mask[:, :, None, None]
    per_row = err[0, 0].numel()
    mean = err.sum(dim=(1, 2, 3)) / (mask.sum(dim=1) * per_row)
    if mean_weight == 1.0:
        return mean
    return mean_weight * mean + (1.0 - mean_weight) * err.amax(dim=(1, 2, 3))


def _draw_batches(
    gens: list[torch.Generator], data: _Windows, batch: int, n_epochs: int
) -> tuple[Tensor, Tensor]:
    """Minibatch rows (n_epochs, M, B) into ``data.flat`` — each model's from its own generator,
    the same draws as ``train_flow_map`` — and the (M, B) mask of real (not padding) rows."""
    size = min(batch, max(data.counts))
    rows = torch.zeros(n_epochs, len(gens), size, dtype=torch.long)
    mask = torch.zeros(len(gens), size)
    for m, (gen, off, n) in enumerate(zip(gens, data.offsets, data.counts, strict=True)):
        take = min(batch, n)
        mask[m, :take] = 1.0
        for e in range(n_epochs):
            rows[e, m, :take] = torch.randperm(n, generator=gen)[:take] + off
            rows[e, m, take:] = off  # padding: any row of its own, masked out
    return rows, mask


@dataclasses.dataclass
class _State:
    """Per-model training state on the device (M entries each) plus the shared epoch count."""

    epoch: int
    elapsed: float
    active: Tensor  # still training (not yet at loss_tol)
    n_losses: Tensor  # epochs whose loss belongs to the model's history
    losses: list[Tensor]  # per block of epochs, (n_epochs, M)
    best_val: Tensor
    best: list[Tensor] | None

    def to_blob(self) -> dict:
        """The state as CPU tensors, for a checkpoint."""
        tensors = {k: getattr(self, k).cpu() for k in ("active", "n_losses", "best_val")}
        return tensors | {
            "epoch": self.epoch,
            "elapsed": self.elapsed,
            "losses": [torch.cat(self.losses).cpu()] if self.losses else [],
            "best": None if self.best is None else [b.cpu() for b in self.best],
        }

    def load_blob(self, blob: dict, device: torch.device) -> None:
        """Restore what ``to_blob`` saved, onto ``device``."""
        self.epoch, self.elapsed = int(blob["epoch"]), float(blob["elapsed"])
        self.active, self.n_losses = blob["active"].to(device), blob["n_losses"].to(device)
        self.best_val = blob["best_val"].to(device)
        self.losses = [x.to(device) for x in blob["losses"]]
        self.best = None if blob["best"] is None else [b.to(device) for b in blob["best"]]


@dataclasses.dataclass
class _Run:
    """What one stacked training needs besides its state: module, data, optimizer, RNGs."""

    stack: StackedFlowMaps
    data: _Windows
    val: _Windows | None
    cfg: FlowMapTrainConfig
    opt: torch.optim.Optimizer
    gens: list[torch.Generator]
    identity: dict  # options and seeds a checkpoint must match to be resumed (not budgets)
    checkpoint: Path | None

    def save(self, state: _State) -> None:
        blob = {"identity": self.identity, "state": state.to_blob()}
        blob |= {"model": self.stack.state_dict(), "optimizer": self.opt.state_dict()}
        blob["rng"] = [g.get_state() for g in self.gens]
        atomic_save(blob, self.checkpoint)

    def resume(self, state: _State) -> None:
        path = self.checkpoint
        try:
            blob = torch.load(path, map_location="cpu", weights_only=True)
            identity = blob["identity"]
        except Exception as err:
            raise ValueError(f"{path} is not a readable stacked checkpoint ({err})") from err
        if identity != self.identity:
            raise ValueError(
                f"checkpoint {path} was written by another run ({identity}) than this one "
                f"({self.identity}); delete it or use the same options"
            )
        self.stack.load_state_dict(blob["model"])  # the identity holds the architecture
        self.opt.load_state_dict(blob["optimizer"])
        for gen, rng in zip(self.gens, blob["rng"], strict=True):
            gen.set_state(rng)
        state.load_blob(blob["state"], self.data.flat.device)


_RESUME_KEYS = ("n_forward", "lr", "batch_size", "mean_weight", "loss_tol")


def train_stacked(
    models: Sequence[FlowMapMLP],
    windows: Sequence[Tensor],
    config: FlowMapTrainConfig,
    seeds: Sequence[int],
    *,
    val_windows: Sequence[Tensor] | None = None,
    checkpoint: str | Path | None = None,
    progress: bool = False,
) -> tuple[list[FlowMapMLP], list[list[float]]]:
    """Train ``models`` (one architecture, on one device and dtype) together, model m on its
    windows (n_m, frames, dim) with minibatches from ``seeds[m]``; returns the trained models
    (best on validation when ``val_windows`` are given) and each one's per-epoch losses.

    ``config.time_budget`` bounds the whole stack (every model trains all the time). With
    ``checkpoint`` an interrupted run resumes where it stopped (checkpoints are written every
    ``checkpoint_every`` epochs, rounded up to blocks of 100)."""
    if not (len(models) == len(windows) == len(seeds)) or not models:
        raise ValueError("train_stacked: give one set of windows and one seed per model")
    param = next(models[0].parameters())
    device, dtype, n = param.device, param.dtype, len(models)
    stack = StackedFlowMaps(models).to(device, dtype)
    identity = {k: getattr(config, k) for k in _RESUME_KEYS} | {"seeds": [int(s) for s in seeds]}
    identity["architecture"] = models[0].extra_repr()
    run = _Run(
        stack,
        _Windows.build(windows, device, dtype),
        None if val_windows is None else _Windows.build(val_windows, device, dtype),
        config,
        torch.optim.Adam(stack.parameters(), lr=config.lr, fused=device.type == "cuda"),
        [torch.Generator().manual_seed(int(s)) for s in seeds],
        identity,
        None if checkpoint is None else Path(checkpoint),
    )
    state = _State(
        0, 0.0, torch.ones(n, dtype=torch.bool, device=device),
        torch.zeros(n, dtype=torch.long, device=device), [],
        torch.full((n,), float("inf"), device=device, dtype=dtype), None,
    )  # fmt: skip
    if run.checkpoint is not None and run.checkpoint.is_file():
        run.resume(state)
    _run_epochs(run, state, progress)
    if run.checkpoint is not None:
        run.save(state)
    if state.best is not None:
        with torch.no_grad():
            has_best = torch.isfinite(state.best_val)
            for p, b in zip(stack.parameters(), state.best, strict=True):
                p.copy_(torch.where(_expand(has_best, p), b, p))
    losses = torch.cat(state.losses).cpu() if state.losses else torch.zeros(0, n)
    return stack.to_models(), [
        losses[:k, m].tolist() for m, k in enumerate(state.n_losses.tolist())
    ]


def _expand(flags: Tensor, like: Tensor) -> Tensor:
    """(M,) flags shaped to broadcast against a stacked (M, ...) tensor."""
    return flags.view(-1, *([1] * (like.ndim - 1)))


def _epoch(run: _Run, state: _State, rows: Tensor, mask: Tensor) -> Tensor:
    """One Adam step of every model still training, on its minibatch rows (M, B); returns the
    per-model losses (M,). Nothing waits for the device: training models are told apart by
    masks, not by reading their losses back."""
    run.opt.zero_grad(set_to_none=True)
    loss = stacked_loss(run.stack, run.data.flat[rows], mask, run.cfg.mean_weight)
    state.n_losses += state.active
    state.active &= loss.detach() > run.cfg.loss_tol
    (loss * state.active).sum().backward()
    _freeze_converged(run.opt, state.active)
    run.opt.step()
    return loss.detach()


def _freeze_converged(opt: torch.optim.Adam, active: Tensor) -> None:
    """Zero the Adam moments of the models that reached loss_tol: with their gradients masked to
    zero as well, Adam's step leaves their weights exactly as they are (as if stopped)."""
    params = [p for group in opt.param_groups for p in group["params"] if p in opt.state]
    if params:
        keep = active.to(params[0].dtype)
        masks = [_expand(keep, p) for p in params]
        torch._foreach_mul_([opt.state[p]["exp_avg"] for p in params], masks)
        torch._foreach_mul_([opt.state[p]["exp_avg_sq"] for p in params], masks)


def _run_epochs(run: _Run, state: _State, progress: bool) -> None:
    """The Adam loop over all models at once, in blocks of _BLOCK epochs; mutates ``state``."""
    from tqdm.auto import tqdm

    cfg, data = run.cfg, run.data
    start = time.perf_counter() - state.elapsed
    bar = tqdm(total=cfg.epochs, initial=state.epoch, disable=not progress, leave=False)
    while state.epoch < cfg.epochs and bool(state.active.any()):
        if cfg.time_budget is not None and time.perf_counter() - start >= cfg.time_budget:
            break
        n_block = min(_BLOCK, cfg.epochs - state.epoch)
        rows, mask = _draw_batches(run.gens, data, cfg.batch_size, n_block)
        rows, mask = rows.to(data.flat.device), mask.to(data.flat.device, data.flat.dtype)
        last_checkpoint = state.epoch // cfg.checkpoint_every
        block = []
        for e in range(n_block):
            block.append(_epoch(run, state, rows[e], mask))
            state.epoch += 1
            if run.val is not None and state.epoch % cfg.val_every == 0:
                _track_best(run, state)
        state.losses.append(torch.stack(block))
        state.elapsed = time.perf_counter() - start
        if run.checkpoint is not None and state.epoch // cfg.checkpoint_every > last_checkpoint:
            run.save(state)  # at a block's end: the generators are where the next block starts
        worst = state.losses[-1][-1].masked_fill(~state.active, 0).max()
        bar.set_postfix(loss=f"{float(worst):.2e}", training=int(state.active.sum()))
        bar.update(n_block)
    bar.close()
    state.elapsed = time.perf_counter() - start
    if run.val is not None:
        _track_best(run, state)


@torch.no_grad()
def _track_best(run: _Run, state: _State) -> None:
    """Keep, per model, the weights with the lowest validation loss so far."""
    loss = stacked_loss(run.stack, run.val.padded, run.val.mask, run.cfg.mean_weight)
    better = loss < state.best_val
    params = [p.detach() for p in run.stack.parameters()]
    best = state.best if state.best is not None else params
    state.best = [torch.where(_expand(better, p), p, b) for p, b in zip(params, best, strict=True)]
    state.best_val = torch.where(better, loss, state.best_val)


def train_share_stacked(
    indices: list[int],
    data: Tensor,
    val_data: Tensor | None,
    config: HierarchyConfig,
    checkpoint_dir: str | Path | None = None,
    progress: bool = False,
) -> dict[int, dict]:
    """``train_share`` with the models ``indices`` trained together: the same seeds, windows,
    scaling and learning-rate stages as one by one; ``config.time_budget`` bounds the stack."""
    if not indices:
        return {}
    models = [init_model(i, data.shape[-1], config) for i in indices]
    n_forward = config.train.n_forward

    def windows(d: Tensor, i: int) -> Tensor:
        return training_windows(model_data(d, i, config), config.steps[i], n_forward)

    train = [windows(data, i) for i in indices]
    val = None if val_data is None else [windows(val_data, i) for i in indices]
    if config.normalize:
        for model, w in zip(models, train, strict=True):
            model.set_scaling(w)
    if progress:
        steps = [config.steps[i] for i in indices]
        print(f"models {indices} (steps {steps}·dt): training together", flush=True)
    histories: list[list[float]] = [[] for _ in indices]
    for stage in range(len(config.lr_stages)):
        cfgs = [
            stage_config(config, stage, config.train.seed + i, config.time_budget) for i in indices
        ]
        ckpt = None
        if checkpoint_dir is not None:
            name = "-".join(f"{i:02d}" for i in indices)
            ckpt = Path(checkpoint_dir) / f"stacked_models{name}_lr{stage}.pt"
        models, losses = train_stacked(
            models, train, cfgs[0], [c.seed for c in cfgs],
            val_windows=val, checkpoint=ckpt, progress=progress,
        )  # fmt: skip
        for history, more in zip(histories, losses, strict=True):
            history += more
    if progress:
        for i, history in zip(indices, histories, strict=True):
            last = f"{history[-1]:.3e}" if history else "n/a"
            print(f"model {i}: {len(history)} epochs, last loss {last}", flush=True)
    return {i: model_payload(m) for i, m in zip(indices, models, strict=True)}

"""Neural flow-map steppers ``x -> x + F(x)`` (HiTS, SEEDS S1): model, propagator, save/load,
and training with the multi-step loss."""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from partime.steppers.compose import StepperCover

__all__ = [
    "ACTIVATIONS",
    "FlowMapMLP",
    "FlowMapTrainConfig",
    "NeuralStepper",
    "check_dim",
    "load_torch_file",
    "model_from_payload",
    "model_payload",
    "multi_step_loss",
    "train_flow_map",
    "training_windows",
]

STEPPER_FORMAT = "partime.neural_stepper"
FORMAT_VERSION = 1

# Nonlinearities between the layers of a FlowMapMLP. ReLU is the paper's; a smooth one (tanh)
# gives a smooth flow map whose Jacobian can be fitted (``partime.steppers.jacobian_fit``).
ACTIVATIONS: dict[str, type[nn.Module]] = {"relu": nn.ReLU, "tanh": nn.Tanh, "silu": nn.SiLU}


class FlowMapMLP(nn.Module):
    """Residual MLP flow map: ``forward(x) = x + MLP(x)``, x (batch, dim).

    MLP is [dim, *widths, dim] with ``activation`` (a key of ACTIVATIONS; ReLU as in SEEDS S1)
    between layers and none after the last.
    With ``normalize=True`` (not in the paper; off by default) the MLP sees
    ``(x - in_shift) / in_scale`` and its output is multiplied by ``out_scale`` (per-dimension
    buffers, saved with the model, set by ``set_scaling``), for states far from unit size.
    """

    def __init__(
        self,
        dim: int,
        widths: Sequence[int] = (128, 128, 128),
        normalize: bool = False,
        activation: str = "relu",
    ) -> None:
        super().__init__()
        if not isinstance(dim, int) or dim < 1:
            raise ValueError(f"FlowMapMLP: dim must be a positive integer, got {dim!r}")
        widths = tuple(widths)
        if not widths or any(not isinstance(w, int) or w < 1 for w in widths):
            raise ValueError(f"FlowMapMLP: widths must be positive integers, got {widths!r}")
        if activation not in ACTIVATIONS:
            raise ValueError(
                f"FlowMapMLP: unknown activation {activation!r}; known: {', '.join(ACTIVATIONS)}"
            )
        sizes = (dim, *widths, dim)
        layers: list[nn.Module] = []
        for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
            layers.append(nn.Linear(n_in, n_out))
            if i < len(sizes) - 2:
                layers.append(ACTIVATIONS[activation]())
        self.net = nn.Sequential(*layers)
        self.dim = dim
        self.widths = widths
        self.activation = activation
        self.normalize = bool(normalize)
        if self.normalize:  # identity until set_scaling; buffers only then, so old files load
            self.register_buffer("in_shift", torch.zeros(dim))
            self.register_buffer("in_scale", torch.ones(dim))
            self.register_buffer("out_scale", torch.ones(dim))

    def forward(self, x: Tensor) -> Tensor:
        if not self.normalize:
            return x + self.net(x)
        return x + self.out_scale * self.net((x - self.in_shift) / self.in_scale)

    @torch.no_grad()
    def set_scaling(self, windows: Tensor) -> None:
        """Set the buffers from training windows (n_traj, n_frames, dim): mean and std of the
        states, std of the one-step increments (floored so constant components stay finite)."""
        if not self.normalize:
            raise ValueError("set_scaling needs a FlowMapMLP built with normalize=True")
        states = windows.reshape(-1, windows.shape[-1]).double()
        steps = (windows[:, 1:] - windows[:, :-1]).reshape(-1, windows.shape[-1]).double()
        floor = 1e-8 * max(1.0, float(states.abs().max()))
        self.in_shift.copy_(states.mean(0))
        self.in_scale.copy_(states.std(0).clamp(min=floor))
        self.out_scale.copy_(steps.std(0).clamp(min=floor))

    def extra_repr(self) -> str:
        return (
            f"dim={self.dim}, widths={self.widths}, normalize={self.normalize}, "
            f"activation={self.activation!r}"
        )


def model_payload(model: FlowMapMLP) -> dict[str, Any]:
    """What a saved file holds for one model: architecture plus a CPU state dict."""
    if not isinstance(model, FlowMapMLP):
        raise TypeError(f"only FlowMapMLP models can be saved, got {type(model).__name__}")
    return {
        "dim": model.dim,
        "widths": list(model.widths),
        "normalize": model.normalize,
        "activation": model.activation,
        "dtype": str(next(model.parameters()).dtype).removeprefix("torch."),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
    }


def model_from_payload(payload: Any, path: str | Path) -> FlowMapMLP:
    """Rebuild a FlowMapMLP from ``model_payload`` output; ValueError naming ``path`` if bad."""
    try:
        widths = tuple(int(w) for w in payload["widths"])
        model = FlowMapMLP(
            int(payload["dim"]),
            widths,
            bool(payload.get("normalize", False)),
            str(payload.get("activation", "relu")),  # files written before the option: ReLU
        )
        model.load_state_dict(payload["state_dict"])
        return model.to(getattr(torch, payload.get("dtype", "float32")))
    except (KeyError, TypeError, RuntimeError, AttributeError, ValueError) as err:
        raise ValueError(f"{path}: model entry does not match its architecture ({err})") from err


def load_torch_file(path: str | Path, format_tag: str, what: str, map_location: Any) -> dict:
    """Load (weights_only) a dict tagged ``format_tag``; clear ValueError on anything else."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such {what} file: {path}")
    try:
        blob = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # torch raises many types (UnpicklingError, RuntimeError, EOFError)
        raise ValueError(f"{path} is not a {what} file (cannot read it: {err})") from err
    if not isinstance(blob, dict) or blob.get("format") != format_tag:
        found = blob.get("format") if isinstance(blob, dict) else type(blob).__name__
        raise ValueError(f"{path} is not a {what} file (format tag {found!r})")
    if blob.get("version") != FORMAT_VERSION:
        raise ValueError(f"{path}: unsupported {what} file version {blob.get('version')!r}")
    return blob


def check_dim(path: str | Path, found: int, expected: int | None) -> None:
    """ValueError if a loaded model's dimension differs from the one the caller needs."""
    if expected is not None and found != expected:
        raise ValueError(
            f"dimension mismatch: {path} holds models of dim {found}, the system has dim {expected}"
        )


class NeuralStepper(StepperCover):
    """Propagator applying a flow map ``model`` n = (t1-t0)/step times (validated).

    Inputs of any dtype/device are cast to the model's and the result back to the input's,
    so a float32 network can serve as coarse propagator for a float64 fine solve.
    """

    def __init__(
        self,
        model: nn.Module,
        step: float,
        system: str = "",
        dt: float | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        dim = getattr(model, "dim", None)
        if not isinstance(dim, int):
            raise TypeError(f"NeuralStepper: model needs an integer .dim, got {type(model)}")
        if dtype is not None:
            model = model.to(dtype)
        super().__init__(model, step, dim)
        self.model = model
        self.system = system
        self.dt = float(dt) if dt is not None else float(step)

    def _param(self) -> Tensor:
        return next(self.model.parameters())

    def __call__(self, x: Tensor, t0: float | Tensor, t1: float | Tensor) -> Tensor:
        p = self._param()
        return super().__call__(x.to(p.device, p.dtype), t0, t1).to(x.device, x.dtype)

    def trajectory(
        self, x: Tensor, t0: float | Tensor, t1: float | Tensor, save_every: int = 1
    ) -> Tensor:
        """States every ``save_every`` steps incl. x: (n_steps // save_every + 1, batch, dim)."""
        p = self._param()
        traj = super().trajectory(x.to(p.device, p.dtype), t0, t1, save_every)
        return traj.to(x.device, x.dtype)

    prop = __call__

    def save(self, path: str | Path) -> None:
        """Write model, step, dt and system name to ``path`` (torch.save of a tagged dict)."""
        blob = {
            "format": STEPPER_FORMAT,
            "version": FORMAT_VERSION,
            "model": model_payload(self.model),
            "step": self.step,
            "dt": self.dt,
            "system": self.system,
        }
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        torch.save(blob, path)

    @classmethod
    def load(
        cls, path: str | Path, map_location: Any = "cpu", dim: int | None = None
    ) -> NeuralStepper:
        """Read a file written by ``save``; ValueError on an unreadable file or (with ``dim``)
        a dimension mismatch."""
        blob = load_torch_file(path, STEPPER_FORMAT, "partime neural stepper", map_location)
        model = model_from_payload(blob.get("model"), path)
        check_dim(path, model.dim, dim)
        try:
            step, dt, system = float(blob["step"]), float(blob["dt"]), str(blob["system"])
        except (KeyError, TypeError, ValueError) as err:
            raise ValueError(f"{path}: neural stepper file lacks step/dt/system ({err})") from err
        return cls(model.to(map_location), step, system=system, dt=dt)

    def __repr__(self) -> str:
        return f"NeuralStepper({self.model.extra_repr()}, step={self.step}, system={self.system!r})"


@dataclasses.dataclass(frozen=True)
class FlowMapTrainConfig:
    """Options of ``train_flow_map``; defaults are the HiTS paper's (SEEDS S1).

    One "epoch" is one Adam step on a random minibatch of ``batch_size`` windows. Training
    stops at ``loss <= loss_tol``, after ``max_epochs`` or after ``time_budget`` seconds
    (counted across resumes). Loss = ``mean_weight``·mean + (1 − mean_weight)·max of the
    squared errors. With validation data the best model (checked every ``val_every`` epochs)
    is kept; a checkpoint file is rewritten every ``checkpoint_every`` epochs.
    """

    n_forward: int = 5
    lr: float = 1e-3
    batch_size: int = 320
    max_epochs: int = 100_000
    time_budget: float | None = None
    loss_tol: float = 1e-8
    seed: int = 0
    mean_weight: float = 1.0
    val_every: int = 1000
    checkpoint_every: int = 1000

    def __post_init__(self) -> None:
        for name in ("n_forward", "batch_size", "val_every", "checkpoint_every"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ValueError(f"{name} must be a positive integer, got {getattr(self, name)!r}")
        if not isinstance(self.max_epochs, int) or self.max_epochs < 0:
            raise ValueError(f"max_epochs must be a non-negative integer, got {self.max_epochs!r}")
        if not self.lr > 0:
            raise ValueError(f"lr must be positive, got {self.lr!r}")
        if self.time_budget is not None and not self.time_budget >= 0:
            raise ValueError(f"time_budget must be >= 0 seconds or None, got {self.time_budget!r}")
        if not 0.0 <= self.mean_weight <= 1.0:
            raise ValueError(f"mean_weight must lie in [0, 1], got {self.mean_weight!r}")


# Options that must match when a checkpoint is resumed (budgets may change between runs).
_RESUME_KEYS = ("n_forward", "lr", "batch_size", "seed", "mean_weight")


def training_windows(data: Tensor, stride: int, n_forward: int) -> Tensor:
    """One window per trajectory: frames 0, s, …, n_forward·s of data (n_traj, n_points, dim)
    -> (n_traj, n_forward + 1, dim)."""
    if not isinstance(data, Tensor) or data.ndim != 3 or data.shape[0] == 0:
        shape = tuple(data.shape) if isinstance(data, Tensor) else type(data).__name__
        raise ValueError(f"training data must be a tensor (n_traj, n_points, dim), got {shape}")
    if not isinstance(stride, int) or stride < 1:
        raise ValueError(f"stride must be a positive integer (steps of dt), got {stride!r}")
    if n_forward * stride > data.shape[1] - 1:
        raise ValueError(
            f"trajectories of {data.shape[1]} points are too short for {n_forward} steps of "
            f"stride {stride} (need {n_forward * stride + 1} points)"
        )
    return data[:, : n_forward * stride + 1 : stride]


def multi_step_loss(model: nn.Module, windows: Tensor, mean_weight: float = 1.0) -> Tensor:
    """Roll ``model`` out from frame 0 of each window; squared error over batch × steps × dims."""
    x, preds = windows[:, 0], []
    for _ in range(windows.shape[1] - 1):
        x = model(x)
        preds.append(x)
    err = (torch.stack(preds, dim=1) - windows[:, 1:]).square()
    if mean_weight == 1.0:
        return err.mean()
    return mean_weight * err.mean() + (1.0 - mean_weight) * err.max()


def train_flow_map(
    model: nn.Module,
    data: Tensor,
    stride: int,
    config: FlowMapTrainConfig | None = None,
    *,
    val_data: Tensor | None = None,
    checkpoint: str | Path | None = None,
    progress: bool = False,
    **options: Any,
) -> list[float]:
    """Train a flow map of ``stride`` data steps on data (n_traj, n_points, dim) in place.

    ``options`` override fields of ``config`` (e.g. ``max_epochs=2000``). With ``checkpoint``
    an interrupted run resumes where it stopped. Returns the minibatch loss per epoch.
    """
    cfg = dataclasses.replace(config or FlowMapTrainConfig(), **options)
    param = next(model.parameters())
    windows = training_windows(data, stride, cfg.n_forward).to(param.device, param.dtype)
    if windows.shape[-1] != getattr(model, "dim", windows.shape[-1]):
        raise ValueError(f"dimension mismatch: data dim {windows.shape[-1]}, model dim {model.dim}")
    if getattr(model, "normalize", False):  # a resumed checkpoint restores the same buffers
        model.set_scaling(windows)
    val = None if val_data is None else training_windows(val_data, stride, cfg.n_forward)
    val = None if val is None else val.to(param.device, param.dtype)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    gen = torch.Generator().manual_seed(cfg.seed)
    state = {"epoch": 0, "elapsed": 0.0, "history": [], "best_val": float("inf")}
    state |= {"best_state": None, "converged": False, "stride": stride}
    state["architecture"] = model.extra_repr()
    if checkpoint is not None and Path(checkpoint).is_file():
        _resume(checkpoint, cfg, state, model, opt, gen)
    _run_epochs(model, windows, val, cfg, state, opt, gen, checkpoint, progress)
    if checkpoint is not None:
        _save_checkpoint(checkpoint, cfg, state, model, opt, gen)
    if state["best_state"] is not None:
        model.load_state_dict(state["best_state"])
    return state["history"]


def _run_epochs(model, windows, val, cfg, state, opt, gen, checkpoint, progress) -> None:
    """The Adam loop; mutates ``state`` (epoch, history, best model, elapsed time)."""
    from tqdm.auto import tqdm

    start = time.perf_counter() - state["elapsed"]
    bar = tqdm(total=cfg.max_epochs, initial=state["epoch"], disable=not progress, leave=False)
    while state["epoch"] < cfg.max_epochs and not state["converged"]:
        if cfg.time_budget is not None and time.perf_counter() - start >= cfg.time_budget:
            break
        batch = torch.randperm(windows.shape[0], generator=gen)[: cfg.batch_size]
        loss = multi_step_loss(model, windows[batch], cfg.mean_weight)
        state["history"].append(loss.item())
        if state["history"][-1] <= cfg.loss_tol:
            state["converged"] = True
            break
        opt.zero_grad()
        loss.backward()
        opt.step()
        state["epoch"] += 1
        state["elapsed"] = time.perf_counter() - start
        if val is not None and state["epoch"] % cfg.val_every == 0:
            _track_best(model, val, cfg, state)
        if checkpoint is not None and state["epoch"] % cfg.checkpoint_every == 0:
            _save_checkpoint(checkpoint, cfg, state, model, opt, gen)
        if state["epoch"] % 100 == 0:
            bar.set_postfix(loss=f"{state['history'][-1]:.2e}")
        bar.update()
    bar.close()
    state["elapsed"] = time.perf_counter() - start
    if val is not None:
        _track_best(model, val, cfg, state)


def _track_best(model: nn.Module, val: Tensor, cfg: FlowMapTrainConfig, state: dict) -> None:
    with torch.no_grad():
        loss = multi_step_loss(model, val, cfg.mean_weight).item()
    if loss < state["best_val"]:
        state["best_val"] = loss
        state["best_state"] = {k: v.detach().clone() for k, v in model.state_dict().items()}


def _save_checkpoint(path, cfg, state, model, opt, gen) -> None:
    blob = {"config": {k: getattr(cfg, k) for k in _RESUME_KEYS}, "state": state}
    blob |= {"model": model.state_dict(), "optimizer": opt.state_dict(), "rng": gen.get_state()}
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    tmp = f"{path}.tmp"
    torch.save(blob, tmp)
    os.replace(tmp, path)  # atomic: an interrupt never leaves a half-written checkpoint


def _resume(path, cfg, state, model, opt, gen) -> None:
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
        saved = blob["config"]
        saved |= {k: blob["state"].get(k) for k in ("stride", "architecture")}
    except Exception as err:
        raise ValueError(f"{path} is not a readable flow-map training checkpoint ({err})") from err
    wanted = {k: getattr(cfg, k) for k in _RESUME_KEYS}
    wanted |= {k: state[k] for k in ("stride", "architecture")}
    if saved != wanted:
        raise ValueError(
            f"checkpoint {path} was written with other options ({saved}) than this run "
            f"({wanted}); delete it or use the same options"
        )
    try:
        model.load_state_dict(blob["model"])
    except RuntimeError as err:
        raise ValueError(f"checkpoint {path} holds a different architecture ({err})") from err
    opt.load_state_dict(blob["optimizer"])
    gen.set_state(blob["rng"])
    state.update(blob["state"])

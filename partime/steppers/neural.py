"""Neural flow-map steppers ``x -> x + F(x)`` (HiTS: Liu, Kutz & Brunton 2022): model,
propagator, save/load.
Training: ``partime.steppers.flow_training`` (trajectories), ``jacobian_fit`` (a propagator)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from partime.io.atomic import atomic_save
from partime.steppers.compose import StepperCover

__all__ = [
    "ACTIVATIONS",
    "FlowMapMLP",
    "NeuralStepper",
    "check_dim",
    "load_torch_file",
    "model_from_payload",
    "model_payload",
]

STEPPER_FORMAT = "partime.neural_stepper"
FORMAT_VERSION = 1

# Nonlinearities between the layers of a FlowMapMLP. ReLU is the paper's; a smooth one (tanh)
# gives a smooth flow map whose Jacobian can be fitted (``partime.steppers.jacobian_fit``).
ACTIVATIONS: dict[str, type[nn.Module]] = {"relu": nn.ReLU, "tanh": nn.Tanh, "silu": nn.SiLU}


class FlowMapMLP(nn.Module):
    """Residual MLP flow map: ``forward(x) = x + MLP(x)``, x (batch, dim).

    MLP is [dim, *widths, dim] with ``activation`` (a key of ACTIVATIONS; ReLU as in the HiTS paper)
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
        atomic_save(blob, path)

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

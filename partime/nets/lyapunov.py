"""The Lyapunov-stable physics-informed autoencoder (Erichson, Muehlebach, Mahoney):
y_{t+1} ≈ Φ(Ω Ψ(y_t)) with an encoder Ψ, linear latent dynamics Ω and a decoder Φ.

The loss (talk): the mean over t of ‖y_{t+1} − ΦΩΨy_t‖² + ‖y_{t+2} − ΦΩ²Ψy_t‖²
+ λ‖y_t − ΦΨy_t‖², plus κ·Σρ(p_i) (squared norms as the talk writes them; the re-implementation's
Keras MSE divides the data terms by the snapshot size, i.e. weighs κ that much more),
with p_i the eigenvalues of the symmetric P solving ΩᵀPΩ − P = −I and
ρ(p) = exp(−|p − 1|/γ) for p < 0, else 0. For a scalar ω, p = 1/(1 − ω²): stable |ω| < 1 gives
p > 0 and no penalty; the penalty is a soft barrier that pulls strongly unstable eigenvalues back.
As ω → 1⁺, p → −∞ and ρ ≈ exp(−1/(γ(ω² − 1))): every derivative vanishes on the unit circle, and
the push κ·dρ/dω peaks at ω² − 1 = 1/(2γ) with height ≈ 1.08·κγ. The preset's γ = 4 puts it at
|ω| ≈ 1.06 and leaves nothing below ≈ 1.005 (dρ/dω ≈ 1e-50 at 1.001), so the data terms hold
the radius a little above 1. The defaults γ = 250, κ = 0.048 keep the preset's height
(κγ = 12) and move the peak to |ω| = 1 + 1e-3.
Targets are the *next* snapshots (the re-implementation's reversed targets are not copied).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from partime.options import option

__all__ = [
    "LyapunovAE",
    "LyapunovAEConfig",
    "LyapunovLoss",
    "LyapunovLossConfig",
    "LyapunovLossConfig",
    "lyapunov_solve",
    "stability_penalty",
]


def lyapunov_solve(omega: Tensor) -> Tensor:
    """P (n, n) with ΩᵀPΩ − P = −I, differentiable, in float64: the Kronecker system
    (Ωᵀ ⊗ Ωᵀ − I) vec(P) = −vec(I) (row-major vec); its least-squares solution where the
    system is singular (an eigenvalue pair with ω_i·ω_j = 1)."""
    a = omega.to(torch.float64)
    n = a.shape[0]
    system = torch.kron(a.T, a.T) - torch.eye(n * n, dtype=a.dtype, device=a.device)
    rhs = -torch.eye(n, dtype=a.dtype, device=a.device).reshape(n * n, 1)
    solution, info = torch.linalg.solve_ex(system, rhs)
    if int(info) != 0:
        solution = torch.linalg.pinv(system) @ rhs
    p = solution.reshape(n, n)
    return 0.5 * (p + p.T)


def stability_penalty(omega: Tensor, gamma: float = 250.0) -> Tensor:
    """Σ_i ρ(p_i) over the eigenvalues p_i of P(Ω): 0 for a stable Ω (float64 scalar)."""
    p = torch.linalg.eigvalsh(lyapunov_solve(omega))
    return torch.where(p < 0, torch.exp(-(p - 1).abs() / gamma), torch.zeros_like(p)).sum()


OMEGA_INITS = ("glorot", "orthogonal")


@dataclass(frozen=True)
class LyapunovAEConfig:
    """Sizes: snapshots of ``dim`` values, hidden widths (40, 25), latent 15 (the talk's)."""

    dim: int = option(64, "values per snapshot (set by the data)")
    widths: tuple[int, ...] = option((40, 25), "hidden widths of the encoder (decoder: reversed)")
    latent: int = option(15, "latent size (Omega is latent x latent)")
    omega_init: str = option(
        "glorot",
        "Omega's initialisation: glorot (normal, the talk's) or orthogonal (U V^T of a normal "
        "matrix, every eigenvalue on the unit circle: koopmanAE's, init_scale 1)",
        choices=OMEGA_INITS,
    )

    def __post_init__(self) -> None:
        sizes = (self.dim, *self.widths, self.latent)
        if not all(isinstance(s, int) and s >= 1 for s in sizes):
            raise ValueError(f"dim, widths and latent must be positive integers, got {sizes}")
        if self.omega_init not in OMEGA_INITS:
            raise ValueError(f"omega_init must be one of {OMEGA_INITS}, got {self.omega_init!r}")


def _mlp(sizes: list[int]) -> nn.Sequential:
    """tanh between the layers, linear output."""
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        layers += [nn.Linear(a, b)] + ([nn.Tanh()] if i < len(sizes) - 2 else [])
    return nn.Sequential(*layers)


class LyapunovAE(nn.Module):
    """Ψ: dim → widths → latent; Ω: latent × latent, no bias, z_{t+1} = Ω z_t (glorot normal or
    orthogonal); Φ: latent → reversed widths → dim. No batch norm (the re-implementation has one
    after Ψ): it would make data-parallel training differ from serial."""

    def __init__(self, config: LyapunovAEConfig | None = None) -> None:
        super().__init__()
        self.config = config or LyapunovAEConfig()
        c = self.config
        self.encoder = _mlp([c.dim, *c.widths, c.latent])
        self.dynamics = nn.Linear(c.latent, c.latent, bias=False)
        nn.init.xavier_normal_(self.dynamics.weight)
        if c.omega_init == "orthogonal":  # the polar factor U Vᵀ: all |eig| = 1
            u, _, vh = torch.linalg.svd(self.dynamics.weight.detach())
            self.dynamics.weight.data.copy_(u @ vh)
        self.decoder = _mlp([c.latent, *reversed(c.widths), c.dim])

    @property
    def omega(self) -> Tensor:
        """Ω (latent, latent) acting on column vectors."""
        return self.dynamics.weight

    def forward(self, y: Tensor) -> Tensor:
        """(B, dim) -> (B, 3, dim): the reconstruction ΦΨy and the predictions ΦΩΨy, ΦΩ²Ψy."""
        z0 = self.encoder(y)
        z1 = self.dynamics(z0)
        z2 = self.dynamics(z1)
        return self.decoder(torch.stack([z0, z1, z2], dim=1))

    def rollout(self, y0: Tensor, steps: int) -> Tensor:
        """(steps + 1, B, dim): ΦΩ^kΨ(y0) for k = 0..steps (the latent state is iterated)."""
        z = self.encoder(y0)
        states = [z]
        for _ in range(steps):
            z = self.dynamics(z)
            states.append(z)
        return self.decoder(torch.stack(states))

    def spectral_radius(self) -> float:
        """max |eig(Ω)|."""
        return float(torch.linalg.eigvals(self.omega.detach().double()).abs().max())


@dataclass(frozen=True)
class LyapunovLossConfig:
    """Weights of the loss terms: λ = 3 as the re-implementation's cylinder preset; its κ = 3,
    γ = 4 barrier acts near |ω| ≈ 1.06, the defaults κ = 0.048, γ = 250 at 1 + 1e-3 with the
    same peak push κ·max dρ/d|ω| (see the module docstring)."""

    lam: float = option(3.0, "weight of the reconstruction error")
    kappa: float = option(0.048, "weight of the stability penalty (0: physics-agnostic)")
    gamma: float = option(
        250.0, "width of the prior rho(p) = exp(-|p - 1|/gamma), p < 0 (the preset's: 4)"
    )
    two_step: float = option(1.0, "weight of the two-step prediction error")

    def __post_init__(self) -> None:
        if min(self.lam, self.kappa, self.two_step) < 0 or not self.gamma > 0:
            raise ValueError(f"need lam, kappa, two_step >= 0 and gamma > 0, got {self}")


def _squared_norm(output: Tensor, target: Tensor) -> Tensor:
    """Mean over the batch of ‖output − target‖² over the last dimension."""
    return (output - target).square().sum(-1).mean()


class LyapunovLoss:
    """The training loss on ``model``'s outputs (B, 3, dim) against targets (y_t, y_{t+1},
    y_{t+2}): one-step + two-step prediction + λ × reconstruction squared errors, plus κ·Σρ(p_i)
    of the model's Ω (a parameter term: the same on every rank, so data parallel stays exact)."""

    def __init__(self, model: LyapunovAE, config: LyapunovLossConfig | None = None) -> None:
        self.model, self.config = model, config or LyapunovLossConfig()

    def __call__(self, output: Tensor, target: Tensor) -> Tensor:
        c = self.config
        loss = _squared_norm(output[:, 1], target[:, 1])
        loss = loss + c.lam * _squared_norm(output[:, 0], target[:, 0])
        if c.two_step:
            loss = loss + c.two_step * _squared_norm(output[:, 2], target[:, 2])
        if c.kappa:
            loss = loss + c.kappa * stability_penalty(self.model.omega, c.gamma).to(loss.dtype)
        return loss

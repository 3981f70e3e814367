"""Kuramoto–Sivashinsky equation u_t = -u u_x - u_xx - u_xxxx, periodic, pseudo-spectral."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from partime.dynamics.base import check_state_dim

#: Kassam & Trefethen (2005) domain [0, 32*pi]; the HiTS paper quotes (0, 16*pi) for its data,
#: but the initial condition below is only periodic on multiples of 32*pi / k, and 32*pi is the
#: classic chaotic setup that its published ETDRK4 script (h = 1/4) runs.
DEFAULT_LENGTH = 32.0 * math.pi


class KuramotoSivashinsky:
    """KS on ``n`` equispaced points of [0, length) in Fourier space: v' = L v + N(v).

    ``linear`` holds L = q^2 - q^4 per rfft mode (complex128, shape (n//2 + 1,)) and
    ``nonlinear(v_hat)`` is N(v) = -0.5 i q FFT(u^2). As in Kassam–Trefethen the Nyquist
    wavenumber is set to zero, so that mode stays real and is left untouched. ``dealias``
    applies the 2/3 rule to N. ``__call__(t, u)`` is the physical-space right-hand side, so
    the KS equation is also a ``VectorField`` of dimension ``n``.
    """

    name = "ks"

    def __init__(self, n: int = 512, length: float = DEFAULT_LENGTH, dealias: bool = False):
        if isinstance(n, bool) or not isinstance(n, int) or n < 4 or n % 2:
            raise ValueError(f"ks: n must be an even integer >= 4, got {n!r}")
        if not (isinstance(length, (int, float)) and math.isfinite(length) and length > 0):
            raise ValueError(f"ks: length must be a positive finite number, got {length!r}")
        self.dim = n
        self.length = float(length)
        self.dealias = bool(dealias)
        modes = torch.arange(n // 2 + 1, dtype=torch.float64)
        modes[-1] = 0.0  # Nyquist: its i*q derivative is not real-representable
        self.wavenumbers = 2.0 * math.pi / self.length * modes
        q2 = self.wavenumbers**2
        self.linear = (q2 - q2 * q2).to(torch.complex128)
        # 2/3 rule: keep modes below n/3 (the Nyquist mode is already zero).
        self._keep = (torch.arange(n // 2 + 1) < n / 3).to(torch.float64)
        self._copies: dict[tuple, Tensor] = {}

    def _on(self, name: str, like: Tensor, dtype: torch.dtype) -> Tensor:
        """Attribute ``name`` on ``like``'s device as ``dtype``, cached: no copy per GPU call."""
        key = (name, like.device, dtype)
        if key not in self._copies:
            self._copies[key] = getattr(self, name).to(device=like.device, dtype=dtype)
        return self._copies[key]

    def to_fourier(self, u: Tensor) -> Tensor:
        """Physical (..., n) real -> Fourier (..., n//2 + 1) complex (unnormalised rfft)."""
        self.check_state(u)
        return torch.fft.rfft(u, dim=-1)

    def to_physical(self, v_hat: Tensor) -> Tensor:
        """Fourier (..., n//2 + 1) complex -> physical (..., n) real."""
        return torch.fft.irfft(v_hat, n=self.dim, dim=-1)

    def nonlinear(self, v_hat: Tensor) -> Tensor:
        """N(v) = -0.5 i q FFT(u^2) for Fourier states (..., n//2 + 1)."""
        u = self.to_physical(v_hat)
        out = (-0.5j * self._on("wavenumbers", u, u.dtype)) * torch.fft.rfft(u * u, dim=-1)
        if self.dealias:
            out = out * self._on("_keep", u, u.dtype)
        return out

    def check_state(self, u: Tensor) -> None:
        """Raise ValueError unless ``u`` has trailing dimension ``n``."""
        check_state_dim(self, u)

    def __call__(self, t: float | Tensor, u: Tensor) -> Tensor:
        """Physical-space right-hand side u_t for u of shape (..., n)."""
        v_hat = self.to_fourier(u)
        lin = self._on("linear", u, v_hat.dtype)
        return self.to_physical(lin * v_hat + self.nonlinear(v_hat))

    def grid(self, dtype: torch.dtype = torch.float64) -> Tensor:
        """Grid x_j = length * j / n for j = 1..n (Kassam–Trefethen's convention), shape (n,)."""
        return self.length * torch.arange(1, self.dim + 1, dtype=dtype) / self.dim

    def initial_condition(self, batch: int = 1, dtype: torch.dtype = torch.float64) -> Tensor:
        """u0 = cos(k x)(1 + sin(k x)), k = 2 pi / length (KT's u0 for length 32 pi), (batch, n)."""
        if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
            raise ValueError(f"ks: batch must be a positive integer, got {batch!r}")
        kx = 2.0 * math.pi / self.length * self.grid(dtype)
        return (torch.cos(kx) * (1.0 + torch.sin(kx))).expand(batch, self.dim).clone()

    def __repr__(self) -> str:
        return f"KuramotoSivashinsky(n={self.dim}, length={self.length:g}, dealias={self.dealias})"

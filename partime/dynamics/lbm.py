"""D2Q9 lattice-Boltzmann (BGK) solver in torch: channel flows with solid obstacles.

Populations ``f`` have shape (9, ny, nx) (direction, row y, column x), lattice units (dx = dt = 1,
c_s² = 1/3). One ``step`` = collide (BGK, relaxation time ``tau``) then stream; streaming and
the half-way bounce-back on solid nodes are one gather through a precomputed pull index, so a
step is a handful of vectorised tensor operations on any device.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor

#: Lattice velocities (x, y), weights and opposite directions of D2Q9.
VELOCITIES = ((0, 0), (1, 0), (0, 1), (-1, 0), (0, -1), (1, 1), (-1, 1), (-1, -1), (1, -1))
WEIGHTS = (4 / 9,) + (1 / 9,) * 4 + (1 / 36,) * 4
OPPOSITE = (0, 3, 4, 1, 2, 7, 8, 5, 6)
_EAST, _WEST = [1, 5, 8], [3, 6, 7]  # directions with c_x = +1 and c_x = -1
WALLS = ("periodic", "slip", "noslip")


def tau_from_reynolds(reynolds: float, velocity: float, length: float) -> float:
    """BGK relaxation time for Re = U·L/ν with ν = (τ − 1/2)/3 in lattice units."""
    return 3.0 * velocity * length / reynolds + 0.5


def equilibrium(rho: Tensor, u: Tensor) -> Tensor:
    """Second-order equilibrium: rho (...), u (2, ...) -> f_eq (9, ...)."""
    shape = (9,) + (1,) * rho.dim()
    c = torch.tensor(VELOCITIES, dtype=u.dtype, device=u.device)
    w = torch.tensor(WEIGHTS, dtype=u.dtype, device=u.device).view(shape)
    cu = c[:, 0].view(shape) * u[0] + c[:, 1].view(shape) * u[1]
    usq = 1.5 * (u[0] * u[0] + u[1] * u[1])
    return w * rho * (1.0 - usq + cu * (3.0 + 4.5 * cu))


def moments(f: Tensor) -> tuple[Tensor, Tensor]:
    """Density (...) and velocity (2, ...) of populations f (9, ...)."""
    rho = f.sum(0)
    ux = f[1] + f[5] + f[8] - f[3] - f[6] - f[7]
    uy = f[2] + f[5] + f[6] - f[4] - f[7] - f[8]
    return rho, torch.stack((ux, uy)) / rho


def collide(f: Tensor, inv_tau: float, damping: Tensor, far_field: Tensor) -> Tensor:
    """BGK relaxation of f (9, ...) toward its equilibrium with rate 1/tau, then toward the
    ``far_field`` populations with the per-node rate ``damping`` (an absorbing layer)."""
    rho, u = moments(f)
    post = f + (equilibrium(rho, u) - f) * inv_tau
    return post + damping * (far_field - post)


def sponge(nx: int, ny: int, width: int, strength: float, sides: str = "tbr") -> Tensor:
    """Absorbing-layer rates (ny, nx): ``strength``·(depth/width)² within ``width`` nodes of the
    top (t), bottom (b) and right (r) edges, 0 inside (acoustic waves leave instead of ringing)."""
    y, x = torch.meshgrid(torch.arange(ny), torch.arange(nx), indexing="ij")
    depth = torch.zeros(ny, nx)
    edges = {"t": ny - 1 - y, "b": y, "r": nx - 1 - x, "l": x}
    for side in sides:
        depth = torch.maximum(depth, (width - edges[side]).clamp(min=0) / max(width, 1))
    return strength * depth**2


@dataclass(frozen=True)
class Lattice:
    """Geometry of a D2Q9 run: grid, solid mask (ny, nx), the rule at y = 0 and y = ny − 1, and
    whether x wraps (else columns 0 and nx − 1 are open: their populations are set by the flow).

    ``walls``: ``periodic`` (y wraps), ``slip`` (specular reflection) or ``noslip`` (half-way
    bounce-back: the wall lies half a node beyond rows 0 and ny − 1).
    """

    nx: int
    ny: int
    solid: Tensor = field(repr=False)
    walls: str = "periodic"
    periodic_x: bool = False

    def __post_init__(self) -> None:
        if self.nx < 3 or self.ny < 3:
            raise ValueError(f"the lattice needs nx, ny >= 3, got nx={self.nx}, ny={self.ny}")
        if tuple(self.solid.shape) != (self.ny, self.nx) or self.solid.dtype != torch.bool:
            raise ValueError(f"solid must be a bool tensor of shape ({self.ny}, {self.nx})")
        if self.walls not in WALLS:
            raise ValueError(f"walls must be one of {WALLS}, got {self.walls!r}")

    def _neighbour(self, q: int, sign: int) -> tuple[Tensor, Tensor, Tensor]:
        """Flat index of node + sign·c_q for every node, and bool masks: beyond a y wall,
        solid there. x beyond an open end is clamped (those populations are overwritten)."""
        ny, nx = self.ny, self.nx
        y, x = torch.meshgrid(torch.arange(ny), torch.arange(nx), indexing="ij")
        cx, cy = VELOCITIES[q]
        tx, ty = x + sign * cx, y + sign * cy
        tx = tx % nx if self.periodic_x else tx.clamp(0, nx - 1)
        beyond_wall = ((ty < 0) | (ty >= ny)) & (self.walls != "periodic")
        ty = ty % ny if self.walls == "periodic" else ty.clamp(0, ny - 1)
        target = ty * nx + tx
        return target, beyond_wall, self.solid.reshape(-1)[target] & ~beyond_wall

    def pull_index(self) -> Tensor:
        """Flat index into the post-collision populations (9, ny, nx) for each population after
        streaming: the upstream node's, this node's opposite one where the upstream node is
        solid or a no-slip wall, or the mirrored one beyond a slip wall; solid nodes keep theirs."""
        n = self.ny * self.nx
        here = torch.arange(n).view(self.ny, self.nx)
        index = torch.empty(9, self.ny, self.nx, dtype=torch.long)
        for q, (cx, cy) in enumerate(VELOCITIES):
            source, beyond_wall, solid = self._neighbour(q, -1)
            upstream = q * n + source
            if self.walls == "slip":  # it left this row as (cx, −cy) one column upstream
                mirrored = VELOCITIES.index((cx, -cy)) * n + source
                upstream = torch.where(beyond_wall, mirrored, upstream)
            bounce = solid | (beyond_wall & (self.walls == "noslip"))
            index[q] = torch.where(bounce, OPPOSITE[q] * n + here, upstream)
            # solid nodes keep their own (rest) populations: nothing enters or leaves them
            index[q][self.solid] = (q * n + here)[self.solid]
        return index.reshape(-1)

    def obstacle_links(self) -> tuple[Tensor, Tensor]:
        """(flat population index, direction) of every fluid-to-solid link: the post-collision
        populations that bounce off an obstacle in the next streaming (momentum exchange)."""
        n = self.ny * self.nx
        fluid = ~self.solid.reshape(-1)
        flat, direction = [], []
        for q in range(9):
            _, _, solid = self._neighbour(q, +1)
            nodes = torch.nonzero(fluid & solid.reshape(-1)).flatten()
            flat.append(q * n + nodes)
            direction.append(torch.full_like(nodes, q))
        return torch.cat(flat), torch.cat(direction)


class LatticeFlow:
    """A BGK flow on a lattice. With ``inflow`` (lattice x-velocity) the flow enters at x = 0
    with that uniform velocity (Zou–He) and leaves at x = nx − 1 (density 1); with
    ``inflow=None`` the lattice must wrap in x and the box is closed (mass is conserved).
    Starts at rest density 1 and velocity (inflow, 0) in the fluid."""

    def __init__(
        self,
        lattice: Lattice,
        tau: float,
        inflow: float | None,
        device: torch.device | str = "cpu",
        dtype: torch.dtype = torch.float32,
        compile: bool = False,
        damping: Tensor | None = None,
    ) -> None:
        if not tau > 0.5:
            raise ValueError(f"tau must be > 0.5 (positive viscosity), got {tau}")
        if (inflow is None) != lattice.periodic_x:
            raise ValueError("give an inflow exactly when the lattice is open in x")
        if inflow is not None and not 0.0 <= inflow < 0.3:
            raise ValueError(f"inflow must be in [0, 0.3) (low Mach number), got {inflow}")
        self.lattice, self.tau, self.inflow = lattice, tau, inflow
        self.device, self.dtype = torch.device(device), dtype
        self._pull = lattice.pull_index().to(self.device)
        links, directions = lattice.obstacle_links()
        self._links = links.to(self.device)
        c = torch.tensor(VELOCITIES, dtype=dtype, device=self.device)
        self._link_velocity = c[directions.to(self.device)]  # (n_links, 2)
        self._fluid = (~lattice.solid).to(self.device)
        self._inlet_u = torch.zeros(2, lattice.ny, 1, dtype=dtype, device=self.device)
        self._inlet_u[0] = inflow or 0.0
        rho = torch.ones(lattice.ny, lattice.nx, dtype=dtype, device=self.device)
        self.f = equilibrium(rho, self._inlet_u * self._fluid)
        self.force = torch.zeros(2, dtype=dtype, device=self.device)
        self._far_field = self.f.clone()
        self._damping = torch.zeros(lattice.ny, lattice.nx) if damping is None else damping
        self._damping = self._damping.to(device=self.device, dtype=dtype)
        # Collision is ~20 elementwise passes over f; inductor fuses them into one (6x faster on
        # one CPU thread). Streaming stays an eager gather (inductor's indirect loads are slower).
        self._collide = torch.compile(collide, dynamic=False) if compile else collide

    def kick(self, velocity: float, center: tuple[float, float], width: float) -> None:
        """Add a transverse velocity bump ``velocity``·exp(−r²/2width²) around ``center`` (x, y)
        (to break the up-down symmetry of a wake without a net cross flow for long)."""
        rho, u = moments(self.f)
        y, x = torch.meshgrid(
            torch.arange(self.lattice.ny, dtype=self.dtype, device=self.device),
            torch.arange(self.lattice.nx, dtype=self.dtype, device=self.device),
            indexing="ij",
        )
        r2 = (x - center[0]) ** 2 + (y - center[1]) ** 2
        u[1] += velocity * torch.exp(-r2 / (2 * width**2))
        self.f = equilibrium(rho, u * self._fluid)

    def step(self, n_steps: int = 1) -> None:
        """Advance ``n_steps`` time steps; ``force`` is then the last step's force (x, y) of the
        fluid on the obstacles (momentum exchange)."""
        for _ in range(n_steps):
            post = self._collide(self.f, 1.0 / self.tau, self._damping, self._far_field)
            flat = post.reshape(-1)
            self.force = 2.0 * (flat[self._links, None] * self._link_velocity).sum(0)
            f = flat.index_select(0, self._pull).view_as(post)
            if self.inflow is not None:
                self._open_boundaries(f)
            self.f = f

    def _open_boundaries(self, f: Tensor) -> None:
        """Zou–He velocity inlet at x = 0 (its unknown east-going populations from the known
        ones and non-equilibrium bounce-back); at x = nx − 1 a density-1 outlet by
        non-equilibrium extrapolation (Guo et al. 2002): the neighbour column's velocity and
        non-equilibrium part (a copy of the populations let the density drift up)."""
        rho2, u2 = moments(f[:, :, -2])
        f[:, :, -1] = equilibrium(torch.ones_like(rho2), u2) + f[:, :, -2] - equilibrium(rho2, u2)
        inlet = f[:, :, 0]
        rho = (inlet[[0, 2, 4]].sum(0) + 2.0 * inlet[_WEST].sum(0)) / (1.0 - self.inflow)
        feq = equilibrium(rho[:, None], self._inlet_u)[:, :, 0]
        reverse = [OPPOSITE[q] for q in _EAST]
        f[_EAST, :, 0] = feq[_EAST] + inlet[reverse] - feq[reverse]

    def fields(self) -> tuple[Tensor, Tensor]:
        """Density (ny, nx) and velocity (2, ny, nx), zero velocity inside obstacles."""
        rho, u = moments(self.f)
        return rho, u * self._fluid


def vorticity(u: Tensor) -> Tensor:
    """ω = ∂u_y/∂x − ∂u_x/∂y (central differences, one-sided at the edges): (2, ny, nx) ->
    (ny, nx), in lattice units."""
    return torch.gradient(u[1], dim=1)[0] - torch.gradient(u[0], dim=0)[0]


def cylinder_mask(nx: int, ny: int, center: tuple[float, float], diameter: float) -> Tensor:
    """Bool (ny, nx): nodes whose centre lies inside the circle (x, y) = center, D = diameter."""
    y, x = torch.meshgrid(
        torch.arange(ny, dtype=torch.float64), torch.arange(nx, dtype=torch.float64), indexing="ij"
    )
    return (x - center[0]) ** 2 + (y - center[1]) ** 2 <= (diameter / 2) ** 2

"""The D2Q9 lattice-Boltzmann solver: mass conservation in closed boxes, the Poiseuille
profile of a channel, vorticity, the Strouhal number of the cylinder wake (reduced grid here,
the default grid in the slow test), clear errors for bad set-ups."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from partime.data.cylinder import (
    CylinderConfig,
    shedding_frequency,
)
from partime.dynamics.lbm import (
    Lattice,
    LatticeFlow,
    cylinder_mask,
    equilibrium,
    moments,
    tau_from_reynolds,
    vorticity,
)

F64 = torch.float64


@pytest.mark.parametrize("walls", ["periodic", "slip", "noslip"])
def test_mass_is_conserved_in_a_closed_box_with_an_obstacle(walls):
    torch.manual_seed(0)
    nx, ny = 40, 24
    lattice = Lattice(nx, ny, cylinder_mask(nx, ny, (12.0, 11.5), 6.0), walls, periodic_x=True)
    flow = LatticeFlow(lattice, tau=0.6, inflow=None, dtype=F64)
    rho = 1 + 0.01 * torch.rand(ny, nx, dtype=F64)
    u = 0.05 * (torch.rand(2, ny, nx, dtype=F64) - 0.5) * (~lattice.solid)
    flow.f = equilibrium(rho, u)
    mass = float(flow.f.sum())
    flow.step(300)
    assert abs(float(flow.f.sum()) - mass) <= 1e-12 * mass
    assert float(flow.fields()[1].abs().max()) < 0.05  # the stirring decays, nothing blows up


def test_poiseuille_channel_matches_the_parabola():
    torch.set_num_threads(1)
    nx, ny, inflow = 60, 15, 0.05
    lattice = Lattice(nx, ny, torch.zeros(ny, nx, dtype=torch.bool), "noslip")
    flow = LatticeFlow(lattice, tau=1.1, inflow=inflow, dtype=F64)
    flow.step(2000)  # the viscous time H²/ν is ~1100 steps
    rho, u = flow.fields()
    profile = u[0, :, 40]
    # walls half a node beyond rows 0 and ny - 1: width ny, centre (ny - 1) / 2
    y = torch.arange(ny, dtype=F64)
    parabola = 1.5 * profile.mean() * (1 - (2 * (y - (ny - 1) / 2) / ny) ** 2)
    assert float((profile - parabola).abs().max()) <= 0.01 * float(profile.max())
    assert float(u[1, :, 40].abs().max()) < 1e-4 * inflow  # no cross flow once developed
    flux = (rho * u[0]).mean(0)
    assert abs(float(flux[30] - flux[45])) < 1e-5 * inflow  # steady: the same mass flux
    assert abs(float(rho[:, -1].mean()) - 1) < 1e-3  # the outlet holds density 1


def test_moments_and_vorticity():
    torch.manual_seed(1)
    rho = 1 + 0.1 * torch.rand(5, 6, dtype=F64)
    u = 0.05 * torch.rand(2, 5, 6, dtype=F64)
    got_rho, got_u = moments(equilibrium(rho, u))
    assert torch.allclose(got_rho, rho) and torch.allclose(got_u, u)
    y, x = torch.meshgrid(torch.arange(9.0, dtype=F64), torch.arange(9.0, dtype=F64), indexing="ij")
    rotation = 0.01 * torch.stack([-(y - 4), x - 4])  # solid-body rotation: ω = 2 · 0.01
    assert torch.allclose(vorticity(rotation), torch.full((9, 9), 0.02, dtype=F64))
    assert tau_from_reynolds(100, 0.1, 12) == pytest.approx(0.536)


def test_shedding_frequency_of_a_sine():
    t = np.arange(0, 1000)
    signal = np.sin(2 * np.pi * t / 97.3 + 0.4) + 0.3
    assert shedding_frequency(signal) == pytest.approx(1 / 97.3, rel=1e-3)
    with pytest.raises(ValueError, match="too short"):
        shedding_frequency(np.sin(np.linspace(0, 4, 50)))


@pytest.mark.parametrize(
    ("options", "match"),
    [
        (dict(re=-1.0), "re must be"),
        (dict(re=1e5), "too close to 0.5"),
        (dict(velocity=0.5), "Mach"),
        (dict(upstream=30.0), "outside the domain"),
        (dict(snapshots=0), "snapshots"),
        (dict(dtype="float16"), "dtype"),
    ],
)
def test_bad_cylinder_configs(options, match):
    with pytest.raises(ValueError, match=match):
        CylinderConfig(**options)


def test_bad_lattices():
    solid = torch.zeros(4, 5, dtype=torch.bool)
    with pytest.raises(ValueError, match="shape"):
        Lattice(6, 4, solid)
    with pytest.raises(ValueError, match="walls"):
        Lattice(5, 4, solid, "sticky")
    with pytest.raises(ValueError, match="inflow exactly"):
        LatticeFlow(Lattice(5, 4, solid, periodic_x=True), 0.6, inflow=0.1)
    with pytest.raises(ValueError, match="tau"):
        LatticeFlow(Lattice(5, 4, solid), 0.5, inflow=0.1)
    assert math.isclose(tau_from_reynolds(100, 0.1, 20), 0.56)

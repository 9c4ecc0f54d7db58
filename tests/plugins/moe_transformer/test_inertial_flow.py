"""Exact dissipation identity of the inertial (continuous-time) regularized-Muon dynamics, RK4 in float64."""

from __future__ import annotations

import torch

from framework_plugins.moe_transformer.inertial_flow import integrate_inertial


def assert_dissipative(traj, tol=1e-6):
    h = traj.hamiltonian
    assert (h[1:] - h[:-1]).max() <= 1e-12, "H increased"
    residual = (h[0] - h[-1] - traj.dissipated[-1]).abs().item()
    assert residual < tol, residual
    assert h[0] - h[-1] > 1e-2, "nothing dissipated: the test would pass vacuously"


def test_matrix_least_squares_dissipates_exactly():
    gen = torch.Generator().manual_seed(0)
    target = torch.randn(7, 4, generator=gen, dtype=torch.float64)
    x0 = torch.randn(7, 4, generator=gen, dtype=torch.float64)
    p0 = torch.randn(7, 4, generator=gen, dtype=torch.float64)
    traj = integrate_inertial(
        lambda x: 0.5 * (x - target).pow(2).sum(), x0, p0, eps=0.3, gamma=0.7, dt=1e-3, n_steps=3000
    )
    assert_dissipative(traj)


def test_mean_field_particles_dissipate_exactly():
    """N = 5 particles, f = R(mean_i F(x_i)) with F = tanh features and R a quadratic, weight 1/N."""
    gen = torch.Generator().manual_seed(1)
    n, target = 5, torch.randn(3, 2, generator=gen, dtype=torch.float64)

    def f(x: torch.Tensor) -> torch.Tensor:
        return 0.5 * (torch.tanh(x).mean(0) - target).pow(2).sum()

    x0 = torch.randn(n, 3, 2, generator=gen, dtype=torch.float64)
    p0 = torch.randn(n, 3, 2, generator=gen, dtype=torch.float64)
    traj = integrate_inertial(f, x0, p0, eps=0.3, gamma=0.7, dt=1e-3, n_steps=2000, weight=1 / n)
    assert_dissipative(traj)


def test_without_friction_energy_is_conserved():
    gen = torch.Generator().manual_seed(2)
    x0, p0 = torch.randn(4, 3, generator=gen, dtype=torch.float64), torch.randn(4, 3, generator=gen).double()
    traj = integrate_inertial(lambda x: 0.5 * x.pow(2).sum(), x0, p0, eps=0.5, gamma=0.0, dt=1e-3, n_steps=1000)
    assert (traj.hamiltonian - traj.hamiltonian[0]).abs().max() < 1e-9

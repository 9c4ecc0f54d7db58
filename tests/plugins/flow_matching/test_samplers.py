"""Samplers on the exact grid against torchdiffeq and facebookresearch/flow_matching (peers), and their orders."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from framework_plugins.flow_matching.analytic import euler_gain
from framework_plugins.flow_matching.lipschitz import jacobian_spectral_norms, lipschitz_profile
from framework_plugins.flow_matching.samplers import euler_sample, heun_sample
from framework_plugins.flow_matching.targets import analytic_target

LAW = analytic_target("gmm", dim=2, seed=0, n_components=3, spread=2.0, component_std=0.4)
X0 = torch.randn(64, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)


@pytest.mark.parametrize(("ours", "method"), [(euler_sample, "euler"), (heun_sample, "heun2")])
def test_matches_torchdiffeq_on_the_linspace_grid(ours, method):
    torchdiffeq = pytest.importorskip("torchdiffeq")
    n = 16
    grid = torch.linspace(0, 1, n + 1, dtype=torch.float64)
    peer = torchdiffeq.odeint(lambda t, x: LAW.velocity(x, t), X0, grid, method=method)[-1]
    torch.testing.assert_close(ours(LAW.velocity, X0, n), peer, rtol=1e-12, atol=1e-12)


def test_euler_matches_flow_matching_ode_solver():
    solver_module = pytest.importorskip("flow_matching.solver")
    n = 16

    class Field(torch.nn.Module):
        def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
            return LAW.velocity(x, t)

    grid = torch.linspace(0, 1, n + 1, dtype=torch.float64)
    peer = solver_module.ODESolver(Field()).sample(X0, step_size=None, method="euler", time_grid=grid)
    torch.testing.assert_close(euler_sample(LAW.velocity, X0, n), peer, rtol=1e-12, atol=1e-12)


def test_orders_of_accuracy_against_the_exact_gaussian_flow_map():
    """Terminal error vs psi_1(x0) = m + Sigma^{1/2} x0: Euler is first order, Heun second order."""
    law = analytic_target("anisotropic_gaussian", dim=3, seed=1)
    exact = X0[:, :1].repeat(1, 3) @ (law.eigvecs[0] @ torch.diag(law.eigvals[0].sqrt()) @ law.eigvecs[0].T).T
    x0 = X0[:, :1].repeat(1, 3)
    ns = [16, 32, 64, 128]
    for sampler, order in ((euler_sample, 1), (heun_sample, 2)):
        errors = [(sampler(law.velocity, x0, n) - exact).norm(dim=1).max().item() for n in ns]
        slope = np.polyfit(np.log(ns), np.log(errors), 1)[0]
        assert slope == pytest.approx(-order, abs=0.1), sampler.__name__


def test_return_path_has_every_grid_point():
    path = euler_sample(LAW.velocity, X0, 5, return_path=True)
    assert path.shape == (6, 64, 2)
    torch.testing.assert_close(path[0], X0)
    torch.testing.assert_close(path[-1], euler_sample(LAW.velocity, X0, 5))
    with pytest.raises(ValueError, match="n_steps=0"):
        euler_sample(LAW.velocity, X0, 0)


def test_lipschitz_of_a_gaussian_field_is_its_largest_gain():
    """For a Gaussian target D_x u_t = Q diag((t lam - (1-t)) / ((1-t)^2 + t^2 lam)) Q^T, constant in x."""
    law = analytic_target("anisotropic_gaussian", dim=4, seed=2)
    lam = law.eigvals[0]
    for t in (0.0, 0.3, 0.8):
        expected = ((t * lam - (1 - t)) / ((1 - t) ** 2 + t**2 * lam)).abs().max()
        norms = jacobian_spectral_norms(law.velocity, X0[:5, :1].repeat(1, 4), t)
        torch.testing.assert_close(norms, expected.expand(5), rtol=1e-10, atol=1e-10)
    profile = lipschitz_profile(law.velocity, euler_sample(law.velocity, X0[:3, :1].repeat(1, 4), 4, return_path=True))
    assert profile.shape == (5,)
    assert euler_gain(lam.numpy(), 4).shape == (4,)

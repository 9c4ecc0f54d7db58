"""Closed forms of the linear path checked against independent computations (float64)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.linalg import sqrtm

from framework_plugins.flow_matching.analytic import (
    GaussianMixture,
    euler_gain,
    euler_w2_gaussian,
    euler_w2_mixture_1d,
    mixture_quantile_1d,
)
from framework_plugins.flow_matching.samplers import euler_sample
from framework_plugins.flow_matching.targets import analytic_target

MIXTURE = {"weights": [0.3, 0.7], "means": [-2.0, 1.5], "stds": [0.5, 0.8]}


def loglog_slope(ns, errors) -> float:
    return float(np.polyfit(np.log(ns), np.log(errors), 1)[0])


def test_gaussian_velocity_is_the_time_derivative_of_the_exact_flow_map():
    """psi_t(x0) = t m + S_t^{1/2} x0 solves d/dt psi = u_t(psi) (central differences)."""
    law = analytic_target("anisotropic_gaussian", dim=5, seed=0)
    law = GaussianMixture.gaussian(torch.arange(5, dtype=torch.float64) / 5, law.covs[0])
    lam, q = law.eigvals[0], law.eigvecs[0]
    x0 = torch.randn(7, 5, generator=torch.Generator().manual_seed(1), dtype=torch.float64)

    def psi(t: float) -> torch.Tensor:
        root = q @ torch.diag(((1 - t) ** 2 + t**2 * lam).sqrt()) @ q.T
        return t * law.means[0] + x0 @ root.T

    for t in (0.1, 0.5, 0.9):
        h = 1e-6
        derivative = (psi(t + h) - psi(t - h)) / (2 * h)
        torch.testing.assert_close(law.velocity(psi(t), t), derivative, rtol=1e-7, atol=1e-7)


def test_mixture_velocity_matches_tweedie_formula_from_an_independent_density():
    """u_t(x) = (x + (1 - t) grad log p_t(x)) / t, with p_t built by torch.distributions (autograd)."""
    law = analytic_target("gmm", dim=3, seed=2, n_components=4, spread=3.0, component_std=0.6)
    x = torch.randn(11, 3, generator=torch.Generator().manual_seed(3), dtype=torch.float64) * 2
    for t in (0.2, 0.6, 0.95):
        s_t = (1 - t) ** 2 * torch.eye(3, dtype=torch.float64) + t**2 * law.covs
        p_t = torch.distributions.MixtureSameFamily(
            torch.distributions.Categorical(probs=law.weights),
            torch.distributions.MultivariateNormal(t * law.means, covariance_matrix=s_t),
        )
        xr = x.clone().requires_grad_(True)
        (score,) = torch.autograd.grad(p_t.log_prob(xr).sum(), xr)
        torch.testing.assert_close(law.velocity(x, t), (x + (1 - t) * score) / t, rtol=1e-9, atol=1e-9)


def test_euler_on_the_analytic_field_reproduces_the_product_formula():
    """Euler is linear for a Gaussian target: X_N = m + Q diag(b_N) Q^T X0. Recover it from basis vectors."""
    law = analytic_target("anisotropic_gaussian", dim=6, seed=4)
    for n in (1, 3, 17):
        mean_image = euler_sample(law.velocity, torch.zeros(1, 6, dtype=torch.float64), n)[0]
        images = euler_sample(law.velocity, torch.eye(6, dtype=torch.float64), n) - mean_image
        expected = (
            law.eigvecs[0] @ torch.diag(torch.from_numpy(euler_gain(law.eigvals[0].numpy(), n))) @ law.eigvecs[0].T
        )
        torch.testing.assert_close(images.T, expected, rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(mean_image, torch.zeros(6, dtype=torch.float64), rtol=0, atol=1e-12)


@pytest.mark.parametrize("n_steps", [1, 2, 5, 40])
def test_exact_euler_w2_matches_the_bures_formula(n_steps):
    """W2^2 = |m1 - m2|^2 + tr(S1 + S2 - 2 (S2^1/2 S1 S2^1/2)^1/2) with S1 = B B^T (scipy sqrtm)."""
    law = analytic_target("anisotropic_gaussian", dim=4, seed=5)
    lam, q = law.eigvals[0].numpy(), law.eigvecs[0].numpy()
    b = q @ np.diag(euler_gain(lam, n_steps)) @ q.T
    s1, s2 = b @ b.T, law.covs[0].numpy()
    root2 = sqrtm(s2).real
    bures = np.trace(s1 + s2 - 2 * sqrtm(root2 @ s1 @ root2).real)
    assert euler_w2_gaussian(lam, n_steps) == pytest.approx(np.sqrt(max(bures, 0)), rel=1e-7)


def test_one_euler_step_lands_on_the_mean():
    lam = analytic_target("anisotropic_gaussian", dim=8, seed=6).eigvals[0].numpy()
    assert euler_w2_gaussian(lam, 1) == pytest.approx(np.sqrt(lam.sum()), rel=1e-14)


@pytest.mark.parametrize("variance", [0.25, 1.0, 4.0])
def test_euler_rate_is_one_over_n_for_gaussians(variance):
    ns = [16, 32, 64, 128, 256]
    errors = [euler_w2_gaussian(np.full(3, variance), n) for n in ns]
    assert loglog_slope(ns, errors) == pytest.approx(-1.0, abs=0.05)


def test_euler_rate_is_one_over_n_for_a_mixture():
    ns = [16, 32, 64, 128, 256]
    errors = [euler_w2_mixture_1d(n_steps=n, **MIXTURE) for n in ns]
    assert loglog_slope(ns, errors) == pytest.approx(-1.0, abs=0.05)


def test_w2_over_sqrt_d_does_not_depend_on_d():
    for n in (4, 32, 128):
        per_dim = [euler_w2_gaussian(np.ones(d), n) / np.sqrt(d) for d in (1, 16, 256)]
        assert np.ptp(per_dim) < 1e-12


def test_product_mixture_euler_law_factorises():
    """Euler on a 2-D product of the 1-D mixture equals the 1-D Euler map applied per coordinate, so the Euler law
    of a d-dimensional product target is the d-fold product and W2 = sqrt(d) W2_1D."""
    w, m, s = (torch.tensor(MIXTURE[k], dtype=torch.float64) for k in ("weights", "means", "stds"))
    grid = torch.stack(torch.meshgrid(m, m, indexing="ij"), -1).reshape(-1, 2)
    weights = torch.outer(w, w).reshape(-1)
    variances = torch.stack(torch.meshgrid(s**2, s**2, indexing="ij"), -1).reshape(-1, 2)
    product = GaussianMixture(weights, grid, torch.diag_embed(variances))
    one_d = GaussianMixture(w, m[:, None], (s**2)[:, None, None])
    x0 = torch.randn(50, 2, generator=torch.Generator().manual_seed(7), dtype=torch.float64)
    joint = euler_sample(product.velocity, x0, 20)
    separate = torch.cat([euler_sample(one_d.velocity, x0[:, [j]], 20) for j in range(2)], dim=1)
    torch.testing.assert_close(joint, separate, rtol=1e-10, atol=1e-10)


def test_single_component_mixture_quadrature_equals_the_gaussian_formula():
    """Independent code paths (quadrature of the quantile coupling vs the eigenvalue product); the 2000-node
    Gauss-Legendre rule loses ~3e-7 relative in the Gaussian tails."""
    for n in (1, 4, 64):
        quad = euler_w2_mixture_1d([1.0], [0.7], [1.6], n_steps=n)
        assert quad == pytest.approx(euler_w2_gaussian([1.6**2], n), rel=1e-6, abs=1e-9)


def test_mixture_quantile_inverts_the_cdf():
    from scipy.stats import norm

    u = np.linspace(0.001, 0.999, 41)
    w, m, s = (np.array(MIXTURE[k]) for k in ("weights", "means", "stds"))
    x = mixture_quantile_1d(u, w, m, s)
    np.testing.assert_allclose((w * norm.cdf((x[:, None] - m) / s)).sum(1), u, atol=1e-12)


def test_mixture_moments_match_samples():
    law = analytic_target("gmm", dim=2, seed=0)
    x = law.sample(200_000, torch.Generator().manual_seed(0))
    torch.testing.assert_close(x.mean(0), law.mean(), rtol=0, atol=0.03)
    torch.testing.assert_close(torch.cov(x.T), law.covariance(), rtol=0.02, atol=0.03)


def test_velocity_takes_per_sample_times():
    law = analytic_target("gmm", dim=3, seed=8, n_components=3)
    x = torch.randn(6, 3, generator=torch.Generator().manual_seed(9), dtype=torch.float64)
    t = torch.linspace(0.05, 0.95, 6, dtype=torch.float64)
    rowwise = torch.cat([law.velocity(x[i : i + 1], t[i]) for i in range(6)])
    torch.testing.assert_close(law.velocity(x, t), rowwise, rtol=1e-14, atol=1e-14)


def test_mixture_w2_normalises_the_weights():
    assert euler_w2_mixture_1d([3.0, 7.0], [-2.0, 1.5], [0.5, 0.8], 8) == pytest.approx(
        euler_w2_mixture_1d(n_steps=8, **MIXTURE), rel=1e-12
    )

"""Simulators against their exact Fisher matrices and input spectra."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from framework_plugins.topofisher.fisher import fisher_from_summaries
from framework_plugins.topofisher.grf import power_spectrum, wavenumbers
from framework_plugins.topofisher.simulators import GRF, NoisySpiral, TomographicLensing
from framework_plugins.topofisher.spiral import spiral_density


def test_grf_exact_fisher_reference_values():
    f64 = GRF(n=64).exact_fisher()
    torch.testing.assert_close(
        f64, torch.tensor([[2047.5, -1592.76], [-1592.76, 1765.32]], dtype=torch.float64), rtol=0, atol=0.01
    )
    for n, value in ((32, 11.08), (64, 13.89), (128, 16.68)):
        assert torch.logdet(GRF(n=n).exact_fisher()).item() == pytest.approx(value, abs=0.01)
    ln_k = torch.log(wavenumbers(64).flatten()[1:])
    closed = (64**2 - 1) ** 2 * ln_k.var(correction=0) / 4
    assert torch.det(f64).item() == pytest.approx(closed.item(), rel=1e-9)
    assert torch.det(GRF(n=64, k_pivot=0.3).exact_fisher()).item() == pytest.approx(closed.item(), rel=1e-9)


def grf_scores(n: int, theta: torch.Tensor, sims: int) -> torch.Tensor:
    """Score of each simulation: d_i ln L = sum_{k != 0} 1/2 d_i ln P (|X_k|^2 / (n^2 P) - 1). (sims, 2)."""
    sim = GRF(n=n, theta_fid=theta.tolist())
    x = sim.simulate(theta.repeat(sims, 1), list(range(sims)))
    p = power_spectrum(theta, n, 1.0).flatten()[1:]
    ratio = (torch.fft.fft2(x).abs() ** 2).flatten(1)[:, 1:] / (n * n * p)
    grads = torch.stack([torch.full_like(p, 1 / theta[0].item()), -torch.log(wavenumbers(n).flatten()[1:])])
    return 0.5 * (ratio - 1) @ grads.T


def test_grf_exact_fisher_equals_monte_carlo_score_covariance():
    theta = torch.tensor([1.0, 2.0], dtype=torch.float64)
    scores = grf_scores(16, theta, 6000)
    exact = GRF(n=16, theta_fid=[1.0, 2.0]).exact_fisher()
    assert scores.mean(0).abs().max() < 4 * scores.std(0).max() / math.sqrt(6000)
    torch.testing.assert_close(torch.cov(scores.T), exact, rtol=0.06, atol=0.06 * exact.abs().max().item())


def test_grf_reproduces_its_input_power_spectrum():
    theta = torch.tensor([2.0, 1.5], dtype=torch.float64)
    x = GRF(n=32).simulate(theta.repeat(400, 1), list(range(400)))
    measured = (torch.fft.fft2(x).abs() ** 2).mean(0) / 32**2
    expected = power_spectrum(theta, 32, 1.0)
    ratio = measured.flatten()[1:] / expected.flatten()[1:]
    assert (ratio - 1).abs().mean() < 0.05 and (ratio - 1).abs().max() < 0.35
    assert measured[0, 0] < 1e-20


def test_seed_matched_quadratic_summaries_attain_the_grf_fisher_bound():
    """t = (sum |X_k|^2 k^B, sum |X_k|^2 k^B ln k) are the sufficient statistics' directions: held-out ln|F| within
    a few standard errors of the exact 8.22 (N = 16), never far above it."""
    sim = GRF(n=16)
    x = sim.seed_matched(list(range(3000))).double()
    k = wavenumbers(16).flatten()[1:]
    power = (torch.fft.fft2(x).abs() ** 2).flatten(2)[..., 1:]
    t = torch.stack([power.sum(-1), (power * torch.log(k)).sum(-1)], dim=-1)
    estimate = torch.linalg.slogdet(fisher_from_summaries(t, sim.dtheta)[0])[1].item()
    exact = torch.logdet(sim.exact_fisher()).item()
    assert exact == pytest.approx(8.22, abs=0.01)
    assert abs(estimate - exact) < 0.08, (estimate, exact)


def test_seed_matching_lowers_derivative_variance():
    sim = GRF(n=16, theta_fid=[1.0, 1.0])
    matched = sim.seed_matched(list(range(200))).double()
    unmatched_plus = sim.seed_matched(list(range(1000, 1200))).double()[:, 1:3]
    stat = lambda x: x.pow(2).mean((-1, -2))  # noqa: E731
    diff_matched = stat(matched[:, 1:3]) - stat(matched[:, 3:5])
    diff_unmatched = stat(unmatched_plus) - stat(matched[:, 3:5])
    assert (diff_matched.var(0) < 0.05 * diff_unmatched.var(0)).all()


def test_spiral_fisher_equals_monte_carlo_score_covariance():
    sim = NoisySpiral()
    exact = sim.exact_fisher()
    assert torch.logdet(exact).item() == pytest.approx(24.26, abs=0.02)
    points = sim.simulate(sim.theta_fid.repeat(200, 1), list(range(200))).reshape(-1, 2)
    rho, psi = points.norm(dim=-1), torch.atan2(points[:, 1], points[:, 0]) % (2 * math.pi)
    log_p = lambda t: torch.log(spiral_density(rho, psi, t, sim.lam, sim.phi_max, sim.half_width))  # noqa: E731
    scores = torch.func.jacfwd(log_p)(sim.theta_fid)  # per-point scores (48000, 2)
    assert scores.mean(0).abs().max() < 4 * scores.std(0).max() / math.sqrt(len(scores))
    mc = sim.n_points * torch.cov(scores.T)
    torch.testing.assert_close(mc, exact, rtol=0.05, atol=0.05 * exact.abs().max().item())


def test_simulator_arguments_are_checked():
    with pytest.raises(ValueError, match="dtheta"):
        GRF(dtheta=[0.1, -0.1])
    with pytest.raises(ValueError, match="kind"):
        TomographicLensing(kind="lpt")


@pytest.mark.parametrize("n", [7, 16])
def test_grf_fields_equal_the_direct_numpy_formula(n):
    sim = GRF(n=n, theta_fid=[1.3, 0.7])
    theta = torch.tensor([[1.3, 0.7], [0.9, 1.1], [1.3, 0.7]], dtype=torch.float64)
    seeds = [5, 5, 8]
    fields = sim.simulate(theta, seeds).numpy()
    k = 2 * np.pi * np.fft.fftfreq(n)
    kk = np.sqrt(k[:, None] ** 2 + k[None, :] ** 2)
    for field, (a, b), seed in zip(fields, theta.numpy(), seeds, strict=True):
        white = torch.randn(n, n, generator=torch.Generator().manual_seed(seed), dtype=torch.float64).numpy()
        power = np.where(kk > 0, a * np.where(kk > 0, kk, 1.0) ** (-b), 0.0)
        np.testing.assert_allclose(field, np.fft.ifft2(np.sqrt(power) * np.fft.fft2(white)).real, atol=1e-12)

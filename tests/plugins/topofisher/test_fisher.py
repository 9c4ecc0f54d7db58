"""The Fisher estimator against the linear Gaussian model, where dmu and C are known in closed form."""

from __future__ import annotations

import math

import pytest
import torch

from framework_plugins.topofisher.fisher import (
    fisher_from_summaries,
    hartlap,
    imnn_regularizer,
    log_det,
    moped_weights,
    split_fisher,
)

P, D = 2, 6


def linear_model(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    m = torch.randn(D, P, generator=g, dtype=torch.float64)
    a = torch.randn(D, D, generator=g, dtype=torch.float64)
    sigma = a @ a.T / D + 0.5 * torch.eye(D, dtype=torch.float64)
    return m, sigma, m.T @ torch.linalg.solve(sigma, m)


def seed_matched(m, sigma, n: int, dtheta: torch.Tensor, seed: int, matched: bool = True) -> torch.Tensor:
    """x = M theta + n for theta in (fid, fid + dtheta_a / 2, fid - dtheta_a / 2); (n, 1 + 2p, d)."""
    g = torch.Generator().manual_seed(seed)
    thetas = torch.cat([torch.zeros(1, P), torch.diag(dtheta) / 2, -torch.diag(dtheta) / 2]).double()
    noise = torch.randn(n, 1 if matched else 1 + 2 * P, D, generator=g, dtype=torch.float64)
    noise = noise @ torch.linalg.cholesky(sigma).T
    return thetas @ m.T + noise


def test_identity_summaries_recover_exact_fisher_with_hartlap():
    """n = 30 seeds of d = 6 summaries: the uncorrected estimator is biased high by (n - 1) / (n - d - 2) = 1.32."""
    m, sigma, exact = linear_model()
    dtheta = torch.tensor([0.1, 0.2], dtype=torch.float64)
    n, reps = 30, 400
    samples = [seed_matched(m, sigma, n, dtheta, r) for r in range(reps)]
    corrected = torch.stack([fisher_from_summaries(t, dtheta)[0] for t in samples])
    raw = torch.stack([fisher_from_summaries(t, dtheta, correct=False)[0] for t in samples])
    se = corrected.std(0) / math.sqrt(reps)
    assert (corrected.mean(0) - exact).abs().le(4 * se + 1e-9).all(), (corrected.mean(0), exact)
    assert torch.allclose(raw.mean(0) / corrected.mean(0), torch.tensor(1 / hartlap(n, D), dtype=torch.float64))
    assert (raw.mean(0).diagonal() / exact.diagonal()).gt(1.2).all()


def test_seed_matched_derivative_is_exact_in_the_linear_model():
    m, sigma, _ = linear_model(1)
    dtheta = torch.tensor([0.05, 0.3], dtype=torch.float64)
    _, _, dmu = fisher_from_summaries(seed_matched(m, sigma, 10, dtheta, 0), dtheta)
    torch.testing.assert_close(dmu, m.T, rtol=1e-10, atol=1e-12)


def test_fisher_is_invariant_under_invertible_affine_maps():
    m, sigma, _ = linear_model(2)
    dtheta = torch.tensor([0.1, 0.1], dtype=torch.float64)
    t = seed_matched(m, sigma, 200, dtheta, 3)
    a = torch.randn(D, D, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    b = torch.randn(D, dtype=torch.float64)
    torch.testing.assert_close(fisher_from_summaries(t @ a.T + b, dtheta)[0], fisher_from_summaries(t, dtheta)[0])


def test_moped_attains_the_fisher_information_of_the_linear_gaussian_model():
    """With B = Sigma^-1 M, the p numbers B^T x have F = M^T Sigma^-1 M exactly; a B fitted on a train split and
    applied to a test split recovers it to sampling accuracy."""
    m, sigma, exact = linear_model(5)
    b_true = torch.linalg.solve(sigma, m)
    torch.testing.assert_close(b_true.T @ m @ torch.linalg.solve(b_true.T @ sigma @ b_true, m.T @ b_true), exact)
    dtheta = torch.tensor([0.1, 0.1], dtype=torch.float64)
    train, test = seed_matched(m, sigma, 4000, dtheta, 6), seed_matched(m, sigma, 4000, dtheta, 7)
    _, _, dmu = fisher_from_summaries(train, dtheta)
    fitted = fisher_from_summaries(test @ moped_weights(train[:, 0], dmu), dtheta)[0]
    torch.testing.assert_close(fitted, exact, rtol=0.06, atol=0.06 * exact.abs().max().item())


def test_standard_estimator_biased_high_split_estimator_biased_low_with_noisy_derivatives():
    """Without seed matching the derivative is noisy: E[standard] > F > E[split] (Coulton & Wandelt 2023)."""
    m, sigma, exact = linear_model(8)
    dtheta = torch.tensor([0.1, 0.1], dtype=torch.float64)
    standard, split = [], []
    for r in range(40):
        t = seed_matched(m, sigma, 200, dtheta, 100 + r, matched=False)
        standard.append(torch.linalg.slogdet(fisher_from_summaries(t, dtheta)[0])[1])
        split.append(torch.linalg.slogdet(split_fisher(t, dtheta))[1])
    truth = torch.linalg.slogdet(exact)[1]
    assert torch.stack(standard).mean() > truth + 0.05
    assert torch.stack(split).mean() < truth - 0.05


def test_imnn_regularizer_vanishes_at_identity_and_matches_its_formula():
    eye = torch.eye(3, dtype=torch.float64)
    assert imnn_regularizer(eye).item() == 0
    lam2 = math.sqrt(3) + 0.5 * math.sqrt(3)  # C = 2 I: ||I||_F + ||-I / 2||_F
    alpha = -math.log(0.1 * 9 + 0.01 / 1.1) / 0.1
    assert alpha == pytest.approx(0.953, abs=1e-3)
    expected = 10 * lam2 / (lam2 + math.exp(-alpha * lam2)) * lam2
    assert imnn_regularizer(2 * eye).item() == pytest.approx(expected, rel=1e-12)


def test_too_few_simulations_for_the_covariance_is_an_error():
    with pytest.raises(ValueError, match="need n > d \\+ 2"):
        hartlap(5, 4)


def test_log_det_refuses_a_matrix_that_is_not_positive_definite():
    """slogdet's value alone scores an indefinite F as if it were fine (|det| only); log_det gives -inf instead."""
    spd = torch.tensor([[2.0, 0.5], [0.5, 1.0]], dtype=torch.float64)
    indefinite = torch.tensor([[1.0, 0.0], [0.0, -3.0]], dtype=torch.float64)
    assert log_det(spd).item() == pytest.approx(math.log(2.0 * 1.0 - 0.25), rel=1e-12)
    assert torch.linalg.slogdet(indefinite)[1].item() == pytest.approx(math.log(3.0))  # what training used before
    assert log_det(indefinite).item() == -math.inf
    assert log_det(torch.zeros(2, 2, dtype=torch.float64)).item() == -math.inf

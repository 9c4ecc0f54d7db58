"""Fisher information from seed-matched simulations (IMNN / TopoFisher estimator) and the IMNN regularizer."""

from __future__ import annotations

import math

import torch


def split_summaries(t: torch.Tensor, n_params: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """t: (n, 1 + 2p, d) summaries of seed-matched simulations -> fiducial (n, d), plus (n, p, d), minus (n, p, d)."""
    if t.dim() != 3 or t.shape[1] != 1 + 2 * n_params:
        raise ValueError(f"summaries of shape {tuple(t.shape)} must be (n, 1 + 2p = {1 + 2 * n_params}, d).")
    return t[:, 0], t[:, 1 : 1 + n_params], t[:, 1 + n_params :]


def mean_derivative(plus: torch.Tensor, minus: torch.Tensor, dtheta: torch.Tensor) -> torch.Tensor:
    """dmu_a / dtheta_alpha = mean_i (t+_i - t-_i)_alpha,a / dtheta_alpha (seed-matched central difference).
    plus, minus: (n, p, d); dtheta: (p,) = theta+ - theta-. Returns (p, d)."""
    return (plus - minus).mean(0) / dtheta.to(plus)[:, None]


def hartlap(n: int, d: int) -> float:
    """Hartlap factor (n - d - 2) / (n - 1): C^-1 estimated from n samples of d summaries is biased high by its
    inverse, so C^-1 is multiplied by it (Hartlap et al. 2007)."""
    if n - d - 2 <= 0:
        raise ValueError(f"{n} simulations cannot estimate the inverse covariance of {d} summaries; need n > d + 2.")
    return (n - d - 2) / (n - 1)


def fisher_matrix(fiducial: torch.Tensor, dmu: torch.Tensor, correct: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """F = dmu C^-1 dmu^T with C = cov(fiducial) (1 / (n - 1)) and C^-1 times the Hartlap factor if ``correct``.
    fiducial: (n, d); dmu: (p, d). Returns (F (p, p), C (d, d))."""
    n, d = fiducial.shape
    cov = torch.cov(fiducial.T, correction=1).reshape(d, d)
    factor = hartlap(n, d) if correct else 1.0
    fisher = factor * dmu @ torch.linalg.solve(cov, dmu.T)
    return 0.5 * (fisher + fisher.T), cov


def fisher_from_summaries(t: torch.Tensor, dtheta: torch.Tensor, correct: bool = True):
    """The standard estimator on one set of seed-matched summaries t: (n, 1 + 2p, d). Returns (F, C, dmu)."""
    fiducial, plus, minus = split_summaries(t, len(dtheta))
    dmu = mean_derivative(plus, minus, dtheta)
    fisher, cov = fisher_matrix(fiducial, dmu, correct)
    return fisher, cov, dmu


def log_det(fisher: torch.Tensor) -> torch.Tensor:
    """ln |F| via slogdet; -inf when F is not positive definite (sign <= 0)."""
    sign, value = torch.linalg.slogdet(fisher)
    return torch.where(sign > 0, value, torch.full_like(value, -math.inf))


def moped_weights(fiducial: torch.Tensor, dmu: torch.Tensor) -> torch.Tensor:
    """MOPED / score compression B = C^-1 dmu^T: t = B^T x (Heavens et al. 2000; the linear, locally sufficient
    compression: for x ~ N(mu(theta), C) the p numbers B^T x carry all of F = dmu C^-1 dmu^T). Returns (d, p)."""
    cov = torch.cov(fiducial.T, correction=1).reshape(fiducial.shape[1], fiducial.shape[1])
    return torch.linalg.solve(cov, dmu.T)


def split_fisher(t: torch.Tensor, dtheta: torch.Tensor, fit_fraction: float = 0.5) -> torch.Tensor:
    """The "compressed" estimator (Coulton & Wandelt 2023): MOPED fitted on the first ``fit_fraction`` of the
    seeds, F estimated from the compressed summaries of the rest. Derivative noise cannot inflate it (it is biased
    low), whereas the standard estimator is biased high by about tr(C^-1 Sigma_d) / n_d. t: (n, 1 + 2p, d)."""
    n_fit = int(len(t) * fit_fraction)
    _, _, dmu = fisher_from_summaries(t[:n_fit], dtheta, correct=False)
    weights = moped_weights(t[:n_fit, 0], dmu)
    return fisher_from_summaries(t[n_fit:] @ weights, dtheta)[0]


def imnn_regularizer(cov: torch.Tensor, strength: float = 10.0, epsilon: float = 0.1) -> torch.Tensor:
    """IMNN covariance regularizer r Lambda_2 with Lambda_2 = ||C - I||_F + ||C^-1 - I||_F,
    r = lambda Lambda_2 / (Lambda_2 + exp(-alpha Lambda_2)), alpha = -ln(eps (lambda - 1) + eps^2 / (1 + eps)) / eps
    (Charnock et al. 2018; the code's "+" sign). It only fixes the summaries' scale: ln|F| is invariant under
    invertible linear maps."""
    floor = 1 - epsilon / (1 + epsilon)
    if strength <= floor:
        raise ValueError(
            f"IMNN regularizer strength={strength} must exceed 1 - eps / (1 + eps) = {floor:.3f} (alpha "
            "is undefined below); to weaken the regularizer lower its weight instead."
        )
    eye = torch.eye(len(cov), dtype=cov.dtype, device=cov.device)
    lam2 = torch.linalg.matrix_norm(cov - eye) + torch.linalg.matrix_norm(torch.linalg.inv(cov) - eye)
    alpha = -math.log(epsilon * (strength - 1) + epsilon**2 / (1 + epsilon)) / epsilon
    r = strength * lam2 / (lam2 + torch.exp(-alpha * lam2))
    return r * lam2


def moment_penalties(t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Gaussianity penalties of the public TopoFisher loss (``lambda_s`` skewness, ``lambda_k`` kurtosis): for each
    of the 1 + 2p simulation sets of seed-matched summaries t (n, 1 + 2p, d), standardise each feature over the n
    seeds (population std), skewness g1 = mean z^3 and excess kurtosis g2 = mean z^4 - 3 (scipy.stats.skew /
    kurtosis with bias=True); returns (mean of g1^2, mean of g2^2) over features and sets."""
    z = (t - t.mean(0)) / t.std(0, correction=0).clamp_min(1e-12)
    return (z**3).mean(0).pow(2).mean(), ((z**4).mean(0) - 3).pow(2).mean()

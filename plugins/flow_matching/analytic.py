"""Closed forms for the linear (CondOT) path x_t = (1 - t) x0 + t x1, x0 ~ N(0, I), independent coupling.

Derivations are in ``plugins/flow_matching/README.md`` (they are this project's, verified numerically; the paper,
Stéphanovitch 2026, states the O(sqrt(d)/N) Euler rate these closed forms make measurable).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from scipy.special import ndtri
from scipy.stats import norm


class GaussianMixture:
    """Target sum_k pi_k N(m_k, Sigma_k) with its exact marginal velocity along the linear path.

    With S_{t,k} = (1-t)^2 I + t^2 Sigma_k and w_k(x, t) proportional to pi_k N(x; t m_k, S_{t,k}):
        u_t(x) = sum_k w_k(x, t) [m_k + (t Sigma_k - (1-t) I) S_{t,k}^{-1} (x - t m_k)].
    One component gives the Gaussian case u_t(x) = m + (t Sigma - (1-t) I) S_t^{-1} (x - t m).

    Args:
        weights: (K,) mixture weights (normalised here).
        means: (K, d).
        covs: (K, d, d) symmetric positive definite.
    """

    def __init__(self, weights: torch.Tensor, means: torch.Tensor, covs: torch.Tensor) -> None:
        if means.ndim != 2 or covs.shape != (means.shape[0], means.shape[1], means.shape[1]):
            raise ValueError(f"means (K, d) and covs (K, d, d) disagree: {tuple(means.shape)} vs {tuple(covs.shape)}")
        self.weights = weights / weights.sum()
        self.means = means
        self.covs = covs
        self.eigvals, self.eigvecs = torch.linalg.eigh(covs)  # Sigma_k = Q_k diag(lambda_k) Q_k^T
        if (self.eigvals <= 0).any():
            raise ValueError("every covariance must be positive definite (found an eigenvalue <= 0)")
        self.shared = bool((covs == covs[:1]).all())  # one Sigma for every component: the O(n K d) velocity path

    @classmethod
    def gaussian(cls, mean: torch.Tensor, cov: torch.Tensor) -> GaussianMixture:
        """The single Gaussian N(mean, cov)."""
        return cls(torch.ones(1, dtype=mean.dtype), mean[None], cov[None])

    @property
    def dim(self) -> int:
        return self.means.shape[1]

    def mean(self) -> torch.Tensor:
        """E[X] = sum_k pi_k m_k, shape (d,)."""
        return self.weights @ self.means

    def covariance(self) -> torch.Tensor:
        """Cov[X] = sum_k pi_k (Sigma_k + m_k m_k^T) - E[X] E[X]^T, shape (d, d)."""
        second = torch.einsum("k,kij->ij", self.weights, self.covs + self.means[:, :, None] * self.means[:, None, :])
        mu = self.mean()
        return second - torch.outer(mu, mu)

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """n draws, shape (n, d)."""
        comp = torch.multinomial(self.weights, n, replacement=True, generator=generator)
        z = torch.randn(n, self.dim, generator=generator, dtype=self.means.dtype)
        chol = torch.linalg.cholesky(self.covs)
        return self.means[comp] + torch.einsum("nij,nj->ni", chol[comp], z)

    def velocity(self, x: torch.Tensor, t: torch.Tensor | float) -> torch.Tensor:
        """u_t(x) for x: (n, d) and t a scalar or (n,) in [0, 1]; returns (n, d)."""
        t = torch.as_tensor(t, dtype=x.dtype)
        t = t.reshape(-1, 1, 1) if t.ndim == 1 else t  # (n, 1, 1) broadcasts against (n, K, d)
        lam = self.eigvals.to(x.dtype)[None]  # (1, K, d)
        means = self.means.to(x.dtype)[None]  # (1, K, d)
        q = self.eigvecs.to(x.dtype)
        s = (1 - t) ** 2 + t**2 * lam  # eigenvalues of S_{t,k}
        if self.shared:  # Q^T (x - t m_k) = Q^T x - t Q^T m_k: no (n, K, d, d) contraction
            z = (x @ q[0])[:, None, :] - t * (means @ q[0])
        else:
            z = torch.einsum("kji,nkj->nki", q, x[:, None, :] - t * means)  # Q_k^T (x - t m_k)
        log_w = (
            torch.log(self.weights.to(x.dtype))
            - 0.5 * (z**2 / s).sum(-1)
            - 0.5 * torch.log(s).sum(-1)
            - 0.5 * self.dim * math.log(2 * math.pi)
        )
        w = torch.softmax(log_w, dim=1)  # (n, K)
        if self.shared:  # sum_k w_k [m_k + Q c z_k] = w M + Q (c * sum_k w_k z_k), c = (t lambda - (1-t)) / s
            mixed = torch.einsum("nk,nki->ni", w, z)
            return w @ means[0] + (((t * lam - (1 - t)) / s)[:, 0] * mixed) @ q[0].T
        per_comp = means + torch.einsum("kij,nkj->nki", q, (t * lam - (1 - t)) / s * z)
        return (w[..., None] * per_comp).sum(1)


def euler_gain(eigvals: np.ndarray, n_steps: int) -> np.ndarray:
    """b_N(lambda) = prod_{k=0}^{N-1} [1 + h (t_k lambda - (1 - t_k)) / ((1 - t_k)^2 + t_k^2 lambda)], h = 1/N.

    N Euler steps of the exact Gaussian velocity map x0 to m + Q diag(b_N) Q^T x0 (the mean is exact).
    """
    lam = np.asarray(eigvals, dtype=np.float64)
    h = 1.0 / n_steps
    gain = np.ones_like(lam)
    for k in range(n_steps):
        t = k * h
        gain = gain * (1 + h * (t * lam - (1 - t)) / ((1 - t) ** 2 + t**2 * lam))
    return gain


def euler_w2_gaussian(eigvals: np.ndarray, n_steps: int) -> float:
    """Exact W2 between the N-step Euler law and the target N(m, Sigma), eigenvalues ``eigvals`` of Sigma:

    W2^2 = sum_j (|b_N(lambda_j)| - sqrt(lambda_j))^2 (both laws are Gaussian with commuting covariances).
    N = 1 gives X_1 = m, so W2 = sqrt(tr Sigma).
    """
    lam = np.asarray(eigvals, dtype=np.float64)
    return float(np.sqrt(np.sum((np.abs(euler_gain(lam, n_steps)) - np.sqrt(lam)) ** 2)))


def mixture_quantile_1d(u: np.ndarray, weights: np.ndarray, means: np.ndarray, stds: np.ndarray) -> np.ndarray:
    """F^{-1}(u) of a 1-D Gaussian mixture by vectorised bisection to float64 precision."""
    lo = np.full_like(u, (means - 40 * stds).min())
    hi = np.full_like(u, (means + 40 * stds).max())
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        cdf = (weights * norm.cdf((mid[:, None] - means) / stds)).sum(1)
        below = cdf < u
        lo = np.where(below, mid, lo)
        hi = np.where(below, hi, mid)
    return 0.5 * (lo + hi)


def euler_w2_mixture_1d(
    weights: np.ndarray, means: np.ndarray, stds: np.ndarray, n_steps: int, n_nodes: int = 2000
) -> float:
    """Exact W2 between the N-step Euler law and a 1-D Gaussian-mixture target.

    The 1-D flow map is monotone, so psi_1 = F^{-1} o Phi and, while the Euler map stays monotone,
    W2^2 = E[(X_N(X0) - F^{-1}(Phi(X0)))^2] = int_0^1 (X_N(Phi^{-1}(u)) - F^{-1}(u))^2 du,
    integrated with ``n_nodes``-point Gauss-Legendre quadrature in u.
    """
    nodes, node_w = np.polynomial.legendre.leggauss(n_nodes)
    u = 0.5 * (nodes + 1)
    node_w = 0.5 * node_w
    weights, means, stds = (np.asarray(a, dtype=np.float64) for a in (weights, means, stds))
    weights = weights / weights.sum()
    target = GaussianMixture(
        torch.from_numpy(weights), torch.from_numpy(means)[:, None], torch.from_numpy(stds**2)[:, None, None]
    )
    from framework_plugins.flow_matching.samplers import euler_sample

    x0 = torch.from_numpy(ndtri(u))[:, None]
    xn = euler_sample(target.velocity, x0, n_steps)[:, 0].numpy()
    return float(np.sqrt(np.sum(node_w * (xn - mixture_quantile_1d(u, weights, means, stds)) ** 2)))


def loglog_slope(steps: list[int], errors: list[float]) -> float:
    """Least-squares slope b of log(error) = a + b log(N): the empirical order of a solver (b = -1 for Euler)."""
    return float(np.polyfit(np.log(np.asarray(steps, dtype=float)), np.log(np.asarray(errors, dtype=float)), 1)[0])

"""The claims that distinguish Stephanovitch (2026): Lipschitz regularity of the flow-matching field and Euler
constants that do not grow exponentially with the target's spatial extent, also for non-product targets.

Lipschitz bound (this project's derivation from the covariance identity; the paper's own theorem is not public
beyond its abstract). On the linear path X_t = (1 - t) X0 + t X1, u_t(x) = (E[X1 | X_t = x] - x) / (1 - t) and
Tweedie gives D_x E[X1 | X_t = x] = t / (1 - t)^2 Cov(X1 | X_t = x), so

    D_x u_t(x) = (t Cov(X1 | X_t = x) / (1 - t)^2 - I) / (1 - t)      (symmetric).

For a mixture sum_k pi_k N(m_k, Sigma) with one shared Sigma (eigenvalues lambda, S_lambda = (1-t)^2 + t^2 lambda):
Cov(X1 | x) = Sigma_post + Cov_{k ~ w(x)}(mu_k(x)), Sigma_post has eigenvalues lambda (1-t)^2 / S_lambda, and the
posterior means differ by mu_k - mu_l = (1-t)^2 S_t^{-1} (m_k - m_l); a law on a segment of length L has variance
<= L^2 / 4 (Popoviciu), so with D = max |m_k - m_l| every eigenvalue of D_x u_t(x) lies in

    [ min_lambda g_t(lambda),  max_lambda g_t(lambda) + t (1-t) D^2 / (4 S_min^2) ],
    g_t(lambda) = (t lambda - (1-t)) / S_lambda,  S_min = (1-t)^2 + t^2 min(lambda).

The upper end is attained at the midpoint of two equal-weight components with Sigma = sigma^2 I (w = 1/2), so it
is sharp. Its time integral grows like D^2, so a Gronwall argument (error factor exp(int_0^1 L_t dt)) would pay a
constant exponential in D^2; the measured Euler error does not.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from framework_plugins.flow_matching.analytic import GaussianMixture
from framework_plugins.flow_matching.samplers import euler_sample, heun_sample


def lipschitz_bound(t: np.ndarray, eigvals: np.ndarray, diameter: float) -> tuple[np.ndarray, np.ndarray]:
    """(lo, hi): bounds on the eigenvalues of D_x u_t(x) over all x, for t: (T,) in [0, 1), a shared covariance
    with eigenvalues ``eigvals`` and component means of diameter ``diameter`` (module docstring). ||D_x u_t||_2 <=
    max(|lo|, |hi|)."""
    t = np.asarray(t, dtype=np.float64)[:, None]
    lam = np.asarray(eigvals, dtype=np.float64)[None, :]
    s = (1 - t) ** 2 + t**2 * lam
    g = (t * lam - (1 - t)) / s
    s_min = s.min(1)
    t = t[:, 0]
    return g.min(1), g.max(1) + t * (1 - t) * diameter**2 / (4 * s_min**2)


def gronwall_log10(eigvals: np.ndarray, diameter: float, n_nodes: int = 400) -> float:
    """log10 exp(int_0^1 max(|lo_t|, |hi_t|) dt): the growth factor a Gronwall argument multiplies the local Euler
    error by (Gauss-Legendre in t)."""
    nodes, weights = np.polynomial.legendre.leggauss(n_nodes)
    lo, hi = lipschitz_bound(0.5 * (nodes + 1), eigvals, diameter)
    return float(0.5 * weights @ np.maximum(np.abs(lo), np.abs(hi)) / math.log(10))


def cross_polytope_mixture(dim: int, separation: float, eig_range: tuple[float, float], seed: int) -> GaussianMixture:
    """A non-product target in R^d: 2d equal-weight components at +-(separation / 2) q_i (q_i the columns of a
    seeded rotation Q, so opposite means are ``separation`` apart) with one correlated covariance
    Sigma = P diag(lambda) P^T, lambda log-spaced over ``eig_range``, P another seeded rotation. Neither the means
    nor Sigma are aligned with the axes or with each other, so the field does not factorise per coordinate."""
    gen = torch.Generator().manual_seed(seed)
    q, _ = torch.linalg.qr(torch.randn(dim, dim, generator=gen, dtype=torch.float64))
    p, _ = torch.linalg.qr(torch.randn(dim, dim, generator=gen, dtype=torch.float64))
    lam = torch.logspace(math.log10(eig_range[0]), math.log10(eig_range[1]), dim, dtype=torch.float64)
    means = 0.5 * separation * torch.cat([q.T, -q.T])
    cov = p @ torch.diag(lam) @ p.T
    return GaussianMixture(torch.ones(2 * dim, dtype=torch.float64), means, cov.expand(2 * dim, dim, dim).clone())


def coupling_errors(law: GaussianMixture, x0: torch.Tensor, steps: list[int], reference_steps: int) -> list[float]:
    """sqrt(E ||X_N(x0) - psi_1(x0)||^2) for each N in ``steps``: N-step Euler of the exact field against its flow
    map psi_1 (``reference_steps``-step Heun, second order), from the same noise x0: (n, d). The identity coupling
    makes it an upper bound on W2(Law X_N, target); in 1-D it equals W2 (both maps are monotone)."""
    reference = heun_sample(law.velocity, x0, reference_steps)
    return [float((euler_sample(law.velocity, x0, n) - reference).pow(2).sum(1).mean().sqrt()) for n in steps]


def lipschitz_sup(law: GaussianMixture, times: list[float], points: torch.Tensor) -> list[float]:
    """max_i ||D_x u_t(x_i)||_2 of the exact field at each t over ``points``: (n, d) (autograd Jacobians)."""
    from framework_plugins.flow_matching.lipschitz import jacobian_spectral_norms

    return [float(jacobian_spectral_norms(law.velocity, points, t).max()) for t in times]

"""Distances between two empirical distributions ``x: (n, d)`` and ``y: (m, d)``."""

from __future__ import annotations

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment


def w2_empirical(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Exact 2-Wasserstein distance between two uniform empirical measures of equal size.

    W2^2 = min_sigma (1/n) sum_i ||x_i - y_sigma(i)||^2 over permutations (optimal assignment; O(n^3), so keep
    n <= a few thousand). Returns a 0-dim tensor on ``x``'s device.
    """
    if x.shape != y.shape:
        raise ValueError(f"w2_empirical needs equal shapes, got x{tuple(x.shape)} and y{tuple(y.shape)}; subsample.")
    cost = torch.cdist(x.double(), y.double()).pow(2).cpu().numpy()
    rows, cols = linear_sum_assignment(cost)
    return torch.tensor(np.sqrt(cost[rows, cols].mean()), dtype=x.dtype, device=x.device)


def sliced_w2(x: torch.Tensor, y: torch.Tensor, n_projections: int = 256, seed: int = 0) -> torch.Tensor:
    """Sliced W2: sqrt(E_theta W2^2(theta^T x, theta^T y)) over random unit directions theta (1-D W2 by sorting).

    Requires equal sample sizes. Directions come from a generator seeded with ``seed`` (deterministic).
    """
    if x.shape != y.shape:
        raise ValueError(f"sliced_w2 needs equal shapes, got x{tuple(x.shape)} and y{tuple(y.shape)}.")
    gen = torch.Generator(device="cpu").manual_seed(seed)
    theta = torch.randn(x.shape[1], n_projections, generator=gen, dtype=x.dtype).to(x.device)
    theta = theta / theta.norm(dim=0, keepdim=True)
    px, _ = torch.sort(x @ theta, dim=0)
    py, _ = torch.sort(y @ theta, dim=0)
    return (px - py).pow(2).mean().sqrt()


def energy_distance(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Energy distance D = (2 E||X - Y|| - E||X - X'|| - E||Y - Y'||)^(1/2) between the empirical measures
    (V-statistic, as ``scipy.stats.energy_distance`` in 1-D; Szekely & Rizzo 2013, Eq. 2)."""
    xy = torch.cdist(x, y).mean()
    xx = torch.cdist(x, x).mean()
    yy = torch.cdist(y, y).mean()
    return (2 * xy - xx - yy).clamp_min(0).sqrt()


def mmd_rbf(x: torch.Tensor, y: torch.Tensor, bandwidths: tuple[float, ...] | None = None) -> torch.Tensor:
    """Unbiased MMD^2 with a sum of Gaussian kernels k(a, b) = sum_s exp(-||a - b||^2 / (2 s^2)).

    MMD^2_u = mean_{i!=j} k(x_i, x_j) + mean_{i!=j} k(y_i, y_j) - 2 mean_{i,j} k(x_i, y_j) (Gretton et al. 2012,
    Eq. 3). Default bandwidths: the median pairwise distance of the pooled sample times (0.5, 1, 2).
    """
    n, m = len(x), len(y)
    if n < 2 or m < 2:
        raise ValueError(f"mmd_rbf needs at least 2 samples per set, got {n} and {m}.")
    if bandwidths is None:
        pooled = torch.cat([x, y])
        median = torch.cdist(pooled, pooled).median().clamp_min(1e-12).item()
        bandwidths = (0.5 * median, median, 2 * median)

    def kernel(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        sq = torch.cdist(a, b).pow(2)
        return sum(torch.exp(-sq / (2 * s**2)) for s in bandwidths)

    kxx, kyy, kxy = kernel(x, x), kernel(y, y), kernel(x, y)
    term_x = (kxx.sum() - kxx.diagonal().sum()) / (n * (n - 1))
    term_y = (kyy.sum() - kyy.diagonal().sum()) / (m * (m - 1))
    return term_x + term_y - 2 * kxy.mean()


def sample_distances(samples: torch.Tensor, data: torch.Tensor) -> dict[str, torch.Tensor]:
    """W2 (exact assignment), sliced W2, energy distance and MMD^2 between two equal-size sample sets."""
    return {
        "w2": w2_empirical(samples, data),
        "sliced_w2": sliced_w2(samples, data),
        "energy": energy_distance(samples, data),
        "mmd": mmd_rbf(samples, data),
    }


def moment_matched_gaussian(data: torch.Tensor, seed: int) -> torch.Tensor:
    """len(data) draws from N(mean(data), cov(data)): the baseline a generative model must beat."""
    mean = data.mean(0)
    cov = torch.cov(data.T).reshape(data.shape[1], data.shape[1]) + 1e-6 * torch.eye(data.shape[1], device=data.device)
    z = torch.randn(data.shape, generator=torch.Generator().manual_seed(seed)).to(data)
    return mean + z @ torch.linalg.cholesky(cov).T

"""Built-in simulated tasks with labels y in {-1, +1} whose test error is measured on fresh draws of the same law.

Gaussian mixture (the state evolution's model):  x = y v / sqrt(d) + sqrt(Delta) z,  ||v||^2 / d = snr.
High-dimensional XOR:  x = s mu_c / sqrt(d) + sqrt(Delta) z  with c in {1, 2}, s = +-1 uniform, y = +1 for c = 1 and
-1 for c = 2, mu_1 perpendicular to mu_2, ||mu_c||^2 / d = snr (four clusters; no linear classifier beats 1/2).
"""

from __future__ import annotations

import math

import torch


def signal_directions(dim: int, count: int, snr: float, seed: int) -> torch.Tensor:
    """``count`` orthogonal vectors (count, dim), float64, each with ||v||^2 / d = snr exactly (seeded)."""
    gen = torch.Generator().manual_seed(seed)
    q, _ = torch.linalg.qr(torch.randn(dim, count, generator=gen, dtype=torch.float64))
    return math.sqrt(snr * dim) * q.T


def gaussian_mixture(
    n: int, v: torch.Tensor, noise_var: float, seed: int, dtype: torch.dtype = torch.float64
) -> tuple[torch.Tensor, torch.Tensor]:
    """n draws of (x, y): y = +-1 uniform, x = y v / sqrt(d) + sqrt(Delta) z. v: (d,) -> x (n, d), y (n,)."""
    gen = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 2, (n,), generator=gen).to(dtype) * 2 - 1
    z = torch.randn(n, len(v), generator=gen, dtype=dtype)
    return z.mul_(math.sqrt(noise_var)).add_(y[:, None] * v.to(dtype) / math.sqrt(len(v))), y


def xor_mixture(
    n: int, mus: torch.Tensor, noise_var: float, seed: int, dtype: torch.dtype = torch.float64
) -> tuple[torch.Tensor, torch.Tensor]:
    """n draws of high-dimensional XOR: x = s mu_c / sqrt(d) + sqrt(Delta) z, y = +1 (c = 1) / -1 (c = 2).
    mus: (2, d) -> x (n, d), y (n,)."""
    gen = torch.Generator().manual_seed(seed)
    cluster = torch.randint(0, 2, (n,), generator=gen)
    sign = torch.randint(0, 2, (n,), generator=gen).to(dtype) * 2 - 1
    z = torch.randn(n, mus.shape[1], generator=gen, dtype=dtype)
    x = z.mul_(math.sqrt(noise_var)).add_(sign[:, None] * mus.to(dtype)[cluster] / math.sqrt(mus.shape[1]))
    return x, 1 - 2 * cluster.to(dtype)

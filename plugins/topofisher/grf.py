"""2-D Gaussian random fields with a power-law spectrum and their exact Fisher matrix (the paper's GRF case)."""

from __future__ import annotations

import math

import torch


def wavenumbers(n: int) -> torch.Tensor:
    """|k| on the full n x n grid, k = 2 pi fftfreq(n) (box length n), float64. Shape (n, n); |k|[0, 0] = 0."""
    k = 2 * math.pi * torch.fft.fftfreq(n, dtype=torch.float64)
    return torch.sqrt(k[:, None] ** 2 + k[None, :] ** 2)


def power_spectrum(theta: torch.Tensor, n: int, k_pivot: float) -> torch.Tensor:
    """P(k) = A (k / k_p)^(-B) with P(0) = 0 on the full grid. theta = (A, B): (..., 2) -> (..., n, n)."""
    k = wavenumbers(n).to(theta)
    safe = torch.where(k > 0, k, torch.ones_like(k))
    amplitude, slope = theta[..., 0, None, None], theta[..., 1, None, None]
    return torch.where(k > 0, amplitude * (safe / k_pivot) ** (-slope), torch.zeros_like(k))


def grf_fisher(theta: torch.Tensor, n: int, k_pivot: float = 1.0) -> torch.Tensor:
    """Exact Fisher matrix of theta = (A, B) for one n x n field: F_ij = 1/2 sum_{k != 0} d_i ln P d_j ln P over all
    n^2 - 1 nonzero grid modes (the real field's k and -k pair carries two real degrees of freedom, a self-conjugate
    mode one, so 1/2 per mode is exact), with d_A ln P = 1/A and d_B ln P = -ln(k / k_p). Shape (2, 2), float64."""
    k = wavenumbers(n).flatten()[1:]
    grads = torch.stack([torch.full_like(k, 1 / float(theta[0])), -torch.log(k / k_pivot)])
    return 0.5 * grads @ grads.T

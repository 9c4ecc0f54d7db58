"""Correlated tomographic convergence maps with a physical C_l (cosmology.py): Gaussian or shifted lognormal.

On an n x n periodic map of side L (radians), the grid power of bins (i, j) is P^{ij}(k) = C^{ij}_{|l|} (n / L)^2
(so that the pixel covariance is sum_k P / n^2 = int d^2l C_l / (2 pi)^2 over the grid's modes), P(0) = 0.

- Gaussian maps: per Fourier mode, g(k) = A_k w(k), A_k the symmetric square root of the (bins x bins) matrix P(k)
  (negative eigenvalues clipped), w the seed's white noise: E g_i g_j* = n^2 P^{ij}.
- Shifted lognormal maps (Hilbert et al. 2011; sbi_lens): kappa_i = lambda_i (exp(g_i - var(g_i) / 2) - 1) has the
  target correlation function xi^{ij} exactly when g is Gaussian with xi_g^{ij} = ln(1 + xi^{ij} / (lambda_i lambda_j))
  (up to the clipped modes), so the shifts lambda_i change the non-Gaussianity (skewness ~ 3 sigma / lambda for
  small sigma / lambda) at a fixed C_l: the simulator shift of the experiments.
- Observation: kappa + shape noise sigma_e / sqrt(n_gal,bin A_pix) per pixel, then a Gaussian smoothing of
  ``smoothing_arcmin`` (as the paper's 2 arcmin), applied in Fourier space.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from framework_plugins.topofisher.cosmology import convergence_cl


def grid_ell(n: int, side_deg: float) -> torch.Tensor:
    """|l| of the modes of an n x n map of side ``side_deg`` degrees (l = 2 pi fftfreq(n, L / n)). (n, n)."""
    freq = 2 * math.pi * torch.fft.fftfreq(n, d=math.radians(side_deg) / n, dtype=torch.float64)
    return torch.sqrt(freq[:, None] ** 2 + freq[None, :] ** 2)


def grid_power(theta: torch.Tensor, n: int, side_deg: float, bins: int) -> torch.Tensor:
    """P^{ij} (bins, bins, n, n) = C^{ij}_{|l|} (n / L)^2 of one theta = (Omega_m, sigma_8); C_l interpolated in
    log l - log C from 64 multipoles spanning the grid's modes; P(0) = 0."""
    ell = grid_ell(n, side_deg).numpy()
    samples = np.logspace(np.log10(ell[ell > 0].min() * 0.99), np.log10(ell.max() * 1.01), 64)
    cl = convergence_cl(samples, float(theta[0]), float(theta[1]), bins)
    flat = np.log(np.where(ell > 0, ell, samples[0])).ravel()
    power = np.exp([[np.interp(flat, np.log(samples), np.log(cl[i, j])) for j in range(bins)] for i in range(bins)])
    power = power.reshape(bins, bins, n, n) * (n / math.radians(side_deg)) ** 2
    power[..., 0, 0] = 0
    return torch.from_numpy(power)


def mode_sqrt(power: torch.Tensor) -> torch.Tensor:
    """Symmetric square roots A_k (n, n, bins, bins) of the per-mode matrices power (bins, bins, n, n), negative
    eigenvalues clipped to zero."""
    values, vectors = torch.linalg.eigh(power.permute(2, 3, 0, 1))
    return vectors * values.clamp_min(0).sqrt()[..., None, :] @ vectors.transpose(-1, -2)


def lognormal_gaussian_power(power: torch.Tensor, shifts: torch.Tensor) -> torch.Tensor:
    """Power (bins, bins, n, n) of the Gaussian field g behind shifted lognormal maps with grid power ``power`` and
    shifts lambda (bins,): xi_g = ln(1 + xi / (lambda_i lambda_j)), xi = ifft2(P) (the grid correlation function),
    P_g = fft2(xi_g) (real: xi_g is real and even), P_g(0) = 0."""
    xi = torch.fft.ifft2(power).real
    xi_g = torch.log1p(xi / (shifts[:, None] * shifts[None, :])[..., None, None])
    power_g = torch.fft.fft2(xi_g).real
    power_g[..., 0, 0] = 0
    return power_g


def field_from_noise(white_k: torch.Tensor, amplitude: torch.Tensor) -> torch.Tensor:
    """Real fields ifft2(A_k w(k)) (m, bins, n, n) from FFTs of white noise white_k (m, bins, n, n) and per-mode
    amplitudes (n, n, bins, bins)."""
    amp = amplitude.permute(2, 3, 0, 1).to(white_k.real.dtype)  # (bins, bins, n, n): A^{ij}(k)
    mixed = sum(amp[None, :, j] * white_k[:, j, None] for j in range(amp.shape[1]))
    return torch.fft.ifft2(mixed).real


def smooth(maps: torch.Tensor, side_deg: float, arcmin: float) -> torch.Tensor:
    """Periodic Gaussian smoothing of maps (..., n, n) with standard deviation ``arcmin`` (exact, Fourier space)."""
    if arcmin <= 0:
        return maps
    ell = grid_ell(maps.shape[-1], side_deg).to(maps)
    return torch.fft.ifft2(torch.fft.fft2(maps) * torch.exp(-0.5 * (ell * math.radians(arcmin / 60)) ** 2)).real


def shape_noise_sigma(n: int, side_deg: float, n_gal_per_arcmin2: float, sigma_e: float) -> float:
    """Per-pixel shape noise sigma_n = sigma_e / sqrt(n_gal A_pix), A_pix in arcmin^2."""
    pixel_arcmin2 = (side_deg * 60 / n) ** 2
    return sigma_e / math.sqrt(n_gal_per_arcmin2 * pixel_arcmin2)

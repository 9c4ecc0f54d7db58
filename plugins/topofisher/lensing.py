"""Toy lognormal weak-lensing convergence maps (after sbi_lens ``LogNormal_field``).

theta = (Omega_m, sigma_8). Everything here is a documented toy, not a physical C_l:
C_l = c0 (sigma_8 / 0.8)^2 (Omega_m / 0.3)^1.5 / (1 + (l / l_*)^2), l_* = l0 Omega_m / 0.3 (the turnover moves with
Omega_m, as the matter P(k) turnover does with Omega_m h, which breaks the amplitude degeneracy); per-bin shift
lambda_b = lambda0_b (Omega_m / 0.3)^0.8 (sigma_8 / 0.8)^0.25 (the note's sensitivities of the sbi_lens table).
"""

from __future__ import annotations

import math

import torch

SHIFTS = (0.0056, 0.016, 0.030, 0.052, 0.10)  # lambda0 per tomographic bin (sbi_lens's lognormal shift table)


def toy_cl(ell: torch.Tensor, theta: torch.Tensor, c0: float, ell0: float, bin_scale: float) -> torch.Tensor:
    """Toy angular power spectrum C_l(Omega_m, sigma_8) (module docstring), scaled by ``bin_scale``; C_0 = 0."""
    omega_m, sigma_8 = theta[..., 0, None, None], theta[..., 1, None, None]
    ell_star = ell0 * omega_m / 0.3
    cl = bin_scale * c0 * (sigma_8 / 0.8) ** 2 * (omega_m / 0.3) ** 1.5 / (1 + (ell / ell_star) ** 2)
    return torch.where(ell > 0, cl, torch.zeros_like(cl))


def shift_parameter(theta: torch.Tensor, lambda0: float) -> torch.Tensor:
    """lambda(Omega_m, sigma_8) = lambda0 (Omega_m / 0.3)^0.8 (sigma_8 / 0.8)^0.25. theta: (..., 2) -> (...)."""
    return lambda0 * (theta[..., 0] / 0.3) ** 0.8 * (theta[..., 1] / 0.8) ** 0.25


def grid_ell(n: int, side_deg: float) -> torch.Tensor:
    """|l| on the n x n grid of a map of side ``side_deg`` degrees: l = 2 pi fftfreq(n, L_rad / n). (n, n)."""
    step = math.radians(side_deg) / n
    freq = 2 * math.pi * torch.fft.fftfreq(n, d=step, dtype=torch.float64)
    return torch.sqrt(freq[:, None] ** 2 + freq[None, :] ** 2)


def gaussian_power(theta: torch.Tensor, n: int, side_deg: float, c0: float, ell0: float, scale: float) -> torch.Tensor:
    """Grid power P = C_l (n / L_rad)^2 of the toy C_l. theta (..., 2) -> (..., n, n)."""
    return toy_cl(grid_ell(n, side_deg).to(theta), theta, c0, ell0, scale) * (n / math.radians(side_deg)) ** 2


def lognormal_power(
    theta: torch.Tensor, n: int, side_deg: float, c0: float, ell0: float, scale: float, lambda0: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """(P_g, lambda) of the Gaussian field behind a lognormal map: P_g = |fft2(ln(1 + xi / lambda^2))|, P_g[0, 0] = 0,
    xi = ifft2(P) the map-grid correlation function of P = C_l (n / L_rad)^2 (steps 2-3 of the note).
    theta (..., 2) -> P_g (..., n, n) float64, lambda (..., 1, 1)."""
    lam = shift_parameter(theta, lambda0)[..., None, None]
    xi = torch.fft.ifft2(gaussian_power(theta, n, side_deg, c0, ell0, scale)).real
    power_g = torch.fft.fft2(torch.log1p(xi / lam**2)).abs()
    power_g[..., 0, 0] = 0
    return power_g, lam


def lognormal_from_gaussian(g: torch.Tensor, lam: torch.Tensor) -> torch.Tensor:
    """kappa = lambda (exp(g - var(g) / 2) - 1), var(g) over each map's pixels (steps 4-5 of the note)."""
    var = g.var(dim=(-2, -1), keepdim=True)
    return lam * (torch.exp(g - var / 2) - 1)


def shape_noise_sigma(n: int, side_deg: float, n_gal_per_arcmin2: float, sigma_e: float) -> float:
    """Per-pixel shape noise sigma_n = sigma_e / sqrt(n_gal A_pix), A_pix in arcmin^2."""
    pixel_arcmin2 = (side_deg * 60 / n) ** 2
    return sigma_e / math.sqrt(n_gal_per_arcmin2 * pixel_arcmin2)

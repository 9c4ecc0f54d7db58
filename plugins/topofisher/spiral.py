"""The noisy spiral point-cloud model and its Fisher matrix by numerical integration.

n points, each with probability ``lam`` uniform on [-half_width, half_width]^2, otherwise phi ~ U(0, phi_max),
r = mu phi + w eps (eps ~ N(0, 1)), point (r cos phi, r sin phi). theta = (mu, w).
"""

from __future__ import annotations

import math

import torch


def spiral_points(theta: torch.Tensor, noise: dict[str, torch.Tensor], half_width: float) -> torch.Tensor:
    """Points of the model from fixed noise (seed matching: theta enters smoothly).

    Args:
        theta: (..., 2) = (mu, w), broadcast against the noise batch.
        noise: ``phi`` (..., n) in [0, phi_max], ``eps`` (..., n) standard normal, ``uniform`` (..., n, 2) in
            [0, 1], ``outlier`` (..., n) booleans.
    Returns: (..., n, 2).
    """
    mu, w = theta[..., 0, None], theta[..., 1, None]
    r = mu * noise["phi"] + w * noise["eps"]
    spiral = torch.stack([r * torch.cos(noise["phi"]), r * torch.sin(noise["phi"])], dim=-1)
    box = (2 * noise["uniform"] - 1) * half_width
    return torch.where(noise["outlier"][..., None], box, spiral)


def spiral_noise(generator: torch.Generator, n: int, lam: float, phi_max: float) -> dict[str, torch.Tensor]:
    """One simulation's noise (float64): see :func:`spiral_points`."""
    return {
        "phi": torch.rand(n, generator=generator, dtype=torch.float64) * phi_max,
        "eps": torch.randn(n, generator=generator, dtype=torch.float64),
        "uniform": torch.rand(n, 2, generator=generator, dtype=torch.float64),
        "outlier": torch.rand(n, generator=generator, dtype=torch.float64) < lam,
    }


def spiral_density(
    rho: torch.Tensor, psi: torch.Tensor, theta: torch.Tensor, lam: float, phi_max: float, half_width: float
) -> torch.Tensor:
    """Density per unit area at polar (rho > 0, psi in [0, 2 pi)): lam / (2 h)^2 1_box + (1 - lam) p_s with
    p_s = (1 / rho) sum over preimages (r, phi) of N(r; mu phi, w^2) / phi_max; preimages are r = rho,
    phi = psi + 2 pi m and r = -rho, phi = psi + pi + 2 pi m inside [0, phi_max]. Differentiable in theta."""
    mu, w = theta[0], theta[1]
    total = torch.zeros_like(rho)
    for sign, offset in ((1.0, 0.0), (-1.0, math.pi)):
        for m in range(int(math.ceil(phi_max / (2 * math.pi))) + 1):
            phi = (psi + offset) % (2 * math.pi) + 2 * math.pi * m
            inside = phi <= phi_max
            z = (sign * rho - mu * phi) / w
            total = total + torch.where(inside, torch.exp(-0.5 * z**2) / (w * math.sqrt(2 * math.pi)), 0.0)
    x, y = rho * torch.cos(psi), rho * torch.sin(psi)
    in_box = (x.abs() <= half_width) & (y.abs() <= half_width)
    return lam / (2 * half_width) ** 2 * in_box + (1 - lam) * total / (rho * phi_max)


def spiral_fisher(
    theta: torch.Tensor, n_points: int, lam: float, phi_max: float, half_width: float, grid: int = 600
) -> torch.Tensor:
    """F = n int (d p)(d p)^T / p dx over the plane, on a polar grid (rho up to the box corner, midpoint rule in
    rho and psi; the integrand's radial scale is w, so ``grid`` cells over the radius must resolve it). (2, 2)."""
    theta = theta.to(torch.float64)
    rho_max = half_width * math.sqrt(2)
    rho = (torch.arange(grid, dtype=torch.float64) + 0.5) * rho_max / grid
    psi = (torch.arange(grid, dtype=torch.float64) + 0.5) * 2 * math.pi / grid
    r, a = torch.meshgrid(rho, psi, indexing="ij")
    jac = torch.func.jacfwd(lambda t: spiral_density(r, a, t, lam, phi_max, half_width))(theta)
    p = spiral_density(r, a, theta, lam, phi_max, half_width)
    weight = r * (rho_max / grid) * (2 * math.pi / grid) / p.clamp_min(1e-300)
    return n_points * torch.einsum("ija,ijb,ij->ab", jac, jac, weight)

"""Radial kernels k(r) of the companion-elliptic class and their companion potentials eta(r) = int_r^inf s k(s) ds.

The companion makes the attraction term of the drifting field a gradient (this project's derivation, checked by
quadrature and finite differences in the tests):  E_p[k(|x - y|) (y - x)] = grad_x (eta * p)(x), because
d/dx eta(|x - y|) = -|x - y| k(|x - y|) (x - y) / |x - y|.  Closed forms, scale ``ell``:

- Laplace (Matern 1/2): k = exp(-r/l),                         eta = l (l + r) exp(-r/l)            (Matern 3/2 shape)
- Matern 3/2: a = sqrt(3)/l, k = (1 + a r) exp(-a r),           eta = (r^2 + 3 r/a + 3/a^2) exp(-a r)
- Matern 5/2: a = sqrt(5)/l, k = (1 + a r + a^2 r^2/3) e^{-a r}, eta = (a r^3/3 + 2 r^2 + 5 r/a + 5/a^2) e^{-a r}
- Gaussian:   k = exp(-r^2 / (2 l^2)),                          eta = l^2 k

Two contrast kernels outside the companion-elliptic class (Lee & Chun: Gaussian plus Matern nu >= 1/2), used only
by the class checks of ``closure.py``, never for training (``KERNELS`` is the model's choice list):

- IMQ (inverse multiquadric, exponent 3/2): k = (1 + r^2/l^2)^(-3/2),  eta = l^2 (1 + r^2/l^2)^(-1/2)
- Wendland phi_{3,1}, support radius l, u = r/l: k = (1 - u)_+^4 (1 + 4u),  eta = l^2 (1 - u)_+^5 (8u^2 + 5u + 1) / 14
"""

from __future__ import annotations

import math
from typing import Literal

import torch

KernelName = Literal["laplace", "matern32", "matern52", "gaussian"]
KERNELS: tuple[str, ...] = ("laplace", "matern32", "matern52", "gaussian")
CONTRAST_KERNELS: tuple[str, ...] = ("imq", "wendland")


def log_kernel(r: torch.Tensor, name: str, ell: float) -> torch.Tensor:
    """log k(r) for distances r >= 0 (used as softmax logits by the batch field)."""
    if name == "laplace":
        return -r / ell
    if name == "matern32":
        a = math.sqrt(3) / ell
        return torch.log1p(a * r) - a * r
    if name == "matern52":
        a = math.sqrt(5) / ell
        return torch.log1p(a * r + (a * r) ** 2 / 3) - a * r
    if name == "gaussian":
        return -(r**2) / (2 * ell**2)
    if name == "imq":
        return -1.5 * torch.log1p((r / ell) ** 2)
    if name == "wendland":  # -inf outside the support
        u = r / ell
        return 4 * torch.log((1 - u).clamp_min(0)) + torch.log1p(4 * u)
    raise ValueError(f"kernel={name!r} is unknown; choose one of {KERNELS + CONTRAST_KERNELS}")


def kernel(r: torch.Tensor, name: str, ell: float) -> torch.Tensor:
    """k(r), with k(0) = 1."""
    return log_kernel(r, name, ell).exp()


def companion(r: torch.Tensor, name: str, ell: float) -> torch.Tensor:
    """eta(r) = int_r^inf s k(s) ds in closed form (see the module docstring)."""
    if name == "laplace":
        return ell * (ell + r) * torch.exp(-r / ell)
    if name == "matern32":
        a = math.sqrt(3) / ell
        return (r**2 + 3 * r / a + 3 / a**2) * torch.exp(-a * r)
    if name == "matern52":
        a = math.sqrt(5) / ell
        return (a * r**3 / 3 + 2 * r**2 + 5 * r / a + 5 / a**2) * torch.exp(-a * r)
    if name == "gaussian":
        return ell**2 * kernel(r, name, ell)
    if name == "imq":
        return ell**2 / torch.sqrt(1 + (r / ell) ** 2)
    if name == "wendland":
        u = r / ell
        return ell**2 * (1 - u).clamp_min(0) ** 5 * (8 * u**2 + 5 * u + 1) / 14
    raise ValueError(f"kernel={name!r} is unknown; choose one of {KERNELS + CONTRAST_KERNELS}")

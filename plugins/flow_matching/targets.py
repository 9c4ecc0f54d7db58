"""Built-in target distributions: simulators (with analytic laws where one exists) and scikit-learn digits."""

from __future__ import annotations

import math

import numpy as np
import torch

from plugins.flow_matching.analytic import GaussianMixture

TOY_TARGETS = ("moons", "circles", "checkerboard", "spirals")
ANALYTIC_TARGETS = ("gaussian", "anisotropic_gaussian", "gmm")
TARGETS = (*ANALYTIC_TARGETS, *TOY_TARGETS, "digits")


def analytic_target(
    name: str, dim: int, seed: int, n_components: int = 8, spread: float = 4.0, component_std: float = 0.5
) -> GaussianMixture:
    """The exact law of an analytic target (float64).

    - ``gaussian``: N(0, I_d).
    - ``anisotropic_gaussian``: N(0, Q diag(lambda) Q^T), lambda log-spaced in [0.1, 4], Q a seeded rotation.
    - ``gmm``: ``n_components`` equal-weight N(m_k, component_std^2 I); for d = 2 the means sit on a circle of
      radius ``spread``, otherwise m_k ~ N(0, (spread^2 / d) I) from ``seed``.
    """
    gen = torch.Generator().manual_seed(seed)
    eye = torch.eye(dim, dtype=torch.float64)
    if name == "gaussian":
        return GaussianMixture.gaussian(torch.zeros(dim, dtype=torch.float64), eye)
    if name == "anisotropic_gaussian":
        lam = torch.logspace(math.log10(0.1), math.log10(4.0), dim, dtype=torch.float64)
        q, _ = torch.linalg.qr(torch.randn(dim, dim, generator=gen, dtype=torch.float64))
        return GaussianMixture.gaussian(torch.zeros(dim, dtype=torch.float64), q @ torch.diag(lam) @ q.T)
    if name == "gmm":
        if dim == 2:
            angles = 2 * math.pi * torch.arange(n_components, dtype=torch.float64) / n_components
            means = spread * torch.stack([angles.cos(), angles.sin()], dim=1)
        else:
            means = spread / math.sqrt(dim) * torch.randn(n_components, dim, generator=gen, dtype=torch.float64)
        covs = component_std**2 * eye.expand(n_components, dim, dim).clone()
        return GaussianMixture(torch.ones(n_components, dtype=torch.float64), means, covs)
    raise ValueError(f"target={name!r} has no analytic law; analytic targets are {ANALYTIC_TARGETS}.")


def toy_2d(name: str, n: int, seed: int) -> torch.Tensor:
    """2-D toy shapes, standardised to roughly unit scale: moons, circles, checkerboard, spirals. (n, 2)."""
    rng = np.random.default_rng(seed)
    if name == "moons":
        from sklearn.datasets import make_moons

        x, _ = make_moons(n, noise=0.05, random_state=int(rng.integers(2**31)))
        x = (x - [0.5, 0.25]) * 2
    elif name == "circles":
        from sklearn.datasets import make_circles

        x, _ = make_circles(n, noise=0.03, factor=0.5, random_state=int(rng.integers(2**31)))
        x = x * 2
    elif name == "checkerboard":
        x1 = rng.uniform(-2, 2, n)
        x2 = rng.uniform(0, 1, n) + rng.integers(0, 2, n) * 2 - 2 + (np.floor(x1) % 2)
        x = np.stack([x1, x2], 1)
    elif name == "spirals":
        r = np.sqrt(rng.uniform(0, 1, n)) * 3 * np.pi
        sign = rng.choice([-1.0, 1.0], n)
        x = sign[:, None] * np.stack([r * np.cos(r), r * np.sin(r)], 1) / 4 + rng.normal(0, 0.1, (n, 2))
    else:
        raise ValueError(f"unknown toy target {name!r}; choose one of {TOY_TARGETS}")
    return torch.as_tensor(x, dtype=torch.float32)


def digits() -> torch.Tensor:
    """scikit-learn's 8x8 digits (1,797 images shipped with the package, no download) scaled to [-1, 1]. (1797, 64)."""
    from sklearn.datasets import load_digits

    return torch.as_tensor(load_digits().data / 8.0 - 1.0, dtype=torch.float32)

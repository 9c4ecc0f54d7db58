"""Built-in toy datasets shared by plugins: 2-D shapes, Gaussian-mixture means, and scikit-learn's digits."""

from __future__ import annotations

import math

import numpy as np
import torch

TOY_2D = ("moons", "circles", "checkerboard", "spirals")


def mixture_means(dim: int, n_components: int, spread: float, seed: int) -> torch.Tensor:
    """Component means (n_components, dim), float64: on a circle of radius ``spread`` for d = 2, otherwise
    m_k ~ N(0, (spread^2 / d) I) drawn from ``seed``."""
    if dim == 2:
        angles = 2 * math.pi * torch.arange(n_components, dtype=torch.float64) / n_components
        return spread * torch.stack([angles.cos(), angles.sin()], dim=1)
    gen = torch.Generator().manual_seed(seed)
    return spread / math.sqrt(dim) * torch.randn(n_components, dim, generator=gen, dtype=torch.float64)


def gaussian_mixture(n: int, means: torch.Tensor, std: float, seed: int) -> torch.Tensor:
    """n draws (float32) from the equal-weight mixture of N(m_k, std^2 I)."""
    gen = torch.Generator().manual_seed(seed)
    comp = torch.randint(len(means), (n,), generator=gen)
    return (means[comp] + std * torch.randn(n, means.shape[1], generator=gen, dtype=means.dtype)).float()


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
        raise ValueError(f"unknown toy target {name!r}; choose one of {TOY_2D}")
    return torch.as_tensor(x, dtype=torch.float32)


def digits() -> torch.Tensor:
    """scikit-learn's 8x8 digits (1,797 images shipped with the package, no download) scaled to [-1, 1]. (1797, 64)."""
    from sklearn.datasets import load_digits

    return torch.as_tensor(load_digits().data / 8.0 - 1.0, dtype=torch.float32)

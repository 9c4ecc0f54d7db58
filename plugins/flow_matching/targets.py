"""Built-in target distributions: simulators (with analytic laws where one exists) and scikit-learn digits."""

from __future__ import annotations

import math
from typing import Literal

import torch

from framework.data.toys import TOY_2D, digits, mixture_means, toy_2d
from framework_plugins.flow_matching.analytic import GaussianMixture

TOY_TARGETS = TOY_2D
ANALYTIC_TARGETS = ("gaussian", "anisotropic_gaussian", "gmm")
TARGETS = (*ANALYTIC_TARGETS, *TOY_TARGETS, "digits")
Target = Literal[
    "gaussian", "anisotropic_gaussian", "gmm", "moons", "circles", "checkerboard", "spirals", "digits"
]  # the names of TARGETS
__all__ = ["ANALYTIC_TARGETS", "TARGETS", "TOY_TARGETS", "Target", "analytic_target", "digits", "toy_2d"]


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
        means = mixture_means(dim, n_components, spread, seed)
        covs = component_std**2 * eye.expand(n_components, dim, dim).clone()
        return GaussianMixture(torch.ones(n_components, dtype=torch.float64), means, covs)
    raise ValueError(f"target={name!r} has no analytic law; analytic targets are {ANALYTIC_TARGETS}.")

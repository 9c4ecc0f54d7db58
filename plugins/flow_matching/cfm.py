"""Conditional flow matching on the linear path (Lipman et al. 2023; Liu et al. 2023 rectified flow)."""

from __future__ import annotations

import torch
from torch import nn


def linear_path(x0: torch.Tensor, x1: torch.Tensor, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """x_t = (1 - t) x0 + t x1 and its conditional velocity u_t(x | x0, x1) = x1 - x0; t: (n,)."""
    tt = t[:, None]
    return (1 - tt) * x0 + tt * x1, x1 - x0


def cfm_loss(velocity: nn.Module, x1: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """L(theta) = E_{t ~ U[0,1], x0 ~ N(0, I)} ||v_theta(x_t, t) - (x1 - x0)||^2 / d (mean over batch and dims).

    Its minimiser is the marginal velocity u_t(x) = E[x1 - x0 | x_t = x]. ``generator`` fixes the draws (used for
    deterministic validation); ``None`` uses the global RNG.
    """
    n = x1.shape[0]
    x0 = torch.randn(x1.shape, generator=generator, dtype=x1.dtype).to(x1.device)
    t = torch.rand(n, generator=generator, dtype=x1.dtype).to(x1.device)
    xt, target = linear_path(x0, x1, t)
    return (velocity(xt, t) - target).pow(2).mean()

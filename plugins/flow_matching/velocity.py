"""The learned velocity field v_theta(x, t)."""

from __future__ import annotations

import math

import torch
from torch import nn


class TimeFeatures(nn.Module):
    """phi(t) = [t, sin(2 pi f t), cos(2 pi f t)] for f = 1..n_frequencies; t: (n,) -> (n, 1 + 2 n_frequencies)."""

    def __init__(self, n_frequencies: int) -> None:
        super().__init__()
        self.register_buffer("freqs", 2 * math.pi * torch.arange(1, n_frequencies + 1, dtype=torch.float32))

    @property
    def out_features(self) -> int:
        return 1 + 2 * self.freqs.numel()

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        angles = t[:, None] * self.freqs.to(t.dtype)
        return torch.cat([t[:, None], angles.sin(), angles.cos()], dim=1)


class VelocityMLP(nn.Module):
    """v_theta(x, t) = MLP([x, phi(t)]): SiLU MLP with ``depth`` hidden layers of width ``hidden``.

    Args:
        dim: data dimension d.
        hidden: hidden width.
        depth: number of hidden layers (>= 1).
        time_frequencies: Fourier frequencies in phi(t).
    """

    def __init__(self, dim: int, hidden: int = 128, depth: int = 3, time_frequencies: int = 8) -> None:
        super().__init__()
        for name, value in (("dim", dim), ("hidden", hidden), ("depth", depth)):
            if value < 1:
                raise ValueError(f"{name}={value}: VelocityMLP needs dim, hidden and depth >= 1.")
        self.time = TimeFeatures(time_frequencies)
        layers: list[nn.Module] = []
        width = dim + self.time.out_features
        for _ in range(depth):
            layers += [nn.Linear(width, hidden), nn.SiLU()]
            width = hidden
        layers.append(nn.Linear(width, dim))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor, t: torch.Tensor | float) -> torch.Tensor:
        """x: (n, d); t: scalar, 0-dim or (n,) -> velocity (n, d)."""
        t = torch.as_tensor(t, dtype=x.dtype, device=x.device)
        if t.ndim == 0:
            t = t.expand(x.shape[0])
        return self.net(torch.cat([x, self.time(t)], dim=1))

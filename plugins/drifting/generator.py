"""One-step generators x = f(z), z ~ N(0, I)."""

from __future__ import annotations

import torch
from torch import nn


class MLPGenerator(nn.Module):
    """f(z) = SiLU MLP: noise_dim -> hidden x depth -> dim."""

    def __init__(self, noise_dim: int, dim: int, hidden: int = 256, depth: int = 3) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        width = noise_dim
        for _ in range(depth):
            layers += [nn.Linear(width, hidden), nn.SiLU()]
            width = hidden
        self.net = nn.Sequential(*layers, nn.Linear(width, dim))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)


class ConvGenerator(nn.Module):
    """For 8x8 images: z -> linear -> (C, 2, 2) -> two (upsample x2, conv 3x3, SiLU) -> conv 3x3 -> 64 pixels,
    tanh to [-1, 1] like the scaled digits."""

    def __init__(self, noise_dim: int, dim: int = 64, channels: int = 64) -> None:
        super().__init__()
        if dim != 64:
            raise ValueError(f"ConvGenerator makes 8x8 images (dim 64), got dim={dim}; use architecture: mlp.")
        self.channels = channels
        self.project = nn.Linear(noise_dim, channels * 4)
        self.net = nn.Sequential(
            nn.SiLU(),
            nn.Upsample(scale_factor=2),
            nn.Conv2d(channels, channels, 3, padding=1),
            nn.SiLU(),
            nn.Upsample(scale_factor=2),
            nn.Conv2d(channels, channels // 2, 3, padding=1),
            nn.SiLU(),
            nn.Conv2d(channels // 2, 1, 3, padding=1),
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.project(z).view(-1, self.channels, 2, 2)
        return torch.tanh(self.net(h)).flatten(1)

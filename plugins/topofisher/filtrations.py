"""Filtrations applied before persistence: fixed or trainable maps from a simulation to the function whose
sublevel sets are filtered (images (m, C, H, W) -> (m, C, H, W); point clouds (m, n, 2) -> images on a grid)."""

from __future__ import annotations

import math
from abc import ABC, abstractmethod

import torch
from torch import nn


class Filtration(nn.Module, ABC):
    """Base of the filtrations a :class:`~framework_plugins.topofisher.summaries.TopologicalSummary` takes as
    ``filtration``: simulations -> the function whose sublevel sets are filtered (images (m, C, H, W), or a grid
    image of a point cloud). A subclass implements ``forward``."""

    @abstractmethod
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The filtration function of the simulations x."""


class GaussianSmoothing(Filtration):
    """Periodic Gaussian smoothing with a learnable scale: f = ifft2(fft2(x) exp(-k^2 s^2 / 2)), s = exp(log_scale)
    pixels, k = 2 pi fftfreq (exact convolution with the periodised Gaussian, differentiable in s).

    Args:
        scale: initial smoothing length s in pixels (> 0).
        learnable: train s (false: a fixed smoothing, whose diagrams ``cache_diagrams`` can store).
    """

    def __init__(self, scale: float = 1.0, learnable: bool = True) -> None:
        super().__init__()
        if scale <= 0:
            raise ValueError(f"scale={scale} must be positive (pixels).")
        self.log_scale = nn.Parameter(torch.tensor(math.log(scale)), requires_grad=learnable)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        h, w = images.shape[-2:]
        ky = 2 * math.pi * torch.fft.fftfreq(h, device=images.device, dtype=images.dtype)
        kx = 2 * math.pi * torch.fft.rfftfreq(w, device=images.device, dtype=images.dtype)
        k2 = ky[:, None] ** 2 + kx[None, :] ** 2
        kernel = torch.exp(-0.5 * k2 * torch.exp(2 * self.log_scale))
        return torch.fft.irfft2(torch.fft.rfft2(images) * kernel, s=(h, w))


class CNNFiltration(Filtration):
    """A small residual CNN with circular padding: f = x + g(x), g = conv-SiLU-...-conv (``channels`` hidden, 3x3),
    last layer zero-initialised so training starts from the raw field. Keeps (m, C, H, W).

    Args:
        in_channels: image channels (kept by the output).
        channels: hidden channels of the 3x3 convolutions.
        depth: number of hidden conv-SiLU layers before the zero-initialised output convolution.
    """

    def __init__(self, in_channels: int = 1, channels: int = 8, depth: int = 2) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        width = in_channels
        for _ in range(depth):
            layers += [nn.Conv2d(width, channels, 3, padding=1, padding_mode="circular"), nn.SiLU()]
            width = channels
        last = nn.Conv2d(width, in_channels, 3, padding=1, padding_mode="circular")
        nn.init.zeros_(last.weight)
        nn.init.zeros_(last.bias)
        self.net = nn.Sequential(*layers, last)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return images + self.net(images)


class DistanceToMeasure(Filtration):
    """Distance to the empirical measure (Chazal et al. 2011) on a resolution x resolution grid over
    [-extent, extent]^2: d(g) = sqrt(mean of the k smallest |g - x_i|^2); its sublevel sets are robust to outliers.
    Differentiable in the points. (m, n, 2) -> (m, 1, R, R).

    Args:
        resolution: R, grid points per axis.
        extent: the grid covers [-extent, extent]^2 (the points' units).
        k: number of nearest points averaged (>= 1).
    """

    def __init__(self, resolution: int = 32, extent: float = 11.0, k: int = 10) -> None:
        super().__init__()
        if k < 1:
            raise ValueError(f"k={k} must be >= 1 (neighbours in the DTM average).")
        self.k = k
        axis = torch.linspace(-extent, extent, resolution, dtype=torch.float64)
        grid = torch.stack(torch.meshgrid(axis, axis, indexing="ij"), dim=-1).reshape(-1, 2)
        self.register_buffer("grid", grid, persistent=False)
        self.resolution = resolution

    def forward(self, points: torch.Tensor) -> torch.Tensor:
        sq = torch.cdist(self.grid.to(points).expand(len(points), -1, -1), points) ** 2  # (m, R^2, n)
        nearest = sq.topk(min(self.k, points.shape[1]), dim=-1, largest=False).values
        return nearest.mean(-1).sqrt().reshape(len(points), 1, self.resolution, self.resolution)


def as_images(x: torch.Tensor, channels: int) -> torch.Tensor:
    """(m, H, W) or (m, C, H, W) -> (m, C, H, W), checking C."""
    if x.dim() == 3:
        x = x[:, None]
    if x.shape[1] != channels:
        raise ValueError(f"simulations have {x.shape[1]} channels but the summary was built for {channels}.")
    return x

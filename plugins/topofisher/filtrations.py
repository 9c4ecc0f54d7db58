"""Filtrations applied before persistence: fixed or trainable maps from a simulation to the function whose
sublevel sets are filtered (images (m, C, H, W) -> (m, C, H, W); point clouds (m, n, 2) -> images on a grid)."""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Sequence

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


def knn_distances(points: torch.Tensor, k: int) -> torch.Tensor:
    """Distances from each point to its k nearest other points, ascending: (m, n, 2) -> (m, n, k)."""
    if not 1 <= k < points.shape[1]:
        raise ValueError(f"k={k} nearest neighbours needs 1 <= k < n_points={points.shape[1]}.")
    sq = ((points[:, :, None] - points[:, None]) ** 2).sum(-1)  # (m, n, n), differentiable (cdist is not at 0)
    nearest = sq.topk(k + 1, dim=-1, largest=False).values[..., 1:]  # drop the point itself
    return nearest.clamp_min(1e-30).sqrt()


class VertexFiltration(Filtration):
    """A function on the points of a cloud, extended to the Delaunay (alpha) complex by
    :func:`~framework_plugins.topofisher.persistence.vertex_filtration_values` (complex ``alpha_vertex`` of
    :class:`~framework_plugins.topofisher.summaries.TopologicalSummary`). (m, n, 2) -> (m, n, 3) = (x, y, f).
    A subclass implements ``values``."""

    @abstractmethod
    def values(self, points: torch.Tensor) -> torch.Tensor:
        """Vertex values f (m, n) of the point clouds (m, n, 2)."""

    def forward(self, points: torch.Tensor) -> torch.Tensor:
        return torch.cat([points, self.values(points)[..., None]], dim=-1)


class DTMVertices(VertexFiltration):
    """Distance to measure at each point (the public TopoFisher ``alpha_dtm`` baseline):
    f_i = sqrt(mean_{j <= k} d_ij^2) over its k nearest other points. Fixed.

    Args:
        k: neighbours averaged (1 <= k < n_points).
    """

    def __init__(self, k: int = 100) -> None:
        super().__init__()
        self.k = k

    def values(self, points: torch.Tensor) -> torch.Tensor:
        return (knn_distances(points, self.k) ** 2).mean(-1).sqrt()


class LearnedVertices(VertexFiltration):
    """A learned vertex filtration on the k nearest-neighbour distances (the public TopoFisher
    ``learnable_dense_point`` spiral config: an MLP on k = 100 kNN distances, hidden (64, 32), leaky ReLU):
    f_i = DTM_i + g(d_i1, ..., d_ik), g an MLP whose last layer starts at zero, so training starts from the
    alpha-DTM filtration (the fixed baseline) and learns a correction.

    Args:
        k: nearest-neighbour distances fed to the MLP (1 <= k < n_points).
        hidden: hidden sizes of the MLP.
    """

    def __init__(self, k: int = 100, hidden: Sequence[int] = (64, 32)) -> None:
        super().__init__()
        self.k = k
        sizes = [k, *hidden, 1]
        layers: list[nn.Module] = []
        for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
            layers += [nn.Linear(a, b)] + ([nn.LeakyReLU(0.01)] if i < len(sizes) - 2 else [])
        nn.init.zeros_(layers[-1].weight)
        nn.init.zeros_(layers[-1].bias)
        self.net = nn.Sequential(*layers)

    def correction(self, points: torch.Tensor, d: torch.Tensor | None = None) -> torch.Tensor:
        """The learned part g (m, n) of f = DTM + g (``d``: the kNN distances, if already computed)."""
        d = knn_distances(points, self.k) if d is None else d
        return self.net(d.to(self.net[0].weight.dtype)).squeeze(-1).to(d)

    def values(self, points: torch.Tensor) -> torch.Tensor:
        d = knn_distances(points, self.k)
        return (d**2).mean(-1).sqrt() + self.correction(points, d)


def as_images(x: torch.Tensor, channels: int) -> torch.Tensor:
    """(m, H, W) or (m, C, H, W) -> (m, C, H, W), checking C."""
    if x.dim() == 3:
        x = x[:, None]
    if x.shape[1] != channels:
        raise ValueError(f"simulations have {x.shape[1]} channels but the summary was built for {channels}.")
    return x

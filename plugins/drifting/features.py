"""Fixed feature encoders for feature-space drifting (Deng et al. 2026, App. A.6 sums drifting losses over feature
maps phi_j of a frozen encoder). Cheap, honest stand-ins for their pretrained encoder, with no trained weights:

- ``pca``: whitened principal components of the training split, phi(x) = (x - mu) U_k / sqrt(lambda_k) (fitted once
  in ``fit``; the directions of small variance get the same weight as the large ones);
- ``random_conv``: a frozen random 3x3 convolution of the image (seeded, He-scaled), ReLU, 2x2 average pooling:
  local edge-like features at half resolution, (n, side^2) -> (n, channels * (side/2)^2).
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from torch import nn
from torch.nn import functional as F

Encoder = Literal["none", "pca", "random_conv"]
ENCODER_SEED = 0  # the random convolution is the same in every run (it is part of the method, not of the seed)


class PCAFeatures(nn.Module):
    """phi(x) = (x - mu) U_k diag(lambda_k)^{-1/2}; buffers, filled by :meth:`fit`. (n, dim) -> (n, k)."""

    def __init__(self, dim: int, k: int) -> None:
        super().__init__()
        if not 1 <= k <= dim:
            raise ValueError(f"model.init_args.encoder_dim={k}: PCA keeps 1..dim={dim} components; pick one in range.")
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("proj", torch.zeros(dim, k))

    @torch.no_grad()
    def fit(self, data: torch.Tensor) -> None:
        """Top-k eigenvectors of the sample covariance of ``data``: (n, dim), scaled by 1/sqrt(eigenvalue)."""
        mean = data.mean(0)
        eigvals, eigvecs = torch.linalg.eigh(torch.cov((data - mean).T.double()))
        k = self.proj.shape[1]
        top = eigvals.flip(0)[:k].clamp_min(1e-12)
        self.mean.copy_(mean)
        self.proj.copy_((eigvecs.flip(1)[:, :k] / top.sqrt()).to(self.proj))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) @ self.proj


class RandomConvFeatures(nn.Module):
    """ReLU(conv3x3(x, W)) average-pooled 2x2, W ~ N(0, 2/9) fixed (seed ``ENCODER_SEED``).

    (n, side^2) -> (n, channels * (side/2)^2)."""

    def __init__(self, dim: int, channels: int) -> None:
        super().__init__()
        side = math.isqrt(dim)
        if side * side != dim or side % 2:
            raise ValueError(f"model.init_args.encoder=random_conv needs square images of even side; dim={dim} is not.")
        self.side = side
        gen = torch.Generator().manual_seed(ENCODER_SEED)
        self.register_buffer("weight", torch.randn(channels, 1, 3, 3, generator=gen) * math.sqrt(2 / 9))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        maps = F.relu(F.conv2d(x.view(-1, 1, self.side, self.side), self.weight, padding=1))
        return F.avg_pool2d(maps, 2).flatten(1)


def build_encoder(name: Encoder, dim: int, size: int) -> nn.Module | None:
    """The fixed encoder ``name`` (None for ``none``); ``size`` = PCA components or convolution channels."""
    if name == "none":
        return None
    if name == "pca":
        return PCAFeatures(dim, size)
    if name == "random_conv":
        return RandomConvFeatures(dim, size)
    raise ValueError(f"model.init_args.encoder={name!r} is unknown; choose none, pca or random_conv.")

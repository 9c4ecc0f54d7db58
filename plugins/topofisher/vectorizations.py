"""Differentiable vectorizations of persistence diagrams (torch versions of gudhi.representations + PersLay).

Each module maps one :class:`~framework_plugins.topofisher.persistence.Diagram` (points (m, P, 2) = (birth, death), mask
(m, P)) to features (m, out_features); masked (padding) points contribute nothing.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence

import torch
from torch import nn

from framework_plugins.topofisher.persistence import Diagram


class Vectorization(nn.Module, ABC):
    """Base of the diagram vectorizations a :class:`~framework_plugins.topofisher.summaries.TopologicalSummary`
    takes as ``vectorization``: one Diagram (m diagrams) -> features (m, out_features). A subclass sets
    ``out_features`` in ``__init__`` and implements ``forward``."""

    out_features: int

    @abstractmethod
    def forward(self, diagram: Diagram) -> torch.Tensor:
        """Features (m, out_features) of the m diagrams in ``diagram``; padding points contribute nothing."""


def _grid(sample_range: Sequence[float], resolution: int) -> torch.Tensor:
    if len(sample_range) != 2 or not sample_range[0] < sample_range[1]:
        raise ValueError(f"sample_range={list(sample_range)} must be [low, high] with low < high.")
    return torch.linspace(float(sample_range[0]), float(sample_range[1]), resolution, dtype=torch.float64)


def tents(diagram: Diagram, grid: torch.Tensor) -> torch.Tensor:
    """Tent functions Lambda_i(t) = max(0, min(t - b_i, d_i - t)), zero for padding. Returns (m, P, T)."""
    b, d = diagram.points[..., 0, None], diagram.points[..., 1, None]
    t = grid.to(diagram.points)
    return torch.clamp(torch.minimum(t - b, d - t), min=0) * diagram.mask[..., None]


class PersistenceImage(Vectorization):
    """Persistence image (Adams et al. 2017): I(x, y) = sum_i w_i N((x, y); (b_i, d_i - b_i), s^2 I) on the pixel
    centres of a ``resolution`` grid over birth_range x persistence_range, w_i = (d_i - b_i)^weight_power (0: all 1).
    Same values and layout (persistence-major) as ``gudhi.representations.PersistenceImage``.

    Args:
        bandwidth: s, the standard deviation of each point's Gaussian (> 0, in filtration units).
        resolution: pixels along birth and along persistence, [n_birth, n_persistence].
        birth_range: [low, high] of the birth axis.
        persistence_range: [low, high] of the persistence (death - birth) axis.
        weight_power: w_i = persistence^weight_power (0: every point weighs 1).
    """

    def __init__(
        self,
        bandwidth: float = 0.1,
        resolution: Sequence[int] = (10, 10),
        birth_range: Sequence[float] = (-3, 3),
        persistence_range: Sequence[float] = (0, 3),
        weight_power: float = 1.0,
    ) -> None:
        super().__init__()
        if bandwidth <= 0:
            raise ValueError(f"bandwidth={bandwidth} must be positive.")
        self.bandwidth, self.weight_power = bandwidth, weight_power
        self.register_buffer("xs", _grid(birth_range, resolution[0]), persistent=False)
        self.register_buffer("ys", _grid(persistence_range, resolution[1]), persistent=False)
        self.out_features = resolution[0] * resolution[1]

    def forward(self, diagram: Diagram) -> torch.Tensor:
        birth = diagram.points[..., 0]
        pers = diagram.points[..., 1] - birth
        weight = (pers.clamp_min(0) ** self.weight_power if self.weight_power else torch.ones_like(pers)) * diagram.mask
        s2 = self.bandwidth**2
        gx = torch.exp(-((birth[..., None] - self.xs.to(birth)) ** 2) / (2 * s2))  # (m, P, X)
        gy = torch.exp(-((pers[..., None] - self.ys.to(birth)) ** 2) / (2 * s2))  # (m, P, Y)
        image = torch.einsum("mp,mpy,mpx->myx", weight, gy, gx) / (2 * torch.pi * s2)
        return image.flatten(1)


class Landscape(Vectorization):
    """Persistence landscapes (Bubenik 2015): lambda_k(t) = k-th largest tent value at t, k = 1..num_landscapes,
    on ``resolution`` points of sample_range. (gudhi's ``Landscape`` returns sqrt(2) times this.)

    Args:
        num_landscapes: number of landscapes k = 1..num_landscapes.
        resolution: sample points per landscape.
        sample_range: [low, high] of the filtration values sampled.
    """

    def __init__(self, num_landscapes: int = 3, resolution: int = 32, sample_range: Sequence[float] = (-3, 3)) -> None:
        super().__init__()
        self.num_landscapes = num_landscapes
        self.register_buffer("grid", _grid(sample_range, resolution), persistent=False)
        self.out_features = num_landscapes * resolution

    def forward(self, diagram: Diagram) -> torch.Tensor:
        values = tents(diagram, self.grid)
        if values.shape[1] < self.num_landscapes:
            values = nn.functional.pad(values, (0, 0, 0, self.num_landscapes - values.shape[1]))
        top = values.topk(self.num_landscapes, dim=1).values  # (m, K, T), sorted descending
        return top.flatten(1)


class Silhouette(Vectorization):
    """Power-weighted silhouette (Chazal et al. 2014): phi(t) = sum_i w_i Lambda_i(t) / sum_i w_i,
    w_i = (d_i - b_i)^power, on ``resolution`` points of sample_range.

    Args:
        power: exponent of the persistence weights (0: unweighted mean of the tents).
        resolution: sample points.
        sample_range: [low, high] of the filtration values sampled.
    """

    def __init__(self, power: float = 1.0, resolution: int = 32, sample_range: Sequence[float] = (-3, 3)) -> None:
        super().__init__()
        self.power = power
        self.register_buffer("grid", _grid(sample_range, resolution), persistent=False)
        self.out_features = resolution

    def forward(self, diagram: Diagram) -> torch.Tensor:
        pers = (diagram.points[..., 1] - diagram.points[..., 0]).clamp_min(0)
        weight = pers**self.power * diagram.mask
        total = (weight[..., None] * tents(diagram, self.grid)).sum(1)
        return total / weight.sum(1, keepdim=True).clamp_min(torch.finfo(weight.dtype).tiny)


class BettiCurve(Vectorization):
    """Betti curve beta(t) = #{i : b_i <= t < d_i} on ``resolution`` points of sample_range; with
    ``temperature`` tau > 0 the smooth surrogate sum_i sigmoid((t - b_i) / tau) sigmoid((d_i - t) / tau), which has
    gradients (the exact curve is piecewise constant in the diagram).

    Args:
        resolution: sample points.
        sample_range: [low, high] of the filtration values sampled.
        temperature: tau of the smooth surrogate (>= 0; 0 = the exact, non-differentiable curve).
    """

    def __init__(self, resolution: int = 32, sample_range: Sequence[float] = (-3, 3), temperature: float = 0.05):
        super().__init__()
        if temperature < 0:
            raise ValueError(f"temperature={temperature} must be >= 0 (0 = exact, non-differentiable curve).")
        self.temperature = temperature
        self.register_buffer("grid", _grid(sample_range, resolution), persistent=False)
        self.out_features = resolution

    def forward(self, diagram: Diagram) -> torch.Tensor:
        t = self.grid.to(diagram.points)
        b, d = diagram.points[..., 0, None], diagram.points[..., 1, None]
        if self.temperature == 0:
            alive = ((b <= t) & (t < d)).to(t)
        else:
            alive = torch.sigmoid((t - b) / self.temperature) * torch.sigmoid((d - t) / self.temperature)
        return (alive * diagram.mask[..., None]).sum(1)


class PersLay(Vectorization):
    """PersLay as in TopoFisher (Carriere et al. 2020): sum_i pi_i sigmoid(u b_i + v d_i + c) phi(b_i, d_i, pi_i,
    ln pi_i), pi = d - b, phi a spectrally normalised MLP with ``out_features`` outputs.

    Args:
        out_features: features per diagram (outputs of phi).
        hidden: width of phi's two hidden layers.
    """

    def __init__(self, out_features: int = 16, hidden: int = 32) -> None:
        super().__init__()
        sn = nn.utils.parametrizations.spectral_norm
        self.phi = nn.Sequential(
            sn(nn.Linear(4, hidden)),
            nn.SiLU(),
            sn(nn.Linear(hidden, hidden)),
            nn.SiLU(),
            sn(nn.Linear(hidden, out_features)),
        )
        self.gate = nn.Linear(2, 1)
        self.out_features = out_features

    def forward(self, diagram: Diagram) -> torch.Tensor:
        b, d = diagram.points[..., 0], diagram.points[..., 1]
        pers = (d - b).clamp_min(0)
        feats = torch.stack([b, d, pers, torch.log(pers + 1e-6)], dim=-1)
        weight = pers * torch.sigmoid(self.gate(diagram.points).squeeze(-1)) * diagram.mask
        return torch.einsum("mp,mpf->mf", weight, self.phi(feats))

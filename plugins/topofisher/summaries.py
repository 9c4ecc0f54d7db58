"""Summary networks: simulation batch (m, *shape) -> summaries (m, out_features)."""

from __future__ import annotations

import copy
import math
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Literal

import torch
from torch import nn

from framework_plugins.topofisher.filtrations import Filtration, VertexFiltration, as_images
from framework_plugins.topofisher.persistence import (
    Diagram,
    alpha_diagrams,
    cubical_diagrams,
    rips_diagrams,
    vertex_filtration_diagrams,
)
from framework_plugins.topofisher.vectorizations import Vectorization

Complex = Literal["cubical", "periodic_cubical", "alpha", "alpha_vertex", "rips"]


class SummaryNetwork(nn.Module, ABC):
    """Base of the summary networks :class:`~framework_plugins.topofisher.module.TopoFisher` takes as ``summary``:
    simulations (m, *shape) -> summaries (m, out_features). A subclass sets ``out_features`` in ``__init__`` and
    implements ``forward``; the CLI accepts any subclass as ``model.init_args.summary`` (and lists the imported
    ones in ``framework fit --model.help TopoFisher``)."""

    out_features: int

    @abstractmethod
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Summaries (m, out_features) of the simulations x (m, *shape)."""


class TopologicalSummary(SummaryNetwork):
    """filtration -> persistence (with gradients) -> one vectorization per (homology dimension), concatenated.

    Args:
        vectorization: a Vectorization (PersistenceImage, Landscape, Silhouette, BettiCurve, PersLay), copied once
            per homology dimension (no shared weights), or a list of them, one per entry of ``dims`` (e.g.
            persistence images with each dimension's own birth / persistence ranges).
        complex: ``cubical`` / ``periodic_cubical`` on images (m, [C,] H, W) or on the image a point-cloud
            filtration (e.g. DistanceToMeasure) returns; ``alpha`` (2-D, squared radii) / ``rips`` on points (m, n, k);
            ``alpha_vertex``: the Delaunay (alpha) complex under the vertex values of a VertexFiltration (DTMVertices:
            alpha-DTM; LearnedVertices), edge uv -> |x_u - x_v| + max(f_u, f_v).
        dims: homology dimensions.
        filtration: a Filtration applied first (GaussianSmoothing, CNNFiltration, DistanceToMeasure); null = the
            simulation itself.
        channels: image channels (e.g. tomographic bins); each channel gets its own diagrams, vectorized by the
            same module.
        max_edge: Rips edge cut-off.
        input_scale: multiplies the simulation first (e.g. ~1 / sigma for convergence maps with sigma ~ 0.01, so
            that PersLay's MLP sees O(1) births and deaths; ln|F| is unchanged by it).
        backend: cubical persistence by ``gudhi`` (open or periodic) or ``cripser`` (open only, faster; optional
            extra ``[cripser]``). Both give the same diagrams.
    """

    def __init__(
        self,
        vectorization: Vectorization | list[Vectorization],
        complex: Complex = "periodic_cubical",
        dims: Sequence[int] = (0, 1),
        filtration: Filtration | None = None,
        channels: int = 1,
        max_edge: float = math.inf,
        input_scale: float = 1.0,
        backend: Literal["gudhi", "cripser"] = "gudhi",
    ) -> None:
        super().__init__()
        self.input_scale = input_scale
        if complex not in ("cubical", "periodic_cubical", "alpha", "alpha_vertex", "rips"):
            raise ValueError(
                f"complex={complex!r} is unknown; use cubical, periodic_cubical, alpha, alpha_vertex or rips."
            )
        if (complex == "alpha_vertex") != isinstance(filtration, VertexFiltration):
            raise ValueError(
                f"complex={complex!r} with filtration {type(filtration).__name__}: complex alpha_vertex takes a "
                "VertexFiltration (DTMVertices, LearnedVertices) and a VertexFiltration needs complex alpha_vertex."
            )
        if backend not in ("gudhi", "cripser") or (backend == "cripser" and complex != "cubical"):
            raise ValueError(
                f"backend={backend!r} with complex={complex!r}: cripser computes open cubical persistence only; use "
                f"complex: cubical with backend: cripser, or backend: gudhi."
            )
        self.complex, self.dims, self.channels, self.max_edge = complex, tuple(dims), channels, max_edge
        self.backend = backend
        self.filtration = filtration if filtration is not None else nn.Identity()
        if isinstance(vectorization, Vectorization):
            vectorization = [copy.deepcopy(vectorization) for _ in self.dims]
        if len(vectorization) != len(self.dims):
            raise ValueError(
                f"vectorization lists {len(vectorization)} modules for dims={list(self.dims)}; give one per homology "
                "dimension, or a single one to copy."
            )
        self.vectorizations = nn.ModuleList(vectorization)
        self.out_features = channels * sum(v.out_features for v in vectorization)

    def diagrams(self, x: torch.Tensor):
        """Persistence diagrams of the filtered simulations: list over dims of Diagram with batch m * C."""
        f = self.filtration(x * self.input_scale if self.input_scale != 1.0 else x)
        if self.complex == "alpha_vertex":
            return vertex_filtration_diagrams(f[..., :2], f[..., 2], self.dims)
        if self.complex in ("alpha", "rips"):
            return (alpha_diagrams if self.complex == "alpha" else rips_diagrams)(
                f, self.dims, *((self.max_edge,) if self.complex == "rips" else ())
            )
        images = as_images(f, self.channels)
        periodic = self.complex == "periodic_cubical"
        return cubical_diagrams(images.flatten(0, 1), self.dims, periodic=periodic, backend=self.backend)

    def vectorize(self, diagrams: Sequence[Diagram], m: int) -> torch.Tensor:
        """Vectorized diagrams of m simulations (one Diagram per homology dimension, batch m * C)
        -> (m, out_features)."""
        feats = [vec(diagram) for vec, diagram in zip(self.vectorizations, diagrams, strict=True)]
        return torch.cat(feats, dim=-1).reshape(m, -1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.vectorize(self.diagrams(x), len(x))

    @property
    def frozen_diagrams(self) -> bool:
        """True when the diagrams do not depend on trainable parameters (the filtration has none)."""
        return not any(p.requires_grad for p in self.filtration.parameters())

    @torch.no_grad()
    def diagram_tensors(self, items: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Diagrams of items (b, k, *shape) as NaN-padded points (b, k, C, P, 2), one tensor per homology dimension
        (the storable form :class:`~framework_plugins.topofisher.datamodule.TopoFisherData` memoizes)."""
        b, k = items.shape[:2]
        return tuple(d.padded().reshape(b, k, -1, *d.points.shape[1:]) for d in self.diagrams(items.flatten(0, 1)))

    def vectorize_tensors(self, tensors: Sequence[torch.Tensor]) -> torch.Tensor:
        """Summaries (b, k, out_features) of stored diagrams (b, k, C, P, 2) from :meth:`diagram_tensors`."""
        b, k = tensors[0].shape[:2]
        return self.vectorize([Diagram.from_padded(t.flatten(0, 2)) for t in tensors], b * k).reshape(b, k, -1)


class IMNNNetwork(SummaryNetwork):
    """IMNN baseline compressor (Charnock et al. 2018; TopoFisher's ``filtrations/imnn.py`` shape): strided 3x3
    circular convolutions (widths ``channels``, stride 2 each), global average pooling, a dense ``hidden`` layer,
    ``out_features`` outputs; the input is multiplied by ``input_scale`` first. (m, [C,] H, W) -> (m, out_features).

    Args:
        in_channels: image channels of the simulations.
        channels: output channels of each strided 3x3 convolution (one entry per layer).
        hidden: width of the dense layer after global average pooling.
        out_features: number of summaries per simulation.
        input_scale: multiplies the simulation first (e.g. ~1 / sigma of the field).
    """

    def __init__(
        self,
        in_channels: int = 1,
        channels: Sequence[int] = (16, 32, 32),
        hidden: int = 128,
        out_features: int = 2,
        input_scale: float = 1.0,
    ) -> None:
        super().__init__()
        self.input_scale = input_scale
        layers: list[nn.Module] = []
        width = in_channels
        for c in channels:
            layers += [nn.Conv2d(width, c, 3, stride=2, padding=1, padding_mode="circular"), nn.SiLU()]
            width = c
        self.net = nn.Sequential(
            *layers,
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Linear(width, hidden),
            nn.SiLU(),
            nn.Linear(hidden, out_features),
        )
        self.in_channels, self.out_features = in_channels, out_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(as_images(x, self.in_channels) * self.input_scale)


class PowerSpectrum(SummaryNetwork):
    """Binned power spectrum ln( mean_{k in bin} |fft2(x)_k|^2 / N^2 ), ``bins`` log-spaced bins of |k| (k = 2 pi
    fftfreq) between the fundamental and the corner mode, per channel. (m, [C,] H, W) -> (m, C * bins).

    Args:
        n: image side in pixels (square images).
        bins: number of log-spaced |k| bins (each must hold a mode of the n x n grid).
        channels: image channels; each gets its own spectrum.
    """

    def __init__(self, n: int, bins: int = 8, channels: int = 1) -> None:
        super().__init__()
        freq = 2 * math.pi * torch.fft.fftfreq(n, dtype=torch.float64)
        k = torch.sqrt(freq[:, None] ** 2 + freq[None, :] ** 2).flatten()
        edges = torch.logspace(math.log10(2 * math.pi / n), math.log10(k.max() * 1.0001), bins + 1, dtype=torch.float64)
        index = torch.bucketize(k, edges, right=True) - 1
        onehot = torch.zeros(n * n, bins, dtype=torch.float64)
        valid = (index >= 0) & (index < bins) & (k > 0)
        onehot[valid.nonzero().squeeze(1), index[valid]] = 1
        if (onehot.sum(0) == 0).any():
            raise ValueError(f"bins={bins} leaves empty |k| bins on a {n} x {n} grid; use fewer bins.")
        self.register_buffer("weights", (onehot / onehot.sum(0)).float(), persistent=False)
        self.channels, self.n, self.out_features = channels, n, channels * bins

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        images = as_images(x, self.channels)
        power = torch.fft.fft2(images).abs() ** 2 / self.n**2
        return torch.log(power.flatten(2) @ self.weights.to(power)).flatten(1)


class PeakCounts(SummaryNetwork):
    """Peak counts: strict 8-neighbour local maxima (periodic), a ``bins`` histogram of their heights over
    value_range, log1p. Not differentiable (a fixed baseline). (m, [C,] H, W) -> (m, C * bins).

    Args:
        bins: number of equal-width bins of peak heights.
        value_range: [low, high] of the histogrammed peak heights (peaks outside are not counted).
        channels: image channels; each gets its own histogram.
    """

    def __init__(self, bins: int = 10, value_range: Sequence[float] = (-0.05, 0.2), channels: int = 1) -> None:
        super().__init__()
        self.bins, self.range, self.channels, self.out_features = bins, tuple(value_range), channels, channels * bins

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        images = as_images(x, self.channels).detach()
        shifts = [(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1) if (dy, dx) != (0, 0)]
        peak = torch.stack([images > torch.roll(images, s, dims=(-2, -1)) for s in shifts]).all(0)
        edges = torch.linspace(*self.range, self.bins + 1, dtype=images.dtype, device=images.device)
        index = torch.bucketize(images, edges, right=True) - 1
        valid = peak & (index >= 0) & (index < self.bins)
        counts = torch.zeros(*images.shape[:2], self.bins, dtype=images.dtype, device=images.device)
        counts.scatter_add_(2, index.clamp(0, self.bins - 1).flatten(2), valid.flatten(2).to(images.dtype))
        return torch.log1p(counts).flatten(1)

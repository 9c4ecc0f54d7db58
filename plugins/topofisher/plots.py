"""Figures: Fisher ellipses, persistence diagrams, input vs learned filtration (matplotlib, Agg)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from framework.figures import pyplot
from framework_plugins.topofisher.fisher import log_det


def ellipse(fisher: torch.Tensor, n: int = 200) -> torch.Tensor:
    """The 1-sigma contour of N(0, F^-1) in the first two parameters: points (n, 2)."""
    cov = torch.linalg.inv(fisher.double())[:2, :2]
    angle = torch.linspace(0, 2 * math.pi, n, dtype=torch.float64)
    circle = torch.stack([torch.cos(angle), torch.sin(angle)], dim=1)
    return circle @ torch.linalg.cholesky(cov).T


def fisher_figure(fisher: torch.Tensor, exact: torch.Tensor | None, dtheta: torch.Tensor):
    """Held-out Fisher 1-sigma ellipse next to the exact one."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(4, 4))
    if torch.isfinite(log_det(fisher)):  # no ellipse for a held-out F that is not positive definite
        ax.plot(*ellipse(fisher.cpu()).T, label=f"held-out ln|F| = {log_det(fisher):.2f}")
    if exact is not None:
        ax.plot(*ellipse(exact).T, "k--", label=f"exact ln|F| = {log_det(exact):.2f}")
    ax.set_xlabel(r"$\delta\theta_1$")
    ax.set_ylabel(r"$\delta\theta_2$")
    ax.legend(fontsize=8)
    return fig


def diagram_figure(diagrams: Sequence, dims: Sequence[int]):
    """Persistence diagrams (first item of the batch), one colour per homology dimension."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(4, 4))
    for diagram, dim in zip(diagrams, dims, strict=True):
        points = diagram.points[0][diagram.mask[0]].detach().cpu()
        ax.scatter(points[:, 0], points[:, 1], s=6, label=f"H{dim}")
    low, high = ax.get_xlim()
    ax.plot([low, high], [low, high], "k-", lw=0.5)
    ax.set_xlabel("birth")
    ax.set_ylabel("death")
    ax.legend()
    return fig


def filtration_figure(x: torch.Tensor, filtered: torch.Tensor):
    """The simulation (image or point cloud) and the function that is filtered (first item, first channel), each
    colour map with its colour bar."""
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(8, 4))
    sample = x[0].detach().cpu()
    if sample.dim() == 2 and sample.shape[-1] == 2:
        axes[0].scatter(sample[:, 0], sample[:, 1], s=3)
        axes[0].set_aspect("equal")
    else:
        fig.colorbar(axes[0].imshow(sample.reshape(-1, *sample.shape[-2:])[0]), ax=axes[0], shrink=0.8)
    image = axes[1].imshow(filtered[0].detach().cpu().reshape(-1, *filtered.shape[-2:])[0])
    fig.colorbar(image, ax=axes[1], shrink=0.8, label="filtration value")
    axes[0].set_title("simulation")
    axes[1].set_title("filtration")
    return fig


def vertex_filtration_figure(points: torch.Tensor, values: torch.Tensor, correction: torch.Tensor | None = None):
    """A point cloud (n, 2) coloured by its vertex filtration f (n,) and, for a learned filtration
    f = DTM + g, coloured by the learned correction g (n,)."""
    plt = pyplot()
    panels = [("filtration value f", values)] + (
        [("learned correction g = f - DTM", correction)] if correction is not None else []
    )
    fig, axes = plt.subplots(1, len(panels), figsize=(4.5 * len(panels), 4), squeeze=False)
    xy = points.detach().cpu()
    for ax, (label, colour) in zip(axes[0], panels, strict=True):
        image = ax.scatter(xy[:, 0], xy[:, 1], c=colour.detach().cpu(), s=6, cmap="viridis")
        ax.set_aspect("equal")
        fig.colorbar(image, ax=ax, shrink=0.8, label=label)
    fig.tight_layout()
    return fig

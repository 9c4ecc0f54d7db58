"""Alpha complex under a vertex filtration (alpha-DTM, learned): gudhi's own intervals, finite differences, the
DTM against brute force, and the learned filtration's start at the DTM."""

from __future__ import annotations

import gudhi
import numpy as np
import pytest
import torch

from framework_plugins.topofisher.filtrations import DTMVertices, LearnedVertices, knn_distances
from framework_plugins.topofisher.persistence import vertex_filtration_diagrams
from framework_plugins.topofisher.summaries import TopologicalSummary
from framework_plugins.topofisher.vectorizations import PersistenceImage


def sorted_finite(a: np.ndarray) -> np.ndarray:
    a = np.asarray(a, dtype=np.float64).reshape(-1, 2)
    a = a[np.isfinite(a[:, 1])]
    return a[np.lexsort((a[:, 1], a[:, 0]))]


def gudhi_reference(points: np.ndarray, f: np.ndarray) -> gudhi.SimplexTree:
    """Independent route: gudhi's alpha complex (its own Delaunay), every simplex re-valued by the formula in
    numpy (vertex f, edge |u - v| + max f, triangle the max over its edges), then gudhi's persistence."""
    tree = gudhi.AlphaComplex(points=points).create_simplex_tree()
    for simplex, _ in list(tree.get_simplices()):
        if len(simplex) == 1:
            value = f[simplex[0]]
        else:
            value = max(
                np.linalg.norm(points[a] - points[b]) + max(f[a], f[b]) for a in simplex for b in simplex if a < b
            )
        tree.assign_filtration(simplex, value)
    tree.make_filtration_non_decreasing()
    tree.compute_persistence()
    return tree


@pytest.mark.parametrize("n", [40, 240])
def test_vertex_filtration_diagrams_equal_gudhi_intervals(n):
    rng = np.random.default_rng(n)
    points = rng.normal(size=(2, n, 2)) * 3
    f = rng.uniform(0, 2, size=(2, n))
    diagrams = vertex_filtration_diagrams(torch.tensor(points), torch.tensor(f), dims=(0, 1), threads=2)
    for i in range(2):
        tree = gudhi_reference(points[i], f[i])
        for k in (0, 1):
            theirs = sorted_finite(tree.persistence_intervals_in_dimension(k))
            ours = sorted_finite(diagrams[k].points[i][diagrams[k].mask[i]].numpy())
            np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=1e-12)
        assert len(sorted_finite(tree.persistence_intervals_in_dimension(1))) > 3


def functional(diagrams) -> torch.Tensor:
    """A smooth functional in which every pair has its own weight."""
    total = 0
    for k, d in enumerate(diagrams):
        w = torch.arange(1, d.points.shape[1] + 1, dtype=d.points.dtype)
        total = total + ((d.points[..., 1] - d.points[..., 0]) ** 2 * w * d.mask).sum() * (k + 1)
        total = total + (torch.sin(3 * d.points[..., 0]) * d.mask).sum()
    return total


def central_difference_error(fn, x: torch.Tensor, entries: int, eps: float = 1e-7) -> float:
    """max over ``entries`` random coordinates j of |fd_j - grad_j| / max(1, |fd_j|), fd the central difference."""
    x = x.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(fn(x), x)
    flat = x.detach().flatten()
    worst = 0.0
    for j in np.random.default_rng(0).choice(flat.numel(), size=min(entries, flat.numel()), replace=False):
        up, down = flat.clone(), flat.clone()
        up[j] += eps
        down[j] -= eps
        fd = float((fn(up.view_as(x)) - fn(down.view_as(x))).detach()) / (2 * eps)
        worst = max(worst, abs(fd - float(grad.flatten()[j])) / max(1.0, abs(fd)))
    return worst


def test_vertex_filtration_gradients_match_finite_differences_in_points_and_values():
    gen = torch.Generator().manual_seed(3)
    points = torch.rand(1, 30, 2, dtype=torch.float64, generator=gen) * 4
    f = torch.rand(1, 30, dtype=torch.float64, generator=gen)
    assert central_difference_error(lambda p: functional(vertex_filtration_diagrams(p, f)), points, entries=25) < 1e-6
    assert central_difference_error(lambda v: functional(vertex_filtration_diagrams(points, v)), f, entries=25) < 1e-6


def test_learned_filtration_gradients_reach_the_mlp_and_match_finite_differences():
    torch.manual_seed(0)
    filtration = LearnedVertices(k=6, hidden=(8,)).double()
    torch.nn.init.normal_(filtration.net[-1].weight, std=0.3)  # away from the zero start, so g matters
    points = torch.rand(2, 25, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(1)) * 4
    weight = filtration.net[0].weight

    def of_weight(w: torch.Tensor) -> torch.Tensor:
        out = torch.func.functional_call(filtration, {"net.0.weight": w}, (points,))
        return functional(vertex_filtration_diagrams(out[..., :2], out[..., 2]))

    assert central_difference_error(of_weight, weight.detach().clone(), entries=20) < 1e-6


def test_dtm_vertices_equal_brute_force_and_learned_filtration_starts_at_the_dtm():
    points = torch.rand(2, 20, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(2)) * 3
    dtm = DTMVertices(k=5)(points)
    for m in range(2):
        x = points[m].numpy()
        for i in range(20):
            sq = np.sort(((x - x[i]) ** 2).sum(-1))[1:6]
            assert dtm[m, i, 2].item() == pytest.approx(np.sqrt(sq.mean()), rel=1e-12)
    torch.testing.assert_close(dtm[..., :2], points)
    torch.testing.assert_close(LearnedVertices(k=5).double()(points), dtm)
    with pytest.raises(ValueError, match="k=20"):
        knn_distances(points, 20)


def test_alpha_vertex_complex_needs_a_vertex_filtration():
    image = PersistenceImage(resolution=(4, 4))
    with pytest.raises(ValueError, match="alpha_vertex"):
        TopologicalSummary(image, complex="alpha_vertex")
    with pytest.raises(ValueError, match="alpha_vertex"):
        TopologicalSummary(image, complex="alpha", filtration=DTMVertices(k=3))
    summary = TopologicalSummary(
        [image, PersistenceImage(resolution=(2, 3))], complex="alpha_vertex", filtration=DTMVertices(k=3)
    )
    assert summary(torch.rand(3, 20, 2)).shape == (3, 16 + 6) and summary.frozen_diagrams

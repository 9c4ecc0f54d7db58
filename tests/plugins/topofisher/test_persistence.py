"""Differentiable persistence: gathered diagrams equal gudhi's own intervals; gradients match finite differences."""

from __future__ import annotations

import gudhi
import numpy as np
import pytest
import torch

from framework_plugins.topofisher.persistence import Diagram, alpha_diagrams, cubical_diagrams, rips_diagrams


def finite_sorted(intervals) -> np.ndarray:
    a = np.asarray(intervals, dtype=np.float64).reshape(-1, 2)
    a = a[np.isfinite(a[:, 1])]
    return a[np.lexsort((a[:, 1], a[:, 0]))]


def ours(diagram, i: int = 0) -> np.ndarray:
    return finite_sorted(diagram.points[i][diagram.mask[i]].detach().numpy())


def gudhi_cubical(image: np.ndarray, periodic: bool):
    """gudhi's own intervals, built from the 2-D array (an independent route from our flat + dimensions one)."""
    if periodic:
        cc = gudhi.PeriodicCubicalComplex(top_dimensional_cells=image, periodic_dimensions=[True, True])
    else:
        cc = gudhi.CubicalComplex(top_dimensional_cells=image)
    cc.compute_persistence()
    return cc


BACKENDS = [(False, "gudhi"), (True, "gudhi"), (False, "cripser")]


def needs(backend: str) -> None:
    if backend == "cripser":
        pytest.importorskip("cripser", reason="optional extra [cripser]")


@pytest.mark.parametrize(("periodic", "backend"), BACKENDS)
@pytest.mark.parametrize("shape", [(12, 12), (9, 14)])
def test_cubical_diagrams_equal_gudhi_intervals(periodic, backend, shape):
    needs(backend)
    rng = np.random.default_rng(1)
    images = rng.standard_normal((3, *shape))
    diagrams = cubical_diagrams(torch.tensor(images), dims=(0, 1), periodic=periodic, threads=2, backend=backend)
    for i, image in enumerate(images):
        cc = gudhi_cubical(image, periodic)
        for k, dim in enumerate((0, 1)):
            np.testing.assert_array_equal(
                ours(diagrams[k], i), finite_sorted(cc.persistence_intervals_in_dimension(dim))
            )


def test_fortran_order_pitfall_of_the_public_periodic_path_is_detected():
    """Building the complex from the 2-D array and gathering cofaces from the C-order flattening (the public
    TopoFisher periodic path) gives a different, wrong diagram; our construction does not."""
    rng = np.random.default_rng(2)
    image = rng.standard_normal((10, 10))
    cc = gudhi_cubical(image, periodic=True)
    wrong = image.ravel()[cc.cofaces_of_persistence_pairs()[0][1]]
    truth = finite_sorted(cc.persistence_intervals_in_dimension(1))
    assert finite_sorted(wrong).shape != truth.shape or not np.allclose(finite_sorted(wrong), truth)
    np.testing.assert_array_equal(ours(cubical_diagrams(torch.tensor(image[None]), periodic=True)[1]), truth)


def test_alpha_and_rips_diagrams_equal_gudhi_intervals():
    rng = np.random.default_rng(3)
    clouds = rng.random((2, 60, 2))
    alpha = alpha_diagrams(torch.tensor(clouds), threads=2)
    rips = rips_diagrams(torch.tensor(clouds), max_edge=0.35, threads=2)
    for i, points in enumerate(clouds):
        at = gudhi.AlphaComplex(points=points).create_simplex_tree()
        at.compute_persistence()
        distances = np.linalg.norm(points[:, None] - points[None], axis=-1)
        rt = gudhi.RipsComplex(distance_matrix=distances, max_edge_length=0.35).create_simplex_tree(max_dimension=2)
        rt.compute_persistence()
        for k in (0, 1):
            np.testing.assert_allclose(
                ours(alpha[k], i), finite_sorted(at.persistence_intervals_in_dimension(k)), rtol=1e-10, atol=1e-14
            )
            np.testing.assert_allclose(
                ours(rips[k], i), finite_sorted(rt.persistence_intervals_in_dimension(k)), rtol=1e-12, atol=1e-14
            )
        assert len(ours(alpha[1], i)) > 3 and len(ours(rips[1], i)) > 0


def loss(diagrams) -> torch.Tensor:
    """A smooth, generic functional of the diagrams (weights differ per point, so every pair matters)."""
    total = 0
    for k, d in enumerate(diagrams):
        w = torch.arange(1, d.points.shape[1] + 1, dtype=d.points.dtype)
        total = total + ((d.points[..., 1] - d.points[..., 0]) ** 2 * w * d.mask).sum() * (k + 1)
        total = total + (torch.sin(3 * d.points[..., 0]) * d.mask).sum()
    return total


def check_fd(fn, x: torch.Tensor, eps: float, entries: int = 25) -> None:
    x = x.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(loss(fn(x)), x)
    flat = x.detach().flatten()
    rng = np.random.default_rng(0)
    for j in rng.choice(flat.numel(), size=min(entries, flat.numel()), replace=False):
        up, down = flat.clone(), flat.clone()
        up[j] += eps
        down[j] -= eps
        fd = (loss(fn(up.view_as(x))) - loss(fn(down.view_as(x)))) / (2 * eps)
        assert abs(float(fd) - float(grad.flatten()[j])) < 1e-6 * max(1.0, abs(float(fd))), (j, float(fd))


@pytest.mark.parametrize(("periodic", "backend"), BACKENDS)
def test_cubical_gradients_match_finite_differences(periodic, backend):
    needs(backend)
    x = torch.randn(2, 8, 11, dtype=torch.float64, generator=torch.Generator().manual_seed(4))
    gap = x.flatten().sort().values.diff().min().item()
    check_fd(lambda y: cubical_diagrams(y, periodic=periodic, backend=backend), x, eps=gap / 10)


def test_cripser_diagrams_equal_gudhi_on_3d_volumes_and_refuse_periodic():
    needs("cripser")
    volumes = torch.tensor(np.random.default_rng(7).standard_normal((2, 6, 7, 5)))
    for ours_, theirs in zip(
        cubical_diagrams(volumes, (0, 1, 2), backend="cripser"),
        cubical_diagrams(volumes, (0, 1, 2), backend="gudhi"),
        strict=True,
    ):
        for i in range(2):
            np.testing.assert_array_equal(ours(ours_, i), ours(theirs, i))
    with pytest.raises(ValueError, match="periodic"):
        cubical_diagrams(volumes, periodic=True, backend="cripser")


def test_cubical_gradient_is_one_hot_at_critical_pixels():
    x = torch.randn(1, 10, 10, dtype=torch.float64, generator=torch.Generator().manual_seed(5), requires_grad=True)
    (h1,) = cubical_diagrams(x, dims=(1,), periodic=True)
    (grad,) = torch.autograd.grad(h1.points[..., 1].sum(), x)
    cc = gudhi_cubical(x.detach()[0].numpy(), periodic=True)
    deaths = np.sort(finite_sorted(cc.persistence_intervals_in_dimension(1))[:, 1])
    critical = x.detach().flatten()[grad.flatten() != 0].numpy()
    np.testing.assert_array_equal(np.sort(critical), np.unique(deaths))
    assert set(grad.flatten().unique().tolist()) <= {0.0, 1.0, 2.0, 3.0, 4.0}


def test_point_cloud_gradients_match_finite_differences():
    points = torch.rand(1, 25, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(6))
    check_fd(alpha_diagrams, points, eps=1e-7)
    check_fd(lambda p: rips_diagrams(p, max_edge=0.5), points, eps=1e-7)


def test_padded_diagrams_round_trip_through_nan_storage():
    images = torch.tensor(np.random.default_rng(4).standard_normal((5, 10, 10)))
    for diagram in cubical_diagrams(images, dims=(0, 1), periodic=True):
        stored = diagram.padded()
        assert stored[~diagram.mask].isnan().all() and not stored[diagram.mask].isnan().any()
        wider = torch.cat([stored, torch.full((5, 3, 2), float("nan"), dtype=stored.dtype)], dim=1)
        back = Diagram.from_padded(wider)
        for i in range(5):
            np.testing.assert_array_equal(ours(back, i), ours(diagram, i))

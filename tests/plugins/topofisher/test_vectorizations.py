"""Torch vectorizations against gudhi.representations and direct numpy formulas; padding contributes nothing."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from gudhi.representations import Landscape as GudhiLandscape
from gudhi.representations import PersistenceImage as GudhiImage
from gudhi.representations import Silhouette as GudhiSilhouette

from framework_plugins.topofisher.persistence import Diagram
from framework_plugins.topofisher.vectorizations import BettiCurve, Landscape, PersistenceImage, PersLay, Silhouette


def random_diagrams(m: int = 3, p: int = 12, seed: int = 0) -> tuple[Diagram, list[np.ndarray]]:
    """A padded batch with different numbers of points per item, and the unpadded numpy diagrams."""
    rng = np.random.default_rng(seed)
    arrays = []
    for i in range(m):
        birth = rng.uniform(-2, 1, p - 3 * i)
        arrays.append(np.stack([birth, birth + rng.exponential(0.8, p - 3 * i)], axis=1))
    points = torch.zeros(m, p, 2, dtype=torch.float64)
    mask = torch.zeros(m, p, dtype=torch.bool)
    for i, a in enumerate(arrays):
        points[i, : len(a)] = torch.from_numpy(a)
        points[i, len(a) :] = 5.0  # garbage in the padding must be ignored
        mask[i, : len(a)] = True
    return Diagram(points, mask), arrays


def test_persistence_image_equals_gudhi():
    diagram, arrays = random_diagrams()
    ours = PersistenceImage(
        bandwidth=0.3, resolution=(8, 6), birth_range=(-2, 1), persistence_range=(0, 3), weight_power=1.0
    )(diagram)
    ref = GudhiImage(bandwidth=0.3, weight=lambda x: x[1], resolution=[8, 6], im_range=[-2, 1, 0, 3])
    np.testing.assert_allclose(ours.numpy(), ref.fit_transform(arrays), rtol=1e-10, atol=1e-14)


def test_landscape_and_silhouette_equal_gudhi():
    diagram, arrays = random_diagrams(seed=1)
    ref = GudhiLandscape(num_landscapes=4, resolution=20, sample_range=[-2, 3], keep_endpoints=True)
    ref.fit(arrays)
    np.testing.assert_allclose(
        Landscape(4, 20, (-2, 3))(diagram).numpy() * np.sqrt(2), ref.transform(arrays), rtol=1e-10, atol=1e-12
    )
    sil = GudhiSilhouette(weight=lambda x: (x[1] - x[0]) ** 2, resolution=20, sample_range=[-2, 3], keep_endpoints=True)
    sil.fit(arrays)
    np.testing.assert_allclose(
        Silhouette(2.0, 20, (-2, 3))(diagram).numpy() * np.sqrt(2), sil.transform(arrays), rtol=1e-10, atol=1e-12
    )


def test_betti_curve_equals_direct_count_and_smooth_version_converges():
    diagram, arrays = random_diagrams(seed=2)
    grid = np.linspace(-2, 3, 25)
    direct = np.stack([((a[:, 0, None] <= grid) & (grid < a[:, 1, None])).sum(0) for a in arrays])
    np.testing.assert_array_equal(BettiCurve(25, (-2, 3), temperature=0)(diagram).numpy(), direct)
    smooth = BettiCurve(25, (-2, 3), temperature=1e-4)(diagram).numpy()
    assert np.abs(smooth - direct).mean() < 0.02


def test_perslay_equals_its_formula_and_ignores_padding():
    torch.manual_seed(0)
    layer = PersLay(out_features=5, hidden=7).double().eval()
    diagram, arrays = random_diagrams(seed=3)
    out = layer(diagram)
    for i, a in enumerate(arrays):
        b, d = torch.from_numpy(a).unbind(-1)
        pers = d - b
        phi = layer.phi(torch.stack([b, d, pers, torch.log(pers + 1e-6)], -1))
        gate = torch.sigmoid(layer.gate(torch.from_numpy(a)).squeeze(-1))
        torch.testing.assert_close(out[i], (pers * gate) @ phi)


@pytest.mark.parametrize("module", [PersistenceImage(), Landscape(), Silhouette(), BettiCurve(), PersLay()])
def test_vectorizations_are_differentiable(module):
    diagram, _ = random_diagrams(seed=4)
    points = diagram.points.float().requires_grad_(True)
    module.float()(Diagram(points, diagram.mask)).sum().backward()
    assert points.grad[diagram.mask].abs().sum() > 0
    assert points.grad[~diagram.mask].abs().sum() == 0

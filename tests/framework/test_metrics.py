"""Distribution distances against scipy, POT and brute force."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from scipy.stats import energy_distance as scipy_energy

from framework.metrics import energy_distance, mmd_rbf, sliced_w2, w2_empirical


def test_w2_matches_brute_force_over_permutations():
    gen = torch.Generator().manual_seed(0)
    x, y = torch.randn(6, 3, generator=gen, dtype=torch.float64), torch.randn(6, 3, generator=gen, dtype=torch.float64)
    cost = torch.cdist(x, y).pow(2).numpy()
    best = min(np.mean([cost[i, p[i]] for i in range(6)]) for p in itertools.permutations(range(6)))
    assert w2_empirical(x, y).item() == pytest.approx(np.sqrt(best), rel=1e-12)


def test_w2_matches_pot():
    ot = pytest.importorskip("ot")
    gen = torch.Generator().manual_seed(1)
    x, y = torch.randn(200, 2, generator=gen, dtype=torch.float64), torch.randn(200, 2, generator=gen).double() + 1
    expected = np.sqrt(ot.emd2(np.full(200, 1 / 200), np.full(200, 1 / 200), ot.dist(x.numpy(), y.numpy())))
    assert w2_empirical(x, y).item() == pytest.approx(expected, rel=1e-9)


def test_sliced_w2_in_one_dimension_is_exact_w2():
    gen = torch.Generator().manual_seed(2)
    x, y = torch.randn(300, 1, generator=gen, dtype=torch.float64), 2 * torch.randn(300, 1, generator=gen).double()
    assert sliced_w2(x, y, n_projections=4).item() == pytest.approx(w2_empirical(x, y).item(), rel=1e-12)


def test_energy_distance_matches_scipy_in_one_dimension():
    gen = torch.Generator().manual_seed(3)
    x, y = torch.randn(150, 1, generator=gen, dtype=torch.float64), torch.rand(170, 1, generator=gen).double()
    assert energy_distance(x, y).item() == pytest.approx(scipy_energy(x[:, 0], y[:, 0]), rel=1e-10)


def test_mmd_matches_a_numpy_double_loop():
    gen = torch.Generator().manual_seed(4)
    x, y = torch.randn(12, 2, generator=gen, dtype=torch.float64), torch.randn(9, 2, generator=gen).double() + 0.5
    bandwidths = (0.7, 1.9)

    def k(a, b):
        return sum(np.exp(-np.sum((a - b) ** 2) / (2 * s**2)) for s in bandwidths)

    xn, yn = x.numpy(), y.numpy()
    kxx = np.mean([k(xn[i], xn[j]) for i in range(12) for j in range(12) if i != j])
    kyy = np.mean([k(yn[i], yn[j]) for i in range(9) for j in range(9) if i != j])
    kxy = np.mean([k(a, b) for a in xn for b in yn])
    assert mmd_rbf(x, y, bandwidths).item() == pytest.approx(kxx + kyy - 2 * kxy, rel=1e-10)


def test_distances_separate_different_distributions():
    gen = torch.Generator().manual_seed(5)
    x, same, shifted = (torch.randn(400, 2, generator=gen) for _ in range(3))
    shifted = shifted + 1.0
    for fn in (w2_empirical, sliced_w2, energy_distance, mmd_rbf):
        assert fn(x, shifted) > 2 * fn(x, same), fn.__name__

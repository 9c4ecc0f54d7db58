"""Representation-geometry probes against the n x n formulas, invariances and brute-force neighbourhoods."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from framework_plugins.graph_sparsify.geometry import (
    centroid_shift,
    covariance_change,
    geometry_report,
    gram_relative_error,
    knn_jaccard,
    linear_cka,
)


def pair(n: int = 50, d: int = 6, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=gen, dtype=torch.float64)
    return x, x + 0.3 * torch.randn(n, d, generator=gen, dtype=torch.float64)


def test_cka_matches_hsic_formula_with_n_by_n_matrices():
    x, y = pair()
    n = len(x)
    h = np.eye(n) - 1 / n
    k, l_ = h @ (x @ x.T).numpy() @ h, h @ (y @ y.T).numpy() @ h
    expected = np.sum(k * l_) / np.sqrt(np.sum(k * k) * np.sum(l_ * l_))  # HSIC(K, L) / sqrt(HSIC(K,K) HSIC(L,L))
    assert linear_cka(x, y).item() == pytest.approx(expected, rel=1e-12)


def test_cka_identity_orthogonal_and_scale_invariance():
    x, y = pair(d=5)
    assert linear_cka(x, x).item() == pytest.approx(1.0, rel=1e-12)
    q, _ = torch.linalg.qr(torch.randn(5, 5, generator=torch.Generator().manual_seed(1), dtype=torch.float64))
    assert linear_cka(x, 3.7 * x @ q).item() == pytest.approx(1.0, rel=1e-12)
    assert linear_cka(x, 2.0 * y @ q).item() == pytest.approx(linear_cka(x, y).item(), rel=1e-12)
    assert linear_cka(x, y).item() < 0.99


def test_gram_error_matches_n_by_n_formula():
    x, y = pair()
    gx, gy = x @ x.T, y @ y.T
    assert gram_relative_error(x, y).item() == pytest.approx(((gy - gx).norm() / gx.norm()).item(), rel=1e-10)
    assert gram_relative_error(x, x).item() == pytest.approx(0.0, abs=1e-7)


def test_knn_jaccard_brute_force():
    x, y = pair(n=40, d=3, seed=2)
    k = 5

    def sets(z: torch.Tensor) -> list[set[int]]:
        d = torch.cdist(z, z).numpy()
        np.fill_diagonal(d, np.inf)
        return [set(np.argsort(row)[:k]) for row in d]

    a, b = sets(x), sets(y)
    expected = np.mean([len(s & t) / len(s | t) for s, t in zip(a, b, strict=True)])
    assert knn_jaccard(x, y, k).item() == pytest.approx(expected, rel=1e-12)
    assert knn_jaccard(x, 2 * x, k).item() == 1.0


def test_centroid_shift_and_covariance_change_closed_forms():
    x, _ = pair(n=60, d=4)
    labels = torch.arange(60) % 3
    shift = torch.tensor([1.0, 0.0, 0.0, 0.0], dtype=torch.float64)
    mu = torch.stack([x[labels == c].mean(0) for c in range(3)])
    assert centroid_shift(x, x + shift, labels).item() == pytest.approx(1.0 / mu.norm(dim=1).mean().item())
    assert covariance_change(x, x + shift).item() == pytest.approx(0.0, abs=1e-12)
    assert covariance_change(x, 2 * x).item() == pytest.approx(3.0)  # Cov(2x) = 4 Cov(x)
    report = geometry_report(x, x + shift, labels, k=5)
    assert report["knn_jaccard"] == 1.0 and report["cka"] == pytest.approx(1.0)

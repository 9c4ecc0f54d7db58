"""Filtrations and fixed summaries against direct numpy / scipy computations."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.ndimage import gaussian_filter

from framework_plugins.topofisher.filtrations import CNNFiltration, DistanceToMeasure, GaussianSmoothing
from framework_plugins.topofisher.summaries import IMNNNetwork, PeakCounts, PowerSpectrum, TopologicalSummary
from framework_plugins.topofisher.vectorizations import PersistenceImage, PersLay


def test_gaussian_smoothing_equals_scipy_periodic_filter():
    x = torch.randn(2, 1, 32, 24, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    ours = GaussianSmoothing(scale=2.0).double()(x).detach().numpy()
    ref = np.stack([gaussian_filter(img[0], sigma=2.0, mode="wrap", truncate=8.0) for img in x.numpy()])[:, None]
    assert np.abs(ours - ref).max() < 2e-3 * np.abs(ref).max()


def test_cnn_filtration_starts_as_identity():
    x = torch.randn(3, 2, 16, 16)
    torch.testing.assert_close(CNNFiltration(in_channels=2)(x), x)


def test_distance_to_measure_equals_brute_force():
    points = torch.rand(2, 30, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(1)) * 4 - 2
    dtm = DistanceToMeasure(resolution=6, extent=2.0, k=4)(points)
    axis = np.linspace(-2, 2, 6)
    for m in range(2):
        for i, gx in enumerate(axis):
            for j, gy in enumerate(axis):
                sq = np.sort(((points[m].numpy() - [gx, gy]) ** 2).sum(-1))[:4]
                assert dtm[m, 0, i, j].item() == pytest.approx(np.sqrt(sq.mean()), rel=1e-10)


def test_power_spectrum_equals_numpy_binning():
    n, bins = 16, 5
    x = torch.randn(3, n, n, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    ours = PowerSpectrum(n, bins)(x).numpy()
    freq = 2 * np.pi * np.fft.fftfreq(n)
    k = np.sqrt(freq[:, None] ** 2 + freq[None, :] ** 2).ravel()
    edges = np.logspace(np.log10(2 * np.pi / n), np.log10(k.max() * 1.0001), bins + 1)
    power = np.abs(np.fft.fft2(x.numpy())).reshape(3, -1) ** 2 / n**2
    for b in range(bins):
        sel = (k >= edges[b]) & (k < edges[b + 1]) & (k > 0)
        np.testing.assert_allclose(ours[:, b], np.log(power[:, sel].mean(1)), rtol=1e-5)


def test_peak_counts_equal_brute_force():
    x = torch.rand(2, 1, 12, 12, dtype=torch.float64, generator=torch.Generator().manual_seed(3)) * 0.25 - 0.05
    ours = PeakCounts(bins=5, value_range=(-0.05, 0.2))(x).numpy()
    edges = np.linspace(-0.05, 0.2, 6)
    for m in range(2):
        img = x[m, 0].numpy()
        counts = np.zeros(5)
        for i in range(12):
            for j in range(12):
                neighbours = [
                    img[(i + a) % 12, (j + b) % 12] for a in (-1, 0, 1) for b in (-1, 0, 1) if (a, b) != (0, 0)
                ]
                if img[i, j] > max(neighbours):
                    counts[min(np.searchsorted(edges, img[i, j], side="right") - 1, 4)] += 1
        np.testing.assert_allclose(ours[m], np.log1p(counts))


def test_topological_summary_shapes_and_channels():
    summary = TopologicalSummary(PersistenceImage(resolution=(4, 3)), complex="periodic_cubical", channels=2)
    out = summary(torch.randn(5, 2, 12, 12))
    assert out.shape == (5, summary.out_features) == (5, 2 * 2 * 12)
    cloud = TopologicalSummary(PersistenceImage(resolution=(4, 3)), complex="alpha")
    assert cloud(torch.rand(2, 30, 2)).shape == (2, 24)
    assert IMNNNetwork(in_channels=1, out_features=2)(torch.randn(4, 32, 32)).shape == (4, 2)
    with pytest.raises(ValueError, match="complex"):
        TopologicalSummary(PersistenceImage(), complex="ripser")


def test_cripser_backend_is_refused_for_periodic_complexes_and_point_clouds():
    for complex_ in ("periodic_cubical", "alpha"):
        with pytest.raises(ValueError, match=f"backend='cripser' with complex='{complex_}'"):
            TopologicalSummary(PersLay(), complex=complex_, backend="cripser")

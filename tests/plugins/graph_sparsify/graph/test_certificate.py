"""The eps certificate against dense generalized eigenvalues computed independently (whitening by L's range)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from framework_plugins.graph_sparsify.graph import (
    effective_resistance_sparsify,
    laplacian,
    spectral_eps,
    uniform_sparsify,
)


def whitened_spectrum(a: sp.csr_array, h: sp.csr_array) -> np.ndarray:
    """Eigenvalues of S^{-1/2} U^T L_H U S^{-1/2}, U S U^T = L restricted to eigenvalues > 1e-9 (range of L)."""
    s, vecs = np.linalg.eigh(laplacian(a).toarray())
    keep = s > 1e-9 * s.max()
    basis = vecs[:, keep] / np.sqrt(s[keep])
    return np.linalg.eigvalsh(basis.T @ laplacian(h).toarray() @ basis)


@pytest.mark.parametrize("graph", ["dense_sbm", "disconnected"])
def test_dense_certificate_matches_whitened_eigenvalues(graph, request):
    a = request.getfixturevalue(graph)
    h = effective_resistance_sparsify(a, q=20 * a.shape[0], seed=0).adjacency
    cert = spectral_eps(a, h, method="dense")
    lam = whitened_spectrum(a, h)
    if cert.lambda_min > 0:  # H kept every component of G connected
        assert cert.lambda_min == pytest.approx(lam[0], rel=1e-8)
    assert cert.lambda_max == pytest.approx(lam[-1], rel=1e-8)
    assert cert.eps == pytest.approx(max(cert.lambda_max - 1, 1 - cert.lambda_min), rel=1e-12)


def test_lobpcg_certificate_agrees_with_dense(dense_sbm):
    h = effective_resistance_sparsify(dense_sbm, eps=0.6, seed=1).adjacency
    dense, lob = spectral_eps(dense_sbm, h, method="dense"), spectral_eps(dense_sbm, h, method="lobpcg")
    assert lob.lambda_max == pytest.approx(dense.lambda_max, rel=1e-4)
    assert lob.lambda_min == pytest.approx(dense.lambda_min, rel=1e-4)


def test_identical_graph_has_zero_eps_and_scaled_graph_has_exact_eps(dense_sbm):
    same = spectral_eps(dense_sbm, dense_sbm.copy())
    assert same.eps == 0.0 and same.method == "identical"
    nearly = dense_sbm.copy()
    nearly.data[:2] *= 1 + 1e-9  # one edge (both directions) reweighted: the eigensolver runs
    assert spectral_eps(dense_sbm, nearly).method == "dense"
    cert = spectral_eps(dense_sbm, 1.3 * dense_sbm)
    assert cert.lambda_min == pytest.approx(1.3) and cert.eps == pytest.approx(0.3)


def test_disconnecting_sparsifier_reports_eps_at_least_one(dense_sbm):
    h = uniform_sparsify(dense_sbm, 150, seed=0).adjacency  # far too few edges for 300 nodes: disconnected
    cert = spectral_eps(dense_sbm, h)
    assert cert.lambda_min == 0 and cert.eps >= 1 and cert.kappa == float("inf")


def test_node_count_mismatch_is_an_error(dense_sbm):
    with pytest.raises(ValueError, match="nodes"):
        spectral_eps(dense_sbm, dense_sbm[:10, :10])

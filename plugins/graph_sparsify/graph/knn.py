"""k-nearest-neighbour graphs over feature vectors with self-tuning Gaussian weights."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp


def knn_graph(features: np.ndarray, k: int) -> sp.csr_array:
    """Symmetric kNN adjacency (n, n) over rows of ``features`` (n, d): edge (i, j) if j is among the k nearest
    neighbours of i or i among those of j, weight exp(-d_ij^2 / (sigma_i sigma_j)) with sigma_i the distance to
    the k-th neighbour of i (Zelnik-Manor & Perona 2004, self-tuning spectral clustering, Eq. 2)."""
    from sklearn.neighbors import NearestNeighbors

    n = len(features)
    if not 0 < k < n:
        raise ValueError(f"knn k={k} must be in [1, n - 1 = {n - 1}].")
    dist, idx = NearestNeighbors(n_neighbors=k + 1).fit(features).kneighbors(features)
    dist, idx = dist[:, 1:], idx[:, 1:]  # drop self
    sigma = np.maximum(dist[:, -1], 1e-12)
    rows = np.repeat(np.arange(n), k)
    w = np.exp(-(dist.ravel() ** 2) / (sigma[rows] * sigma[idx.ravel()]))
    a = sp.csr_array((w, (rows, idx.ravel())), shape=(n, n))
    a = a.maximum(a.T)
    a.setdiag(0)
    a.eliminate_zeros()
    a.sort_indices()
    return sp.csr_array(a)

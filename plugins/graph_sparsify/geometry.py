"""Representation-geometry probes between two representations of the same n points, X (n, d) and Y (n, d'):
Gram-matrix error, linear CKA, kNN-neighbourhood overlap, class-centroid shift and covariance change.

Gram and CKA use d x d products only (O(n d^2) time, no n x n matrix).
"""

from __future__ import annotations

import torch


def _f64(x: torch.Tensor) -> torch.Tensor:
    return x.detach().double()


def relative_error(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """||Y - X||_F / ||X||_F (same shapes)."""
    x, y = _f64(x), _f64(y)
    return (y - x).norm() / x.norm()


def gram_relative_error(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """||Y Y^T - X X^T||_F / ||X X^T||_F via ||A A^T||_F^2 = ||A^T A||_F^2 and <XX^T, YY^T> = ||X^T Y||_F^2:
    ||YY^T - XX^T||^2 = ||Y^T Y||^2 + ||X^T X||^2 - 2 ||X^T Y||^2."""
    x, y = _f64(x), _f64(y)
    xx, yy, xy = (x.T @ x).square().sum(), (y.T @ y).square().sum(), (x.T @ y).square().sum()
    return (yy + xx - 2 * xy).clamp_min(0).sqrt() / xx.sqrt()


def linear_cka(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Linear CKA (Kornblith et al., arXiv:1905.00414, Eq. 5 with linear kernels) of column-centred X, Y:
    ||Y_c^T X_c||_F^2 / (||X_c^T X_c||_F ||Y_c^T Y_c||_F). In [0, 1]; invariant to orthogonal maps and scaling."""
    x, y = _f64(x), _f64(y)
    x, y = x - x.mean(0), y - y.mean(0)
    return (y.T @ x).square().sum() / ((x.T @ x).norm() * (y.T @ y).norm())


def knn_indices(x: torch.Tensor, k: int, chunk: int = 2048) -> torch.Tensor:
    """Indices (n, k) of the k nearest neighbours of each row (Euclidean, self excluded), in chunks of rows."""
    x = _f64(x)
    if not 0 < k < len(x):
        raise ValueError(f"k={k} neighbours must be in [1, n - 1 = {len(x) - 1}].")
    out = []
    for start in range(0, len(x), chunk):
        d = torch.cdist(x[start : start + chunk], x)
        d[torch.arange(d.shape[0]), torch.arange(start, start + d.shape[0])] = float("inf")
        out.append(d.topk(k, largest=False).indices)
    return torch.cat(out)


def knn_jaccard(x: torch.Tensor, y: torch.Tensor, k: int = 10) -> torch.Tensor:
    """Mean over points of Jaccard(N_k^X(i), N_k^Y(i)) = |A & B| / |A | B| of the k-NN sets in X and in Y."""
    a, b = knn_indices(x, k), knn_indices(y, k)
    inter = (a.unsqueeze(2) == b.unsqueeze(1)).any(2).sum(1).double()
    return (inter / (2 * k - inter)).mean()


def class_centroids(x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Class means (C, d) for labels 0..C-1 (C = max label + 1)."""
    x = _f64(x)
    c = int(labels.max()) + 1
    sums = torch.zeros(c, x.shape[1], dtype=x.dtype, device=x.device).index_add_(0, labels, x)
    counts = torch.bincount(labels, minlength=c).clamp_min(1).to(x)
    return sums / counts[:, None]


def centroid_shift(x: torch.Tensor, y: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """max_c ||mu_c(Y) - mu_c(X)|| / mean_c ||mu_c(X)|| (same feature space)."""
    mx, my = class_centroids(x, labels), class_centroids(y, labels)
    return (my - mx).norm(dim=1).max() / mx.norm(dim=1).mean()


def covariance_change(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """||Cov(Y) - Cov(X)||_F / ||Cov(X)||_F with Cov(X) = X_c^T X_c / (n - 1) (same feature space)."""
    x, y = _f64(x), _f64(y)
    cx, cy = torch.cov(x.T), torch.cov(y.T)
    return (cy - cx).norm() / cx.norm()


def geometry_report(
    x: torch.Tensor, y: torch.Tensor, labels: torch.Tensor | None = None, k: int = 10
) -> dict[str, float]:
    """All probes of Y against the reference X: ``rel_error``, ``gram_rel``, ``cka``, ``knn_jaccard``,
    ``cov_change`` and, with labels, ``centroid_shift``."""
    report = {
        "rel_error": relative_error(x, y),
        "gram_rel": gram_relative_error(x, y),
        "cka": linear_cka(x, y),
        "knn_jaccard": knn_jaccard(x, y, k),
        "cov_change": covariance_change(x, y),
    }
    if labels is not None:
        report["centroid_shift"] = centroid_shift(x, y, labels)
    return {key: float(value) for key, value in report.items()}

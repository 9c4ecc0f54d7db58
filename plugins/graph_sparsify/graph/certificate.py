"""The achieved epsilon of a sparsifier: generalized eigenvalues of (L_H, L) on the complement of the nullspace.

H is an eps-spectral sparsifier of G when (1 - eps) x^T L x <= x^T L_H x <= (1 + eps) x^T L x for all x
(Spielman & Srivastava, arXiv:0803.0929, Eq. 1), i.e. eps_hat = max(lambda_max - 1, 1 - lambda_min) over the
generalized eigenvalues lambda of L_H v = lambda L v on range(L).

Grounding: deleting one vertex per connected component of G from both Laplacians leaves L^g SPD and keeps exactly
the nontrivial spectrum (the Rayleigh quotient is invariant to adding constants on a component).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import scipy.linalg
import scipy.sparse as sp
from threadpoolctl import threadpool_limits

from framework_plugins.graph_sparsify.graph.laplacian import GraphLike, adjacency, components, laplacian

DENSE_MAX_NODES = 3000


@dataclass
class EpsCertificate:
    """eps_hat = max(lambda_max - 1, 1 - lambda_min), kappa = lambda_max / lambda_min (inf if H disconnects a
    component of G, where lambda_min = 0 and eps_hat >= 1), and the method used (``dense``, ``lobpcg``,
    ``identical`` or ``trivial``)."""

    eps: float
    lambda_min: float
    lambda_max: float
    kappa: float
    method: str


def _grounded(lap: sp.csr_array, lap_h: sp.csr_array, label: np.ndarray) -> tuple[sp.csr_array, sp.csr_array]:
    _, first = np.unique(label, return_index=True)
    keep = np.setdiff1d(np.arange(lap.shape[0]), first)
    return lap[keep][:, keep], lap_h[keep][:, keep]


def _lobpcg_max(a: sp.csr_array, b: sp.csr_array, tol: float, seed: int) -> float:
    """Largest lambda of A v = lambda B v (B SPD) by LOBPCG with a smoothed-aggregation AMG preconditioner."""
    import pyamg
    from scipy.sparse.linalg import lobpcg

    precond = pyamg.smoothed_aggregation_solver(sp.csr_matrix(b)).aspreconditioner()
    x0 = np.random.default_rng(seed).standard_normal((a.shape[0], 4))
    vals = lobpcg(a, x0, B=b, M=precond, largest=True, tol=tol, maxiter=500)[0]
    return float(np.max(vals))


def spectral_eps(
    g: GraphLike, h: GraphLike, method: Literal["auto", "dense", "lobpcg"] = "auto", tol: float = 1e-6, seed: int = 0
) -> EpsCertificate:
    """Measured eps of H as a spectral approximation of G (both on the same n nodes).

    ``dense``: ``scipy.linalg.eigh(L_H^g, L^g)`` (all eigenvalues; up to a few thousand nodes). ``lobpcg``:
    lambda_max of (L_H^g, L^g) and lambda_min = 1 / lambda_max(L^g, L_H^g) by AMG-preconditioned LOBPCG (large n).
    ``auto``: dense up to 3,000 nodes. H identical to G (same edges and weights): eps_hat = 0 exactly, method
    ``identical``.
    """
    a, ah = adjacency(g), adjacency(h)
    if a.shape != ah.shape:
        raise ValueError(f"G has {a.shape[0]} nodes but H has {ah.shape[0]}; sparsifiers keep every node.")
    if (a != ah).nnz == 0:  # H = G: every generalized eigenvalue is exactly 1
        return EpsCertificate(0.0, 1.0, 1.0, 1.0, "identical")
    n_comp, label = components(a)
    lg, lhg = _grounded(laplacian(a), laplacian(ah), label)
    if lg.shape[0] == 0:
        return EpsCertificate(0.0, 1.0, 1.0, 1.0, "trivial")
    split = components(ah)[0] > n_comp
    if method == "auto":
        method = "dense" if a.shape[0] <= DENSE_MAX_NODES else "lobpcg"
    with threadpool_limits(1):
        if method == "dense":
            vals = scipy.linalg.eigh(lhg.toarray(), lg.toarray(), eigvals_only=True)
            lo, hi = (0.0 if split else float(vals[0])), float(vals[-1])
        elif method == "lobpcg":
            hi = _lobpcg_max(lhg, lg, tol, seed)
            lo = 0.0 if split else 1.0 / _lobpcg_max(lg, lhg, tol, seed)
        else:
            raise ValueError(f"certificate method={method!r} is unknown; choose 'auto', 'dense' or 'lobpcg'.")
    lo = max(lo, 0.0)
    return EpsCertificate(max(hi - 1.0, 1.0 - lo), lo, hi, hi / lo if lo > 0 else float("inf"), method)

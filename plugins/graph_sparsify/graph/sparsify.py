"""Spectral sparsification by effective-resistance sampling (Spielman & Srivastava, arXiv:0803.0929, Alg. 1) and
two baselines at an equal edge budget: uniform edge sampling and k-neighbour pruning.

All three take a torch_geometric ``Data`` or a scipy sparse adjacency and return the same type.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
import scipy.sparse as sp

from framework_plugins.graph_sparsify.graph.laplacian import GraphLike, adjacency, edge_list, from_edges, like
from framework_plugins.graph_sparsify.graph.resistance import approx_resistances, exact_resistances

ResistanceMethod = Literal["exact", "approx", "auto"]
EXACT_MAX_NODES = 3000


@dataclass
class Sparsified:
    """A sparsifier H of G: ``graph`` (type of the input), ``adjacency`` (CSR), the number of samples ``q``
    (0 for the baselines), ``kept_edges`` (distinct undirected edges of H) and ``kept_fraction`` = kept / m."""

    graph: GraphLike
    adjacency: sp.csr_array
    q: int
    kept_edges: int
    kept_fraction: float


def resistances(a: sp.csr_array, method: ResistanceMethod = "auto", jl_k: int = 64, seed: int = 0) -> np.ndarray:
    """R_e of the edges of A: ``exact`` (:func:`exact_resistances`), ``approx`` (JL, ``jl_k`` solves) or ``auto``
    (exact up to 3,000 nodes)."""
    if method == "auto":
        method = "exact" if a.shape[0] <= EXACT_MAX_NODES else "approx"
    if method == "exact":
        return exact_resistances(a)
    if method == "approx":
        return approx_resistances(a, k=jl_k, seed=seed)
    raise ValueError(f"resistance method={method!r} is unknown; choose 'exact', 'approx' or 'auto'.")


def samples_for_eps(n: int, eps: float, oversampling: float = 4.0) -> int:
    """q = ceil(C n ln n / eps^2). SS08 prove C = 9 c^2 for an unspecified c; C = 4 (Laplacians.jl's constant)
    gives a measured eps below the target on dense graphs, C = 1 gives about 1.2x the target."""
    if not eps > 0:
        raise ValueError(f"eps={eps} must be > 0.")
    return math.ceil(oversampling * n * math.log(n) / eps**2)


def expected_distinct(p: np.ndarray, q: int) -> float:
    """E[#distinct edges] after q draws with replacement from p: sum_e 1 - (1 - p_e)^q."""
    return float(np.sum(-np.expm1(q * np.log1p(-np.minimum(p, 1 - 1e-16)))))


def samples_for_budget(p: np.ndarray, budget: int) -> int:
    """Smallest q with expected distinct edges >= ``budget`` (bisection; the expectation increases with q)."""
    if not 0 < budget <= len(p):
        raise ValueError(f"edge budget={budget} must be in [1, {len(p)}] (the number of edges).")
    lo, hi = 1, 1
    while expected_distinct(p, hi) < budget:
        hi *= 2
    while lo < hi:
        mid = (lo + hi) // 2
        lo, hi = (mid + 1, hi) if expected_distinct(p, mid) < budget else (lo, mid)
    return lo


def effective_resistance_sparsify(
    graph: GraphLike,
    eps: float | None = None,
    budget: int | None = None,
    q: int | None = None,
    seed: int = 0,
    method: ResistanceMethod = "auto",
    jl_k: int = 64,
    oversampling: float = 4.0,
    r: np.ndarray | None = None,
    scheme: Literal["replacement", "independent"] = "replacement",
) -> Sparsified:
    """Spielman-Srivastava sampling: p_e = w_e R_e / sum_f w_f R_f (sum = n - #components, Foster).

    ``replacement`` (SS08, Alg. 1): q draws with replacement, sampled edge weight w_e c_e / (q p_e) with c_e its
    count. ``independent`` (as Laplacians.jl's ``sparsify``): keep each edge independently with probability
    pi_e = min(1, q p_e) (same expected number of samples), weight w_e / pi_e; lower variance, and with a budget
    the expected number of kept edges is exactly matched. Both give E[L_H] = L.

    Exactly one of ``eps`` (q from :func:`samples_for_eps`), ``budget`` (expected distinct edges, q from
    :func:`samples_for_budget`) or ``q`` must be given. ``r`` overrides the resistances (e.g. reuse across
    calls). Deterministic under ``seed``.
    """
    if sum(x is not None for x in (eps, budget, q)) != 1:
        raise ValueError(f"give exactly one of eps={eps}, budget={budget}, q={q}.")
    a = adjacency(graph)
    u, v, w = edge_list(a)
    if r is None:
        r = resistances(a, method, jl_k, seed)
    score = w * r
    p = score / score.sum()
    if scheme not in ("replacement", "independent"):
        raise ValueError(f"scheme={scheme!r} is unknown; choose 'replacement' or 'independent'.")
    rng = np.random.default_rng(seed)
    if scheme == "independent":
        rho = float(q) if q is not None else None
        if eps is not None:
            rho = float(samples_for_eps(a.shape[0], eps, oversampling))
        elif budget is not None:
            rho = _rate_for_budget(p, budget)
        pi = np.minimum(1.0, rho * p)
        keep = rng.random(len(p)) < pi
        h = from_edges(u[keep], v[keep], w[keep] / pi[keep], a.shape[0])
        return Sparsified(like(h, graph), h, round(rho), int(keep.sum()), float(keep.mean()))
    if eps is not None:
        q = samples_for_eps(a.shape[0], eps, oversampling)
    elif budget is not None:
        q = samples_for_budget(p, budget)
    counts = rng.multinomial(q, p)
    keep = counts > 0
    h = from_edges(u[keep], v[keep], w[keep] * counts[keep] / (q * p[keep]), a.shape[0])
    return Sparsified(like(h, graph), h, int(q), int(keep.sum()), float(keep.mean()))


def _rate_for_budget(p: np.ndarray, budget: int) -> float:
    """rho with sum_e min(1, rho p_e) = budget (bisection on a monotone function)."""
    if not 0 < budget <= len(p):
        raise ValueError(f"edge budget={budget} must be in [1, {len(p)}] (the number of edges).")
    lo, hi = 0.0, 1.0
    while np.minimum(1.0, hi * p).sum() < budget:
        hi *= 2
    for _ in range(100):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if np.minimum(1.0, mid * p).sum() < budget else (lo, mid)
    return hi


def uniform_sparsify(graph: GraphLike, budget: int, seed: int = 0) -> Sparsified:
    """Keep ``budget`` edges drawn uniformly without replacement, reweighted by m / budget (so E[L_H] = L)."""
    a = adjacency(graph)
    u, v, w = edge_list(a)
    if not 0 < budget <= len(u):
        raise ValueError(f"edge budget={budget} must be in [1, {len(u)}] (the number of edges).")
    keep = np.random.default_rng(seed).choice(len(u), size=budget, replace=False)
    h = from_edges(u[keep], v[keep], w[keep] * len(u) / budget, a.shape[0])
    return Sparsified(like(h, graph), h, 0, budget, budget / len(u))


def knn_prune(graph: GraphLike, k: int) -> Sparsified:
    """Keep edge (u, v) if it is among the k heaviest edges of u or of v (weights unchanged; ties by index)."""
    if k < 1:
        raise ValueError(f"knn_prune k={k} must be >= 1.")
    a = adjacency(graph)
    coo = a.tocoo()
    order = np.lexsort((-coo.data, coo.row))  # by row, heaviest first
    rows = coo.row[order]
    rank = np.arange(len(rows)) - np.searchsorted(rows, rows)
    keep = order[rank < k]
    mask = sp.csr_array((np.ones(len(keep)), (coo.row[keep], coo.col[keep])), shape=a.shape)
    mask = (mask + mask.T) > 0
    h = sp.csr_array(a.multiply(mask))
    h.eliminate_zeros()
    h.sort_indices()
    kept = h.nnz // 2
    return Sparsified(like(h, graph), h, 0, kept, kept / max(a.nnz // 2, 1))

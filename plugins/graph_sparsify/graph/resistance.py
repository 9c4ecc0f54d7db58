"""Effective resistances R_e = (e_u - e_v)^T L^+ (e_u - e_v) of the edges of a weighted graph: exact (grounded
Cholesky per connected component) and Johnson-Lindenstrauss approximate (Spielman & Srivastava, arXiv:0803.0929,
Sec. 4) with a vectorised block Jacobi-preconditioned CG for the Laplacian solves.

Foster's theorem, sum_e w_e R_e = n - #components, is the invariant both must satisfy.
"""

from __future__ import annotations

import math

import numpy as np
import scipy.linalg
import scipy.sparse as sp
from threadpoolctl import threadpool_limits

from framework_plugins.graph_sparsify.graph.laplacian import components, edge_list, incidence, laplacian


def exact_resistances(a: sp.csr_array, u: np.ndarray | None = None, v: np.ndarray | None = None) -> np.ndarray:
    """Exact R_uv for the pairs (u, v) (default: the edges of A, in :func:`edge_list` order), float64 (m,).

    Per connected component c, ground its first vertex g (delete row and column g of L_c, which leaves an SPD
    matrix), invert it by dense Cholesky and use R_uv = X_uu + X_vv - 2 X_uv with X = (L_c^g)^{-1} padded by a
    zero row/column at g. Pairs in different components get R = inf. Dense: O(n_c^3) per component.
    """
    if u is None or v is None:
        u, v, _ = edge_list(a)
    lap = laplacian(a)
    _, label = components(a)
    inv_diag = np.zeros(a.shape[0])
    cross = np.zeros(len(u))
    same = label[u] == label[v]
    for comp in np.unique(label[u][same]):
        nodes = np.flatnonzero(label == comp)
        local = -np.ones(a.shape[0], dtype=np.int64)
        local[nodes[1:]] = np.arange(len(nodes) - 1)  # nodes[0] is the ground
        lg = lap[nodes[1:]][:, nodes[1:]].toarray()
        x = scipy.linalg.cho_solve(scipy.linalg.cho_factor(lg), np.eye(len(nodes) - 1))
        inv_diag[nodes[1:]] = np.diag(x)
        pick = np.flatnonzero(same & (label[u] == comp))
        iu, iv = local[u[pick]], local[v[pick]]
        ok = (iu >= 0) & (iv >= 0)
        cross[pick[ok]] = x[iu[ok], iv[ok]]
    r = inv_diag[u] + inv_diag[v] - 2 * cross
    r[~same] = np.inf
    return r


def block_pcg(lap: sp.csr_array, rhs: np.ndarray, rtol: float = 1e-3, maxiter: int = 1000) -> tuple[np.ndarray, int]:
    """Solve L X = B for k right-hand sides at once, B (n, k) with columns summing to 0 on each component
    (consistent systems; X is defined up to a constant per component, which cancels in x_u - x_v).

    Conjugate gradients with the Jacobi preconditioner 1/d_i, run column-wise but vectorised as one (n, k) block
    (one sparse mat-mat product per iteration). Stops when every column has ||r|| <= rtol ||b||. Returns X and the
    number of iterations.
    """
    d = lap.diagonal().copy()
    d[d <= 0] = 1.0
    inv_d = (1.0 / d)[:, None]
    x = np.zeros_like(rhs)
    r = rhs.copy()
    z = inv_d * r
    p = z.copy()
    rz = np.einsum("ij,ij->j", r, z)
    target = rtol * np.linalg.norm(rhs, axis=0)
    it = 0
    for it in range(1, maxiter + 1):
        lp = lap @ p
        denom = np.einsum("ij,ij->j", p, lp)
        alpha = np.divide(rz, denom, out=np.zeros_like(rz), where=denom > 0)
        x += alpha * p
        r -= alpha * lp
        if np.all(np.linalg.norm(r, axis=0) <= target):
            break
        z = inv_d * r
        rz_new = np.einsum("ij,ij->j", r, z)
        beta = np.divide(rz_new, rz, out=np.zeros_like(rz), where=rz > 0)
        p = z + beta * p
        rz = rz_new
    return x, it


def jl_dimension(n: int, eps: float) -> int:
    """The JL dimension k = ceil(24 ln n / eps^2) of Spielman & Srivastava (Thm. 2). Median relative error of the
    resulting R_e is about 0.93 / sqrt(k) in practice, so k = 50-100 is the useful range."""
    return math.ceil(24 * math.log(max(n, 2)) / eps**2)


def approx_resistances(
    a: sp.csr_array, k: int = 64, seed: int = 0, rtol: float = 1e-3, maxiter: int = 1000, chunk: int = 16
) -> np.ndarray:
    """JL-approximate R_e for the edges of A (in :func:`edge_list` order), float64 (m,).

    Z = Q W^{1/2} B L^+ with Q (k, m) of i.i.d. +-1/sqrt(k) (SS08, Thm. 2), then R_e ~ ||Z (e_u - e_v)||^2.
    The k solves L z_i = y_i, y_i = B^T W^{1/2} q_i, use :func:`block_pcg` (works on disconnected graphs, since each
    y_i sums to 0 on every component). BLAS is pinned to one thread inside (level-1 BLAS threads make CG 30x
    slower on a busy machine). Q is drawn and used in blocks of ``chunk`` rows (memory O(m chunk + n k)).
    Deterministic under ``seed``.
    """
    if k < 1:
        raise ValueError(f"k={k} JL projections must be >= 1.")
    u, v, w = edge_list(a)
    n = a.shape[0]
    rng = np.random.default_rng(seed)
    bt = incidence(u, v, n).T.tocsr()
    sqrt_w = np.sqrt(w)[:, None] / math.sqrt(k)
    chunks = [range(s, min(s + chunk, k)) for s in range(0, k, chunk)]
    with threadpool_limits(1):
        # y = B^T W^{1/2} Q^T (n, k), built from (m, chunk) slices of Q so that memory stays O(m chunk + n k)
        y = np.concatenate(
            [bt @ (sqrt_w * (2.0 * rng.integers(0, 2, (len(u), len(c)), np.int8) - 1)) for c in chunks], 1
        )
        z, _ = block_pcg(laplacian(a), y, rtol=rtol, maxiter=maxiter)
        r = np.zeros(len(u))
        for c in chunks:
            diff = z[u, c.start : c.stop] - z[v, c.start : c.stop]
            r += np.einsum("ij,ij->i", diff, diff)
        return r


def foster_sum(a: sp.csr_array, r: np.ndarray) -> tuple[float, int]:
    """(sum_e w_e R_e, n - #components): equal for exact resistances (Foster's theorem)."""
    _, _, w = edge_list(a)
    return float(np.sum(w * r)), a.shape[0] - components(a)[0]

"""Persistence diagrams with gradients: gudhi finds the critical cells, torch gathers their filtration values.

A finite persistence pair (b, d) of a filtration f is (f(sigma_b), f(sigma_d)) for two critical cells, and the pairing
is locally constant in f, so d(b, d) / d f is one-hot at the critical cells (Gameiro et al.; gudhi's TensorFlow
cubical/Rips layers). gudhi runs on CPU, one thread per complex (it releases the GIL). Essential (infinite) classes
are dropped. Diagrams of a batch come back padded: ``points`` (m, P, 2) with a boolean ``mask`` (m, P).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Literal

import gudhi
import numpy as np
import torch
from scipy.spatial import Delaunay


@dataclass
class Diagram:
    """A batch of diagrams of one homology dimension: points (m, P, 2) = (birth, death), mask (m, P)."""

    points: torch.Tensor
    mask: torch.Tensor

    def padded(self) -> torch.Tensor:
        """The points (m, P, 2) with NaN where ``mask`` is False: one tensor that can be stored and re-padded."""
        return self.points.masked_fill(~self.mask[..., None], float("nan"))

    @classmethod
    def from_padded(cls, padded: torch.Tensor) -> Diagram:
        """Inverse of :meth:`padded`: NaN rows are masked out (and zeroed)."""
        mask = ~torch.isnan(padded[..., 0])
        return cls(padded.masked_fill(~mask[..., None], 0.0), mask)


def _map(fn: Callable, items: Sequence, threads: int) -> list:
    if threads <= 1 or len(items) <= 1:
        return [fn(item) for item in items]
    with ThreadPoolExecutor(max_workers=threads) as pool:
        return list(pool.map(fn, items))


def default_threads() -> int:
    """Threads for gudhi: torch's intra-op thread count (set it with ``torch.set_num_threads``)."""
    return max(1, min(torch.get_num_threads(), os.cpu_count() or 1))


def _pad(index_sets: list[np.ndarray], width: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Stack variable-length (n_i, width) index arrays into (m, P, width) zero-padded indices and a mask (m, P)."""
    size = max([len(ix) for ix in index_sets] + [1])
    out = np.zeros((len(index_sets), size, width), dtype=np.int64)
    mask = np.zeros((len(index_sets), size), dtype=bool)
    for i, ix in enumerate(index_sets):
        out[i, : len(ix)] = ix.reshape(len(ix), width)
        mask[i, : len(ix)] = True
    return torch.from_numpy(out), torch.from_numpy(mask)


def cubical_pairs(image: np.ndarray, periodic: bool, dims: Sequence[int]) -> list[np.ndarray]:
    """Critical top-cell pairs of the cubical complex of ``image`` (T-construction), one (n, 2) int array of
    C-order flat indices (birth cell, death cell) per homology dimension in ``dims``.

    gudhi reads a flat ``top_dimensional_cells`` with its *first* dimension varying fastest, so the C-order flat image
    is passed with ``dimensions`` reversed; then coface indices are C-order flat indices of ``image`` for any shape.
    (Passing the 2-D array instead makes the indices Fortran-order: the public TopoFisher periodic path gathers the
    wrong pixels that way.)
    """
    shape = list(image.shape[::-1])
    flat = np.ascontiguousarray(image, dtype=np.float64).ravel()
    if periodic:
        complex_ = gudhi.PeriodicCubicalComplex(
            dimensions=shape, top_dimensional_cells=flat, periodic_dimensions=[True] * image.ndim
        )
    else:
        complex_ = gudhi.CubicalComplex(dimensions=shape, top_dimensional_cells=flat)
    complex_.compute_persistence(homology_coeff_field=2, min_persistence=0.0)
    regular = complex_.cofaces_of_persistence_pairs()[0]
    return [regular[d] if d < len(regular) else np.zeros((0, 2), dtype=np.int64) for d in dims]


def cripser_pairs(image: np.ndarray, dims: Sequence[int]) -> list[np.ndarray]:
    """The same critical top-cell pairs as :func:`cubical_pairs` (open boundary) from cubical ripser's
    T-construction (pixels are top cells, as in gudhi), which is several times faster than gudhi on 2-D images.
    cripser returns rows (dim, birth, death, birth pixel x, y, z, death pixel x, y, z); essential classes (death =
    DBL_MAX) are dropped and pixel coordinates become C-order flat indices. Needs ``pip install cripser``."""
    try:
        import cripser
    except ImportError as error:  # optional extra
        raise ImportError(
            "backend='cripser' needs cripser: pip install -e '.[cripser]' (or use backend gudhi)"
        ) from error
    if image.ndim > 3:
        raise ValueError(f"cripser handles images of up to 3 dimensions; got shape {image.shape}. Use backend gudhi.")
    rows = cripser.computePH_T(np.ascontiguousarray(image, dtype=np.float64), maxdim=max(dims))
    rows = rows[rows[:, 2] < np.finfo(np.float64).max]
    out = []
    for d in dims:
        r = rows[rows[:, 0] == d]
        birth = np.ravel_multi_index(r[:, 3 : 3 + image.ndim].T.astype(np.int64), image.shape)
        death = np.ravel_multi_index(r[:, 6 : 6 + image.ndim].T.astype(np.int64), image.shape)
        out.append(np.stack([birth, death], axis=1))
    return out


def cubical_diagrams(
    images: torch.Tensor,
    dims: Sequence[int] = (0, 1),
    periodic: bool = False,
    threads: int | None = None,
    backend: Literal["gudhi", "cripser"] = "gudhi",
) -> list[Diagram]:
    """Differentiable cubical persistence of a batch of images (m, *shape) (sublevel sets of pixel values): one
    :class:`Diagram` per homology dimension, whose points are gathered from ``images`` (gradients flow to the two
    critical pixels of each pair). ``backend`` finds the pairs: gudhi (open or periodic) or cripser (open only)."""
    if backend not in ("gudhi", "cripser"):
        raise ValueError(f"backend={backend!r} is unknown; use 'gudhi' or 'cripser'.")
    if backend == "cripser" and periodic:
        raise ValueError("backend='cripser' has no periodic cubical complex; use backend 'gudhi' for periodic fields.")
    m = images.shape[0]
    flat = images.reshape(m, -1)
    arrays = flat.detach().cpu().double().numpy().reshape(images.shape)
    find = (
        (lambda img: cripser_pairs(img, dims))
        if backend == "cripser"
        else (lambda img: cubical_pairs(img, periodic, dims))
    )
    pairs = _map(find, list(arrays), threads or default_threads())
    diagrams = []
    for k in range(len(dims)):
        index, mask = _pad([p[k] for p in pairs], 2)
        index = index.to(images.device)
        points = flat.gather(1, index.reshape(m, -1)).reshape(m, -1, 2)
        diagrams.append(Diagram(points * mask.to(images.device)[..., None], mask.to(images.device)))
    return diagrams


# --- point clouds ---------------------------------------------------------------------------------------------

VERTEX, EDGE, TRIANGLE = 0, 1, 2


def _alpha_cell(simplex: list[int], tree: gudhi.SimplexTree, points: np.ndarray) -> tuple[list[int], int]:
    """The simplex whose own radius gives the 2-D alpha value of ``simplex``: itself for a vertex, a triangle or a
    Gabriel edge (value |u - v|^2 / 4); for a non-Gabriel edge the coface triangle with the same filtration value.
    Returns (3 vertex indices, kind)."""
    if len(simplex) == 1:
        return [simplex[0]] * 3, VERTEX
    if len(simplex) == 3:
        return list(simplex), TRIANGLE
    value = tree.filtration(simplex)
    half_sq = float(np.sum((points[simplex[0]] - points[simplex[1]]) ** 2)) / 4
    if math.isclose(value, half_sq, rel_tol=1e-9):
        return [*simplex, simplex[0]], EDGE
    for coface, filtration in tree.get_cofaces(simplex, 1):
        if math.isclose(filtration, value, rel_tol=1e-9):
            return list(coface), TRIANGLE
    raise RuntimeError(f"alpha value {value} of edge {simplex} matches neither its length nor a coface triangle")


def alpha_cells(points: np.ndarray, dims: Sequence[int]) -> list[np.ndarray]:
    """Critical simplices of the 2-D alpha complex (gudhi; filtration = squared radius) per homology dimension:
    (n, 2, 4) int arrays, row = (birth, death), each (3 vertex indices, kind). Essential classes dropped."""
    if points.shape[-1] != 2:
        raise ValueError(f"alpha persistence here is 2-D only; got points of dimension {points.shape[-1]}.")
    tree = gudhi.AlphaComplex(points=points).create_simplex_tree()
    tree.compute_persistence(homology_coeff_field=2, min_persistence=0.0)
    out: dict[int, list] = {d: [] for d in dims}
    for birth, death in tree.persistence_pairs():
        dim = len(birth) - 1
        if dim in out and death:
            cells = [_alpha_cell(birth, tree, points), _alpha_cell(death, tree, points)]
            out[dim].append([[*v, kind] for v, kind in cells])
    return [np.asarray(out[d], dtype=np.int64).reshape(-1, 2, 4) for d in dims]


def simplex_values(points: torch.Tensor, cells: torch.Tensor) -> torch.Tensor:
    """Alpha values (squared radii) of critical cells, differentiable in the points: vertex 0, edge |u - v|^2 / 4,
    triangle circumradius^2 = a^2 b^2 c^2 / (4 |(b - a) x (c - a)|^2). points (m, n, 2); cells (m, ..., 4)."""
    m = points.shape[0]
    flat = cells.reshape(m, -1, 4)
    gathered = points.gather(1, flat[..., :3].reshape(m, -1, 1).expand(-1, -1, 2)).reshape(m, -1, 3, 2)
    a, b, c = gathered.unbind(-2)
    ab, ac, bc = ((b - a) ** 2).sum(-1), ((c - a) ** 2).sum(-1), ((c - b) ** 2).sum(-1)
    cross = (b - a)[..., 0] * (c - a)[..., 1] - (b - a)[..., 1] * (c - a)[..., 0]
    kind = flat[..., 3]
    is_triangle = kind == TRIANGLE
    safe = torch.where(is_triangle, cross, torch.ones_like(cross))
    triangle = ab * ac * bc / (4 * safe**2)
    values = torch.where(is_triangle, triangle, torch.where(kind == EDGE, ab / 4, torch.zeros_like(ab)))
    return values.reshape(cells.shape[:-1])


def alpha_diagrams(points: torch.Tensor, dims: Sequence[int] = (0, 1), threads: int | None = None) -> list[Diagram]:
    """Differentiable alpha persistence (squared-radius filtration, as gudhi) of point clouds (m, n, 2)."""
    arrays = points.detach().cpu().double().numpy()
    cells = _map(lambda x: alpha_cells(x, dims), list(arrays), threads or default_threads())
    diagrams = []
    for k in range(len(dims)):
        index, mask = _pad([c[k] for c in cells], 8)
        index, mask = index.reshape(len(arrays), -1, 2, 4).to(points.device), mask.to(points.device)
        values = simplex_values(points, index)
        diagrams.append(Diagram(values * mask[..., None], mask))
    return diagrams


def rips_pairs(distances: np.ndarray, dims: Sequence[int], max_edge: float) -> list[np.ndarray]:
    """Critical edges of the Vietoris-Rips filtration (gudhi ``flag_persistence_generators``) per dimension: (n, 4)
    int arrays (birth edge u, v, death edge x, y); an H0 birth is a vertex v, encoded as the edge (v, v)."""
    tree = gudhi.RipsComplex(distance_matrix=distances, max_edge_length=max_edge).create_simplex_tree(
        max_dimension=max(dims) + 1
    )
    tree.compute_persistence(homology_coeff_field=2, min_persistence=0.0)
    h0, higher, _, _ = tree.flag_persistence_generators()
    out = []
    for d in dims:
        if d == 0:
            out.append(np.stack([h0[:, 0], h0[:, 0], h0[:, 1], h0[:, 2]], axis=1) if len(h0) else np.zeros((0, 4)))
        elif d - 1 < len(higher):
            out.append(higher[d - 1])
        else:
            out.append(np.zeros((0, 4)))
    return [np.asarray(o, dtype=np.int64).reshape(-1, 4) for o in out]


def rips_diagrams(
    points: torch.Tensor, dims: Sequence[int] = (0, 1), max_edge: float = math.inf, threads: int | None = None
) -> list[Diagram]:
    """Differentiable Vietoris-Rips persistence of point clouds (m, n, k): each pair is (|x_u - x_v|, |x_x - x_y|)
    of its two critical edges, computed in torch (an H0 birth, u = v, is exactly 0 with zero gradient)."""
    m = points.shape[0]
    arrays = points.detach().cpu().double().numpy()
    distances = [np.sqrt(((x[:, None] - x[None]) ** 2).sum(-1)) for x in arrays]
    pairs = _map(lambda dm: rips_pairs(dm, dims, max_edge), distances, threads or default_threads())
    diagrams = []
    for k in range(len(dims)):
        index, mask = _pad([p[k] for p in pairs], 4)
        index, mask = index.to(points.device), mask.to(points.device)
        ends = points.gather(1, index.reshape(m, -1, 1).expand(-1, -1, points.shape[-1])).reshape(
            m, -1, 2, 2, points.shape[-1]
        )
        diff = ends[..., 0, :] - ends[..., 1, :]
        sq = (diff**2).sum(-1)
        zero = sq == 0
        values = torch.where(zero, 0.0, torch.sqrt(torch.where(zero, 1.0, sq)))
        diagrams.append(Diagram(values * mask[..., None], mask))
    return diagrams


# --- Delaunay (alpha) complex with a vertex filtration (alpha-DTM) ---------------------------------------------


def delaunay_simplices(points: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The 2-D Delaunay triangulation (scipy / qhull; the simplices of the alpha complex at alpha = infinity):
    edges (E, 2) with u < v, triangles (T, 3) sorted within a row, and the edge ids (T, 3) of each triangle's edges
    (ab, ac, bc)."""
    triangles = np.sort(Delaunay(points).simplices, axis=1).astype(np.int64)
    n = len(points)
    keys = np.stack(
        [
            triangles[:, 0] * n + triangles[:, 1],
            triangles[:, 0] * n + triangles[:, 2],
            triangles[:, 1] * n + triangles[:, 2],
        ],
        axis=1,
    )
    unique, inverse = np.unique(keys, return_inverse=True)
    return np.stack([unique // n, unique % n], axis=1), triangles, inverse.reshape(-1, 3)


def vertex_filtration_values(points: torch.Tensor, values: torch.Tensor, cells: torch.Tensor) -> torch.Tensor:
    """Filtration values of critical cells of the Delaunay complex under the vertex filtration f (alpha-DTM, p = 1):
    vertex v -> f_v; edge uv -> |x_u - x_v| + max(f_u, f_v) (a triangle's value, the largest of its edges', is
    recorded as that edge by :func:`vertex_filtration_cells`). Differentiable in the points and in f.
    points (m, n, 2); values (m, n); cells (m, ..., 4) rows (u, v, u, kind), kind VERTEX (u = v) or EDGE."""
    m = points.shape[0]
    flat = cells.reshape(m, -1, 4)
    u, v = flat[..., 0], flat[..., 1]
    xu = points.gather(1, u[..., None].expand(-1, -1, 2))
    xv = points.gather(1, v[..., None].expand(-1, -1, 2))
    fu, fv = values.gather(1, u), values.gather(1, v)
    length = ((xu - xv) ** 2).sum(-1).clamp_min(1e-30).sqrt()
    out = torch.where(flat[..., 3] == EDGE, length + torch.maximum(fu, fv), fu)
    return out.reshape(cells.shape[:-1])


def vertex_filtration_cells(points: np.ndarray, values: np.ndarray, dims: Sequence[int]) -> list[np.ndarray]:
    """Critical simplices of the Delaunay complex of ``points`` (n, 2) filtered by the vertex values (n,)
    (:func:`vertex_filtration_values`), per homology dimension: (k, 2, 4) int arrays (birth, death), each row
    (u, v, u, kind); a critical triangle is recorded as the edge that gives its value (its largest), so the gathered
    value equals gudhi's. Essential classes dropped."""
    edges, triangles, tri_edges = delaunay_simplices(points)
    n = len(points)
    length = np.sqrt(((points[edges[:, 0]] - points[edges[:, 1]]) ** 2).sum(-1))
    edge_value = length + np.maximum(values[edges[:, 0]], values[edges[:, 1]])
    top_edge = tri_edges[np.arange(len(tri_edges)), np.argmax(edge_value[tri_edges], axis=1)]
    tree = gudhi.SimplexTree()
    tree.insert_batch(np.arange(n)[None], values.astype(np.float64))
    tree.insert_batch(edges.T, edge_value)
    tree.insert_batch(triangles.T, edge_value[top_edge])
    tree.compute_persistence(homology_coeff_field=2, min_persistence=0.0)
    pairs = [(b, d) for b, d in tree.persistence_pairs() if d and len(b) - 1 in dims]
    dim = np.array([len(b) - 1 for b, _ in pairs], dtype=np.int64)
    rows = np.zeros((len(pairs), 2, 4), dtype=np.int64)
    for j, simplices in enumerate(zip(*pairs, strict=True) if pairs else ()):  # births, then deaths
        rows[:, j] = _vertex_filtration_rows(list(simplices), n, edges, triangles, top_edge)
    return [rows[dim == d] for d in dims]


def _vertex_filtration_rows(
    simplices: list[list[int]], n: int, edges: np.ndarray, triangles: np.ndarray, top_edge: np.ndarray
) -> np.ndarray:
    """Rows (u, v, u, kind) of simplices of one dimension-mixed list: a vertex v -> (v, v, v, VERTEX), an edge and a
    triangle -> (u, v, u, EDGE) of the edge that gives its value. Edges and triangles are found by their sorted
    vertex keys (u n + v, a n^2 + b n + c) in the sorted key arrays of the triangulation."""
    size = np.array([len(s) for s in simplices])
    padded = np.array([sorted(s) + [0] * (3 - len(s)) for s in simplices], dtype=np.int64).reshape(-1, 3)
    out = np.repeat(padded[:, :1], 4, axis=1)
    out[:, 3] = VERTEX
    edge_keys = edges[:, 0] * n + edges[:, 1]
    edge_index = np.where(size == 2, np.searchsorted(edge_keys, padded[:, 0] * n + padded[:, 1]), 0)
    tri_keys = (triangles[:, 0] * n + triangles[:, 1]) * n + triangles[:, 2]
    order = np.argsort(tri_keys)
    found = np.searchsorted(tri_keys[order], (padded[:, 0] * n + padded[:, 1]) * n + padded[:, 2])
    tri_index = order[np.minimum(found, len(order) - 1)] if len(order) else found
    edge_index = np.where(size == 3, top_edge[tri_index] if len(order) else 0, edge_index)
    is_edge = size >= 2
    out[is_edge, :2] = edges[edge_index[is_edge]]
    out[is_edge, 2] = out[is_edge, 0]
    out[is_edge, 3] = EDGE
    return out


def vertex_filtration_diagrams(
    points: torch.Tensor, values: torch.Tensor, dims: Sequence[int] = (0, 1), threads: int | None = None
) -> list[Diagram]:
    """Differentiable persistence of the Delaunay (alpha) complex of point clouds (m, n, 2) under a vertex
    filtration (m, n) (:func:`vertex_filtration_values`; the alpha-DTM filtration when f is the DTM): gudhi pairs
    the simplices, torch recomputes their values, so gradients reach both the points and f."""
    arrays = points.detach().cpu().double().numpy()
    f = values.detach().cpu().double().numpy()
    cells = _map(
        lambda i: vertex_filtration_cells(arrays[i], f[i], dims), list(range(len(arrays))), threads or default_threads()
    )
    diagrams = []
    for k in range(len(dims)):
        index, mask = _pad([c[k] for c in cells], 8)
        index, mask = index.reshape(len(arrays), -1, 2, 4).to(points.device), mask.to(points.device)
        diagrams.append(Diagram(vertex_filtration_values(points, values, index) * mask[..., None], mask))
    return diagrams

"""Graphs as symmetric scipy CSR adjacency matrices: conversion from torch_geometric ``Data`` / edge lists /
scipy, Laplacians, edge lists and connected components. Everything numerical here is float64."""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp
import torch

GraphLike = Any  # torch_geometric.data.Data (edge_index, edge_weight) | scipy sparse matrix / array


def adjacency(graph: GraphLike, num_nodes: int | None = None) -> sp.csr_array:
    """The weighted adjacency A (n, n) as a float64 CSR array with zero diagonal.

    ``graph`` is a scipy sparse matrix/array or a torch_geometric ``Data`` with ``edge_index`` (2, E) listing both
    directions of every undirected edge and optional ``edge_weight`` (E,) (unit weights when absent). A must be
    symmetric with non-negative weights; self-loops are dropped (they do not enter the Laplacian).
    """
    if sp.issparse(graph):
        a = sp.csr_array(graph, dtype=np.float64)
    elif hasattr(graph, "edge_index"):
        n = int(graph.num_nodes if num_nodes is None else num_nodes)
        ei = graph.edge_index.detach().cpu().numpy()
        ew = getattr(graph, "edge_weight", None)
        w = np.ones(ei.shape[1]) if ew is None else ew.detach().cpu().double().numpy()
        a = sp.csr_array((w, (ei[0], ei[1])), shape=(n, n))
    else:
        raise ValueError(
            f"graph of type {type(graph).__name__} is not supported; pass a scipy sparse matrix or a "
            "torch_geometric Data with edge_index (and optional edge_weight)."
        )
    if a.shape[0] != a.shape[1]:
        raise ValueError(f"adjacency must be square, got shape {a.shape}.")
    a.setdiag(0)
    a.eliminate_zeros()
    if a.nnz and a.data.min() < 0:
        raise ValueError(f"edge weights must be >= 0 (conductances), got min {a.data.min():.3g}.")
    if abs(a - a.T).sum() > 1e-9 * max(1.0, abs(a).sum()):
        raise ValueError(
            "graph is not symmetric: list both directions of every edge with equal weights "
            "(torch_geometric.utils.to_undirected(edge_index, edge_weight, reduce='mean'))."
        )
    a.sort_indices()
    return a


def laplacian(a: sp.csr_array) -> sp.csr_array:
    """Combinatorial Laplacian L = D - A (n, n), D = diag(A 1)."""
    return sp.csr_array(sp.diags_array(np.asarray(a.sum(axis=1)).ravel()) - a)


def edge_list(a: sp.csr_array) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Undirected edges u < v with weights w (each (m,)), from the upper triangle of A."""
    upper = sp.triu(a, k=1, format="coo")
    order = np.lexsort((upper.col, upper.row))
    return upper.row[order].astype(np.int64), upper.col[order].astype(np.int64), upper.data[order]


def from_edges(u: np.ndarray, v: np.ndarray, w: np.ndarray, n: int) -> sp.csr_array:
    """Symmetric CSR adjacency (n, n) with A_uv = A_vu = w for each listed edge (duplicates summed)."""
    a = sp.csr_array((np.concatenate([w, w]), (np.concatenate([u, v]), np.concatenate([v, u]))), shape=(n, n))
    a.sum_duplicates()
    a.eliminate_zeros()
    a.sort_indices()
    return a


def components(a: sp.csr_array) -> tuple[int, np.ndarray]:
    """Number of connected components and the component label of each node (isolated nodes count)."""
    return sp.csgraph.connected_components(a, directed=False)


def incidence(u: np.ndarray, v: np.ndarray, n: int) -> sp.csr_array:
    """Signed edge-node incidence B (m, n): row e = e_u - e_v, so L = B^T W B."""
    m = len(u)
    rows = np.repeat(np.arange(m), 2)
    cols = np.stack([u, v], 1).ravel()
    vals = np.tile([1.0, -1.0], m)
    return sp.csr_array((vals, (rows, cols)), shape=(m, n))


def like(a: sp.csr_array, template: GraphLike) -> GraphLike:
    """Return adjacency ``a`` in the type of ``template``: a scipy CSR array, or a shallow copy of the
    torch_geometric ``Data`` with ``edge_index`` (2, nnz) and float32 ``edge_weight`` replaced."""
    if sp.issparse(template):
        return a
    coo = a.tocoo()
    data = template.clone() if hasattr(template, "clone") else template
    data.edge_index = torch.as_tensor(np.stack([coo.row, coo.col]), dtype=torch.long)
    data.edge_weight = torch.as_tensor(coo.data, dtype=torch.float32)
    return data

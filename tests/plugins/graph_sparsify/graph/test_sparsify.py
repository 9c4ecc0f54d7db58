"""Sparsifiers: unbiasedness E[L_H] = L over many seeds, the measured eps against the target, quadratic forms,
budgets, determinism, and torch_geometric Data / scipy inputs agreeing."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest
import scipy.sparse as sp
import torch
from torch_geometric.data import Data

from framework_plugins.graph_sparsify.graph import (
    adjacency,
    edge_list,
    effective_resistance_sparsify,
    exact_resistances,
    knn_graph,
    knn_prune,
    laplacian,
    samples_for_budget,
    spectral_eps,
    uniform_sparsify,
)
from framework_plugins.graph_sparsify.graph.sparsify import expected_distinct


def karate() -> sp.csr_array:
    return sp.csr_array(nx.to_scipy_sparse_array(nx.karate_club_graph(), weight="weight", dtype=np.float64))


def test_independent_effective_resistance_sampling_is_unbiased():
    a = karate()
    u, v, w = edge_list(a)
    r = exact_resistances(a)
    pi = np.minimum(1.0, 40 * w * r / np.sum(w * r))
    seeds = 1500
    total = np.zeros(len(u))
    for seed in range(seeds):
        h = effective_resistance_sparsify(a, q=40, seed=seed, r=r, scheme="independent").adjacency
        total += np.asarray(h[u, v]).ravel()
    std_of_mean = w * np.sqrt((1 - pi) / pi) / np.sqrt(seeds) + 1e-12  # weight w / pi with probability pi
    assert np.abs((total / seeds - w) / std_of_mean).max() < 5.0
    kept = effective_resistance_sparsify(a, budget=30, seed=0, r=r, scheme="independent")
    assert abs(kept.kept_edges - 30) <= 3 * np.sqrt(30)  # E[kept] = budget exactly


def test_effective_resistance_sampling_is_unbiased():
    a = karate()
    u, v, w = edge_list(a)
    r = exact_resistances(a)
    p = w * r / np.sum(w * r)
    q, seeds = 60, 1500
    total = np.zeros(len(u))
    for seed in range(seeds):
        h = effective_resistance_sparsify(a, q=q, seed=seed, r=r).adjacency
        total += np.asarray(h[u, v]).ravel()
    mean = total / seeds
    std_of_mean = w * np.sqrt((1 - p) / (q * p)) / np.sqrt(seeds)  # weight w c / (q p), c ~ Binomial(q, p)
    z = (mean - w) / std_of_mean
    assert np.abs(z).max() < 5.0, f"max |z| = {np.abs(z).max():.2f}"
    mean_lap = laplacian(sp.csr_array((np.r_[mean, mean], (np.r_[u, v], np.r_[v, u])), shape=a.shape)).toarray()
    lap = laplacian(a).toarray()
    assert np.linalg.norm(mean_lap - lap) / np.linalg.norm(lap) < 0.02


def test_uniform_sampling_is_unbiased():
    a = karate()
    u, v, w = edge_list(a)
    budget, seeds = 30, 1500
    total = np.zeros(len(u))
    for seed in range(seeds):
        total += np.asarray(uniform_sparsify(a, budget, seed).adjacency[u, v]).ravel()
    keep = budget / len(u)
    z = (total / seeds - w) / (w * np.sqrt((1 - keep) / keep) / np.sqrt(seeds))
    assert np.abs(z).max() < 5.0


def test_measured_eps_on_dense_sbm_is_below_target_and_quadratic_forms_hold(make_sbm):
    eps = 0.8
    a = make_sbm([100, 100, 100], 0.8, 0.2, seed=3)  # about 18k edges, mean degree 120
    s = effective_resistance_sparsify(a, eps=eps, seed=0, method="exact")  # q = 4 n ln n / eps^2
    cert = spectral_eps(a, s.adjacency)
    assert cert.eps < eps
    assert s.kept_fraction < 0.6  # the sparsifier actually removed edges
    lap, lap_h = laplacian(a), laplacian(s.adjacency)
    x = np.random.default_rng(0).standard_normal((a.shape[0], 200))
    ratio = np.einsum("ij,ij->j", x, lap_h @ x) / np.einsum("ij,ij->j", x, lap @ x)
    assert np.all(ratio >= 1 - cert.eps - 1e-9) and np.all(ratio <= 1 + cert.eps + 1e-9)
    assert np.all(np.abs(ratio - 1) < eps)


def test_deterministic_under_seed(dense_sbm):
    s1 = effective_resistance_sparsify(dense_sbm, q=3000, seed=5, method="approx", jl_k=16)
    s2 = effective_resistance_sparsify(dense_sbm, q=3000, seed=5, method="approx", jl_k=16)
    assert (s1.adjacency != s2.adjacency).nnz == 0
    s3 = effective_resistance_sparsify(dense_sbm, q=3000, seed=6, method="approx", jl_k=16)
    assert (s1.adjacency != s3.adjacency).nnz > 0


def test_torch_geometric_data_and_scipy_agree(dense_sbm):
    coo = dense_sbm.tocoo()
    data = Data(
        x=torch.zeros(dense_sbm.shape[0], 1),
        edge_index=torch.as_tensor(np.stack([coo.row, coo.col]), dtype=torch.long),
        edge_weight=torch.as_tensor(coo.data),
    )
    from_scipy = effective_resistance_sparsify(dense_sbm, q=4000, seed=1)
    from_data = effective_resistance_sparsify(data, q=4000, seed=1)
    assert isinstance(from_data.graph, Data) and from_data.graph.x.shape == data.x.shape
    rebuilt = adjacency(from_data.graph)
    np.testing.assert_allclose(rebuilt.toarray(), from_scipy.adjacency.toarray(), rtol=1e-6)  # float32 weights
    assert from_data.kept_edges == from_scipy.kept_edges
    assert uniform_sparsify(data, 100, 2).graph.edge_index.shape[1] == 200


def test_budget_matches_expected_distinct_edges(dense_sbm):
    u, v, w = edge_list(dense_sbm)
    r = exact_resistances(dense_sbm)
    p = w * r / np.sum(w * r)
    budget = len(u) // 3
    q = samples_for_budget(p, budget)
    assert expected_distinct(p, q - 1) < budget <= expected_distinct(p, q)
    kept = [effective_resistance_sparsify(dense_sbm, budget=budget, seed=s, r=r).kept_edges for s in range(5)]
    assert abs(np.mean(kept) - budget) < 0.02 * budget


def test_knn_prune_matches_brute_force():
    a = knn_graph(np.random.default_rng(0).standard_normal((60, 3)), 8)
    k = 3
    dense = a.toarray()
    keep = np.zeros_like(dense, dtype=bool)
    for i in range(len(dense)):
        nbrs = np.flatnonzero(dense[i])
        keep[i, nbrs[np.argsort(-dense[i, nbrs], kind="stable")[:k]]] = True
    expected = np.where(keep | keep.T, dense, 0.0)
    np.testing.assert_array_equal(knn_prune(a, k).adjacency.toarray(), expected)


def test_knn_graph_matches_brute_force():
    x = np.random.default_rng(1).standard_normal((40, 5))
    k = 4
    d = np.linalg.norm(x[:, None] - x[None], axis=2)
    np.fill_diagonal(d, np.inf)
    nbr = np.argsort(d, axis=1)[:, :k]
    sigma = d[np.arange(40), nbr[:, -1]]
    expected = np.zeros((40, 40))
    for i in range(40):
        for j in nbr[i]:
            expected[i, j] = expected[j, i] = np.exp(-(d[i, j] ** 2) / (sigma[i] * sigma[j]))
    np.testing.assert_allclose(knn_graph(x, k).toarray(), expected, rtol=1e-12)


def test_bad_arguments_name_the_field(dense_sbm):
    with pytest.raises(ValueError, match="exactly one"):
        effective_resistance_sparsify(dense_sbm, eps=0.5, q=10)
    with pytest.raises(ValueError, match="budget"):
        uniform_sparsify(dense_sbm, 0)
    with pytest.raises(ValueError, match="resistance method"):
        effective_resistance_sparsify(dense_sbm, q=10, method="magic")

"""Effective resistances against numpy's pseudo-inverse of L (float64), Foster's theorem and the JL tolerance."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest
import scipy.sparse as sp

from framework_plugins.graph_sparsify.graph import (
    adjacency,
    approx_resistances,
    block_pcg,
    components,
    edge_list,
    exact_resistances,
    foster_sum,
    laplacian,
)


def pinv_resistances(a: sp.csr_array) -> np.ndarray:
    u, v, _ = edge_list(a)
    p = np.linalg.pinv(laplacian(a).toarray())
    return p[u, u] + p[v, v] - 2 * p[u, v]


@pytest.mark.parametrize("graph", ["dense_sbm", "disconnected"])
def test_exact_matches_pseudo_inverse_and_foster(graph, request):
    a = request.getfixturevalue(graph)
    r = exact_resistances(a)
    np.testing.assert_allclose(r, pinv_resistances(a), rtol=1e-9, atol=1e-12)
    total, expected = foster_sum(a, r)
    assert expected == a.shape[0] - components(a)[0]
    assert total == pytest.approx(expected, rel=1e-10)


def test_exact_on_a_path_is_the_series_sum():
    # path 0-1-2-3 with conductances 1, 2, 4: R(0,3) = 1 + 1/2 + 1/4
    weights = np.array([[0, 1, 0, 0], [1, 0, 2, 0], [0, 2, 0, 4], [0, 0, 4, 0]], dtype=np.float64)
    a = adjacency(sp.csr_array(weights))
    np.testing.assert_allclose(exact_resistances(a, np.array([0, 0]), np.array([3, 1])), [1.75, 1.0], rtol=1e-12)


def test_exact_pairs_across_components_are_infinite(disconnected):
    assert np.isinf(exact_resistances(disconnected, np.array([0]), np.array([70]))).all()


def test_networkx_resistance_distance_agrees():
    g = nx.les_miserables_graph()
    a = sp.csr_array(nx.to_scipy_sparse_array(g, weight="weight", dtype=np.float64))
    nodes = list(g.nodes)
    u, v, _ = edge_list(a)
    r = exact_resistances(a)
    for i in range(0, len(u), 25):
        expected = nx.resistance_distance(g, nodes[u[i]], nodes[v[i]], weight="weight", invert_weight=False)
        assert r[i] == pytest.approx(expected, rel=1e-8)


@pytest.mark.parametrize("graph", ["dense_sbm", "disconnected"])
def test_jl_resistances_within_tolerance(graph, request):
    a = request.getfixturevalue(graph)
    exact = exact_resistances(a)
    k = 200
    approx = approx_resistances(a, k=k, seed=0, rtol=1e-6)
    rel = np.abs(approx / exact - 1)
    # ||Qx||^2 / ||x||^2 for Rademacher Q (k rows) has std sqrt(2/k) (= 0.1 at k = 200): median |err| ~ 0.067
    assert np.median(rel) < 1.0 / np.sqrt(k)
    assert np.quantile(rel, 0.99) < 4 * np.sqrt(2 / k)
    total, expected = foster_sum(a, approx)
    assert total == pytest.approx(expected, rel=0.02)


def test_jl_is_deterministic_under_seed_and_changes_with_it(dense_sbm):
    r1, r2 = approx_resistances(dense_sbm, k=16, seed=3), approx_resistances(dense_sbm, k=16, seed=3)
    np.testing.assert_array_equal(r1, r2)
    assert not np.array_equal(r1, approx_resistances(dense_sbm, k=16, seed=4))


def test_block_pcg_solves_each_column(dense_sbm):
    lap = laplacian(dense_sbm)
    rng = np.random.default_rng(0)
    b = rng.standard_normal((lap.shape[0], 5))
    b -= b.mean(0)  # consistent: orthogonal to the constant nullspace (connected graph)
    x, iters = block_pcg(lap, b, rtol=1e-10)
    np.testing.assert_allclose(lap @ x, b, atol=1e-8)
    assert iters < lap.shape[0]


def test_adjacency_rejects_asymmetric_and_negative_input():
    with pytest.raises(ValueError, match="not symmetric"):
        adjacency(sp.csr_array(np.array([[0.0, 1.0], [0.0, 0.0]])))
    with pytest.raises(ValueError, match=">= 0"):
        adjacency(sp.csr_array(np.array([[0.0, -1.0], [-1.0, 0.0]])))

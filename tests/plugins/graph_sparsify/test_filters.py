"""Polynomial filters (Chebyshev, SGC, TAGConv, GPR-GNN, BernNet) against dense float64 matrix polynomials, and the
filter perturbation bound ||p(L_H) - p(L)|| <= C eps_hat on small graphs."""

from __future__ import annotations

import math

import networkx as nx
import numpy as np
import pytest
import scipy.sparse as sp
import torch

from framework_plugins.graph_sparsify.datamodule import edges
from framework_plugins.graph_sparsify.filters import BernProp, FixedCheb, GPRProp, chebyshev_filter, filter_gap
from framework_plugins.graph_sparsify.gnn import PolyGNN
from framework_plugins.graph_sparsify.graph import effective_resistance_sparsify, laplacian, spectral_eps


@pytest.fixture(scope="module")
def graph() -> tuple[np.ndarray, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Weighted les Miserables graph: dense adjacency (77, 77), edge_index, edge_weight (float64), features."""
    a = sp.csr_array(nx.to_scipy_sparse_array(nx.les_miserables_graph(), weight="weight", dtype=np.float64))
    ei, ew = edges(a)
    x = torch.randn(a.shape[0], 5, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    return a.toarray(), ei, ew.double(), x


def sym_norm(a: np.ndarray, self_loops: bool) -> np.ndarray:
    a = a + np.eye(len(a)) if self_loops else a
    d = a.sum(1)
    return a / np.sqrt(np.outer(d, d))


def test_chebyshev_with_fixed_lambda_max_is_the_dense_chebyshev_polynomial(graph):
    a, ei, ew, x = graph
    layer = FixedCheb(5, 3, K=4).double()
    lt = -sym_norm(a, False)  # 2 L_sym / 2 - I
    t = [x.numpy(), lt @ x.numpy()]
    for _ in range(2, 4):
        t.append(2 * lt @ t[-1] - t[-2])
    lins = layer.conv.lins
    expected = sum(tk @ lin.weight.detach().numpy().T for tk, lin in zip(t, lins, strict=True))
    expected += layer.conv.bias.detach().numpy()
    np.testing.assert_allclose(layer(x, ei, ew).detach().numpy(), expected, rtol=1e-10, atol=1e-10)


def test_gpr_is_the_dense_generalized_pagerank(graph):
    a, ei, ew, x = graph
    prop = GPRProp(K=6, alpha=0.2).double()
    with torch.no_grad():
        prop.gamma.copy_(torch.linspace(-1, 1, 7, dtype=torch.float64))
    ahat = sym_norm(a, True)
    expected = sum(g * np.linalg.matrix_power(ahat, k) @ x.numpy() for k, g in enumerate(np.linspace(-1, 1, 7)))
    np.testing.assert_allclose(prop(x, ei, ew).detach().numpy(), expected, rtol=1e-10, atol=1e-10)


def test_gpr_initialisation_is_personalized_pagerank():
    gamma = GPRProp(K=10, alpha=0.1).gamma.detach().double()
    assert gamma[3].item() == pytest.approx(0.1 * 0.9**3, rel=1e-6)
    assert gamma.sum().item() == pytest.approx(1.0, rel=1e-6)  # PPR weights sum to 1


def test_bernnet_is_the_dense_bernstein_polynomial(graph):
    a, ei, ew, x = graph
    K = 5
    prop = BernProp(K).double()
    theta = torch.tensor([0.5, -1.0, 2.0, 0.3, 1.0, 0.0], dtype=torch.float64)
    with torch.no_grad():
        prop.theta.copy_(theta)
    lap = np.eye(len(a)) - sym_norm(a, False)
    mp = np.linalg.matrix_power
    expected = (
        sum(
            max(theta[k].item(), 0) * math.comb(K, k) / 2**K * mp(2 * np.eye(len(a)) - lap, K - k) @ mp(lap, k)
            for k in range(K + 1)
        )
        @ x.numpy()
    )
    np.testing.assert_allclose(prop(x, ei, ew).detach().numpy(), expected, rtol=1e-10, atol=1e-10)
    with torch.no_grad():
        prop.theta.fill_(1.0)  # sum_k C(K,k)/2^K (2-l)^{K-k} l^k = 1: the identity filter
    np.testing.assert_allclose(prop(x, ei, ew).detach().numpy(), x.numpy(), rtol=1e-10, atol=1e-10)


def test_sgc_and_tag_are_dense_polynomials(graph):
    a, ei, ew, x = graph
    torch.manual_seed(0)
    sgc = PolyGNN("sgc", 5, 8, 3, num_layers=1, K=3).double()
    lin = sgc.layers[0].lin
    expected = np.linalg.matrix_power(sym_norm(a, True), 3) @ x.numpy() @ lin.weight.detach().numpy().T
    np.testing.assert_allclose(sgc(x, ei, ew)[0].detach().numpy(), expected + lin.bias.detach().numpy(), rtol=1e-10)
    tag = PolyGNN("tag", 5, 8, 3, num_layers=1, K=2).double()
    conv, s = tag.layers[0], sym_norm(a, False)
    expected = sum(np.linalg.matrix_power(s, k) @ x.numpy() @ conv.lins[k].weight.detach().numpy().T for k in range(3))
    np.testing.assert_allclose(tag(x, ei, ew)[0].detach().numpy(), expected + conv.bias.detach().numpy(), rtol=1e-10)


def test_filter_perturbation_is_bounded_by_eps_hat():
    """L_H = L^{1/2} (I + E) L^{1/2} with ||E|| <= eps_hat gives ||L_H - L|| <= eps_hat ||L||; with Ln = L / ||L||
    and ||A^k - B^k|| <= k max(||A||, ||B||)^{k-1} ||A - B||, ||p(Ln_H) - p(Ln)|| <= eps_hat sum_k |c_k| k
    (1 + eps_hat)^{k-1}."""
    g = nx.stochastic_block_model([60, 60], [[0.5, 0.05], [0.05, 0.5]], seed=4)
    a = sp.csr_array(nx.to_scipy_sparse_array(g, dtype=np.float64))
    lap = laplacian(a).toarray()
    scale = np.linalg.norm(lap, 2)
    coeffs = np.array([0.3, -1.0, 0.8, -0.4, 0.2])
    for q in (600, 2400, 9600):
        h = effective_resistance_sparsify(a, q=q, seed=q).adjacency
        eps_hat = spectral_eps(a, h).eps
        lh = laplacian(h).toarray()
        assert np.linalg.norm(lh - lap, 2) <= eps_hat * scale * (1 + 1e-9)
        p = lambda m: sum(c * np.linalg.matrix_power(m / scale, k) for k, c in enumerate(coeffs))  # noqa: E731
        bound = eps_hat * sum(abs(c) * k * (1 + eps_hat) ** (k - 1) for k, c in enumerate(coeffs))
        assert np.linalg.norm(p(lh) - p(lap), 2) <= bound


def test_normalised_filter_perturbation_scales_like_eps():
    """The learned filters act on the normalised Laplacian: their output perturbation (same weights on G and H)
    shrinks in proportion to eps_hat (log-log slope about 1) as the number of samples grows 16x."""
    g = nx.stochastic_block_model([150, 150], [[0.5, 0.05], [0.05, 0.5]], seed=5)
    a = sp.csr_array(nx.to_scipy_sparse_array(g, dtype=np.float64))
    ei, ew = edges(a)
    torch.manual_seed(0)
    layer = FixedCheb(8, 8, K=3).double()
    x = torch.randn(300, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    ref = layer(x, ei, ew.double())
    eps, err = [], []
    for factor in (1, 4, 16):
        h = effective_resistance_sparsify(a, q=int(factor * 300 * np.log(300)), seed=factor).adjacency
        hi, hw = edges(h)
        eps.append(spectral_eps(a, h).eps)
        err.append(((layer(x, hi, hw.double()) - ref).norm() / ref.norm()).item())
    slope = np.polyfit(np.log(eps), np.log(err), 1)[0]
    assert 0.6 < slope < 1.4, f"eps_hat {eps}, relative output error {err}, slope {slope:.2f}"
    assert max(e / d for e, d in zip(err, eps, strict=True)) < 1.0


def dense_chebyshev(a: np.ndarray, coeffs: list[float]) -> np.ndarray:
    """sum_k c_k T_k(M), M = L_sym - I = -D^{-1/2} A D^{-1/2} (zero rows for isolated nodes), as an n x n matrix."""
    d = a.sum(1)
    inv = np.where(d > 0, 1 / np.sqrt(np.maximum(d, 1e-300)), 0.0)
    m = -(inv[:, None] * a * inv[None, :])
    t = [np.eye(len(a)), m]
    while len(t) < len(coeffs):
        t.append(2 * m @ t[-1] - t[-2])
    return sum(c * tk for c, tk in zip(coeffs, t, strict=False))


def test_fixed_chebyshev_filter_and_its_gap_match_dense_matrices():
    g = nx.stochastic_block_model([50, 50], [[0.5, 0.05], [0.05, 0.5]], seed=3)
    a = sp.csr_array(nx.to_scipy_sparse_array(g, dtype=np.float64))
    coeffs = [0.5, 0.3, 0.15, 0.05]
    x = torch.randn(100, 1, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    ei, ew = edges(a)
    out = chebyshev_filter(coeffs)(x, ei, ew.double())
    np.testing.assert_allclose(out.numpy(), dense_chebyshev(a.toarray(), coeffs) @ x.numpy(), rtol=1e-10, atol=1e-12)
    h = effective_resistance_sparsify(a, q=400, seed=1).adjacency  # keeps few edges: some nodes may be isolated
    expected = np.linalg.norm(dense_chebyshev(h.toarray(), coeffs) - dense_chebyshev(a.toarray(), coeffs), 2)
    gap = filter_gap(coeffs, (ei, ew), edges(h), 100, tol=1e-8)
    assert expected > 0.05 and gap == pytest.approx(expected, rel=1e-6)
    assert filter_gap(coeffs, (ei, ew), (ei.clone(), ew.clone()), 100) == 0.0

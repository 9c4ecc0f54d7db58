"""The perturbation bounds of bounds.py against direct dense computations that could violate them: the operator lemma
on sparsifiers and on adversarial reweightings, the monomial form of every filter layer, the network and Gram bounds,
and tightness of the layer bound where it is attained."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest
import scipy.sparse as sp
import torch
from torch_geometric.nn.conv.gcn_conv import gcn_norm

from framework_plugins.graph_sparsify.bounds import (
    OPERATOR,
    gram_bound,
    layer_inputs,
    monomial_weights,
    operator_delta,
    propagation_operator,
    representation_bounds,
    spectral_norm,
)
from framework_plugins.graph_sparsify.datamodule import edges
from framework_plugins.graph_sparsify.gnn import KINDS, PolyGNN
from framework_plugins.graph_sparsify.graph import effective_resistance_sparsify, from_edges, spectral_eps
from framework_plugins.graph_sparsify.graph.laplacian import edge_list

K_OF = {"cheb": 4, "sgc": 3, "tag": 3, "gpr": 6, "bern": 6}


@pytest.fixture(scope="module")
def graph() -> sp.csr_array:
    """Weighted 2-block SBM, 120 nodes (weights Uniform(0.5, 2) rounded to float32, as the models see them)."""
    g = nx.stochastic_block_model([60, 60], [[0.4, 0.05], [0.05, 0.4]], seed=3)
    rng = np.random.default_rng(3)
    for u, v in g.edges:
        g[u][v]["weight"] = float(np.float32(rng.uniform(0.5, 2.0)))
    return sp.csr_array(nx.to_scipy_sparse_array(g, weight="weight", dtype=np.float64))


def perturbed_graphs(a: sp.csr_array) -> list[sp.csr_array]:
    """Sparsifiers at several q, and reweightings w_e (1 + s u_e) with u_e = +-1 biased per node: adversarial for
    the degree part of the lemma (whole neighbourhoods move together)."""
    n = a.shape[0]
    out = [effective_resistance_sparsify(a, q=int(f * n * np.log(n)), seed=f).adjacency for f in (2, 4, 8, 16)]
    u, v, w = edge_list(a)
    rng = np.random.default_rng(0)
    for s in (0.05, 0.2, 0.5):
        sign = np.where(rng.random(n) < 0.5, -1.0, 1.0)
        out.append(from_edges(u, v, w * (1 + s * sign[u] * (sign[u] == sign[v])), n))
    return out


def test_propagation_operators_are_pyg_gcn_norm(graph):
    ei, ew = edges(graph)
    n = graph.shape[0]
    for operator, loops in (("P", False), ("A_hat", True)):
        idx, w = gcn_norm(ei, ew.double(), n, add_self_loops=loops)
        dense = torch.zeros(n, n, dtype=torch.float64).index_put_((idx[1], idx[0]), w, accumulate=True).numpy()
        np.testing.assert_allclose(propagation_operator(graph, operator).toarray(), dense, atol=1e-12)


def test_spectral_norm_dense_and_lanczos_agree():
    rng = np.random.default_rng(1)
    m = rng.standard_normal((600, 600))
    m = sp.csr_array(m + m.T)
    assert spectral_norm(m) == pytest.approx(np.abs(np.linalg.eigvalsh(m.toarray())).max(), rel=1e-7)


@pytest.mark.parametrize("operator", ["P", "A_hat"])
def test_operator_lemma_holds_and_is_not_vacuous(graph, operator):
    """||M_H - M_G||_2 <= 2 eps_hat ||N_G|| / (1 - eps_hat) on every H with eps_hat < 1. The lemma is a worst-case
    bound: here the largest gap is about 1/8 of it (0.13), so a bound 10x too small would fail the first assert and
    the second keeps the check from passing vacuously."""
    m_g = propagation_operator(graph, operator)
    norm = spectral_norm(sp.eye_array(graph.shape[0]) - m_g)
    ratios = []
    for h in perturbed_graphs(graph):
        eps = spectral_eps(graph, h, method="dense").eps
        gap = spectral_norm(propagation_operator(h, operator) - m_g)
        if eps < 1:
            assert gap <= operator_delta(eps, norm) * (1 + 1e-9)
            ratios.append(gap / operator_delta(eps, norm))
    assert len(ratios) >= 5 and max(ratios) > 0.1, ratios
    assert operator_delta(1.0, norm) == np.inf


def dense_layer(model: PolyGNN, graph: sp.csr_array, z: np.ndarray, layer: int) -> np.ndarray:
    """sum_j M^j Z B_j (no bias), dense float64."""
    m = propagation_operator(graph, OPERATOR[model.kind]).toarray()
    bs = monomial_weights(model)[layer]
    return sum(np.linalg.matrix_power(m, j) @ z @ b for j, b in enumerate(bs))


def random_model(kind: str, seed: int = 0) -> PolyGNN:
    """A float64 PolyGNN (5 -> 6 -> 3) with generic weights (BernNet thetas random, some negative)."""
    torch.manual_seed(seed)
    model = PolyGNN(kind, 5, 6, 3, num_layers=2, K=K_OF[kind]).double().eval()
    with torch.no_grad():
        if kind == "bern":
            model.prop.theta.copy_(torch.linspace(-0.5, 2.0, K_OF[kind] + 1))
        if kind == "gpr":
            model.prop.gamma.copy_(torch.linspace(1.0, -0.6, K_OF[kind] + 1))
    return model


@torch.no_grad()
@pytest.mark.parametrize("kind", KINDS)
def test_monomial_weights_reproduce_every_layer(graph, kind):
    model = random_model(kind)
    x = torch.randn(graph.shape[0], 5, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    ei, ew = edges(graph)
    out, reps = model(x, ei, ew.double())
    inputs = layer_inputs(model, x, reps)
    if kind in ("gpr", "bern"):
        np.testing.assert_allclose(dense_layer(model, graph, inputs[0], 0), out.detach().numpy(), atol=1e-10)
        return
    for i, (layer, z) in enumerate(zip(model.layers, inputs, strict=True)):
        bias = layer.conv.bias if kind == "cheb" else layer.lin.bias if kind == "sgc" else layer.bias
        expected = reps[i].detach().numpy() - bias.detach().numpy()
        np.testing.assert_allclose(dense_layer(model, graph, z, i), expected, atol=1e-10)


@torch.no_grad()
@pytest.mark.parametrize("kind", KINDS)
def test_representation_and_gram_bounds_hold(graph, kind):
    """||Y_l - X_l||_F <= the theorem's bound (delta from eps_hat) and <= the bound given the measured gap; the
    Gram error <= its bound; for every filter and every perturbed graph with eps_hat < 1."""
    model = random_model(kind, seed=1)
    x = torch.randn(graph.shape[0], 5, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    ei, ew = edges(graph)
    reps_g = model(x, ei, ew.double())[1]
    weights, inputs = monomial_weights(model), layer_inputs(model, x, reps_g)
    m_g = propagation_operator(graph, OPERATOR[kind])
    norm = spectral_norm(sp.eye_array(graph.shape[0]) - m_g)
    checked = 0
    for h in perturbed_graphs(graph):
        eps = spectral_eps(graph, h, method="dense").eps
        hi, hw = edges(h)
        reps_h = model(x, hi, hw.double())[1]
        gap = spectral_norm(propagation_operator(h, OPERATOR[kind]) - m_g)
        given_gap = representation_bounds(weights, inputs, gap)
        theorem = representation_bounds(weights, inputs, operator_delta(eps, norm)) if eps < 1 else None
        for i, (rg, rh) in enumerate(zip(reps_g, reps_h, strict=True)):
            err = float((rh - rg).norm())
            assert err <= given_gap[i] * (1 + 1e-9)
            if theorem is not None:
                assert err <= theorem[i] * (1 + 1e-9)
                gram = float((rh @ rh.T - rg @ rg.T).norm() / (rg @ rg.T).norm())
                assert gram <= gram_bound(rg, theorem[i]) * (1 + 1e-9)
                checked += 1
    assert checked >= 5


@torch.no_grad()
def test_layer_bound_is_attained_by_the_top_eigenvector(graph):
    """A one-hop TAG layer Z -> P Z (W_0 = 0, W_1 = 1) moved by H: with Z the top eigenvector of P_H - P_G the error
    ||(P_H - P_G) Z||_F equals gap ||Z||_F, exactly the bound given the gap (the constant cannot be smaller)."""
    model = PolyGNN("tag", 1, 1, 1, num_layers=1, K=1).double().eval()
    with torch.no_grad():
        model.layers[0].lins[0].weight.zero_()
        model.layers[0].lins[1].weight.fill_(1.0)
    h = effective_resistance_sparsify(graph, q=4 * 120 * 5, seed=7).adjacency
    diff = (propagation_operator(h, "P") - propagation_operator(graph, "P")).toarray()
    vals, vecs = np.linalg.eigh(diff)
    top = int(np.argmax(np.abs(vals)))
    z = torch.as_tensor(vecs[:, [top]])
    ei, ew = edges(graph)
    hi, hw = edges(h)
    err = float((model(z, hi, hw.double())[0] - model(z, ei, ew.double())[0]).norm())
    bound = representation_bounds(monomial_weights(model), [z.numpy()], abs(vals[top]))[0]
    assert err == pytest.approx(bound, rel=1e-6)  # H's weights reach the model rounded to float32

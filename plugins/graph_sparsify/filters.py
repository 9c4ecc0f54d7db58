"""Polynomial graph filters that take edge weights: GPR-GNN and BernNet propagation (PyG has neither), the PyG
Chebyshev layer with a fixed lambda_max so that a graph and its sparsifier share one polynomial, and the spectral
gap ||p(L~_H) - p(L~_G)||_2 of a fixed Chebyshev filter between a graph and its sparsifier."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from scipy.sparse.linalg import LinearOperator, eigsh
from torch import nn
from torch_geometric.nn import ChebConv, MessagePassing
from torch_geometric.nn.conv.gcn_conv import gcn_norm
from torch_geometric.utils import add_self_loops, get_laplacian


class _Propagate(MessagePassing):
    """y_i = sum_j w_ji x_j (sum aggregation): one sparse matrix-vector product with the given edge weights."""

    def __init__(self) -> None:
        super().__init__(aggr="add")

    def forward(self, x: torch.Tensor, edge_index: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        return self.propagate(edge_index, x=x, weight=weight)

    def message(self, x_j: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        return weight.unsqueeze(-1) * x_j


class GPRProp(nn.Module):
    """GPR-GNN propagation (Chien et al., arXiv:2006.07988, Eq. 2): Z = sum_{k=0}^K gamma_k A_hat^k H with
    A_hat = D~^{-1/2} (A + I) D~^{-1/2} (weighted degrees, self-loops of weight 1); gamma learnable, initialised to
    personalized PageRank gamma_k = alpha (1 - alpha)^k (gamma_K = (1 - alpha)^K). x: (n, c) -> (n, c)."""

    def __init__(self, K: int = 10, alpha: float = 0.1) -> None:
        super().__init__()
        self.K = K
        gamma = alpha * (1 - alpha) ** torch.arange(K + 1, dtype=torch.float32)
        gamma[-1] = (1 - alpha) ** K
        self.gamma = nn.Parameter(gamma)
        self.prop = _Propagate()

    def forward(self, x: torch.Tensor, edge_index: torch.Tensor, edge_weight: torch.Tensor | None) -> torch.Tensor:
        ei, w = gcn_norm(edge_index, edge_weight, x.size(0), add_self_loops=True, dtype=x.dtype)
        out = self.gamma[0] * x
        for k in range(1, self.K + 1):
            x = self.prop(x, ei, w)
            out = out + self.gamma[k] * x
        return out


class BernProp(nn.Module):
    """BernNet propagation (He et al., arXiv:2106.10994, Eq. 8): Z = sum_{k=0}^K relu(theta_k) C(K, k) / 2^K
    (2I - L)^{K-k} L^k X, L = I - D^{-1/2} A D^{-1/2} (weighted). theta initialised to 1 (the identity filter).
    x: (n, c) -> (n, c)."""

    def __init__(self, K: int = 10) -> None:
        super().__init__()
        self.K = K
        self.theta = nn.Parameter(torch.ones(K + 1))
        self.prop = _Propagate()

    def forward(self, x: torch.Tensor, edge_index: torch.Tensor, edge_weight: torch.Tensor | None) -> torch.Tensor:
        n = x.size(0)
        ei_l, w_l = get_laplacian(edge_index, edge_weight, normalization="sym", dtype=x.dtype, num_nodes=n)
        ei_m, w_m = add_self_loops(ei_l, -w_l, fill_value=2.0, num_nodes=n)  # 2I - L
        powers = [x]  # L^k x
        for _ in range(self.K):
            powers.append(self.prop(powers[-1], ei_l, w_l))
        theta = torch.relu(self.theta)
        out = torch.zeros_like(x)
        for k, z in enumerate(powers):
            for _ in range(self.K - k):
                z = self.prop(z, ei_m, w_m)
            out = out + theta[k] * math.comb(self.K, k) / 2**self.K * z
        return out


class FixedCheb(nn.Module):
    """``torch_geometric.nn.ChebConv`` (Defferrard et al., arXiv:1606.09375, Eq. 5) with sym normalisation and a
    fixed lambda_max (default 2, the bound of the normalised Laplacian): L~ = 2 L_sym / lambda_max - I, so G and its
    sparsifier H are filtered by the same polynomial sum_k T_k(L~) X W_k. x: (n, c_in) -> (n, c_out)."""

    def __init__(self, in_channels: int, out_channels: int, K: int, lambda_max: float = 2.0) -> None:
        super().__init__()
        self.conv = ChebConv(in_channels, out_channels, K, normalization="sym")
        self.register_buffer("lambda_max", torch.tensor(lambda_max), persistent=False)

    def forward(self, x: torch.Tensor, edge_index: torch.Tensor, edge_weight: torch.Tensor | None) -> torch.Tensor:
        return self.conv(x, edge_index, edge_weight, lambda_max=self.lambda_max.to(x.dtype))


def chebyshev_filter(coeffs: Sequence[float], lambda_max: float = 2.0) -> FixedCheb:
    """The fixed filter x -> p(L~) x = sum_k c_k T_k(L~) x (k = 0..len(coeffs) - 1, L~ = 2 L_sym / lambda_max - I)
    as a one-channel float64 :class:`FixedCheb` with W_k = c_k and zero bias. x: (n, 1) -> (n, 1)."""
    layer = FixedCheb(1, 1, len(coeffs), lambda_max).double()
    with torch.no_grad():
        for lin, c in zip(layer.conv.lins, coeffs, strict=True):
            lin.weight.fill_(c)
        layer.conv.bias.zero_()
    return layer.requires_grad_(False)


@torch.no_grad()
def filter_gap(
    coeffs: Sequence[float],
    dense: tuple[torch.Tensor, torch.Tensor],
    sparse: tuple[torch.Tensor, torch.Tensor],
    num_nodes: int,
    lambda_max: float = 2.0,
    tol: float = 1e-4,
) -> float:
    """||p(L~_H) - p(L~_G)||_2 for the fixed Chebyshev filter of :func:`chebyshev_filter`; ``dense`` / ``sparse`` are
    (edge_index (2, E), edge_weight (E,)) of G and H on ``num_nodes`` nodes. Both filters are symmetric matrices,
    so the spectral norm is the largest |eigenvalue| of their difference: Lanczos (``scipy.sparse.linalg.eigsh``)
    on float64 matrix-vector products (relative tolerance ``tol``), never an n x n matrix. Identical graphs give exactly
    0."""
    if all(torch.equal(a, b) for a, b in zip(dense, sparse, strict=True)):
        return 0.0
    layer = chebyshev_filter(coeffs, lambda_max)
    (gi, gw), (hi, hw) = dense, sparse
    gw, hw = gw.double(), hw.double()

    def matvec(v: np.ndarray) -> np.ndarray:
        x = torch.as_tensor(np.asarray(v, dtype=np.float64).reshape(-1, 1))
        return (layer(x, hi, hw) - layer(x, gi, gw)).numpy().ravel()

    op = LinearOperator((num_nodes, num_nodes), matvec=matvec, dtype=np.float64)
    v0 = np.random.default_rng(0).standard_normal(num_nodes)
    return float(abs(eigsh(op, k=1, which="LM", tol=tol, v0=v0, return_eigenvectors=False)[0]))

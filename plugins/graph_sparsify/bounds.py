"""Upper bounds on how far an eps-spectral sparsifier H moves the filters and representations of a :class:`PolyGNN`
(the constants the O(eps) theorem gives, in the code's notation; derivation in the plugin README).

**Operator lemma.** If (1 - eps) L <= L_H <= (1 + eps) L with eps < 1 (the measured eps_hat), then every weighted
degree obeys |d_H - d| <= eps d (x = e_i), and the normalised Laplacian N = D^{-1/2} L D^{-1/2} = I - P
(P = D^{-1/2} A D^{-1/2}), and likewise its self-loop version N~ = D~^{-1/2} L D~^{-1/2} = I - A_hat (D~ = D + I),
moves by at most

    ||N_H - N_G||_2 <= delta(eps) = 2 eps ||N_G||_2 / (1 - eps).

Proof: S = D^{-1/2} L_H D^{-1/2} has -eps N <= S - N <= eps N, so ||S - N|| <= eps ||N|| and ||S|| <= (1 + eps)
||N||; N_H = T S T with T = diag((d / d_H)^{1/2}), ||T - I|| <= (1 - eps)^{-1/2} - 1 and ||T|| <= (1 - eps)^{-1/2},
so ||T S T - S|| <= ||T - I|| (||T|| + 1) ||S|| <= eps (1 + eps) ||N|| / (1 - eps); the sum is delta(eps).

**Layers.** Every filter layer is Z -> sum_j M^j Z B_j (+ bias) with M = P (cheb, tag, bern) or M = A_hat (sgc,
gpr), ||M|| <= 1 on G and on H, and matrices B_j (c_in, c_out) (:func:`monomial_weights`). Telescoping,
||M_H^j - M_G^j|| <= j delta, so

    ||layer_H(Z) - layer_G(Z)||_F <= delta sum_j j ||Z B_j||_F,        Lip(layer_H) <= sum_j ||B_j||_2,

and layer l of the network (Z_l = relu(X_{l-1}) on G, the features for l = 1; relu is 1-Lipschitz) obeys
||Y_l - X_l||_F <= Lip_l ||Y_{l-1} - X_{l-1}||_F + delta sum_j j ||Z_l B_j||_F (:func:`representation_bounds`).
Gram matrices: ||Y Y^T - X X^T||_F <= ||Y - X||_F (2 ||X||_2 + ||Y - X||_F) (:func:`gram_bound`).
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
import scipy.sparse as sp
import torch
from numpy.polynomial import chebyshev as cheb
from numpy.polynomial import polynomial as poly
from scipy.sparse.linalg import eigsh

from framework_plugins.graph_sparsify.gnn import PolyGNN

Operator = Literal["P", "A_hat"]
OPERATOR: dict[str, Operator] = {"cheb": "P", "tag": "P", "bern": "P", "sgc": "A_hat", "gpr": "A_hat"}


def propagation_operator(a: sp.csr_array, operator: Operator) -> sp.csr_array:
    """M (n, n) of adjacency A: P = D^{-1/2} A D^{-1/2} or A_hat = D~^{-1/2} (A + I) D~^{-1/2} (weighted degrees;
    an isolated node's row of P is 0, as in PyG's ``gcn_norm``)."""
    a = sp.csr_array(a, dtype=np.float64)
    if operator == "A_hat":
        a = sp.csr_array(a + sp.eye_array(a.shape[0], format="csr"))
    d = np.asarray(a.sum(axis=1)).ravel()
    inv = np.divide(1.0, np.sqrt(d), out=np.zeros_like(d), where=d > 0)
    scale = sp.diags_array(inv)
    return sp.csr_array(scale @ a @ scale)


def spectral_norm(m: sp.sparray) -> float:
    """||m||_2 of a symmetric sparse matrix: the largest |eigenvalue| (dense ``eigvalsh`` below 500 rows, else
    Lanczos, relative tolerance 1e-8)."""
    if m.shape[0] < 500:
        return float(np.abs(np.linalg.eigvalsh(m.toarray())).max())
    v0 = np.random.default_rng(0).standard_normal(m.shape[0])
    return float(abs(eigsh(m, k=1, which="LM", tol=1e-8, v0=v0, return_eigenvectors=False)[0]))


def operator_delta(eps: float, laplacian_norm: float) -> float:
    """delta(eps) = 2 eps ||N_G|| / (1 - eps), the lemma's bound on ||M_H - M_G||_2 (inf for eps >= 1)."""
    return 2.0 * eps * laplacian_norm / (1.0 - eps) if eps < 1 else math.inf


def _lin(layer: torch.nn.Module) -> np.ndarray:
    """The weight of a torch / PyG Linear as (c_in, c_out) float64 (x -> x W)."""
    return layer.weight.detach().double().cpu().numpy().T


def monomial_weights(model: PolyGNN) -> list[list[np.ndarray]]:
    """Per graph layer of ``model`` (in forward order) the matrices B_j (c_in, c_out), j = 0..degree, with
    layer(Z) = sum_j M^j Z B_j + bias, M = ``OPERATOR[model.kind]``:

    cheb: T_k(L~) with L~ = 2 L_sym / 2 - I = -P, so B_j = sum_k [u^j] T_k(-u) W_k; tag: B_k = W_k; sgc: B_K = W;
    gpr: one layer (the propagation) with B_j = gamma_j I; bern: B_j = [u^j] sum_k relu(theta_k) C(K, k) / 2^K
    (1 + u)^{K-k} (1 - u)^k times I (2I - L_sym = I + P, L_sym = I - P)."""
    kind = model.kind
    if kind in ("gpr", "bern"):
        width = model.layers[-1].weight.shape[0]
        if kind == "gpr":
            coeffs = model.prop.gamma.detach().double().cpu().numpy()
        else:
            big_k = model.prop.K
            theta = torch.relu(model.prop.theta).detach().double().cpu().numpy()
            coeffs = np.zeros(big_k + 1)
            for k, t in enumerate(theta):
                term = poly.polymul(poly.polypow([1.0, 1.0], big_k - k), poly.polypow([1.0, -1.0], k))
                coeffs[: len(term)] += t * math.comb(big_k, k) / 2**big_k * term
        return [[c * np.eye(width) for c in coeffs]]
    out = []
    for layer in model.layers:
        if kind == "tag":
            out.append([_lin(lin) for lin in layer.lins])
        elif kind == "sgc":
            w = _lin(layer.lin)
            out.append([np.zeros_like(w)] * layer.K + [w])
        else:
            weights = [_lin(lin) for lin in layer.conv.lins]
            bs = [np.zeros_like(weights[0]) for _ in weights]
            for k, w in enumerate(weights):
                t = cheb.cheb2poly([0.0] * k + [1.0])
                for j, c in enumerate(t):
                    bs[j] = bs[j] + c * (-1) ** j * w
            out.append(bs)
    return out


@torch.no_grad()
def layer_inputs(model: PolyGNN, x: torch.Tensor, reps: list[torch.Tensor]) -> list[np.ndarray]:
    """The input Z_l (n, c_in) of each graph layer on G: the features, then relu of the previous representation
    (cheb, sgc, tag); the graph-free MLP output (gpr, bern). ``reps``: ``model(x, G)[1]``."""
    if model.kind in ("gpr", "bern"):
        return [model.mlp(x).double().cpu().numpy()]
    inputs = [x] + [torch.relu(r) for r in reps[:-1]]
    return [z.double().cpu().numpy() for z in inputs]


def representation_bounds(weights: list[list[np.ndarray]], inputs: list[np.ndarray], delta: float) -> list[float]:
    """Upper bounds on ||Y_l - X_l||_F, one per graph layer: b_l = Lip_l b_{l-1} + delta sum_j j ||Z_l B_j||_F with
    b_0 = 0, Lip_l = sum_j ||B_j||_2 (see the module docstring)."""
    bounds, previous = [], 0.0
    for bs, z in zip(weights, inputs, strict=True):
        lip = sum(float(np.linalg.norm(b, 2)) for b in bs)
        own = sum(j * float(np.linalg.norm(z @ b)) for j, b in enumerate(bs) if j)
        previous = lip * previous + delta * own
        bounds.append(previous)
    return bounds


def gram_bound(x: torch.Tensor, abs_bound: float) -> float:
    """Upper bound on ||YY^T - XX^T||_F / ||XX^T||_F given ||Y - X||_F <= abs_bound: b (2 ||X||_2 + b) / ||X^T X||_F
    (||XX^T||_F = ||X^T X||_F)."""
    x = x.detach().double().cpu()
    return abs_bound * (2 * float(torch.linalg.matrix_norm(x, 2)) + abs_bound) / float((x.T @ x).norm())

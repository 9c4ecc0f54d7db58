"""At test: fresh effective-resistance sparsifiers H of G at several sample counts q and repeated draws, each with its
measured eps_hat, the operator gap against the lemma's bound, and the trained dense model's weights run on H: every
representation's perturbation probes beside the theorem's upper bound (:mod:`framework_plugins.graph_sparsify.bounds`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import lightning.pytorch as pl
import numpy as np
import scipy.sparse as sp
import torch
from lightning.pytorch.callbacks import Callback

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
from framework_plugins.graph_sparsify.geometry import geometry_report
from framework_plugins.graph_sparsify.gnn import PolyGNN
from framework_plugins.graph_sparsify.graph import Sparsified, spectral_eps


class SparsifierSource(Protocol):
    """What the sweep reads from the datamodule (:class:`GraphSparsifyData` provides it)."""

    adjacency: sp.csr_array | None  # G after setup

    def sparsifier_draw(self, samples_factor: float, draw: int) -> Sparsified: ...


class SweptModel(Protocol):
    """What the sweep reads from the LightningModule (:class:`TwinSparsifiedGNN` provides it)."""

    dense_model: PolyGNN  # trained on G
    graph: dict[str, torch.Tensor]  # x (n, d), y (n,), dense_index (2, E), dense_weight (E,)


def sweep_key(samples_factor: float, draw: int, name: str) -> str:
    """The logged key ``test/sweep/q<f>/d<draw>/<name>`` (``f`` in ``%g`` form: 2.0 -> ``q2``, 0.5 -> ``q0.5``)."""
    return f"test/sweep/q{samples_factor:g}/d{draw}/{name}"


@torch.no_grad()
def sweep_metrics(model: PolyGNN, graph: dict[str, torch.Tensor], a: sp.csr_array, h: Sparsified, k: int) -> dict:
    """The metrics of one sparsifier H of G (adjacency ``a``) for ``model`` (eval mode): ``eps_hat``,
    ``kept_fraction``, ``op_gap`` = ||M_H - M_G||_2 and, for eps_hat < 1, ``op_bound`` = delta(eps_hat); per
    representation i: ``layer<i>/<probe>`` (:func:`geometry_report`, same weights on G and H),
    ``layer<i>/bound_given_gap`` (the layer bound on ``rel_error`` with the measured ``op_gap`` for delta) and, for
    eps_hat < 1, ``layer<i>/bound`` (the theorem's bound on ``rel_error``, delta = delta(eps_hat)) and
    ``layer<i>/gram_bound`` (on ``gram_rel``)."""
    x, y = graph["x"], graph["y"]
    op = OPERATOR[model.kind]
    m_g = propagation_operator(a, op)
    eye = sp.eye_array(a.shape[0], format="csr")
    cert = spectral_eps(a, h.adjacency)
    out = {
        "eps_hat": cert.eps,
        "kept_fraction": h.kept_fraction,
        "op_gap": spectral_norm(propagation_operator(h.adjacency, op) - m_g),
    }
    reps_g = model(x, graph["dense_index"], graph["dense_weight"])[1]
    reps_h = model(x, *edges(h.adjacency))[1]
    weights, inputs = monomial_weights(model), layer_inputs(model, x, reps_g)
    given_gap = representation_bounds(weights, inputs, out["op_gap"])
    bounds = [np.inf] * len(reps_g)
    if cert.eps < 1:
        delta = operator_delta(cert.eps, spectral_norm(eye - m_g))
        out["op_bound"] = delta
        bounds = representation_bounds(weights, inputs, delta)
    for i, (rg, rh, b, b_gap) in enumerate(zip(reps_g, reps_h, bounds, given_gap, strict=True)):
        out.update({f"layer{i}/{p}": v for p, v in geometry_report(rg, rh, y, k).items()})
        out[f"layer{i}/bound_given_gap"] = b_gap / float(rg.double().norm())
        if np.isfinite(b):
            out[f"layer{i}/bound"] = b / float(rg.double().norm())
            out[f"layer{i}/gram_bound"] = gram_bound(rg, b)
    return out


class SparsifierSweep(Callback):
    """At every test, for each samples factor f and draw d = 0..draws-1: a fresh effective-resistance sparsifier
    H_{f,d} of G with q = f n ln n (``GraphSparsifyData.sparsifier_draw``, seeded by the data seed, d and f) and its
    :func:`sweep_metrics` for the model trained on G, logged as ``test/sweep/q<f>/d<d>/<metric>``. Independent of
    the datamodule's own H (set its ``sparsifier: none`` to spend no time on one).

    Args:
        samples_factors: the factors f of q = f n ln n, each > 0.
        draws: independent sparsifier draws per factor (>= 1).
        k: neighbours per node of the kNN-overlap probe.
    """

    def __init__(self, samples_factors: Sequence[float] = (1.0, 2.0, 4.0, 8.0, 16.0), draws: int = 5, k: int = 10):
        if not samples_factors or min(samples_factors) <= 0:
            raise ValueError(f"samples_factors={list(samples_factors)}: give at least one factor, each > 0.")
        if draws < 1:
            raise ValueError(f"draws={draws} must be >= 1.")
        self.samples_factors, self.draws, self.k = [float(f) for f in samples_factors], draws, k

    def on_test_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        data = trainer.datamodule
        if not hasattr(data, "sparsifier_draw") or not hasattr(pl_module, "dense_model"):
            raise ValueError(
                "SparsifierSweep needs a datamodule with sparsifier_draw() (GraphSparsifyData) and a module with "
                "dense_model (TwinSparsifiedGNN); remove the callback or use those classes."
            )
        graph = {k: v.to(pl_module.device) for k, v in pl_module.graph.items()}
        for f in self.samples_factors:
            for d in range(self.draws):
                h = data.sparsifier_draw(f, d)
                for name, value in sweep_metrics(pl_module.dense_model, graph, data.adjacency, h, self.k).items():
                    pl_module.log(sweep_key(f, d, name), float(value), sync_dist=False)

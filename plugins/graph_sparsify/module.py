"""Twin training: one polynomial-filter GNN on the dense graph G and an identical copy on its sparsifier H,
same initialization and batches, stepped in lockstep; logs the weight-trajectory distance and exposes paired
representations to :class:`~framework_plugins.graph_sparsify.geometry_probe.GeometryProbe`."""

from __future__ import annotations

import copy
from typing import Protocol

import torch
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable
from torch import nn
from torchmetrics.classification import MulticlassAccuracy

from framework.figures import figure
from framework.module import FrameworkModule, default_optimizer
from framework_plugins.graph_sparsify.filters import filter_gap
from framework_plugins.graph_sparsify.gnn import FilterKind, PolyGNN
from framework_plugins.graph_sparsify.graph import EpsCertificate, Sparsified


@torch.no_grad()
def weight_distance(a: nn.Module, b: nn.Module) -> torch.Tensor:
    """||theta_a - theta_b|| / ||theta_a|| over all parameters (the twin-trajectory divergence)."""
    diff = sum(((p - q).double().square().sum() for p, q in zip(a.parameters(), b.parameters(), strict=True)))
    return (diff / sum(p.double().square().sum() for p in a.parameters())).sqrt()


class SparsifiedGraph(Protocol):
    """What :class:`TwinSparsifiedGNN` reads from its datamodule (:class:`GraphSparsifyData` provides it)."""

    graph: dict[str, torch.Tensor]  # after setup: x (n, d), y (n,), dense/sparse edge index (2, m) and weight (m,)
    certificate: EpsCertificate  # the measured spectral approximation eps of H against G
    sparsified: Sparsified  # the sparsifier's output (kept_fraction of the edges)
    splits: dict[str, tuple[torch.Tensor, ...]]  # split -> (node indices,)


class TwinSparsifiedGNN(FrameworkModule):
    """``dense_model`` trained on G, ``sparse_model`` (a deep copy at init) trained on H, on the same node batches
    with one optimizer: loss = CE_G(dense) + CE_H(sparse). The parameter sets are disjoint, so any per-parameter
    optimizer (SGD, Adam(W), Muon's per-matrix updates) steps each twin exactly as if trained alone; global-norm
    gradient clipping would couple them. Dropout masks are shared (the RNG state is replayed for the twin).

    Logged: ``train/loss``, ``train/loss_dense``, ``train/loss_sparse``, ``train/weight_distance`` (after each step);
    ``<stage>/loss``, ``<stage>/acc`` (dense model on G), ``<stage>/acc_sparse`` (sparse twin on H),
    ``<stage>/acc_dense_weights_on_sparse`` (dense model's weights on H), ``<stage>/eps_hat`` (measured eps),
    ``<stage>/kept_fraction`` and ``<stage>/weight_distance``; ``test/filter_gap``; the figure
    ``weight_distance`` (over the fit's steps, kept in the checkpoint) at the end of fit and of test.

    Args:
        kind: the filter family: ``cheb`` (ChebConv with a fixed lambda_max), ``sgc`` (SGConv A_hat^K X W),
            ``tag`` (TAGConv), ``gpr`` (GPR-GNN: an MLP, then a learnable K-hop PageRank propagation) or ``bern``
            (BernNet: an MLP, then a learnable order-K Bernstein polynomial filter).
        in_channels: node feature dimension (must equal the data's).
        hidden: width of the hidden layers.
        num_classes: number of node classes (more than the data's largest label).
        num_layers: stacked filter layers (cheb, sgc, tag) or MLP layers (gpr, bern), >= 1.
        K: polynomial order per filter (>= 1): Chebyshev terms T_0..T_{K-1} (cheb), hops (sgc, tag), propagation
            steps (gpr, bern).
        alpha: gpr only: teleport probability of the personalized-PageRank initialisation gamma_k = alpha (1 -
            alpha)^k, in [0, 1].
        dropout: dropout probability on every layer's input, in [0, 1).
        lambda_max: cheb only: fixed bound on the largest eigenvalue of L_sym used to rescale it (2, the bound for
            every graph, filters G and H by the same polynomial).
        filter_coeffs: c_k of the fixed (untrained) Chebyshev filter p = sum_k c_k T_k(2 L_sym / lambda_max - I)
            whose gap ||p(L~_H) - p(L~_G)||_2 is logged as ``test/filter_gap`` (a property of G and H alone;
            :func:`framework_plugins.graph_sparsify.filters.filter_gap`).
        optimizer: callable params -> torch.optim.Optimizer, given this module's named parameter groups (both
            twins; YAML: ``class_path`` with ``init_args``); default AdamW(lr=1e-3).
        lr_scheduler: callable optimizer -> LR scheduler, stepped after every optimizer step (YAML: ``class_path``
            with ``init_args``); null = constant learning rate.
    """

    def __init__(
        self,
        kind: FilterKind = "cheb",
        in_channels: int = 16,
        hidden: int = 32,
        num_classes: int = 4,
        num_layers: int = 2,
        K: int = 3,
        alpha: float = 0.1,
        dropout: float = 0.0,
        lambda_max: float = 2.0,
        filter_coeffs: tuple[float, ...] = (0.5, 0.3, 0.15, 0.05),
        optimizer: OptimizerCallable = default_optimizer,
        lr_scheduler: LRSchedulerCallable | None = None,
    ) -> None:
        super().__init__(optimizer=optimizer, lr_scheduler=lr_scheduler)
        if not filter_coeffs:
            raise ValueError("filter_coeffs=() is empty; give at least one Chebyshev coefficient c_0.")
        self.save_hyperparameters(ignore=["optimizer", "lr_scheduler"])
        self.dense_model = PolyGNN(kind, in_channels, hidden, num_classes, num_layers, K, alpha, dropout, lambda_max)
        self.sparse_model = copy.deepcopy(self.dense_model)
        self.metrics = nn.ModuleDict(
            {
                f"{stage}_{which}": MulticlassAccuracy(num_classes, average="micro")
                for stage in ("val", "test")
                for which in ("dense", "sparse", "cross")
            }
        )
        self.graph: dict[str, torch.Tensor] = {}
        self.data_info: dict[str, float] = {}
        self.history: list[tuple[int, float]] = []
        self._eval: dict[str, torch.Tensor] = {}

    def setup(self, stage: str) -> None:
        data = self.data(SparsifiedGraph)
        self.graph, self.node_splits = data.graph, {k: v[0] for k, v in data.splits.items()}
        x, y = self.graph["x"], self.graph["y"]
        hp = self.hparams
        if x.shape[1] != hp.in_channels or int(y.max()) + 1 > hp.num_classes:
            raise ValueError(
                f"model.init_args.in_channels={hp.in_channels}, num_classes={hp.num_classes} but the data has "
                f"{x.shape[1]} features and {int(y.max()) + 1} classes; set them to match."
            )
        self.data_info = {"eps_hat": data.certificate.eps, "kept_fraction": data.sparsified.kept_fraction}

    def run(self, model: nn.Module, which: str) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """``model`` on the ``dense`` (G) or ``sparse`` (H) graph: (logits (n, C), representations)."""
        g = {k: v.to(self.device) for k, v in self.graph.items()}
        return model(g["x"], g[f"{which}_index"], g[f"{which}_weight"])

    def training_step(self, batch: list[torch.Tensor], batch_idx: int) -> torch.Tensor:
        idx = batch[0]
        y = self.graph["y"].to(self.device)[idx]
        rng = torch.get_rng_state()
        loss_dense = nn.functional.cross_entropy(self.run(self.dense_model, "dense")[0][idx], y)
        torch.set_rng_state(rng)  # the twin sees the same dropout masks
        loss_sparse = nn.functional.cross_entropy(self.run(self.sparse_model, "sparse")[0][idx], y)
        loss = loss_dense + loss_sparse
        self.log_dict({"train/loss": loss, "train/loss_dense": loss_dense, "train/loss_sparse": loss_sparse})
        return loss

    def on_train_batch_end(self, outputs: object, batch: object, batch_idx: int) -> None:
        distance = float(weight_distance(self.dense_model, self.sparse_model))
        self.history.append((self.global_step, distance))
        self.log("train/weight_distance", distance)

    def _eval_start(self) -> None:
        with torch.no_grad():
            self._eval = {
                "dense": self.run(self.dense_model, "dense")[0],
                "sparse": self.run(self.sparse_model, "sparse")[0],
                "cross": self.run(self.dense_model, "sparse")[0],
            }

    def on_validation_epoch_start(self) -> None:
        self._eval_start()

    def on_test_epoch_start(self) -> None:
        self._eval_start()

    def _eval_step(self, stage: str, idx: torch.Tensor) -> None:
        y = self.graph["y"].to(self.device)[idx]
        self.log(f"{stage}/loss", nn.functional.cross_entropy(self._eval["dense"][idx], y), batch_size=len(idx))
        for which, logits in self._eval.items():
            self.metrics[f"{stage}_{which}"].update(logits[idx], y)

    def validation_step(self, batch: list[torch.Tensor], batch_idx: int) -> None:
        self._eval_step("val", batch[0])

    def test_step(self, batch: list[torch.Tensor], batch_idx: int) -> None:
        self._eval_step("test", batch[0])

    def _eval_end(self, stage: str) -> None:
        names = {"dense": "acc", "sparse": "acc_sparse", "cross": "acc_dense_weights_on_sparse"}
        for which, name in names.items():
            # the Metric object: Lightning logs its value (synced across processes) and resets it
            self.log(f"{stage}/{name}", self.metrics[f"{stage}_{which}"])
        for key, value in self.data_info.items():
            self.log(f"{stage}/{key}", value)
        self.log(f"{stage}/weight_distance", float(weight_distance(self.dense_model, self.sparse_model)))

    def on_validation_epoch_end(self) -> None:
        self._eval_end("val")

    def on_test_epoch_end(self) -> None:
        self._eval_end("test")
        self.log("test/filter_gap", self.fixed_filter_gap())
        self._figure()

    def fixed_filter_gap(self) -> float:
        """||p(L~_H) - p(L~_G)||_2 of the fixed Chebyshev filter with coefficients ``filter_coeffs`` (depends on G and
        H only, not on training)."""
        g = self.graph
        return filter_gap(
            self.hparams.filter_coeffs,
            (g["dense_index"], g["dense_weight"]),
            (g["sparse_index"], g["sparse_weight"]),
            len(g["y"]),
            self.hparams.lambda_max,
        )

    def predict_step(self, batch: list[torch.Tensor], batch_idx: int) -> torch.Tensor:
        """(2, batch, C): logits of the dense model on G and of the sparse twin on H at the batch's nodes."""
        idx = batch[0]
        return torch.stack([self.run(self.dense_model, "dense")[0][idx], self.run(self.sparse_model, "sparse")[0][idx]])

    def prediction_columns(
        self, batch: list[torch.Tensor], prediction: torch.Tensor, index: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        """The predictions file's columns (:class:`~framework.callbacks.PredictionWriter`): ``node`` (the node's id
        in the graph), ``dense_logits`` (C per node) and ``sparse_logits``."""
        return {"node": batch[0], "dense_logits": prediction[0], "sparse_logits": prediction[1]}

    @torch.no_grad()
    def geometry_pairs(self) -> tuple[dict[str, tuple[torch.Tensor, torch.Tensor]], torch.Tensor]:
        """Representations of the dense model on G paired with (a) the same weights on H (``same_weights/layer<i>``:
        the paper's representation perturbation) and (b) the sparse twin on H (``twin/layer<i>``)."""
        reference = self.run(self.dense_model, "dense")[1]
        same = self.run(self.dense_model, "sparse")[1]
        twin = self.run(self.sparse_model, "sparse")[1]
        pairs = {}
        for i, (x, y_same, y_twin) in enumerate(zip(reference, same, twin, strict=True)):
            pairs[f"same_weights/layer{i}"] = (x, y_same)
            pairs[f"twin/layer{i}"] = (x, y_twin)
        return pairs, self.graph["y"].to(self.device)

    @torch.no_grad()
    def probe_features(self, split: str) -> tuple[torch.Tensor, torch.Tensor]:
        """For :class:`~framework.callbacks.DecoupledProbe`: the sparse twin's first-layer representation on H (the
        hidden layer before ReLU; the propagated output for gpr / bern) at the split's nodes, (n, width), and binary
        labels (n,): +1 for the first half of the classes, -1 otherwise."""
        nodes = self.node_splits[split].to(self.device)
        features = self.run(self.sparse_model, "sparse")[1][0][nodes]
        classes = self.graph["y"].to(self.device)[nodes]
        return features, torch.where(classes < self.hparams.num_classes // 2, 1.0, -1.0)

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["graph_sparsify_history"] = self.history  # a resumed fit's or a test's figure has the whole curve

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        self.history = list(checkpoint.get("graph_sparsify_history", self.history))

    def on_fit_end(self) -> None:
        self._figure()

    def _figure(self) -> None:
        """``weight_distance``: the relative twin-weight distance over the fit's steps (nothing without a history)."""
        if not self.history:
            return
        steps, dist = zip(*self.history, strict=True)
        with figure(self.trainer, "weight_distance", figsize=(5, 3)) as (_, ax):
            ax.plot(steps, dist)
            ax.set(xlabel="step", ylabel="||theta_G - theta_H|| / ||theta_G||", title="twin-trajectory divergence")

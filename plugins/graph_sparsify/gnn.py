"""Polynomial-filter GNNs for node classification that return every graph-dependent representation."""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn
from torch_geometric.nn import SGConv, TAGConv

from framework_plugins.graph_sparsify.filters import BernProp, FixedCheb, GPRProp

FilterKind = Literal["cheb", "sgc", "tag", "gpr", "bern"]
KINDS = ("cheb", "sgc", "tag", "gpr", "bern")


class PolyGNN(nn.Module):
    """Node classifier with polynomial graph filters.

    ``cheb`` / ``sgc`` / ``tag``: ``num_layers`` stacked filter layers (ChebConv with fixed lambda_max, SGConv
    A_hat^K X W, TAGConv sum_k (D^{-1/2} A D^{-1/2})^k X W_k), ReLU between; the representations are every layer's
    output. ``gpr`` / ``bern``: the papers' design, an MLP (``num_layers`` linear layers) followed by one learnable
    K-hop polynomial propagation (:class:`GPRProp`, :class:`BernProp`); the representation is the propagated output.

    forward(x (n, in_channels), edge_index (2, E), edge_weight (E,) | None) -> (logits (n, num_classes),
    [representations (n, *)]).
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
    ) -> None:
        super().__init__()
        if kind not in KINDS:
            raise ValueError(f"kind={kind!r} is unknown; choose one of {KINDS}.")
        if num_layers < 1 or K < 1:
            raise ValueError(f"num_layers={num_layers} and K={K} must be >= 1.")
        self.kind, self.dropout = kind, dropout
        dims = [in_channels] + [hidden] * (num_layers - 1) + [num_classes]
        pairs = list(zip(dims[:-1], dims[1:], strict=True))
        if kind in ("gpr", "bern"):
            self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in pairs)
            self.prop = GPRProp(K, alpha) if kind == "gpr" else BernProp(K)
        else:
            make = {
                "cheb": lambda a, b: FixedCheb(a, b, K, lambda_max),
                "sgc": lambda a, b: SGConv(a, b, K=K),
                "tag": lambda a, b: TAGConv(a, b, K=K),
            }[kind]
            self.layers = nn.ModuleList(make(a, b) for a, b in pairs)

    def mlp(self, x: torch.Tensor) -> torch.Tensor:
        """gpr / bern: the graph-free MLP before the propagation (dropout on each layer's input, ReLU between).
        x: (n, in_channels) -> (n, num_classes)."""
        for i, layer in enumerate(self.layers):
            x = layer(nn.functional.dropout(x, self.dropout, self.training))
            if i < len(self.layers) - 1:
                x = torch.relu(x)
        return x

    def forward(
        self, x: torch.Tensor, edge_index: torch.Tensor, edge_weight: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        if self.kind in ("gpr", "bern"):
            x = self.prop(self.mlp(x), edge_index, edge_weight)
            return x, [x]
        reps = []
        for i, layer in enumerate(self.layers):
            x = layer(nn.functional.dropout(x, self.dropout, self.training), edge_index, edge_weight)
            reps.append(x)
            if i < len(self.layers) - 1:
                x = torch.relu(x)
        return x, reps

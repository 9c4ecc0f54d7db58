"""The model decoupled descent trains: a linear first layer, a smooth activation and a fixed readout, logistic loss.

    A = X W^T / sqrt(d)   (n, K);     f(P) = sum_k s_k sigma(P_k);     l(P, y) = log(1 + exp(-y f(P))),  y in {-1, +1}

K = 1, sigma = identity, s = 1 is the GLM (logistic regression) of the state evolution; K = 2, sigma = log cosh,
s = (1, -1) is a two-layer network that can represent XOR. Only W is trained (the readout is a buffer), so the
Onsager correction of :mod:`framework.optim.decoupled_descent` applies exactly.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

Activation = Literal["linear", "logcosh", "tanh"]


def log_cosh(p: torch.Tensor) -> torch.Tensor:
    """log cosh p = |p| + log1p(exp(-2|p|)) - log 2 (overflow-free); sigma' = tanh, sigma'' = 1 - tanh^2."""
    a = p.abs()
    return a + torch.log1p(torch.exp(-2 * a)) - math.log(2.0)


ACTIVATIONS = {"linear": lambda p: p, "logcosh": log_cosh, "tanh": torch.tanh}


def classification_error(score: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Per-sample 0-1 error of sign(score) against y in {-1, +1}; a tie (score = 0) counts 1/2. (n,) -> (n,)."""
    margin = y * score
    return (margin < 0).to(score.dtype) + 0.5 * (margin == 0).to(score.dtype)


class ReadoutNetwork(nn.Module):
    """f(x) = sum_k s_k sigma(x . w_k / sqrt(d)) with trained W (K, d) and a fixed readout s (K,).

    Args:
        n_features: d.
        width: K.
        activation: ``linear`` (use with K = 1: the GLM), ``logcosh`` or ``tanh`` (smooth, as DD requires).
        readout: s; default all ones.
        init_scale: W^0 entries ~ N(0, init_scale^2) from the global RNG; 0 gives W^0 = 0 (the GLM of the state
            evolution). A symmetric activation needs init_scale > 0 (W = 0 is a critical point).
    """

    def __init__(
        self,
        n_features: int,
        width: int = 1,
        activation: Activation = "linear",
        readout: list[float] | None = None,
        init_scale: float = 0.0,
    ) -> None:
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation={activation!r} is unknown; choose one of {list(ACTIVATIONS)}.")
        readout = [1.0] * width if readout is None else list(readout)
        if len(readout) != width:
            raise ValueError(f"readout={readout} has {len(readout)} entries but width={width}; give one per unit.")
        self.n_features, self.activation = n_features, activation
        self.first = nn.Linear(n_features, width, bias=False)
        nn.init.normal_(self.first.weight, std=init_scale) if init_scale > 0 else nn.init.zeros_(self.first.weight)
        self.register_buffer("readout", torch.tensor(readout, dtype=torch.float32))

    def preactivations(self, x: torch.Tensor) -> torch.Tensor:
        """A = X W^T / sqrt(d). x: (n, d) -> (n, K)."""
        return self.first(x) / math.sqrt(self.n_features)

    def score(self, p: torch.Tensor) -> torch.Tensor:
        """f(P) = sum_k s_k sigma(P_k). p: (n, K) -> (n,)."""
        return ACTIVATIONS[self.activation](p) @ self.readout.to(p.dtype)

    def loss(self, p: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Per-sample logistic loss l(P_i, y_i) = softplus(-y_i f(P_i)). p: (n, K), y: (n,) -> (n,)."""
        return F.softplus(-y * self.score(p))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Test-time score f(x W^T / sqrt(d)). x: (n, d) -> (n,)."""
        return self.score(self.preactivations(x))

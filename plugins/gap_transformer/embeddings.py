"""Triplet tokens (time, variable, value) and their embedding (STraTS, Tipirneni & Reddy 2022, Sec. 4.1)."""

from __future__ import annotations

import math

import torch
from torch import nn


def grid_to_triplets(
    values: torch.Tensor, mask: torch.Tensor, times: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """The observed cells of a visit grid as a padded set of triplets, in time order.

    Args:
        values: (B, V, F) measures (any value where unobserved); mask: (B, V, F) 1 = observed; times: (B, V).

    Returns:
        value (B, L), variable (B, L) int64 in [0, F), time (B, L), valid (B, L) bool, with L the largest number of
        observations of a row in the batch (at least 1); padding has valid = False.
    """
    b, v, f = values.shape
    observed = mask.reshape(b, v * f) > 0
    order = torch.argsort((~observed).to(torch.int8), dim=1, stable=True)  # observed first, time order kept
    length = max(int(observed.sum(1).max()), 1)
    order = order[:, :length]
    value = values.reshape(b, v * f).gather(1, order)
    variable = (order % f).long()
    time = times.repeat_interleave(f, dim=1).gather(1, order)
    valid = observed.gather(1, order)
    return value.masked_fill(~valid, 0.0), variable, time.masked_fill(~valid, 0.0), valid


class ContinuousValueEmbedding(nn.Module):
    """CVE(x) = W_2 tanh(W_1 x + b_1): 1 -> floor(sqrt(d)) -> d, no output bias, Xavier init (STraTS Eq. 2)."""

    def __init__(self, d_model: int) -> None:
        super().__init__()
        hidden = max(int(math.isqrt(d_model)), 1)
        self.inner = nn.Linear(1, hidden)
        self.outer = nn.Linear(hidden, d_model, bias=False)
        nn.init.xavier_uniform_(self.inner.weight)
        nn.init.xavier_uniform_(self.outer.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (...) -> (..., d_model)."""
        return self.outer(torch.tanh(self.inner(x.unsqueeze(-1))))


class TripletEmbedding(nn.Module):
    """e = Embedding(variable) + CVE_value(value) + CVE_time(time) (STraTS Eq. 3)."""

    def __init__(self, n_variables: int, d_model: int) -> None:
        super().__init__()
        self.variable = nn.Embedding(n_variables, d_model)
        self.value = ContinuousValueEmbedding(d_model)
        self.time = ContinuousValueEmbedding(d_model)

    def forward(self, value: torch.Tensor, variable: torch.Tensor, time: torch.Tensor) -> torch.Tensor:
        """(B, L) each -> (B, L, d_model)."""
        return self.variable(variable) + self.value(value) + self.time(time)


class StaticEncoder(nn.Module):
    """Demographics: Linear(S, 2d) - tanh - Linear(2d, d) (STraTS Sec. 4.3)."""

    def __init__(self, n_static: int, d_model: int) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(n_static, 2 * d_model), nn.Tanh(), nn.Linear(2 * d_model, d_model))

    def forward(self, static: torch.Tensor) -> torch.Tensor:
        """(B, S) -> (B, d_model)."""
        return self.net(static)

"""GRU-D (Che et al., Sci. Rep. 8:6085, 2018) with deltas in years for irregular visits."""

from __future__ import annotations

import torch
from torch import nn

from framework_plugins.gap_transformer.embeddings import StaticEncoder


def grud_deltas(times: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Time since each measure was last observed (Che et al. Eq. 2, irregular s_t):
    delta_1 = 0; delta_t = s_t - s_{t-1} + delta_{t-1} if m_{t-1} = 0, else s_t - s_{t-1}.

    times: (B, V) visit times s_t; mask: (B, V, F) -> (B, V, F) in the units of ``times`` (years)."""
    gaps = torch.diff(times, dim=1, prepend=times[:, :1]).unsqueeze(-1)  # (B, V, 1), 0 at t = 1
    deltas = [torch.zeros_like(mask[:, 0])]
    for t in range(1, times.shape[1]):
        deltas.append(gaps[:, t] + (1 - mask[:, t - 1]) * deltas[-1])
    return torch.stack(deltas, dim=1)


class GRUDCell(nn.Module):
    """One GRU-D step (Che et al. Eqs. 3-5):
    gamma_x = exp(-max(0, w_x * delta + b_x))  (diagonal),  gamma_h = exp(-max(0, W_h delta + b_h));
    x_hat = m x + (1 - m)(gamma_x x_last + (1 - gamma_x) x_mean),  h_hat = gamma_h h;
    h' = GRU([x_hat ; m], h_hat). ``x_mean`` is 0: inputs are z-scored with training-fold statistics."""

    def __init__(self, n_features: int, hidden: int) -> None:
        super().__init__()
        self.decay_x_weight = nn.Parameter(torch.zeros(n_features))
        self.decay_x_bias = nn.Parameter(torch.zeros(n_features))
        self.decay_h = nn.Linear(n_features, hidden)
        self.gru = nn.GRUCell(2 * n_features, hidden)

    def decays(self, delta: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(gamma_x (B, F), gamma_h (B, H)) for delta (B, F)."""
        gamma_x = torch.exp(-torch.relu(self.decay_x_weight * delta + self.decay_x_bias))
        return gamma_x, torch.exp(-torch.relu(self.decay_h(delta)))

    def forward(
        self, x: torch.Tensor, m: torch.Tensor, delta: torch.Tensor, x_last: torch.Tensor, h: torch.Tensor
    ) -> torch.Tensor:
        """x, m, delta, x_last: (B, F); h: (B, H) -> (B, H)."""
        gamma_x, gamma_h = self.decays(delta)
        x_hat = m * x + (1 - m) * gamma_x * x_last
        return self.gru(torch.cat([x_hat, m], dim=-1), gamma_h * h)


class GRUDNet(nn.Module):
    """GRU-D over the visits; padded visits leave the state unchanged, so the final state is the one at the anchor
    visit; head([h ; e_static]) -> 1."""

    def __init__(self, n_variables: int, n_static: int, hidden: int = 64, dropout: float = 0.2) -> None:
        super().__init__()
        self.hidden = hidden
        self.cell = GRUDCell(n_variables, hidden)
        self.static = StaticEncoder(n_static, hidden)
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(2 * hidden, hidden), nn.GELU(), nn.Linear(hidden, 1))

    def forward(
        self,
        values: torch.Tensor,
        mask: torch.Tensor,
        times: torch.Tensor,
        visit_valid: torch.Tensor,
        static: torch.Tensor,
    ) -> torch.Tensor:
        deltas = grud_deltas(times, mask)
        h = values.new_zeros(len(values), self.hidden)
        x_last = torch.zeros_like(values[:, 0])
        for t in range(values.shape[1]):
            m = mask[:, t]
            step = self.cell(values[:, t], m, deltas[:, t], x_last, h)
            keep = visit_valid[:, t : t + 1].to(h.dtype)
            h = keep * step + (1 - keep) * h
            x_last = m * values[:, t] + (1 - m) * x_last
        return self.head(torch.cat([h, self.static(static)], dim=-1)).squeeze(-1)

"""The sequence networks compared by the paper. Each maps an anchor's history to one number (the residual or the
change itself, see ``module.py``):

    forward(values (B, V, F), mask (B, V, F), times (B, V), visit_valid (B, V), static (B, S)) -> (B,)

``values`` are z-scored measures (0 where unobserved), ``times`` years relative to the anchor (<= 0).
"""

from __future__ import annotations

import torch
from torch import nn

from framework_plugins.gap_transformer.attention import TransformerBlock, time_distances
from framework_plugins.gap_transformer.embeddings import StaticEncoder, TripletEmbedding, grid_to_triplets


class GapAwareTransformerNet(nn.Module):
    """Residual gap-aware transformer: triplet tokens + a learned [CLS] token at the anchor time (t = 0, always a
    valid key), ``n_layers`` pre-norm blocks with the time-gap penalty, then head([LN(h_CLS) ; e_static])."""

    def __init__(
        self,
        n_variables: int,
        n_static: int,
        d_model: int = 64,
        n_heads: int = 4,
        n_layers: int = 2,
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        self.embed = TripletEmbedding(n_variables, d_model)
        self.cls = nn.Parameter(torch.zeros(1, 1, d_model))
        self.blocks = nn.ModuleList(
            TransformerBlock(d_model, n_heads, dropout, gap_penalty=True) for _ in range(n_layers)
        )
        self.norm = nn.LayerNorm(d_model)
        self.static = StaticEncoder(n_static, d_model)
        self.head = nn.Sequential(nn.Linear(2 * d_model, d_model), nn.GELU(), nn.Linear(d_model, 1))

    def forward(
        self,
        values: torch.Tensor,
        mask: torch.Tensor,
        times: torch.Tensor,
        visit_valid: torch.Tensor,
        static: torch.Tensor,
    ) -> torch.Tensor:
        value, variable, time, valid = grid_to_triplets(values, mask, times)
        x = torch.cat([self.cls.expand(len(value), -1, -1), self.embed(value, variable, time)], dim=1)
        time = torch.cat([time.new_zeros(len(time), 1), time], dim=1)
        valid = torch.cat([valid.new_ones(len(valid), 1), valid], dim=1)
        distances = time_distances(time)
        for block in self.blocks:
            x = block(x, distances, valid)
        return self.head(torch.cat([self.norm(x[:, 0]), self.static(static)], dim=-1)).squeeze(-1)


class FusionAttention(nn.Module):
    """e_T = sum_i alpha_i c_i, alpha = softmax_i(u^T tanh(W c_i + b)) over valid tokens (STraTS Eq. 6)."""

    def __init__(self, d_model: int) -> None:
        super().__init__()
        self.score = nn.Sequential(nn.Linear(d_model, d_model), nn.Tanh(), nn.Linear(d_model, 1, bias=False))

    def forward(self, c: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        """c: (B, L, d), valid: (B, L) -> (B, d)."""
        logits = self.score(c).squeeze(-1).masked_fill(~valid, torch.finfo(c.dtype).min)
        return (torch.softmax(logits, dim=1).unsqueeze(-1) * c).sum(1)


class STraTSNet(nn.Module):
    """STraTS: triplet embedding, ``n_layers`` contextual blocks (no gap penalty), fusion attention, demographics
    encoder; ``head`` reads [e_T ; e_demo] (2d) -> 1 and ``forecast_head`` (2d -> F) serves the self-supervised
    forecasting pretext (:meth:`forecast`)."""

    def __init__(
        self,
        n_variables: int,
        n_static: int,
        d_model: int = 64,
        n_heads: int = 4,
        n_layers: int = 2,
        dropout: float = 0.2,
    ) -> None:
        super().__init__()
        self.embed = TripletEmbedding(n_variables, d_model)
        self.blocks = nn.ModuleList(
            TransformerBlock(d_model, n_heads, dropout, gap_penalty=False) for _ in range(n_layers)
        )
        self.fusion = FusionAttention(d_model)
        self.static = StaticEncoder(n_static, d_model)
        self.head = nn.Linear(2 * d_model, 1)
        self.forecast_head = nn.Linear(2 * d_model, n_variables)

    def embedding(
        self, values: torch.Tensor, mask: torch.Tensor, times: torch.Tensor, static: torch.Tensor
    ) -> torch.Tensor:
        """[e_T ; e_demo]: (B, 2d)."""
        value, variable, time, valid = grid_to_triplets(values, mask, times)
        x = self.embed(value, variable, time)
        for block in self.blocks:
            x = block(x, None, valid)
        return torch.cat([self.fusion(x, valid), self.static(static)], dim=-1)

    def forward(
        self,
        values: torch.Tensor,
        mask: torch.Tensor,
        times: torch.Tensor,
        visit_valid: torch.Tensor,
        static: torch.Tensor,
    ) -> torch.Tensor:
        return self.head(self.embedding(values, mask, times, static)).squeeze(-1)

    def forecast(
        self, values: torch.Tensor, mask: torch.Tensor, times: torch.Tensor, static: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Forecasting pretext (STraTS Sec. 4.4, adapted to visits): from the observations strictly before the
        anchor visit predict every measure at the anchor visit (t = 0).

        Returns (prediction (B, F), target (B, F), weight (B, F)): weight = 1 where the anchor visit observed the
        measure and the row has an earlier observation."""
        before = mask * (times < 0).unsqueeze(-1).to(mask.dtype)
        at_anchor = mask * (times == 0).unsqueeze(-1).to(mask.dtype)
        target = (values * at_anchor).sum(1)
        weight = at_anchor.sum(1).clamp(max=1) * (before.flatten(1).sum(1, keepdim=True) > 0).to(mask.dtype)
        return self.forecast_head(self.embedding(values, before, times, static)), target, weight

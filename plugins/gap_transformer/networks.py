"""The sequence networks compared by the paper. Each maps an anchor's history to one number (the residual or the
change itself, see ``module.py``):

    forward(values (B, V, F), mask (B, V, F), times (B, V), visit_valid (B, V), static (B, S)) -> (B,)

``values`` are z-scored measures (0 where unobserved), ``times`` years relative to the anchor (<= 0).
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from framework_plugins.gap_transformer.attention import STraTSBlock, TransformerBlock, time_distances
from framework_plugins.gap_transformer.embeddings import (
    ContinuousValueEmbedding,
    StaticEncoder,
    TripletEmbedding,
    grid_to_triplets,
)


class GridEmbedding(nn.Module):
    """One token per visit (the dense-grid ablation of triplet tokens): e = Linear(2F, d)([values ; mask]) +
    CVE_time(t)."""

    def __init__(self, n_variables: int, d_model: int) -> None:
        super().__init__()
        self.visit = nn.Linear(2 * n_variables, d_model)
        self.time = ContinuousValueEmbedding(d_model)

    def forward(self, values: torch.Tensor, mask: torch.Tensor, times: torch.Tensor) -> torch.Tensor:
        """(B, V, F), (B, V, F), (B, V) -> (B, V, d)."""
        return self.visit(torch.cat([values, mask], dim=-1)) + self.time(times)


class GapAwareTransformerNet(nn.Module):
    """Residual gap-aware transformer: tokens + a learned [CLS] token at the anchor time (t = 0, always a valid
    key), ``n_layers`` pre-norm blocks, then head([LN(h_CLS) ; e_static]).

    Ablation switches: ``gap_penalty`` False gives plain attention (no rho, no bias beyond the padding mask);
    ``tokens`` = ``triplet`` (one token per observed (time, variable, value)) or ``grid`` (one token per visit)."""

    def __init__(
        self,
        n_variables: int,
        n_static: int,
        d_model: int = 64,
        n_heads: int = 4,
        n_layers: int = 2,
        dropout: float = 0.1,
        gap_penalty: bool = True,
        tokens: Literal["triplet", "grid"] = "triplet",
    ) -> None:
        super().__init__()
        if tokens not in ("triplet", "grid"):
            raise ValueError(f"model.init_args.tokens={tokens!r} is unknown; use 'triplet' or 'grid'.")
        self.tokens = tokens
        self.embed = (
            TripletEmbedding(n_variables, d_model) if tokens == "triplet" else GridEmbedding(n_variables, d_model)
        )
        self.cls = nn.Parameter(torch.zeros(1, 1, d_model))
        self.blocks = nn.ModuleList(
            TransformerBlock(d_model, n_heads, dropout, gap_penalty=gap_penalty) for _ in range(n_layers)
        )
        self.norm = nn.LayerNorm(d_model)
        self.static = StaticEncoder(n_static, d_model)
        self.head = nn.Sequential(nn.Linear(2 * d_model, d_model), nn.GELU(), nn.Linear(d_model, 1))

    def slopes(self) -> torch.Tensor | None:
        """(n_layers, H) learned gap penalties softplus(rho) per block and head, or None without them."""
        slopes = [block.attn.slopes() for block in self.blocks]
        return None if slopes[0] is None else torch.stack(slopes)

    def forward(
        self,
        values: torch.Tensor,
        mask: torch.Tensor,
        times: torch.Tensor,
        visit_valid: torch.Tensor,
        static: torch.Tensor,
    ) -> torch.Tensor:
        if self.tokens == "triplet":
            value, variable, time, valid = grid_to_triplets(values, mask, times)
            tokens = self.embed(value, variable, time)
        else:
            tokens, time, valid = self.embed(values, mask, times), times, visit_valid
        x = torch.cat([self.cls.expand(len(tokens), -1, -1), tokens], dim=1)
        time = torch.cat([time.new_zeros(len(time), 1), time], dim=1)
        valid = torch.cat([valid.new_ones(len(valid), 1), valid], dim=1)
        distances = time_distances(time) if self.blocks[0].attn.rho is not None else None
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
    """STraTS as in its reference code (Tipirneni & Reddy 2022; github.com/sindhura97/STraTS): triplet embedding
    with dropout, ``n_layers`` :class:`STraTSBlock` (no LayerNorm, averaged residuals, attention dropout), fusion
    attention, demographics encoder; while training each variable of a row is dropped with probability
    ``dropout`` (variable dropout). ``head`` reads [e_T ; e_demo] (2d) -> 1; the forecasting pretext uses
    ``forecast_head`` (2d -> F) (:meth:`forecast`), and after pretraining (``finetune``) the prediction is
    ``finetune_head(forecast_head([e_T ; e_demo]))`` (F -> 1), as the reference code fine-tunes."""

    def __init__(
        self,
        n_variables: int,
        n_static: int,
        d_model: int = 64,
        n_heads: int = 4,
        n_layers: int = 2,
        dropout: float = 0.2,
        finetune: bool = False,
    ) -> None:
        super().__init__()
        self.dropout = dropout
        self.finetune = finetune
        self.embed = TripletEmbedding(n_variables, d_model)
        self.blocks = nn.ModuleList(STraTSBlock(d_model, n_heads, dropout, dropout) for _ in range(n_layers))
        self.fusion = FusionAttention(d_model)
        self.static = StaticEncoder(n_static, d_model)
        self.head = nn.Linear(2 * d_model, 1)
        self.forecast_head = nn.Linear(2 * d_model, n_variables)
        self.finetune_head = nn.Linear(n_variables, 1)

    def embedding(
        self, values: torch.Tensor, mask: torch.Tensor, times: torch.Tensor, static: torch.Tensor
    ) -> torch.Tensor:
        """[e_T ; e_demo]: (B, 2d)."""
        value, variable, time, valid = grid_to_triplets(values, mask, times)
        if self.training and self.dropout > 0:
            dropped = torch.rand(len(value), mask.shape[-1], device=value.device) < self.dropout  # (B, F)
            valid = valid & ~dropped.gather(1, variable)
        x = F.dropout(self.embed(value, variable, time), self.dropout, self.training)
        for block in self.blocks:
            x = block(x, valid)
        return torch.cat([self.fusion(x, valid), self.static(static)], dim=-1)

    def forward(
        self,
        values: torch.Tensor,
        mask: torch.Tensor,
        times: torch.Tensor,
        visit_valid: torch.Tensor,
        static: torch.Tensor,
    ) -> torch.Tensor:
        e = self.embedding(values, mask, times, static)
        return (self.finetune_head(self.forecast_head(e)) if self.finetune else self.head(e)).squeeze(-1)

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

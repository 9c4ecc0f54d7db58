"""Self-attention with a learned, nonnegative time-gap penalty per head (an ALiBi-style bias on real time gaps).

s_ij = q_i . k_j / sqrt(d_h) - softplus(rho_h) |t_i - t_j| + m_j,   m_j = 0 for a real key, finfo.min for padding,

computed by ``F.scaled_dot_product_attention`` with the bias as an additive float ``attn_mask``: one (B, H, L, L)
tensor per layer. finfo.min (not -inf) keeps a row whose keys are all padding finite (uniform weights, no NaN).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def time_distances(times: torch.Tensor) -> torch.Tensor:
    """|t_i - t_j|: times (B, L) -> (B, 1, L, L), computed once per forward and shared by every layer."""
    return (times[:, :, None] - times[:, None, :]).abs().unsqueeze(1)


def attention_bias(
    distances: torch.Tensor | None, slopes: torch.Tensor | None, key_valid: torch.Tensor, dtype: torch.dtype
) -> torch.Tensor:
    """The additive mask -slope_h |t_i - t_j| with padded keys set to finfo.min.

    Args:
        distances: (B, 1, L, L) from :func:`time_distances`, or None for no gap penalty.
        slopes: (H,) nonnegative per-head penalties (softplus(rho)), or None.
        key_valid: (B, L) bool.

    Returns:
        (B, H, L, L) with a gap penalty, else (B, 1, L, L).
    """
    b, n = key_valid.shape
    if distances is None:
        bias = torch.zeros(b, 1, n, n, dtype=dtype, device=key_valid.device)
    else:
        bias = (slopes.to(dtype)[None, :, None, None] * distances.to(dtype)).neg_()
    return bias.masked_fill_(~key_valid[:, None, None, :], torch.finfo(dtype).min)


class GapAwareSelfAttention(nn.Module):
    """Multi-head self-attention; with ``gap_penalty`` each head h has a learned rho_h and slope softplus(rho_h),
    initialised geometrically between ``slope_range`` (per year); without it, plain scaled dot-product attention.
    ``attention_dropout`` p > 0 (STraTS) masks each (query, key) score with probability p while training (a
    (B, H, L, L) Bernoulli draw per layer, so the gap transformer leaves it at 0 and uses residual dropout)."""

    def __init__(
        self,
        d_model: int,
        n_heads: int,
        gap_penalty: bool = True,
        slope_range: tuple[float, float] = (0.1, 1.0),
        attention_dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if d_model % n_heads:
            raise ValueError(f"d_model={d_model} must be divisible by n_heads={n_heads}.")
        self.n_heads = n_heads
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.proj = nn.Linear(d_model, d_model)
        self.attention_dropout = attention_dropout
        self.rho: nn.Parameter | None = None
        if gap_penalty:
            lo, hi = slope_range
            slopes = torch.logspace(torch.log10(torch.tensor(lo)), torch.log10(torch.tensor(hi)), n_heads)
            self.rho = nn.Parameter(torch.log(torch.expm1(slopes)))  # softplus^-1

    def slopes(self) -> torch.Tensor | None:
        """(H,) softplus(rho) >= 0, or None without a gap penalty."""
        return None if self.rho is None else F.softplus(self.rho)

    def forward(self, x: torch.Tensor, distances: torch.Tensor | None, key_valid: torch.Tensor) -> torch.Tensor:
        """x: (B, L, d), distances: (B, 1, L, L) (unused without a gap penalty), key_valid: (B, L) -> (B, L, d)."""
        b, n, d = x.shape
        q, k, v = self.qkv(x).view(b, n, 3, self.n_heads, d // self.n_heads).permute(2, 0, 3, 1, 4)
        bias = attention_bias(distances if self.rho is not None else None, self.slopes(), key_valid, q.dtype)
        if self.training and self.attention_dropout > 0:
            dropped = torch.rand(b, self.n_heads, n, n, device=x.device) < self.attention_dropout
            bias = bias.expand(b, self.n_heads, n, n).masked_fill(dropped, torch.finfo(q.dtype).min)
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=bias)
        return self.proj(y.transpose(1, 2).reshape(b, n, d))


class TransformerBlock(nn.Module):
    """Pre-norm block: x + attn(LN(x)), then x + FFN(LN(x)) with FFN d -> ff_mult d (GELU) -> d."""

    def __init__(self, d_model: int, n_heads: int, dropout: float, gap_penalty: bool, ff_mult: int = 2) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(d_model)
        self.attn = GapAwareSelfAttention(d_model, n_heads, gap_penalty)
        self.norm2 = nn.LayerNorm(d_model)
        self.ffn = nn.Sequential(
            nn.Linear(d_model, ff_mult * d_model), nn.GELU(), nn.Dropout(dropout), nn.Linear(ff_mult * d_model, d_model)
        )
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, distances: torch.Tensor | None, key_valid: torch.Tensor) -> torch.Tensor:
        """x: (B, L, d) -> (B, L, d)."""
        x = x + self.drop(self.attn(self.norm1(x), distances, key_valid))
        return x + self.drop(self.ffn(self.norm2(x)))


class STraTSBlock(nn.Module):
    """The block of the STraTS reference code (github.com/sindhura97/STraTS, ``modeling_strats.py``): no
    LayerNorm, residuals averaged, x = (x + drop(MHA(x))) / 2, then x = (x + drop(FFN(x))) / 2 with FFN
    d -> 2d (GELU) -> d, and dropout ``attention_dropout`` on the attention scores; no gap penalty."""

    def __init__(self, d_model: int, n_heads: int, dropout: float, attention_dropout: float) -> None:
        super().__init__()
        self.attn = GapAwareSelfAttention(d_model, n_heads, gap_penalty=False, attention_dropout=attention_dropout)
        self.ffn = nn.Sequential(nn.Linear(d_model, 2 * d_model), nn.GELU(), nn.Linear(2 * d_model, d_model))
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, key_valid: torch.Tensor) -> torch.Tensor:
        """x: (B, L, d) -> (B, L, d)."""
        x = (x + self.drop(self.attn(x, None, key_valid))) / 2
        return (x + self.drop(self.ffn(x))) / 2

"""A small decoder-only transformer whose MLPs are smooth (softmax-gated) mixtures of experts."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class CausalSelfAttention(nn.Module):
    """Multi-head causal attention with a fused ``qkv`` projection: softmax(q k^T / sqrt(d_h) + causal mask) v."""

    def __init__(self, d_model: int, n_heads: int) -> None:
        super().__init__()
        if d_model % n_heads:
            raise ValueError(f"d_model={d_model} must be divisible by n_heads={n_heads}")
        self.n_heads = n_heads
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.proj = nn.Linear(d_model, d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (batch, time, d_model) -> (batch, time, d_model)."""
        b, t, d = x.shape
        q, k, v = self.qkv(x).view(b, t, 3, self.n_heads, d // self.n_heads).permute(2, 0, 3, 1, 4)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.proj(y.transpose(1, 2).reshape(b, t, d))


class MoEMLP(nn.Module):
    """y = sum_e g_e(x) W2_e gelu(W1_e x), g = softmax(router(x)); with ``top_k`` only the k largest gates are kept
    and renormalised. Experts are stored stacked, ``experts_in: (E, d_ff, d)`` and ``experts_out: (E, d, d_ff)``,
    so blockwise Muon orthogonalizes each expert separately. Every expert is evaluated (exact, fine for small E)."""

    def __init__(self, d_model: int, d_ff: int, n_experts: int, top_k: int | None = None) -> None:
        super().__init__()
        if top_k is not None and not 1 <= top_k <= n_experts:
            raise ValueError(f"top_k={top_k} must be in [1, n_experts={n_experts}] or null for dense gating")
        self.top_k = top_k
        self.router = nn.Linear(d_model, n_experts, bias=False)
        self.experts_in = nn.Parameter(torch.randn(n_experts, d_ff, d_model) / d_model**0.5)
        self.experts_out = nn.Parameter(torch.randn(n_experts, d_model, d_ff) / d_ff**0.5)

    def gates(self, x: torch.Tensor) -> torch.Tensor:
        """(batch, time, E) mixture weights, rows summing to 1."""
        g = torch.softmax(self.router(x), dim=-1)
        if self.top_k is None or self.top_k == g.shape[-1]:
            return g
        top = torch.topk(g, self.top_k, dim=-1)
        kept = torch.zeros_like(g).scatter(-1, top.indices, top.values)
        return kept / kept.sum(-1, keepdim=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        hidden = F.gelu(torch.einsum("btd,efd->btef", x, self.experts_in))
        out = torch.einsum("btef,edf->bted", hidden, self.experts_out)
        return (self.gates(x).unsqueeze(-1) * out).sum(-2)


class Block(nn.Module):
    """Pre-norm transformer block: x + attn(norm(x)), then + moe(norm(x))."""

    def __init__(self, d_model: int, n_heads: int, d_ff: int, n_experts: int, top_k: int | None) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(d_model)
        self.attn = CausalSelfAttention(d_model, n_heads)
        self.norm2 = nn.LayerNorm(d_model)
        self.moe = MoEMLP(d_model, d_ff, n_experts, top_k)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.moe(self.norm2(x))


class MoETransformer(nn.Module):
    """Byte-level decoder: tokens (batch, time) int64 in [0, 256) -> next-byte logits (batch, time, 256)."""

    def __init__(
        self,
        block_size: int,
        d_model: int,
        n_layers: int,
        n_heads: int,
        d_ff: int,
        n_experts: int,
        top_k: int | None = None,
        vocab_size: int = 256,
    ) -> None:
        super().__init__()
        self.block_size = block_size
        self.embed = nn.Embedding(vocab_size, d_model)
        self.pos_embed = nn.Parameter(torch.zeros(block_size, d_model))
        self.blocks = nn.ModuleList(Block(d_model, n_heads, d_ff, n_experts, top_k) for _ in range(n_layers))
        self.norm_f = nn.LayerNorm(d_model)
        self.lm_head = nn.Linear(d_model, vocab_size, bias=False)
        nn.init.normal_(self.pos_embed, std=0.02)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        t = tokens.shape[1]
        if t > self.block_size:
            raise ValueError(f"sequence length {t} exceeds block_size={self.block_size}")
        x = self.embed(tokens) + self.pos_embed[:t]
        for block in self.blocks:
            x = block(x)
        return self.lm_head(self.norm_f(x))

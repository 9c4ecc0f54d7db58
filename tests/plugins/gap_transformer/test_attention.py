"""Gap-penalised SDPA attention equals a hand-written softmax; penalties are nonnegative, larger gaps get less
weight, fully masked rows stay finite."""

from __future__ import annotations

import math

import torch

from framework_plugins.gap_transformer.attention import GapAwareSelfAttention, attention_bias, time_distances
from framework_plugins.gap_transformer.embeddings import grid_to_triplets


def _reference(attn: GapAwareSelfAttention, x: torch.Tensor, times: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """softmax(q k^T / sqrt(d_h) - slope |t_i - t_j|, padded keys excluded) v, written out in float64."""
    b, n, d = x.shape
    h = attn.n_heads
    q, k, v = attn.qkv(x).view(b, n, 3, h, d // h).permute(2, 0, 3, 1, 4)
    scores = q @ k.transpose(-1, -2) / math.sqrt(d // h)
    scores = scores - attn.slopes()[None, :, None, None] * (times[:, None, :, None] - times[:, None, None, :]).abs()
    scores = scores.masked_fill(~valid[:, None, None, :], -math.inf)
    y = torch.softmax(scores, -1) @ v
    return attn.proj(y.transpose(1, 2).reshape(b, n, d))


def test_sdpa_with_gap_bias_equals_the_softmax_reference():
    torch.manual_seed(0)
    attn = GapAwareSelfAttention(16, 4).double()
    x = torch.randn(3, 7, 16, dtype=torch.float64)
    times = -torch.rand(3, 7, dtype=torch.float64) * 5
    valid = torch.rand(3, 7) > 0.3
    valid[:, 0] = True
    out = attn(x, time_distances(times), valid)
    torch.testing.assert_close(out, _reference(attn, x, times, valid), rtol=1e-10, atol=1e-10)


def test_penalty_is_nonnegative_and_gradients_reach_rho():
    attn = GapAwareSelfAttention(8, 2)
    with torch.no_grad():
        attn.rho.copy_(torch.tensor([-30.0, 3.0]))  # softplus keeps even a very negative rho >= 0
    assert (attn.slopes() >= 0).all()
    times = torch.tensor([[0.0, -1.0, -4.0]])
    bias = attention_bias(time_distances(times), attn.slopes(), torch.ones(1, 3, dtype=torch.bool), torch.float32)
    assert (bias <= 0).all() and bias.shape == (1, 2, 3, 3)
    attn(torch.randn(1, 3, 8), time_distances(times), torch.ones(1, 3, dtype=torch.bool)).sum().backward()
    assert attn.rho.grad is not None and attn.rho.grad.abs().sum() > 0


def test_a_larger_gap_lowers_the_attention_weight():
    """Identical keys at different times: the query at t = 0 weights them by exp(-slope |t|)."""
    attn = GapAwareSelfAttention(4, 1)
    with torch.no_grad():
        attn.qkv.weight.zero_()
        attn.qkv.bias.zero_()
        attn.qkv.bias[8:].copy_(torch.tensor([1.0, 0, 0, 0]))  # v = e_1 for every token
    times = torch.tensor([[0.0, -0.5, -3.0]])
    bias = attention_bias(time_distances(times), attn.slopes(), torch.ones(1, 3, dtype=torch.bool), torch.float32)
    weights = torch.softmax(bias[0, 0, 0], -1)  # q.k = 0, so the weights are softmax of the bias alone
    assert weights[0] > weights[1] > weights[2]
    torch.testing.assert_close(weights[1] / weights[2], torch.exp(attn.slopes()[0] * 2.5))


def test_fully_masked_rows_give_no_nan_and_grads_are_finite():
    attn = GapAwareSelfAttention(8, 2)
    x = torch.randn(2, 4, 8, requires_grad=True)
    valid = torch.tensor([[True, True, False, False], [False, False, False, False]])
    out = attn(x, time_distances(torch.randn(2, 4)), valid)
    assert torch.isfinite(out).all()
    out.sum().backward()
    assert torch.isfinite(x.grad).all() and torch.isfinite(attn.rho.grad).all()


def test_grid_to_triplets_keeps_observed_cells_in_time_order():
    values = torch.arange(12.0).view(1, 3, 4)
    mask = torch.tensor([[[1, 0, 0, 1], [0, 0, 0, 0], [0, 1, 0, 0]]], dtype=torch.float32)
    times = torch.tensor([[-2.0, -1.0, 0.0]])
    value, variable, time, valid = grid_to_triplets(values, mask, times)
    assert value.tolist() == [[0.0, 3.0, 9.0]] and variable.tolist() == [[0, 3, 1]]
    assert time.tolist() == [[-2.0, -2.0, 0.0]] and valid.all()


def test_one_bias_tensor_per_layer():
    """Building the bias allocates exactly one (B, H, L, L) tensor (the padding fill is in place)."""
    from torch.utils._python_dispatch import TorchDispatchMode

    b, h, n = 3, 4, 6
    distances, valid = time_distances(torch.randn(b, n)), torch.rand(b, n) > 0.3
    created = []

    class Count(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            out = func(*args, **(kwargs or {}))
            if isinstance(out, torch.Tensor) and out.shape == (b, h, n, n) and not func._schema.is_mutable:
                created.append(func)
            return out

    with Count():
        bias = attention_bias(distances, torch.rand(h), valid, torch.float32)
    assert len(created) == 1 and bias.shape == (b, h, n, n)

"""Gap-penalised SDPA attention equals a hand-written softmax; penalties are nonnegative, larger gaps get less
weight, fully masked rows stay finite."""

from __future__ import annotations

import math

import torch

from framework_plugins.gap_transformer.attention import GapAwareSelfAttention, attention_bias, time_distances
from framework_plugins.gap_transformer.embeddings import grid_to_triplets
from framework_plugins.gap_transformer.networks import GapAwareTransformerNet


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


def test_without_gap_penalty_it_is_plain_multihead_attention():
    """gap_penalty=False equals torch's nn.MultiheadAttention with the same weights and key padding mask, for any
    visit times (so the switch removes the penalty exactly); the network then has no rho and no slopes."""
    torch.manual_seed(1)
    attn = GapAwareSelfAttention(16, 4, gap_penalty=False).double()
    reference = torch.nn.MultiheadAttention(16, 4, batch_first=True).double()
    with torch.no_grad():
        reference.in_proj_weight.copy_(attn.qkv.weight)
        reference.in_proj_bias.copy_(attn.qkv.bias)
        reference.out_proj.weight.copy_(attn.proj.weight)
        reference.out_proj.bias.copy_(attn.proj.bias)
    x = torch.randn(3, 7, 16, dtype=torch.float64)
    valid = torch.rand(3, 7) > 0.3
    valid[:, 0] = True
    expected = reference(x, x, x, key_padding_mask=~valid, need_weights=False)[0]
    for times in (-torch.rand(3, 7, dtype=torch.float64) * 5, torch.zeros(3, 7, dtype=torch.float64)):
        torch.testing.assert_close(attn(x, time_distances(times), valid), expected, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(attn(x, None, valid), expected, rtol=1e-10, atol=1e-10)
    net = GapAwareTransformerNet(13, 4, d_model=16, n_heads=2, n_layers=2, gap_penalty=False)
    assert net.slopes() is None and not any("rho" in name for name, _ in net.named_parameters())
    assert GapAwareTransformerNet(13, 4, d_model=16, n_heads=2, n_layers=2).slopes().shape == (2, 2)


def test_grid_tokens_give_one_token_per_visit_and_ignore_padding_visits():
    torch.manual_seed(2)
    net = GapAwareTransformerNet(3, 2, d_model=8, n_heads=2, n_layers=1, dropout=0.0, tokens="grid").eval()
    values, mask, static = torch.randn(2, 4, 3), (torch.rand(2, 4, 3) > 0.3).float(), torch.randn(2, 2)
    times = torch.tensor([[-2.0, -1.0, 0.0, 0.0], [-0.5, 0.0, 0.0, 0.0]])
    valid = torch.tensor([[True, True, True, False], [True, True, False, False]])
    out = net(values, mask, times, valid, static)
    poked = values.clone()
    poked[~valid] = 100.0  # padding visits must not matter
    torch.testing.assert_close(net(poked, mask, times, valid, static), out)
    poked[0, 0] = 100.0  # a real visit does
    assert not torch.allclose(net(poked, mask, times, valid, static)[0], out[0])

"""MoE transformer plugin: corpus split, windows, gating, causality, Muon routing of the real model."""

from __future__ import annotations

import pytest
import torch

from framework.optim import Muon, named_param_groups
from framework_plugins.moe_transformer import MoELanguageModel, StdlibBytes
from framework_plugins.moe_transformer.corpus import load_split, split_of, stdlib_files, windows
from framework_plugins.moe_transformer.model import MoEMLP, MoETransformer


def test_split_is_by_file_deterministic_and_disjoint():
    files = stdlib_files()
    assert len(files) > 500
    names = [f.name for f in files[:200]]
    assert [split_of(n) for n in names] == [split_of(n) for n in names]
    counts = {s: sum(split_of(f.name) == s for f in files) for s in ("train", "val", "test")}
    assert counts["train"] > 10 * counts["val"] > 0 and counts["test"] > 0
    a, b = load_split("val", 20_000), load_split("val", 20_000)
    assert len(a) == 20_000 and torch.equal(a, b)
    assert not torch.equal(load_split("train", 20_000), a)


def test_windows_give_next_byte_targets():
    data = torch.arange(23, dtype=torch.uint8)
    w = windows(data, block_size=5)
    assert w.shape == (4, 6)
    torch.testing.assert_close(w[1], torch.arange(5, 11))
    with pytest.raises(ValueError, match="shorter than block_size"):
        windows(data[:3], 5)


def test_gates_are_a_distribution_and_top_k_keeps_k():
    moe = MoEMLP(d_model=8, d_ff=16, n_experts=4, top_k=2)
    g = moe.gates(torch.randn(3, 5, 8))
    torch.testing.assert_close(g.sum(-1), torch.ones(3, 5))
    assert ((g > 0).sum(-1) == 2).all()
    with pytest.raises(ValueError, match="top_k=5"):
        MoEMLP(8, 16, 4, top_k=5)


def test_dense_moe_equals_explicit_sum_over_experts():
    moe = MoEMLP(d_model=6, d_ff=10, n_experts=3)
    x = torch.randn(2, 4, 6)
    g = moe.gates(x)
    expected = sum(
        g[..., e : e + 1] * (torch.nn.functional.gelu(x @ moe.experts_in[e].T) @ moe.experts_out[e].T) for e in range(3)
    )
    torch.testing.assert_close(moe(x), expected, rtol=1e-5, atol=1e-6)


def test_model_is_causal():
    model = MoETransformer(block_size=16, d_model=16, n_layers=2, n_heads=2, d_ff=32, n_experts=2).eval()
    x = torch.randint(0, 256, (2, 16))
    y = x.clone()
    y[:, 10:] = torch.randint(0, 256, (2, 6))
    torch.testing.assert_close(model(x)[:, :10], model(y)[:, :10])
    assert not torch.allclose(model(x)[:, 10:], model(y)[:, 10:])


def test_muon_routes_the_real_model():
    model = MoELanguageModel()
    opt = Muon(named_param_groups(model))
    muon = {n for g in opt.param_groups if g["use_muon"] for n in g["param_names"]}
    adamw = {n for g in opt.param_groups if not g["use_muon"] for n in g["param_names"]}
    assert {"model.embed.weight", "model.pos_embed", "model.lm_head.weight"} <= adamw
    assert all(
        ("norm" in n or n.endswith("bias"))
        for n in adamw - {"model.embed.weight", "model.pos_embed", "model.lm_head.weight"}
    )
    assert "model.blocks.0.moe.experts_in" in muon and "model.blocks.1.attn.qkv.weight" in muon
    assert opt.views[dict(model.named_parameters())["model.blocks.0.moe.experts_in"]].matrix_shape == (4, 128, 64)


def test_datamodule_batches():
    dm = StdlibBytes(block_size=32, batch_size=4, max_train_bytes=5_000, max_eval_bytes=2_000)
    dm.setup()
    x, y = next(iter(dm.train_dataloader()))
    assert x.shape == y.shape == (4, 32) and x.dtype == torch.int64
    torch.testing.assert_close(x[:, 1:], y[:, :-1])

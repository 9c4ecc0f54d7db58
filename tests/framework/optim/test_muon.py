"""Muon: parity with torch.optim.Muon / torch.optim.AdamW, routing, blocks, conv, regularized map, errors, resume,
and the DDP split of the orthogonalization (2 gloo processes)."""

from __future__ import annotations

import copy
import io
import socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

from framework.optim import named_param_groups
from framework.optim.muon import Muon
from framework.optim.orthogonalize import newton_schulz, regularized_polar


def grads_like(params, seed):
    gen = torch.Generator().manual_seed(seed)
    return [torch.randn(p.shape, generator=gen) for p in params]


def run_steps(opt, params, steps=3, seed=0):
    for k in range(steps):
        for p, g in zip(params, grads_like(params, seed + k), strict=True):
            p.grad = g

        opt.step()


@pytest.mark.parametrize("shape", [(32, 16), (16, 48), (24, 24)])
@pytest.mark.parametrize(("scale", "torch_scale"), [("original", None), ("match_rms_adamw", "match_rms_adamw")])
@pytest.mark.parametrize("nesterov", [True, False])
def test_one_to_three_steps_match_torch_optim_muon(shape, scale, torch_scale, nesterov):
    w = nn.Parameter(torch.randn(*shape, generator=torch.Generator().manual_seed(1)))
    w_ref = nn.Parameter(w.detach().clone())
    ours = Muon(
        [w],
        lr=0.02,
        weight_decay=0.1,
        nesterov=nesterov,
        lr_scale=scale,
        ns_dtype="bfloat16",
        ns_coefficients="jordan",  # torch.optim.Muon's coefficients and iteration
        ns_method="standard",
    )
    ref = torch.optim.Muon([w_ref], lr=0.02, weight_decay=0.1, nesterov=nesterov, adjust_lr_fn=torch_scale)
    run_steps(ours, [w])
    run_steps(ref, [w_ref])
    torch.testing.assert_close(w, w_ref, rtol=0, atol=2e-6)  # same bf16 kernel up to ~1 ulp


class EmbedNorm(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(10, 6)
        self.norm = nn.LayerNorm(6)


def test_adamw_half_matches_torch_adamw():
    net = EmbedNorm()
    ref = copy.deepcopy(net)
    ours = Muon(
        named_param_groups(net), adamw_lr=1e-2, adamw_betas=(0.9, 0.99), adamw_eps=1e-8, adamw_weight_decay=0.05
    )
    assert all(not g["use_muon"] for g in ours.param_groups)
    groups = named_param_groups(ref)
    torch_opt = torch.optim.AdamW(groups, lr=1e-2, betas=(0.9, 0.99), eps=1e-8, weight_decay=0.05, foreach=False)
    assert {g["name"]: g["weight_decay"] for g in ours.param_groups} == {"no_decay/adamw": 0.0}
    run_steps(ours, list(net.parameters()), steps=5)
    run_steps(torch_opt, list(ref.parameters()), steps=5)
    for a, b in zip(net.parameters(), ref.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7)


class TinyGPT(nn.Module):
    def __init__(self, d=16, vocab=50):
        super().__init__()
        self.embed = nn.Embedding(vocab, d)
        self.pos = nn.Parameter(torch.zeros(8, d))
        self.qkv = nn.Linear(d, 3 * d)
        self.proj = nn.Linear(d, d)
        self.norm = nn.LayerNorm(d)
        self.experts = nn.Parameter(torch.randn(4, 2 * d, d))
        self.lm_head = nn.Linear(d, vocab, bias=False)


def routes(opt):
    return {n: g["use_muon"] for g in opt.param_groups for n in g["param_names"]}


def test_routing_of_a_transformer():
    opt = Muon(named_param_groups(TinyGPT()))
    r = routes(opt)
    assert {n for n, muon in r.items() if muon} == {"qkv.weight", "proj.weight", "experts"}
    assert not r["embed.weight"] and not r["lm_head.weight"] and not r["pos"] and not r["norm.weight"]
    assert {g["name"] for g in opt.param_groups} == {"decay/muon", "decay/adamw", "no_decay/adamw"}


def test_plain_parameter_list_routes_by_shape():
    net = nn.Linear(4, 3)
    r = routes(Muon(net.parameters()))
    assert sorted(r.values()) == [False, True]


def test_user_pattern_matching_nothing_is_an_error():
    with pytest.raises(ValueError, match=r"\[.lm_head.\] matched no parameter name"):
        Muon(named_param_groups(nn.Sequential(nn.Linear(4, 4))), adamw_patterns=["lm_head"])


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"lr": -0.02}, "lr=-0.02 must be a finite number > 0"),
        ({"lr": float("nan")}, "lr=nan must be a finite number > 0"),
        ({"adamw_lr": 0.0}, "adamw_lr=0.0 must be a finite number > 0"),
        ({"weight_decay": -1.0}, "weight_decay=-1.0 must be a finite number >= 0"),
        ({"split_sizes": {"qkv": [4, 4]}}, r"split_sizes patterns \['qkv'\] matched no parameter name"),
        ({"ns_method": "fast"}, "ns_method='fast'; choose auto, standard or gram"),
        ({"ns_coefficients": "keller"}, "ns_coefficients='keller'; choose polar_express, jordan"),
        ({"ns_coefficients": [(1.0, 2.0)]}, r"each entry must be an \(a, b, c\) triple"),
        ({"reg_eps": 0.0}, "reg_eps=0.0 must be a finite number > 0"),
        ({"reg_eps_units": "percent"}, "reg_eps_units='percent'; choose relative or absolute"),
    ],
)
def test_nonsense_arguments_are_refused_with_the_argument_named(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Muon(named_param_groups(nn.Sequential(nn.Linear(4, 4))), **kwargs)


def muon_update(param_shape, view_fn, grad, **kw):
    """One Muon step from zero state on a param of ``param_shape`` (lr 1, no momentum, scale none; Jordan's
    coefficients in the standard iteration unless ``kw`` says otherwise)."""
    kw = {"ns_coefficients": "jordan", "ns_method": "standard", **kw}
    p = nn.Parameter(torch.zeros(param_shape, dtype=torch.float64))
    opt = Muon(
        [{"params": [p], "param_names": ["w"]}],
        lr=1.0,
        momentum=0.0,
        nesterov=False,
        lr_scale="none",
        ns_dtype="float64",
        **kw,
    )
    p.grad = grad
    opt.step()
    return -p.detach()


def test_blockwise_experts_are_orthogonalized_per_expert_and_flattened_otherwise():
    g = torch.randn(3, 10, 6, dtype=torch.float64)
    blockwise = muon_update(g.shape, None, g.clone())
    torch.testing.assert_close(blockwise, torch.stack([newton_schulz(m) for m in g]), rtol=1e-12, atol=1e-12)
    flat = muon_update(g.shape, None, g.clone(), blockwise=False)
    torch.testing.assert_close(flat, newton_schulz(g.reshape(30, 6)).reshape(3, 10, 6), rtol=1e-12, atol=1e-12)


def test_conv_weights_are_flattened_and_restored():
    g = torch.randn(8, 3, 3, 3, dtype=torch.float64)
    update = muon_update(g.shape, None, g.clone())
    torch.testing.assert_close(update, newton_schulz(g.reshape(8, 27)).reshape(8, 3, 3, 3), rtol=1e-12, atol=1e-12)


def test_split_sizes_orthogonalize_fused_qkv_per_block():
    g = torch.randn(12, 4, dtype=torch.float64)
    update = muon_update(g.shape, None, g.clone(), split_sizes={"w": [4, 4, 4]})
    expected = torch.cat([newton_schulz(b) for b in g.split(4)])
    torch.testing.assert_close(update, expected, rtol=1e-12, atol=1e-12)
    with pytest.raises(ValueError, match="must sum to dim 0"):
        muon_update(g.shape, None, g.clone(), split_sizes={"w": [4, 4]})


def test_regularized_step_and_momentum_convention():
    """Plain NS ignores the momentum scale (EMA vs heavy ball give the same first step); the regularized map with an
    absolute eps does not, which is why an absolute reg_eps is in the units of the buffer convention."""
    g = torch.randn(7, 5, dtype=torch.float64)

    def first_step(style, orth, units="absolute"):
        p = nn.Parameter(torch.zeros(7, 5, dtype=torch.float64))
        opt = Muon(
            [p],
            lr=1.0,
            momentum=0.9,
            nesterov=False,
            momentum_style=style,
            orthogonalizer=orth,
            reg_eps=0.5,
            reg_eps_units=units,
            lr_scale="none",
            ns_dtype="float64",
        )
        p.grad = g.clone()
        opt.step()
        return -p.detach()

    torch.testing.assert_close(first_step("ema", "newton_schulz"), first_step("heavy_ball", "newton_schulz"))
    torch.testing.assert_close(first_step("ema", "regularized"), regularized_polar(0.1 * g, 0.5))
    torch.testing.assert_close(first_step("heavy_ball", "regularized"), regularized_polar(g, 0.5))
    # relative eps: eps = 0.5 * ||u||_F / sqrt(5), so the direction no longer depends on the buffer's scale; the
    # expected map is written from the SVD: U diag(s / sqrt(s^2 + eps^2)) V^T
    u, s, vh = torch.linalg.svd(g, full_matrices=False)
    eps = 0.5 * s.norm() / 5**0.5
    expected = (u * (s / (s**2 + eps**2).sqrt())) @ vh
    torch.testing.assert_close(first_step("ema", "regularized", "relative"), expected, rtol=1e-9, atol=1e-10)
    torch.testing.assert_close(first_step("heavy_ball", "regularized", "relative"), expected, rtol=1e-9, atol=1e-10)


def test_complex_and_sparse_are_clear_errors():
    with pytest.raises(ValueError, match="complex"):
        Muon([nn.Parameter(torch.zeros(3, 3, dtype=torch.complex64))])
    net = EmbedNorm()
    net.embed = nn.Embedding(5, 3, sparse=True)
    opt = Muon(named_param_groups(net))
    net.embed(torch.tensor([1, 2])).sum().backward()
    with pytest.raises(ValueError, match="sparse gradient"):
        opt.step()


def test_state_is_eager_and_resume_is_bit_identical():
    torch.manual_seed(0)
    net = TinyGPT()
    opt = Muon(named_param_groups(net), lr=0.02, adamw_lr=1e-3)
    assert len(opt.state) == len(list(net.parameters()))  # before any step
    params = list(net.parameters())
    run_steps(opt, params, steps=2, seed=10)
    buffer = io.BytesIO()
    torch.save({"model": net.state_dict(), "opt": opt.state_dict()}, buffer)
    run_steps(opt, params, steps=3, seed=20)
    expected = [p.detach().clone() for p in params]

    buffer.seek(0)
    saved = torch.load(buffer, weights_only=True)
    net2 = TinyGPT()
    net2.load_state_dict(saved["model"])
    opt2 = Muon(named_param_groups(net2), lr=0.02, adamw_lr=1e-3)
    opt2.load_state_dict(saved["opt"])
    run_steps(opt2, list(net2.parameters()), steps=3, seed=20)
    for a, b in zip(expected, net2.parameters(), strict=True):
        torch.testing.assert_close(a, b.detach(), rtol=0, atol=0)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ddp_worker(rank: int, world: int, port: int, out: dict) -> None:
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    torch.manual_seed(0)
    net = TinyGPT()
    opt = Muon(named_param_groups(net), lr=0.02)
    run_steps(opt, list(net.parameters()), steps=3, seed=5)
    out[rank] = {k: v.detach().clone() for k, v in net.state_dict().items()}
    dist.destroy_process_group()


def test_distributed_split_gives_identical_ranks_equal_to_single_process():
    torch.manual_seed(0)
    net = TinyGPT()
    opt = Muon(named_param_groups(net), lr=0.02)
    run_steps(opt, list(net.parameters()), steps=3, seed=5)
    single = net.state_dict()
    with mp.Manager() as manager:
        out = manager.dict()
        mp.spawn(_ddp_worker, args=(2, _free_port(), out), nprocs=2, join=True)
        rank0, rank1 = dict(out[0]), dict(out[1])
    for key in single:
        torch.testing.assert_close(rank0[key], rank1[key], rtol=0, atol=0)
        torch.testing.assert_close(rank0[key], single[key], rtol=0, atol=0)


def test_parameters_without_gradient_are_not_updated():
    w, frozen = nn.Parameter(torch.randn(6, 4)), nn.Parameter(torch.randn(5, 3))
    opt = Muon([{"params": [w, frozen], "param_names": ["w", "frozen"]}], lr=0.1, weight_decay=0.1)
    w.grad, frozen.grad = torch.randn(6, 4), torch.randn(5, 3)
    opt.step()
    before = frozen.detach().clone()
    frozen.grad = None
    w.grad = torch.randn(6, 4)
    opt.step()
    torch.testing.assert_close(frozen.detach(), before, rtol=0, atol=0)


def test_empty_adamw_patterns_route_by_shape_only():
    net = TinyGPT()
    r = routes(Muon(named_param_groups(net), adamw_patterns=[]))
    assert r["embed.weight"] and r["lm_head.weight"] and not r["norm.weight"]


def test_auto_method_takes_the_gram_iteration_exactly_where_it_needs_fewer_flops():
    """float64: 'auto' equals 'gram' on a 4:1 matrix and 'standard' on a square one (each to the other's 1e-10)."""
    for shape, cheaper in (((40, 10), "gram"), ((12, 12), "standard")):
        g = torch.randn(*shape, dtype=torch.float64)
        auto = muon_update(shape, None, g.clone(), ns_coefficients="polar_express", ns_method="auto")
        chosen = muon_update(shape, None, g.clone(), ns_coefficients="polar_express", ns_method=cheaper)
        torch.testing.assert_close(auto, chosen, rtol=0, atol=0)
        other = "standard" if cheaper == "gram" else "gram"
        torch.testing.assert_close(auto, muon_update(shape, None, g.clone(), ns_coefficients="polar_express",
                                                     ns_method=other), rtol=1e-10, atol=1e-10)  # fmt: skip


@pytest.mark.parametrize("units", ["relative", "absolute"])
def test_regularized_step_on_a_zero_direction_is_zero_not_nan(units):
    """A block whose momentum and gradient are zero (an unused expert) gets a zero update in float32."""
    w = nn.Parameter(torch.ones(3, 8, 4))
    opt = Muon([w], orthogonalizer="regularized", reg_eps_units=units, lr=0.1)
    grad = torch.randn(3, 8, 4)
    grad[1] = 0.0
    w.grad = grad
    opt.step()
    assert torch.isfinite(w).all()
    torch.testing.assert_close(w[1], torch.ones(8, 4), rtol=0, atol=0)
    assert not torch.equal(w[0], torch.ones(8, 4))

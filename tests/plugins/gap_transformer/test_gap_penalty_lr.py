"""``gap_penalty_lr_scale``: the rho_h get their own parameter group with the scaled learning rate; scale 1 trains
bit for bit as the single-learning-rate default groups; AdamW's first step moves each rho_h by exactly lr * scale."""

from __future__ import annotations

import functools

import pytest
import torch
import torch.nn.functional as F

from framework.module import FrameworkModule
from framework_plugins.gap_transformer import ADNICohort, GapAwareTransformer
from framework_plugins.gap_transformer.datamodule import CohortBatch

LR = 2e-3
ADAMW = functools.partial(torch.optim.AdamW, lr=LR, weight_decay=0.01)


@pytest.fixture(scope="module")
def batches() -> list[CohortBatch]:
    data = ADNICohort(n_participants=120, lme_candidates=("APOE4",), batch_size=32)
    data.setup("fit")
    return list(data.train_dataloader())[:3]


def _model(scale: float) -> GapAwareTransformer:
    torch.manual_seed(0)
    return GapAwareTransformer(
        d_model=8, n_heads=2, n_layers=2, dropout=0.0, gap_penalty_lr_scale=scale, optimizer=ADAMW
    )


def _train(model: GapAwareTransformer, optimizer: torch.optim.Optimizer, batches: list[CohortBatch]) -> None:
    model.train()
    for batch in batches:
        optimizer.zero_grad()
        F.mse_loss(model(batch), batch[-1]).backward()
        optimizer.step()


def test_rho_has_its_own_group_with_the_scaled_lr():
    optimizer = _model(30.0).configure_optimizers()
    by_route = {g["route"]: g for g in optimizer.param_groups if g["route"] == "gap_penalty"}
    penalty = by_route["gap_penalty"]
    assert penalty["param_names"] == ["net.blocks.0.attn.rho", "net.blocks.1.attn.rho"]
    assert penalty["lr"] == pytest.approx(30 * LR) and penalty["weight_decay"] == 0.0
    others = [g for g in optimizer.param_groups if g["route"] != "gap_penalty"]
    assert others and all(g["lr"] == LR for g in others)
    named = {n for g in optimizer.param_groups for n in g["param_names"]}
    assert named == {n for n, _ in _model(30.0).named_parameters()}


def test_scale_one_trains_exactly_as_the_default_single_lr_groups(batches):
    routed = _model(1.0)
    _train(routed, routed.configure_optimizers(), batches)
    default = _model(1.0)
    _train(default, ADAMW(FrameworkModule.param_groups(default)), batches)
    assert len(routed.configure_optimizers().param_groups) > len(FrameworkModule.param_groups(default))
    for (name, a), (_, b) in zip(routed.named_parameters(), default.named_parameters(), strict=True):
        assert torch.equal(a, b), name


@pytest.mark.parametrize("scale", [1.0, 30.0])
def test_first_adamw_step_moves_each_rho_by_lr_times_scale(batches, scale):
    model = _model(scale)
    before = torch.stack([b.attn.rho.detach().clone() for b in model.net.blocks])
    _train(model, model.configure_optimizers(), batches[:1])
    moved = (torch.stack([b.attn.rho.detach() for b in model.net.blocks]) - before).abs()
    # Adam's bias-corrected first step is lr * |g| / (|g| + eps) per element (rho has no weight decay): lr up to a
    # relative eps / |g| (gradients here are >= 1e-5) and the float32 spacing of rho (about 2e-7 at |rho| ~ 2)
    torch.testing.assert_close(moved, torch.full_like(moved, LR * scale), rtol=1e-3, atol=5e-7)


def test_bad_scale_names_the_field():
    with pytest.raises(ValueError, match="gap_penalty_lr_scale"):
        GapAwareTransformer(gap_penalty_lr_scale=0.0)

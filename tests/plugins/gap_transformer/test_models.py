"""DataModule splits by participant; each model runs, the LME-only model reproduces the LME, the transformer
overfits a tiny cohort and beats the LME on the default synthetic cohort; STraTS pretraining lowers its loss."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from framework.data import assert_groups_disjoint
from framework_plugins.gap_transformer import GRUD, ADNICohort, GapAwareTransformer, LMEReference, STraTS
from framework_plugins.gap_transformer.datamodule import FIELDS, CohortBatch

SMALL = {"n_participants": 120, "lme_candidates": ("APOE4",), "batch_size": 32}


@pytest.fixture(scope="module")
def cohort() -> ADNICohort:
    data = ADNICohort(**SMALL)
    data.setup("fit")
    return data


@pytest.mark.parametrize("split_seed", range(5))
def test_no_participant_in_two_folds(split_seed):
    data = ADNICohort(**{**SMALL, "split_seed": split_seed})
    data.setup("fit")
    index, rid = data.cohort.index, data.cohort.anchors.rid
    assert_groups_disjoint(rid, index)
    assert {k: len(v[0]) for k, v in data.splits.items()} == {k: len(v) for k, v in index.items()}


def test_batches_have_the_documented_shapes(cohort):
    batch = next(iter(cohort.train_dataloader()))
    assert len(batch) == len(FIELDS)
    values, mask, times, valid, static, y_ref, y = batch
    assert values.shape == mask.shape and values.shape[1:] == (10, 13) and static.shape[1] == 4
    assert valid.dtype == torch.bool and (times <= 0).all() and (values[mask == 0] == 0).all()
    assert (valid[:, 0]).all()  # the first history slot is always a real visit


@pytest.mark.parametrize("model_cls", [LMEReference, GapAwareTransformer, GRUD, STraTS])
def test_every_model_predicts_finite_values(model_cls, cohort):
    batch = next(iter(cohort.val_dataloader()))
    out = model_cls()(batch)
    assert out.shape == batch[-1].shape and torch.isfinite(out).all()


def test_lme_reference_reproduces_the_lme_prediction(cohort):
    batch = next(iter(cohort.test_dataloader()))
    torch.testing.assert_close(LMEReference()(batch), batch[-2])


def _train(model: torch.nn.Module, batches: list[CohortBatch], steps: int, lr: float) -> None:
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    model.train()
    for step in range(steps):
        batch = batches[step % len(batches)]
        loss = F.mse_loss(model(batch), batch[-1])
        opt.zero_grad()
        loss.backward()
        opt.step()


def test_transformer_overfits_a_tiny_cohort(cohort):
    torch.manual_seed(0)
    batch = CohortBatch(*(t[:24] for t in cohort.splits["train"]))
    model = GapAwareTransformer(d_model=32, n_layers=1, dropout=0.0)
    start = F.mse_loss(model(batch), batch[-1]).item()
    _train(model, [batch], 150, 3e-3)
    model.eval()
    assert F.mse_loss(model(batch), batch[-1]).item() < 0.05 * start


def test_transformer_beats_the_trajectory_lme_on_the_default_synthetic_cohort():
    """The simulator's 24-month change depends on a latent rate that fluctuates in time and that the leading
    biomarkers reveal; the linear trajectory LME cannot use them, so the residual transformer must beat it on
    held-out participants."""
    torch.manual_seed(0)
    data = ADNICohort(n_participants=400, max_visits=6, batch_size=64)
    data.setup("fit")
    train = data.splits["train"]
    batches = [CohortBatch(*(t[i : i + 64] for t in train)) for i in range(0, len(train[0]), 64)]
    model = GapAwareTransformer(d_model=16, n_heads=2, n_layers=1, dropout=0.1)
    _train(model, batches, 10 * len(batches), 3e-3)
    model.eval()
    test = data.splits["test"]
    with torch.no_grad():
        prediction = model(test)
    mse, lme = F.mse_loss(prediction, test.y).item(), F.mse_loss(test.y_ref, test.y).item()
    r = np.corrcoef(prediction.numpy(), test.y.numpy())[0, 1]
    r_lme = np.corrcoef(test.y_ref.numpy(), test.y.numpy())[0, 1]
    assert mse < 0.85 * lme and r > r_lme + 0.1, (mse, lme, r, r_lme)


def test_strats_forecasting_pretext_learns(cohort):
    torch.manual_seed(0)
    model = STraTS(d_model=32, n_layers=1, dropout=0.0)
    values, mask, times, _, static, _, _ = [t[:64] for t in cohort.splits["train"]]

    def loss() -> torch.Tensor:
        pred, target, weight = model.net.forecast(values, mask, times, static)
        assert weight.sum() > 0 and torch.isfinite(pred).all()
        return (weight * (pred - target) ** 2).sum() / weight.sum()

    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    start = loss().item()
    for _ in range(60):
        opt.zero_grad()
        value = loss()
        value.backward()
        opt.step()
    assert loss().item() < 0.5 * start


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [({"source": "xlsx"}, "source"), ({"source": "csv"}, "path"), ({"lme_prediction": "random"}, "lme_prediction")],
)
def test_bad_arguments_name_the_field(kwargs, field):
    with pytest.raises(ValueError, match=field):
        ADNICohort(**kwargs)


def test_blup_reference_uses_only_past_outcomes():
    data = ADNICohort(**{**SMALL, "lme_prediction": "blup"})  # the anchor-level LME's causal BLUP
    data.setup("fit")
    a = data.cohort.anchors
    population = data.cohort.lme.predict(a.covariates())
    y_ref = np.concatenate([data.splits[k][5].numpy() for k in ("train", "val", "test")])
    order = np.concatenate([data.cohort.index[k] for k in ("train", "val", "test")])
    first = np.zeros(len(a), dtype=bool)
    first[order] = [not ((a.rid == a.rid[i]) & (a.label_years <= a.years[i])).any() for i in order]
    np.testing.assert_allclose(y_ref[first[order]], population[order][first[order]], rtol=1e-5, atol=1e-5)
    assert not np.allclose(y_ref, population[order], atol=1e-3)


def test_test_writes_predictions_with_gaps_and_logs_each_heads_gap_penalty(tmp_path):
    import lightning.pytorch as pl
    import pandas as pd

    data = ADNICohort(**{**SMALL, "max_visits": 6})
    model = GapAwareTransformer(d_model=8, n_heads=2, n_layers=2)
    trainer = pl.Trainer(
        max_epochs=1, limit_train_batches=1, logger=False, enable_checkpointing=False, default_root_dir=tmp_path
    )
    trainer.fit(model, datamodule=data)
    metrics = trainer.test(model, datamodule=data, verbose=False)[0]
    slopes = model.net.slopes().detach()
    for layer in range(2):
        for head in range(2):
            assert metrics[f"test/gap_slope_l{layer}h{head}"] == pytest.approx(float(slopes[layer, head]))
    table = pd.read_csv(tmp_path / "test_predictions.csv")
    test = data.splits["test"]
    assert len(table) == len(test.y)
    np.testing.assert_allclose(table["observed"], test.y.numpy(), rtol=1e-4)
    np.testing.assert_allclose(table["participant"], data.cohort.anchors.rid[data.cohort.index["test"]])
    assert (table["gap"] > 0).all() and (table["biomarker_age"] >= 0).all()

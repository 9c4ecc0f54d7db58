"""The LightningModule end to end: a learned compressor reaches the MOPED information of its summary, held-out
information stays below the exact bound, and the MOPED compressor path is fitted on training simulations."""

from __future__ import annotations

import lightning.pytorch as pl
import pytest
import torch

from framework_plugins.topofisher import TopoFisher, TopoFisherData
from framework_plugins.topofisher.evaluation import fixed_summary_fisher
from framework_plugins.topofisher.filtrations import GaussianSmoothing
from framework_plugins.topofisher.simulators import GRF
from framework_plugins.topofisher.summaries import PowerSpectrum, TopologicalSummary
from framework_plugins.topofisher.vectorizations import PersistenceImage, PersLay


def fit_and_test(model: TopoFisher, data: TopoFisherData, steps: int, root) -> dict[str, float]:
    pl.seed_everything(0)
    trainer = pl.Trainer(
        max_steps=steps,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        default_root_dir=root,
    )
    trainer.fit(model, datamodule=data)
    trainer.test(model, datamodule=data)
    return {k: float(v) for k, v in trainer.callback_metrics.items()}


def adam(params):
    return torch.optim.Adam(params, lr=1e-2)


def test_learned_compressor_reaches_moped_information_and_respects_the_bound(tmp_path):
    sim = GRF(n=16)
    data = TopoFisherData(sim, n_train=1024, n_val=128, n_test=1024, batch_size=128)
    model = TopoFisher(PowerSpectrum(16, 6), hidden=(32,), regularizer_weight=0.01, optimizer=adam)
    metrics = fit_and_test(model, data, steps=120, root=tmp_path)
    moped, se = fixed_summary_fisher(PowerSpectrum(16, 6), sim, n_train=1024, n_test=1024)
    moped_log_det = torch.linalg.slogdet(moped)[1].item()
    exact = torch.logdet(sim.exact_fisher()).item()
    assert metrics["test/log_det_F"] == pytest.approx(moped_log_det, abs=0.25)
    assert metrics["test/log_det_F"] < exact + 3 * se.item()
    assert metrics["test/info_ratio"] == pytest.approx(
        torch.exp(torch.tensor(metrics["test/log_det_F"] - exact)).item()
    )


def test_moped_compressor_is_fitted_on_training_simulations_and_predicts_p_summaries(tmp_path):
    sim = GRF(n=16)
    data = TopoFisherData(sim, n_train=256, n_val=64, n_test=128, batch_size=64)
    summary = TopologicalSummary(
        PersistenceImage(bandwidth=0.4, resolution=(3, 3), birth_range=(-3, 1), persistence_range=(0, 2)),
        complex="periodic_cubical",
        filtration=GaussianSmoothing(0.5),
    )
    model = TopoFisher(summary, compressor="moped", regularizer_weight=0.0, moped_sims=256, optimizer=adam)
    metrics = fit_and_test(model, data, steps=2, root=tmp_path)
    assert (tmp_path / "figures" / "fisher_ellipses.png").is_file()
    assert model.moped.abs().sum() > 0 and metrics["test/log_det_F"] > 0
    x = data.splits["test"][0][:4]
    assert model.eval()(x).shape == (4, 5, 2)


def test_mismatched_parameter_count_is_an_error(tmp_path):
    model = TopoFisher(PowerSpectrum(16, 4), n_params=3, optimizer=adam)
    trainer = pl.Trainer(
        max_steps=1, logger=False, enable_checkpointing=False, enable_progress_bar=False, default_root_dir=tmp_path
    )
    with pytest.raises(ValueError, match="n_params=3"):
        trainer.fit(model, datamodule=TopoFisherData(GRF(n=16), n_train=64, n_val=32, n_test=32, batch_size=32))


def test_cached_diagrams_train_like_live_diagrams_and_are_computed_once(tmp_path):
    def run(cache: bool) -> tuple[dict[str, float], TopoFisherData]:
        torch.manual_seed(0)
        model = TopoFisher(TopologicalSummary(PersLay(8, 16)), hidden=(16,), cache_diagrams=cache, optimizer=adam)
        data = TopoFisherData(GRF(n=16), n_train=128, n_val=64, n_test=64, batch_size=32)
        return fit_and_test(model, data, steps=8, root=tmp_path / str(cache)), data

    (live, _), (cached, data) = run(False), run(True)
    for key in ("test/log_det_F", "test/log_det_F_split"):
        assert cached[key] == pytest.approx(live[key], rel=1e-4)
    assert len(data.dataset("train").cache) == 128  # 8 steps = 2 epochs of 4 batches: each item computed once


def test_summary_of_stored_diagrams_equals_the_summary_of_the_simulations():
    summary = TopologicalSummary(PersLay(8, 16), filtration=GaussianSmoothing(0.7, learnable=False))
    summary.eval()  # spectral norm's power iteration would otherwise change PersLay between the two calls
    items = GRF(n=16).seed_matched(range(6))
    stored = summary.diagram_tensors(items)
    assert [t.shape[:3] for t in stored] == [(6, 5, 1)] * 2
    live = summary(items.flatten(0, 1)).reshape(6, 5, -1)
    torch.testing.assert_close(summary.vectorize_tensors(stored), live)


def test_cache_diagrams_with_a_trainable_filtration_is_an_error():
    summary = TopologicalSummary(PersLay(8, 16), filtration=GaussianSmoothing(0.5))
    with pytest.raises(ValueError, match="cache_diagrams=true.*GaussianSmoothing.*learnable: false"):
        TopoFisher(summary, cache_diagrams=True)

"""Training options of the public TopoFisher recipe: the skewness / kurtosis penalties against scipy, early stopping
on held-out ln|F| (the restored weights are those of the best validation epoch), and ``test_moped``."""

from __future__ import annotations

import lightning.pytorch as pl
import numpy as np
import pytest
import torch
from scipy import stats

from framework_plugins.topofisher import TopoFisher, TopoFisherData
from framework_plugins.topofisher.fisher import moment_penalties
from framework_plugins.topofisher.simulators import GRF
from framework_plugins.topofisher.summaries import PowerSpectrum


def test_moment_penalties_equal_scipy_skewness_and_excess_kurtosis():
    t = torch.tensor(np.random.default_rng(0).gamma(2.0, size=(300, 5, 3)))
    skew, kurt = moment_penalties(t)
    flat = t.numpy().reshape(300, -1)
    assert skew.item() == pytest.approx(np.mean(stats.skew(flat, axis=0, bias=True) ** 2), rel=1e-10)
    assert kurt.item() == pytest.approx(np.mean(stats.kurtosis(flat, axis=0, fisher=True, bias=True) ** 2), rel=1e-10)
    gauss = torch.randn(20000, 5, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    skew, kurt = moment_penalties(gauss)  # expected 6 / n and 24 / n for Gaussian summaries
    assert skew < 5 * 6 / 20000 and kurt < 5 * 24 / 20000


class Recorder(pl.Callback):
    def __init__(self) -> None:
        self.values: list[float] = []

    def on_validation_end(self, trainer, module) -> None:  # after the module logged its epoch
        if not trainer.sanity_checking:
            self.values.append(float(trainer.callback_metrics["val/log_det_F"]))


def fit(model: TopoFisher, data: TopoFisherData, epochs: int, root, callbacks=()) -> pl.Trainer:
    pl.seed_everything(0)
    trainer = pl.Trainer(
        max_epochs=epochs,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        default_root_dir=root,
        callbacks=list(callbacks),
    )
    trainer.fit(model, datamodule=data)
    return trainer


def lively(params):
    return torch.optim.Adam(params, lr=0.05)  # large steps, so the validation ln|F| goes up and down


def test_early_stopping_restores_the_best_validation_weights(tmp_path):
    sim = GRF(n=8)
    data = TopoFisherData(sim, n_train=256, n_val=128, n_test=128, batch_size=32)
    model = TopoFisher(PowerSpectrum(8, 4), hidden=(16,), patience=2, optimizer=lively)
    recorder = Recorder()
    trainer = fit(model, data, epochs=12, root=tmp_path, callbacks=[recorder])
    values = recorder.values
    print(values)
    best = int(np.argmax(values))
    assert len(values) == min(12, best + 1 + 2)  # stopped 2 epochs after the best one (or at the last epoch)
    (after,) = trainer.validate(model, datamodule=data, verbose=False)
    assert after["val/log_det_F"] == pytest.approx(max(values), rel=1e-5)
    with pytest.raises(ValueError, match="patience"):
        TopoFisher(PowerSpectrum(8, 4), patience=0)
    with pytest.raises(ValueError, match="kurtosis_weight"):
        TopoFisher(PowerSpectrum(8, 4), kurtosis_weight=-1)


def test_test_moped_reads_a_learned_summary_like_the_fixed_baselines(tmp_path):
    sim = GRF(n=8)
    data = TopoFisherData(sim, n_train=256, n_val=64, n_test=256, batch_size=64)
    results = {}
    for compressor in ("mlp", "moped"):
        model = TopoFisher(PowerSpectrum(8, 4), compressor=compressor, test_moped=True, hidden=(16,), moped_sims=256)
        trainer = fit(model, data, epochs=1, root=tmp_path)
        (results[compressor],) = trainer.test(model, datamodule=data, verbose=False)
    # the power spectrum has nothing to train: MOPED on it is the same for both compressors
    assert results["mlp"]["test/moped/log_det_F"] == pytest.approx(results["moped"]["test/log_det_F"], rel=1e-5)
    assert results["moped"]["test/moped/log_det_F"] == pytest.approx(results["moped"]["test/log_det_F"], rel=1e-6)
    assert results["mlp"]["test/log_det_F"] != pytest.approx(results["mlp"]["test/moped/log_det_F"], rel=1e-3)

"""The LightningModule end to end: a learned compressor reaches the MOPED information of its summary, held-out
information stays below the exact bound, the MOPED compressor path is fitted on training simulations, a fixed
summary + MOPED (a no-op training step) equals held-out MOPED computed directly, and extra test sets are logged."""

from __future__ import annotations

import lightning.pytorch as pl
import pytest
import torch
from torch import nn

from framework_plugins.topofisher import TopoFisher, TopoFisherData
from framework_plugins.topofisher.datamodule import split_seeds
from framework_plugins.topofisher.filtrations import GaussianSmoothing
from framework_plugins.topofisher.fisher import fisher_from_summaries, log_det, moped_weights
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


@torch.no_grad()
def direct_moped_log_det(summary: nn.Module, sim: GRF, n_train: int, n_test: int, seed: int = 0) -> float:
    """ln|F| of summary + MOPED fitted on the train seeds, estimated on the test seeds, computed without the module
    (raw float64 summaries, no standardisation, no loaders)."""

    def summarize(split: str, n: int) -> torch.Tensor:
        sims = sim.seed_matched(split_seeds(seed, split, n))
        return summary(sims.flatten(0, 1)).double().reshape(n, sims.shape[1], -1)

    train, test = summarize("train", n_train), summarize("test", n_test)
    dmu = fisher_from_summaries(train, sim.dtheta, correct=False)[2]
    return log_det(fisher_from_summaries(test @ moped_weights(train[:, 0], dmu), sim.dtheta)[0]).item()


def test_learned_compressor_reaches_moped_information_and_respects_the_bound(tmp_path):
    sim = GRF(n=16)
    data = TopoFisherData(sim, n_train=1024, n_val=128, n_test=1024, batch_size=128)
    model = TopoFisher(PowerSpectrum(16, 6), hidden=(32,), regularizer_weight=0.01, optimizer=adam)
    metrics = fit_and_test(model, data, steps=120, root=tmp_path)
    moped = direct_moped_log_det(PowerSpectrum(16, 6), sim, n_train=1024, n_test=1024)
    exact = torch.logdet(sim.exact_fisher()).item()
    assert metrics["test/log_det_F"] == pytest.approx(moped, abs=0.25)
    assert metrics["test/log_det_F"] < exact + 0.2  # ~4 standard errors of ln|F| from 1024 test seeds
    assert metrics["test/info_ratio"] == pytest.approx(
        torch.exp(torch.tensor(metrics["test/log_det_F"] - exact)).item()
    )
    assert metrics["test/log_det_F_exact"] == pytest.approx(exact, rel=1e-6)


def test_fixed_summary_takes_a_no_op_step_and_equals_moped_computed_directly(tmp_path):
    """A summary without parameters + MOPED: one no-op step (nothing changes, the fit still counts a step), then
    the test fits MOPED on every training seed and reports what the direct computation gives."""
    sim = GRF(n=16)
    data = TopoFisherData(sim, n_train=512, n_val=64, n_test=512, batch_size=64)
    model = TopoFisher(PowerSpectrum(16, 6), compressor="moped", moped_sims=512, optimizer=adam)
    assert not model.trainable
    pl.seed_everything(0)
    trainer = pl.Trainer(
        max_epochs=1,
        limit_train_batches=1,
        limit_val_batches=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=tmp_path,
    )
    trainer.fit(model, datamodule=data)
    assert trainer.global_step == 1
    metrics = {k: float(v) for k, v in trainer.test(model, datamodule=data, verbose=False)[0].items()}
    expected = direct_moped_log_det(PowerSpectrum(16, 6), sim, n_train=512, n_test=512)
    assert metrics["test/log_det_F"] == pytest.approx(expected, abs=2e-3)
    fisher = torch.tensor([[metrics["test/F_00"], metrics["test/F_01"]], [metrics["test/F_01"], metrics["test/F_11"]]])
    assert torch.logdet(fisher.double()).item() == pytest.approx(metrics["test/log_det_F"], abs=1e-4)


class WithNearlyConstantFeature(nn.Module):
    """The power spectrum plus a feature that is 0 except for a rare spike (one field in 200 has it)."""

    def __init__(self, n: int, bins: int) -> None:
        super().__init__()
        self.spectrum = PowerSpectrum(n, bins)
        self.out_features = bins + 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.spectrum(x)
        spike = (x.flatten(1)[:, 0] > 2.6).to(s)  # P(|z| > 2.6) / 2 ~ 0.5%
        return torch.cat([s, 1e-6 * spike[:, None]], dim=1)


def test_moped_drops_nearly_constant_features(tmp_path):
    data = TopoFisherData(GRF(n=16), n_train=512, n_val=64, n_test=256, batch_size=64)
    plain = TopoFisher(PowerSpectrum(16, 6), compressor="moped", moped_sims=512, optimizer=adam)
    spiky = TopoFisher(WithNearlyConstantFeature(16, 6), compressor="moped", moped_sims=512, optimizer=adam)
    expected = fit_and_test(plain, data, steps=1, root=tmp_path / "plain")
    got = fit_and_test(spiky, data, steps=1, root=tmp_path / "spiky")
    assert (spiky.moped[-1] == 0).all() and (spiky.moped[:-1] != 0).any()
    assert got["test/log_det_F"] == pytest.approx(expected["test/log_det_F"], abs=1e-4)


def test_extra_test_sets_are_logged_under_their_names(tmp_path):
    """A test set simulated exactly like the test split reproduces test/log_det_F and shares its memoized
    diagrams; a different simulator at the same parameters gives its own number."""
    torch.manual_seed(0)
    model = TopoFisher(TopologicalSummary(PersLay(8, 16)), hidden=(16,), cache_diagrams=True, optimizer=adam)
    other = GRF(n=12)  # the same parameters on a smaller grid: less information
    data = TopoFisherData(
        GRF(n=16), n_train=128, n_val=64, n_test=64, batch_size=32, test_simulators={"same": GRF(n=16), "other": other}
    )
    metrics = fit_and_test(model, data, steps=4, root=tmp_path)
    assert metrics["test/same/log_det_F"] == pytest.approx(metrics["test/log_det_F"], rel=1e-6)
    assert metrics["test/other/log_det_F"] < metrics["test/log_det_F"] - 0.1
    assert data.dataset("test_same") is data.dataset("test")
    assert metrics["test/other/info_ratio"] == pytest.approx(
        torch.exp(metrics["test/other/log_det_F"] - torch.logdet(other.exact_fisher())).item(), rel=1e-5
    )


def test_extra_test_simulator_at_other_parameters_is_an_error():
    with pytest.raises(ValueError, match="test_simulators.shifted simulates at theta_fid"):
        TopoFisherData(GRF(n=16), test_simulators={"shifted": GRF(n=16, theta_fid=(1.0, 0.5))})


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
    assert (tmp_path / "figures" / "test-1" / "fisher_ellipses.png").is_file()
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

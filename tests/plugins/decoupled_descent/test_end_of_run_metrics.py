"""The end-of-run test/ metrics: exact Gaussian-mixture error against Monte Carlo, the trajectory summary in closed
form, and the LightningModule's test metrics after reloading its last checkpoint against the plain loop."""

from __future__ import annotations

import math

import lightning.pytorch as pl
import pytest
import torch

from framework.optim.decoupled_loop import train_full_batch
from framework.optim.readout import ReadoutNetwork, classification_error
from framework_plugins.decoupled_descent import DecoupledDescentClassifier, DecoupledDescentData
from framework_plugins.decoupled_descent.metrics import gmm_exact_error, trajectory_summary
from framework_plugins.decoupled_descent.simulators import gaussian_mixture, signal_directions


def test_exact_error_matches_monte_carlo_and_is_half_at_zero():
    d = 100
    v = signal_directions(d, 1, 1.5, 0)[0]
    w = 0.7 * v + torch.randn(d, generator=torch.Generator().manual_seed(1), dtype=torch.float64) * 2.0
    x, y = gaussian_mixture(400_000, v, 0.5, 2)
    empirical = classification_error(x @ w, y).mean().item()  # sd of the estimate ~ 7e-4
    exact = gmm_exact_error(w, v, 0.5)
    assert exact["exact_error"] == pytest.approx(empirical, abs=3e-3)
    assert exact["m"] == pytest.approx((v @ w).item() / d) and exact["q"] == pytest.approx((w @ w).item() / d)
    assert gmm_exact_error(torch.zeros(d), v, 0.5)["exact_error"] == 0.5


def test_trajectory_summary_skips_the_initialization_and_unshared_steps():
    train = {0: 0.5, 1: 0.30, 2: 0.20, 3: 0.10}
    test = {0: 0.0, 1: 0.32, 2: 0.26, 4: 0.01}
    out = trajectory_summary(train, test)
    assert out["max_tracking_gap"] == pytest.approx(0.06)  # t = 2; t = 0 (gap 0.5) and t = 3, 4 are not shared
    assert out["best_error_over_t"] == pytest.approx(0.26)
    assert trajectory_summary({0: 0.5}, {0: 0.5}) == {}


def _trainer(tmp_path, epochs: int) -> pl.Trainer:
    return pl.Trainer(
        max_epochs=epochs,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=tmp_path,
    )


@pytest.mark.parametrize("method", ["dd", "gd"])
def test_test_metrics_of_a_reloaded_run_match_the_plain_loop(tmp_path, method):
    d, n, steps = 100, 300, 5
    data = DecoupledDescentData(task="gmm", dim=d, n_train=n, n_val=200, n_test=200, seed=4)

    def model() -> DecoupledDescentClassifier:
        opt = lambda p: torch.optim.SGD(p, lr=0.5, weight_decay=0.05)  # noqa: E731
        return DecoupledDescentClassifier(n_features=d, method=method, optimizer=opt, se_particles=5000)

    fit = _trainer(tmp_path, steps)
    fit.fit(model(), datamodule=data)
    ckpt = tmp_path / "checkpoints" / next((tmp_path / "checkpoints").iterdir()).name
    metrics = _trainer(tmp_path / "test", 1).test(model(), datamodule=data, ckpt_path=str(ckpt), verbose=False)[0]

    x, y, _ = data.splits["train"]
    net = ReadoutNetwork(d)
    _, memory = train_full_batch(net, x, y, steps, method, 1.0, lr=0.5, weight_decay=0.05)
    raw = net.preactivations(x).detach()
    p = memory.correct(raw, torch.arange(n)) if memory is not None else raw
    train, corrected = (classification_error(net.score(a), y).mean().item() for a in (raw, p))
    assert metrics["test/train_error"] == pytest.approx(train, abs=1e-6)
    assert metrics["test/corrected_train_error"] == pytest.approx(corrected, abs=1e-6)
    assert metrics["test/correction"] == pytest.approx(corrected - train, abs=1e-6)
    assert metrics["test/tracking_gap"] == pytest.approx(abs(corrected - metrics["test/error"]), abs=1e-6)
    assert (metrics["test/correction"] > 0.02) == (method == "dd")  # n/d = 3: DD corrects, GD reports raw
    exact = gmm_exact_error(net.first.weight[0].detach(), signal_directions(d, 1, 1.0, 4)[0], 1.0)
    assert metrics["test/exact_error"] == pytest.approx(exact["exact_error"], abs=1e-5)
    assert 0 <= metrics["test/max_tracking_gap"] <= 1 and 0 <= metrics["test/best_error_over_t"] <= 0.5
    if method == "dd":  # the SE was computed at fit start and comes back with the checkpoint
        assert math.isfinite(metrics["test/se_error"]) and metrics["test/se_q"] > 0
    else:
        assert "test/se_error" not in metrics

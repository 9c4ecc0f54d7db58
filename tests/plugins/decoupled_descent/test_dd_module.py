"""The LightningModule (manual optimization) runs the same steps as the plain loop, checkpoints the Onsager memory,
and the framework's non-finite-loss guard still stops it before the next optimizer step."""

from __future__ import annotations

import lightning.pytorch as pl
import pytest
import torch

from framework.callbacks import FiniteGuard, NonFiniteError, RNGStateCallback
from framework.optim.decoupled_loop import train_full_batch
from framework.optim.readout import ReadoutNetwork
from framework_plugins.decoupled_descent import DecoupledDescentClassifier, DecoupledDescentData


def sgd(lr: float):
    return lambda params: torch.optim.SGD(params, lr=lr, weight_decay=0.05, momentum=0.3, dampening=0.1)


def trainer(tmp_path, epochs: int) -> pl.Trainer:
    return pl.Trainer(
        max_epochs=epochs,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[FiniteGuard(), RNGStateCallback()],
        default_root_dir=tmp_path,
    )


def test_lightning_fit_equals_the_plain_loop_and_logs_the_state_evolution(tmp_path):
    data = DecoupledDescentData(task="gmm", dim=200, n_train=400, n_val=300, n_test=300)
    model = DecoupledDescentClassifier(n_features=200, optimizer=sgd(0.5), se_particles=20_000)
    trainer(tmp_path, 4).fit(model, datamodule=data)
    x, y, _ = data.splits["train"]
    history, memory = train_full_batch(
        ReadoutNetwork(200), x, y, 4, "dd", 1.0, lr=0.5, weight_decay=0.05, momentum=0.3, dampening=0.1
    )
    assert [model.history["corrected_error"][t] for t in range(4)] == pytest.approx(history["corrected_error"])
    torch.testing.assert_close(model.memory.memory, memory.memory, rtol=1e-5, atol=1e-6)
    assert memory.memory.abs().max() > 0.1
    assert set(model.history["se_error"]) == set(range(4)) and set(model.history["test_error"]) >= {1, 2, 3, 4}
    assert "memory.memory" in model.state_dict() and "memory.velocity" in model.state_dict()
    assert (tmp_path / "figures" / "fit-1" / "errors.png").is_file()


def test_non_finite_loss_stops_manual_optimization_before_the_next_step(tmp_path):
    data = DecoupledDescentData(task="gmm", dim=50, n_train=100, n_val=50, n_test=50)
    model = DecoupledDescentClassifier(n_features=50, optimizer=sgd(1e38))
    fit = trainer(tmp_path, 5)
    with pytest.raises(NonFiniteError, match="global step 1") as err:
        fit.fit(model, datamodule=data)
    assert fit.global_step == 1
    assert "gradient_clip_val" not in str(err.value)  # Lightning refuses it under manual optimization


def test_feature_mismatch_and_non_sgd_optimizers_are_refused(tmp_path):
    data = DecoupledDescentData(task="gmm", dim=50, n_train=100, n_val=50, n_test=50)
    with pytest.raises(ValueError, match="n_features"):
        trainer(tmp_path, 1).fit(DecoupledDescentClassifier(n_features=60), datamodule=data)
    adam = DecoupledDescentClassifier(n_features=50, optimizer=lambda p: torch.optim.Adam(p))
    with pytest.raises(ValueError, match="torch.optim.SGD"):
        trainer(tmp_path, 1).fit(adam, datamodule=data)

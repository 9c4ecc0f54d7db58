"""The non-finite guard names what went non-finite (data, loss, gradients, update) and no checkpoint holds NaN/inf."""

from __future__ import annotations

import lightning.pytorch as pl
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from framework.callbacks import AtomicModelCheckpoint, FiniteGuard, NonFiniteError
from framework.checkpoint import load_checkpoint_safely
from framework.testing.toy import ToyRegression


def _fit(module: pl.LightningModule, x: torch.Tensor, tmp_path, callbacks=()) -> pl.Trainer:
    trainer = pl.Trainer(
        max_epochs=3,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[FiniteGuard(), *callbacks],
        default_root_dir=tmp_path,
        enable_checkpointing=bool(callbacks),
    )
    trainer.fit(module, DataLoader(TensorDataset(x, torch.zeros(len(x), 1)), batch_size=4))
    return trainer


def test_non_finite_input_data_is_named_as_data(tmp_path):
    x = torch.randn(16, 4)
    x[9, 2] = float("inf")  # third batch
    with pytest.raises(NonFiniteError, match=r"global step 2 the input data went non-finite \(batch\[0\]"):
        _fit(ToyRegression(optimizer=lambda p: torch.optim.SGD(p, lr=0.01)), x, tmp_path)


class _SteepLinear(ToyRegression):
    """Loss 10 * sum(w): finite, with finite gradient 10, so an SGD step of lr 3e38 overflows every weight."""

    def training_step(self, batch, batch_idx):
        return 10 * self.net[0].weight.sum()


def test_an_update_that_overflows_is_caught_before_any_checkpoint(tmp_path):
    ckpt = AtomicModelCheckpoint(dirpath=tmp_path / "ckpt", save_last=True, every_n_train_steps=1)
    model = _SteepLinear(optimizer=lambda p: torch.optim.SGD(p, lr=3e38))
    with pytest.raises(NonFiniteError, match=r"global step 1 the optimizer step made net\.0\.weight non-finite"):
        _fit(model, torch.randn(16, 4), tmp_path, [ckpt])
    assert not list((tmp_path / "ckpt").glob("*.ckpt*"))  # nothing named "good" holds the overflowed weights


class _InfiniteGradient(ToyRegression):
    """Loss sqrt(0) = 0 is finite, its gradient 1 / (2 sqrt(0)) is not."""

    def training_step(self, batch, batch_idx):
        w = self.net[0].weight
        return torch.sqrt((w - w.detach()).sum())


def test_non_finite_gradients_with_a_finite_loss_stop_before_the_step(tmp_path):
    model = _InfiniteGradient(optimizer=lambda p: torch.optim.SGD(p, lr=0.01))
    before = model.net[0].weight.detach().clone()
    with pytest.raises(NonFiniteError, match=r"global step 0 the gradient of net\.0\.weight is not finite"):
        _fit(model, torch.randn(8, 4), tmp_path)
    torch.testing.assert_close(model.net[0].weight.detach(), before, rtol=0, atol=0)


class _NanBuffer(ToyRegression):
    """A buffer (which the per-step guard does not check) turns NaN at global step 2."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.register_buffer("running", torch.zeros(3))

    def training_step(self, batch, batch_idx):
        if self.global_step == 2:
            self.running[1] = float("nan")
        return super().training_step(batch, batch_idx)


def test_the_checkpoint_callback_refuses_non_finite_weights(tmp_path):
    ckpt = AtomicModelCheckpoint(dirpath=tmp_path / "ckpt", save_last=True, every_n_train_steps=1)
    with pytest.raises(NonFiniteError, match="refusing to write checkpoint .*: running is not finite at global step 3"):
        _fit(_NanBuffer(optimizer=lambda p: torch.optim.SGD(p, lr=0.01)), torch.randn(16, 4), tmp_path, [ckpt])
    last = load_checkpoint_safely(tmp_path / "ckpt" / "last.ckpt")
    assert last["global_step"] == 2 and all(torch.isfinite(v).all() for v in last["state_dict"].values())
    assert not list((tmp_path / "ckpt").glob("*.tmp"))

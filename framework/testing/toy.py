"""A tiny regression plugin used by the framework's own tests (NaN guard, checkpoint safety, benchmarks)."""

from __future__ import annotations

import lightning.pytorch as pl
import torch
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from framework.data import make_loader
from framework.module import FrameworkModule, default_optimizer


class ToyRegression(FrameworkModule):
    """y = MLP(x) fitted by MSE. ``nan_at_step`` makes the training loss NaN from that global step on (for tests).

    Args:
        in_features: input dimension (must equal the data's ``in_features``).
        hidden: width of the MLP's one tanh hidden layer.
        nan_at_step: global step from which the training loss is NaN (tests of the non-finite guard); null = never.
        optimizer: callable params -> torch.optim.Optimizer, given this module's named parameter groups (YAML:
            ``class_path`` with ``init_args``); default AdamW(lr=1e-3).
        lr_scheduler: callable optimizer -> LR scheduler, stepped after every optimizer step (YAML: ``class_path``
            with ``init_args``); null = constant learning rate.
    """

    def __init__(
        self,
        in_features: int = 4,
        hidden: int = 16,
        nan_at_step: int | None = None,
        optimizer: OptimizerCallable = default_optimizer,
        lr_scheduler: LRSchedulerCallable | None = None,
    ) -> None:
        super().__init__(optimizer=optimizer, lr_scheduler=lr_scheduler)
        self.save_hyperparameters(ignore=["optimizer", "lr_scheduler"])
        self.net = nn.Sequential(nn.Linear(in_features, hidden), nn.Tanh(), nn.Linear(hidden, 1))
        self.nan_at_step = nan_at_step

    def training_step(self, batch: list[torch.Tensor], batch_idx: int) -> torch.Tensor:
        x, y = batch
        loss = (self.net(x) - y).pow(2).mean()
        if self.nan_at_step is not None and self.global_step >= self.nan_at_step:
            loss = loss * float("nan")
        self.log("train/loss", loss)
        return loss

    def validation_step(self, batch: list[torch.Tensor], batch_idx: int) -> None:
        x, y = batch
        self.log("val/loss", (self.net(x) - y).pow(2).mean())

    def test_step(self, batch: list[torch.Tensor], batch_idx: int) -> None:
        x, y = batch
        self.log("test/loss", (self.net(x) - y).pow(2).mean())

    def predict_step(self, batch: list[torch.Tensor], batch_idx: int) -> torch.Tensor:
        return self.net(batch[0])


class ToyRegressionData(pl.LightningDataModule):
    """y = sin(x . w) + noise with x ~ N(0, I); seeded. Validation, test and predict reuse the training samples.

    Args:
        in_features: input dimension.
        n: number of samples.
        batch_size: samples per batch.
        seed: seeds the samples (x, w and the noise of std 0.1) and the shuffling.
    """

    def __init__(self, in_features: int = 4, n: int = 512, batch_size: int = 32, seed: int = 0) -> None:
        super().__init__()
        gen = torch.Generator().manual_seed(seed)
        x = torch.randn(n, in_features, generator=gen)
        y = torch.sin(x @ torch.randn(in_features, 1, generator=gen)) + 0.1 * torch.randn(n, 1, generator=gen)
        self.dataset = TensorDataset(x, y)
        self.batch_size = batch_size
        self.seed = seed

    def train_dataloader(self) -> DataLoader:
        return make_loader(self.dataset, self.batch_size, shuffle=True, seed=self.seed)

    def val_dataloader(self) -> DataLoader:
        return make_loader(self.dataset, self.batch_size, shuffle=False, seed=self.seed)

    test_dataloader = val_dataloader
    predict_dataloader = val_dataloader

"""A minimal third-party plugin: a linear regression model and its data, shipped with its own config."""

from __future__ import annotations

from pathlib import Path

import lightning.pytorch as pl
import torch
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from framework.data import make_loader
from framework.module import FrameworkModule, default_optimizer

CONFIG_DIR = Path(__file__).parent / "configs"  # `framework plugins` lists these; the conformance suite runs them
__all__ = ["DemoRegression", "DemoRegressionData"]


class DemoRegression(FrameworkModule):
    """y_hat = W x + b, trained by mean squared error.

    Args:
        in_features: input dimension (must equal the data's ``in_features``).
        optimizer: callable params -> torch.optim.Optimizer, given this module's named parameter groups (YAML:
            ``class_path`` with ``init_args``); default AdamW(lr=1e-3).
        lr_scheduler: callable optimizer -> LR scheduler, stepped after every optimizer step (YAML: ``class_path``
            with ``init_args``); null = constant learning rate.
    """

    def __init__(
        self,
        in_features: int = 3,
        optimizer: OptimizerCallable = default_optimizer,
        lr_scheduler: LRSchedulerCallable | None = None,
    ) -> None:
        super().__init__(optimizer=optimizer, lr_scheduler=lr_scheduler)
        self.save_hyperparameters(ignore=["optimizer", "lr_scheduler"])
        self.linear = nn.Linear(in_features, 1)

    def _loss(self, batch: list[torch.Tensor]) -> torch.Tensor:
        x, y = batch
        return (self.linear(x) - y).pow(2).mean()

    def training_step(self, batch: list[torch.Tensor], batch_idx: int) -> torch.Tensor:
        loss = self._loss(batch)
        self.log("train/loss", loss)
        return loss

    def validation_step(self, batch: list[torch.Tensor], batch_idx: int) -> None:
        self.log("val/loss", self._loss(batch))

    def test_step(self, batch: list[torch.Tensor], batch_idx: int) -> None:
        self.log("test/loss", self._loss(batch))

    def predict_step(self, batch: list[torch.Tensor], batch_idx: int) -> torch.Tensor:
        return self.linear(batch[0])


class DemoRegressionData(pl.LightningDataModule):
    """y = x . w + 0.1 noise, x ~ N(0, I), seeded. Validation, test and predict reuse the training samples.

    Args:
        in_features: input dimension.
        n: number of samples.
        batch_size: samples per batch.
        seed: seeds the samples (x, w and the noise) and the shuffling.
    """

    def __init__(self, in_features: int = 3, n: int = 256, batch_size: int = 32, seed: int = 0) -> None:
        super().__init__()
        gen = torch.Generator().manual_seed(seed)
        x = torch.randn(n, in_features, generator=gen)
        y = x @ torch.randn(in_features, 1, generator=gen) + 0.1 * torch.randn(n, 1, generator=gen)
        self.dataset, self.batch_size, self.seed = TensorDataset(x, y), batch_size, seed

    def train_dataloader(self) -> DataLoader:
        return make_loader(self.dataset, self.batch_size, shuffle=True, seed=self.seed)

    def val_dataloader(self) -> DataLoader:
        return make_loader(self.dataset, self.batch_size, shuffle=False, seed=self.seed)

    test_dataloader = predict_dataloader = val_dataloader

"""A DataModule base for data held in memory as named splits of tensors."""

from __future__ import annotations

import lightning.pytorch as pl
import torch
from torch.utils.data import DataLoader, Dataset

from framework.data.loaders import BatchedTensorDataset, make_loader


class TensorSplitsDataModule(pl.LightningDataModule):
    """Serves ``self.splits = {"train": (x, ...), "val": (...), "test": (...)}`` (filled by the subclass's
    ``setup``) through :func:`make_loader`: shuffled, seeded train batches; ordered val/test/predict batches.
    ``predict`` uses the test split unless overridden. A subclass sets ``batch_type`` (a NamedTuple with one field
    per split tensor) to serve typed batches."""

    batch_type: type[tuple] | None = None

    def __init__(self, batch_size: int, seed: int) -> None:
        super().__init__()
        self.batch_size = batch_size
        self.seed = seed
        self.splits: dict[str, tuple[torch.Tensor, ...]] = {}

    def loader(self, split: str, shuffle: bool = False) -> DataLoader:
        """A loader over one split (names the missing split if ``setup`` did not create it)."""
        if split not in self.splits:
            raise KeyError(f"{type(self).__name__} has no {split!r} split (has {sorted(self.splits)}); call setup().")
        return make_loader(self.dataset(split), self.batch_size, shuffle=shuffle, seed=self.seed)

    def dataset(self, split: str) -> Dataset:
        """The dataset of one split (its tensors, batch-fetchable with ``__getitems__``; subclasses may serve
        transformed items)."""
        return BatchedTensorDataset(*self.splits[split], batch_type=self.batch_type)

    def train_dataloader(self) -> DataLoader:
        return self.loader("train", shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self.loader("val")

    def test_dataloader(self) -> DataLoader:
        return self.loader("test")

    def predict_dataloader(self) -> DataLoader:
        return self.loader("test")

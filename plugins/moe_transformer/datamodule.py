"""Byte windows of the Python standard library's sources, split by file into train/val/test."""

from __future__ import annotations

from pathlib import Path

import lightning.pytorch as pl
import torch
from torch.utils.data import DataLoader, TensorDataset

from framework.data import make_loader
from plugins.moe_transformer.corpus import load_split, windows


class StdlibBytes(pl.LightningDataModule):
    """Next-byte prediction data: non-overlapping ``block_size + 1`` windows of the stdlib ``.py`` files.

    Args:
        block_size: context length in bytes.
        batch_size: windows per batch.
        max_train_bytes, max_eval_bytes: corpus budget of the train split and of val / test each.
        root: directory of ``.py`` files (default: this interpreter's standard library).
        seed: shuffling seed.
    """

    def __init__(
        self, block_size: int = 64, batch_size: int = 32, max_train_bytes: int = 200_000,
        max_eval_bytes: int = 50_000, root: str | None = None, seed: int = 0,
    ) -> None:  # fmt: skip
        super().__init__()
        self.block_size, self.batch_size, self.seed = block_size, batch_size, seed
        self.budgets = {"train": max_train_bytes, "val": max_eval_bytes, "test": max_eval_bytes}
        self.root = Path(root) if root else None
        self.splits: dict[str, torch.Tensor] = {}

    def setup(self, stage: str | None = None) -> None:
        if not self.splits:
            self.splits = {s: windows(load_split(s, b, self.root), self.block_size) for s, b in self.budgets.items()}

    def _loader(self, split: str, shuffle: bool) -> DataLoader:
        w = self.splits[split]
        return make_loader(TensorDataset(w[:, :-1], w[:, 1:]), self.batch_size, shuffle=shuffle, seed=self.seed)

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", shuffle=False)

    def predict_dataloader(self) -> DataLoader:
        return self._loader("test", shuffle=False)

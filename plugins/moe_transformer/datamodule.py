"""Byte windows of the Python standard library's sources, split by file into train/val/test."""

from __future__ import annotations

from pathlib import Path

from framework.data import TensorSplitsDataModule
from framework_plugins.moe_transformer.corpus import load_split, windows


class StdlibBytes(TensorSplitsDataModule):
    """Next-byte prediction data: non-overlapping ``block_size + 1`` windows of the stdlib ``.py`` files.

    Args:
        block_size: context length in bytes.
        batch_size: windows per batch.
        max_train_bytes, max_eval_bytes: corpus budget of the train split and of val / test each.
        root: directory of ``.py`` files (default: this interpreter's standard library).
        seed: shuffling seed.
    """

    def __init__(
        self,
        block_size: int = 64,
        batch_size: int = 32,
        max_train_bytes: int = 200_000,
        max_eval_bytes: int = 50_000,
        root: str | None = None,
        seed: int = 0,
    ) -> None:
        super().__init__(batch_size, seed)
        self.block_size = block_size
        self.budgets = {"train": max_train_bytes, "val": max_eval_bytes, "test": max_eval_bytes}
        self.root = Path(root) if root else None

    def setup(self, stage: str | None = None) -> None:
        """Windows w of each split as (inputs w[:, :-1], next-byte targets w[:, 1:])."""
        for split, budget in self.budgets.items():
            if split not in self.splits:
                w = windows(load_split(split, budget, self.root), self.block_size)
                self.splits[split] = (w[:, :-1], w[:, 1:])

"""Byte windows of the Python standard library's sources, split by file into train/val/test."""

from __future__ import annotations

from pathlib import Path

from framework.data import TensorSplitsDataModule
from framework_plugins.moe_transformer.corpus import load_split, windows


class StdlibBytes(TensorSplitsDataModule):
    """Next-byte prediction data: non-overlapping ``block_size + 1`` windows of the stdlib ``.py`` files.

    Files are assigned to splits by a hash of their relative path (about 90% train, 5% val, 5% test).

    Args:
        block_size: context length in bytes: windows of ``block_size + 1`` bytes give inputs and next-byte targets
            (at most the model's ``block_size``).
        batch_size: windows per batch.
        max_train_bytes: bytes of the train split's files read (files joined by a NUL byte, in sorted path order).
        max_eval_bytes: bytes read for each of the val and test splits.
        root: directory searched recursively for ``.py`` files (site-packages excluded); null = this interpreter's
            standard library.
        seed: seed of the train loader's shuffling (the split is fixed by file).
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

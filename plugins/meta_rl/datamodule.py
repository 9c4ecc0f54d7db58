"""Seeded task streams: each meta-iteration's task batch depends only on (seed, global step), so a resumed run sees
the same tasks as an uninterrupted one."""

from __future__ import annotations

from collections.abc import Iterator

import lightning.pytorch as pl
import numpy as np
import torch
from torch.utils.data import DataLoader, IterableDataset, TensorDataset

from framework.data import make_loader

TRAIN, VAL, TEST = 0, 1, 2


def task_seeds(seed: int, stream: int, index: int, n: int) -> torch.Tensor:
    """``n`` task seeds ``(n,)`` int64 from ``SeedSequence((seed, stream, index))``: independent across seeds,
    streams (train / val / test) and indices."""
    state = np.random.SeedSequence((seed, stream, index)).generate_state(n, dtype=np.uint32)
    return torch.from_numpy(state.astype(np.int64))


class TaskSeedStream(IterableDataset):
    """Task seeds of ``steps_per_epoch`` meta-iterations, ``meta_batch_size`` per iteration; iteration i of epoch
    e yields ``task_seeds(seed, TRAIN, e * steps_per_epoch + i, meta_batch_size)`` one seed at a time (the
    DataLoader batches them). :meth:`set_epoch` is called by the LightningModule at each epoch start."""

    def __init__(self, seed: int, meta_batch_size: int, steps_per_epoch: int) -> None:
        self.seed, self.meta_batch_size, self.steps_per_epoch = seed, meta_batch_size, steps_per_epoch
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.steps_per_epoch * self.meta_batch_size

    def __iter__(self) -> Iterator[tuple[torch.Tensor]]:
        for i in range(self.steps_per_epoch):
            for s in task_seeds(self.seed, TRAIN, self.epoch * self.steps_per_epoch + i, self.meta_batch_size):
                yield (s,)


class MetaRLTasks(pl.LightningDataModule):
    """Task seeds for meta-training (a fresh seeded batch every step) and fixed held-out tasks for validation and
    test (the model turns seeds into tasks of its environment: ``env.tasks_from_seeds``).

    Args:
        meta_batch_size: tasks per meta-iteration (split across DDP ranks).
        steps_per_epoch: meta-iterations per epoch (an epoch is a checkpoint/validation period).
        n_val_tasks: fixed held-out tasks of every validation (>= 1).
        n_test_tasks: fixed held-out tasks of the test and of predict (>= 1).
        eval_batch_size: held-out tasks per validation / test / predict step (>= 1).
        seed: seeds every stream (train, val and test task seeds are independent).
    """

    def __init__(
        self,
        meta_batch_size: int = 20,
        steps_per_epoch: int = 10,
        n_val_tasks: int = 20,
        n_test_tasks: int = 40,
        eval_batch_size: int = 20,
        seed: int = 0,
    ) -> None:
        super().__init__()
        for name, value in (
            ("meta_batch_size", meta_batch_size),
            ("steps_per_epoch", steps_per_epoch),
            ("n_val_tasks", n_val_tasks),
            ("n_test_tasks", n_test_tasks),
            ("eval_batch_size", eval_batch_size),
        ):
            if value < 1:
                raise ValueError(f"data.init_args.{name}={value} must be >= 1.")
        self.save_hyperparameters()
        self.seed, self.meta_batch_size, self.eval_batch_size = seed, meta_batch_size, eval_batch_size
        self.train_stream = TaskSeedStream(seed, meta_batch_size, steps_per_epoch)
        self.n_eval = {VAL: n_val_tasks, TEST: n_test_tasks}

    def train_dataloader(self) -> DataLoader:
        return make_loader(self.train_stream, self.meta_batch_size, shuffle=False, seed=self.seed)

    def _eval_loader(self, stream: int) -> DataLoader:
        seeds = task_seeds(self.seed, stream, 0, self.n_eval[stream])
        return make_loader(TensorDataset(seeds), self.eval_batch_size, shuffle=False, seed=self.seed)

    def val_dataloader(self) -> DataLoader:
        return self._eval_loader(VAL)

    def test_dataloader(self) -> DataLoader:
        return self._eval_loader(TEST)

    def predict_dataloader(self) -> DataLoader:
        return self._eval_loader(TEST)

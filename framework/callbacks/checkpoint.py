"""Checkpointing that an interruption (SIGKILL, power loss) cannot leave half-written."""

from __future__ import annotations

import os

import lightning.pytorch as pl
from lightning.pytorch.callbacks import ModelCheckpoint


class AtomicModelCheckpoint(ModelCheckpoint):
    """``ModelCheckpoint`` that writes ``<file>.tmp`` and renames it over ``<file>``.

    ``os.replace`` is atomic on POSIX, so ``last.ckpt`` is always either the previous complete checkpoint or the
    new complete one, never a truncated file, even if the process is killed mid-write.
    """

    def _save_checkpoint(self, trainer: pl.Trainer, filepath: str) -> None:
        tmp_path = f"{filepath}.tmp"
        trainer.save_checkpoint(tmp_path, self.save_weights_only)
        if trainer.is_global_zero:
            os.replace(tmp_path, filepath)
        trainer.strategy.barrier("AtomicModelCheckpoint._save_checkpoint")
        self._last_global_step_saved = trainer.global_step
        self._last_checkpoint_saved = filepath
        if trainer.is_global_zero:
            for logger in trainer.loggers:
                logger.after_save_checkpoint(self)

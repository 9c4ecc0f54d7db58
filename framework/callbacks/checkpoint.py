"""Checkpointing that an interruption (SIGKILL, power loss) cannot leave half-written."""

from __future__ import annotations

import os

import lightning.pytorch as pl
from lightning.pytorch.callbacks import ModelCheckpoint

from framework.callbacks.finite_guard import NonFiniteError, first_non_finite


class AtomicModelCheckpoint(ModelCheckpoint):
    """``ModelCheckpoint`` that writes ``<file>.tmp`` and renames it over ``<file>``, and never writes NaN/inf weights.

    ``os.replace`` is atomic on POSIX, so ``last.ckpt`` is always either the previous complete checkpoint or the
    new complete one, never a truncated file, even if the process is killed mid-write. A model whose parameters or
    buffers are not finite is refused with :class:`~framework.callbacks.NonFiniteError` (on every rank together)
    before anything is written. (The CLI turns the version counter off: a run directory holds one fit, so
    ``last.ckpt`` is always the newest checkpoint, also after a resume that changed a checkpoint setting.)
    """

    def _save_checkpoint(self, trainer: pl.Trainer, filepath: str) -> None:
        module = trainer.lightning_module
        bad = first_non_finite([*module.named_parameters(), *module.named_buffers()])
        if trainer.strategy.reduce_boolean_decision(bad is not None, all=False):
            raise NonFiniteError(
                f"refusing to write checkpoint {filepath}: {bad or 'a tensor on another rank'} is not finite at "
                f"global step {trainer.global_step}; the checkpoints already on disk are the last good ones."
            )
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

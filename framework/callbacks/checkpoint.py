"""Checkpointing that an interruption (SIGKILL, power loss) cannot leave half-written."""

from __future__ import annotations

import os
from pathlib import Path

import lightning.pytorch as pl
from lightning.pytorch.callbacks import ModelCheckpoint

from framework.callbacks.finite_guard import NonFiniteError, first_non_finite
from framework.checkpoint import CheckpointError


class AtomicModelCheckpoint(ModelCheckpoint):
    """``ModelCheckpoint`` that writes ``<file>.tmp`` and renames it over ``<file>``, and never writes NaN/inf weights.

    ``os.replace`` is atomic on POSIX, so ``last.ckpt`` is always either the previous complete checkpoint or the
    new complete one, never a truncated file, even if the process is killed mid-write. A model whose parameters or
    buffers are not finite is refused with :class:`~framework.callbacks.NonFiniteError` (on every rank together)
    before anything is written. (The CLI turns the version counter off: a run directory holds one fit, so
    ``last.ckpt`` is always the newest checkpoint, also after a resume that changed a checkpoint setting.)

    ``last.ckpt`` is refreshed at every save point also when a monitored metric did not improve: Lightning (2.5 and
    later) rewrites it only at steps where it wrote a top-k checkpoint, which left ``last.ckpt`` at the best step of
    an early-stopped run, so ``--ckpt_path last`` resumed (and evaluated) the wrong weights.
    """

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        """Remove ``*.ckpt.tmp`` left by a process killed mid-write (the complete checkpoints are untouched)."""
        super().setup(trainer, pl_module, stage)
        if trainer.is_global_zero and self.dirpath and Path(self.dirpath).is_dir():
            for stale in Path(self.dirpath).glob("*.ckpt.tmp"):
                stale.unlink(missing_ok=True)

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        super().on_train_epoch_end(trainer, pl_module)
        if self._should_save_on_train_epoch_end(trainer):
            self._refresh_last(trainer)

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        super().on_validation_end(trainer, pl_module)
        if not self._should_save_on_train_epoch_end(trainer):
            self._refresh_last(trainer)

    def _refresh_last(self, trainer: pl.Trainer) -> None:
        """Write ``last.ckpt`` at an epoch-schedule save point where the parent class wrote nothing."""
        due = self._every_n_epochs >= 1 and (trainer.current_epoch + 1) % self._every_n_epochs == 0
        if self.save_last and due and not self._should_skip_saving_checkpoint(trainer):
            self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))

    def _save_checkpoint(self, trainer: pl.Trainer, filepath: str) -> None:
        module = trainer.lightning_module
        bad = first_non_finite([*module.named_parameters(), *module.named_buffers()])
        if trainer.strategy.reduce_boolean_decision(bad is not None, all=False):
            raise NonFiniteError(
                f"refusing to write checkpoint {filepath}: {bad or 'a tensor on another rank'} is not finite at "
                f"global step {trainer.global_step}; the checkpoints already on disk are the last good ones."
            )
        tmp_path = f"{filepath}.tmp"
        try:
            trainer.save_checkpoint(tmp_path, self.save_weights_only)
            if trainer.is_global_zero:
                os.replace(tmp_path, filepath)
        except OSError as err:  # a full disk or a lost mount: no half-written file stays behind
            Path(tmp_path).unlink(missing_ok=True)
            raise CheckpointError(
                f"could not write checkpoint {filepath}: {err.strerror or err}. The checkpoints already in "
                f"{Path(filepath).parent} are intact; free space (or fix the path) and resume with --ckpt_path last."
            ) from err
        trainer.strategy.barrier("AtomicModelCheckpoint._save_checkpoint")
        self._last_global_step_saved = trainer.global_step
        self._last_checkpoint_saved = filepath
        if trainer.is_global_zero:
            for logger in trainer.loggers:
                logger.after_save_checkpoint(self)

"""Stop training on a NaN/inf loss before it reaches the weights."""

from __future__ import annotations

from typing import Any

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import Callback


class NonFiniteLossError(FloatingPointError):
    """Raised when the training loss is NaN or infinite."""


class FiniteLossGuard(Callback):
    """Raise :class:`NonFiniteLossError` as soon as a training loss is not finite.

    The check runs in ``on_before_backward``, i.e. before the backward pass and the optimizer step, so the weights
    and every checkpoint already on disk stay the last good ones. Works for automatic and manual optimization
    (``manual_backward`` calls the same hook; a manual step that returns its loss is also checked at batch end).
    """

    def on_before_backward(self, trainer: pl.Trainer, pl_module: pl.LightningModule, loss: torch.Tensor) -> None:
        self._check(trainer, pl_module, loss)

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        if pl_module.automatic_optimization:  # already checked before backward
            return
        loss = outputs.get("loss") if isinstance(outputs, dict) else outputs
        if isinstance(loss, torch.Tensor):
            self._check(trainer, pl_module, loss)

    @staticmethod
    def _check(trainer: pl.Trainer, pl_module: pl.LightningModule, loss: torch.Tensor) -> None:
        bad = not bool(torch.isfinite(loss.detach()).all())
        # every rank must stop together, or the others would wait forever in the gradient all-reduce
        if not trainer.strategy.reduce_boolean_decision(bad, all=False):
            return
        ckpt = trainer.checkpoint_callback
        last = getattr(ckpt, "last_model_path", "") or getattr(ckpt, "best_model_path", "") if ckpt else ""
        where = f"The last good checkpoint is {last}." if last else "No checkpoint had been written yet."
        # Lightning refuses gradient_clip_val under manual optimization, so only suggest it where it works
        clip = "clip gradients (--trainer.gradient_clip_val 1.0), " if pl_module.automatic_optimization else ""
        raise NonFiniteLossError(
            f"training loss is not finite on at least one rank (here: {loss.detach().flatten()[0].item()}) at "
            f"epoch {trainer.current_epoch}, "
            f"global step {trainer.global_step}; training stopped before the optimizer step. {where} "
            f"Fix: lower the learning rate (--model.optimizer.init_args.lr), {clip}or check the data for NaNs."
        )

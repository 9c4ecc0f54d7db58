"""Stop training at the first NaN/inf (in the data, the loss, the gradients or the weights) before it is saved."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import Callback


class NonFiniteError(FloatingPointError):
    """Training produced a NaN or inf: the input batch, the loss, the gradients, or the parameters after a step."""


def _local(tensor: torch.Tensor) -> torch.Tensor:
    """The local shard of a DTensor (FSDP2), the tensor itself otherwise."""
    return tensor.to_local() if hasattr(tensor, "to_local") else tensor


def first_non_finite(named: Iterable[tuple[str, torch.Tensor | None]]) -> str | None:
    """The name of the first floating tensor in ``named`` holding a NaN or inf (``None`` entries are skipped), else
    ``None``. One device synchronisation for all tensors; the search for the name runs only when one is bad."""
    tensors = [(name, _local(t).detach()) for name, t in named if t is not None and t.is_floating_point()]
    if not tensors or bool(torch.stack([t.isfinite().all() for _, t in tensors]).all()):
        return None
    return next(name for name, t in tensors if not bool(t.isfinite().all()))


def _batch_tensors(batch: Any, prefix: str = "batch") -> Iterator[tuple[str, torch.Tensor]]:
    if isinstance(batch, torch.Tensor):
        yield prefix, batch
    elif isinstance(batch, dict):
        for key, value in batch.items():
            yield from _batch_tensors(value, f"{prefix}[{key!r}]")
    elif isinstance(batch, list | tuple):
        for i, value in enumerate(batch):
            yield from _batch_tensors(value, f"{prefix}[{i}]")


class FiniteGuard(Callback):
    """Raise :class:`NonFiniteError` at the first non-finite value of a training step, naming what went non-finite.

    Three checks per step: the loss before backward (and, if it is not finite, whether the input batch already was:
    *data* vs *loss*), every gradient before the optimizer step (*gradients*), and every parameter after the step
    (*update*). The parameter check runs in ``on_train_batch_end`` before any checkpoint callback (Lightning runs
    checkpoint callbacks last), and :class:`~framework.callbacks.AtomicModelCheckpoint` refuses non-finite weights
    too, so no checkpoint on disk ever holds them: the last one is the last good state. Works for automatic and
    manual optimization (``manual_backward`` calls the same hooks; a manual step's returned loss is also checked).
    Every rank stops together (a rank that stopped alone would leave the others waiting in a collective).
    """

    def __init__(self) -> None:
        self._batch: Any = None

    def on_train_batch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any, batch_idx: int):
        self._batch = batch

    def on_before_backward(self, trainer: pl.Trainer, pl_module: pl.LightningModule, loss: torch.Tensor) -> None:
        self._check_loss(trainer, pl_module, loss)

    def on_before_optimizer_step(self, trainer: pl.Trainer, pl_module: pl.LightningModule, optimizer: Any) -> None:
        bad = first_non_finite((name, p.grad) for name, p in pl_module.named_parameters())
        if trainer.strategy.reduce_boolean_decision(bad is not None, all=False):
            self._stop(
                trainer,
                pl_module,
                f"the gradient of {bad or 'a parameter (on another rank)'} is not finite although the loss is",
                "training stopped before the optimizer step, so the weights are unchanged",
            )

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        if not pl_module.automatic_optimization:  # automatic: already checked before backward
            loss = outputs.get("loss") if isinstance(outputs, dict) else outputs
            if isinstance(loss, torch.Tensor):
                self._check_loss(trainer, pl_module, loss)
        bad = first_non_finite(pl_module.named_parameters())
        if trainer.strategy.reduce_boolean_decision(bad is not None, all=False):
            self._stop(
                trainer,
                pl_module,
                f"the optimizer step made {bad or 'a parameter (on another rank)'} non-finite (the update went "
                "non-finite with a finite loss and finite gradients)",
                "no checkpoint was written after that step",
            )
        self._batch = None

    def _check_loss(self, trainer: pl.Trainer, pl_module: pl.LightningModule, loss: torch.Tensor) -> None:
        bad = not bool(torch.isfinite(loss.detach()).all())
        if trainer.strategy.reduce_boolean_decision(bad, all=False):
            value = loss.detach().flatten()[0].item() if bad else "finite here"
            what = f"the training loss is not finite ({value}) on finite input data"
            self._stop(
                trainer, pl_module, what, "training stopped before the optimizer step, so the weights are unchanged"
            )

    def _stop(self, trainer: pl.Trainer, pl_module: pl.LightningModule, what: str, state: str) -> None:
        """Raise, blaming the input batch instead when it holds NaN/inf (whatever went non-finite downstream)."""
        data = first_non_finite(_batch_tensors(self._batch)) if self._batch is not None else None
        if data:
            what = f"the input data went non-finite ({data} holds NaN/inf)"
        ckpt = trainer.checkpoint_callback
        last = (getattr(ckpt, "last_model_path", "") or getattr(ckpt, "best_model_path", "")) if ckpt else ""
        where = f"The last good checkpoint is {last}." if last else "No checkpoint had been written yet."
        # Lightning refuses gradient_clip_val under manual optimization, so only suggest it where it works
        clip = "clip gradients (--trainer.gradient_clip_val 1.0), " if pl_module.automatic_optimization else ""
        fix = (
            "remove or repair the non-finite values in the data"
            if data
            else f"lower the learning rate (--model.init_args.optimizer.init_args.lr), {clip}or check the data"
        )
        raise NonFiniteError(
            f"at epoch {trainer.current_epoch}, global step {trainer.global_step} {what}; {state}. {where} "
            f"Fix: {fix}, then start a new run (a resume continues with the run's own hyperparameters)."
        )

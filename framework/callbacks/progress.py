"""Console output for runs whose stdout is a log file: a progress bar of plain lines and a compact model summary.

An animated bar (Rich or tqdm) written to a file or a SLURM log shows up only once it has finished (or as thousands
of carriage-return frames), so the CLI uses :class:`LineProgressBar` when stdout is not a terminal: one line per
training epoch, or every ``every_n_steps`` optimizer steps, and one line per evaluation. :class:`PlainModelSummary`
prints the model's layers as an aligned table without the FLOPs column and line, which Lightning fills with 0
unless the model defines ``example_input_array``.
"""

from __future__ import annotations

import sys
import time
from typing import Any

from lightning.pytorch import LightningModule, Trainer
from lightning.pytorch.callbacks import ModelSummary
from lightning.pytorch.callbacks.progress import ProgressBar
from lightning.pytorch.utilities.model_summary.model_summary import get_formatted_model_size, get_human_readable_count


def format_value(value: Any) -> str:
    """A metric as the progress line shows it: floats (and one-element tensors) with 4 significant digits."""
    if hasattr(value, "item") and getattr(value, "numel", lambda: 0)() == 1:
        value = value.item()
    return f"{value:.4g}" if isinstance(value, float) else str(value)


class LineProgressBar(ProgressBar):
    """Progress as plain lines on stdout, one per training epoch (or every ``every_n_steps`` optimizer steps) and one
    at the end of each validate/test/predict run.

    ``epoch 3/25  step 96  2.1s  train/loss 3.726  val/loss 4.224``: the metrics are those logged with
    ``prog_bar=True`` (the ones a Rich bar shows). The CLI picks this bar when stdout is not a terminal; pass it
    yourself to choose the interval: ``--trainer.callbacks+=LineProgressBar
    --trainer.callbacks.every_n_steps=100``.

    Args:
        every_n_steps: print a line every this many optimizer steps instead of once per epoch (None: per epoch).
    """

    def __init__(self, every_n_steps: int | None = None) -> None:
        super().__init__()
        if every_n_steps is not None and every_n_steps < 1:
            raise ValueError(f"LineProgressBar: every_n_steps must be a positive integer or None, got {every_n_steps}.")
        self.every_n_steps = every_n_steps
        self._enabled = True
        self._start = time.monotonic()
        self._last_step = -1

    def disable(self) -> None:
        """Print nothing (Lightning calls this on every rank but rank 0)."""
        self._enabled = False

    def enable(self) -> None:
        """Print again."""
        self._enabled = True

    def _emit(self, head: str, trainer: Trainer, pl_module: LightningModule) -> None:
        if not self._enabled:
            return
        metrics = {k: v for k, v in self.get_metrics(trainer, pl_module).items() if k != "v_num"}
        values = (f"{key} {format_value(value)}" for key, value in metrics.items())
        print("  ".join([head, f"{time.monotonic() - self._start:.1f}s", *values]), file=sys.stdout, flush=True)

    def _epochs(self, trainer: Trainer) -> str:
        total = trainer.max_epochs
        return f"epoch {trainer.current_epoch + 1}" + (f"/{total}" if total is not None and total > 0 else "")

    def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._start = time.monotonic()

    def on_train_batch_end(
        self, trainer: Trainer, pl_module: LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        step = trainer.global_step
        if self.every_n_steps and step % self.every_n_steps == 0 and step != self._last_step and step > 0:
            self._last_step = step
            self._emit(f"{self._epochs(trainer)}  step {step}", trainer, pl_module)

    def on_train_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if not self.every_n_steps:
            self._emit(f"{self._epochs(trainer)}  step {trainer.global_step}", trainer, pl_module)

    def _evaluation(self, name: str, batches: list[int | float], trainer: Trainer, pl_module: LightningModule) -> None:
        self._emit(f"{name}: {int(sum(batches))} batches", trainer, pl_module)

    def on_validation_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if trainer.state.fn == "validate":
            self._start = time.monotonic()

    def on_validation_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if trainer.state.fn == "validate":  # during fit, the epoch line carries the validation metrics
            self._evaluation("validate", trainer.num_val_batches, trainer, pl_module)

    def on_test_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._start = time.monotonic()

    def on_test_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._evaluation("test", trainer.num_test_batches, trainer, pl_module)

    def on_predict_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._start = time.monotonic()

    def on_predict_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._evaluation("predict", trainer.num_predict_batches, trainer, pl_module)


class PlainModelSummary(ModelSummary):
    """Lightning's model summary as a plain aligned table and one line of totals; the FLOPs column and total are
    left out when they are 0 (Lightning counts FLOPs only for models with an ``example_input_array``)."""

    @staticmethod
    def summarize(
        summary_data: list[tuple[str, list[str]]],
        total_parameters: int,
        trainable_parameters: int,
        model_size: float,
        total_training_modes: dict[str, int],
        total_flops: int = 0,
        **summarize_kwargs: Any,
    ) -> None:
        """Print the layer table and the totals to stdout (Lightning calls this on rank 0 only)."""
        columns = [(name, values) for name, values in summary_data if not (name == "FLOPs" and not total_flops)]
        widths = [max(len(name), *(len(str(v)) for v in values)) for name, values in columns]
        rows = [[name for name, _ in columns], *zip(*(values for _, values in columns), strict=True)]
        lines = [" | ".join(f"{str(cell):<{w}}" for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows]
        totals = (
            f"params: {get_human_readable_count(trainable_parameters).strip()} trainable, "
            f"{get_human_readable_count(total_parameters - trainable_parameters).strip()} non-trainable, "
            f"{get_formatted_model_size(model_size)} MB; modules: {total_training_modes.get('train', 0)} in train "
            f"mode, {total_training_modes.get('eval', 0)} in eval mode"
        )
        if total_flops:
            totals += f"; FLOPs: {get_human_readable_count(total_flops)}"
        print("\n".join([*lines, totals]), file=sys.stdout, flush=True)

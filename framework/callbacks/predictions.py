"""Write what ``framework predict`` returns to the run directory."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import BasePredictionWriter


class PredictionWriter(BasePredictionWriter):
    """Save the list of ``predict_step`` outputs to ``<run_dir>/predictions[_rank<r>].pt`` at the end of predict."""

    def __init__(self) -> None:
        super().__init__(write_interval="epoch")

    def write_on_epoch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, predictions: Any, batch_indices: Any
    ) -> None:
        suffix = f"_rank{trainer.global_rank}" if trainer.world_size > 1 else ""
        path = Path(trainer.default_root_dir) / f"predictions{suffix}.pt"
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save(predictions, path)

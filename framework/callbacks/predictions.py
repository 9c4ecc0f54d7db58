"""Write what ``framework predict`` returns to the run directory, with the id of every row.

Three files per process (``_rank<r>`` before the suffix under DDP):

* ``predictions.npz``: one named array per column, all with the same number of rows (one per predicted item);
  ``numpy.load(path)`` reads it, no framework needed. The id columns come first: ``index`` (the item's position in
  the predict split) unless the model names its rows itself (``participant`` and ``anchor_years`` for the
  gap_transformer models, ``node`` for graph_sparsify, ``task`` for meta_rl); then the model's outputs
  (``prediction`` unless the model splits them into named columns).
* ``predictions.csv``: the same table for pandas (``pandas.read_csv(path)``); a column with more than one value
  per row is spread over ``<name>_<i>`` (or ``<name>_<i>_<j>``...) columns in row-major order.
* ``predictions.pt``: the list of ``predict_step`` outputs as Lightning returns them (``torch.load``).

A model names its rows with ``prediction_columns(batch, prediction, index) -> dict[str, Tensor]`` (``index``: the
batch's positions in the predict split); without it the columns are ``index`` and ``prediction``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import numpy as np
import torch
from lightning.pytorch.callbacks import BasePredictionWriter

STEM = "predictions"


def default_columns(prediction: Any, index: torch.Tensor) -> dict[str, Any]:
    """The columns of a model without ``prediction_columns``: ``index`` and ``prediction``."""
    return {"index": index, "prediction": prediction}


def table(columns: dict[str, np.ndarray]) -> tuple[list[str], np.ndarray]:
    """The CSV header and rows of ``columns`` (arrays with one leading row axis): multi-value columns are spread
    over ``<name>_<i>[_<j>...]``."""
    names, blocks = [], []
    for name, array in columns.items():
        flat = array.reshape(len(array), -1)
        if array.ndim == 1:
            names.append(name)
        else:
            names.extend(f"{name}_{'_'.join(map(str, i))}" for i in np.ndindex(*array.shape[1:]))
        blocks.append(flat.astype(object))
    return names, np.concatenate(blocks, axis=1) if blocks else np.empty((0, 0), dtype=object)


class PredictionWriter(BasePredictionWriter):
    """Collect every predict batch's columns (see the module doc) and write ``predictions.npz``, ``.csv`` and
    ``.pt`` into the run directory at the end of predict."""

    def __init__(self) -> None:
        super().__init__(write_interval="batch_and_epoch")
        self._columns: list[dict[str, np.ndarray]] = []
        self._seen = 0

    def on_predict_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._columns, self._seen = [], 0

    def write_on_batch_end(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        prediction: Any,
        batch_indices: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int,
    ) -> None:
        rows = len(prediction) if isinstance(prediction, torch.Tensor) else 0
        if batch_indices is not None and len(batch_indices) > 0:
            index = torch.as_tensor(list(batch_indices), dtype=torch.long)
        else:  # no sampler to ask: the rows follow each other in this process
            index = torch.arange(self._seen, self._seen + rows)
        self._seen += len(index)
        hook = getattr(pl_module, "prediction_columns", None)
        columns = hook(batch, prediction, index) if callable(hook) else default_columns(prediction, index)
        arrays = {key: torch.as_tensor(value).detach().cpu().numpy() for key, value in columns.items()}
        lengths = {key: len(a) for key, a in arrays.items()}
        if len(set(lengths.values())) != 1:
            raise ValueError(f"{type(pl_module).__name__}.prediction_columns: columns of unequal length {lengths}")
        self._columns.append(arrays)

    def write_on_epoch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, predictions: Any, batch_indices: Any
    ) -> None:
        suffix = f"_rank{trainer.global_rank}" if trainer.world_size > 1 else ""
        stem = Path(trainer.default_root_dir) / f"{STEM}{suffix}"
        stem.parent.mkdir(parents=True, exist_ok=True)
        torch.save(predictions, stem.with_suffix(".pt"))
        if not self._columns:
            return
        columns = {key: np.concatenate([c[key] for c in self._columns]) for key in self._columns[0]}
        np.savez(stem.with_suffix(".npz"), **columns)
        names, rows = table(columns)
        with stem.with_suffix(".csv").open("w") as f:
            f.write(",".join(names) + "\n")
            for row in rows:
                f.write(",".join(map(str, row)) + "\n")

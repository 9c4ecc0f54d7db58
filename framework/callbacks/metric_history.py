"""Keep every validation's metrics in the run directory, so curves survive without any particular logger."""

from __future__ import annotations

import json
import math
from pathlib import Path

import lightning.pytorch as pl
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.trainer.states import TrainerFn

HISTORY_FILE = "metrics_history.jsonl"


class MetricHistory(Callback):
    """After each validation of a fit (not the sanity check, not a ``validate`` command), append
    ``{"step", "epoch", <train/ and val/ metrics>}`` as one JSON line to ``<run_dir>/metrics_history.jsonl`` on rank
    zero. A resumed fit appends; readers keep the last line per step (:func:`read_history`)."""

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.sanity_checking or not trainer.is_global_zero or trainer.fast_dev_run:
            return
        if trainer.state.fn != TrainerFn.FITTING:  # a `validate` command's metrics are no point of the fit's curve
            return
        row: dict[str, float | int] = {"step": trainer.global_step, "epoch": trainer.current_epoch}
        for key, value in trainer.callback_metrics.items():
            if key.startswith(("train/", "val/")) and getattr(value, "numel", lambda: 1)() == 1:
                row[key] = float(value)
        path = Path(trainer.default_root_dir) / HISTORY_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a") as fh:
            fh.write(json.dumps(row, allow_nan=True) + "\n")


def read_history(run_dir: str | Path, key: str) -> list[tuple[int, float]]:
    """``[(step, value)]`` of ``key`` in a run's history, one value per step (the last written), finite only."""
    path = Path(run_dir) / HISTORY_FILE
    by_step: dict[int, float] = {}
    if path.is_file():
        for line in path.read_text().splitlines():
            row = json.loads(line)
            if key in row and math.isfinite(row[key]):
                by_step[int(row["step"])] = float(row[key])
    return sorted(by_step.items())

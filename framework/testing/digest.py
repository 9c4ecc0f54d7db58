"""A callback that writes each rank's final parameters, so tests can check DDP ranks agree bit for bit."""

from __future__ import annotations

from pathlib import Path

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import Callback


class ParameterDump(Callback):
    """At the end of fit, save ``{name: tensor}`` of every parameter to ``<run_dir>/params_rank<r>.pt``."""

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        params = {name: p.detach().cpu().clone() for name, p in pl_module.named_parameters()}
        path = Path(trainer.default_root_dir) / f"params_rank{trainer.global_rank}.pt"
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save(params, path)

"""A callback that writes each rank's final parameters, so tests can check DDP or FSDP ranks agree bit for bit."""

from __future__ import annotations

from pathlib import Path

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import Callback
from torch.distributed.tensor import DTensor


class ParameterDump(Callback):
    """At the end of fit, save ``{name: tensor}`` of every parameter to ``<run_dir>/params_rank<r>.pt`` (sharded
    DTensor parameters gathered whole, a collective every rank joins)."""

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        params = {name: _whole(p.detach()).cpu().clone() for name, p in pl_module.named_parameters()}
        path = Path(trainer.default_root_dir) / f"params_rank{trainer.global_rank}.pt"
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save(params, path)


def _whole(tensor: torch.Tensor) -> torch.Tensor:
    return tensor.full_tensor() if isinstance(tensor, DTensor) else tensor

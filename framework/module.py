"""The base LightningModule of every plugin: optimizer injection from YAML through named parameter groups."""

from __future__ import annotations

from typing import Any

import lightning.pytorch as pl
import torch
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable

from framework.optim.param_groups import named_param_groups


def default_optimizer(params: Any) -> torch.optim.Optimizer:
    """AdamW(lr=1e-3), the optimizer a module uses when the config names none."""
    return torch.optim.AdamW(params, lr=1e-3)


class FrameworkModule(pl.LightningModule):
    """A LightningModule whose optimizer and LR scheduler are injected by the CLI.

    Subclasses call ``super().__init__(optimizer=..., lr_scheduler=...)`` and implement the steps. The optimizer is
    any callable ``params -> Optimizer`` (in YAML: ``optimizer: {class_path: torch.optim.SGD, init_args: {lr: 0.1}}``)
    and receives :func:`framework.optim.named_param_groups` of this module. Override :meth:`param_groups` to change
    the decay or routing rules.
    """

    def __init__(
        self, optimizer: OptimizerCallable = default_optimizer, lr_scheduler: LRSchedulerCallable | None = None
    ) -> None:
        super().__init__()
        self.optimizer_factory = optimizer
        self.lr_scheduler_factory = lr_scheduler

    def param_groups(self) -> list[dict[str, Any]]:
        """Parameter groups handed to the optimizer (decay / no-decay by default)."""
        return named_param_groups(self)

    def configure_optimizers(self) -> Any:
        optimizer = self.optimizer_factory(self.param_groups())
        if self.lr_scheduler_factory is None:
            return optimizer
        scheduler = self.lr_scheduler_factory(optimizer)
        config: dict[str, Any] = {"scheduler": scheduler, "interval": "step"}
        if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
            config.update(interval="epoch", monitor=getattr(scheduler, "monitor", "val/loss"))
        return {"optimizer": optimizer, "lr_scheduler": config}

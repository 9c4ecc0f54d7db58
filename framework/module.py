"""The base LightningModule of every plugin: optimizer injection from YAML through named parameter groups,
scheduler stepping for manual optimization, and gathering held-out outputs across ranks."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal, TypeVar

import lightning.pytorch as pl
import torch
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable
from lightning.pytorch.utilities.exceptions import MisconfigurationException

from framework.contract import check_data_contract
from framework.optim.param_groups import build_optimizer, check_group_values_representable, named_param_groups
from framework.optim.schedules import CosineAnnealingToEnd

T = TypeVar("T")


def plateau_monitor(scheduler: torch.optim.lr_scheduler.ReduceLROnPlateau) -> str:
    """The metric a ReduceLROnPlateau follows: its ``monitor`` attribute when set, else ``val/loss``."""
    return getattr(scheduler, "monitor", "val/loss")


def default_optimizer(params: Any) -> torch.optim.Optimizer:
    """AdamW(lr=1e-3), the optimizer a module uses when the config names none."""
    return torch.optim.AdamW(params, lr=1e-3)


class FrameworkModule(pl.LightningModule):
    """A LightningModule whose optimizer and LR scheduler are injected by the CLI.

    Subclasses call ``super().__init__(optimizer=..., lr_scheduler=...)`` and implement the steps. The optimizer is
    any callable ``params -> Optimizer`` (in YAML: ``optimizer: {class_path: torch.optim.SGD, init_args: {lr: 0.1}}``)
    and receives :func:`framework.optim.named_param_groups` of this module. Override :meth:`param_groups` to change
    the decay or routing rules.

    Modules with ``automatic_optimization = False`` call :meth:`step_lr_schedulers` after each ``optimizer.step()``;
    epoch-interval schedulers (ReduceLROnPlateau) are stepped here at the end of each training epoch.
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
        optimizer = build_optimizer(self.optimizer_factory, self.param_groups())
        check_group_values_representable(optimizer)
        if self.lr_scheduler_factory is None:
            return optimizer
        scheduler = self.lr_scheduler_factory(optimizer)
        if isinstance(scheduler, CosineAnnealingToEnd):
            scheduler.set_total_steps(self.trainer.estimated_stepping_batches)
        config: dict[str, Any] = {"scheduler": scheduler, "interval": "step"}
        if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
            config["interval"] = "epoch"
            if self.automatic_optimization:  # under manual optimization Lightning drops the key; see below
                config["monitor"] = plateau_monitor(scheduler)
        return {"optimizer": optimizer, "lr_scheduler": config}

    def step_lr_schedulers(self, interval: Literal["step", "epoch"] = "step") -> None:
        """Step the configured LR schedulers whose ``interval`` is ``interval``, every ``frequency`` steps or epochs,
        as Lightning does under automatic optimization; ReduceLROnPlateau receives its :func:`plateau_monitor`
        metric.

        Raises:
            MisconfigurationException: a ReduceLROnPlateau monitor that was never logged (the message lists what was).
        """
        count = self.trainer.global_step if interval == "step" else self.trainer.current_epoch + 1
        for config in self.trainer.lr_scheduler_configs:
            if config.interval != interval or count % config.frequency:
                continue
            if not isinstance(config.scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
                config.scheduler.step()
                continue
            monitor = plateau_monitor(config.scheduler)
            metric = self.trainer.callback_metrics.get(monitor)
            if metric is None:
                raise MisconfigurationException(
                    f"ReduceLROnPlateau monitors {monitor!r}, which was not logged; logged metrics: "
                    f"{sorted(self.trainer.callback_metrics)}. Set the scheduler's monitor to one of them."
                )
            config.scheduler.step(metric)

    def on_train_epoch_end(self) -> None:
        if not self.automatic_optimization:
            self.step_lr_schedulers("epoch")

    def gather_rows(self, rows: torch.Tensor | Sequence[torch.Tensor]) -> torch.Tensor:
        """This rank's rows ``(n, *shape)`` (a tensor, or a list of batches to concatenate) followed by every other
        rank's, rank-major: ``(world_size * n, *shape)``; the tensor itself on one process. Every rank must hold
        the same ``n`` (``all_gather``), as the distributed sampler guarantees."""
        tensor = rows if isinstance(rows, torch.Tensor) else torch.cat(list(rows))
        if self._trainer is None or self.trainer.world_size == 1:
            return tensor
        return self.all_gather(tensor).reshape(-1, *tensor.shape[1:])

    def data(self, contract: type[T]) -> T:
        """The trainer's datamodule, checked against ``contract`` (a Protocol of what this model reads from it);
        a mismatched pair raises :class:`~framework.contract.DataContractError` naming both classes."""
        datamodule = getattr(self._trainer, "datamodule", None) if self._trainer is not None else None
        return check_data_contract(self, datamodule, contract)

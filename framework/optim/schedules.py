"""Learning-rate schedules whose length is the run's, read from the trainer instead of hand-computed in YAML."""

from __future__ import annotations

import torch


class CosineAnnealingToEnd(torch.optim.lr_scheduler.CosineAnnealingLR):
    """Cosine annealing over the whole run: lr_t = eta_min + (lr_0 - eta_min) (1 + cos(pi t / T)) / 2, stepped every
    optimizer step, with T = ``trainer.estimated_stepping_batches`` (epochs x batches / accumulation, or max_steps).

    :class:`~framework.module.FrameworkModule` calls :meth:`set_total_steps` before the first step, so a config
    names only ``class_path: framework.optim.CosineAnnealingToEnd`` (and ``eta_min``) and stays right when epochs,
    batch sizes or dataset sizes change.
    """

    def __init__(self, optimizer: torch.optim.Optimizer, eta_min: float = 0.0) -> None:
        super().__init__(optimizer, T_max=1, eta_min=eta_min)

    def set_total_steps(self, total_steps: float) -> None:
        """Use ``total_steps`` as T (must be finite: the run needs max_epochs or max_steps)."""
        if not 0 < total_steps < float("inf"):
            raise ValueError(
                f"CosineAnnealingToEnd needs a finite run length, got {total_steps} optimizer steps; set "
                "trainer.max_epochs or trainer.max_steps."
            )
        self.T_max = int(total_steps)

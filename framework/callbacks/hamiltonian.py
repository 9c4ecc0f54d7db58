"""Log the Hamiltonian H = f + K of Muon's momentum during training (the regularized-Muon energy view)."""

from __future__ import annotations

from typing import Any

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import Callback

from framework.figures import figure
from framework.optim.orthogonalize import kinetic_energy


class HamiltonianMonitor(Callback):
    """Every ``every_n_steps`` training steps log ``energy/f`` (training loss), ``energy/K`` = sum over Muon
    parameters of K_eps(m) = sum_i (sqrt(s_i(m)^2 + eps^2) - eps) of their momentum buffers m (each 2-D block; eps
    = the group's ``reg_eps``, in the buffer's convention), and ``energy/H`` = f + K; at the end of training, the
    figure ``energy`` of the three curves.

    In continuous time H is non-increasing (derivation and check: docs/muon.md); discrete
    steps with noisy gradients only approximately dissipate it, so this is a monitor, not an assertion.
    """

    def __init__(self, every_n_steps: int = 10) -> None:
        self.every_n_steps = every_n_steps
        self.history: list[tuple[int, float, float]] = []

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        if trainer.global_step % self.every_n_steps:
            return
        loss = outputs.get("loss") if isinstance(outputs, dict) else outputs
        if not isinstance(loss, torch.Tensor):
            return
        kinetic = momentum_kinetic_energy(trainer.optimizers)
        if kinetic is None:
            return
        f = float(loss.detach())
        self.history.append((trainer.global_step, f, kinetic))
        pl_module.log_dict({"energy/f": f, "energy/K": kinetic, "energy/H": f + kinetic})

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not self.history:
            return
        steps, f, k = zip(*self.history, strict=True)
        with figure(trainer, "energy", figsize=(5, 3)) as (_, ax):
            ax.plot(steps, f, label="f (loss)")
            ax.plot(steps, k, label="K (momentum)")
            ax.plot(steps, [a + b for a, b in zip(f, k, strict=True)], label="H = f + K")
            ax.set(xlabel="step", ylabel="energy", title="Hamiltonian monitor")
            ax.legend()


def momentum_kinetic_energy(optimizers: list[torch.optim.Optimizer]) -> float | None:
    """Sum of K_eps over the momentum buffers of every ``use_muon`` group (None if there is no Muon optimizer)."""
    total, found = 0.0, False
    for opt in optimizers:
        views = getattr(opt, "views", None)
        if views is None:
            continue
        for group in opt.param_groups:
            if not group.get("use_muon"):
                continue
            for p in group["params"]:
                found = True
                blocks = views[p].blocks(opt.state[p]["momentum_buffer"])
                total += sum(kinetic_energy(b, group["reg_eps"]).item() for b in blocks)
    return total if found else None

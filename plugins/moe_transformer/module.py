"""The LightningModule: next-byte cross-entropy, bits per byte, optimizer injected from YAML (AdamW or Muon)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable

from framework.module import FrameworkModule, default_optimizer
from framework_plugins.moe_transformer.model import MoETransformer


class MoELanguageModel(FrameworkModule):
    """Byte-level MoE transformer LM. Logs ``train/loss`` (nats per byte), ``val/loss``, ``val/bpb`` (bits per
    byte), ``test/loss``, ``test/bpb``. ``predict`` returns the argmax next byte at every position.

    Args:
        block_size, d_model, n_layers, n_heads, d_ff, n_experts, top_k: see ``MoETransformer`` (top_k null = dense).
    """

    def __init__(
        self,
        block_size: int = 64,
        d_model: int = 64,
        n_layers: int = 2,
        n_heads: int = 4,
        d_ff: int = 128,
        n_experts: int = 4,
        top_k: int | None = None,
        optimizer: OptimizerCallable = default_optimizer,
        lr_scheduler: LRSchedulerCallable | None = None,
    ) -> None:
        super().__init__(optimizer=optimizer, lr_scheduler=lr_scheduler)
        self.save_hyperparameters(ignore=["optimizer", "lr_scheduler"])
        self.model = MoETransformer(block_size, d_model, n_layers, n_heads, d_ff, n_experts, top_k)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.model(tokens)

    def _loss(self, batch: list[torch.Tensor]) -> torch.Tensor:
        x, y = batch
        return F.cross_entropy(self.model(x).flatten(0, 1), y.flatten())

    def training_step(self, batch: list[torch.Tensor], batch_idx: int) -> torch.Tensor:
        loss = self._loss(batch)
        self.log("train/loss", loss, prog_bar=True)
        return loss

    def validation_step(self, batch: list[torch.Tensor], batch_idx: int) -> None:
        loss = self._loss(batch)
        self.log("val/loss", loss, prog_bar=True, sync_dist=True)
        self.log("val/bpb", loss / math.log(2), sync_dist=True)

    def test_step(self, batch: list[torch.Tensor], batch_idx: int) -> None:
        loss = self._loss(batch)
        self.log("test/loss", loss, sync_dist=True)
        self.log("test/bpb", loss / math.log(2), sync_dist=True)

    def predict_step(self, batch: list[torch.Tensor], batch_idx: int) -> torch.Tensor:
        return self.model(batch[0]).argmax(-1).to(torch.uint8)

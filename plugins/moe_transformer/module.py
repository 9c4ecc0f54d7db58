"""The LightningModule: next-byte cross-entropy, bits per byte, optimizer injected from YAML (AdamW or Muon)."""

from __future__ import annotations

import math
from functools import partial

import torch
import torch.nn.functional as F
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable
from torch import nn
from torch.distributed.fsdp import fully_shard
from torch.distributed.tensor import DTensor
from torch.utils.hooks import RemovableHandle

from framework.figures import figure
from framework.module import FrameworkModule, default_optimizer
from framework_plugins.moe_transformer.model import MoETransformer


class MoELanguageModel(FrameworkModule):
    """Byte-level MoE transformer LM. Logs ``train/loss`` (nats per byte), ``val/loss``, ``val/bpb`` (bits per
    byte), ``test/loss``, ``test/bpb``. ``predict`` returns the argmax next byte at every position. The figure
    ``expert_load`` (each layer's mean gate per expert over the split's tokens in this process, a colour map with its
    colour bar) at the end of fit (the last validation's) and of test.

    Args:
        block_size: context length in bytes, the longest input the model accepts (one learned position embedding
            per position); at least the data's ``block_size``.
        d_model: width of the byte embeddings and of the residual stream (divisible by ``n_heads``).
        n_layers: number of pre-norm transformer blocks (causal self-attention + MoE MLP each).
        n_heads: attention heads per block; each head has width ``d_model / n_heads``.
        d_ff: hidden width of each expert's GELU MLP (d_model -> d_ff -> d_model).
        n_experts: experts per MoE MLP (>= 1); every expert is evaluated on every token, so cost grows linearly.
        top_k: keep only the k largest router gates per token, renormalised (1 <= top_k <= n_experts); null =
            dense softmax gating over all experts.
        optimizer: callable params -> torch.optim.Optimizer, given this module's named parameter groups (YAML:
            ``class_path`` such as torch.optim.AdamW or framework.optim.Muon, with ``init_args``); default
            AdamW(lr=1e-3).
        lr_scheduler: callable optimizer -> LR scheduler, stepped after every optimizer step (YAML: ``class_path``
            with ``init_args``); null = constant learning rate.
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
        self._gate_sum = torch.zeros(n_layers, n_experts)
        self._gate_hooks: list[RemovableHandle] = []
        self._val_load: torch.Tensor | None = None

    def configure_model(self) -> None:
        """Under Lightning's ``ModelParallelStrategy``: FSDP2, every block and then the whole model ``fully_shard``-ed
        over the data-parallel mesh (parameters become row-sharded DTensors; ``framework.optim.Muon`` gathers each
        matrix whole on an owner rank). A no-op under every other strategy, and once the model is sharded."""
        if self.device_mesh is None or isinstance(self.model.embed.weight, DTensor):
            return
        mesh = self.device_mesh["data_parallel"]
        for block in self.model.blocks:
            fully_shard(block, mesh=mesh)
        fully_shard(self.model, mesh=mesh)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.model(tokens)

    def _loss(self, batch: list[torch.Tensor]) -> torch.Tensor:
        x, y = batch
        return F.cross_entropy(self.model(x).flatten(0, 1), y.flatten())

    def training_step(self, batch: list[torch.Tensor], batch_idx: int) -> torch.Tensor:
        loss = self._loss(batch)
        self.log("train/loss", loss, prog_bar=True)
        return loss

    def _track_gates(self) -> None:
        """Sum every MoE layer's gates over the tokens of the coming evaluation (forward hooks until
        :meth:`_expert_load`)."""
        self._gate_sum = torch.zeros(len(self.model.blocks), self.hparams.n_experts, device=self.device)
        self._gate_hooks = [
            block.moe.register_forward_hook(partial(self._add_gates, layer))
            for layer, block in enumerate(self.model.blocks)
        ]

    def _add_gates(self, layer: int, module: nn.Module, args: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
        """Forward hook of MoE layer ``layer``: add its gates (tokens, E) summed over tokens."""
        self._gate_sum[layer] += module.gates(args[0]).detach().flatten(0, -2).sum(0).float()

    def _expert_load(self) -> torch.Tensor:
        """Remove the hooks; the mean gate per (layer, expert) of the evaluation, rows summing to 1, on the CPU."""
        for hook in self._gate_hooks:
            hook.remove()
        self._gate_hooks = []
        return (self._gate_sum / self._gate_sum.sum(1, keepdim=True).clamp_min(1e-12)).cpu()

    def _figure(self, load: torch.Tensor, split: str) -> None:
        """``expert_load``: the (layers, experts) mean gates of ``split`` as a colour map with its colour bar."""
        size = (1.2 + 0.5 * load.shape[1], 1.2 + 0.5 * load.shape[0])
        with figure(self.trainer, "expert_load", figsize=size) as (fig, ax):
            image = ax.imshow(load.numpy(), cmap="viridis", vmin=0, aspect="auto")
            fig.colorbar(image, ax=ax, label="mean gate")
            ax.set(xlabel="expert", ylabel="layer", title=f"expert load ({split})")
            ax.set_xticks(range(load.shape[1]))
            ax.set_yticks(range(load.shape[0]))

    def on_validation_epoch_start(self) -> None:
        self._track_gates()

    def on_validation_epoch_end(self) -> None:
        self._val_load = self._expert_load()

    def on_fit_end(self) -> None:
        if self._val_load is not None:
            self._figure(self._val_load, "validation")

    def on_test_epoch_start(self) -> None:
        self._track_gates()

    def on_test_epoch_end(self) -> None:
        self._figure(self._expert_load(), "test")

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

"""Thin LightningModules: one base (loss, metrics, figure) and one subclass per compared model.

Every model predicts y_hat = y_ref + f(history) when ``residual`` (f trained on the residual y - y_ref, with y_ref
the LME prediction of the DataModule), else y_hat = f(history). The loss is MSE(y_hat, y), which for a residual
model equals MSE(f, y - y_ref).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable
from torch import nn
from torchmetrics import MeanAbsoluteError, MeanSquaredError, MetricCollection, PearsonCorrCoef

from framework.figures import figure
from framework.module import FrameworkModule, default_optimizer
from framework.optim.param_groups import named_param_groups
from framework_plugins.gap_transformer.datamodule import Cohort, CohortBatch
from framework_plugins.gap_transformer.features import feature_names, history_features
from framework_plugins.gap_transformer.grud import GRUDNet
from framework_plugins.gap_transformer.networks import GapAwareTransformerNet, STraTSNet
from framework_plugins.gap_transformer.schema import FEATURES, STATIC

N_VARIABLES, N_STATIC = len(FEATURES), len(STATIC)
PREDICTIONS_FILE = "test_predictions.csv"
LEADING = ("FDG", "AV45", "ABETA", "TAU", "PTAU")  # the biomarkers whose age is written per test anchor
GAP_PENALTY_ROUTE = "gap_penalty"  # the parameter-group route of the attention's rho_h


def gap_penalty_route(name: str, param: nn.Parameter) -> str:
    """``gap_penalty`` for the attention's per-head rho (the parameter named ``...rho``), ``other`` otherwise."""
    return GAP_PENALTY_ROUTE if name.rsplit(".", 1)[-1] == "rho" else "other"


def scale_route_lr(
    factory: Callable[[list[dict[str, Any]]], torch.optim.Optimizer],
    route: str,
    scale: float,
    groups: list[dict[str, Any]],
) -> torch.optim.Optimizer:
    """``factory(groups)`` with lr -> scale * lr in every group whose ``route`` is ``route``; applied before a
    scheduler is built on the optimizer, so the scheduler's base learning rates include the scale."""
    optimizer = factory(groups)
    for group in optimizer.param_groups:
        if group.get("route") == route:
            group["lr"] = group["lr"] * scale
    return optimizer


class AnchoredCohort(Protocol):
    """What ``predict`` reads from the datamodule to name its rows: the prepared cohort (anchors and splits)."""

    cohort: Cohort


def _metrics(prefix: str) -> MetricCollection:
    return MetricCollection(
        {"mse": MeanSquaredError(), "mae": MeanAbsoluteError(), "pearson": PearsonCorrCoef()}, prefix=prefix
    )


class CDRSBForecaster(FrameworkModule):
    """Base: ``self.net`` maps (values, mask, times, visit_valid, static) -> (B,). Logs ``train/loss``,
    ``val/{mse,mae,pearson}``, ``test/{mse,mae,pearson}``, the LME's ``test/lme_{mse,mae,pearson}``,
    ``test/mse_reduction_vs_lme`` = (MSE_LME - MSE) / MSE_LME and ``test/pearson_gain_vs_lme`` = (r - r_LME) / |r_LME|
    (all accumulated over the whole split), the learned gap penalties ``test/gap_slope_l<layer>h<head>`` of a
    network that has them, and the figure ``predicted_vs_observed`` at the end of fit (validation split, from the
    last validation) and of test. The test also writes ``test_predictions.csv`` into the run directory (one row per
    test anchor: participant, anchor_years, observed, prediction, reference, gap = years since the previous visit,
    biomarker_age = years since the latest leading biomarker (FDG, AV45, CSF)). ``predict`` rows carry the
    participant (RID) and anchor time."""

    net: nn.Module

    def __init__(self, residual: bool, optimizer: OptimizerCallable, lr_scheduler: LRSchedulerCallable | None) -> None:
        super().__init__(optimizer=optimizer, lr_scheduler=lr_scheduler)
        self.residual = residual
        self.val_metrics, self.test_metrics, self.lme_metrics = (
            _metrics("val/"),
            _metrics("test/"),
            _metrics("test/lme_"),
        )
        self._test_points: list[torch.Tensor] = []
        self._val_points: list[torch.Tensor] = []

    def forward(self, batch: CohortBatch) -> torch.Tensor:
        """y_hat (B,): ``net`` of the history, plus the LME reference ``y_ref`` when ``residual``."""
        out = self.net(batch.values, batch.mask, batch.times, batch.visit_valid, batch.static)
        return batch.y_ref + out if self.residual else out

    def training_step(self, batch: CohortBatch, batch_idx: int) -> torch.Tensor:
        loss = F.mse_loss(self(batch), batch.y)
        self.log("train/loss", loss, prog_bar=True)
        return loss

    def on_validation_epoch_start(self) -> None:
        self._val_points = []

    def validation_step(self, batch: CohortBatch, batch_idx: int) -> None:
        pred = self(batch)
        self.val_metrics.update(pred, batch.y)
        self._val_points.append(torch.stack([batch.y, pred, batch.y_ref], 1).detach().cpu())

    def on_validation_epoch_end(self) -> None:
        self.log_dict(self.val_metrics)  # the Metric objects: Lightning logs their synced values and resets them

    def on_fit_end(self) -> None:
        if self._val_points:
            self._figure(torch.cat(self._val_points), "validation")

    def on_test_epoch_start(self) -> None:
        self._test_points = []

    def test_step(self, batch: CohortBatch, batch_idx: int) -> None:
        pred = self(batch)
        self.test_metrics.update(pred, batch.y)
        self.lme_metrics.update(batch.y_ref, batch.y)
        summary = history_features(batch.values, batch.mask, batch.times, batch.visit_valid, batch.static)
        names = feature_names()
        ages = summary[:, [names.index(f"age_{f}") for f in LEADING]].amin(1)
        gap = summary[:, names.index("gap")]
        columns = [batch.y, pred, batch.y_ref, gap.to(pred.dtype), ages.to(pred.dtype)]
        self._test_points.append(torch.stack(columns, 1).detach().cpu())

    def on_test_epoch_end(self) -> None:
        model, lme = self.test_metrics.compute(), self.lme_metrics.compute()  # cached: Lightning logs the same
        self.log_dict(self.test_metrics)  # the Metric objects: Lightning logs their synced values and resets them
        self.log_dict(self.lme_metrics)
        self.log("test/mse_reduction_vs_lme", (lme["test/lme_mse"] - model["test/mse"]) / lme["test/lme_mse"])
        gain = (model["test/pearson"] - lme["test/lme_pearson"]) / lme["test/lme_pearson"].abs()
        self.log("test/pearson_gain_vs_lme", gain)
        slopes = getattr(self.net, "slopes", lambda: None)()
        for (layer, head), value in np.ndenumerate(slopes.detach().cpu().numpy() if slopes is not None else []):
            self.log(f"test/gap_slope_l{layer}h{head}", float(value))
        points = torch.cat(self._test_points)
        self._figure(points, "test")
        self._write_predictions(points)

    def _write_predictions(self, points: torch.Tensor) -> None:
        """``test_predictions.csv`` in the run directory (class docstring); rows in test-split order."""
        if self.trainer.global_rank != 0 or getattr(self._trainer, "datamodule", None) is None:
            return
        cohort = self.data(AnchoredCohort).cohort
        rows = cohort.index["test"]
        if len(rows) != len(points):  # a limited test (limit_test_batches) covers part of the split
            rows = rows[: len(points)]
        table = pd.DataFrame(
            points.numpy(), columns=["observed", "prediction", "reference", "gap", "biomarker_age"]
        ).assign(participant=cohort.anchors.rid[rows], anchor_years=cohort.anchors.years[rows])
        table.to_csv(Path(self.trainer.default_root_dir) / PREDICTIONS_FILE, index=False, float_format="%.5g")

    def predict_step(self, batch: CohortBatch, batch_idx: int) -> torch.Tensor:
        return self(batch)

    def prediction_columns(
        self, batch: CohortBatch, prediction: torch.Tensor, index: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        """The columns of :class:`~framework.callbacks.PredictionWriter`'s file for one batch of the predict split
        (the test split, rows ``index``): ``participant`` (RID), ``anchor_years`` (anchor time in years since the
        participant's baseline), ``observed`` (y), ``lme`` (y_ref) and ``prediction``."""
        cohort = self.data(AnchoredCohort).cohort
        rows = cohort.index["test"][index.cpu().numpy()]
        return {
            "participant": torch.as_tensor(cohort.anchors.rid[rows]),
            "anchor_years": torch.as_tensor(cohort.anchors.years[rows]),
            "observed": batch.y,
            "lme": batch.y_ref,
            "prediction": prediction,
        }

    def _figure(self, points: torch.Tensor, split: str) -> None:
        """Predicted against observed change, (n, 3) rows (y, prediction, y_ref) of ``split``."""
        with figure(self.trainer, "predicted_vs_observed", figsize=(4, 4)) as (_, ax):
            ax.scatter(points[:, 0], points[:, 2], s=6, alpha=0.4, label="LME")
            ax.scatter(points[:, 0], points[:, 1], s=6, alpha=0.4, label=type(self).__name__)
            lo, hi = float(points.min()), float(points.max())
            ax.plot([lo, hi], [lo, hi], "k--", lw=0.8)
            ax.set(xlabel="observed 24-month CDR-SB change", ylabel="predicted", title=f"{split} split")
            ax.legend(markerscale=2)


class LMEReference(CDRSBForecaster):
    """The LME alone: y_hat = y_ref exactly. It holds one dummy parameter that enters the output multiplied by 0
    (zero gradient, so it never moves under SGD / Adam / AdamW) only so that the LME runs through the same
    trainer, optimizer, checkpoints and DDP as the other models (DDP refuses a module without trainable
    parameters). A trainable offset would not stay at 0: the GLS fixed effects of a random-intercept model do not
    make the mean row residual 0.

    Args:
        optimizer: callable params -> torch.optim.Optimizer; it only steps the dummy parameter, whose gradient is 0
            (the LME itself is fitted by the datamodule); default AdamW(lr=1e-3).
        lr_scheduler: callable optimizer -> LR scheduler, stepped after every optimizer step; no effect here; null =
            none.
    """

    def __init__(
        self, optimizer: OptimizerCallable = default_optimizer, lr_scheduler: LRSchedulerCallable | None = None
    ) -> None:
        super().__init__(True, optimizer, lr_scheduler)
        self.save_hyperparameters(ignore=["optimizer", "lr_scheduler"])
        self.unused = nn.Parameter(torch.zeros(()))

    def net(self, values: torch.Tensor, *rest: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return (0.0 * self.unused).expand(len(values))


class GapAwareTransformer(CDRSBForecaster):
    """The paper's residual gap-aware transformer (see ``GapAwareTransformerNet``); ``residual`` defaults to True.
    The ablations: ``residual: false`` (the transformer alone), ``gap_penalty: false`` (plain attention) and
    ``tokens: grid`` (one token per visit instead of triplets).

    Args:
        d_model: width of the triplet (value, variable, time) embeddings and of the residual stream (divisible by
            ``n_heads``).
        n_heads: attention heads per block, each with its own learned time-gap penalty slope (per year).
        n_layers: number of pre-norm transformer blocks.
        dropout: dropout probability on the residual branches and inside the feed-forward layers, in [0, 1).
        residual: learn y - y_ref (True, the paper's design) or y itself.
        gap_penalty: the learned per-head time-gap penalty in attention (False: plain attention).
        tokens: ``triplet`` (one token per observation, the paper) or ``grid`` (one token per visit).
        gap_penalty_lr_scale: the rho_h of the gap penalty form their own parameter groups (route
            ``gap_penalty``, no weight decay as before) whose learning rate is this factor times the optimizer's;
            1 trains exactly as one learning rate for all parameters (tests check it). > 0.
        optimizer: callable params -> torch.optim.Optimizer, given this module's named parameter groups (YAML:
            ``class_path`` with ``init_args``); default AdamW(lr=1e-3).
        lr_scheduler: callable optimizer -> LR scheduler, stepped after every optimizer step (YAML: ``class_path``
            with ``init_args``); null = constant learning rate.
    """

    def __init__(
        self,
        d_model: int = 32,
        n_heads: int = 4,
        n_layers: int = 2,
        dropout: float = 0.1,
        residual: bool = True,
        gap_penalty: bool = True,
        tokens: str = "triplet",
        gap_penalty_lr_scale: float = 1.0,
        optimizer: OptimizerCallable = default_optimizer,
        lr_scheduler: LRSchedulerCallable | None = None,
    ) -> None:
        if not gap_penalty_lr_scale > 0:
            raise ValueError(
                f"model.init_args.gap_penalty_lr_scale={gap_penalty_lr_scale!r} must be > 0 (1 = the optimizer's lr)."
            )
        super().__init__(
            residual, partial(scale_route_lr, optimizer, GAP_PENALTY_ROUTE, gap_penalty_lr_scale), lr_scheduler
        )
        self.save_hyperparameters(ignore=["optimizer", "lr_scheduler"])
        self.net = GapAwareTransformerNet(
            N_VARIABLES,
            N_STATIC,
            d_model,
            n_heads,
            n_layers,
            dropout,
            gap_penalty,
            tokens,  # type: ignore[arg-type]
        )

    def param_groups(self) -> list[dict[str, Any]]:
        """The default decay / no-decay groups, with the gap penalty's rho_h routed to groups of their own."""
        return named_param_groups(self, route=gap_penalty_route)


class GRUD(CDRSBForecaster):
    """GRU-D baseline with a regression head (see ``GRUDNet``); by default predicts y directly (``residual``).

    Args:
        hidden: width of the GRU-D state, of the static-covariate encoding and of the head's hidden layer.
        dropout: dropout probability before the regression head, in [0, 1).
        residual: learn y - y_ref or (False, the default) y itself.
        optimizer: callable params -> torch.optim.Optimizer, given this module's named parameter groups (YAML:
            ``class_path`` with ``init_args``); default AdamW(lr=1e-3).
        lr_scheduler: callable optimizer -> LR scheduler, stepped after every optimizer step (YAML: ``class_path``
            with ``init_args``); null = constant learning rate.
    """

    def __init__(
        self,
        hidden: int = 64,
        dropout: float = 0.2,
        residual: bool = False,
        optimizer: OptimizerCallable = default_optimizer,
        lr_scheduler: LRSchedulerCallable | None = None,
    ) -> None:
        super().__init__(residual, optimizer, lr_scheduler)
        self.save_hyperparameters(ignore=["optimizer", "lr_scheduler"])
        self.net = GRUDNet(N_VARIABLES, N_STATIC, hidden, dropout)


class STraTS(CDRSBForecaster):
    """STraTS baseline with a regression head (see ``STraTSNet``). With ``pretrain_epochs`` = k > 0 the first k
    epochs minimise only the self-supervised forecasting loss sum w (f - x)^2 / sum w (pretraining), later epochs
    the regression MSE (fine-tuning); the phase depends only on the epoch, so resume is exact.

    Args:
        d_model: width of the triplet (value, variable, time) embeddings and of the residual stream (divisible by
            ``n_heads``).
        n_heads: attention heads per block (no time-gap penalty).
        n_layers: number of STraTS blocks (no LayerNorm, averaged residuals).
        dropout: the reference code's single rate: embedding, residual-branch, attention-score and variable
            dropout, in [0, 1).
        pretrain_epochs: epochs of self-supervised forecasting before the regression (>= 0; 0 = none); with
            pretraining the regression reads the forecast head's output (the reference code's fine-tuning).
        residual: learn y - y_ref or (False, the default) y itself.
        optimizer: callable params -> torch.optim.Optimizer, given this module's named parameter groups (YAML:
            ``class_path`` with ``init_args``); default AdamW(lr=1e-3).
        lr_scheduler: callable optimizer -> LR scheduler, stepped after every optimizer step (YAML: ``class_path``
            with ``init_args``); null = constant learning rate.
    """

    def __init__(
        self,
        d_model: int = 32,
        n_heads: int = 4,
        n_layers: int = 2,
        dropout: float = 0.2,
        pretrain_epochs: int = 0,
        residual: bool = False,
        optimizer: OptimizerCallable = default_optimizer,
        lr_scheduler: LRSchedulerCallable | None = None,
    ) -> None:
        super().__init__(residual, optimizer, lr_scheduler)
        self.save_hyperparameters(ignore=["optimizer", "lr_scheduler"])
        self.pretrain_epochs = pretrain_epochs
        self.net = STraTSNet(N_VARIABLES, N_STATIC, d_model, n_heads, n_layers, dropout, pretrain_epochs > 0)

    def training_step(self, batch: CohortBatch, batch_idx: int) -> torch.Tensor:
        if self.current_epoch >= self.pretrain_epochs:
            return super().training_step(batch, batch_idx)
        prediction, target, weight = self.net.forecast(batch.values, batch.mask, batch.times, batch.static)
        loss = (weight * (prediction - target) ** 2).sum() / weight.sum().clamp(min=1.0)
        self.log("train/loss", loss, prog_bar=True)
        self.log("train/forecast_loss", loss)
        return loss

"""Scikit-learn baselines on anchor covariates and history summaries (:mod:`~framework_plugins.gap_transformer.
features`), run through the same trainer, splits and metrics as the networks.

Each model is fitted in closed form (or deterministically, ``random_state=0``) on the training split's anchors when
the module is set up, for fit and again for test (same data, same result), so nothing but a dummy parameter lives in
the checkpoint: it enters the output multiplied by 0 (the trainer needs a parameter to optimise, as for
:class:`~framework_plugins.gap_transformer.module.LMEReference`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable
from sklearn.ensemble import GradientBoostingRegressor
from sklearn.linear_model import LinearRegression, Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from torch import nn

from framework.module import default_optimizer
from framework_plugins.gap_transformer.datamodule import CohortBatch
from framework_plugins.gap_transformer.features import history_features
from framework_plugins.gap_transformer.module import AnchoredCohort, CDRSBForecaster


class FeatureRegression(CDRSBForecaster):
    """Base: ``make_estimator()`` -> an unfitted scikit-learn regressor of the P history features; the prediction
    is estimator(features) (+ y_ref when ``residual``)."""

    def __init__(self, residual: bool, optimizer: OptimizerCallable, lr_scheduler: LRSchedulerCallable | None) -> None:
        super().__init__(residual, optimizer, lr_scheduler)
        self.unused = nn.Parameter(torch.zeros(()))
        self.estimator: Any = None

    def make_estimator(self) -> Any:
        raise NotImplementedError

    @staticmethod
    def features(batch: CohortBatch) -> np.ndarray:
        """(B, P) float64 features of a batch."""
        return history_features(batch.values, batch.mask, batch.times, batch.visit_valid, batch.static).numpy()

    def fit_estimator(self, train: CohortBatch) -> None:
        """Fit on the training anchors: target y (or y - y_ref when ``residual``)."""
        target = (train.y - train.y_ref if self.residual else train.y).double().numpy()
        self.estimator = self.make_estimator().fit(self.features(train), target)

    def setup(self, stage: str) -> None:
        if self.estimator is None:
            cohort = self.data(AnchoredCohort).cohort
            self.fit_estimator(cohort.splits["train"])

    def net(self, values: torch.Tensor, mask: torch.Tensor, times: torch.Tensor, *rest: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        visit_valid, static = rest
        x = history_features(values.cpu(), mask.cpu(), times.cpu(), visit_valid.cpu(), static.cpu()).numpy()
        out = torch.as_tensor(self.estimator.predict(x), dtype=values.dtype, device=values.device)
        return out + 0.0 * self.unused


class LeastSquares(FeatureRegression):
    """Linear regression of the target on the history features: ordinary least squares (``alpha`` = 0,
    scikit-learn ``LinearRegression``) or ridge on standardised features (``alpha`` > 0, minimising
    ||y - X b||^2 + alpha ||b||^2).

    Args:
        alpha: ridge penalty (>= 0; 0 = OLS).
        residual: fit y - y_ref (True) or (False, the default) y.
        optimizer: steps only the dummy parameter (gradient 0); default AdamW(lr=1e-3).
        lr_scheduler: no effect; null = none.
    """

    def __init__(
        self,
        alpha: float = 0.0,
        residual: bool = False,
        optimizer: OptimizerCallable = default_optimizer,
        lr_scheduler: LRSchedulerCallable | None = None,
    ) -> None:
        if alpha < 0:
            raise ValueError(f"model.init_args.alpha={alpha} must be >= 0 (0 = ordinary least squares).")
        super().__init__(residual, optimizer, lr_scheduler)
        self.save_hyperparameters(ignore=["optimizer", "lr_scheduler"])
        self.alpha = alpha

    def make_estimator(self) -> Any:
        return LinearRegression() if self.alpha == 0 else make_pipeline(StandardScaler(), Ridge(alpha=self.alpha))


class BoostedTrees(FeatureRegression):
    """Gradient-boosted regression trees (scikit-learn ``GradientBoostingRegressor``, squared error, no row
    subsampling, ``random_state=0``: deterministic) on the history features.

    Args:
        learning_rate: shrinkage of each tree (> 0).
        n_estimators: number of trees.
        max_depth: depth of each tree.
        residual: fit y - y_ref (True) or (False, the default) y.
        optimizer: steps only the dummy parameter (gradient 0); default AdamW(lr=1e-3).
        lr_scheduler: no effect; null = none.
    """

    def __init__(
        self,
        learning_rate: float = 0.05,
        n_estimators: int = 200,
        max_depth: int = 3,
        residual: bool = False,
        optimizer: OptimizerCallable = default_optimizer,
        lr_scheduler: LRSchedulerCallable | None = None,
    ) -> None:
        if learning_rate <= 0:
            raise ValueError(f"model.init_args.learning_rate={learning_rate} must be > 0.")
        super().__init__(residual, optimizer, lr_scheduler)
        self.save_hyperparameters(ignore=["optimizer", "lr_scheduler"])
        self.learning_rate, self.n_estimators, self.max_depth = learning_rate, n_estimators, max_depth

    def make_estimator(self) -> Any:
        return GradientBoostingRegressor(
            learning_rate=self.learning_rate,
            n_estimators=self.n_estimators,
            max_depth=self.max_depth,
            random_state=0,
        )

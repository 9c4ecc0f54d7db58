"""A decoupled-descent linear probe on any model's frozen representations: does the Onsager-corrected train error of
a probe trained on the training set track its error on held-out samples, where the raw train error does not?

The readout/probe protocol: a LightningModule exposes ``probe_features(split)`` (see :class:`ProbeFeatures`);
the callback standardizes the training features, estimates Delta, and trains the GLM f(x) = x . w / sqrt(d)
(logistic loss, W^0 = 0, full-batch SGD) by decoupled descent (:func:`framework.optim.decoupled_step.full_batch_step`
through :func:`framework.optim.decoupled_loop.train_full_batch`).
"""

from __future__ import annotations

from typing import Literal, Protocol

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import Callback

from framework.optim.decoupled_descent import estimate_noise_var, standardize
from framework.optim.decoupled_loop import train_full_batch
from framework.optim.readout import ReadoutNetwork, classification_error


class ProbeFeatures(Protocol):
    """What :class:`DecoupledProbe` reads from the model."""

    def probe_features(self, split: Literal["train", "test"]) -> tuple[torch.Tensor, torch.Tensor]:
        """Frozen representations (n, d) of the split's samples and their binary labels (n,) in {-1, +1}."""


def fit_decoupled_probe(
    x_train: torch.Tensor,
    y_train: torch.Tensor,
    x_test: torch.Tensor,
    y_test: torch.Tensor,
    steps: int = 200,
    lr: float = 1.0,
) -> dict[str, list[float]]:
    """Train the DD GLM probe for ``steps`` full-batch SGD steps (float64) and record, at every W^t,
    ``raw_error`` (train, from A), ``corrected_error`` (train, from P = A - Delta M) and ``test_error``.

    Features are standardized with the training rows (:func:`standardize`); Delta by :func:`estimate_noise_var`.
    x_train: (n, d), y_train: (n,), x_test: (m, d), y_test: (m,); labels in {-1, +1}.
    """
    if steps < 1:
        raise ValueError(f"steps={steps}: the probe needs steps >= 1.")
    if not lr > 0:
        raise ValueError(f"lr={lr}: the probe needs lr > 0.")
    with torch.enable_grad(), torch.inference_mode(False):  # copies: test-time features are inference tensors
        x_train, y_train, x_test, y_test = (
            t.detach().to(torch.float64, copy=True) for t in (x_train, y_train, x_test, y_test)
        )
        x_test, x_train = standardize(x_test, x_train), standardize(x_train, x_train)

        def test_error(net: ReadoutNetwork) -> dict[str, float]:
            with torch.no_grad():
                return {"test_error": classification_error(net(x_test), y_test).mean().item()}

        net = ReadoutNetwork(x_train.shape[1]).double()
        noise_var = estimate_noise_var(x_train, y_train)
        history, _ = train_full_batch(net, x_train, y_train, steps, "dd", noise_var, test_error, lr=lr)
    history["test_error"] = history["test_error"][:steps]  # of W^0 .. W^{steps-1}, like the train errors
    return {key: history[key] for key in ("raw_error", "corrected_error", "test_error")}


class DecoupledProbe(Callback):
    """Logs ``<stage>/probe/{raw_train_error, corrected_train_error, test_error}`` of a DD probe on the model's
    representations (:class:`ProbeFeatures`) at the last validation of a fit and at every test, so a run reports
    how well its corrected train error predicts held-out error. Runs on every rank with identical inputs (the
    features are the model's, which DDP keeps equal), logged without sync.

    Args:
        steps: full-batch SGD steps of the probe.
        lr: its learning rate.
    """

    def __init__(self, steps: int = 200, lr: float = 1.0) -> None:
        self.steps, self.lr = steps, lr

    def _probe(self, stage: str, pl_module: pl.LightningModule) -> dict[str, float]:
        if not hasattr(pl_module, "probe_features"):
            raise ValueError(
                f"DecoupledProbe needs {type(pl_module).__name__}.probe_features(split) returning (features (n, d), "
                "labels in {-1, +1}); remove the callback or implement it."
            )
        with torch.no_grad():
            train, test = pl_module.probe_features("train"), pl_module.probe_features("test")
        history = fit_decoupled_probe(*train, *test, steps=self.steps, lr=self.lr)
        return {
            f"{stage}/probe/raw_train_error": history["raw_error"][-1],
            f"{stage}/probe/corrected_train_error": history["corrected_error"][-1],
            f"{stage}/probe/test_error": history["test_error"][-1],
        }

    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        last_epoch = trainer.max_epochs is not None and 0 < trainer.max_epochs <= trainer.current_epoch + 1
        last_step = 0 < trainer.max_steps <= trainer.global_step
        if not trainer.sanity_checking and (last_epoch or last_step or trainer.should_stop):
            pl_module.log_dict(self._probe("val", pl_module), sync_dist=False)

    def on_test_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        pl_module.log_dict(self._probe("test", pl_module), sync_dist=False)

"""A thin LightningModule: full-batch decoupled descent (or the GD baseline) with manual optimization, logging raw
train error, corrected train error, test error and the state-evolution prediction at every step, and at test the
end-of-run summaries of the final iterate and of the trajectory (tracking gaps, exact Gaussian-mixture error)."""

from __future__ import annotations

import math
from typing import Literal, Protocol

import torch
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable
from torchmetrics import MeanMetric

from framework.figures import figure
from framework.module import FrameworkModule
from framework.optim.decoupled_descent import sgd_coefficients
from framework.optim.decoupled_step import full_batch_step
from framework.optim.readout import Activation, ReadoutNetwork, classification_error
from framework_plugins.decoupled_descent.linear_response import LinearResponseMemory, linear_response_step
from framework_plugins.decoupled_descent.metrics import gmm_exact_error, trajectory_summary
from framework_plugins.decoupled_descent.minibatch import MiniBatchOnsagerMemory
from framework_plugins.decoupled_descent.state_evolution import state_evolution

SE_SEED = 4242
MAX_SE_STEPS = 2000


def default_sgd(params: object) -> torch.optim.Optimizer:
    """SGD(lr=0.5, weight_decay=0.05): the step size and ridge of the reference configuration."""
    return torch.optim.SGD(params, lr=0.5, weight_decay=0.05)


class FullBatchClassification(Protocol):
    """What :class:`DecoupledDescentClassifier` reads from its datamodule (:class:`DecoupledDescentData`)."""

    n_features: int  # input dimension d
    n_train: int  # training samples: the Onsager memory holds one row per sample
    batch_size: int  # training batch size: n_train is full batch (the state evolution and onsager='matrix' need it)
    noise_var: float  # label-noise variance entering the Onsager correction
    snr: float | None  # the GMM signal-to-noise ratio when the data are simulated (state evolution), else None
    signal: torch.Tensor | None  # the GMM signal v (d,) (exact test error), else None
    splits: dict[str, tuple[torch.Tensor, ...]]  # "train": (x, y, index), for the train errors of the final W


class DecoupledDescentClassifier(FrameworkModule):
    """f(x) = sum_k s_k sigma(x . w_k / sqrt(d)) fit on sum_i l(P_i, y_i) by ``optimizer`` (SGD), full batch by default.

    ``method="dd"``: P = A - Delta M with the Onsager memory M (:mod:`framework.optim.decoupled_descent`), or with
    ``onsager="matrix"`` P = A - c with the per-sample responses of
    :mod:`~framework_plugins.decoupled_descent.linear_response` (any feature covariance, no Delta);
    ``method="gd"``: P = A (plain gradient descent, the baseline). With ``data.batch_size < n_train`` the scalar rule
    runs mini-batch DD (every sample's memory moves at every step;
    :mod:`~framework_plugins.decoupled_descent.minibatch`). Logged per step: ``train/loss`` (mean l(P, y)),
    ``train/raw_loss``, ``train/raw_error`` (from A), ``train/corrected_error`` (from P), ``train/se_error`` (state
    evolution, Gaussian-mixture GLM with W^0 = 0 and DD only); per epoch (= per step, full batch) ``val/error``,
    ``val/loss`` on fresh data; at the end of fit a figure of the four curves. At test, for the final iterate W^T:
    ``test/error``, ``test/loss`` (test split), ``test/train_error`` (raw, from A), ``test/corrected_train_error``
    (from P; raw for GD), ``test/correction`` (corrected - raw), ``test/tracking_gap`` = |corrected train - test|,
    ``test/raw_gap`` = test - raw train; along the trajectory t = 1..T (val split, the history kept in the
    checkpoint): ``test/max_tracking_gap``, ``test/best_error_over_t``; Gaussian-mixture GLM: ``test/m``,
    ``test/q``, ``test/exact_error`` = Phi(-m / sqrt(Delta q)), and with the state evolution ``test/se_m``,
    ``test/se_q``, ``test/se_error`` at t = T.

    Args:
        n_features: d, the input dimension (must equal the data's ``dim``).
        width: K, the number of hidden units (1 with ``activation: linear`` is the GLM of the state evolution).
        activation: sigma: ``linear`` (use with width 1), ``logcosh`` or ``tanh`` (smooth, as decoupled descent
            requires).
        readout: s, the fixed (untrained) readout weight of each unit, ``width`` entries; null = all ones.
        init_scale: std of the initial weights, W^0 ~ N(0, init_scale^2) (>= 0); 0 gives W^0 = 0, the state
            evolution's start; ``logcosh`` / ``tanh`` need > 0 (W = 0 is a critical point).
        method: ``dd`` (decoupled descent: train on the Onsager-corrected P = A - Delta M) or ``gd`` (plain gradient
            descent on A, the baseline).
        onsager_noise_var: Delta of the scalar Onsager correction (> 0); null takes the data module's ``noise_var``
            (known for simulated tasks, estimated on the training split for real ones).
        onsager: ``scalar`` (P = A - Delta M: exact to first order for isotropic features, O(n d K) per step) or
            ``matrix`` (P = A - c from a d-dimensional response per sample: no isotropy and no Delta needed,
            O(n^2 d K) per step and n K d memory, one process); DD only.
        se_particles: Monte-Carlo particles of the state evolution (computed only for the Gaussian-mixture GLM:
            width 1, linear, init_scale 0, method dd, no LR scheduler).
        optimizer: ``torch.optim.SGD`` (momentum with dampening = damping); the lr is for the summed, not the mean,
            loss; default SGD(lr=0.5, weight_decay=0.05).
        lr_scheduler: callable optimizer -> LR scheduler, stepped after every optimizer step; null = constant
            step size (the state-evolution prediction needs it).
    """

    def __init__(
        self,
        n_features: int = 1000,
        width: int = 1,
        activation: Activation = "linear",
        readout: list[float] | None = None,
        init_scale: float = 0.0,
        method: Literal["dd", "gd"] = "dd",
        onsager_noise_var: float | None = None,
        onsager: Literal["scalar", "matrix"] = "scalar",
        se_particles: int = 100_000,
        optimizer: OptimizerCallable = default_sgd,
        lr_scheduler: LRSchedulerCallable | None = None,
    ) -> None:
        super().__init__(optimizer=optimizer, lr_scheduler=lr_scheduler)
        self.save_hyperparameters(ignore=["optimizer", "lr_scheduler"])
        if method not in ("dd", "gd"):
            raise ValueError(f"model.init_args.method={method!r} is unknown; choose 'dd' or 'gd'.")
        if onsager not in ("scalar", "matrix"):
            raise ValueError(f"model.init_args.onsager={onsager!r} is unknown; choose 'scalar' or 'matrix'.")
        self.automatic_optimization = False
        self.net = ReadoutNetwork(n_features, width, activation, readout, init_scale)
        self.memory: MiniBatchOnsagerMemory | LinearResponseMemory | None = None
        if method == "dd" and onsager == "matrix":
            self.memory = LinearResponseMemory(width)
        elif method == "dd":
            self.memory = MiniBatchOnsagerMemory(width, onsager_noise_var or 1.0)
        self.se_particles = se_particles
        self.se: dict[str, torch.Tensor] | None = None
        self.history: dict[str, dict[int, float]] = {
            k: {} for k in ("raw_error", "corrected_error", "test_error", "se_error")
        }
        self.metrics = torch.nn.ModuleDict(
            {f"{s}_{k}": MeanMetric() for s in ("val", "test") for k in ("error", "loss")}
        )

    def setup(self, stage: str) -> None:
        self._data = data = self.data(FullBatchClassification)
        if data.n_features != self.net.n_features:
            raise ValueError(
                f"model.init_args.n_features={self.net.n_features} but the data has {data.n_features} features; "
                f"set model.init_args.n_features: {data.n_features}."
            )
        if isinstance(self.memory, LinearResponseMemory):
            if self.trainer is not None and self.trainer.world_size > 1:
                raise ValueError("model.init_args.onsager='matrix' runs in one process; use trainer.devices 1.")
            self.memory.allocate(data.n_train, data.n_features)  # R^0 = 0 (a checkpoint replaces it)
        elif self.memory is not None:
            self.memory.noise_var = self.hparams.onsager_noise_var or data.noise_var
            self.memory.allocate(data.n_train)  # M^0 = 0; a loaded checkpoint replaces it with its M^T

    def on_fit_start(self) -> None:
        data, hp = self._data, self.hparams
        steps = self.trainer.estimated_stepping_batches
        glm = hp.width == 1 and hp.activation == "linear" and hp.init_scale == 0 and hp.method == "dd"
        glm = glm and hp.onsager == "scalar" and data.batch_size >= data.n_train
        if data.snr is None or not glm or self.lr_schedulers() is not None or math.isinf(steps):
            return
        sgd = sgd_coefficients(self.optimizers())
        self.se = state_evolution(
            int(min(steps, MAX_SE_STEPS)),
            data.snr,
            self.memory.noise_var,
            data.n_train / hp.n_features,
            particles=self.se_particles,
            seed=SE_SEED,
            **sgd,
        )

    def training_step(self, batch: list[torch.Tensor], batch_idx: int) -> torch.Tensor:
        x, y, index = batch
        t = self.global_step
        if isinstance(self.memory, LinearResponseMemory):
            stats = linear_response_step(self.net, self.optimizers(), x, y, index, self.memory, self.manual_backward)
        else:
            stats = full_batch_step(
                self.net,
                self.optimizers(),
                x,
                y,
                index,
                self.memory,
                self.manual_backward,
                self.gather_rows,
                self.trainer.world_size,
            )
        self.step_lr_schedulers()
        for key, value in stats.items():
            self.log(f"train/{key}", value, prog_bar=key == "corrected_error")
        self.history["raw_error"][t] = stats["raw_error"].item()
        self.history["corrected_error"][t] = stats["corrected_error"].item()
        if self.se is not None and t < len(self.se["test_error"]):
            self.history["se_error"][t] = self.se["test_error"][t].item()
            self.log("train/se_error", self.history["se_error"][t])
        return stats["loss"]

    def _eval_step(self, stage: str, batch: list[torch.Tensor]) -> None:
        x, y, _ = batch
        p = self.net.preactivations(x)
        self.metrics[f"{stage}_error"].update(classification_error(self.net.score(p), y))
        self.metrics[f"{stage}_loss"].update(self.net.loss(p, y))

    def validation_step(self, batch: list[torch.Tensor], batch_idx: int) -> None:
        self._eval_step("val", batch)

    def test_step(self, batch: list[torch.Tensor], batch_idx: int) -> None:
        self._eval_step("test", batch)

    def _eval_end(self, stage: str) -> float:
        for key in ("error", "loss"):  # the Metric objects: Lightning logs their synced values and resets them
            self.log(f"{stage}/{key}", self.metrics[f"{stage}_{key}"])
        return self.metrics[f"{stage}_error"].compute().item()  # cached: Lightning's compute returns the same

    def on_validation_epoch_end(self) -> None:
        self.history["test_error"][self.global_step] = self._eval_end("val")  # error of W^{global_step}

    def on_test_epoch_end(self) -> None:
        for key, value in self._final_metrics(self._eval_end("test")).items():
            self.log(f"test/{key}", value)
        if self.history["raw_error"]:  # the checkpointed trajectory, drawn again into this test's folder
            self._figure()

    @torch.no_grad()
    def _final_metrics(self, test_error: float) -> dict[str, float]:
        """End-of-run summaries of W^T = the current weights after T = len(history) steps (see the class doc)."""
        x, y, index = (t.to(self.device) for t in self._data.splits["train"][:3])
        raw = self.net.preactivations(x)
        p = self.memory.correct(raw, index) if self.memory is not None else raw
        train, corrected = (classification_error(self.net.score(a), y).mean().item() for a in (raw, p))
        out = {
            "train_error": train,
            "corrected_train_error": corrected,
            "correction": corrected - train,
            "tracking_gap": abs(corrected - test_error),
            "raw_gap": test_error - train,
        }
        steps = len(self.history["raw_error"])
        if steps:
            out.update(
                trajectory_summary({**self.history["corrected_error"], steps: corrected}, self.history["test_error"])
            )
        hp = self.hparams
        if self._data.signal is not None and hp.width == 1 and hp.activation == "linear":
            w = self.net.readout[0] * self.net.first.weight[0]
            out.update(gmm_exact_error(w, self._data.signal, self._data.noise_var))
        if self.se is not None and steps < len(self.se["m"]):
            se = {"se_m": "m", "se_q": "q", "se_error": "test_error"}
            out.update({key: self.se[name][steps].item() for key, name in se.items()})
        return out

    def predict_step(self, batch: list[torch.Tensor], batch_idx: int) -> torch.Tensor:
        return self.net(batch[0])

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["decoupled_descent_history"] = self.history  # a resumed run's figure has the whole curve, and
        checkpoint["decoupled_descent_se"] = self.se  # the test metrics of a loaded run have the trajectory and SE

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        self.history = checkpoint.get("decoupled_descent_history", self.history)
        self.se = checkpoint.get("decoupled_descent_se", self.se)

    def on_train_end(self) -> None:
        if self.history["raw_error"]:
            self._figure()

    def _figure(self) -> None:
        """``errors``: the raw, corrected and fresh-data error of W^t over the steps t of the fit (and SE)."""
        labels = {
            "raw_error": "raw train (A)",
            "corrected_error": "corrected train (P)",
            "test_error": "test (fresh data)",
            "se_error": "state evolution",
        }
        with figure(self.trainer, "errors", figsize=(5.5, 3.5)) as (_, ax):
            for key, label in labels.items():
                if self.history[key] and not (key == "corrected_error" and self.memory is None):
                    steps = sorted(self.history[key])
                    values = [self.history[key][s] for s in steps]
                    ax.plot(steps, values, label=label, ls="--" if key == "se_error" else "-")
            ax.set(xlabel="step t", ylabel="0-1 error", title=f"{self.hparams.method.upper()}: error of W^t")
            ax.legend()

"""TopoFisher: a summary pipeline (filtration -> persistence -> vectorization -> compressor) trained to maximise the
Fisher information ln|F| of its summaries, estimated from seed-matched simulations (arXiv 2605.07720)."""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Sequence
from typing import Any, Literal, Protocol

import torch
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable
from torch import nn

from framework.figures import log_figure
from framework.module import FrameworkModule, default_optimizer
from framework_plugins.topofisher.filtrations import VertexFiltration
from framework_plugins.topofisher.fisher import (
    fisher_from_summaries,
    imnn_regularizer,
    mean_derivative,
    moment_penalties,
    moped_weights,
    split_fisher,
    split_summaries,
)
from framework_plugins.topofisher.fisher import log_det as fisher_log_det
from framework_plugins.topofisher.plots import (
    diagram_figure,
    filtration_figure,
    fisher_figure,
    vertex_filtration_figure,
)
from framework_plugins.topofisher.simulators import Simulator
from framework_plugins.topofisher.summaries import SummaryNetwork

CHUNK_ITEMS = 64  # training items per forward pass when fitting the standardisation or MOPED
NEARLY_CONSTANT = 1e-3  # MOPED drops features whose training std is below this fraction of the largest one


def mlp(sizes: Sequence[int]) -> nn.Sequential:
    """Linear-SiLU-...-Linear through ``sizes``."""
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        layers += [nn.Linear(a, b)] + ([nn.SiLU()] if i < len(sizes) - 2 else [])
    return nn.Sequential(*layers)


class SeedMatchedSimulations(Protocol):
    """What :class:`TopoFisher` reads from its datamodule (:class:`TopoFisherData` provides it)."""

    simulator: Simulator  # n_params, dtheta and the exact Fisher matrix when known
    test_simulators: dict[str, Simulator]  # extra test sets, served after the test split in this order
    splits: dict[str, tuple[torch.Tensor, ...]]  # split -> (simulations (n, 1 + 2p, *shape),)

    def memoize(
        self,
        fn: Callable[[torch.Tensor], tuple[torch.Tensor, ...]],
        ragged_dim: int | None = None,
        key: Callable[[], str | None] | None = None,
    ) -> None:
        """Serve fn(simulations) instead of the simulations, each item computed once; ``key()`` names what fn
        computes, so that items of an equal key may be shared (None: not shared)."""

    def items(self, split: str, start: int, stop: int) -> list[torch.Tensor]:
        """Items start..stop-1 of a split, batched as its loader serves them."""


class TopoFisher(FrameworkModule):
    """Trains ``summary`` (+ compressor) on loss = -ln|F| + w r Lambda_2 (IMNN regularizer, lambda = 10,
    epsilon = 0.1, on the compressed summaries' covariance, times ``regularizer_weight`` w),
    F = dmu C^-1 dmu^T (Hartlap-corrected) from one batch of seed-matched simulations.

    Summaries are standardised by a fixed affine map (mean / std of ``standardize_sims`` training fiducials through
    the initial pipeline; ln|F| does not depend on it, it only conditions the compressor's input). Compressors:
    ``mlp`` (hidden sizes ``hidden``, p outputs, trained) or ``moped`` (t = B^T s with B = C^-1 dmu^T refitted on
    ``moped_sims`` training seeds before each evaluation, on the features whose training std is at least
    ``NEARLY_CONSTANT`` of the largest; training then maximises ln|F| of the uncompressed summaries, which MOPED
    preserves). A fixed summary (no trainable parameter) with ``moped`` is the classical baseline: there is nothing
    to train, so each training step is a no-op (fit one step, ``trainer.max_epochs: 1, limit_train_batches: 1``, to
    get the checkpoint the test loads) and the test reports MOPED fitted on the training simulations. With
    ``cache_diagrams`` (a TopologicalSummary whose filtration has no trainable parameter, e.g. the raw field) the
    diagrams of each simulation are computed once, when it is first drawn, and reused: later epochs only run the
    vectorization and the compressor.
    Evaluation reports only held-out numbers: ``<stage>/log_det_F`` (standard estimator, biased high by
    derivative noise), ``<stage>/log_det_F_split`` (MOPED on one half, F on the other: biased low),
    ``<stage>/info_ratio`` = exp(ln|F| - ln|F_exact|) when the simulator knows F_exact; the test also logs the
    entries ``test/F_ij`` (i <= j) of the held-out F, ``test/log_det_F_exact`` and ``test/F_exact_ij`` when F_exact
    is known, and ``test/<name>/...`` for each extra test set of the datamodule's ``test_simulators``.
    ``predict`` returns the compressed summaries (batch, 1 + 2p, p).

    Options of the public TopoFisher training: ``skewness_weight`` / ``kurtosis_weight`` add lambda_s mean g1^2 +
    lambda_k mean g2^2 of the compressed training summaries (:func:`fisher.moment_penalties`; the public configs use
    0.05 / 0.2), and ``patience`` stops on held-out information: after ``patience`` validation epochs without a
    higher ``val/log_det_F`` (or at the last epoch) the weights of the best validation epoch are restored and
    training stops, so the checkpoint the test loads is the best one on the validation simulations.

    Args:
        summary: the summary network, simulations (m, *shape) -> summaries (m, out_features): a SummaryNetwork
            (TopologicalSummary, IMNNNetwork, PowerSpectrum, PeakCounts or a subclass of your own).
        n_params: p, the number of parameters (compressed summaries per simulation; must equal the simulator's).
        compressor: ``mlp`` or ``moped``.
        hidden: hidden sizes of the MLP compressor.
        regularizer_weight: w, the weight of the IMNN regularizer (0 = off; it only fixes the summaries' scale).
        standardize_sims: training seeds whose fiducial summaries fit the standardisation (mean / std).
        moped_sims: training seeds used to refit the MOPED compression before each evaluation (``moped`` only).
        cache_diagrams: memoize the persistence diagrams of the simulations (frozen filtrations only).
        skewness_weight: lambda_s of the skewness penalty (0 = off).
        kurtosis_weight: lambda_k of the excess-kurtosis penalty (0 = off).
        patience: validation epochs without improvement of ``val/log_det_F`` before stopping with the best weights
            restored; null = train all epochs and keep the last weights.
        test_moped: also log ``test/moped/...``: the held-out metrics of MOPED (fitted on ``moped_sims`` training
            seeds) on the standardised summaries, whatever the compressor: the trained summary read the way the
            fixed baselines are (the same numbers as ``test/...`` for the ``moped`` compressor).
        optimizer: callable params -> torch.optim.Optimizer, given this module's named parameter groups (YAML:
            ``class_path`` with ``init_args``); default AdamW(lr=1e-3).
        lr_scheduler: callable optimizer -> LR scheduler, stepped after every optimizer step (YAML: ``class_path``
            with ``init_args``); null = constant learning rate.
    """

    def __init__(
        self,
        summary: SummaryNetwork,
        n_params: int = 2,
        compressor: Literal["mlp", "moped"] = "mlp",
        hidden: Sequence[int] = (64, 64),
        regularizer_weight: float = 0.01,
        standardize_sims: int = 128,
        moped_sims: int = 256,
        cache_diagrams: bool = False,
        skewness_weight: float = 0.0,
        kurtosis_weight: float = 0.0,
        patience: int | None = None,
        test_moped: bool = False,
        optimizer: OptimizerCallable = default_optimizer,
        lr_scheduler: LRSchedulerCallable | None = None,
    ) -> None:
        super().__init__(optimizer=optimizer, lr_scheduler=lr_scheduler)
        if compressor not in ("mlp", "moped"):
            raise ValueError(f"model.init_args.compressor={compressor!r} is unknown; use 'mlp' or 'moped'.")
        if not hasattr(summary, "out_features"):
            raise ValueError(f"model.init_args.summary {type(summary).__name__} has no out_features attribute.")
        # from a config the summary is saved as its class_path/init_args, so load_from_checkpoint rebuilds it; a
        # module built in Python is not saved (pass summary= to load_from_checkpoint then)
        self.save_hyperparameters(ignore=["optimizer", "lr_scheduler"])
        if isinstance(self.hparams.get("summary"), nn.Module):
            del self.hparams["summary"]
        self.summary, self.n_params, self.compressor_kind = summary, n_params, compressor
        d = summary.out_features
        self.compressor = mlp([d, *hidden, n_params]) if compressor == "mlp" else nn.Identity()
        self.register_buffer("shift", torch.zeros(d))
        self.register_buffer("scale", torch.ones(d))
        self.register_buffer("standardized", torch.tensor(False))
        self.register_buffer("moped", torch.zeros(d, n_params))
        if regularizer_weight < 0:
            raise ValueError(f"model.init_args.regularizer_weight={regularizer_weight} must be >= 0 (0 = off).")
        self.regularizer_weight = regularizer_weight
        for name, value in (("skewness_weight", skewness_weight), ("kurtosis_weight", kurtosis_weight)):
            if value < 0:
                raise ValueError(
                    f"model.init_args.{name}={value} must be >= 0 (0 = off; the public configs use 0.05 / 0.2)."
                )
        if patience is not None and patience < 1:
            raise ValueError(
                f"model.init_args.patience={patience} must be >= 1 validation epochs, or null (no early stop)."
            )
        self.skewness_weight, self.kurtosis_weight, self.patience = skewness_weight, kurtosis_weight, patience
        self.test_moped = test_moped
        self._best: dict[str, Any] = {"value": -math.inf, "bad": 0, "state": None}
        self.standardize_sims, self.moped_sims = standardize_sims, moped_sims
        if cache_diagrams and not getattr(summary, "frozen_diagrams", False):
            raise ValueError(
                f"model.init_args.cache_diagrams=true needs a TopologicalSummary whose filtration has no trainable "
                f"parameter; got {type(summary).__name__} with filtration "
                f"{type(getattr(summary, 'filtration', None)).__name__}. Freeze it (e.g. GaussianSmoothing "
                f"learnable: false), drop the filtration, or set cache_diagrams: false."
            )
        self.cache_diagrams = cache_diagrams
        self.dtheta = torch.ones(n_params, dtype=torch.float64)
        self.exact_fisher: torch.Tensor | None = None
        self._held_out: list[list[torch.Tensor]] = []
        self._val_fisher: torch.Tensor | None = None

    def setup(self, stage: str) -> None:
        self._data = data = self.data(SeedMatchedSimulations)
        simulator = data.simulator
        if simulator.n_params != self.n_params:
            raise ValueError(f"model.init_args.n_params={self.n_params} but the simulator has {simulator.n_params}.")
        self.dtheta, self.exact_fisher = simulator.dtheta, simulator.exact_fisher()
        if self.cache_diagrams:
            data.memoize(self.summary.diagram_tensors, ragged_dim=-2, key=self.diagram_key)  # rows (k, C, P, 2)

    def diagram_key(self) -> str | None:
        """What the cached diagrams depend on: the summary's config and the filtration's parameters and buffers as
        they are when called (the datamodule calls it when it first builds a split's dataset, after Lightning has
        restored any checkpoint); None for a summary built in Python (no config to compare)."""
        config = self.hparams.get("summary")
        if config is None:
            return None
        state = hashlib.sha256()
        for name, tensor in sorted(getattr(self.summary, "filtration", nn.Identity()).state_dict().items()):
            tensor = tensor.detach().cpu().contiguous()
            state.update(f"{name} {tensor.dtype} {tuple(tensor.shape)}".encode())
            state.update(tensor.flatten().view(torch.uint8).numpy().tobytes())
        return json.dumps(config, sort_keys=True, default=str) + state.hexdigest()

    def features(self, batch: Sequence[torch.Tensor]) -> torch.Tensor:
        """Standardised summaries (B, 1 + 2p, d) of a batch of seed-matched items: the simulations
        (B, 1 + 2p, *shape) or, with ``cache_diagrams``, their stored diagrams."""
        s = self.summary.vectorize_tensors(batch) if self.cache_diagrams else self._summarize(batch[0])
        return (s - self.shift) / self.scale

    def _summarize(self, x: torch.Tensor) -> torch.Tensor:
        """Raw summaries of simulations: (B, 1 + 2p, *shape) -> (B, 1 + 2p, d)."""
        return self.summary(x.flatten(0, 1)).reshape(*x.shape[:2], -1)

    def compress(self, s: torch.Tensor) -> torch.Tensor:
        """(..., d) -> (..., p): the MLP, or the fitted MOPED weights."""
        return self.compressor(s) if self.compressor_kind == "mlp" else s @ self.moped

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Compressed summaries of simulations x (B, 1 + 2p, *shape) -> (B, 1 + 2p, p) (diagrams computed here)."""
        return self.compress((self._summarize(x) - self.shift) / self.scale)

    @torch.no_grad()
    def _train_features(self, n: int, k: int | None = None) -> torch.Tensor:
        """Standardised summaries (n, k, d) of the first n training items (only their first k simulations),
        computed ``CHUNK_ITEMS`` items at a time (n is clipped to the training split's size)."""
        n, chunks = min(n, len(self._data.splits["train"][0])), []
        for start in range(0, n, CHUNK_ITEMS):
            items = self._data.items("train", start, min(start + CHUNK_ITEMS, n))
            chunks.append(self.features([t[:, :k].to(self.device) for t in items]))
        return torch.cat(chunks)

    @property
    def trainable(self) -> bool:
        """False for a fixed summary compressed by MOPED: no parameter to train."""
        return any(p.requires_grad for p in self.parameters())

    def param_groups(self) -> list[dict[str, Any]]:
        """The named groups of the trainable parameters; one empty group when nothing is trainable."""
        return super().param_groups() if self.trainable else [{"params": [], "name": "none"}]

    @torch.no_grad()
    def on_fit_start(self) -> None:
        if not bool(self.standardized):  # a restored checkpoint keeps its own standardisation
            s = self._train_features(self.standardize_sims, k=1)[:, 0]
            self.shift.copy_(s.mean(0))
            self.scale.copy_(s.std(0).clamp_min(1e-8))
            self.standardized.fill_(True)

    def training_step(self, batch: list[torch.Tensor], batch_idx: int) -> torch.Tensor:
        if not self.trainable:  # a no-op step: the optimizer has nothing to update, the fit still checkpoints
            return torch.zeros((), device=self.device, requires_grad=True)
        s = self.features(batch)
        t = self.compressor(s) if self.compressor_kind == "mlp" else s
        fisher, cov, _ = fisher_from_summaries(t, self.dtheta)
        log_det = fisher_log_det(fisher)  # -inf (loss +inf, stopped by the finite-loss guard) unless F is PD
        loss = -log_det
        if self.regularizer_weight > 0:
            loss = loss + self.regularizer_weight * imnn_regularizer(cov)
        if self.skewness_weight > 0 or self.kurtosis_weight > 0:
            skew, kurt = moment_penalties(t)
            loss = loss + self.skewness_weight * skew + self.kurtosis_weight * kurt
            self.log("train/skewness_penalty", skew)
            self.log("train/kurtosis_penalty", kurt)
        self.log("train/loss", loss)
        self.log("train/log_det_F", log_det, prog_bar=True)
        return loss

    @torch.no_grad()
    def _fit_moped(self, force: bool = False) -> None:
        """MOPED B = C^-1 dmu^T (d, p) of the standardised summaries of ``moped_sims`` training items, with zero
        rows for the nearly constant features (their covariance is numerically singular and their rare spikes would
        get huge weights). Fitted for the ``moped`` compressor, or with ``force`` (``test_moped``)."""
        if self.compressor_kind != "moped" and not force:
            return
        s = self._train_features(self.moped_sims).double()
        fiducial, plus, minus = split_summaries(s, self.n_params)
        std = fiducial.std(0) * self.scale.double()  # of the raw summaries
        keep = std >= NEARLY_CONSTANT * std.max()
        dmu = mean_derivative(plus[..., keep], minus[..., keep], self.dtheta)
        weights = torch.zeros_like(self.moped, dtype=torch.float64)
        weights[keep] = moped_weights(fiducial[:, keep], dmu)
        self.moped.copy_(weights)

    def on_validation_epoch_start(self) -> None:
        self._fit_moped()
        self._held_out = [[]]

    def on_test_epoch_start(self) -> None:
        self._fit_moped(force=self.test_moped)
        self._held_out = [[] for _ in range(1 + len(self._data.test_simulators))]

    def validation_step(self, batch: list[torch.Tensor], batch_idx: int, dataloader_idx: int = 0) -> None:
        self._held_out[dataloader_idx].append(self.features(batch))  # compressed in _evaluate

    test_step = validation_step

    def predict_step(self, batch: list[torch.Tensor], batch_idx: int) -> torch.Tensor:
        return self.compress(self.features(batch))

    def on_validation_epoch_end(self) -> None:
        self._val_fisher = self._evaluate("val", self._held_out[0], self.exact_fisher)
        if self.patience is not None and not self.trainer.sanity_checking:
            self._early_stopping(self._val_fisher)

    def _early_stopping(self, fisher: torch.Tensor) -> None:
        """Keep the weights (and held-out F) of the best ``val/log_det_F``; after ``patience`` epochs without
        improvement, or at the last epoch, restore them and stop (before the checkpoint of this epoch is written)."""
        best, value = self._best, float(fisher_log_det(fisher))
        if value > best["value"]:
            state = {k: v.detach().clone() for k, v in self.state_dict().items()}
            best.update(value=value, bad=0, state=state, fisher=fisher.detach().clone())
        else:
            best["bad"] += 1
        last = self.current_epoch + 1 >= (self.trainer.max_epochs or math.inf)
        if (best["bad"] >= self.patience or last) and best["state"] is not None:
            self.load_state_dict(best["state"])
            self._val_fisher = best["fisher"]
            self.trainer.should_stop = True
        self.log("val/best_log_det_F", best["value"])

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        if self.patience is not None:
            checkpoint["topofisher_early_stopping"] = self._best

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        if "topofisher_early_stopping" in checkpoint:
            self._best = checkpoint["topofisher_early_stopping"]

    def on_fit_end(self) -> None:
        if self.trainer.is_global_zero and self._val_fisher is not None:
            self._figures(self._val_fisher, "val")

    def on_test_epoch_end(self) -> None:
        fisher = self._evaluate("test", self._held_out[0], self.exact_fisher)
        self._log_matrix("test/F", fisher)
        if self.exact_fisher is not None:
            self.log("test/log_det_F_exact", fisher_log_det(self.exact_fisher).float())
            self._log_matrix("test/F_exact", self.exact_fisher)
        for name, held_out in zip(self._data.test_simulators, self._held_out[1:], strict=True):
            self._evaluate(f"test/{name}", held_out, self._data.test_simulators[name].exact_fisher())
        if self.trainer.is_global_zero:
            self._figures(fisher, "test")

    def _evaluate(
        self, prefix: str, held_out: list[torch.Tensor], exact: torch.Tensor | None, compressed: bool = False
    ) -> torch.Tensor:
        """Log ``<prefix>/log_det_F``, ``_split`` and (``exact`` known) ``info_ratio`` of the compressed held-out
        summaries (batches of standardised summaries (b, 1 + 2p, d), compressed here); with ``test_moped`` at test
        also ``<prefix>/moped/...`` of the MOPED-compressed summaries. Returns the held-out F (p, p)."""
        s = self.gather_rows(held_out)
        if self.test_moped and prefix.startswith("test") and not prefix.endswith("/moped"):
            self._evaluate(f"{prefix}/moped", [s @ self.moped.to(s)], exact, compressed=True)
        t = (s if compressed else self.compress(s)).double()
        dtheta = self.dtheta.to(t)
        fisher = fisher_from_summaries(t, dtheta)[0]
        log_det = fisher_log_det(fisher)
        self.log(f"{prefix}/log_det_F", log_det.float())
        self.log(f"{prefix}/log_det_F_split", fisher_log_det(split_fisher(t, dtheta)).float())
        if exact is not None:
            self.log(f"{prefix}/info_ratio", torch.exp(log_det - fisher_log_det(exact)).float())
        return fisher

    def _log_matrix(self, key: str, matrix: torch.Tensor) -> None:
        """Log the upper triangle of a symmetric (p, p) matrix as ``<key>_ij``, i <= j."""
        for i in range(len(matrix)):
            for j in range(i, len(matrix)):
                self.log(f"{key}_{i}{j}", matrix[i, j].float())

    def _figures(self, fisher: torch.Tensor, split: str) -> None:
        """``fisher_ellipses`` of the held-out F of ``split``; ``diagrams`` and ``filtration`` of its first item."""
        log_figure(self.trainer, "fisher_ellipses", fisher_figure(fisher, self.exact_fisher, self.dtheta))
        x = self._data.splits[split][0][:1, 0].to(self.device)
        if hasattr(self.summary, "diagrams"):
            with torch.no_grad():
                log_figure(self.trainer, "diagrams", diagram_figure(self.summary.diagrams(x), self.summary.dims))
                filtered = self.summary.filtration(x)
            filtration = self.summary.filtration
            if isinstance(filtration, VertexFiltration):
                with torch.no_grad():
                    correction = filtration.correction(x)[0] if hasattr(filtration, "correction") else None
                figure = vertex_filtration_figure(x[0], filtered[0, :, 2], correction)
                log_figure(self.trainer, "filtration", figure)
            elif not isinstance(filtration, nn.Identity):
                log_figure(self.trainer, "filtration", filtration_figure(x, filtered))

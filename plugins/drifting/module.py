"""One-step generator trained by drifting (Deng et al. 2026, Alg. 1) with honest convergence monitoring."""

from __future__ import annotations

from typing import Literal, Protocol

import torch
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable

from framework.figures import figure, image_grid, scatter_samples
from framework.metrics import moment_matched_gaussian, sample_distances
from framework.module import FrameworkModule, default_optimizer
from framework_plugins.drifting.features import Encoder, PCAFeatures, build_encoder
from framework_plugins.drifting.field import kernel_overlap, normalized_drift_loss
from framework_plugins.drifting.generator import ConvGenerator, MLPGenerator
from framework_plugins.drifting.kernels import KernelName
from framework_plugins.drifting.two_sample import knn_two_sample

EVAL_SEED = 4242


class DriftingInputs(Protocol):
    """What :class:`DriftingGenerator` reads from its datamodule (:class:`DriftingData` provides it)."""

    splits: dict[str, tuple[torch.Tensor, ...]]  # "train" -> (data,): fits the ``pca`` encoder


class DriftingGenerator(FrameworkModule):
    """x = f(z); loss = MSE(x, stopgrad(x + V(x))) with the multi-temperature normalised field.

    Logged: ``train/loss`` (the normalised loss: roughly constant by construction, NOT a progress signal),
    ``train/field_sq`` (mean ||V||^2 of the unnormalised fields: the convergence signal); at validation and test,
    from ``eval_samples`` generated points vs held-out data: ``<stage>/field_sq``, ``<stage>/mmd``,
    ``<stage>/energy``, ``<stage>/sliced_w2``, ``<stage>/w2`` and ``<stage>/overlap_ratio`` = Phi(q) / Phi(p),
    Phi(q) = E_{x~q, y~p} k(x, y) with the kernel at length ``overlap_scale`` x (mean held-out pairwise distance):
    the missing-mass monitor (this project's assumption, see README); at test also the 1-NN classifier two-sample
    test ``test/c2st`` (leave-one-out accuracy, 0.5 = indistinguishable) with its permutation p-value
    ``test/c2st_pvalue``, and the moment-matched Gaussian baseline (``test/*_gaussian_baseline``, c2st included).
    With an ``encoder``, the loss adds the same normalised drifting loss on the fixed features phi(x) vs phi(y)
    (feature-space drifting, App. A.6), logged as ``train/feature_field_sq``; ``field_sq`` stays the pixel field.
    The figure ``samples`` at the end of fit (the last validation's) and of test.

    Args:
        dim: data dimension.
        noise_dim: dimension of z.
        architecture: ``mlp`` or ``conv`` (8x8 images, dim 64).
        hidden: width of the MLP generator's hidden layers (``mlp`` only).
        depth: number of hidden SiLU layers of the MLP generator (``mlp`` only).
        kernel: ``laplace`` (default of the original method), ``matern32``, ``matern52`` or ``gaussian``.
        temperatures: kernel scales in units of the mean batch distance; their normalised fields are summed.
        gen_batch: generated samples per step (the negatives).
        eval_samples: generated samples for the metrics.
        overlap_scale: monitor kernel length in units of the mean held-out distance.
        chunk_size: queries per block in the field computation (bounded memory), None = one block.
        encoder: fixed feature encoder for feature-space drifting: ``none``, ``pca`` (whitened principal components
            of the training split) or ``random_conv`` (frozen random 3x3 convolution, square images only).
        encoder_dim: PCA components or random-convolution channels.
        optimizer: callable params -> torch.optim.Optimizer, given this module's named parameter groups (YAML:
            ``class_path`` with ``init_args``); default AdamW(lr=1e-3).
        lr_scheduler: callable optimizer -> LR scheduler, stepped after every optimizer step (YAML: ``class_path``
            with ``init_args``); null = constant learning rate.
    """

    def __init__(
        self,
        dim: int = 2,
        noise_dim: int = 32,
        architecture: Literal["mlp", "conv"] = "mlp",
        hidden: int = 256,
        depth: int = 3,
        kernel: KernelName = "laplace",
        temperatures: tuple[float, ...] = (0.02, 0.05, 0.2),
        gen_batch: int = 1024,
        eval_samples: int = 1000,
        overlap_scale: float = 0.5,
        chunk_size: int | None = None,
        encoder: Encoder = "none",
        encoder_dim: int = 16,
        optimizer: OptimizerCallable = default_optimizer,
        lr_scheduler: LRSchedulerCallable | None = None,
    ) -> None:
        super().__init__(optimizer=optimizer, lr_scheduler=lr_scheduler)
        self.save_hyperparameters(ignore=["optimizer", "lr_scheduler"])
        self.dim, self.noise_dim = dim, noise_dim
        self.generator = (
            ConvGenerator(noise_dim, dim) if architecture == "conv" else MLPGenerator(noise_dim, dim, hidden, depth)
        )
        self.kernel, self.temperatures = kernel, tuple(temperatures)
        self.gen_batch, self.eval_samples = gen_batch, eval_samples
        self.overlap_scale, self.chunk_size = overlap_scale, chunk_size
        self.encoder = build_encoder(encoder, dim, encoder_dim)
        self._held_out: list[torch.Tensor] = []
        self._last_val: tuple[torch.Tensor, torch.Tensor] | None = None

    def setup(self, stage: str) -> None:
        if isinstance(self.encoder, PCAFeatures) and stage == "fit":
            self.encoder.fit(self.data(DriftingInputs).splits["train"][0].to(self.device))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.generator(z)

    def training_step(self, batch: list[torch.Tensor], batch_idx: int) -> torch.Tensor:
        z = torch.randn(self.gen_batch, self.noise_dim, device=self.device)
        x = self.generator(z)
        loss, field_sq = normalized_drift_loss(x, batch[0], self.kernel, self.temperatures, self.chunk_size)
        if self.encoder is not None:
            feature_loss, feature_sq = normalized_drift_loss(
                self.encoder(x), self.encoder(batch[0]), self.kernel, self.temperatures, self.chunk_size
            )
            loss = loss + feature_loss
            self.log("train/feature_field_sq", feature_sq)
        self.log("train/loss", loss)
        self.log("train/field_sq", field_sq, prog_bar=True)
        return loss

    def predict_step(self, batch: list[torch.Tensor], batch_idx: int) -> torch.Tensor:
        return self.generator(
            torch.randn(
                len(batch[0]), self.noise_dim, generator=torch.Generator().manual_seed(EVAL_SEED + batch_idx)
            ).to(self.device)
        )

    def on_validation_epoch_start(self) -> None:
        self._held_out = []

    on_test_epoch_start = on_validation_epoch_start

    def validation_step(self, batch: list[torch.Tensor], batch_idx: int) -> None:
        self._held_out.append(batch[0])

    test_step = validation_step

    def on_validation_epoch_end(self) -> None:
        self._last_val = self._evaluate("val")  # drawn at the end of fit

    def on_fit_end(self) -> None:
        if self._last_val is not None:
            self._figure(*self._last_val)

    def on_test_epoch_end(self) -> None:
        samples, data = self._evaluate("test")
        baseline = moment_matched_gaussian(data, EVAL_SEED + 1)
        for key, value in sample_distances(baseline, data).items():
            self.log(f"test/{key}_gaussian_baseline", value)
        accuracy, p_value = knn_two_sample(samples, data, seed=EVAL_SEED)
        self.log("test/c2st", accuracy)
        self.log("test/c2st_pvalue", p_value)
        self.log("test/c2st_gaussian_baseline", knn_two_sample(baseline, data, seed=EVAL_SEED)[0])
        self._figure(samples, data)

    def _evaluate(self, stage: str) -> tuple[torch.Tensor, torch.Tensor]:
        data = self.gather_rows(self._held_out)
        n = min(len(data), self.eval_samples)
        data = data[:n]
        z = torch.randn(n, self.noise_dim, generator=torch.Generator().manual_seed(EVAL_SEED)).to(data)
        samples = self.generator(z).detach()
        for key, value in sample_distances(samples, data).items():
            self.log(f"{stage}/{key}", value)
        self.log(f"{stage}/field_sq", normalized_drift_loss(samples, data, self.kernel, self.temperatures)[1])
        self.log(f"{stage}/overlap_ratio", overlap_ratio(samples, data, self.kernel, self.overlap_scale))
        return samples, data

    def _figure(self, samples: torch.Tensor, data: torch.Tensor) -> None:
        """``samples``: generated points over held-out ones (2-D) or a grid of generated 8x8 images (64-D)."""
        if self.dim == 2:
            with figure(self.trainer, "samples", figsize=(4, 4)) as (_, ax):
                scatter_samples(ax, samples, data, "generated")
        elif self.dim == 64:
            with figure(self.trainer, "samples", 4, 8, figsize=(8, 4)) as (_, axes):
                image_grid(axes, samples, side=8)


def overlap_ratio(samples: torch.Tensor, data: torch.Tensor, kernel: KernelName, scale: float) -> torch.Tensor:
    """Phi(q) / Phi(p): Phi(q) = mean k(x_i, y_j) over generated x and held-out y; Phi(p) from the two halves of the
    held-out set. Kernel length = ``scale`` x mean pairwise held-out distance."""
    half = len(data) // 2
    ell = scale * torch.cdist(data, data).mean().item()
    return kernel_overlap(samples, data, kernel, ell) / kernel_overlap(data[:half], data[half:], kernel, ell)

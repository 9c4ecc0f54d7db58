"""The LightningModule: CFM training, deterministic validation, and exact-grid sampling diagnostics at test time."""

from __future__ import annotations

from typing import Literal, Protocol

import torch
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable

from framework.figures import figure, image_grid, scatter_samples
from framework.metrics import moment_matched_gaussian, sample_distances, w2_empirical
from framework.module import FrameworkModule, default_optimizer
from framework_plugins.flow_matching.analytic import GaussianMixture, loglog_slope
from framework_plugins.flow_matching.cfm import cfm_loss
from framework_plugins.flow_matching.lipschitz import lipschitz_profile
from framework_plugins.flow_matching.samplers import SAMPLERS, euler_sample, heun_sample
from framework_plugins.flow_matching.velocity import VelocityMLP

REFERENCE_STEPS = 256  # Heun steps of the reference solution for the learned field's Euler error
SLOPE_MIN_STEPS = 8  # test/euler_error_slope fits the Euler error over the step counts >= this (the asymptotic range)
EVAL_SEED = 2024  # seeds validation noise and test-time sampling, so metrics are comparable across runs


class FlowMatchingInputs(Protocol):
    """What :class:`FlowMatching` reads from its datamodule (:class:`FlowMatchingData` provides it)."""

    dim: int  # the data dimension d; must equal the model's
    law: GaussianMixture | None  # the exact target law (float64) when it is analytic, for velocity diagnostics


class FlowMatching(FrameworkModule):
    """Conditional flow matching with an MLP velocity field.

    Logs ``train/loss``, ``val/loss``, ``test/loss`` and, from ``eval_samples`` samples drawn with ``sampler`` in
    ``sample_steps`` steps: ``test/w2`` (exact assignment W2 to held-out data), ``test/sliced_w2``,
    ``test/energy``, ``test/mmd``, the same for a Gaussian moment-matched to the held-out data
    (``test/*_gaussian_baseline``); for each Euler step count k in ``w2_steps``: ``test/w2_N<k>`` and
    ``test/euler_error_N<k>``, the RMS distance between k-step Euler and a 256-step Heun solution of the *learned*
    field from the same noise (an upper bound on W2 to the learned flow's law, isolating discretisation error;
    figure ``w2_vs_steps``), and ``test/euler_error_slope``, its log-log slope in k over k >= 8 (-1 for a
    first-order solver); ``test/lipschitz_max`` (figure ``lipschitz_vs_t``); and, when the data has an
    analytic law, ``test/velocity_rel_mse`` = E||v_theta - u||^2 / E||u||^2 over t ~ U[0, 1], x ~ p_t. The figure
    ``samples`` (2-D or 8x8 image data) at the end of fit (against validation points) and of test.

    Args:
        dim: data dimension (must match the data).
        hidden: width of the velocity MLP's hidden layers (>= 1).
        depth: number of hidden SiLU layers of the velocity MLP (>= 1).
        time_frequencies: Fourier frequencies f = 1..n of the time features [t, sin(2 pi f t), cos(2 pi f t)].
        sampler: ``euler`` or ``heun``.
        sample_steps: N for test metrics and ``predict``.
        eval_samples: samples (and held-out points) used by the test metrics.
        w2_steps: Euler step counts for the W2-vs-N curve; null = 1, 2, 4, ..., 64.
        lipschitz_points: path points per time at which the Jacobian norm is measured.
        optimizer: callable params -> torch.optim.Optimizer, given this module's named parameter groups (YAML:
            ``class_path`` with ``init_args``); default AdamW(lr=1e-3).
        lr_scheduler: callable optimizer -> LR scheduler, stepped after every optimizer step (YAML: ``class_path``
            with ``init_args``); null = constant learning rate.
    """

    def __init__(
        self,
        dim: int = 2,
        hidden: int = 128,
        depth: int = 3,
        time_frequencies: int = 8,
        sampler: Literal["euler", "heun"] = "euler",
        sample_steps: int = 64,
        eval_samples: int = 1000,
        w2_steps: list[int] | None = None,
        lipschitz_points: int = 128,
        optimizer: OptimizerCallable = default_optimizer,
        lr_scheduler: LRSchedulerCallable | None = None,
    ) -> None:
        super().__init__(optimizer=optimizer, lr_scheduler=lr_scheduler)
        self.save_hyperparameters(ignore=["optimizer", "lr_scheduler"])
        self.dim = dim
        self.velocity = VelocityMLP(dim, hidden, depth, time_frequencies)
        self.sampler = SAMPLERS[sampler]
        self.sample_steps = sample_steps
        self.eval_samples = eval_samples
        self.w2_steps = w2_steps if w2_steps is not None else [1, 2, 4, 8, 16, 32, 64]
        self.lipschitz_points = lipschitz_points
        self._test_data: list[torch.Tensor] = []
        self._val_data: list[torch.Tensor] = []

    def setup(self, stage: str) -> None:
        self._data = self.data(FlowMatchingInputs)
        data_dim = self._data.dim
        if data_dim != self.dim:
            raise ValueError(
                f"model.init_args.dim={self.dim} but the data is {data_dim}-dimensional; set model.init_args.dim: "
                f"{data_dim}."
            )

    def forward(self, x: torch.Tensor, t: torch.Tensor | float) -> torch.Tensor:
        return self.velocity(x, t)

    def training_step(self, batch: list[torch.Tensor], batch_idx: int) -> torch.Tensor:
        loss = cfm_loss(self.velocity, batch[0])
        self.log("train/loss", loss, prog_bar=True)
        return loss

    def _eval_loss(self, x1: torch.Tensor, batch_idx: int) -> torch.Tensor:
        return cfm_loss(self.velocity, x1, torch.Generator().manual_seed(EVAL_SEED + batch_idx))

    def on_validation_epoch_start(self) -> None:
        self._val_data = []

    def validation_step(self, batch: list[torch.Tensor], batch_idx: int) -> None:
        self.log("val/loss", self._eval_loss(batch[0], batch_idx), prog_bar=True, sync_dist=True)
        if sum(map(len, self._val_data)) < self.eval_samples:  # this process's held-out points for the fit figure
            self._val_data.append(batch[0].detach())

    def on_fit_end(self) -> None:
        """The figure ``samples`` of the trained field against (this process's) validation points."""
        if self._val_data:
            held_out = torch.cat(self._val_data)[: self.eval_samples]
            noise = torch.randn(len(held_out), self.dim, generator=torch.Generator().manual_seed(EVAL_SEED))
            self._samples_figure(self.sample(noise.to(held_out)), held_out)

    def on_test_epoch_start(self) -> None:
        self._test_data = []

    def test_step(self, batch: list[torch.Tensor], batch_idx: int) -> None:
        self.log("test/loss", self._eval_loss(batch[0], batch_idx), sync_dist=True)
        self._test_data.append(batch[0])

    def predict_step(self, batch: list[torch.Tensor], batch_idx: int) -> torch.Tensor:
        return self.sample(batch[0])

    @torch.no_grad()
    def sample(self, noise: torch.Tensor, n_steps: int | None = None, return_path: bool = False) -> torch.Tensor:
        """Push ``noise: (n, d)`` through the configured sampler with ``n_steps`` (default ``sample_steps``)."""
        return self.sampler(self.velocity, noise, n_steps or self.sample_steps, return_path=return_path)

    def on_test_epoch_end(self) -> None:
        held_out = self.gather_rows(self._test_data)
        n = min(len(held_out), self.eval_samples)
        held_out = held_out[:n]
        noise = torch.randn(n, self.dim, generator=torch.Generator().manual_seed(EVAL_SEED)).to(held_out)
        samples = self.sample(noise)
        for key, value in sample_distances(samples, held_out).items():
            self.log(f"test/{key}", value)
        for key, value in sample_distances(moment_matched_gaussian(held_out, EVAL_SEED + 1), held_out).items():
            self.log(f"test/{key}_gaussian_baseline", value)
        reference = heun_sample(self.velocity, noise, REFERENCE_STEPS).detach()
        w2_curve, euler_error = [], []
        for k in self.w2_steps:
            euler = euler_sample(self.velocity, noise, k).detach()
            w2_curve.append(w2_empirical(euler, held_out).item())
            euler_error.append((euler - reference).pow(2).sum(1).mean().sqrt().item())
            self.log(f"test/w2_N{k}", w2_curve[-1])
            self.log(f"test/euler_error_N{k}", euler_error[-1])
        tail = [(k, e) for k, e in zip(self.w2_steps, euler_error, strict=True) if k >= SLOPE_MIN_STEPS and e > 0]
        if len(tail) >= 2:
            self.log("test/euler_error_slope", loglog_slope(*zip(*tail, strict=True)))
        law = self._data.law
        if law is not None:
            self.log("test/velocity_rel_mse", velocity_relative_mse(self.velocity, law, EVAL_SEED + 2))
        path = self.sampler(self.velocity, noise[: self.lipschitz_points], 16, return_path=True).detach()
        lipschitz = lipschitz_profile(self.velocity, path).detach()
        self.log("test/lipschitz_max", lipschitz.max())
        self._figures(w2_curve, euler_error, lipschitz, samples, held_out)

    def _figures(
        self,
        w2_curve: list[float],
        euler_error: list[float],
        lipschitz: torch.Tensor,
        samples: torch.Tensor,
        data: torch.Tensor,
    ) -> None:
        with figure(self.trainer, "w2_vs_steps", figsize=(4, 3)) as (_, ax):
            ax.loglog(self.w2_steps, w2_curve, "o-", label="W2(Euler samples, held-out)")
            ax.loglog(self.w2_steps, euler_error, "s-", label=f"RMS |Euler - Heun{REFERENCE_STEPS}| (same noise)")
            ax.loglog(self.w2_steps, [euler_error[0] / k for k in self.w2_steps], "k--", lw=0.8, label="slope -1")
            ax.set(xlabel="Euler steps N", ylabel="distance", title="Learned field: Euler error vs N")
            ax.legend()
        with figure(self.trainer, "lipschitz_vs_t", figsize=(4, 3)) as (_, ax):
            ax.plot(torch.linspace(0, 1, len(lipschitz)).tolist(), lipschitz.cpu().tolist(), "o-")
            ax.set(xlabel="t", ylabel="max ||D_x v(x, t)||_2", title="Empirical Lipschitz constant")
        self._samples_figure(samples, data)

    def _samples_figure(self, samples: torch.Tensor, data: torch.Tensor) -> None:
        """``samples``: over held-out points (2-D) or a grid of 8x8 images (64-D); nothing for other dims."""
        if self.dim == 2:
            with figure(self.trainer, "samples", figsize=(4, 4)) as (_, ax):
                scatter_samples(ax, samples, data, "samples")
        elif self.dim == 64:
            with figure(self.trainer, "samples", 4, 8, figsize=(8, 4)) as (_, axes):
                image_grid(axes, samples, side=8)


@torch.no_grad()
def velocity_relative_mse(velocity: torch.nn.Module, law: GaussianMixture, seed: int, n: int = 4096) -> torch.Tensor:
    """E ||v_theta(x_t, t) - u_t(x_t)||^2 / E ||u_t(x_t)||^2 with t ~ U[0, 1], x_t = (1 - t) x0 + t x1, x1 ~ law."""
    gen = torch.Generator().manual_seed(seed)
    x1 = law.sample(n, gen)
    x0 = torch.randn(x1.shape, generator=gen, dtype=x1.dtype)
    t = torch.rand(n, generator=gen, dtype=x1.dtype)
    xt = (1 - t[:, None]) * x0 + t[:, None] * x1
    exact = law.velocity(xt, t)
    device = next(velocity.parameters()).device
    learned = velocity(xt.float().to(device), t.float().to(device)).double().cpu()
    return (learned - exact).pow(2).sum(1).mean() / exact.pow(2).sum(1).mean()

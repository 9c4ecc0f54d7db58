"""Data for decoupled descent: (x, y, index) splits, full-batch training, the noise variance Delta and (Gaussian
mixture only) the snr the state evolution needs."""

from __future__ import annotations

from typing import Literal

import torch

from framework.data import TensorSplitsDataModule
from framework.optim.decoupled_descent import estimate_noise_var, standardize
from framework_plugins.decoupled_descent.real_data import (
    binary_labels,
    cifar10,
    mnist,
    random_features,
    sklearn_digits,
)
from framework_plugins.decoupled_descent.simulators import gaussian_mixture, signal_directions, xor_mixture

Task = Literal["gmm", "xor", "digits", "mnist", "probe_digits", "probe_cifar10"]
TASKS = ("gmm", "xor", "digits", "mnist", "probe_digits", "probe_cifar10")


class DecoupledDescentData(TensorSplitsDataModule):
    """Binary tasks with y in {-1, +1}; every split is ``(x, y, index)`` so per-sample state lines up by index.

    Tasks: ``gmm`` (x = y v / sqrt(d) + sqrt(Delta) z), ``xor`` (four clusters +-mu_1 -> +1, +-mu_2 -> -1), both
    with fresh val/test draws (``signal`` holds the gmm's v after setup); ``digits`` (scikit-learn digits,
    standardized, plus ``pixel_noise`` x N(0, 1)); ``mnist`` (the same from idx files in ``path``);
    ``probe_digits`` / ``probe_cifar10`` (frozen random tanh features, ``dim`` of them, of standardized digits /
    CIFAR-10 from ``path``). Real tasks draw disjoint seeded train / val / test subsets and estimate Delta on the
    training split.

    Args:
        task: ``gmm`` or ``xor`` (simulated), ``digits`` or ``mnist`` (pixels), ``probe_digits`` or
            ``probe_cifar10`` (random features); see above.
        dim: d for simulated tasks and the number of random features for probing (digits: 64, mnist: 784).
        n_train: training samples (>= 1); also the batch size when ``batch_size`` is null.
        n_val: validation samples (>= 1).
        n_test: test samples (>= 1); real tasks need n_train + n_val + n_test <= the number of images.
        snr: ||v||^2 / d (gmm) or ||mu_c||^2 / d (xor).
        noise_var: Delta of the simulated tasks.
        pixel_noise: std of the Gaussian noise added to standardized pixels (digits, mnist).
        positive_classes: classes labelled +1 (real tasks).
        path: directory with the MNIST idx files or the CIFAR-10 python batches.
        batch_size: training batch size; None = n_train (full batch, what decoupled descent needs).
        seed: seeds simulation, subsets, noise and random features.
    """

    def __init__(
        self,
        task: Task = "gmm",
        dim: int = 1000,
        n_train: int = 2000,
        n_val: int = 2000,
        n_test: int = 2000,
        snr: float = 1.0,
        noise_var: float = 1.0,
        pixel_noise: float = 1.0,
        positive_classes: tuple[int, ...] = (0, 2, 4, 6, 8),
        path: str = "data",
        batch_size: int | None = None,
        seed: int = 0,
    ) -> None:
        super().__init__(batch_size or n_train, seed)
        if task not in TASKS:
            raise ValueError(f"data.init_args.task={task!r} is unknown; choose one of {TASKS}.")
        fixed = {"digits": 64, "mnist": 784}.get(task)
        if fixed is not None and dim != fixed:
            raise ValueError(f"data.init_args.dim={dim} but task={task!r} has {fixed} features; set dim: {fixed}.")
        if min(n_train, n_val, n_test) < 1:
            raise ValueError(f"data.init_args n_train={n_train}, n_val={n_val}, n_test={n_test} must all be >= 1.")
        self.save_hyperparameters()
        self.task, self.dim, self.sizes = task, dim, (n_train, n_val, n_test)
        self.snr_value, self.simulated_noise_var, self.pixel_noise = snr, noise_var, pixel_noise
        self.positive_classes, self.path = list(positive_classes), path
        self.noise_var: float = noise_var
        self.snr: float | None = snr if task == "gmm" else None
        self.signal: torch.Tensor | None = None  # gmm: the signal v (d,), float64, set by setup
        self.means: torch.Tensor | None = None  # xor: the cluster means (mu_1, mu_2) (2, d), float64, set by setup

    @property
    def n_train(self) -> int:
        return self.sizes[0]

    @property
    def n_features(self) -> int:
        return self.dim

    def setup(self, stage: str | None = None) -> None:
        if self.splits:
            return
        x, y = self._simulate() if self.task in ("gmm", "xor") else self._real()
        n_train, n_val, _ = self.sizes
        bounds = {"train": (0, n_train), "val": (n_train, n_train + n_val), "test": (n_train + n_val, len(x))}
        self.splits = {name: (x[a:b].float(), y[a:b].float(), torch.arange(b - a)) for name, (a, b) in bounds.items()}

    def _simulate(self) -> tuple[torch.Tensor, torch.Tensor]:
        count = 1 if self.task == "gmm" else 2
        signal = signal_directions(self.dim, count, self.snr_value, self.seed)
        self.signal = signal[0] if self.task == "gmm" else None
        self.means = signal if self.task == "xor" else None
        draws = [
            gaussian_mixture(n, signal[0], self.simulated_noise_var, self.seed + 1 + k, torch.float32)
            if self.task == "gmm"
            else xor_mixture(n, signal, self.simulated_noise_var, self.seed + 1 + k, torch.float32)
            for k, n in enumerate(self.sizes)
        ]
        return torch.cat([d[0] for d in draws]), torch.cat([d[1] for d in draws])

    def _real(self) -> tuple[torch.Tensor, torch.Tensor]:
        if self.task in ("digits", "probe_digits"):
            images, classes = sklearn_digits()
        else:
            images, classes = mnist(self.path) if self.task == "mnist" else cifar10(self.path)
        total = sum(self.sizes)
        if total > len(images):
            raise ValueError(
                f"data.init_args n_train + n_val + n_test = {total} exceeds the {len(images)} images of "
                f"task={self.task!r}; lower the split sizes."
            )
        gen = torch.Generator().manual_seed(self.seed)
        pick = torch.randperm(len(images), generator=gen)[:total]
        x, y = images[pick], binary_labels(classes[pick], self.positive_classes)
        x = standardize(x, x[: self.n_train])
        if self.task.startswith("probe"):
            features = random_features(x, self.dim, self.seed)
            x = standardize(features, features[: self.n_train])
        else:
            x = x + self.pixel_noise * torch.randn(x.shape, generator=gen, dtype=x.dtype)
        self.noise_var = estimate_noise_var(x[: self.n_train], y[: self.n_train])
        return x, y

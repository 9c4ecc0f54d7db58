"""Data for generative drifting: 2-D toys, Gaussian mixtures in any d, scikit-learn digits (all built in)."""

from __future__ import annotations

from typing import Literal

import torch

from framework.data import TensorSplitsDataModule
from framework.data.toys import TOY_2D, digits, gaussian_mixture, mixture_means, toy_2d

TARGETS = ("gmm", *TOY_2D, "digits")
Target = Literal["gmm", "moons", "circles", "checkerboard", "spirals", "digits"]  # the names of TARGETS


class DriftingData(TensorSplitsDataModule):
    """Samples of the target law p, split train / val / test (digits: a seeded 80/10/10 split of the 1,797 images).

    Args:
        target: ``gmm`` (``n_components`` modes, on a circle in 2-D), ``moons``, ``circles`` (rings),
            ``checkerboard``, ``spirals`` or ``digits`` (64-d).
        dim: data dimension (2 for toys, 64 for digits, any for gmm).
        n_train: training samples of a simulated target (digits: ignored, 80% of the images).
        n_val: validation samples of a simulated target (digits: ignored, 10%).
        n_test: test samples of a simulated target (digits: ignored, 10%).
        batch_size: data (positive) samples per training step.
        seed: seeds simulation, split and shuffling.
        n_components: gmm: number of equal-weight components.
        spread: gmm: radius of the circle of component means in 2-D; in d > 2 the means are N(0, spread^2 / d I).
        component_std: gmm: standard deviation of each isotropic component.
    """

    def __init__(
        self,
        target: Target = "gmm",
        dim: int = 2,
        n_train: int = 16384,
        n_val: int = 1000,
        n_test: int = 1000,
        batch_size: int = 1024,
        seed: int = 0,
        n_components: int = 8,
        spread: float = 4.0,
        component_std: float = 0.5,
    ) -> None:
        super().__init__(batch_size, seed)
        if target not in TARGETS:
            raise ValueError(f"data.init_args.target={target!r} is unknown; choose one of {TARGETS}.")
        expected = {"digits": 64, **dict.fromkeys(TOY_2D, 2)}.get(target)
        if expected is not None and dim != expected:
            raise ValueError(f"data.init_args.dim={dim} but target={target!r} is {expected}-dimensional.")
        self.save_hyperparameters()
        self.target, self.dim = target, dim
        self.sizes = (n_train, n_val, n_test)
        self.gmm = (n_components, spread, component_std)

    def setup(self, stage: str | None = None) -> None:
        if self.splits:
            return
        if self.target == "digits":
            data = digits()[torch.randperm(1797, generator=torch.Generator().manual_seed(self.seed))]
            n_train, n_val, n_test = len(data) - 2 * (len(data) // 10), len(data) // 10, len(data) // 10
        else:
            n_train, n_val, n_test = self.sizes
            total = n_train + n_val + n_test
            if self.target == "gmm":
                n_components, spread, std = self.gmm
                data = gaussian_mixture(total, mixture_means(self.dim, n_components, spread, self.seed), std, self.seed)
            else:
                data = toy_2d(self.target, total, self.seed)
        self.splits = {
            "train": (data[:n_train],),
            "val": (data[n_train : n_train + n_val],),
            "test": (data[n_train + n_val : n_train + n_val + n_test],),
        }

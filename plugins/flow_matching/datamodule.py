"""Data for flow matching: simulated targets (seeded) and scikit-learn digits, split into train/val/test."""

from __future__ import annotations

import torch
from torch.utils.data import DataLoader, TensorDataset

from framework.data import TensorSplitsDataModule, make_loader
from framework_plugins.flow_matching.analytic import GaussianMixture
from framework_plugins.flow_matching.targets import (
    ANALYTIC_TARGETS,
    TARGETS,
    TOY_TARGETS,
    Target,
    analytic_target,
    digits,
    toy_2d,
)


class FlowMatchingData(TensorSplitsDataModule):
    """Samples x1 from a target; ``predict`` yields fixed N(0, I) noise to push through the sampler.

    Args:
        target: one of gaussian, anisotropic_gaussian, gmm (analytic laws), moons, circles, checkerboard,
            spirals (2-D toys), digits (64-d, scikit-learn).
        dim: data dimension (fixed to 2 for toys and 64 for digits).
        n_train: training samples of a simulated target (digits: ignored, the images left after val and test).
        n_val: validation samples of a simulated target (digits: ignored, 10% of the 1,797 images).
        n_test: test samples of a simulated target (digits: ignored, 10% of the images).
        n_predict: number of noise vectors for ``framework predict``.
        batch_size: training batch size.
        seed: seeds the simulation, the split and the shuffling.
        n_components: gmm: number of equal-weight components.
        spread: gmm: radius of the circle of component means in 2-D; in d > 2 the means are N(0, spread^2 / d I).
        component_std: gmm: standard deviation of each isotropic component.
    """

    def __init__(
        self,
        target: Target = "gmm",
        dim: int = 2,
        n_train: int = 8192,
        n_val: int = 1024,
        n_test: int = 1024,
        n_predict: int = 256,
        batch_size: int = 256,
        seed: int = 0,
        n_components: int = 8,
        spread: float = 4.0,
        component_std: float = 0.5,
    ) -> None:
        super().__init__(batch_size, seed)
        if target not in TARGETS:
            raise ValueError(f"data.init_args.target={target!r} is unknown; choose one of {TARGETS}.")
        expected = {"digits": 64, **dict.fromkeys(TOY_TARGETS, 2)}.get(target)
        if expected is not None and dim != expected:
            raise ValueError(
                f"data.init_args.dim={dim} but target={target!r} is {expected}-dimensional; set dim: {expected}."
            )
        self.save_hyperparameters()
        self.target = target
        self.dim = dim
        self.sizes = (n_train, n_val, n_test)
        self.n_predict = n_predict
        self.gmm = {"n_components": n_components, "spread": spread, "component_std": component_std}

    @property
    def law(self) -> GaussianMixture | None:
        """The exact target law for analytic targets (float64), else None."""
        if self.target not in ANALYTIC_TARGETS:
            return None
        return analytic_target(self.target, self.dim, self.seed, **self.gmm)

    def setup(self, stage: str | None = None) -> None:
        if self.splits:
            return
        if self.target == "digits":
            data = digits()
            perm = torch.randperm(len(data), generator=torch.Generator().manual_seed(self.seed))
            n_test = n_val = len(data) // 10
            data = data[perm]
            self.splits = {
                "test": (data[:n_test],),
                "val": (data[n_test : n_test + n_val],),
                "train": (data[n_test + n_val :],),
            }
            return
        total = sum(self.sizes)
        if self.target in TOY_TARGETS:
            data = toy_2d(self.target, total, self.seed)
        else:
            data = self.law.sample(total, torch.Generator().manual_seed(self.seed)).float()
        n_train, n_val, _ = self.sizes
        self.splits = {
            "train": (data[:n_train],),
            "val": (data[n_train : n_train + n_val],),
            "test": (data[n_train + n_val :],),
        }

    def predict_dataloader(self) -> DataLoader:
        noise = torch.randn(self.n_predict, self.dim, generator=torch.Generator().manual_seed(self.seed + 1))
        return make_loader(TensorDataset(noise), self.batch_size, shuffle=False, seed=self.seed)

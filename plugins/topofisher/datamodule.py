"""Seed-matched simulations served as (1 + 2p, *shape) items: fiducial, theta + dtheta_a / 2, theta - dtheta_a / 2."""

from __future__ import annotations

from torch.utils.data import DataLoader, TensorDataset

from framework.data import TensorSplitsDataModule, make_loader
from plugins.topofisher.simulators import GRF, Simulator

SPLIT_OFFSETS = {"train": 0, "val": 4_000_000, "test": 7_000_000}


class TopoFisherData(TensorSplitsDataModule):
    """Train / val / test splits of seed-matched simulations, simulated once in ``setup``.

    Seeds of split s are ``seed * 10^7 + offset_s + i`` (disjoint across splits), so every split is reproducible
    on its own and the data never touch the global RNG. Item i of a split is a tensor (1 + 2p, *shape):
    ``simulator.seed_matched`` of seed i. A batch is therefore a set of seed-matched Fisher simulations.

    Args:
        simulator: a :class:`~plugins.topofisher.simulators.Simulator` (GRF, NoisySpiral, LognormalLensing).
        n_train, n_val, n_test: seeds per split.
        batch_size: seeds per training step (the Fisher matrix of a step is estimated from them).
        seed: base seed.
    """

    def __init__(
        self, simulator: Simulator | None = None, n_train: int = 512, n_val: int = 256, n_test: int = 256,
        batch_size: int = 64, seed: int = 0,
    ) -> None:  # fmt: skip
        super().__init__(batch_size, seed)
        for name, value in (("n_train", n_train), ("n_val", n_val), ("n_test", n_test)):
            if not 0 < value < 3_000_000:
                raise ValueError(f"data.init_args.{name}={value} must lie in [1, 3e6).")
        self.simulator = simulator if simulator is not None else GRF()
        self.sizes = {"train": n_train, "val": n_val, "test": n_test}

    def split_seeds(self, split: str) -> list[int]:
        """The simulation seeds of one split."""
        base = self.seed * 10_000_000 + SPLIT_OFFSETS[split]
        return list(range(base, base + self.sizes[split]))

    def setup(self, stage: str | None = None) -> None:
        if self.splits:
            return
        self.splits = {s: (self.simulator.seed_matched(self.split_seeds(s)),) for s in self.sizes}

    def train_dataloader(self) -> DataLoader:
        """Shuffled, seeded batches; the last partial batch is dropped (every Fisher estimate uses a full batch)."""
        dataset = TensorDataset(*self.splits["train"])
        return make_loader(dataset, self.batch_size, shuffle=True, seed=self.seed, drop_last=True)

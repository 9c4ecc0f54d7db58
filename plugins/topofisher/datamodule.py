"""Seed-matched simulations served as (1 + 2p, *shape) items: fiducial, theta + dtheta_a / 2, theta - dtheta_a / 2."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset

from framework.data import MemoizedDataset, TensorSplitsDataModule, make_loader
from framework_plugins.topofisher.simulators import GRF, Simulator

SPLIT_OFFSETS = {"train": 0, "val": 4_000_000, "test": 7_000_000}
SEEDS_PER_BASE_SEED = 10_000_000

# The simulations and memoized items of the last datamodule config simulated in this process, taken over by the next
# datamodule of the same config (the fit, test and predict of one run, the checks of the conformance suite): one
# config only, so at most one data set stays in memory after its datamodule is gone.
_LAST_SIMULATED: dict[str, Any] = {}


def split_seeds(seed: int, split: str, n: int) -> range:
    """Simulation seeds ``seed * 10^7 + offset_split + i``, i < n: disjoint across splits while n < 3e6."""
    base = seed * SEEDS_PER_BASE_SEED + SPLIT_OFFSETS[split]
    return range(base, base + n)


class TopoFisherData(TensorSplitsDataModule):
    """Train / val / test splits of seed-matched simulations, simulated once in ``setup``.

    Seeds of split s are ``seed * 10^7 + offset_s + i`` (disjoint across splits), so every split is reproducible
    on its own and the data never touch the global RNG. Item i of a split is a tensor (1 + 2p, *shape):
    ``simulator.seed_matched`` of seed i. A batch is therefore a set of seed-matched Fisher simulations.
    After :meth:`memoize` (called by a model whose front end is frozen), items are ``fn(simulations)`` instead,
    computed when first drawn and kept; ``splits`` always holds the simulations.

    Built from a config (every simulator given as class_path / init_args), a datamodule takes over the simulations of
    the last datamodule of the same config in this process, and the memoized items of a function with the same
    ``key``: simulations depend only on the simulator, the seeds and the sizes, so a run's fit, test and predict
    simulate once.

    ``test_simulators`` adds named test sets: the test split's seeds simulated by another simulator (e.g. Gaussian
    maps with the lognormal maps' C_l, a simulator shift), split ``test_<name>``, served after the test split as
    further test loaders in the order given (one that simulates exactly the test split shares its memoized items).

    Args:
        simulator: a :class:`~framework_plugins.topofisher.simulators.Simulator` (GRF, NoisySpiral, TomographicLensing).
        n_train: training seeds (seed-matched simulation sets), in [1, 3e6).
        n_val: validation seeds, in [1, 3e6).
        n_test: test seeds, in [1, 3e6).
        batch_size: seeds per training step (the Fisher matrix of a step is estimated from them).
        seed: base seed.
        test_simulators: name -> simulator of an extra test set (same parameters and dtheta as ``simulator``).
    """

    def __init__(
        self,
        simulator: Simulator | None = None,
        n_train: int = 512,
        n_val: int = 256,
        n_test: int = 256,
        batch_size: int = 64,
        seed: int = 0,
        test_simulators: dict[str, Simulator] | None = None,
    ) -> None:
        super().__init__(batch_size, seed)
        self.save_hyperparameters()  # from a config, simulators are saved as their class_path/init_args
        for key in ("simulator", "test_simulators"):  # objects built in Python are not (checkpoints hold no code)
            if not _plain(self.hparams.get(key)):
                del self.hparams[key]
        for name, value in (("n_train", n_train), ("n_val", n_val), ("n_test", n_test)):
            if not 0 < value < 3_000_000:
                raise ValueError(f"data.init_args.{name}={value} must lie in [1, 3e6).")
        self.simulator = simulator if simulator is not None else GRF()
        self.test_simulators = dict(test_simulators or {})
        for name, other in self.test_simulators.items():
            if not torch.equal(other.thetas(), self.simulator.thetas()):
                raise ValueError(
                    f"data.init_args.test_simulators.{name} simulates at theta_fid={other.theta_fid.tolist()}, "
                    f"dtheta={other.dtheta.tolist()}; it must match the simulator's "
                    f"{self.simulator.theta_fid.tolist()}, {self.simulator.dtheta.tolist()}."
                )
        self.sizes = {"train": n_train, "val": n_val, "test": n_test}
        self.item_fn: Callable[[torch.Tensor], tuple[torch.Tensor, ...]] | None = None
        self.item_key: Callable[[], str | None] | None = None
        self.ragged_dim: int | None = None
        self._memoized: dict[str, MemoizedDataset] = {}
        self._same_as: dict[str, str] = {}  # split -> the split holding the same simulations
        self._shared_rows: dict[tuple, dict] | None = None  # (item key, ragged_dim, split) -> rows, of this config

    def memoize(
        self,
        fn: Callable[[torch.Tensor], tuple[torch.Tensor, ...]],
        ragged_dim: int | None = None,
        key: Callable[[], str | None] | None = None,
    ) -> None:
        """Serve ``fn(items)`` (a batch of simulations (b, 1 + 2p, *shape) -> tuple of tensors with first dim b,
        NaN-padded along ``ragged_dim``) instead of the simulations, each item computed once
        (:class:`~framework.data.MemoizedDataset`). ``key()``, read when a split's dataset is first built, names
        what ``fn`` computes (equal keys: equal items); datamodules of the same config share the items of equal
        keys. No key (or a None key): nothing is shared."""
        if (fn, ragged_dim) != (self.item_fn, self.ragged_dim):
            self.item_fn, self.ragged_dim, self._memoized = fn, ragged_dim, {}
        self.item_key = key

    def dataset(self, split: str) -> Dataset:
        if self.item_fn is None:
            return super().dataset(split)
        split = self._same_as.get(split, split)
        if split not in self._memoized:
            item_key = self.item_key() if self.item_key is not None else None
            rows = None
            if item_key is not None and self._shared_rows is not None:
                rows = self._shared_rows.setdefault((item_key, self.ragged_dim, split), {})
            self._memoized[split] = MemoizedDataset(self.splits[split][0], self.item_fn, self.ragged_dim, cache=rows)
        return self._memoized[split]

    def split_seeds(self, split: str) -> list[int]:
        """The simulation seeds of one split (:func:`split_seeds`)."""
        return list(split_seeds(self.seed, split, self.sizes[split]))

    def items(self, split: str, start: int, stop: int) -> list[torch.Tensor]:
        """Items start..stop-1 of a split (clipped to its size), batched as its loader serves them: the simulations
        (n, 1 + 2p, *shape), or the memoized tensors after :meth:`memoize`."""
        dataset = self.dataset(split)  # both kinds fetch whole batches (the loaders' batched fetch)
        return list(dataset.__getitems__(list(range(start, min(stop, len(dataset))))))

    def config_key(self) -> str | None:
        """What the simulations depend on (class, simulators as config, sizes, seed) as a string; None when a
        simulator was built in Python (it has no config to compare)."""
        if "simulator" not in self.hparams or "test_simulators" not in self.hparams:
            return None
        fields = ("simulator", "test_simulators", "n_train", "n_val", "n_test", "seed")
        return json.dumps([type(self).__qualname__, {k: self.hparams[k] for k in fields}], sort_keys=True)

    def setup(self, stage: str | None = None) -> None:
        if self.splits:
            return
        key = self.config_key()
        if key is not None and _LAST_SIMULATED.get("key") == key:
            self.splits, self._same_as = dict(_LAST_SIMULATED["splits"]), dict(_LAST_SIMULATED["same_as"])
            self._shared_rows = _LAST_SIMULATED["rows"]
            return
        self.splits = {s: (self.simulator.seed_matched(self.split_seeds(s)),) for s in self.sizes}
        for name, simulator in self.test_simulators.items():
            sims = simulator.seed_matched(self.split_seeds("test"))
            if torch.equal(sims, self.splits["test"][0]):
                self._same_as[f"test_{name}"] = "test"
            self.splits[f"test_{name}"] = (sims,)
        if key is not None:
            self._shared_rows = {}
            _LAST_SIMULATED.clear()
            _LAST_SIMULATED.update(
                key=key, splits=dict(self.splits), same_as=dict(self._same_as), rows=self._shared_rows
            )

    def test_dataloader(self) -> DataLoader | list[DataLoader]:
        """The test split, then one loader per entry of ``test_simulators`` (ordered, unshuffled)."""
        if not self.test_simulators:
            return self.loader("test")
        return [self.loader("test"), *(self.loader(f"test_{name}") for name in self.test_simulators)]

    def train_dataloader(self) -> DataLoader:
        """Shuffled, seeded batches; the last partial batch is dropped (every Fisher estimate uses a full batch)."""
        return make_loader(self.dataset("train"), self.batch_size, shuffle=True, seed=self.seed, drop_last=True)


def _plain(value: object) -> bool:
    """Whether ``value`` is config data (None, numbers, strings and lists / dicts of them), not an object."""
    if isinstance(value, dict):
        return all(_plain(v) for v in value.values())
    if isinstance(value, list | tuple):
        return all(_plain(v) for v in value)
    return value is None or isinstance(value, str | int | float | bool)

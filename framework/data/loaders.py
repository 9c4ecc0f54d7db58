"""DataLoaders whose batch order depends only on (seed, epoch), so a run resumed at an epoch boundary is exact."""

from __future__ import annotations

from collections.abc import Iterator, Sized

import torch
from torch.utils.data import DataLoader, Dataset, RandomSampler, TensorDataset


class EpochSeededSampler(RandomSampler):
    """A random permutation drawn from ``Generator().manual_seed(seed + epoch)``.

    Lightning calls ``set_epoch`` at the start of every epoch, so the order of epoch ``e`` is the same whether the
    run started at epoch 0 or resumed at ``e``: a run resumed from an epoch-boundary checkpoint is bit-identical.
    A mid-epoch checkpoint (e.g. with ``val_check_interval < 1``) resumes with that epoch's order restarted
    (Lightning warns that the loader is not resumable). It subclasses ``RandomSampler`` so that Lightning sees it
    as shuffling and, under DDP, swaps in a ``DistributedSampler(shuffle=True)``, seeded by Lightning with the global
    seed (``seed_everything``), not with ``seed``.
    """

    def __init__(self, data_source: Sized, seed: int) -> None:
        super().__init__(data_source)
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self) -> Iterator[int]:
        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        yield from torch.randperm(len(self.data_source), generator=generator).tolist()


class BatchedTensorDataset(TensorDataset):
    """A ``TensorDataset`` that serves a whole batch with one indexing op per tensor.

    DataLoader's fetcher calls ``__getitems__(indices)`` when it exists; returning ``tuple(t[indices])`` replaces
    ``batch_size`` Python-level ``__getitem__`` calls plus a ``torch.stack`` collate. Used with
    :func:`keep_batch` as ``collate_fn``. Works with any sampler, including Lightning's ``DistributedSampler``.
    """

    def __getitems__(self, indices: list[int]) -> tuple[torch.Tensor, ...]:
        index = torch.as_tensor(indices, dtype=torch.long)
        return tuple(tensor[index] for tensor in self.tensors)


def keep_batch(batch: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
    """collate_fn for :class:`BatchedTensorDataset`: the batch is already stacked."""
    return batch


def make_loader(
    dataset: Dataset, batch_size: int, shuffle: bool, seed: int = 0, num_workers: int = 0, drop_last: bool = False
) -> DataLoader:
    """A DataLoader that never touches the global RNG, and fetches in-memory tensor batches in one op.

    Shuffling uses :class:`EpochSeededSampler`; the loader's own ``generator`` (used for worker seeds) is seeded too,
    because a loader without one draws from the global torch RNG on every ``iter()``, which would make validation
    (e.g. Lightning's sanity check) shift the training noise of a resumed run.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size={batch_size} must be >= 1; set data.init_args.batch_size to a positive integer.")
    collate_fn = None
    if type(dataset) is TensorDataset:  # exact type: subclasses may override __getitem__
        dataset, collate_fn = BatchedTensorDataset(*dataset.tensors), keep_batch
    sampler = EpochSeededSampler(dataset, seed) if shuffle else None
    return DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        collate_fn=collate_fn,
        num_workers=num_workers,
        drop_last=drop_last,
        generator=torch.Generator().manual_seed(seed),
        persistent_workers=num_workers > 0,
    )

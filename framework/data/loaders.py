"""DataLoaders whose batch order depends only on (seed, epoch) and that Lightning checkpoints mid-epoch, so a run
resumed from any checkpoint (epoch boundary or mid-epoch) continues with the same batches as an uninterrupted one."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sized
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset, RandomSampler, TensorDataset


class EpochSeededSampler(RandomSampler):
    """A random permutation drawn from ``Generator().manual_seed(seed + epoch)``.

    Lightning calls ``set_epoch`` at the start of every epoch, so the order of epoch ``e`` is the same whether the
    run started at epoch 0 or resumed at ``e``; :class:`ResumableDataLoader` skips the batches of that order a
    mid-epoch checkpoint had already served. It subclasses ``RandomSampler`` so that Lightning sees it
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


class ResumableDataLoader(DataLoader):
    """A DataLoader with Lightning's stateful-loader protocol (``state_dict`` / ``load_state_dict``), so a fit resumed
    from a mid-epoch checkpoint serves the rest of the interrupted epoch in its original order.

    State: ``{"epoch": e, "batches_served": k}``, the sampler's epoch and how many batches of it the loop had taken
    (Lightning does not prefetch from a loader with a length, so served = consumed). Lightning saves it with every
    checkpoint and loads it before the resumed fit's first iteration; that iteration skips the first k batches when
    it runs the same epoch e (the sampler's order depends only on (seed, epoch)) and fewer than all of them were
    served. A checkpoint taken at an epoch end resumes in the next epoch, which skips nothing. The epoch is the
    sampler's (``set_epoch``, called by Lightning) or, for an ``IterableDataset``, the dataset's ``epoch``, which
    its module must set in ``on_train_start`` as well as ``on_train_epoch_start`` (a fit resumed mid-epoch skips
    the latter). Without either (no shuffling, single process) a resume restarts the epoch.
    """

    _epoch: int | None = None
    _served: int = 0
    _resume_at: dict[str, Any] | None = None

    def state_dict(self) -> dict[str, Any]:
        return {"epoch": self._epoch, "batches_served": self._served}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._resume_at = dict(state_dict)

    def __iter__(self) -> Iterator[Any]:
        return self._batches()

    def _batches(self) -> Iterator[Any]:
        # runs at the first next(), after Lightning's set_epoch: the epoch read here is the one being served
        self._epoch, self._served = getattr(self.sampler, "epoch", getattr(self.dataset, "epoch", None)), 0
        resume, self._resume_at = self._resume_at, None
        skip = 0
        if resume is not None and self._epoch is not None and resume.get("epoch") == self._epoch:
            skip = int(resume.get("batches_served", 0))
            skip = skip if skip < len(self) else 0
        batches = super().__iter__()
        for _ in range(skip):
            next(batches)
            self._served += 1
        for batch in batches:
            self._served += 1
            yield batch


class BatchedTensorDataset(TensorDataset):
    """A ``TensorDataset`` that serves a whole batch with one indexing op per tensor.

    DataLoader's fetcher calls ``__getitems__(indices)`` when it exists; returning ``tuple(t[indices])`` replaces
    ``batch_size`` Python-level ``__getitem__`` calls plus a ``torch.stack`` collate. Used with
    :func:`keep_batch` as ``collate_fn``. Works with any sampler, including Lightning's ``DistributedSampler``.
    With ``batch_type`` (a NamedTuple whose fields follow the tensors' order) batches are served as that type, so
    steps read ``batch.y`` instead of ``batch[-1]``.
    """

    def __init__(self, *tensors: torch.Tensor, batch_type: Callable[..., tuple] | None = None) -> None:
        super().__init__(*tensors)
        self.batch_type = batch_type

    def __getitems__(self, indices: list[int]) -> tuple[torch.Tensor, ...]:
        index = torch.as_tensor(indices, dtype=torch.long)
        rows = [tensor[index] for tensor in self.tensors]
        return self.batch_type(*rows) if self.batch_type is not None else tuple(rows)


def keep_batch(batch: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
    """collate_fn for :class:`BatchedTensorDataset` and :class:`MemoizedDataset`: the batch is already stacked."""
    return batch


def pad_stack(rows: list[torch.Tensor], value: float = math.nan) -> torch.Tensor:
    """Stack tensors of equal rank but different sizes into one (len(rows), *max sizes) tensor filled with
    ``value`` outside each row."""
    shape = [max(sizes) for sizes in zip(*(r.shape for r in rows), strict=True)]
    out = rows[0].new_full((len(rows), *shape), value)
    for i, r in enumerate(rows):
        out[(i, *(slice(0, n) for n in r.shape))] = r
    return out


class MemoizedDataset(Dataset):
    """Items ``fn(x[i])`` of an in-memory tensor ``x``, computed batch-wise the first time they are drawn and kept:
    for an expensive transform that does not change during training (e.g. persistence diagrams of a frozen
    filtration). A fit only pays for the items it draws: the first epoch computes, later epochs reuse.

    ``fn`` maps a batch ``x[indices]`` (b, *item) to a tuple of tensors with first dimension b whose rows may be
    ragged along ``ragged_dim`` (of a row), padded with ``pad_value`` (e.g. diagrams with different numbers of
    points). Each row is stored trimmed to its own extent there and a served batch is padded by :func:`pad_stack`
    to its widest row, so a batch depends only on its items, not on which batch first computed them (a resumed
    run sees the same tensors). Serves whole batches through ``__getitems__`` (use :func:`keep_batch`).

    ``cache`` (index -> stored row) starts the dataset from rows already computed and is filled in place, so that
    datasets over the same ``x`` with a function giving the same rows can share their work.
    """

    def __init__(
        self,
        x: torch.Tensor,
        fn: Callable[[torch.Tensor], tuple[torch.Tensor, ...]],
        ragged_dim: int | None = None,
        pad_value: float = math.nan,
        cache: dict[int, tuple[torch.Tensor, ...]] | None = None,
    ) -> None:
        self.x, self.fn, self.ragged_dim, self.pad_value = x, fn, ragged_dim, pad_value
        self.cache: dict[int, tuple[torch.Tensor, ...]] = {} if cache is None else cache

    def __len__(self) -> int:
        return len(self.x)

    def _trim(self, row: torch.Tensor) -> torch.Tensor:
        if self.ragged_dim is None:
            return row.clone()
        dim = self.ragged_dim % row.dim()
        is_pad = row.isnan() if math.isnan(self.pad_value) else row == self.pad_value
        used = (~is_pad).movedim(dim, 0).reshape(row.shape[dim], -1).any(1).nonzero()
        return row.narrow(dim, 0, int(used.max()) + 1 if len(used) else 0).clone()

    def __getitems__(self, indices: list[int]) -> tuple[torch.Tensor, ...]:
        missing = [i for i in dict.fromkeys(indices) if i not in self.cache]
        if missing:
            computed = self.fn(self.x[torch.as_tensor(missing, dtype=torch.long)])
            for j, i in enumerate(missing):
                self.cache[i] = tuple(self._trim(t[j]) for t in computed)
        rows = [self.cache[i] for i in indices]
        return tuple(pad_stack([r[k] for r in rows], self.pad_value) for k in range(len(rows[0])))

    def __getitem__(self, index: int) -> tuple[torch.Tensor, ...]:
        return tuple(t[0] for t in self.__getitems__([index]))


def make_loader(
    dataset: Dataset, batch_size: int, shuffle: bool, seed: int = 0, num_workers: int = 0, drop_last: bool = False
) -> DataLoader:
    """A :class:`ResumableDataLoader` that never touches the global RNG, and fetches in-memory tensor batches in one
    op.

    Shuffling uses :class:`EpochSeededSampler`; the loader's own ``generator`` (used for worker seeds) is seeded too,
    because a loader without one draws from the global torch RNG on every ``iter()``, which would make validation
    (e.g. Lightning's sanity check) shift the training noise of a resumed run.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size={batch_size} must be a positive integer.")
    collate_fn = None
    if type(dataset) is TensorDataset:  # exact type: subclasses may override __getitem__
        dataset, collate_fn = BatchedTensorDataset(*dataset.tensors), keep_batch
    elif isinstance(dataset, BatchedTensorDataset | MemoizedDataset):
        collate_fn = keep_batch
    sampler = EpochSeededSampler(dataset, seed) if shuffle else None
    return ResumableDataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        collate_fn=collate_fn,
        num_workers=num_workers,
        drop_last=drop_last,
        generator=torch.Generator().manual_seed(seed),
        persistent_workers=num_workers > 0,
    )

"""Held-out Fisher information of a fixed summary compressed by MOPED fitted on a separate training set."""

from __future__ import annotations

import torch
from torch import nn

from framework_plugins.topofisher.datamodule import split_seeds
from framework_plugins.topofisher.fisher import fisher_from_summaries, log_det, moped_weights
from framework_plugins.topofisher.simulators import Simulator


@torch.no_grad()
def summarize(summary: nn.Module, sims: torch.Tensor, chunk: int = 256) -> torch.Tensor:
    """Summaries of seed-matched simulations (n, 1 + 2p, *shape) -> (n, 1 + 2p, d), float64."""
    flat = sims.flatten(0, 1)
    out = torch.cat([summary(flat[i : i + chunk]).double() for i in range(0, len(flat), chunk)])
    return out.reshape(*sims.shape[:2], -1)


def moped_compress(train: torch.Tensor, test: torch.Tensor, dtheta: torch.Tensor) -> torch.Tensor:
    """B^T t for the ``test`` summaries, with MOPED B = C^-1 dmu^T fitted on the ``train`` summaries (both
    (n, 1 + 2p, d)): TopoFisher's MOPED baselines. Returns (n_test, 1 + 2p, p)."""
    _, _, dmu = fisher_from_summaries(train, dtheta, correct=False)
    return test @ moped_weights(train[:, 0], dmu)


def bootstrap_log_det(t: torch.Tensor, dtheta: torch.Tensor, reps: int = 200, seed: int = 0) -> torch.Tensor:
    """Standard error of ln|F| of compressed summaries t (n, 1 + 2p, p) by resampling seeds (seeded)."""
    g = torch.Generator().manual_seed(seed)
    values = []
    for _ in range(reps):
        index = torch.randint(len(t), (len(t),), generator=g)
        values.append(log_det(fisher_from_summaries(t[index], dtheta)[0]))
    return torch.stack(values).std()


def fixed_summary_fisher(
    summary: nn.Module, simulator: Simulator, n_train: int, n_test: int, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """(held-out F, bootstrap SE of its ln|F|) of a fixed summary + MOPED; train and test seeds disjoint.
    Features nearly constant on the training set (std < 1e-3 of the largest) are dropped: their covariance is
    numerically singular and their rare, non-Gaussian spikes get huge MOPED weights."""
    train = summarize(summary, simulator.seed_matched(split_seeds(seed, "train", n_train)))
    test = summarize(summary, simulator.seed_matched(split_seeds(seed, "test", n_test)))
    std = train[:, 0].std(0)
    keep = std > 1e-3 * std.max()  # e.g. persistence-image pixels in the far tails: (nearly) always empty
    train, test = train[..., keep], test[..., keep]
    compressed = moped_compress(train, test, simulator.dtheta)
    return fisher_from_summaries(compressed, simulator.dtheta)[0], bootstrap_log_det(compressed, simulator.dtheta)

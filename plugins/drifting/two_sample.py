"""A classifier two-sample test that small samples in high dimension can resolve: leave-one-out 1-nearest-neighbour
accuracy (Schilling 1986; the 1-NN classifier two-sample test recommended for generative models by Lopez-Paz &
Oquab 2017 and Xu et al. 2018), with a label-permutation null.

Pool x: (n, d) (generated) and y: (m, d) (held out), label them 0/1, and classify every point by the label of its
nearest other point. Accuracy 0.5 means indistinguishable, 1.0 perfectly separated; a generator that copies the
held-out points scores 0. The p-value compares the accuracy with ``n_perm`` random relabellings of the same pool.
"""

from __future__ import annotations

import torch


def one_nn_accuracy(distances: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Leave-one-out 1-NN accuracy for a pooled (N, N) distance matrix and labels (N,) (batched: (B, N))."""
    nearest = distances.fill_diagonal_(float("inf")).argmin(1)
    return (labels[..., nearest] == labels).double().mean(-1)


def knn_two_sample(x: torch.Tensor, y: torch.Tensor, n_perm: int = 500, seed: int = 0) -> tuple[float, float]:
    """(1-NN leave-one-out accuracy, permutation p-value = (1 + #{acc_perm >= acc}) / (1 + n_perm))."""
    pooled = torch.cat([x, y]).double()
    labels = torch.cat([torch.zeros(len(x)), torch.ones(len(y))]).to(pooled.device)
    distances = torch.cdist(pooled, pooled)
    accuracy = one_nn_accuracy(distances, labels)
    gen = torch.Generator().manual_seed(seed)
    perms = torch.stack([labels[torch.randperm(len(labels), generator=gen)] for _ in range(n_perm)])
    null = one_nn_accuracy(distances, perms)
    return float(accuracy), float((1 + (null >= accuracy).sum()) / (1 + n_perm))

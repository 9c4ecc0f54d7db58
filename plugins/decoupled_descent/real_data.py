"""Real images as binary tasks: scikit-learn digits (built in), MNIST idx files and CIFAR-10 python batches (local
files only), additive pixel noise, frozen random features for probing, and the noise-variance estimate.

Labels: y = +1 if the class is in ``positive_classes`` else -1. Nothing is downloaded.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from framework.data import load_data_pickle, read_idx_images_and_labels, require_file
from framework.data.toys import digits

MNIST_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte")
CIFAR_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))


def sklearn_digits() -> tuple[torch.Tensor, torch.Tensor]:
    """scikit-learn's 1,797 8x8 digits in [-1, 1] (1797, 64) and their classes (1797,)."""
    from sklearn.datasets import load_digits

    return digits().double(), torch.as_tensor(load_digits().target)


def _find(directory: Path, name: str, what: str, how: str) -> Path:
    gz = directory / f"{name}.gz"
    return gz if gz.is_file() else require_file(directory / name, what, how)


def mnist(directory: str | Path) -> tuple[torch.Tensor, torch.Tensor]:
    """MNIST's 60,000 training images in [0, 1] (60000, 784) and classes, from idx files in ``directory``."""
    how = "download train-images-idx3-ubyte and train-labels-idx1-ubyte (.gz allowed) from the MNIST site yourself"
    images, labels = read_idx_images_and_labels(
        *(_find(Path(directory), name, f"MNIST {name}", how) for name in MNIST_FILES)
    )
    return torch.as_tensor(images.reshape(len(images), -1) / 255.0), torch.as_tensor(labels.astype(np.int64))


def cifar10(directory: str | Path) -> tuple[torch.Tensor, torch.Tensor]:
    """CIFAR-10's 50,000 training images in [0, 1] (50000, 3072) and classes, from the python batches in
    ``directory`` (the extracted ``cifar-10-batches-py``), unpickled allowing numpy arrays only (a batch that names
    anything else is refused before it can run code)."""
    how = "download and extract cifar-10-python.tar.gz (cifar-10-batches-py/) yourself"
    xs, ys = [], []
    for name in CIFAR_BATCHES:
        path = require_file(Path(directory) / name, f"CIFAR-10 {name}", how)
        batch = load_data_pickle(path, encoding="bytes")
        if not isinstance(batch, dict) or b"data" not in batch or b"labels" not in batch:
            raise ValueError(f"{path} is not a CIFAR-10 python batch (a dict with b'data' and b'labels').")
        xs.append(np.asarray(batch[b"data"], dtype=np.float64) / 255.0)
        ys.append(np.asarray(batch[b"labels"], dtype=np.int64))
    return torch.as_tensor(np.concatenate(xs)), torch.as_tensor(np.concatenate(ys))


def binary_labels(classes: torch.Tensor, positive_classes: list[int]) -> torch.Tensor:
    """y = +1 for classes in ``positive_classes``, else -1. (n,) -> (n,) float64."""
    return torch.isin(classes, torch.as_tensor(list(positive_classes))).to(torch.float64) * 2 - 1


def random_features(x: torch.Tensor, n_features: int, seed: int) -> torch.Tensor:
    """Frozen random features tanh(x F^T / sqrt(D)), F (n_features, D) ~ N(0, 1) seeded.
    x: (n, D) -> (n, n_features)."""
    gen = torch.Generator().manual_seed(seed)
    weights = torch.randn(n_features, x.shape[1], generator=gen, dtype=x.dtype)
    return torch.tanh(x @ weights.T / math.sqrt(x.shape[1]))
